"""Small layers of the LinNét model graph (each round-trips through ``get_config``)."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops


@keras.saving.register_keras_serializable(package="linnet")
class PresenceGate(keras.layers.Layer):
    """Multiplies a ``[B, D]`` vector by a ``[B]`` presence flag, so a missing image contributes nothing.

    Example:
        >>> import numpy as np
        >>> PresenceGate()([np.ones((2, 3), "float32"), np.array([1.0, 0.0], "float32")]).numpy().tolist()
        [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]
    """

    def call(self, inputs):
        vectors, presence = inputs
        presence = ops.cast(ops.reshape(presence, (-1, 1)), vectors.dtype)
        return vectors * presence

    def compute_output_shape(self, input_shape):
        return input_shape[0]


@keras.saving.register_keras_serializable(package="linnet")
class L2Normalize(keras.layers.Layer):
    """L2-normalises the last axis in float32 (stable under mixed precision).

    Example:
        >>> import numpy as np
        >>> L2Normalize()(np.array([[3.0, 4.0]], "float32")).numpy().tolist()
        [[0.6000000238418579, 0.800000011920929]]
    """

    def __init__(self, epsilon: float = 1e-12, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def call(self, inputs):
        inputs = ops.cast(inputs, "float32")
        norm = ops.sqrt(ops.maximum(ops.sum(ops.square(inputs), axis=-1, keepdims=True), self.epsilon))
        return inputs / norm

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="linnet")
class HashedLinear(keras.layers.Layer):
    """A linear layer over hashed n-gram ids: ``(ids [B, L], weights [B, L]) -> [B, units]``.

    The wide path of the model: every n-gram bucket has its own weight per class, like a linear model over
    L2-normalised sublinear TF features (``sqrtn``: each row's weights are divided by their L2 norm). The
    batch's ids are de-duplicated before the table is read, and the rows are combined with a sparse x dense
    matmul, so both the forward pass and the gradient scale with the number of *distinct* buckets in the
    batch (a few thousand) rather than with the number of (product, n-gram) pairs (tens of thousands). The
    table's gradient is a ``tf.IndexedSlices`` over those distinct rows (train with
    `linnet.encoders.LazyAdamW`). Ids fold modulo ``input_dim``; padding has weight 0.

    Args:
        input_dim: rows of the table (buckets).
        units: outputs (classes of a level).
        normalize: divide each row's weights by their L2 norm (``sqrtn`` pooling).
        kernel_initializer: initializer of the table (zeros: the wide path starts neutral).
        **kwargs: standard Keras layer arguments.

    Example:
        >>> import numpy as np
        >>> layer = HashedLinear(8, 2, kernel_initializer="ones")
        >>> layer(np.array([[1, 3, 0]]), np.array([[3.0, 4.0, 0.0]], "float32")).numpy().tolist()
        [[1.4, 1.4]]
    """

    def __init__(self, input_dim: int, units: int, normalize: bool = True, kernel_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self.input_dim = int(input_dim)
        self.units = int(units)
        self.normalize = bool(normalize)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.supports_jit = False

    def build(self, ids_shape=None, weights_shape=None):
        if self.built:
            return
        self.kernel = self.add_weight(
            name="kernel", shape=(self.input_dim, self.units), initializer=self.kernel_initializer,
            dtype="float32", autocast=False,
        )
        self.built = True

    def call(self, ids, weights):
        weights = tf.cast(weights, tf.float32)
        present = weights > 0
        positions = tf.where(present)
        rows = positions[:, 0]
        flat_ids = tf.boolean_mask(tf.cast(ids, tf.int64), present) % self.input_dim
        flat_weights = tf.boolean_mask(weights, present)
        batch_size = tf.shape(ids, out_type=tf.int64)[0]
        if self.normalize:
            norms = tf.sqrt(tf.math.unsorted_segment_sum(tf.square(flat_weights), rows, batch_size))
            flat_weights = flat_weights / tf.gather(norms, rows)
        distinct_ids, column = tf.unique(flat_ids, out_idx=tf.int64)
        matrix = tf.SparseTensor(
            tf.stack([rows, column], axis=1), flat_weights, tf.stack([batch_size, tf.size(distinct_ids, out_type=tf.int64)])
        )
        table_rows = tf.gather(self.kernel.value, distinct_ids)
        return tf.cast(tf.sparse.sparse_dense_matmul(matrix, table_rows), self.compute_dtype)

    def compute_output_spec(self, ids, weights):
        return keras.KerasTensor((ids.shape[0], self.units), dtype=self.compute_dtype)

    def get_config(self):
        return {
            **super().get_config(),
            "input_dim": self.input_dim,
            "units": self.units,
            "normalize": self.normalize,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }
