"""AdamW that updates only the rows a batch touched when a gradient is a ``tf.IndexedSlices``.

Why this exists: Keras 3.15's ``Adam``/``AdamW`` ``update_step`` computes ``gradient - m`` with the
optimizer's dense slot ``m``, which turns a sparse gradient into a dense ``[rows, D]`` tensor and then
assigns the whole table and both slots every step; ``AdamW`` also decays every row of every variable
(``variable.assign_sub(variable * wd * lr)`` in ``backend/tensorflow/optimizer.py``). For a hashed n-gram
table of 2**18 x 64 that is three full passes over 64 MB per step, however few rows the batch used.
(Keras's TensorFlow optimizer does scatter when the *value* it assigns is an ``IndexedSlices``, which
is what this class relies on; plain ``SGD`` without momentum therefore is already sparse.)

`LazyAdamW` keeps Keras's AdamW for dense gradients and, for ``tf.IndexedSlices`` gradients, follows
"lazy Adam" (TensorFlow Addons' ``LazyAdam``, fastText-style training): duplicate indices are summed, the
moment rows of those indices are gathered, updated and scattered back, the decoupled weight decay is
applied to those rows only, and the variable rows are scatter-subtracted. Rows not in the batch keep
their moments and values untouched, which is the usual approximation for sparse features (a row's
moments decay only when it is seen).

Example:
    >>> import keras
    >>> from linnet.encoders import LazyAdamW
    >>> model = keras.Sequential([keras.Input((3,), dtype="int32"), keras.layers.Embedding(1000, 8),
    ...                           keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(2)])
    >>> model.compile(optimizer=LazyAdamW(learning_rate=1e-3), loss="mse")
"""

from __future__ import annotations

import keras
import tensorflow as tf


def _aggregate(gradient: tf.IndexedSlices) -> tuple[tf.Tensor, tf.Tensor]:
    """Unique indices and the summed gradient rows of each (a row gathered twice gets both parts)."""
    unique_indices, positions = tf.unique(gradient.indices)
    # `EmbeddingBag` already emits unique indices (tf.unique keeps first-occurrence order, so then
    # unique_indices == indices); skip the [rows, D] segment sum in that case.
    summed = tf.cond(
        tf.size(unique_indices) == tf.size(gradient.indices),
        lambda: gradient.values,
        lambda: tf.math.unsorted_segment_sum(gradient.values, positions, tf.shape(unique_indices)[0]),
    )
    return unique_indices, summed


