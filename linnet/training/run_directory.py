"""Run directories: ``linnet train --out RUN_DIR`` writes one, ``load_run`` reads it back.

A run directory holds ``config.yaml``, ``schema.yaml``, ``taxonomy.json``, ``model.keras``,
``metrics.json``, ``mlflow.db`` and ``README.md`` (see ``docs/architecture.md``). Every file is written
atomically (`linnet.atomic_files`) so a killed run never leaves a half-written file. `write_run` writes them
(and the run's README), `load_run` reads them back.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import zipfile
from pathlib import Path
from typing import Any

import keras
import yaml

import linnet.encoders  # registers the encoders' Keras layers before a model is loaded
import linnet.model  # noqa: F401  registers the model's Keras layers
from linnet.atomic_files import (
    atomic_path,
    write_json_atomically,
    write_text_atomically,
    write_yaml_atomically,
)
from linnet.data import CatalogSchema
from linnet.errors import ConfigError
from linnet.taxonomy import Taxonomy
from linnet.training.config import TrainingConfig

CONFIG_FILE = "config.yaml"
SCHEMA_FILE = "schema.yaml"
TAXONOMY_FILE = "taxonomy.json"
MODEL_FILE = "model.keras"
METRICS_FILE = "metrics.json"
MLFLOW_FILE = "mlflow.db"
README_FILE = "README.md"
# Working state of an unfinished run (BackupAndRestore, checkpoints); its presence marks a resumable run.
STATE_DIR = "state"


def check_run_directory(run_dir: Path, *, resume: bool = False) -> Path:
    """Refuses a ``run_dir`` that holds a finished run or unrelated files (nothing is created).

    A directory that exists and is not empty is accepted only with ``resume=True`` and only when it holds
    an unfinished run (a ``state/`` folder and no ``model.keras``), which training then continues.

    Raises:
        ConfigError: the directory holds a finished run or unrelated files.
    """
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--out {run_dir} exists and is not a directory")
    if run_dir.is_dir() and any(run_dir.iterdir()):
        finished = (run_dir / MODEL_FILE).exists()
        resumable = (run_dir / STATE_DIR).is_dir() and not finished
        if not (resume and resumable):
            what = "a finished run" if finished else ("an unfinished run" if resumable else "other files")
            hint = " (pass --resume to continue it)" if resumable else ""
            raise ConfigError(f"--out {run_dir} already holds {what}; choose a new directory{hint}")
    return run_dir


def prepare_run_directory(run_dir: Path, *, resume: bool = False) -> Path:
    """Checks ``run_dir`` (see `check_run_directory`) and creates it with its ``state/`` folder."""
    run_dir = check_run_directory(run_dir, resume=resume)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / STATE_DIR).mkdir(exist_ok=True)
    return run_dir


@dataclasses.dataclass
class LoadedRun:
    """What ``load_run`` returns: the Keras model and everything needed to read its outputs."""

    model: Any
    taxonomy: Any
    schema: Any
    config: Any
    metrics: dict
    run_dir: Path

    @property
    def path(self) -> Path:
        return self.run_dir

    def __iter__(self):  # allows ``model, taxonomy, schema, config = load_run(path)[:4]``-style unpacking
        return iter((self.model, self.taxonomy, self.schema, self.config))


def load_run(run_dir) -> LoadedRun:
    """Loads a finished run directory written by ``linnet train``.

    Args:
        run_dir: path of the run directory.

    Returns:
        ``LoadedRun`` with ``model`` (Keras model, loaded with ``safe_mode=True``), ``taxonomy``
        (``linnet.taxonomy.Taxonomy``), ``schema`` (``linnet.data.CatalogSchema``), ``config``
        (``linnet.training.config.TrainingConfig``) and ``metrics`` (dict). It also unpacks as
        ``model, taxonomy, schema, config = load_run(run_dir)``.

    Raises:
        ConfigError: a file of the run is missing.

    Example:
        >>> run = load_run("runs/fashion")  # doctest: +SKIP
        >>> probabilities = run.model.predict({"title": ["red shirt"], "attributes": [""]})  # doctest: +SKIP
    """
    run_dir = Path(run_dir)
    for name in (CONFIG_FILE, SCHEMA_FILE, TAXONOMY_FILE, MODEL_FILE):
        if not (run_dir / name).is_file():
            raise ConfigError(f"{run_dir} is not a finished run directory: {name} is missing")
    import_custom_layer_modules(run_dir / MODEL_FILE)
    taxonomy = Taxonomy.load(run_dir / TAXONOMY_FILE)
    schema = _load_schema(run_dir / SCHEMA_FILE, CatalogSchema)
    config = TrainingConfig.from_dict(yaml.safe_load((run_dir / CONFIG_FILE).read_text(encoding="utf-8")))
    model = keras.saving.load_model(run_dir / MODEL_FILE, compile=False, safe_mode=True)
    metrics_path = run_dir / METRICS_FILE
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    return LoadedRun(model=model, taxonomy=taxonomy, schema=schema, config=config, metrics=metrics, run_dir=run_dir)


# Modules that runs saved before the package layout moved (issue 20) name in their ``model.keras`` config,
# and their new homes. The new names are imported by string (importlib), never by an import statement:
# ``linnet.evaluation`` and ``linnet.inference`` sit above training, which must not import them directly.
MOVED_MODULES = {
    "linnet.text": "linnet.encoders.text_normalization",
    "linnet.optimizers": "linnet.training.optimizers",
    "linnet.keras_metrics": "linnet.evaluation.keras_metrics",
    "linnet.inference": "linnet.inference.classifier",
    "linnet.metrics": "linnet.evaluation.metrics",
    "linnet.training_regularizers": "linnet.training.regularizers",
}


def import_custom_layer_modules(model_path: Path) -> None:
    """Imports every ``linnet.*`` module a saved ``.keras`` file names, so its layers are registered.

    Plug-in encoders (BERT, USE, hub) are imported lazily by the registry; a saved model that uses one
    must import it before deserialising. A module that has moved since the run was saved (`MOVED_MODULES`)
    is imported under its new name; modules outside ``linnet`` are left to Keras.
    """
    try:
        with zipfile.ZipFile(model_path) as archive:
            config = json.loads(archive.read("config.json"))
    except (OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as error:
        raise ConfigError(f"{model_path} is not a readable .keras model: {error}") from None
    for module in sorted({MOVED_MODULES.get(module, module) for module in _linnet_modules(config)}):
        importlib.import_module(module)


def _linnet_modules(node) -> set[str]:
    """The ``linnet.*`` values of every ``module`` key in a saved model's config (nested dicts and lists)."""
    modules: set[str] = set()
    if isinstance(node, dict):
        module = node.get("module")
        if isinstance(module, str) and module.startswith("linnet."):
            modules.add(module)
        for value in node.values():
            modules |= _linnet_modules(value)
    elif isinstance(node, list):
        for value in node:
            modules |= _linnet_modules(value)
    return modules


