"""Serving: the SavedModel export, loading a trained model (run directory or export: `artifact_kind`,
`load_artifact`), the one `Predictor` for either, batch prediction and the TF Serving client.

Example:
    >>> from linnet.serving import export_run, load_predictor  # doctest: +SKIP
"""

from __future__ import annotations

from linnet.lazy_exports import lazy_exports

_PUBLIC = {
    "export_run": "linnet.serving.export",
    "export_model": "linnet.serving.export",
    "load_saved_model": "linnet.serving.export",
    "Artifact": "linnet.serving.artifacts",
    "artifact_kind": "linnet.serving.artifacts",
    "load_artifact": "linnet.serving.artifacts",
    "Predictor": "linnet.serving.predict",
    "load_predictor": "linnet.serving.predict",
    "predict_catalog": "linnet.serving.predict",
    "ServingClient": "linnet.serving.client",
}
__all__ = list(_PUBLIC)
__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
