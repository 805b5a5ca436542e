"""ArcFace (additive angular margin) for the leaf level: a cosine head, its loss and its inference probabilities.

API (stable; the model builder wires it for ``leaf_head: arcface``):

- ``CosineSimilarityHead(units)``: layer ``[B, D] -> [B, units]`` cosines between the L2-normalised input
  and the L2-normalised columns of its kernel (one unit vector per class, the class "centre").
- ``ArcFaceLoss(scale=30.0, margin=0.2, easy_margin=False, level_weight=1.0)``: Keras loss on integer
  labels ``[B]`` (``-1`` = no label, masked out) and the head's cosines ``[B, n]``:
  ``CE(y, softmax(scale * z))`` with ``z_j = cos(theta_j)`` for ``j != y`` and ``z_y = cos(theta_y + margin)``.
  Once ``theta_y + margin`` would pass pi, ``cos(theta + m)`` stops decreasing in theta, so the target logit is
  replaced by the standard (InsightFace) fallback ``cos(theta_y) - margin * sin(margin)``, which keeps
  decreasing; with ``easy_margin=True`` the margin is applied only where ``cos(theta_y) > 0``.
- ``arcface_probabilities(cosines, scale)`` / ``ArcFaceProbabilities(scale)`` layer: inference
  probabilities ``softmax(scale * cos)`` (no margin), so the leaf output keeps the model contract of
  per-level probabilities.

Wiring (what ``build_model`` does for the leaf level, with the names of `linnet.model.names`)::

    cosines = CosineSimilarityHead(n_leaf, name=names.cosine_output(L))(features)  # "level_L_cosine"
    probabilities = ArcFaceProbabilities(scale, name=names.level_output(L))(cosines)  # "level_L"
    # loss: ArcFaceLoss on the cosine head's output, nothing on "level_L" (metrics only)

Example:
    >>> import numpy as np
    >>> head = CosineSimilarityHead(3)
    >>> cosines = head(np.array([[1.0, 0.0], [0.0, 2.0]], "float32"))
    >>> tuple(cosines.shape), bool(np.all(np.abs(cosines.numpy()) <= 1.0 + 1e-6))
    ((2, 3), True)
    >>> loss = ArcFaceLoss(scale=16.0, margin=0.3)
    >>> bool(loss(np.array([0, -1]), cosines) > 0)
    True
"""

from __future__ import annotations

import math

import keras
from keras import ops

from linnet.errors import ConfigError

# Keeps d/dx sqrt(1 - x^2) finite at cos = +-1 (a product lying exactly on its class centre).
_SINE_FLOOR = 1e-7


def _l2_normalize(values, axis: int, epsilon: float):
    squared = ops.sum(ops.square(values), axis=axis, keepdims=True)
    return values * ops.rsqrt(ops.maximum(squared, epsilon))


def _check_arcface_parameters(scale: float, margin: float) -> None:
    if not (isinstance(scale, (int, float)) and scale > 0 and math.isfinite(scale)):
        raise ConfigError(f"arcface_scale must be a positive number, got {scale!r}")
    if not (isinstance(margin, (int, float)) and 0 <= margin < math.pi / 2):
        raise ConfigError(f"arcface_margin must be in [0, pi/2) radians, got {margin!r}")


@keras.saving.register_keras_serializable(package="linnet")
class CosineSimilarityHead(keras.layers.Layer):
    """Cosine similarity of the L2-normalised input with each class's L2-normalised weight vector.

    Args:
        units: Number of classes.
        kernel_initializer: Initialiser of the ``[D, units]`` class vectors.
        kernel_regularizer: Optional regulariser of the class vectors.
        epsilon: Floor of the squared norm when normalising (a zero input gives zero cosines, not NaN).

    Returns:
        float32 ``[B, units]`` in ``[-1, 1]``.

    Example:
        >>> import numpy as np
        >>> head = CosineSimilarityHead(4)
        >>> head(np.ones((2, 8), "float32")).shape
        TensorShape([2, 4])
    """

    def __init__(self, units: int, kernel_initializer="glorot_uniform", kernel_regularizer=None,
                 epsilon: float = 1e-12, **kwargs):
        # Cosines and the margin are computed in float32 even under mixed precision: cos(theta + m) of
        # float16 values near 1 loses the margin entirely.
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if int(units) < 1:
            raise ConfigError(f"CosineSimilarityHead needs units >= 1, got {units!r}")
        self.units = int(units)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.epsilon = epsilon

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel", shape=(int(input_shape[-1]), self.units),
            initializer=self.kernel_initializer, regularizer=self.kernel_regularizer,
        )

    def call(self, inputs):
        inputs = ops.cast(inputs, self.compute_dtype)
        normalized_inputs = _l2_normalize(inputs, axis=-1, epsilon=self.epsilon)
        normalized_kernel = _l2_normalize(self.kernel, axis=0, epsilon=self.epsilon)
        return ops.clip(ops.matmul(normalized_inputs, normalized_kernel), -1.0, 1.0)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        config = super().get_config()
        config.update({
            "units": self.units,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            "epsilon": self.epsilon,
        })
        return config


