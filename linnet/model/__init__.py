"""The hierarchical model: config, builder, masked per-level losses and level-weight schedules.

Example:
    >>> from linnet.model import ModelConfig, build_model
    >>> config = ModelConfig.from_dict({"fusion_dim": 32})
    >>> config.fusion_dim
    32
"""

from linnet.model.builder import build_model, check_taxonomy_depth, wide_bucket_count
from linnet.model.config import ModelConfig, WideConfig
from linnet.model.layers import HashedLinear, L2Normalize, PresenceGate
from linnet.model.level_weights import (
    LevelWeightsConfig,
    exponential_level_weights,
    fixed_level_weights,
    level_weight_scheduler,
    level_weights_for_epoch,
    make_level_weight_variables,
)
from linnet.model.losses import (
    MaskedSparseCategoricalAccuracy,
    MaskedSparseCategoricalCrossentropy,
)
from linnet.model.stops import output_sizes, stop_counts, with_stop_labels

__all__ = [
    "HashedLinear",
    "L2Normalize",
    "LevelWeightsConfig",
    "MaskedSparseCategoricalAccuracy",
    "MaskedSparseCategoricalCrossentropy",
    "ModelConfig",
    "PresenceGate",
    "WideConfig",
    "build_model",
    "check_taxonomy_depth",
    "exponential_level_weights",
    "fixed_level_weights",
    "level_weight_scheduler",
    "level_weights_for_epoch",
    "make_level_weight_variables",
    "output_sizes",
    "stop_counts",
    "wide_bucket_count",
    "with_stop_labels",
]
