"""The Keras callbacks of a training run: backups for ``--resume``, checkpoints, early stopping, timing.

`run_callbacks` lists the run's own callbacks in the order ``fit`` calls them; `SeedStateBackup` and
`EpochTimer` are the two it defines itself (weight averaging lives in `linnet.training.regularizers`).

Example:
    >>> from linnet.training.callbacks import EpochTimer
    >>> EpochTimer(examples_per_epoch=1000).epoch_seconds
    []
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import keras
import numpy as np

from linnet.atomic_files import atomic_path
from linnet.model import names
from linnet.training.config import FitConfig
from linnet.training.regularizers import WeightAveraging
from linnet.training.run_directory import STATE_DIR

BACKUP_DIR = "backup"


def backup_dir(run_dir: Path) -> Path:
    """Where ``BackupAndRestore`` (and the state files beside it) keep an unfinished run."""
    return Path(run_dir) / STATE_DIR / BACKUP_DIR


def completed_epochs_of(run_dir: Path) -> int:
    """Epochs an unfinished run completed, from its ``BackupAndRestore`` metadata (0 when none)."""
    metadata = backup_dir(run_dir) / "training_metadata.json"
    try:
        return int(json.loads(metadata.read_text(encoding="utf-8"))["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def run_callbacks(fit: FitConfig, run_dir: Path, num_levels: int, has_validation: bool) -> list:
    """The callbacks ``training`` asks for: weight averaging, backup, checkpoints, early stopping, TensorBoard."""
    callbacks = []
    leaf_metric = f"val_{names.level_output(num_levels)}_accuracy"
    if fit.average_weights_from_epoch:
        # First: it swaps the averaged weights in before validation and the other callbacks' epoch end.
        state = backup_dir(run_dir) / "weight_average.npz" if fit.backup_and_restore else None
        callbacks.append(WeightAveraging(fit.average_weights_from_epoch, state))
    if fit.backup_and_restore:
        callbacks.append(keras.callbacks.BackupAndRestore(str(backup_dir(run_dir))))
        callbacks.append(SeedStateBackup(backup_dir(run_dir) / "seed_states.npz"))
    if fit.checkpoints:
        (run_dir / STATE_DIR / "checkpoints").mkdir(parents=True, exist_ok=True)
        callbacks.append(keras.callbacks.ModelCheckpoint(
            str(run_dir / STATE_DIR / "checkpoints" / "best.weights.h5"), save_weights_only=True,
            monitor=leaf_metric if has_validation else "loss", mode="max" if has_validation else "min",
            save_best_only=True,
        ))
    if fit.early_stopping_patience and has_validation:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor=leaf_metric, mode="max", patience=fit.early_stopping_patience, restore_best_weights=True,
        ))
    if fit.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(str(run_dir / "tensorboard"), update_freq="epoch", write_graph=False))
    return callbacks


class SeedStateBackup(keras.callbacks.Callback):
    """Backs up the random seed states of dropout (and other random) layers with ``BackupAndRestore``.

    Keras's weights files leave out ``SeedGenerator`` states, so a resumed run would draw other dropout
    masks than the uninterrupted one. The states are saved at every epoch end and restored at train begin.
    """

    def __init__(self, path: Path):
        super().__init__()
        self.path = Path(path)

    def _states(self) -> list:
        return [variable for variable in self.model.variables if "seed_generator_state" in variable.path]

    def on_train_begin(self, logs=None):
        if not self.path.is_file():
            return
        with np.load(self.path) as saved:
            values = [saved[f"state_{index}"] for index in range(len(saved.files))]
        states = self._states()
        if len(values) == len(states):
            for variable, value in zip(states, values):
                variable.assign(value)

    def on_epoch_end(self, epoch, logs=None):
        with atomic_path(self.path, suffix=".npz") as temporary:
            np.savez(temporary, **{f"state_{index}": keras.ops.convert_to_numpy(variable)
                                   for index, variable in enumerate(self._states())})


class EpochTimer(keras.callbacks.Callback):
    """Times each epoch, for examples/s in the epoch logs, the metrics and the closing summary.

    ``epoch_seconds`` is the wall time of the epoch, validation included; ``train_seconds`` leaves out the
    validation pass (timed between ``on_test_begin`` and ``on_test_end``), so examples/s is the rate of the
    training steps alone.
    """

    def __init__(self, examples_per_epoch: int):
        super().__init__()
        self.examples_per_epoch = examples_per_epoch
        self.epoch_seconds: list[float] = []
        self.train_seconds: list[float] = []
        self._started = 0.0
        self._validation_started = 0.0
        self._validation_seconds = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()
        self._validation_seconds = 0.0

    def on_test_begin(self, logs=None):
        self._validation_started = time.perf_counter()

    def on_test_end(self, logs=None):
        self._validation_seconds += time.perf_counter() - self._validation_started

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._started
        self.epoch_seconds.append(seconds)
        self.train_seconds.append(seconds - self._validation_seconds)
        if logs is not None:
            logs["examples_per_second"] = self.examples_per_epoch / max(self.train_seconds[-1], 1e-9)
