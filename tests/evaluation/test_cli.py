"""The evaluate / calibrate / baseline command group: flags and errors a user can fix."""

from __future__ import annotations

import argparse
import doctest

import pytest

from linnet.cli import evaluate as evaluate_cli
from linnet.errors import ConfigError


@pytest.fixture(scope="module")
def parser():
    parser = argparse.ArgumentParser(prog="linnet")
    evaluate_cli.register(parser.add_subparsers(dest="command"))
    return parser


def test_flags_parse_with_defaults(parser):
    args = parser.parse_args(["evaluate", "--model", "run", "--catalog", "c.csv", "--out", "o",
                              "--compare", "a", "b", "--unknown-labels", "ancestor", "--text-columns", "title,brand"])
    assert (args.split, args.unknown_labels, args.compare, args.text_columns) == ("all", "ancestor", ["a", "b"],
                                                                                  ["title", "brand"])
    args = parser.parse_args(["calibrate", "--model", "m", "--catalog", "c", "--out", "cal.json",
                              "--node-target", "Apparel > Shirts=0.99", "--node-target", "Home=0.9"])
    assert args.target_precision == 0.95 and args.split == "validation"
    assert args.node_target == [("Apparel > Shirts", 0.99), ("Home", 0.9)]
    assert parser.parse_args(["baseline", "--catalog", "c", "--out", "o"]).kind == "tfidf"


def test_bad_node_target_and_kind_are_rejected_by_the_parser(parser, capsys):
    with pytest.raises(SystemExit):
        parser.parse_args(["calibrate", "--model", "m", "--catalog", "c", "--out", "x", "--node-target", "Home"])
    assert "NODE=PRECISION" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(["baseline", "--catalog", "c", "--out", "o", "--kind", "bert"])


def test_target_outside_unit_interval_fails_before_any_work(parser, tmp_path):
    args = parser.parse_args(["calibrate", "--model", str(tmp_path / "missing"), "--catalog", "c", "--out", "x",
                              "--target-precision", "1.5"])
    with pytest.raises(ConfigError, match=r"\(0, 1\]"):
        args.func(args)


def test_missing_model_directory_is_named(parser, tmp_path):
    args = parser.parse_args(["evaluate", "--model", str(tmp_path / "nowhere"), "--catalog", "c", "--out", "o"])
    with pytest.raises(ConfigError, match="nowhere"):
        args.func(args)


@pytest.mark.parametrize("module", ["linnet.evaluation.metrics", "linnet.evaluation.calibration", "linnet.evaluation.baselines", "linnet.evaluation.reports"])
def test_docstring_examples_run(module):
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_training_uses_all_but_a_small_validation_split_of_its_file():
    from linnet.evaluation.evaluate import DEFAULT_SPLIT

    training_config = pytest.importorskip("linnet.training.config")
    train, validation, test = training_config.TrainingConfig().data.split
    assert train >= 0.9 and 0 < validation <= 0.1 and test == 0.0
    # A baseline given one file holds its own test slice out (with --test FILE the files are the splits).
    assert DEFAULT_SPLIT[2] > 0
