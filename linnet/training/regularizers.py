"""Training-time regularisers: epoch-end weight averaging, n-gram dropout, the wide path's own loss.

* `WeightAveraging` (``training.average_weights_from_epoch``): the model used for validation, early
  stopping, checkpoints and the saved model is the running mean of the end-of-epoch weights from epoch ``k``
  on (stochastic weight averaging, Izmailov et al. 2018, with one snapshot per epoch). Training itself
  continues from the raw weights. The work is a few host copies of the trainable weights per epoch, never
  anything inside the training step (a per-step EMA would be a dense update of the hashed tables).
* `ngram_dropout` (``training.ngram_dropout``): in the tf.data pipeline, drops each n-gram of a training
  product with probability ``rate`` and rescales the rest to the row's original L2 norm (the fastText /
  word-dropout regulariser): a model cannot lean on one n-gram of a title when it is missing a fifth of the
  time. Validation and prediction see every n-gram.
* `with_wide_outputs` (``training.wide_loss_weight``): the training model with each level's wide-path
  logits as an extra output, trained by a cross-entropy of its own (`copy_level_targets` gives it the
  level's labels); the saved model is unchanged.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from linnet.atomic_files import atomic_path
from linnet.model import names
from linnet.model.builder import wide_logits


class WeightAveraging(keras.callbacks.Callback):
    """Evaluates and keeps the mean of the end-of-epoch weights from epoch ``start_epoch`` (1-based) on.

    At the end of each epoch ``e >= start_epoch`` (before its validation pass) the trainable weights are
    folded into a running mean and the model is given the mean, so the validation metrics, `EarlyStopping`
    (which keeps the best such mean), `ModelCheckpoint` and `BackupAndRestore` all see the averaged model.
    The next epoch starts by putting the raw weights back, so the optimizer never trains the average.
    After training the model holds the mean of epochs ``start_epoch..last`` (or the best one early stopping
    restores). Memory: two host copies of the trainable weights.

    Args:
        start_epoch: first epoch (1-based) whose end-of-epoch weights enter the mean.
        state_path: where to keep the mean, its count and the raw weights after each epoch, so a run resumed
            by ``BackupAndRestore`` continues with the same mean and raw weights (None: no state file).
    """

    def __init__(self, start_epoch: int, state_path: Path | None = None):
        super().__init__()
        if start_epoch < 1:
            raise ValueError(f"start_epoch must be at least 1, got {start_epoch}")
        self.start_epoch = int(start_epoch)
        self.state_path = Path(state_path) if state_path is not None else None
        self.count = 0
        self.mean: list[np.ndarray] | None = None
        self._raw: list[np.ndarray] | None = None
        self._epoch = 0
        self._in_fit = False
        self._folded_this_epoch = False

    def _variables(self):
        return self.model.trainable_variables

    def _fold_and_swap(self) -> None:
        raw = [keras.ops.convert_to_numpy(variable) for variable in self._variables()]
        self.count += 1
        if self.mean is None:
            self.mean = [np.array(value, copy=True) for value in raw]
        else:
            for mean, value in zip(self.mean, raw):
                mean += (value - mean) / self.count
        self._raw = raw
        for variable, mean in zip(self._variables(), self.mean):
            variable.assign(mean)
        self._folded_this_epoch = True

    def on_train_begin(self, logs=None):
        self._in_fit = True
        if self.state_path is not None and self.state_path.is_file():
            # A resumed run: BackupAndRestore loaded the averaged weights; the next epoch starts from the raw.
            with np.load(self.state_path) as saved:
                self.count = int(saved["count"])
                size = len(self._variables())
                self.mean = [saved[f"mean_{index}"] for index in range(size)]
                self._raw = [saved[f"raw_{index}"] for index in range(size)]

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._folded_this_epoch = False
        if self._raw is not None:
            for variable, value in zip(self._variables(), self._raw):
                variable.assign(value)
            self._raw = None

    def on_test_begin(self, logs=None):
        if self._in_fit and self._epoch + 1 >= self.start_epoch and not self._folded_this_epoch:
            self._fold_and_swap()

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 < self.start_epoch:
            return
        if not self._folded_this_epoch:  # no validation pass this epoch
            self._fold_and_swap()
        if self.state_path is not None:
            arrays = {"count": np.asarray(self.count)}
            arrays.update({f"mean_{index}": value for index, value in enumerate(self.mean)})
            arrays.update({f"raw_{index}": value for index, value in enumerate(self._raw)})
            with atomic_path(self.state_path, suffix=".npz") as temporary:
                np.savez(temporary, **arrays)

    def on_train_end(self, logs=None):
        # The model holds the last mean (EarlyStopping may then restore a better one); the raw weights go.
        self._in_fit = False
        self._raw = None


def ngram_dropout(rate: float, seed: int, weights_key: str):
    """A ``tf.data`` transformation dropping each n-gram of a featurized batch with probability ``rate``.

    The batches are ``(features, labels[, sample_weights])`` with ``features[weights_key]`` a ``[B, N]``
    float tensor of n-gram weights (0 on padding). A dropped n-gram's weight becomes 0 (its id stays, and
    contributes nothing to the embedding bag or the wide path); the kept weights are rescaled so each row
    keeps its original L2 norm. A row that would lose every n-gram keeps them all. Seeded: the same
    seed gives the same masks epoch by epoch (each new iterator draws new ones, like the shuffle).

    Returns:
        ``dataset -> dataset``, for ``dataset.apply``.
    """
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"ngram dropout rate must be in [0, 1), got {rate}")

    def drop(batch_seed, batch):
        features, *rest = batch
        weights = features[weights_key]
        keep = tf.random.stateless_uniform(tf.shape(weights), seed=tf.stack([batch_seed, 0])) >= rate
        kept = tf.where(keep, weights, tf.zeros_like(weights))
        before = tf.norm(weights, axis=-1, keepdims=True)
        after = tf.norm(kept, axis=-1, keepdims=True)
        scaled = kept * tf.math.divide_no_nan(before, after)
        dropped = tf.where(after > 0.0, scaled, weights)
        features = dict(features)
        features[weights_key] = dropped
        return (features, *rest)

    def apply(dataset):
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        return tf.data.Dataset.zip(seeds, dataset).map(drop, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    return apply


def wide_output_name(level: int) -> str:
    """Key of level ``level``'s wide-path logits among the training model's outputs (``training.wide_loss_weight``)."""
    return f"wide_{level}"


def with_wide_outputs(trained: keras.Model, num_levels: int) -> keras.Model | None:
    """``trained`` plus each level's wide-path logits as outputs ``wide_k`` (None: the model has no wide path).

    With ``training.wide_loss_weight`` these outputs get a cross-entropy of their own, so the wide path learns
    as a linear classifier by itself even after the deep heads fit the training set (when the summed logits'
    loss, and so the wide path's gradient, is near zero). The returned model shares every layer with
    ``trained``; the saved model is unchanged (it has no ``wide_k`` outputs).
    """
    wide = {wide_output_name(level): wide_logits(trained, level) for level in range(1, num_levels + 1)}
    wide = {name: tensor for name, tensor in wide.items() if tensor is not None}  # an ArcFace leaf has none
    if not wide:
        return None
    outputs = {**trained.output, **wide}
    return keras.Model(inputs=trained.input, outputs=outputs, name=f"{trained.name}_with_wide")


def wide_levels(model: keras.Model, num_levels: int) -> list[int]:
    """The levels whose wide logits are outputs of ``model`` (see `with_wide_outputs`)."""
    return [level for level in range(1, num_levels + 1) if wide_output_name(level) in model.output]


def copy_level_targets(levels):
    """A ``tf.data`` map giving each ``wide_k`` output (k in ``levels``) the labels and sample weights of ``level_k``."""
    levels = list(levels)

    def copy(features, labels, *rest):
        labels = dict(labels)
        labels.update({wide_output_name(level): labels[names.level_output(level)] for level in levels})
        if rest:
            weights = dict(rest[0])
            weights.update({wide_output_name(level): weights[names.level_output(level)] for level in levels})
            return features, labels, weights
        return features, labels

    return copy
