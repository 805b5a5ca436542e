"""A TF-Hub / Kaggle SavedModel as a frozen Keras 3 feature extractor (text or image).

``hub.KerasLayer`` is built on Keras 2 (``tf_keras``) and cannot sit in a Keras 3 model, so this module
resolves the handle with ``tensorflow_hub.resolve`` (which downloads and caches URLs, and returns local
paths as they are), loads the SavedModel with ``tf.saved_model.load`` and calls it inside a Keras 3
layer. The SavedModel's variables stay TensorFlow variables: they are tracked for SavedModel export but
are not Keras weights, so the encoder is always frozen and a ``.keras`` file stores the handle (the model
is loaded again from it, through the cache, when the file is loaded).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from linnet.encoders.field_join import DEFAULT_FIELD_SEPARATOR, join_text_fields
from linnet.encoders.ngram import check_text_fields, fields_in_order
from linnet.errors import ConfigError

MODALITIES = ("text", "image")


@contextlib.contextmanager
def _hub_cache_dir(cache_dir: str | None):
    """Point ``tensorflow_hub`` at ``cache_dir`` for one resolve (it reads ``TFHUB_CACHE_DIR`` each time)."""
    if cache_dir is None:
        yield
        return
    previous = os.environ.get("TFHUB_CACHE_DIR")
    os.environ["TFHUB_CACHE_DIR"] = os.fspath(cache_dir)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("TFHUB_CACHE_DIR", None)
        else:
            os.environ["TFHUB_CACHE_DIR"] = previous


def resolve_handle(handle: str, cache_dir: str | None = None) -> str:
    """Local directory of a TF-Hub / Kaggle handle, URL of a ``.tar.gz`` SavedModel, or local path.

    Raises:
        ConfigError: the handle cannot be resolved or the directory holds no ``saved_model.pb``.
    """
    if not isinstance(handle, (str, os.PathLike)) or not os.fspath(handle):
        raise ConfigError(f"hub encoder: handle must be a URL or a path, got {handle!r}")
    handle = os.fspath(handle)
    try:
        import tensorflow_hub  # lazy: loaded only when a hub handle is resolved
    except ImportError as error:
        raise ConfigError("hub encoder: tensorflow_hub is not installed (pip install tensorflow-hub)") from error
    try:
        with _hub_cache_dir(cache_dir):
            path = tensorflow_hub.resolve(handle)
    except Exception as error:  # noqa: BLE001 - resolvers raise OSError, ValueError, tf errors, HTTP errors
        raise ConfigError(f"hub encoder: cannot resolve handle {handle!r}: {error}") from None
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        raise ConfigError(f"hub encoder: handle {handle!r} resolved to {path}, which holds no saved_model.pb")
    return path


@keras.saving.register_keras_serializable(package="linnet")
class HubEncoder(keras.layers.Layer):
    """A SavedModel (TF-Hub / Kaggle handle or local path) as a frozen text or image encoder.

    Text: the non-empty fields named in ``text_fields`` are joined with ``field_separator`` into one
    ``tf.string [B]`` (as the other sentence encoders do) and passed to the model. Image: ``float32 [B, S, S, 3]`` in ``[0, 255]`` is multiplied by
    ``image_scale`` (default ``1/255``, the TF-Hub convention for image models) and passed on.

    Args:
        handle: ``https://tfhub.dev/...`` / Kaggle model URL, URL of a ``.tar.gz`` SavedModel, or a
            local SavedModel directory.
        modality: ``"text"`` (default) or ``"image"``.
        text_fields: feature names of the text inputs (text only).
        field_separator: put between two non-empty text fields (default ``". "``).
        signature: name of a signature to call (``"serving_default"``); ``None`` calls the object.
        output_key: key of the output to use when the model returns a dict (``None``: the only one,
            or ``"default"``).
        image_scale: factor applied to images before the call (image only).
        image_size: side of the images the model gets (image only; used to probe the output size,
            default 224).
        cache_dir: where downloads are cached (default: ``$TFHUB_CACHE_DIR`` or the system temp dir).
        **kwargs: standard Keras layer arguments (the layer is never trainable).

    Raises:
        ConfigError: unresolvable handle, missing ``saved_model.pb``, unknown signature or output key,
            or an output that is not ``[B, D]``.

    Example:
        >>> encoder = HubEncoder("/path/to/saved_model", text_fields=["title"])  # doctest: +SKIP
        >>> encoder({"title": tf.constant(["red shirt"])}).shape  # doctest: +SKIP
        TensorShape([1, 512])
    """

    def __init__(
        self,
        handle: str,
        modality: str = "text",
        text_fields: Sequence[str] | None = ("title",),
        field_separator: str = DEFAULT_FIELD_SEPARATOR,
        signature: str | None = None,
        output_key: str | None = None,
        image_scale: float = 1.0 / 255.0,
        image_size: int | None = None,
        cache_dir: str | None = None,
        **kwargs: Any,
    ):
        kwargs["trainable"] = False
        super().__init__(**kwargs)
        if modality not in MODALITIES:
            raise ConfigError(f"hub encoder: modality must be one of {MODALITIES}, got {modality!r}")
        self.handle = os.fspath(handle) if isinstance(handle, os.PathLike) else handle
        self.modality = modality
        self.text_fields = check_text_fields(text_fields) if modality == "text" else None
        self.field_separator = field_separator
        self.signature = signature
        self.output_key = output_key
        self.image_scale = float(image_scale)
        self.image_size = image_size
        self.cache_dir = os.fspath(cache_dir) if cache_dir is not None else None
        self.resolved_path = resolve_handle(self.handle, self.cache_dir)
        self.saved_model = tf.saved_model.load(self.resolved_path)
        if signature is not None:
            signatures = getattr(self.saved_model, "signatures", {})
            if signature not in signatures:
                raise ConfigError(f"hub encoder {self.handle!r}: no signature {signature!r}; it has {sorted(signatures)}")
            self._function = signatures[signature]
        elif callable(self.saved_model):
            self._function = self.saved_model
        else:
            raise ConfigError(f"hub encoder {self.handle!r}: the SavedModel is not callable; pass signature=")
        self.supports_jit = False
        self._allow_non_tensor_positional_args = True
        self.output_dim = int(self._probe_output_dim())

    def _probe_output_dim(self) -> int:
        if self.modality == "text":
            probe = {field: tf.constant([""]) for field in self.text_fields}
        else:
            side = self.image_size or 224
            probe = tf.zeros((1, side, side, 3), tf.float32)
        try:
            output = self.call(probe)
        except ConfigError:
            raise
        except Exception as error:  # noqa: BLE001 - whatever the SavedModel raises, name the handle
            raise ConfigError(f"hub encoder {self.handle!r}: calling it on a {self.modality} probe failed: {error}") from None
        if output.shape.rank != 2:
            raise ConfigError(f"hub encoder {self.handle!r}: output must be [batch, dim], got shape {output.shape}")
        return output.shape[-1]

    def _pick_output(self, outputs):
        if not isinstance(outputs, dict):
            return outputs
        key = self.output_key
        if key is None:
            key = next(iter(outputs)) if len(outputs) == 1 else "default"
        if key not in outputs:
            raise ConfigError(f"hub encoder {self.handle!r}: output_key {key!r} not among {sorted(outputs)}")
        return outputs[key]

    def _call_model(self, inputs):
        if self.signature is None:
            return self._function(inputs)
        (name,) = self._function.structured_input_signature[1].keys()
        return self._function(**{name: inputs})

    def call(self, inputs):
        if self.modality == "text":
            model_inputs = join_text_fields(inputs, self.text_fields, self.field_separator, self.name)
        else:
            model_inputs = tf.cast(inputs, tf.float32) * self.image_scale
        return tf.cast(self._pick_output(self._call_model(model_inputs)), tf.float32)

    def compute_output_spec(self, inputs):
        first = fields_in_order(inputs, self.text_fields, self.name)[0] if self.modality == "text" else inputs
        return keras.KerasTensor((first.shape[0] if first.shape else None, self.output_dim), dtype="float32")

    def get_config(self):
        config = super().get_config()
        config.update(
            handle=self.handle,
            modality=self.modality,
            text_fields=list(self.text_fields) if self.text_fields else None,
            field_separator=self.field_separator,
            signature=self.signature,
            output_key=self.output_key,
            image_scale=self.image_scale,
            image_size=self.image_size,
            cache_dir=self.cache_dir,
        )
        return config


def build_text_encoder(text_fields: Sequence[str], handle: str | None = None, **options: Any) -> HubEncoder:
    """Registry factory of text ``"hub"``: `HubEncoder` with ``modality="text"``."""
    if handle is None:
        raise ConfigError("text_encoder 'hub': the option 'handle' (URL or SavedModel path) is required")
    try:
        return HubEncoder(handle, modality="text", text_fields=text_fields, **options)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"text_encoder 'hub': {error}") from None


def build_image_encoder(handle: str | None = None, **options: Any) -> HubEncoder:
    """Registry factory of image ``"hub"``: `HubEncoder` with ``modality="image"``."""
    if handle is None:
        raise ConfigError("image_encoder 'hub': the option 'handle' (URL or SavedModel path) is required")
    try:
        return HubEncoder(handle, modality="image", text_fields=None, **options)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"image_encoder 'hub': {error}") from None
