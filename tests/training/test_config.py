"""Training's defaults agree with the other rooms' (one source of truth), without TensorFlow work."""

from __future__ import annotations

from pathlib import Path

import pytest

from linnet.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_default_split_is_the_data_rooms():
    from linnet.data.split import DEFAULT_FRACTIONS, TRAINING_FRACTIONS
    from linnet.evaluation.evaluate import DEFAULT_SPLIT
    from linnet.training.config import TrainingConfig

    # training validates on a small slice and trains on the rest (issue 21); the built-in and the shipped
    # defaults are the data room's, and evaluation's hash slices keep the data room's three-way split
    assert tuple(TrainingConfig().data.split) == tuple(TRAINING_FRACTIONS)
    assert TRAINING_FRACTIONS[2] == 0
    assert tuple(DEFAULT_SPLIT) == tuple(DEFAULT_FRACTIONS)
    shipped = TrainingConfig.from_yaml(REPO / "training" / "configs" / "default.yaml")
    assert tuple(shipped.data.split) == tuple(TRAINING_FRACTIONS)


def test_split_fractions_must_sum_to_one():
    from linnet.training.config import TrainingConfig

    with pytest.raises(ConfigError, match=r"data\.split"):
        TrainingConfig.from_dict({"data": {"split": [0.8, 0.3, 0.1]}})
