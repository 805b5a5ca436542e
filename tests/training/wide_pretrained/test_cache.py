"""Wide + pretrained with the embedding cache: a frozen BERT beside the trainable wide path runs once per
product (`linnet.training.embedding_cache.WideCachePlan`), and the assembled full model predicts like the cached heads."""

from __future__ import annotations

import numpy as np
import pytest

from training.wide_pretrained.conftest import WIDE_LAYERS, wide_config


@pytest.fixture(scope="module")
def cached_run(bert_dir, wide_catalog_file, wide_schema, tiny_taxonomy, tmp_path_factory):
    """One epoch with a frozen BERT + wide path and the embedding cache: ``(run, plan, cache directory)``."""
    from linnet.training import embedding_cache
    from linnet.training.trainer import train

    root = tmp_path_factory.mktemp("wide_cached")
    plans = []
    original_plan = embedding_cache.plan

    def recording_plan(*args, **kwargs):
        plans.append(original_plan(*args, **kwargs))
        return plans[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(embedding_cache, "plan", recording_plan)
        run = train(wide_catalog_file, root / "run", schema=wide_schema, taxonomy=tiny_taxonomy, progress=False,
                    config=wide_config(bert_dir, root / "cache"))
    return run, plans[-1], root / "cache"


def test_frozen_encoder_beside_the_wide_path_is_cached_and_the_wide_path_trains(cached_run, wide_catalog):
    from linnet.training.embedding_cache import WideCachePlan

    run, plan, _ = cached_run
    assert isinstance(plan, WideCachePlan)
    assert sorted(plan.heads_model.input) == ["joined_vector", "ngram_ids", "ngram_weights"]
    summary = run.metrics["embedding_cache"]
    assert summary["cached_encoders"] == ["text"] and summary["mode"] == "joined_and_wide"
    assert summary["computed"] > 0 and summary["reused"] == 0
    assert np.isfinite(run.metrics["history"]["loss"][-1])
    for name in WIDE_LAYERS:
        # The wide tables start at zero; training moved them, and the saved model holds the trained ones.
        saved = run.model.get_layer(name).get_weights()
        assert np.abs(saved[0]).max() > 0, name
        for saved_array, trained_array in zip(saved, plan.heads_model.get_layer(name).get_weights()):
            np.testing.assert_array_equal(saved_array, trained_array)


def test_assembled_full_model_predicts_like_the_cached_heads_model(cached_run, wide_catalog):
    from linnet.data import make_dataset
    from linnet.training.datasets import select_model_inputs

    run, plan, cache_dir = cached_run
    assert "title" in run.model.input and "joined_vector" not in run.model.input
    features = select_model_inputs(make_dataset(wide_catalog, batch_size=32, with_labels=False), run.model)
    full = run.model.predict(features, verbose=0)
    computed, reused = plan.computed, plan.reused
    partial = plan.heads_model.predict(plan.features_dataset(wide_catalog, None, 32, cache_dir), verbose=0)
    # The run encoded its training and validation products; only the test split's are new.
    assert plan.reused - reused == computed and plan.computed == len(wide_catalog)
    for level in range(1, 4):
        np.testing.assert_allclose(full[f"level_{level}"], partial[f"level_{level}"], atol=1e-5)
