"""Adapters that give any text encoder layer the ``{field: tf.string [B]}`` calling convention."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from linnet.encoders.ngram import check_text_fields, fields_in_order


@keras.saving.register_keras_serializable(package="linnet")
class TextFieldsAdapter(keras.layers.Wrapper):
    """Calls a text encoder that takes a list of ``[B]`` string tensors with a ``{field: [B]}`` dict.

    The wrapped layer receives the fields in ``text_fields`` order. ``output_dim`` is the wrapped
    layer's.

    Args:
        layer: the text encoder layer (takes a list of string tensors, returns ``[B, D]``).
        text_fields: feature names, in the order the wrapped layer expects them.
        **kwargs: standard Keras layer arguments.

    Example:
        >>> import tensorflow as tf
        >>> from linnet.encoders.ngram import HashedNgramEncoder
        >>> inner = HashedNgramEncoder(["a", "b"], num_bins=64, embedding_dim=4)
        >>> adapter = TextFieldsAdapter(inner, text_fields=["title", "brand"])
        >>> adapter({"title": tf.constant(["x"]), "brand": tf.constant(["y"])}).shape
        TensorShape([1, 4])
    """

    def __init__(self, layer, text_fields: Sequence[str], **kwargs):
        super().__init__(layer, **kwargs)
        self.text_fields = check_text_fields(text_fields)
        self.supports_jit = getattr(layer, "supports_jit", True)
        self._allow_non_tensor_positional_args = True

    @property
    def output_dim(self) -> int:
        return self.layer.output_dim

    def build(self, inputs_shape=None):
        if not self.layer.built:
            self.layer.build(None)
        self.built = True

    def call(self, inputs, training=None):
        fields = fields_in_order(inputs, self.text_fields, self.name)
        return self.layer(fields, training=training)

    def compute_output_spec(self, inputs, training=None):
        fields = fields_in_order(inputs, self.text_fields, self.name)
        return self.layer.compute_output_spec(fields)

    def get_config(self):
        return {**super().get_config(), "text_fields": list(self.text_fields)}
