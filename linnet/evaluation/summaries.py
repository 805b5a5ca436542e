"""What `linnet evaluate`, `baseline` and `calibrate` print after their library call, as text.

The command line and `linnet demo` print the same summaries through these functions. This module does not
import TensorFlow.

Example:
    >>> metrics = {"hierarchical_precision": 0.9, "hierarchical_recall": 0.8, "hierarchical_f1": 0.85}
    >>> metrics_headline(metrics).split("; ")[0]
    'hierarchical P/R/F1 0.9000 / 0.8000 / 0.8500'
"""

from __future__ import annotations

import os

from linnet.evaluation.calibration import format_tradeoff_table
from linnet.evaluation.reports import format_number


def metrics_headline(metrics: dict) -> str:
    """One line of a report's headline scores: hierarchical P/R/F1, accuracy per level, leaf accuracy,
    coverage and the number of products."""
    levels = ", ".join(format_number(value) for value in metrics.get("level_accuracy") or [])
    return (f"hierarchical P/R/F1 {format_number(metrics.get('hierarchical_precision'))} / "
            f"{format_number(metrics.get('hierarchical_recall'))} / {format_number(metrics.get('hierarchical_f1'))}; "
            f"level accuracy {levels}; leaf accuracy {format_number(metrics.get('leaf_accuracy'))}; "
            f"coverage {format_number(metrics.get('coverage'))}; {metrics.get('n_products')} products")


def evaluation_summary(metrics: dict, out: str | os.PathLike) -> str:
    """`linnet evaluate`: the headline scores and where the report went."""
    return f"{metrics_headline(metrics)}\nreport written to {out}"


def baseline_summary(metrics: dict, out: str | os.PathLike) -> str:
    """`linnet baseline`: its training time, then what `linnet evaluate` prints."""
    return f"trained in {metrics.get('training_seconds', 0):.1f} s\n{evaluation_summary(metrics, out)}"


def calibration_summary(calibration, table: list[dict], target_precision: float, out: str | os.PathLike) -> str:
    """`linnet calibrate`: the precision/coverage trade-off table, the fitted thresholds, a warning for
    each level or node that cannot reach its target (it will always be withheld), and the file written."""
    levels = ", ".join(f"{threshold:.3f}" for threshold in calibration.level_thresholds)
    nodes = ", ".join(f"{node} {threshold:.3f}" for node, threshold in calibration.node_thresholds.items())
    lines = [format_tradeoff_table(table),
             f"\nthresholds for target {target_precision:g}: levels 1-{len(calibration.level_thresholds)} {levels}"
             + (f"; nodes {nodes}" if nodes else "")]
    for report in calibration.report["levels"] + calibration.report["nodes"]:
        if not report.get("reachable", True):
            where = f"level {report['level']}" if "node" not in report else f"node {report['node']}"
            lines.append(f"warning: {where} cannot reach precision {report['target_precision']:g} on this split; "
                         "it will always be withheld")
    lines.append(f"calibration written to {out}")
    return "\n".join(lines)
