"""What `linnet calibrate`, `evaluate` and `baseline` print (shared with the demo)."""

from __future__ import annotations

from types import SimpleNamespace

from linnet.evaluation.summaries import (
    baseline_summary,
    calibration_summary,
    evaluation_summary,
    metrics_headline,
)

METRICS = {"hierarchical_precision": 0.91234, "hierarchical_recall": 0.8, "hierarchical_f1": float("nan"),
           "level_accuracy": [0.99, 0.875], "leaf_accuracy": 0.875, "coverage": 1.0, "n_products": 12,
           "training_seconds": 3.04}


def test_headline_formats_every_score_like_the_report():
    assert metrics_headline(METRICS) == ("hierarchical P/R/F1 0.9123 / 0.8000 / n/a; level accuracy 0.9900, 0.8750; "
                                         "leaf accuracy 0.8750; coverage 1.0000; 12 products")
    assert evaluation_summary(METRICS, "out") == metrics_headline(METRICS) + "\nreport written to out"
    assert baseline_summary(METRICS, "out") == "trained in 3.0 s\n" + evaluation_summary(METRICS, "out")


def test_calibration_summary_warns_about_each_unreachable_target():
    calibration = SimpleNamespace(
        level_thresholds=[0.5, 0.75], node_thresholds={"n1": 0.9},
        report={"levels": [{"level": 1, "target_precision": 0.95, "reachable": True},
                           {"level": 2, "target_precision": 0.95, "reachable": False}],
                "nodes": [{"node": "n1", "level": 2, "target_precision": 0.99, "reachable": False}]})
    lines = calibration_summary(calibration, [], 0.95, "cal.json").splitlines()
    assert lines == [
        "(no rows)", "",
        "thresholds for target 0.95: level [0.5, 0.75], nodes {'n1': 0.9}",
        "warning: level 2 cannot reach precision 0.95 on this split; it will always be withheld",
        "warning: node n1 cannot reach precision 0.99 on this split; it will always be withheld",
        "calibration written to cal.json",
    ]
