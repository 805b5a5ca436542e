"""Training-time image augmentation from config, built from Keras preprocessing layers.

Keras 3's preprocessing layers (``RandomFlip``, ``RandomBrightness``, ``RandomContrast``, ``RandAugment``)
run as TF ops inside ``tf.data`` with the TensorFlow backend, so augmentation costs no Python per example.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from linnet.errors import ConfigError


@dataclass
class AugmentConfig:
    """Which augmentations run on training images (values in ``[0, 255]``).

    Args:
        horizontal_flip: Random left-right flips.
        vertical_flip: Random up-down flips (off by default: products have an up).
        brightness: ``RandomBrightness`` factor (fraction of the value range), 0 to disable.
        contrast: ``RandomContrast`` factor, 0 to disable.
        rand_augment: Add ``RandAugment`` (``rand_augment_ops`` ops of strength ``rand_augment_factor``).
        rand_augment_ops: Operations per image.
        rand_augment_factor: Strength in ``[0, 1]``.

    Example:
        >>> AugmentConfig.from_value({"vertical_flip": True}).vertical_flip
        True
    """

    horizontal_flip: bool = True
    vertical_flip: bool = False
    brightness: float = 0.1
    contrast: float = 0.1
    rand_augment: bool = False
    rand_augment_ops: int = 2
    rand_augment_factor: float = 0.3

    @classmethod
    def from_value(cls, value: Any) -> AugmentConfig:
        """An `AugmentConfig` from True (defaults), a config, or a dict of its fields."""
        if value is True:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            known = {item.name for item in dataclasses.fields(cls)}
            unknown = sorted(set(value) - known)
            if unknown:
                raise ConfigError(f"augment: unknown key(s) {unknown}; known keys: {sorted(known)}")
            return cls(**value)
        raise ConfigError(f"augment must be true/false or a mapping of {cls.__name__} fields, got {value!r}")


def build_augmenter(config: AugmentConfig, seed: int | None = None):
    """A ``keras.Sequential`` applying ``config`` to a batch ``[B, S, S, 3]`` (identity if nothing is on)."""
    import keras  # lazy: linnet.data promises no TensorFlow (which Keras loads) at import

    layers = []
    if config.horizontal_flip or config.vertical_flip:
        mode = ("horizontal_and_vertical" if config.horizontal_flip and config.vertical_flip
                else "horizontal" if config.horizontal_flip else "vertical")
        layers.append(keras.layers.RandomFlip(mode, seed=seed))
    if config.brightness:
        layers.append(keras.layers.RandomBrightness(config.brightness, value_range=(0, 255), seed=seed))
    if config.contrast:
        layers.append(keras.layers.RandomContrast(config.contrast, value_range=(0, 255), seed=seed))
    if config.rand_augment:
        layers.append(keras.layers.RandAugment(value_range=(0, 255), num_ops=config.rand_augment_ops,
                                               factor=config.rand_augment_factor, seed=seed))
    return keras.Sequential(layers, name="linnet_augment")
