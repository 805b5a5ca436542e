"""LinNét: hierarchical product categorisation.

The package is a house of rooms along the data path (``docs/architecture.md``): `taxonomy` → `data` →
`encoders` → `model` → `training` → `inference` → `serving` → `evaluation`, with `embeddings` and `demo`
beside and `cli` on top. The names below are importable from ``linnet`` directly; each is imported on
first use, so ``import linnet`` does not import TensorFlow.

Example:
    >>> from linnet import Taxonomy
    >>> Taxonomy.from_paths(["Apparel > Shoes"]).num_levels
    2
"""

from __future__ import annotations

from linnet.lazy_exports import lazy_exports

__version__ = "0.1.0"

_PUBLIC = {
    "Taxonomy": "linnet.taxonomy",
    "load_taxonomy": "linnet.taxonomy",
    "CatalogSchema": "linnet.data",
    "prepare_catalog": "linnet.data",
    "make_dataset": "linnet.data",
    "build_text_encoder": "linnet.encoders",
    "build_image_encoder": "linnet.encoders",
    "ModelConfig": "linnet.model",
    "build_model": "linnet.model",
    "TrainingConfig": "linnet.training",
    "train": "linnet.training",
    "load_run": "linnet.training",
    "HierarchicalClassifier": "linnet.inference",
    "export_run": "linnet.serving",
    "export_model": "linnet.serving",
    "load_predictor": "linnet.serving",
    "predict_catalog": "linnet.serving",
    "ServingClient": "linnet.serving",
    "evaluate_model": "linnet.evaluation",
    "calibrate_model": "linnet.evaluation",
    "embed_catalog": "linnet.embeddings",
    "NeighbourIndex": "linnet.embeddings",
}
__all__ = ["__version__", *_PUBLIC]
__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
