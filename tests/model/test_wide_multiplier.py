"""wide.learning_rate_multiplier: the wide logits are scaled, so one optimizer step moves them m times further."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from linnet.errors import ConfigError  # noqa: E402
from linnet.model import ModelConfig, build_model  # noqa: E402

TINY_MODEL = {"text_encoder": {"name": "hashed_ngrams", "num_bins": 2048, "embedding_dim": 16}, "fusion_dim": 32,
              "head_hidden_units": [32], "head_dropout": 0.0}


def _wide_logits_after_one_step(multiplier: float, taxonomy) -> np.ndarray:
    config = ModelConfig.from_dict({**TINY_MODEL, "wide": {"num_buckets": 1024,
                                                           "learning_rate_multiplier": multiplier}})
    model = build_model(config, taxonomy, ["title"])
    wide = keras.Model(model.inputs, model.get_layer("level_1_logits").input[1])  # the wide branch of level 1
    titles = tf.constant(["red cotton shirt", "hiking boots"])
    assert np.allclose(wide({"title": titles}).numpy(), 0.0)  # the wide table starts at zero
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(wide({"title": titles}) * tf.constant([[1.0, -1.0], [-1.0, 1.0]]))
    table = model.get_layer("wide_level_1").kernel
    gradient = tape.gradient(loss, [table])
    keras.optimizers.Adam(learning_rate=0.01).apply(gradient, [table])
    return wide({"title": titles}).numpy()


def test_one_adam_step_moves_the_wide_logits_m_times_further(tiny_taxonomy):
    plain = _wide_logits_after_one_step(1.0, tiny_taxonomy)
    scaled = _wide_logits_after_one_step(10.0, tiny_taxonomy)
    assert np.abs(plain).max() > 0
    np.testing.assert_allclose(scaled, 10.0 * plain, rtol=1e-4, atol=1e-6)


def test_multiplier_must_be_positive():
    with pytest.raises(ConfigError, match=r"wide\.learning_rate_multiplier"):
        ModelConfig.from_dict({"wide": {"learning_rate_multiplier": 0}})
