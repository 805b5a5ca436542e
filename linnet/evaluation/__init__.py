"""Evaluation: hierarchical metrics (NumPy and streaming Keras), calibration of the thresholds, reports,
baselines, and `evaluate_model` / `calibrate_model` over a catalog.

Example:
    >>> from linnet.evaluation import metrics
    >>> metrics.level_accuracy([["a", "a/b"], ["a", "a/c"]], [["a", "a/b"], ["a", "a/b"]]).tolist()
    [1.0, 0.5]
"""

from __future__ import annotations

from linnet.lazy_exports import lazy_exports

_PUBLIC = {
    "evaluate_model": "linnet.evaluation.evaluate",
    "calibrate_model": "linnet.evaluation.evaluate",
    "evaluate_baseline": "linnet.evaluation.evaluate",
    "Calibration": "linnet.evaluation.calibration",
    "calibrate": "linnet.evaluation.calibration",
    "make_baseline": "linnet.evaluation.baselines",
    "summarize": "linnet.evaluation.metrics",
    "hierarchical_precision_recall_f1": "linnet.evaluation.metrics",
}
__all__ = list(_PUBLIC)
__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
