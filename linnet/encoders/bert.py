"""BERT text encoder through keras-hub (``bert``): a ``BertBackbone`` and its WordPiece tokenizer.

The encoder loads from one of:

- a keras-hub preset name (``"bert_base_multi"``, ``"all_minilm_l6_v2_en"``): downloaded by keras-hub
  from Kaggle on first use, so it needs the network once;
- a local keras-hub preset directory (``config.json`` with ``registered_name``, ``model.weights.h5``,
  ``tokenizer.json`` + ``assets/``), for example one written by `BertTextEncoder.save_preset`;
- a local Hugging Face directory (``config.json`` with ``"model_type": "bert"``, ``model.safetensors``,
  ``vocab.txt``, ``tokenizer_config.json``), converted by keras-hub's Transformers converter with no
  network. sentence-transformers directories also bring their pooling (``1_Pooling/config.json``),
  normalisation (``modules.json``) and length (``sentence_bert_config.json``), which become the
  defaults.

Tokenisation runs in the graph. Each batch is padded to its own longest text (capped at
``sequence_length``), not to a fixed length: product titles are short, and the encoder's cost grows
with the padded length.

Example:
    >>> import tensorflow as tf
    >>> from linnet.encoders.bert import build_text_encoder
    >>> encoder = build_text_encoder(["title"], preset="/path/to/all-MiniLM-L6-v2")  # doctest: +SKIP
    >>> encoder({"title": tf.constant(["red cotton shirt"])}).shape  # doctest: +SKIP
    TensorShape([1, 384])
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf
from keras import ops

from linnet.atomic_files import atomic_directory
from linnet.encoders.field_join import DEFAULT_FIELD_SEPARATOR, join_text_fields
from linnet.encoders.ngram import check_text_fields, fields_in_order
from linnet.errors import ConfigError

POOLING_CHOICES = ("mean", "cls", "max")
DEFAULT_SEQUENCE_LENGTH = 128
# Written next to a saved preset so the pooling choice travels with the weights.
ENCODER_CONFIG_FILE = "linnet_text_encoder.json"
_HF_REQUIRED_FILES = ("model.safetensors", "vocab.txt", "tokenizer_config.json")


def _looks_like_path(preset: str) -> bool:
    return os.path.isabs(preset) or preset.startswith((".", "~")) or os.sep in preset or os.path.exists(preset)


def _read_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError) as error:
        raise ConfigError(f"bert preset: cannot read {path}: {error}") from None


def check_preset(preset: str) -> str:
    """Validate a preset name or directory before keras-hub reads it.

    Args:
        preset: a keras-hub preset name, a keras-hub preset directory or a Hugging Face directory.

    Returns:
        ``"keras"``, ``"huggingface"`` (local directories) or ``"name"`` (left to keras-hub).

    Raises:
        ConfigError: a path that does not exist, or a directory without the files its format needs
            (each missing file is named).
    """
    if not isinstance(preset, (str, os.PathLike)) or not str(preset):
        raise ConfigError(f"bert: 'preset' must be a preset name or a directory, got {preset!r}")
    preset = os.path.expanduser(os.fspath(preset))
    if not _looks_like_path(preset):
        return "name"
    if not os.path.isdir(preset):
        raise ConfigError(f"bert preset: directory {preset} does not exist")
    config_path = os.path.join(preset, "config.json")
    if not os.path.isfile(config_path):
        raise ConfigError(f"bert preset: {preset} has no config.json (neither a keras-hub preset nor a Hugging Face model)")
    config = _read_json(config_path)
    if "registered_name" in config:
        missing = [name for name in ("model.weights.h5", "tokenizer.json") if not os.path.isfile(os.path.join(preset, name))]
        kind = "keras"
    elif config.get("model_type") == "bert":
        missing = [name for name in _HF_REQUIRED_FILES if not os.path.isfile(os.path.join(preset, name))]
        kind = "huggingface"
    else:
        raise ConfigError(
            f"bert preset: {config_path} describes neither a keras-hub preset nor a Hugging Face BERT "
            f"(model_type={config.get('model_type')!r})"
        )
    if missing:
        raise ConfigError(f"bert preset: {preset} has no {', '.join(missing)} (no weights or vocabulary to load)")
    return kind


def preset_defaults(preset: str) -> dict[str, Any]:
    """Pooling, normalisation and length a local directory asks for (sentence-transformers or LinNét files).

    Args:
        preset: a preset directory (a name gives ``{}``).

    Returns:
        A subset of ``{"pooling", "normalize", "sequence_length"}``.
    """
    preset = os.path.expanduser(os.fspath(preset))
    if not os.path.isdir(preset):
        return {}
    own = os.path.join(preset, ENCODER_CONFIG_FILE)
    if os.path.isfile(own):
        saved = _read_json(own)
        return {key: saved[key] for key in ("pooling", "normalize", "sequence_length") if key in saved}
    defaults: dict[str, Any] = {}
    pooling_file = os.path.join(preset, "1_Pooling", "config.json")
    if os.path.isfile(pooling_file):
        pooling = _read_json(pooling_file)
        if pooling.get("pooling_mode_cls_token"):
            defaults["pooling"] = "cls"
        elif pooling.get("pooling_mode_max_tokens"):
            defaults["pooling"] = "max"
        else:
            defaults["pooling"] = "mean"
    modules_file = os.path.join(preset, "modules.json")
    if os.path.isfile(modules_file):
        defaults["normalize"] = any("Normalize" in module.get("type", "") for module in _read_json(modules_file))
    sentence_config = os.path.join(preset, "sentence_bert_config.json")
    if os.path.isfile(sentence_config):
        length = _read_json(sentence_config).get("max_seq_length")
        if isinstance(length, int) and length > 2:
            defaults["sequence_length"] = length
    return defaults


def _keras_hub_no_convert_scope():
    try:
        # lazy: keras-hub (and its model code) loads only when a BERT encoder is used
        from keras_hub.src.utils.tensor_utils import no_convert_scope
    except ImportError:  # a keras-hub without it converts nothing in graphs, which is where we run
        return contextlib.nullcontext()
    return no_convert_scope()


@keras.saving.register_keras_serializable(package="linnet")
class BertTextEncoder(keras.layers.Layer):
    """Text fields -> one pooled BERT vector per product (``float32 [B, hidden_dim]``).

    The non-empty fields are joined with ``field_separator``, WordPiece-tokenised in the graph, wrapped in
    ``[CLS] ... [SEP]``, truncated to ``sequence_length`` and padded to the batch's longest text.
    Pooling: ``"mean"`` over the real tokens (``[CLS]`` and ``[SEP]`` included, as sentence-transformers
    does), ``"cls"`` (the ``[CLS]`` vector) or ``"max"``.

    Build it with `build_text_encoder` (from a preset) or directly from a backbone and tokenizer. The
    backbone and tokenizer are serialised with the layer, so a ``.keras`` file needs no preset to load.

    Args:
        backbone: a ``keras_hub.models.BertBackbone`` (or its serialised config).
        tokenizer: a ``keras_hub.models.BertTokenizer`` (or its serialised config).
        text_fields: feature names of the text inputs, in the order they are joined.
        pooling: ``"mean"`` (default), ``"cls"`` or ``"max"``.
        normalize: L2-normalise the pooled vector.
        sequence_length: tokens kept per text, ``[CLS]`` and ``[SEP]`` included; default 128 or the
            backbone's limit if smaller.
        fine_tune: train the backbone (default frozen).
        field_separator: put between two non-empty fields.
        **kwargs: standard Keras layer arguments.

    Example:
        >>> import keras_hub, tensorflow as tf
        >>> vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "red", "shirt"]
        >>> backbone = keras_hub.models.BertBackbone(vocabulary_size=7, num_layers=1, num_heads=1,
        ...     hidden_dim=8, intermediate_dim=16, max_sequence_length=16)
        >>> encoder = BertTextEncoder(backbone, keras_hub.models.BertTokenizer(vocabulary=vocabulary))
        >>> encoder({"title": tf.constant(["red shirt", "shirt"])}).shape
        TensorShape([2, 8])
    """

    def __init__(
        self,
        backbone,
        tokenizer,
        text_fields: Sequence[str] = ("title",),
        pooling: str = "mean",
        normalize: bool = True,
        sequence_length: int | None = None,
        fine_tune: bool = False,
        field_separator: str = DEFAULT_FIELD_SEPARATOR,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(backbone, dict):
            backbone = keras.layers.deserialize(backbone)
        if isinstance(tokenizer, dict):
            tokenizer = keras.layers.deserialize(tokenizer)
        if pooling not in POOLING_CHOICES:
            raise ConfigError(f"bert: pooling must be one of {POOLING_CHOICES}, got {pooling!r}")
        max_length = getattr(backbone, "max_sequence_length", None)
        if sequence_length is None:
            sequence_length = min(DEFAULT_SEQUENCE_LENGTH, max_length or DEFAULT_SEQUENCE_LENGTH)
        if isinstance(sequence_length, bool) or not isinstance(sequence_length, int) or sequence_length < 3:
            raise ConfigError(f"bert: sequence_length must be an integer >= 3, got {sequence_length!r}")
        if max_length is not None and sequence_length > max_length:
            raise ConfigError(
                f"bert: sequence_length {sequence_length} exceeds the backbone's max_sequence_length {max_length}"
            )
        if not isinstance(field_separator, str):
            raise ConfigError(f"bert: field_separator must be a string, got {field_separator!r}")
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.text_fields = check_text_fields(text_fields)
        self.pooling = pooling
        self.normalize = bool(normalize)
        self.sequence_length = sequence_length
        self.fine_tune = bool(fine_tune)
        self.field_separator = field_separator
        self.backbone.trainable = self.fine_tune
        # Eagerly, keras-hub tokenizers otherwise take a pure-Python path (a loop per row).
        self.tokenizer._allow_python_workflow = False
        self.output_dim = int(backbone.hidden_dim)
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True

    def build(self, input_shape: Any = None) -> None:
        self.built = True

    def _special_id(self, token: str) -> int:
        return int(self.tokenizer.token_to_id(token))

    def tokenize(self, inputs):
        """``{field: [B]}`` -> the backbone's inputs ``token_ids``, ``segment_ids``, ``padding_mask`` ``[B, T]``."""
        texts = join_text_fields(inputs, self.text_fields, self.field_separator, self.name)
        with _keras_hub_no_convert_scope():
            # Without the scope keras-hub turns eager ragged outputs into Python lists.
            pieces = self.tokenizer(texts)
        if not isinstance(pieces, tf.RaggedTensor):
            pieces = tf.RaggedTensor.from_tensor(pieces)
        pieces = tf.cast(pieces[:, : self.sequence_length - 2], "int32")
        batch = tf.shape(texts)[0]

        def column(token):
            return tf.RaggedTensor.from_tensor(tf.fill([batch, 1], self._special_id(token)))

        token_ids = tf.concat([column("[CLS]"), pieces, column("[SEP]")], axis=1)
        dense_ids = token_ids.to_tensor(default_value=self._special_id("[PAD]"))
        padding_mask = tf.sequence_mask(token_ids.row_lengths(), maxlen=tf.shape(dense_ids)[1])
        return {"token_ids": dense_ids, "segment_ids": tf.zeros_like(dense_ids), "padding_mask": padding_mask}

    def call(self, inputs, training=None):
        features = self.tokenize(inputs)
        sequence = self.backbone(features, training=training and self.fine_tune)["sequence_output"]
        mask = ops.cast(features["padding_mask"], sequence.dtype)[:, :, None]
        if self.pooling == "cls":
            pooled = sequence[:, 0, :]
        elif self.pooling == "max":
            pooled = ops.max(ops.where(mask > 0, sequence, ops.full_like(sequence, -1e9)), axis=1)
        else:
            pooled = ops.sum(sequence * mask, axis=1) / ops.maximum(ops.sum(mask, axis=1), 1.0)
        pooled = ops.cast(pooled, "float32")
        if self.normalize:
            pooled = pooled * ops.rsqrt(ops.maximum(ops.sum(ops.square(pooled), axis=-1, keepdims=True), 1e-12))
        return pooled

    def compute_output_spec(self, inputs: Any, training=None) -> keras.KerasTensor:
        first = fields_in_order(inputs, self.text_fields, self.name)[0]
        return keras.KerasTensor((first.shape[0] if first.shape else None, self.output_dim), dtype="float32")

    def save_preset(self, preset_dir: str) -> str:
        """Write a keras-hub preset (backbone, tokenizer, a preprocessor) plus this encoder's pooling.

        The directory loads back with ``build_text_encoder(fields, preset=preset_dir)`` and with
        keras-hub's own ``from_preset``. It is written to a temporary sibling and moved into place.

        Args:
            preset_dir: a directory that does not exist yet (or is empty).

        Returns:
            ``preset_dir``.

        Raises:
            ConfigError: ``preset_dir`` exists and is not empty.
        """
        import keras_hub  # lazy: keras-hub (and its model code) loads only when a BERT encoder is used

        preset_dir = os.path.abspath(os.path.expanduser(os.fspath(preset_dir)))
        if os.path.isdir(preset_dir) and os.listdir(preset_dir):
            raise ConfigError(f"bert: will not overwrite the non-empty directory {preset_dir}")
        with atomic_directory(preset_dir) as staging:
            self.backbone.save_to_preset(staging)
            preprocessor = keras_hub.models.BertTextEmbedderPreprocessor(
                tokenizer=self.tokenizer, sequence_length=self.sequence_length
            )
            preprocessor.save_to_preset(staging)
            with open(os.path.join(staging, ENCODER_CONFIG_FILE), "w", encoding="utf-8") as handle:
                json.dump(
                    {"pooling": self.pooling, "normalize": self.normalize, "sequence_length": self.sequence_length},
                    handle,
                    indent=2,
                )
            if os.path.isdir(preset_dir):
                os.rmdir(preset_dir)  # empty (checked above): the finished folder takes its place
        return preset_dir

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "backbone": keras.layers.serialize(self.backbone),
                "tokenizer": keras.layers.serialize(self.tokenizer),
                "text_fields": list(self.text_fields),
                "pooling": self.pooling,
                "normalize": self.normalize,
                "sequence_length": self.sequence_length,
                "fine_tune": self.fine_tune,
                "field_separator": self.field_separator,
            }
        )
        return config


