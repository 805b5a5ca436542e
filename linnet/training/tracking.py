"""MLflow tracking of training runs, to a SQLite store inside the run directory by default.

``MLFLOW_TRACKING_URI`` overrides the store (a server, another database). The plain file store is avoided
on purpose: recent MLflow refuses it unless ``MLFLOW_ALLOW_FILE_STORE`` is set.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any, Self

import keras

from linnet.atomic_files import atomic_path
from linnet.training.run_directory import MLFLOW_FILE

EXPERIMENT_NAME = "linnet"


def tracking_uri_for(run_dir: Path) -> str:
    """``$MLFLOW_TRACKING_URI`` if set, else ``sqlite:///RUN_DIR/mlflow.db`` (absolute path)."""
    configured = os.environ.get("MLFLOW_TRACKING_URI")
    if configured:
        return configured
    return f"sqlite:///{(Path(run_dir).resolve() / MLFLOW_FILE).as_posix()}"


def _template_path() -> Path:
    import mlflow  # lazy: MLflow takes seconds to import; only a run being tracked needs it

    root = os.environ.get("LINNET_CACHE_DIR")
    base = Path(root) if root else Path.home() / ".cache" / "linnet"
    return base / "mlflow" / f"empty-store-{mlflow.__version__}.db"


def seed_sqlite_store(database: Path) -> None:
    """Copies an empty, fully migrated MLflow SQLite store to ``database`` (when it does not exist yet).

    Creating a store runs MLflow's schema migrations, 5-10 s on a laptop CPU, for every run. The empty store
    of the installed MLflow version is built once under ``$LINNET_CACHE_DIR/mlflow`` (or
    ``~/.cache/linnet/mlflow``) and copied; any failure falls back to letting MLflow create the store.
    """
    database = Path(database)
    if database.exists():
        return
    try:
        template = _template_path()
        if not template.is_file():
            import mlflow  # lazy: see _template_path

            with atomic_path(template, suffix=".db") as scratch_db:  # SQLite takes the empty file as a new store
                client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{scratch_db.as_posix()}")
                client.search_experiments()  # creates the tables
                _dispose_engine(client)
        with atomic_path(database, suffix=".db") as temporary:
            shutil.copyfile(template, temporary)
    except Exception:  # noqa: BLE001  a cache problem must never stop a run: MLflow creates the store itself
        return


def _dispose_engine(client) -> None:
    store = getattr(getattr(client, "_tracking_client", None), "store", None)
    engine = getattr(store, "engine", None)
    if engine is not None:
        engine.dispose()


class MlflowTracker:
    """Opens one MLflow run and logs params, metrics and artifacts to it.

    Use as a context manager; ``keras_callback()`` returns a callback that logs every epoch's logs
    (losses, per-level metrics, level weights in force, learning rate).

    Example:
        >>> with MlflowTracker("runs/demo", run_name="demo") as tracker:  # doctest: +SKIP
        ...     tracker.log_params({"epochs": 3})
    """

    def __init__(self, run_dir, run_name: str | None = None):
        self.run_dir = Path(run_dir)
        self.run_name = run_name or self.run_dir.name
        self.tracking_uri = tracking_uri_for(self.run_dir)
        self.run_id: str | None = None
        self._client = None

    def __enter__(self) -> Self:
        import mlflow  # lazy: see _template_path

        # Alembic prints its migrations at INFO when a fresh SQLite store is created.
        logging.getLogger("alembic").setLevel(logging.WARNING)
        if self.tracking_uri == tracking_uri_for(self.run_dir) and not os.environ.get("MLFLOW_TRACKING_URI"):
            seed_sqlite_store(self.run_dir.resolve() / MLFLOW_FILE)
        self._client = mlflow.MlflowClient(tracking_uri=self.tracking_uri)
        experiment = self._client.get_experiment_by_name(EXPERIMENT_NAME)
        experiment_id = (
            experiment.experiment_id
            if experiment is not None
            else self._client.create_experiment(
                EXPERIMENT_NAME, artifact_location=(self.run_dir.resolve() / "mlruns").as_uri()
            )
        )
        run = self._client.create_run(experiment_id, run_name=self.run_name)
        self.run_id = run.info.run_id
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if self._client is not None and self.run_id is not None:
            self._client.set_terminated(self.run_id, status="FAILED" if exc_type else "FINISHED")

    def log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param  # lazy: see _template_path

        flat = _flatten(params)
        # MLflow caps a batch at 100 params and a value at 6,000 characters.
        items = [Param(key, str(value)[:6000]) for key, value in flat.items()]
        for start in range(0, len(items), 100):
            self._client.log_batch(self.run_id, params=items[start : start + 100])

    def set_tags(self, tags: dict[str, Any]) -> None:
        for key, value in tags.items():
            self._client.set_tag(self.run_id, key, str(value))

    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        from mlflow.entities import Metric  # lazy: see _template_path

        timestamp = int(time.time() * 1000)
        items = [
            Metric(key, float(value), timestamp, step or 0)
            for key, value in metrics.items()
            if _is_number(value)
        ]
        if items:
            self._client.log_batch(self.run_id, metrics=items)

    def log_artifact(self, path, artifact_path: str | None = None) -> None:
        path = Path(path)
        if path.is_dir():
            self._client.log_artifacts(self.run_id, str(path), artifact_path)
        elif path.is_file():
            self._client.log_artifact(self.run_id, str(path), artifact_path)

    def keras_callback(self):
        tracker = self

        class MlflowEpochLogger(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                tracker.log_metrics(dict(logs or {}), step=epoch)

        return MlflowEpochLogger()


def _flatten(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def _is_number(value) -> bool:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return False
    return not math.isnan(number)
