"""Training: fit the hierarchical model under a `tf.distribute` strategy and write a run directory.

Modules, in the order a run uses them: `config` (the training config), `trainer` (``train``: the named
steps of a run), `featurized` (the n-gram featurizer moved into tf.data), `embedding_cache` (frozen
encoders run once), `wide_init` (the wide path set to a linear SVM), `optimizers`, `regularizers`,
`datasets` (the tf.data pipelines ``fit`` reads), `callbacks` (backups, checkpoints, timing), `distribute`
(strategies and multi-worker fixes), `tracking` (MLflow) and `run_directory` (the files a run writes,
`write_run`, and `load_run`).

Example:
    >>> from linnet.training import TrainingConfig
    >>> TrainingConfig().training.epochs > 0
    True
"""

from __future__ import annotations

from linnet.lazy_exports import lazy_exports

_PUBLIC = {
    "train": "linnet.training.trainer",
    "resolve_config": "linnet.training.trainer",
    "level_losses": "linnet.training.trainer",
    "TrainingConfig": "linnet.training.config",
    "load_run": "linnet.training.run_directory",
    "LoadedRun": "linnet.training.run_directory",
    "MlflowTracker": "linnet.training.tracking",
    "VariableSplitOptimizer": "linnet.training.optimizers",
}
__all__ = list(_PUBLIC)
__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