@dataclasses.dataclass
class RunFiles:
    """What `write_run` writes: the trained model and everything needed to read it, plus its metrics."""

    config: Any
    schema: Any
    taxonomy: Any
    model: Any
    metrics: dict
    catalog_path: Any


def write_run(run_dir: Path, run_files: RunFiles) -> None:
    """Writes a finished run's files into ``run_dir``, each atomically; the model last but the README."""
    write_yaml_atomically(run_dir / CONFIG_FILE, run_files.config.to_dict())
    write_yaml_atomically(run_dir / SCHEMA_FILE, run_files.schema.to_dict())
    write_text_atomically(run_dir / TAXONOMY_FILE, _taxonomy_json(run_files.taxonomy))
    write_json_atomically(run_dir / METRICS_FILE, run_files.metrics)
    with atomic_path(run_dir / MODEL_FILE, suffix=".keras") as temporary:
        run_files.model.save(temporary)
    write_text_atomically(run_dir / README_FILE, run_readme(run_dir, run_files))


def _taxonomy_json(taxonomy) -> str:
    return json.dumps(taxonomy.to_json(), ensure_ascii=False, indent=1) + "\n"


def run_readme(run_dir: Path, run_files: RunFiles) -> str:
    """The run directory's README.md: what was trained on what, and how well."""
    config, schema, taxonomy, metrics = run_files.config, run_files.schema, run_files.taxonomy, run_files.metrics
    validation = metrics.get("validation", {})
    levels = "\n".join(f"| {key.split('_')[1]} | {value:.4f} |" if math.isfinite(value) else
                       f"| {key.split('_')[1]} | - (no validation product labelled this deep) |"
                       for key, value in validation.items())
    text_encoder = (config.model.text_encoder or {}).get("name", "none")
    image_encoder = (config.model.image_encoder or {}).get("name", "none")
    return f"""# LinNét run `{run_dir.name}`

- Catalog: `{run_files.catalog_path}` ({metrics['catalog_examples']:,} products; {metrics['train_examples']:,} train,
  {metrics['validation_examples']:,} validation)
- Taxonomy: {taxonomy.num_levels} levels, {len(taxonomy):,} nodes, fingerprint `{taxonomy.fingerprint()[:16]}`
- Text fields: {', '.join(schema.feature_text_fields)}; image: {'yes' if schema.has_image else 'no'}
- Encoders: text `{text_encoder}`, image `{image_encoder}`; wide path: {config.model.wide.enabled}
- Parameters: {metrics['parameters']:,}
- Epochs: {metrics['epochs_run']} in {metrics['fit_seconds']:.1f} s ({metrics['examples_per_second']:,.0f} examples/s,
  {metrics['steady_examples_per_second']:,.0f} after the first epoch); replicas: {metrics['replicas']}

## Validation accuracy per level

| level | accuracy |
|---|---|
{levels or '| - | (no validation split) |'}

Files: `config.yaml` (training config), `schema.yaml`, `taxonomy.json`, `model.keras`, `metrics.json`,
`mlflow.db` (open with `mlflow ui --backend-store-uri sqlite:///{Path(run_dir).resolve() / 'mlflow.db'}`),
`tensorboard/`.
"""


def closing_summary(metrics: dict, run_dir: Path) -> str:
    """The few lines printed when training ends."""
    validation = metrics.get("validation", {})
    accuracies = ", ".join(f"level {key.split('_')[1]} {value:.3f}" for key, value in validation.items()
                           if math.isfinite(value))
    unlabelled = [key.split("_")[1] for key, value in validation.items() if not math.isfinite(value)]
    if unlabelled:
        accuracies += f" (no validation product labelled at level {', '.join(unlabelled)})"
    skipped = (f"Skipped {metrics['bad_rows']:,} bad row(s); {metrics['unusable_images']:,} image(s) unusable.\n"
               if metrics.get("bad_rows") or metrics.get("unusable_images") else "")
    return skipped + (
        f"Trained {metrics['epochs_run']} epoch(s) in {metrics['fit_seconds']:.1f} s "
        f"({metrics['examples_per_second']:,.0f} examples/s) on {metrics['train_examples']:,} products.\n"
        f"Validation accuracy: {accuracies or 'no validation split'}.\n"
        f"Run written to {run_dir}"
    )


def _load_schema(path: Path, schema_class):
    for loader in ("load", "from_yaml_file", "from_file"):
        if hasattr(schema_class, loader):
            return getattr(schema_class, loader)(path)
    return schema_class(**yaml.safe_load(path.read_text(encoding="utf-8")))
