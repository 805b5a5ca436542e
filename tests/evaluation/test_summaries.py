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
        "thresholds for target 0.95: levels 1-2 0.500, 0.750; nodes n1 0.900",
        "warning: level 2 cannot reach precision 0.95 on this split; it will always be withheld",
        "warning: node n1 cannot reach precision 0.99 on this split; it will always be withheld",
        "calibration written to cal.json",
    ]


def test_the_calibration_table_of_a_seven_level_tree_fits_100_columns_without_nan():
    """The Google tree's 7 levels, five targets, two levels where nothing is kept (precision undefined)."""
    nan = float("nan")
    rows = [{"target_precision": target, "level_thresholds": [0.974427223, 0.123456789, 0, 0, 0, 0, 0],
             "level_coverage": [0.8, 0.8, 0.6, 0.4, 0.1, 0.0, 0.0],
             "level_precision": [0.875, 0.875, 1.0, 1.0, 1.0, nan, nan],
             "hierarchical_precision": 0.9259, "hierarchical_f1": 0.7692} for target in (0.8, 0.9, 0.95, 0.98, 0.99)]
    calibration = SimpleNamespace(level_thresholds=rows[1]["level_thresholds"], node_thresholds={},
                                  report={"levels": [], "nodes": []})
    printed = calibration_summary(calibration, rows, 0.9, "cal.json")
    assert max(len(line) for line in printed.splitlines()) <= 100, printed
    assert "nan" not in printed.lower() and "0.974427" not in printed and "0.974" in printed
    assert "| 0.9 | 0.80/0.88 | 0.80/0.88 | 0.60/1.00 | 0.40/1.00 | 0.10/1.00 | 0.00/- | 0.00/- |" in printed