def arcface_logits(labels, cosines, scale: float, margin: float, easy_margin: bool = False):
    """``scale * z`` where ``z`` is ``cosines`` with the angular margin added on each row's target class.

    Rows whose label is negative (no label) get no margin. ``labels`` int ``[B]``, ``cosines`` ``[B, n]``.
    """
    cosines = ops.cast(cosines, "float32")
    labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
    num_classes = ops.shape(cosines)[-1]
    target = ops.one_hot(ops.maximum(labels, 0), num_classes, dtype="float32")
    target = target * ops.expand_dims(ops.cast(ops.greater_equal(labels, 0), "float32"), -1)
    sines = ops.sqrt(ops.clip(1.0 - ops.square(cosines), _SINE_FLOOR, 1.0))
    with_margin = cosines * math.cos(margin) - sines * math.sin(margin)
    if easy_margin:
        with_margin = ops.where(cosines > 0, with_margin, cosines)
    else:
        # theta + m > pi  <=>  cos(theta) < cos(pi - m): past that, cos(theta + m) would rise again.
        with_margin = ops.where(cosines > math.cos(math.pi - margin), with_margin,
                                cosines - margin * math.sin(margin))
    adjusted = target * with_margin + (1.0 - target) * cosines
    return scale * adjusted


@keras.saving.register_keras_serializable(package="linnet")
class ArcFaceLoss(keras.losses.Loss):
    """Additive angular margin loss on a `CosineSimilarityHead`'s cosines; labels of ``-1`` add nothing.

    ``loss_i = level_weight * [y_i >= 0] * CE(y_i, softmax(scale * z_i))`` with the margin added to the
    angle of the target class only (see the module docstring for the theta + m > pi case).

    Args:
        scale: ``s``, the inverse temperature of the softmax (ArcFace paper: 64; 16-32 for small data).
        margin: ``m`` in radians, in ``[0, pi/2)`` (paper: 0.5; 0.1-0.3 is gentler).
        easy_margin: Apply the margin only where ``cos(theta_y) > 0`` instead of the fallback.
        level_weight: Multiplier of this level's loss (float or ``keras.Variable``), as for the other levels.
        name: Loss name.
        reduction: Keras reduction.

    Example:
        >>> import numpy as np
        >>> loss = ArcFaceLoss(scale=10.0, margin=0.0)
        >>> round(float(loss(np.array([0]), np.array([[0.0, 0.0]], "float32"))), 4)  # ln 2
        0.6931
    """

    def __init__(self, scale: float = 30.0, margin: float = 0.2, easy_margin: bool = False,
                 level_weight=1.0, name: str = "arcface_loss", reduction: str = "sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        _check_arcface_parameters(scale, margin)
        self.scale = float(scale)
        self.margin = float(margin)
        self.easy_margin = bool(easy_margin)
        self.level_weight = level_weight

    def call(self, y_true, y_pred):
        labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
        logits = arcface_logits(labels, y_pred, self.scale, self.margin, self.easy_margin)
        cross_entropy = keras.losses.sparse_categorical_crossentropy(ops.maximum(labels, 0), logits, from_logits=True)
        mask = ops.cast(ops.greater_equal(labels, 0), "float32")
        weight = ops.cast(ops.convert_to_tensor(self.level_weight), "float32")
        return cross_entropy * mask * weight

    def get_config(self):
        config = super().get_config()
        level_weight = self.level_weight
        if not isinstance(level_weight, (int, float)):
            level_weight = float(ops.convert_to_numpy(level_weight))
        config.update({"scale": self.scale, "margin": self.margin, "easy_margin": self.easy_margin,
                       "level_weight": level_weight})
        return config


def arcface_probabilities(cosines, scale: float):
    """Inference probabilities of an ArcFace head: ``softmax(scale * cosines)`` (no margin).

    Example:
        >>> import numpy as np
        >>> probabilities = arcface_probabilities(np.array([[1.0, 0.0]], "float32"), scale=2.0)
        >>> round(float(probabilities[0, 0]), 4)
        0.8808
    """
    return ops.softmax(float(scale) * ops.cast(cosines, "float32"), axis=-1)


@keras.saving.register_keras_serializable(package="linnet")
class ArcFaceProbabilities(keras.layers.Layer):
    """Layer form of `arcface_probabilities`, for the leaf ``level_L`` output of the model graph.

    Example:
        >>> import numpy as np
        >>> ArcFaceProbabilities(scale=2.0)(np.zeros((1, 4), "float32")).numpy().tolist()
        [[0.25, 0.25, 0.25, 0.25]]
    """

    def __init__(self, scale: float = 30.0, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        _check_arcface_parameters(scale, 0.0)
        self.scale = float(scale)

    def call(self, cosines):
        return arcface_probabilities(cosines, self.scale)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config["scale"] = self.scale
        return config
