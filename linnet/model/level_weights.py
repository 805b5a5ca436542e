"""Per-level loss weights: fixed, or an exponential schedule moving weight from level 1 to the leaf."""

from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np

from linnet.errors import ConfigError

LEVEL_WEIGHT_TYPES = ("fixed", "exponential")


@dataclasses.dataclass
class LevelWeightsConfig:
    """``training.level_weights`` in a training config.

    Attributes:
        type: ``fixed`` (``weights`` for every epoch) or ``exponential`` (schedule below).
        weights: fixed weights, one per level (level 1 first); None means weights rising linearly with
            depth (``k / sum(1..L)``), so deeper, harder levels count more.
        half_life_epochs: exponential schedule: epochs until the focus has moved half of the way from level 1
            to the leaf (focus ``f(e) = 1 + (L - 1) * (1 - 2 ** (-e / half_life_epochs))``).
        sharpness: how strongly the weight concentrates around the focus level
            (``raw_k = exp(-sharpness * |k - f(e)|)``).
        floor: added to every raw weight before normalising, so no level is ever switched off.
    """

    type: str = "exponential"
    weights: list[float] | None = None
    half_life_epochs: float = 2.0
    sharpness: float = 1.0
    floor: float = 0.1

    def validate(self, where: str = "training.level_weights") -> None:
        if self.type not in LEVEL_WEIGHT_TYPES:
            raise ConfigError(f"config key '{where}.type' must be one of {LEVEL_WEIGHT_TYPES}, got {self.type!r}")
        if self.weights is not None and any(weight < 0 for weight in self.weights):
            raise ConfigError(f"config key '{where}.weights' must hold non-negative numbers")
        if self.half_life_epochs <= 0:
            raise ConfigError(f"config key '{where}.half_life_epochs' must be positive")
        if self.sharpness < 0 or self.floor < 0:
            raise ConfigError(f"config keys '{where}.sharpness' and '{where}.floor' must be >= 0")


def fixed_level_weights(num_levels: int, weights: list[float] | None = None) -> np.ndarray:
    """Fixed level weights: the given list, or weights rising linearly with depth summing to 1.

    Example:
        >>> fixed_level_weights(3).round(3).tolist()
        [0.167, 0.333, 0.5]
    """
    if weights is None:
        rising = np.arange(1, num_levels + 1, dtype=np.float64)
        return (rising / rising.sum()).astype(np.float32)
    if len(weights) != num_levels:
        raise ConfigError(
            f"config key 'training.level_weights.weights' has {len(weights)} weights but the taxonomy has "
            f"{num_levels} levels"
        )
    return np.asarray(weights, dtype=np.float32)


def exponential_level_weights(
    epoch: int, num_levels: int, half_life_epochs: float = 2.0, sharpness: float = 1.0, floor: float = 0.1
) -> np.ndarray:
    """Weights for ``epoch`` (0-based) under the exponential schedule; they sum to 1.

    The focus level starts at 1 and approaches the leaf level ``L`` exponentially in the epoch; each level's
    weight falls off exponentially with its distance from the focus.

    Example:
        >>> weights = exponential_level_weights(0, 3)
        >>> bool(weights[0] > weights[1] > weights[2])
        True
    """
    if num_levels == 1:
        return np.ones(1, dtype=np.float32)
    progress = 1.0 - math.pow(2.0, -epoch / half_life_epochs)
    focus = 1.0 + (num_levels - 1) * progress
    levels = np.arange(1, num_levels + 1, dtype=np.float64)
    raw = np.exp(-sharpness * np.abs(levels - focus)) + floor
    return (raw / raw.sum()).astype(np.float32)


def level_weights_for_epoch(config: LevelWeightsConfig, epoch: int, num_levels: int) -> np.ndarray:
    """The weights in force at ``epoch`` for ``config``."""
    if config.type == "fixed":
        return fixed_level_weights(num_levels, config.weights)
    return exponential_level_weights(
        epoch, num_levels, config.half_life_epochs, config.sharpness, config.floor
    )


def make_level_weight_variables(initial_weights) -> list:
    """One non-trainable scalar ``keras.Variable`` per level (create inside the strategy scope)."""
    return [
        keras.Variable(float(weight), trainable=False, dtype="float32", name=f"level_weight_{level}")
        for level, weight in enumerate(initial_weights, start=1)
    ]


def level_weight_scheduler(config: LevelWeightsConfig, variables: list):
    """A Keras callback that sets the level-weight variables at each epoch start and logs them.

    The weights in force appear in the epoch logs as ``level_weight_1`` … ``level_weight_L`` (so the
    progress bar, History, TensorBoard and MLflow all see them).
    """
    class LevelWeightScheduler(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.config = config
            self.level_weight_variables = variables
            self.weights_by_epoch: dict[int, list[float]] = {}

        def on_epoch_begin(self, epoch, logs=None):
            weights = level_weights_for_epoch(self.config, epoch, len(self.level_weight_variables))
            for variable, weight in zip(self.level_weight_variables, weights):
                variable.assign(float(weight))
            self.weights_by_epoch[epoch] = [float(weight) for weight in weights]

        def on_epoch_end(self, epoch, logs=None):
            if logs is None:
                return
            for level, variable in enumerate(self.level_weight_variables, start=1):
                logs[f"level_weight_{level}"] = float(keras.ops.convert_to_numpy(variable))

    return LevelWeightScheduler()