@keras.saving.register_keras_serializable(package="linnet")
class LazyAdamW(keras.optimizers.AdamW):
    """AdamW whose update of an ``IndexedSlices`` gradient touches only the gathered rows.

    Same arguments and defaults as ``keras.optimizers.AdamW`` (``weight_decay=0.004``). Dense
    gradients get exactly Keras's AdamW update. For sparse gradients (embedding tables read with
    ``tf.gather``, such as `linnet.encoders.EmbeddingBag`) the moments, the weight decay and the
    variable change only on the rows in the batch. ``amsgrad`` is not supported for sparse variables.

    Args:
        **kwargs: the arguments of ``keras.optimizers.AdamW``.

    Example:
        >>> import tensorflow as tf
        >>> optimizer = LazyAdamW(learning_rate=0.1, weight_decay=0.0)
        >>> table = tf.Variable(tf.ones((4, 2)))
        >>> optimizer.apply([tf.IndexedSlices(tf.ones((1, 2)), tf.constant([2]), tf.constant([4, 2]))], [table])
        >>> [round(float(value), 2) for value in table.numpy()[:, 0]]  # only row 2 moved
        [1.0, 1.0, 0.9, 1.0]
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if self.amsgrad:
            raise ValueError("LazyAdamW: amsgrad=True is not supported (its max over all rows is dense)")
        # The learning rate of the step being traced (see _backend_apply_gradients), else None.
        self._step_learning_rate = None

    def _backend_apply_gradients(self, grads, trainable_variables):
        # Keras reads ``self.learning_rate`` once per variable (in the weight decay, then for the update), and
        # a schedule (warm-up + cosine decay, a cond and a dozen ops) is traced again at every read: ~60
        # copies for a 7-level model, about half of the optimizer's tracing time. The value is the same for
        # every variable of a step (``iterations`` moves after them all), so the step computes it once.
        self._step_learning_rate = super()._get_current_learning_rate()
        try:
            super()._backend_apply_gradients(grads, trainable_variables)
        finally:
            self._step_learning_rate = None

    def _get_current_learning_rate(self):
        if self._step_learning_rate is not None:
            return self._step_learning_rate
        return super()._get_current_learning_rate()

    def _apply_weight_decay(self, variables):
        # Every variable is decayed inside update_step: a sparse one row-wise, a dense one fused (see
        # _dense_update_step); decaying a variable just before its own update is Keras's order for it.
        return

    def _clip_gradients(self, grads):
        if not any(isinstance(g, tf.IndexedSlices) for g in grads):
            return super()._clip_gradients(grads)
        if self.global_clipnorm and self.global_clipnorm > 0:
            return tf.clip_by_global_norm(grads, self.global_clipnorm)[0]
        if self.clipvalue and self.clipvalue > 0:
            def clip(g):
                if isinstance(g, tf.IndexedSlices):
                    return tf.IndexedSlices(tf.clip_by_value(g.values, -self.clipvalue, self.clipvalue), g.indices, g.dense_shape)
                return g if g is None else tf.clip_by_value(g, -self.clipvalue, self.clipvalue)
            return [clip(g) for g in grads]
        return super()._clip_gradients(grads)  # clipnorm: tf.clip_by_norm keeps IndexedSlices

    def update_step(self, gradient, variable, learning_rate):
        if not isinstance(gradient, tf.IndexedSlices):
            return self._dense_update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        lr = tf.cast(learning_rate, dtype)
        local_step = tf.cast(self.iterations + 1, dtype)
        beta_1 = tf.cast(self.beta_1, dtype)
        beta_2 = tf.cast(self.beta_2, dtype)
        alpha = lr * tf.sqrt(1 - tf.pow(beta_2, local_step)) / (1 - tf.pow(beta_1, local_step))

        indices, values = _aggregate(gradient)
        values = tf.cast(values, dtype)
        # Static shape: no op that reads the variable just to learn its shape.
        shape = tf.constant(variable.shape.as_list(), dtype=indices.dtype)
        index = self._get_variable_index(variable)
        m_slot, v_slot = self._momentums[index], self._velocities[index]
        m_rows = tf.gather(m_slot.value, indices)
        v_rows = tf.gather(v_slot.value, indices)
        # 1 - beta in Python precision, as Keras's Adam does (1 - float32(0.999) is off by 5e-5).
        m_rows = m_rows + (values - m_rows) * tf.cast(1 - self.beta_1, dtype)
        v_rows = v_rows + (tf.square(values) - v_rows) * tf.cast(1 - self.beta_2, dtype)
        self.assign(m_slot, tf.IndexedSlices(m_rows, indices, shape))
        self.assign(v_slot, tf.IndexedSlices(v_rows, indices, shape))

        rows = tf.gather(variable, indices)
        step = m_rows * alpha / (tf.sqrt(v_rows) + self.epsilon)
        if self.weight_decay and self._use_weight_decay(variable):
            # Decoupled decay of the touched rows only, from their value before this step (as AdamW does).
            step += rows * tf.cast(self.weight_decay, dtype) * lr
        # Indices are unique, so gather-subtract-scatter_update equals scatter_sub, and TF's CPU
        # scatter_update kernel is about 4x faster than its scatter_sub.
        self.assign(variable, tf.IndexedSlices(rows - step, indices, shape))

    def _dense_update_step(self, gradient, variable, learning_rate):
        """Keras's AdamW update of a dense gradient as TensorFlow's fused ``ResourceApplyAdam`` kernel.

        The same arithmetic (``alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)``, epsilon outside the square
        root) in one op and one pass over the variable and its moments, where Keras's update is about twenty
        ops and as many passes: fewer ops to trace (once per variable of the model) and to run every step.
        """
        dtype = variable.dtype
        index = self._get_variable_index(variable)
        local_step = tf.cast(self.iterations + 1, dtype)
        beta_1 = tf.cast(self.beta_1, dtype)
        beta_2 = tf.cast(self.beta_2, dtype)
        if self.weight_decay and self._use_weight_decay(variable):
            # AdamW's decoupled decay, ``variable -= variable * weight_decay * lr``, as one fused op before
            # the update (automatic control dependencies keep the two in this order).
            tf.raw_ops.ResourceApplyGradientDescent(
                var=_handle(variable), alpha=tf.cast(learning_rate, dtype) * tf.cast(self.weight_decay, dtype),
                delta=tf.convert_to_tensor(variable))
        return tf.raw_ops.ResourceApplyAdam(
            var=_handle(variable), m=_handle(self._momentums[index]), v=_handle(self._velocities[index]),
            beta1_power=tf.pow(beta_1, local_step), beta2_power=tf.pow(beta_2, local_step),
            lr=tf.cast(learning_rate, dtype), beta1=beta_1, beta2=beta_2, epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype))


def _handle(variable):
    """The resource handle of a ``tf.Variable`` or of the one inside a Keras variable."""
    return getattr(variable, "value", variable).handle if isinstance(variable, keras.Variable) else variable.handle
