"""Run directories: ``linnet train --out RUN_DIR`` writes one, ``load_run`` reads it back.

A run directory holds ``config.yaml``, ``schema.yaml``, ``taxonomy.json``, ``model.keras``,
``metrics.json``, ``mlflow.db`` and ``README.md`` (see ``docs/architecture.md``). Every file is written
atomically (temporary file, then ``os.replace``) so a killed run never leaves a half-written file.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from linnet.errors import ConfigError

CONFIG_FILE = "config.yaml"
SCHEMA_FILE = "schema.yaml"
TAXONOMY_FILE = "taxonomy.json"
MODEL_FILE = "model.keras"
METRICS_FILE = "metrics.json"
MLFLOW_FILE = "mlflow.db"
README_FILE = "README.md"
# Working state of an unfinished run (BackupAndRestore, checkpoints); its presence marks a resumable run.
STATE_DIR = "state"


def write_text_atomically(path: Path, text: str) -> None:
    """Writes ``text`` to ``path`` through a temporary file in the same directory."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False, encoding="utf-8") as handle:
        handle.write(text)
        temporary = handle.name
    os.replace(temporary, path)


def write_json_atomically(path: Path, payload: Any) -> None:
    write_text_atomically(path, json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")


def write_yaml_atomically(path: Path, payload: Any) -> None:
    import yaml

    write_text_atomically(path, yaml.safe_dump(payload, sort_keys=False, allow_unicode=True))


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
        (``linnet.training.trainer.TrainingConfig``) and ``metrics`` (dict). It also unpacks as
        ``model, taxonomy, schema, config = load_run(run_dir)``.

    Raises:
        ConfigError: a file of the run is missing.

    Example:
        >>> run = load_run("runs/fashion")  # doctest: +SKIP
        >>> probabilities = run.model.predict({"title": ["red shirt"], "attributes": [""]})  # doctest: +SKIP
    """
    import yaml

    run_dir = Path(run_dir)
    for name in (CONFIG_FILE, SCHEMA_FILE, TAXONOMY_FILE, MODEL_FILE):
        if not (run_dir / name).is_file():
            raise ConfigError(f"{run_dir} is not a finished run directory: {name} is missing")
    import keras

    import_custom_layer_modules(run_dir / MODEL_FILE)
    from linnet.data import CatalogSchema
    from linnet.taxonomy import Taxonomy
    from linnet.training.config import TrainingConfig

    taxonomy = Taxonomy.load(run_dir / TAXONOMY_FILE)
    schema = _load_schema(run_dir / SCHEMA_FILE, CatalogSchema)
    config = TrainingConfig.from_dict(yaml.safe_load((run_dir / CONFIG_FILE).read_text(encoding="utf-8")))
    model = keras.saving.load_model(run_dir / MODEL_FILE, compile=False, safe_mode=True)
    metrics_path = run_dir / METRICS_FILE
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    return LoadedRun(model=model, taxonomy=taxonomy, schema=schema, config=config, metrics=metrics, run_dir=run_dir)


def import_custom_layer_modules(model_path: Path) -> None:
    """Imports every ``linnet.*`` module a saved ``.keras`` file names, so its layers are registered.

    Plug-in encoders (BERT, USE, hub) are imported lazily by the registry; a saved model that uses one
    must import it before deserialising.
    """
    import importlib
    import zipfile

    import linnet.encoders
    import linnet.model  # noqa: F401

    try:
        with zipfile.ZipFile(model_path) as archive:
            config = json.loads(archive.read("config.json"))
    except (OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as error:
        raise ConfigError(f"{model_path} is not a readable .keras model: {error}") from None
    modules: set[str] = set()

    def collect(node) -> None:
        if isinstance(node, dict):
            module = node.get("module")
            if isinstance(module, str) and module.startswith("linnet."):
                modules.add(module)
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect(config)
    for module in sorted(modules):
        importlib.import_module(module)


def _load_schema(path: Path, schema_class):
    for loader in ("load", "from_yaml_file", "from_file"):
        if hasattr(schema_class, loader):
            return getattr(schema_class, loader)(path)
    import yaml

    return schema_class(**yaml.safe_load(path.read_text(encoding="utf-8")))
