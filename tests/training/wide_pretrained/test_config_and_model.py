"""Wide + pretrained: config validation, and the model a pretrained encoder + ``wide.with_pretrained`` builds
(a wide path over n-grams of its own, which training computes in tf.data while the encoder reads the strings)."""

from __future__ import annotations

import numpy as np
import pytest

from linnet.errors import ConfigError
from training.wide_pretrained.conftest import WIDE_LAYERS, build, wide_config


# ------------------------------------------------------------------------------------------- config
def test_defaults_are_unchanged_and_a_pretrained_encoder_has_no_wide_path_without_the_opt_in(bert_dir, tiny_taxonomy,
                                                                                             tmp_path):
    from linnet.model import ModelConfig

    assert ModelConfig().wide.with_pretrained is False and ModelConfig().wide.featurizer is None
    config = wide_config(bert_dir, tmp_path)
    config["model"]["wide"] = {"num_buckets": 1024}
    _, model = build(config, tiny_taxonomy)
    assert not [layer.name for layer in model.layers if layer.name.startswith("wide_level_")]
    with pytest.raises(ValueError):
        model.get_layer("featurizer")


@pytest.mark.parametrize("wide, message", [
    ({"featurizer": {"num_bins": 64}}, "model.wide.featurizer' is set but 'model.wide.with_pretrained' is false"),
    ({"with_pretrained": True, "featurizer": {"text_fields": ["title"]}}, "model.wide.featurizer.text_fields"),
    ({"with_pretrained": "yes"}, "model.wide.with_pretrained"),
    ({"with_pretrained": True, "featurizer": ["num_bins"]}, "model.wide.featurizer"),
])
def test_config_errors_name_the_key(wide, message):
    from linnet.model import ModelConfig

    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        ModelConfig.from_dict({"wide": wide})


def test_featurizer_options_are_checked_when_the_model_is_built(bert_dir, tiny_taxonomy, tmp_path):
    with pytest.raises(ConfigError, match=r"model\.wide\.featurizer\.num_bucket\b.*known keys.*num_bins"):
        build(wide_config(bert_dir, tmp_path, featurizer={"num_bucket": 64}), tiny_taxonomy)
    with pytest.raises(ConfigError, match=r"model\.wide\.featurizer.*num_bins"):
        build(wide_config(bert_dir, tmp_path, featurizer={"num_bins": 0}), tiny_taxonomy)
    ngrams = wide_config(bert_dir, tmp_path)
    ngrams["model"]["text_encoder"] = {"name": "hashed_ngrams", "num_bins": 1024, "embedding_dim": 8}
    with pytest.raises(ConfigError, match=r"model\.wide\.featurizer.*model\.text_encoder"):
        build(ngrams, tiny_taxonomy)


# -------------------------------------------------------------------------------------------- model
def test_model_has_a_wide_path_over_its_own_ngrams_that_moves_into_tf_data(bert_dir, tiny_taxonomy, tmp_path):
    import tensorflow as tf

    from linnet.encoders.ngram import HashedNgramFeaturizer
    from linnet.model.builder import classifier_outputs_model
    from linnet.training import embedding_cache
    from linnet.training.featurized import featurized_training_model

    config, model = build(wide_config(bert_dir, tmp_path, fine_tune=True), tiny_taxonomy)
    assert [layer.name for layer in model.layers if layer.name.startswith("wide_level_") and
            not layer.name.endswith("_scale")] == WIDE_LAYERS
    featurizer = model.get_layer("featurizer")
    assert isinstance(featurizer, HashedNgramFeaturizer) and featurizer.num_bins == 4096
    # The wide path changes the outputs: non-zero wide weights move the level-1 probabilities.
    titles = {"title": tf.constant(["red tee", "chelsea boots", "tote bag"])}
    before = model(titles)["level_1"].numpy()
    wide = model.get_layer("wide_level_1")
    wide.set_weights([np.random.default_rng(0).normal(size=w.shape).astype("float32") for w in wide.get_weights()])
    assert np.abs(model(titles)["level_1"].numpy() - before).max() > 1e-3
    # A fine-tuned encoder trains every step (no cache) ...
    assert embedding_cache.plan(model, config, tiny_taxonomy, ["title"]) is None
    # ... and the n-grams still move into tf.data while the BERT keeps reading the strings.
    trained = classifier_outputs_model(model)
    featurized, featurize = featurized_training_model(trained, ["title"])
    assert sorted(featurized.input) == ["ngram_ids", "ngram_weights", "title"]
    mapped, = featurize(titles)
    expected = trained(titles)
    for name, value in featurized(mapped).items():
        np.testing.assert_allclose(value.numpy(), expected[name].numpy(), atol=1e-6)


def test_a_frozen_ngram_encoder_beside_its_wide_path_is_cached_too(tiny_taxonomy):
    from linnet.training import embedding_cache

    config, model = build({"model": {"text_encoder": {"name": "hashed_ngrams", "num_bins": 1024, "embedding_dim": 8},
                                     "fusion_dim": 16, "head_hidden_units": [16], "wide": {"num_buckets": 256}}},
                          tiny_taxonomy)
    assert embedding_cache.plan(model, config, tiny_taxonomy, ["title"]) is None  # the embedding bag trains
    model.get_layer("embedding_bag").trainable = False
    plan = embedding_cache.plan(model, config, tiny_taxonomy, ["title"])
    assert isinstance(plan, embedding_cache.WideCachePlan)
    # The heads model has every trainable layer of the full model (wide path included), the encoder's none.
    trainable = {layer.name for layer in model.layers if layer.trainable_weights}
    assert {"wide_level_1", "fusion"} <= trainable
    assert {layer.name for layer in plan.heads_model.layers if layer.trainable_weights} == trainable
