"""One file per split: ``linnet baseline --catalog TRAIN --validation VAL --test TEST`` scores the whole test file."""

from __future__ import annotations

import argparse
import json

import pytest

from linnet.cli import evaluate as evaluate_cli
from linnet.errors import ConfigError

from .conftest import make_catalog_frame

FLAGS = ["--id-column", "id", "--text-columns", "title", "--category-column", "path", "--quiet"]


@pytest.fixture(scope="module")
def split_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("split_files")
    frame = make_catalog_frame(300, seed=5)
    paths = {}
    for name, rows in (("train", frame.iloc[:200]), ("validation", frame.iloc[200:250]), ("test", frame.iloc[250:])):
        paths[name] = folder / f"{name}.csv"
        rows.to_csv(paths[name], index=False)
    return paths


def run_baseline(*argv) -> int:
    parser = argparse.ArgumentParser(prog="linnet")
    evaluate_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["baseline", *argv, *FLAGS])
    return args.func(args)


def test_baseline_scores_every_product_of_the_test_file(split_files, tmp_path):
    out = tmp_path / "files"
    assert run_baseline("--catalog", str(split_files["train"]), "--validation", str(split_files["validation"]),
                        "--test", str(split_files["test"]), "--out", str(out), "--target-precision", "0.9") == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_products"] == 50, "the whole test file, not a hash slice of it"
    assert len(metrics["thresholds"]["level_thresholds"]) == 2, "thresholds fitted on the validation file"
    assert metrics["hierarchical_f1"] > 0.5


def test_a_validation_file_without_a_test_file_is_refused(split_files, tmp_path):
    with pytest.raises(ConfigError, match="--test FILE"):
        run_baseline("--catalog", str(split_files["train"]), "--validation", str(split_files["validation"]),
                     "--out", str(tmp_path / "x"))
