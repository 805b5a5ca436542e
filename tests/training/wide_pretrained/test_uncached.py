"""Wide + pretrained without the cache (``training.embedding_cache: false``): the frozen BERT runs every step,
the wide path's n-grams are computed in tf.data, and only the wide path and heads train."""

from __future__ import annotations

import numpy as np
import pytest

from training.wide_pretrained.conftest import BERT_LAYER, WIDE_LAYERS, build, wide_config


def test_frozen_encoder_without_the_cache_trains_the_wide_path_every_step(bert_dir, wide_catalog_file, wide_schema,
                                                                           tiny_taxonomy, tmp_path):
    from linnet.training import trainer as training

    featurized = []
    original = training.featurized_training_model

    def recording(*args, **kwargs):
        featurized.append(original(*args, **kwargs))
        return featurized[-1]

    config = wide_config(bert_dir, tmp_path / "cache", embedding_cache=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(training, "featurized_training_model", recording)
        run = training.train(wide_catalog_file, tmp_path / "run", schema=wide_schema, taxonomy=tiny_taxonomy,
                             config=config, progress=False)
    assert run.metrics["embedding_cache"] is None
    # The model fit trained took the n-grams from tf.data and the strings for BERT.
    (trained, _), = featurized
    assert sorted(trained.input) == ["ngram_ids", "ngram_weights", "title"]
    assert np.isfinite(run.metrics["history"]["loss"][-1])
    assert all(np.abs(run.model.get_layer(name).get_weights()[0]).max() > 0 for name in WIDE_LAYERS)
    # The frozen BERT is the one loaded from the directory: training did not change it.
    _, fresh = build(config, tiny_taxonomy)
    for ours, loaded in zip(run.model.get_layer(BERT_LAYER).get_weights(), fresh.get_layer(BERT_LAYER).get_weights()):
        np.testing.assert_array_equal(ours, loaded)
