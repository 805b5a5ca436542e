"""The report directory: plots written and non-empty, report numbers equal to metrics.json."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from linnet.evaluation import metrics
from linnet.evaluation.calibration import Calibration
from linnet.evaluation.evaluate import (
    LevelPredictions,
    load_compare,
    score_predictions,
    write_report,
)
from linnet.evaluation.reports import format_number

from .conftest import make_catalog_frame


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    frame = make_catalog_frame(n=120, seed=3)
    truth = metrics.paths_to_matrix(frame["path"], num_levels=2)
    rng = np.random.default_rng(0)
    full = truth.copy()
    wrong = rng.uniform(size=len(frame)) < 0.2
    full[wrong, 1] = np.where(full[wrong, 0] == "Apparel", "Apparel > Shirts", "Footwear > Boots")
    full[wrong, 0] = np.where(full[wrong, 0] == "Apparel", "Apparel", "Footwear")
    confidences = np.clip(np.stack([rng.uniform(0.6, 1, len(frame)), rng.uniform(0.3, 1, len(frame))], 1), 0, 1)
    leaves = sorted(set(truth[:, 1]))
    level_scores = [rng.dirichlet(np.ones(3), len(frame)), rng.dirichlet(np.ones(len(leaves)), len(frame))]
    predictions = LevelPredictions(frame["id"].to_numpy(), full, confidences, level_scores,
                                   [["Apparel", "Footwear", "Home"], leaves])
    calibration = Calibration([0.7, 0.5], {"Home": 0.9})
    result, exposed, plot_data = score_predictions(truth, predictions, calibration=calibration,
                                                   values=frame["value"].to_numpy())
    out = tmp_path_factory.mktemp("report")
    compare_dir = tmp_path_factory.mktemp("compare") / "other-model"
    compare_dir.mkdir()
    (compare_dir / "metrics.json").write_text(json.dumps({"hierarchical_f1": 0.5, "level_accuracy": [0.9, 0.4],
                                                           "n_products": 7}))
    artifacts = write_report(out, "toy", truth, predictions, result, exposed, plot_data,
                             compare=load_compare([compare_dir]), target_precision=0.9)
    return out, artifacts, truth, exposed


def test_every_plot_is_a_non_empty_png(scored):
    out, artifacts, _, _ = scored
    pngs = sorted(out.glob("*.png"))
    names = {png.name for png in pngs}
    assert {"level_accuracy.png", "precision_coverage.png", "calibration_curve.png", "confusion_level_1.png",
            "confusion_level_2.png"} <= names
    for png in pngs:
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
        assert f"]({png.name})" in artifacts["report"].read_text()


def test_report_numbers_equal_metrics_json(scored):
    out, _, truth, exposed = scored
    result = json.loads((out / "metrics.json").read_text())
    for key in ("hierarchical_precision", "hierarchical_recall", "hierarchical_f1", "level_accuracy", "leaf_accuracy",
                "coverage", "n_products"):
        assert key in result
    assert result["hierarchical_f1"] == pytest.approx(metrics.hierarchical_precision_recall_f1(truth, exposed)["f1"])
    report = (out / "report.md").read_text()
    rows = {match.group(1): match.group(2).split(" | ") for match in re.finditer(r"^\| ([^|]+?) \| (.+) \|$", report, re.MULTILINE)}
    assert rows["hierarchical F1"] == [format_number(result["hierarchical_f1"]), "0.5000"]
    assert rows["hierarchical precision"][0] == format_number(result["hierarchical_precision"])
    assert rows["leaf accuracy"][0] == format_number(result["leaf_accuracy"])
    assert rows["coverage"][0] == format_number(result["coverage"])
    assert rows["level 2 accuracy"] == [format_number(result["level_accuracy"][1]), "0.4000"]
    assert rows["products"] == ["120", "7"]
    assert rows["Home"][1:] == [format_number(result["subtrees"]["Home"][key])
                                for key in ("hierarchical_f1", "leaf_accuracy", "coverage")]


def test_predictions_csv_has_one_row_per_product_with_the_thresholded_path(scored):
    import pandas as pd

    out, _, truth, exposed = scored
    frame = pd.read_csv(out / "predictions.csv", keep_default_na=False)
    assert list(frame.columns) == ["id", "true_path", "predicted_path", "full_path", "depth", "confidence_level_1",
                                   "confidence_level_2"]
    assert len(frame) == len(truth)
    assert frame["predicted_path"].tolist() == metrics.deepest_nodes(exposed).tolist()
    assert (frame["depth"] < 2).any() and (frame["depth"] == 2).any()  # thresholds withheld some levels
    withheld_home = frame[frame["full_path"].str.startswith("Home") & (frame["confidence_level_1"] < 0.9)]
    assert len(withheld_home) > 0
    assert (withheld_home["depth"] == 0).all()  # the node override holds for Home itself


def test_top_k_and_value_weighted_scores_are_reported(scored):
    out, _, _, _ = scored
    result = json.loads((out / "metrics.json").read_text())
    assert len(result["level_top5_accuracy"]) == 2 and result["level_top5_accuracy"][0] == 1.0  # 3 classes < 5
    assert "value_weighted" in result and len(result["value_weighted"]["level_accuracy"]) == 2
    assert result["thresholds"]["node_thresholds"] == {"Home": 0.9}


def test_compare_needs_metrics_json(tmp_path):
    from linnet.errors import ConfigError

    with pytest.raises(ConfigError, match="metrics.json"):
        load_compare([tmp_path])