def build_text_encoder(
    text_fields: Sequence[str] = ("title",),
    preset: str | None = None,
    pooling: str | None = None,
    normalize: bool | None = None,
    sequence_length: int | None = None,
    fine_tune: bool = False,
    field_separator: str = DEFAULT_FIELD_SEPARATOR,
    name: str = "bert_text_encoder",
) -> BertTextEncoder:
    """The ``bert`` factory of the encoder registry: a `BertTextEncoder` from a preset.

    Args:
        text_fields: feature names of the text inputs.
        preset: a keras-hub preset name (``"bert_base_multi"``; needs the network once), a keras-hub preset
            directory, or a Hugging Face BERT directory (``config.json``, ``model.safetensors``, ``vocab.txt``,
            ``tokenizer_config.json``).
        pooling: ``"mean"``, ``"cls"`` or ``"max"``; default: what the directory says (sentence-transformers
            pooling config, or the one `BertTextEncoder.save_preset` wrote), else ``"mean"``.
        normalize: L2-normalise the output; default: the directory's choice, else ``True``.
        sequence_length: tokens kept per text; default: the directory's, capped at 128 and at the backbone's limit.
        fine_tune: train the backbone (default frozen).
        field_separator: put between two non-empty fields.
        name: the layer name.

    Returns:
        A `BertTextEncoder` whose ``output_dim`` is the backbone's hidden size.

    Raises:
        ConfigError: no preset, a path that does not exist or misses its weights/vocabulary, or a preset
            keras-hub cannot load.

    Example:
        >>> encoder = build_text_encoder(["title"], preset="/models/all-MiniLM-L6-v2")  # doctest: +SKIP
        >>> encoder.output_dim  # doctest: +SKIP
        384
    """
    if preset is None:
        raise ConfigError("text_encoder 'bert' needs a 'preset': a keras-hub preset name or a local directory")
    kind = check_preset(preset)
    preset = os.path.expanduser(os.fspath(preset)) if kind != "name" else preset
    defaults = preset_defaults(preset) if kind != "name" else {}
    try:
        import keras_hub  # lazy: keras-hub (and its model code) loads only when a BERT encoder is built

        backbone = keras_hub.models.BertBackbone.from_preset(preset)
        tokenizer = keras_hub.models.BertTokenizer.from_preset(preset)
    except ConfigError:
        raise
    except Exception as error:  # keras-hub raises ValueError, OSError, KeyError, download errors...
        raise ConfigError(f"bert preset {preset!r} could not be loaded: {type(error).__name__}: {error}") from error
    if sequence_length is None:
        sequence_length = min(defaults.get("sequence_length", DEFAULT_SEQUENCE_LENGTH), DEFAULT_SEQUENCE_LENGTH,
                              backbone.max_sequence_length)
    return BertTextEncoder(
        backbone,
        tokenizer,
        text_fields=text_fields,
        pooling=pooling or defaults.get("pooling", "mean"),
        normalize=defaults.get("normalize", True) if normalize is None else normalize,
        sequence_length=sequence_length,
        fine_tune=fine_tune,
        field_separator=field_separator,
        name=name,
    )


build = build_text_encoder
