"""Masked per-level cross-entropy whose level weight can change during training without recompiling."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="linnet")
class MaskedSparseCategoricalCrossentropy(keras.losses.Loss):
    """Sparse categorical cross-entropy that ignores labels of ``-1`` and scales by a level weight.

    ``loss_i = level_weight * [y_i >= 0] * CE(y_i, p_i)``; Keras then multiplies by the sample weight (the
    class weight from the catalog, 0 where the label is -1) and averages over the batch. Products with no
    label at a level therefore add nothing to that level's loss or gradient, even without sample weights.

    ``level_weight`` may be a float or a ``keras.Variable``; with a variable, the weight in force is whatever
    the variable holds at each step, so a schedule (``LevelWeightScheduler``) can move weight between levels
    between epochs without recompiling the model.

    Args:
        level_weight: multiplier of this level's loss (float or non-trainable scalar variable).
        from_logits: whether predictions are logits rather than probabilities.
        label_smoothing: ``eps`` in ``(1 - eps) * CE(y, p) + eps * mean_k(-log p_k)`` (the cross-entropy
            against a target that puts ``eps`` spread over every class); 0 is plain cross-entropy.
        name: loss name.
        reduction: Keras reduction (default: sum over batch size).

    Example:
        >>> import numpy as np
        >>> loss = MaskedSparseCategoricalCrossentropy()
        >>> round(float(loss(np.array([0, -1]), np.array([[0.5, 0.5], [0.9, 0.1]]))), 4)
        0.3466
    """

    def __init__(
        self,
        level_weight=1.0,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        name: str = "masked_sparse_categorical_crossentropy",
        reduction: str = "sum_over_batch_size",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if not 0.0 <= float(label_smoothing) < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.level_weight = level_weight
        self.from_logits = from_logits
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
        mask = ops.cast(ops.greater_equal(labels, 0), y_pred.dtype)
        safe_labels = ops.maximum(labels, 0)
        cross_entropy = keras.losses.sparse_categorical_crossentropy(
            safe_labels, y_pred, from_logits=self.from_logits
        )
        if self.label_smoothing:
            log_probabilities = (ops.log_softmax(y_pred, axis=-1) if self.from_logits
                                 else ops.log(ops.clip(y_pred, keras.config.epsilon(), 1.0)))
            uniform = -ops.mean(log_probabilities, axis=-1)
            cross_entropy = (1.0 - self.label_smoothing) * cross_entropy + self.label_smoothing * uniform
        weight = ops.cast(ops.convert_to_tensor(self.level_weight), y_pred.dtype)
        return cross_entropy * mask * weight

    def get_config(self):
        config = super().get_config()
        level_weight = self.level_weight
        if not isinstance(level_weight, (int, float)):
            level_weight = float(ops.convert_to_numpy(level_weight))
        config.update({"level_weight": level_weight, "from_logits": self.from_logits,
                       "label_smoothing": self.label_smoothing})
        return config


@keras.saving.register_keras_serializable(package="linnet")
class MaskedSparseCategoricalAccuracy(keras.metrics.Mean):
    """Accuracy over the products that have a label at this level (labels of ``-1`` are skipped).

    Sample weights (class weights) are ignored on purpose: the reported accuracy is the plain fraction of
    labelled products whose top class is right, whatever weighting the loss uses.

    Example:
        >>> import numpy as np
        >>> metric = MaskedSparseCategoricalAccuracy()
        >>> metric.update_state(np.array([1, -1, 0]), np.array([[0.2, 0.8], [0.9, 0.1], [0.3, 0.7]]))
        >>> float(metric.result())
        0.5
    """

    def __init__(self, name: str = "accuracy", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
        predicted = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
        mask = ops.cast(ops.greater_equal(labels, 0), "float32")
        correct = ops.cast(ops.equal(labels, predicted), "float32")
        return super().update_state(correct, sample_weight=mask)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}
