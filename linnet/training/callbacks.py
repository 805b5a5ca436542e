"""The Keras callbacks of a training run: backups for ``--resume``, checkpoints, early stopping, timing.

`run_callbacks` lists the run's own callbacks in the order ``fit`` calls them; `SeedStateBackup`,
`EpochTimer`, `TreeAccuracy` (the whole-tree quantity early stopping and the kept checkpoint watch) and
`TreeEarlyStopping` (which says why training stopped) are the ones it defines itself (weight averaging lives in
`linnet.training.regularizers`).

Example:
    >>> from linnet.training.callbacks import EpochTimer
    >>> EpochTimer(examples_per_epoch=1000).epoch_seconds
    []
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import numpy as np

from linnet.atomic_files import atomic_path
from linnet.model import names
from linnet.training.config import FitConfig
from linnet.training.regularizers import WeightAveraging
from linnet.training.run_directory import STATE_DIR

BACKUP_DIR = "backup"
#: What early stopping and the kept checkpoint monitor when there is a validation split (`TreeAccuracy`).
TREE_METRIC = "val_tree_accuracy"


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


def run_callbacks(fit: FitConfig, run_dir: Path, num_levels: int, has_validation: bool, *,
                  labelled_per_level: Sequence[int] | None = None, report: Callable[[str], None] | None = None) -> list:
    """The callbacks ``training`` asks for: weight averaging, backup, the whole-tree validation accuracy,
    checkpoints, early stopping, TensorBoard.

    With a validation split, checkpoints and early stopping monitor `TREE_METRIC` (`TreeAccuracy` over
    ``labelled_per_level``, the validation products labelled at each level; None: every level counts the same),
    so a ragged tree whose deepest level labels a handful of products is not judged by that level alone.
    ``report`` receives early stopping's one-line account of why training stopped and which epoch it kept.
    """
    callbacks = []
    if fit.average_weights_from_epoch:
        # First: it swaps the averaged weights in before validation and the other callbacks' epoch end.
        state = backup_dir(run_dir) / "weight_average.npz" if fit.backup_and_restore else None
        callbacks.append(WeightAveraging(fit.average_weights_from_epoch, state))
    if fit.backup_and_restore:
        callbacks.append(keras.callbacks.BackupAndRestore(str(backup_dir(run_dir))))
        callbacks.append(SeedStateBackup(backup_dir(run_dir) / "seed_states.npz"))
    if has_validation:
        # Before the checkpoint and early stopping: they read what it adds to the epoch's logs.
        callbacks.append(TreeAccuracy(labelled_per_level if labelled_per_level is not None else [1] * num_levels))
    if fit.checkpoints:
        (run_dir / STATE_DIR / "checkpoints").mkdir(parents=True, exist_ok=True)
        callbacks.append(keras.callbacks.ModelCheckpoint(
            str(run_dir / STATE_DIR / "checkpoints" / "best.weights.h5"), save_weights_only=True,
            monitor=TREE_METRIC if has_validation else "loss", mode="max" if has_validation else "min",
            save_best_only=True,
        ))
    if fit.early_stopping_patience and has_validation:
        callbacks.append(TreeEarlyStopping(patience=fit.early_stopping_patience, report=report))
    if fit.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(str(run_dir / "tensorboard"), update_freq="epoch", write_graph=False))
    return callbacks


class TreeAccuracy(keras.callbacks.Callback):
    """Adds `TREE_METRIC` to the epoch logs: every level's validation accuracy weighted by the validation
    products labelled at that level, i.e. the share of all (product, level) labels the heads get right.

    With stop classes (`linnet.model.stops`) a product's label one level below its last node is its "ends
    here" column, so ending a path at the right depth counts too. A level without labelled validation
    products has weight 0 (its accuracy is undefined), so no single thinly labelled level decides.

    Example:
        >>> logs = {"val_level_1_accuracy": 1.0, "val_level_2_accuracy": 0.5}
        >>> TreeAccuracy([30, 10]).on_epoch_end(0, logs)
        >>> logs[TREE_METRIC]
        0.875
    """

    def __init__(self, labelled_per_level: Sequence[int]):
        super().__init__()
        self.labelled_per_level = [int(count) for count in labelled_per_level]

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        pairs = [(count, logs.get(f"val_{names.level_output(level)}_accuracy"))
                 for level, count in enumerate(self.labelled_per_level, start=1)]
        pairs = [(count, float(value)) for count, value in pairs if count > 0 and value is not None]
        if pairs:
            logs[TREE_METRIC] = sum(count * value for count, value in pairs) / sum(count for count, _ in pairs)


class TreeEarlyStopping(keras.callbacks.EarlyStopping):
    """Early stopping on `TREE_METRIC` (best weights restored) that says why training ended: ``reason`` after
    ``fit``, also passed to ``report`` (the trainer prints it)."""

    def __init__(self, patience: int, report: Callable[[str], None] | None = None):
        super().__init__(monitor=TREE_METRIC, mode="max", patience=patience, restore_best_weights=True)
        self.report = report
        self.reason: str | None = None
        self._epochs_seen = 0

    def on_epoch_end(self, epoch, logs=None):
        self._epochs_seen = epoch + 1
        super().on_epoch_end(epoch, logs)

    def on_train_end(self, logs=None):
        super().on_train_end(logs)
        if self.best is None:
            return
        if self.stopped_epoch > 0:
            why = (f"early stopping after epoch {self.stopped_epoch + 1}: {self.monitor} did not improve for "
                   f"{self.patience} epoch(s)")
        else:
            why = f"trained every epoch ({self._epochs_seen})"
        self.reason = f"{why}; kept the weights of epoch {self.best_epoch + 1} ({self.monitor} {self.best:.4f})"
        if self.report is not None:
            self.report(self.reason)


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
