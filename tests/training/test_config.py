"""Training's defaults agree with the other rooms' (one source of truth), without TensorFlow work."""

from __future__ import annotations

from pathlib import Path

import pytest

from linnet.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_default_split_is_the_data_rooms():
    from linnet.data.split import DEFAULT_FRACTIONS
    from linnet.evaluation.evaluate import DEFAULT_SPLIT
    from linnet.training.config import TrainingConfig

    assert tuple(TrainingConfig().data.split) == tuple(DEFAULT_FRACTIONS)
    assert tuple(DEFAULT_SPLIT) == tuple(DEFAULT_FRACTIONS)
    shipped = TrainingConfig.from_yaml(REPO / "training" / "configs" / "default.yaml")
    assert tuple(shipped.data.split) == tuple(DEFAULT_FRACTIONS)


def test_split_fractions_must_sum_to_one():
    from linnet.training.config import TrainingConfig

    with pytest.raises(ConfigError, match=r"data\.split"):
        TrainingConfig.from_dict({"data": {"split": [0.8, 0.3, 0.1]}})
