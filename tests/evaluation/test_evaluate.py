"""Evaluation over a real prepared catalog: unknown labels, baselines end to end through the CLI."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from linnet.cli import evaluate as evaluate_cli
from linnet.errors import EvaluationError
from linnet.evaluation.evaluate import (
    LevelPredictions,
    prepare_for_evaluation,
    score_predictions,
)

from .conftest import LEAVES


@pytest.fixture(scope="module")
def model_taxonomy():
    """A model that never saw 'Home > Lamps' nor 'Footwear > Sandals'."""
    from linnet.taxonomy import Taxonomy

    return Taxonomy.from_paths(["Apparel > Shirts", "Apparel > Dresses", "Footwear > Boots"])


def test_unknown_labels_scored_skipped_or_cut_to_ancestor(catalog_csv, schema, model_taxonomy):
    catalog, truth, unknown = prepare_for_evaluation(catalog_csv, schema, model_taxonomy, split="all")
    assert len(catalog) == 240 and unknown == 96  # Home > Lamps and Footwear > Sandals, 48 each
    assert "Home > Lamps" in set(truth[:, 1])
    skipped, skipped_truth, _ = prepare_for_evaluation(catalog_csv, schema, model_taxonomy, "all", "skip")
    assert len(skipped) == 144 and "Home" not in set(skipped_truth[:, 0])
    _, cut, _ = prepare_for_evaluation(catalog_csv, schema, model_taxonomy, "all", "ancestor")
    sandals = truth[:, 1] == "Footwear > Sandals"
    assert cut[sandals].tolist() == [["Footwear", ""]] * int(sandals.sum())
    assert (cut[truth[:, 0] == "Home"] == "").all()

    # Scored as they are, an unknown label is a miss even for the best possible prediction.
    best = np.where(np.isin(truth, [node.id for node in model_taxonomy.nodes]), truth, "")
    predictions = LevelPredictions(catalog.ids, best, np.ones(best.shape))
    result, _, _ = score_predictions(truth, predictions)
    assert result["level_accuracy"][1] == pytest.approx(144 / 240)


def test_empty_split_is_a_clear_error(catalog_csv, schema, model_taxonomy):
    with pytest.raises(EvaluationError, match="'test' split is empty"):
        prepare_for_evaluation(catalog_csv, schema, model_taxonomy, "test", split_fractions=(1.0, 0.0, 0.0))


def test_linnet_baseline_writes_a_comparable_report(catalog_csv, tmp_path):
    parser = argparse.ArgumentParser(prog="linnet")
    evaluate_cli.register(parser.add_subparsers(dest="command"))
    flags = ["--catalog", str(catalog_csv), "--id-column", "id", "--text-columns", "title",
             "--attribute-columns", "colour", "--category-column", "path", "--quiet"]
    first = tmp_path / "hiclass"
    args = parser.parse_args(["baseline", "--kind", "hiclass", "--out", str(first), *flags])
    assert args.func(args) == 0
    second = tmp_path / "hiclass-calibrated"
    args = parser.parse_args(["baseline", "--kind", "hiclass", "--out", str(second), "--target-precision", "0.99",
                              "--compare", str(first), *flags])
    assert args.func(args) == 0
    metrics = json.loads((second / "metrics.json").read_text())
    assert metrics["n_products"] > 10 and metrics["model"] == "baseline:hiclass"
    assert len(metrics["thresholds"]["level_thresholds"]) == 2
    assert set(metrics["subtrees"]) == {path.split(" > ")[0] for path in LEAVES}
    report = (second / "report.md").read_text()
    assert "| score | baseline hiclass | hiclass |" in report
    assert (second / "precision_coverage.png").stat().st_size > 5000


def test_report_curves_judge_a_level_below_a_shallow_label_as_wrong():
    """The precision/coverage and reliability curves judge levels as the thresholds do (`judged_mask`): a product
    labelled with the inner node "Apparel" but predicted down to "Apparel > Shirts" counts as a miss at level 2."""
    true_paths = np.array([["Apparel", "Apparel > Shirts"], ["Apparel", ""]], dtype=object)
    full = np.array([["Apparel", "Apparel > Shirts"], ["Apparel", "Apparel > Shirts"]], dtype=object)
    predictions = LevelPredictions(ids=np.array(["a", "b"]), full_node_ids=full,
                                   confidences=np.array([[0.9, 0.8], [0.9, 0.6]]))
    _, _, plots = score_predictions(true_paths, predictions)
    level_two = plots["curves"][1]
    assert level_two["coverage"].tolist() == [0.5, 1.0]
    assert level_two["precision"].tolist() == [1.0, 0.5]  # the second product's extra level is judged wrong
    assert plots["reliability"][1]["count"].sum() == 2


def test_true_paths_spelled_in_another_case_take_the_model_trees_spelling(model_taxonomy):
    from linnet.evaluation.evaluate import to_model_spelling, unknown_label_rows

    truth = np.array([["apparel", "apparel > shirts"], ["Footwear", "Footwear > Boots"], ["Home", "Home > Lamps"]],
                     dtype=object)
    spelled = to_model_spelling(truth, model_taxonomy)
    assert spelled.tolist() == [["Apparel", "Apparel > Shirts"], ["Footwear", "Footwear > Boots"],
                                ["Home", "Home > Lamps"]]
    assert unknown_label_rows(spelled, model_taxonomy).tolist() == [False, False, True]
