"""Inference: `HierarchicalClassifier` (constrained descent and thresholds in TF ops) and the calibration
file whose thresholds it applies.

Example:
    >>> from linnet.inference import HierarchicalClassifier  # doctest: +SKIP
"""

from __future__ import annotations

from linnet.lazy_exports import lazy_exports

_PUBLIC = {
    "HierarchicalClassifier": "linnet.inference.classifier",
    "save_calibration": "linnet.inference.calibration_file",
    "load_calibration": "linnet.inference.calibration_file",
    "validate_calibration": "linnet.inference.calibration_file",
}
__all__ = list(_PUBLIC)
__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
