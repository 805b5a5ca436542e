"""Config parsing: unknown keys and bad values fail with the dotted key named (no TensorFlow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from linnet.errors import ConfigError
from linnet.model import ModelConfig, check_taxonomy_depth, wide_bucket_count
from linnet.training.config import TrainingConfig

REPO = Path(__file__).resolve().parents[2]


def test_unknown_nested_key_is_named():
    with pytest.raises(ConfigError, match=r"model\.wide\.num_bukets"):
        TrainingConfig.from_dict({"model": {"wide": {"num_bukets": 8}}})
    with pytest.raises(ConfigError, match=r"training\.optimizer\.learnig_rate"):
        TrainingConfig.from_dict({"training": {"optimizer": {"learnig_rate": 0.1}}})
    with pytest.raises(ConfigError, match="fusion_dimension"):
        ModelConfig.from_dict({"fusion_dimension": 3})


def test_bad_values_are_named():
    with pytest.raises(ConfigError, match=r"model\.chain_outputs"):
        TrainingConfig.from_dict({"model": {"chain_outputs": "labels"}})
    with pytest.raises(ConfigError, match=r"training\.epochs"):
        TrainingConfig.from_dict({"training": {"epochs": "ten"}})
    with pytest.raises(ConfigError, match=r"training\.strategy"):
        TrainingConfig.from_dict({"training": {"strategy": "tpu"}})


def test_yaml_errors_name_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model:\n  head_hiden_units: [8]\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*model\.head_hiden_units"):
        TrainingConfig.from_yaml(path)
    assert ModelConfig.from_yaml(REPO / "training" / "configs" / "default.yaml") == ModelConfig()


def test_shipped_default_yaml_is_the_builtin_default():
    assert TrainingConfig.from_yaml(REPO / "training" / "configs" / "default.yaml") == TrainingConfig()
    for path in sorted((REPO / "training" / "configs").glob("*.yaml")):
        TrainingConfig.from_yaml(path)  # every shipped config parses


def test_round_trip_through_dict():
    config = TrainingConfig.from_dict({"model": {"head_hidden_units": [8, 4]}, "training": {"epochs": 2}})
    assert TrainingConfig.from_dict(config.to_dict()) == config


def test_taxonomy_deeper_than_configured_levels(tiny_taxonomy):
    with pytest.raises(ConfigError, match=r"3 levels.*model\.max_levels.*2"):
        check_taxonomy_depth(ModelConfig(max_levels=2), tiny_taxonomy)
    assert check_taxonomy_depth(ModelConfig(), tiny_taxonomy) == 3


def test_wide_path_stays_bounded_for_big_trees():
    config = ModelConfig()
    buckets = wide_bucket_count(config, [21, 192, 1349, 2193, 1409, 392, 39])  # Google's level sizes
    assert buckets * 5595 <= config.wide.max_parameters
    assert buckets >= 1024
