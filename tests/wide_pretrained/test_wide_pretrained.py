"""Wide + pretrained (``model.wide.with_pretrained``): a pretrained text encoder beside the wide linear path
over hashed n-grams, with the embedding cache and the export.

The pretrained encoder is the encoders_bert room's tiny BERT (2 layers, width 32), written once as a Hugging
Face directory and loaded through ``text_encoder: {name: bert, preset: <dir>}``; nothing is downloaded.
The catalog is the training room's tiny one (96 products, tiny_taxonomy's leaves).
"""

from __future__ import annotations

import numpy as np
import pytest

from encoders_bert.conftest import tiny_backbone, write_hugging_face_dir
from linnet.errors import ConfigError
from training.conftest import write_tiny_catalog

ROWS = 96
WIDE_LAYERS = ["wide_level_1", "wide_level_2", "wide_level_3"]


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    return write_hugging_face_dir(tiny_backbone(), tmp_path_factory.mktemp("wide_bert") / "tiny-bert")


def _config(bert_dir, cache_dir, fine_tune: bool = False, embedding_cache: bool = True, **wide) -> dict:
    return {
        "model": {
            "text_encoder": {"name": "bert", "preset": str(bert_dir), "fine_tune": fine_tune},
            "fusion_dim": 16,
            "head_hidden_units": [16],
            "head_dropout": 0.0,
            "wide": {"num_buckets": 1024, "with_pretrained": True, "featurizer": {"num_bins": 4096}, **wide},
        },
        "training": {
            "epochs": 1, "batch_size": 32, "verbose": 0, "early_stopping_patience": None, "checkpoints": False,
            "tensorboard": False, "backup_and_restore": False, "cache_dir": str(cache_dir),
            "embedding_cache": embedding_cache, "optimizer": {"learning_rate": 0.01, "warmup_fraction": 0.0},
        },
    }


def _build(config_dict, taxonomy):
    from linnet.model import build_model
    from linnet.training import resolve_config

    config = resolve_config(config_dict)
    return config, build_model(config.model, taxonomy, ["title"])


@pytest.fixture(scope="module")
def catalog_file(tmp_path_factory):
    return write_tiny_catalog(tmp_path_factory.mktemp("wide_catalog") / "catalog.csv", rows=ROWS, seed=3)


@pytest.fixture(scope="module")
def schema():
    from linnet.data import CatalogSchema

    return CatalogSchema(id_column="id", text_columns=["title"], category_column="category")


@pytest.fixture(scope="module")
def catalog(catalog_file, schema):
    from linnet.data import prepare_catalog

    return prepare_catalog(catalog_file, schema, progress=False)


@pytest.fixture(scope="module")
def cached_run(bert_dir, catalog_file, schema, tiny_taxonomy, tmp_path_factory):
    """One epoch with a frozen BERT + wide path and the embedding cache: ``(run, plan)``."""
    from linnet import embedding_cache
    from linnet.training import train

    root = tmp_path_factory.mktemp("wide_cached")
    plans = []
    original_plan = embedding_cache.plan

    def recording_plan(*args, **kwargs):
        plans.append(original_plan(*args, **kwargs))
        return plans[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(embedding_cache, "plan", recording_plan)
        run = train(catalog_file, root / "run", schema=schema, config=_config(bert_dir, root / "cache"),
                    taxonomy=tiny_taxonomy, progress=False)
    return run, plans[-1], root / "cache"


# ------------------------------------------------------------------------------------------- config
def test_defaults_are_unchanged_and_a_pretrained_encoder_has_no_wide_path_without_the_opt_in(bert_dir, tiny_taxonomy,
                                                                                             tmp_path):
    from linnet.model import ModelConfig

    assert ModelConfig().wide.with_pretrained is False and ModelConfig().wide.featurizer is None
    config = _config(bert_dir, tmp_path)
    config["model"]["wide"] = {"num_buckets": 1024}
    _, model = _build(config, tiny_taxonomy)
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
        _build(_config(bert_dir, tmp_path, featurizer={"num_bucket": 64}), tiny_taxonomy)
    with pytest.raises(ConfigError, match=r"model\.wide\.featurizer.*num_bins"):
        _build(_config(bert_dir, tmp_path, featurizer={"num_bins": 0}), tiny_taxonomy)
    ngrams = _config(bert_dir, tmp_path)
    ngrams["model"]["text_encoder"] = {"name": "hashed_ngrams", "num_bins": 1024, "embedding_dim": 8}
    with pytest.raises(ConfigError, match=r"model\.wide\.featurizer.*model\.text_encoder"):
        _build(ngrams, tiny_taxonomy)


# -------------------------------------------------------------------------------------------- model
def test_model_has_a_wide_path_over_its_own_ngrams_that_moves_into_tf_data(bert_dir, tiny_taxonomy, tmp_path):
    import tensorflow as tf

    from linnet import embedding_cache
    from linnet.encoders.ngram import HashedNgramFeaturizer
    from linnet.model.builder import classifier_outputs_model
    from linnet.training import featurized_training_model

    config, model = _build(_config(bert_dir, tmp_path, fine_tune=True), tiny_taxonomy)
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


# ------------------------------------------------------------------------------------ cache + train
def test_frozen_encoder_beside_the_wide_path_is_cached_and_the_wide_path_trains(cached_run, catalog):
    from linnet.embedding_cache import WideCachePlan

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


def test_assembled_full_model_predicts_like_the_cached_heads_model(cached_run, catalog):
    from linnet.data import make_dataset
    from linnet.training import select_model_inputs

    run, plan, cache_dir = cached_run
    assert "title" in run.model.input and "joined_vector" not in run.model.input
    full = run.model.predict(select_model_inputs(make_dataset(catalog, batch_size=32, with_labels=False), run.model),
                             verbose=0)
    computed, reused = plan.computed, plan.reused
    partial = plan.heads_model.predict(plan.features_dataset(catalog, None, 32, cache_dir), verbose=0)
    # The run encoded its training and validation products; only the test split's are new.
    assert plan.reused - reused == computed and plan.computed == len(catalog)
    for level in range(1, 4):
        np.testing.assert_allclose(full[f"level_{level}"], partial[f"level_{level}"], atol=1e-5)


def test_frozen_encoder_without_the_cache_trains_the_wide_path_every_step(bert_dir, catalog_file, schema,
                                                                           tiny_taxonomy, cached_run, tmp_path):
    from linnet.training import train

    run = train(catalog_file, tmp_path / "run", schema=schema, taxonomy=tiny_taxonomy, progress=False,
                config=_config(bert_dir, tmp_path / "cache", embedding_cache=False))
    assert run.metrics["embedding_cache"] is None
    assert np.isfinite(run.metrics["history"]["loss"][-1])
    assert all(np.abs(run.model.get_layer(name).get_weights()[0]).max() > 0 for name in WIDE_LAYERS)
    # The frozen BERT is the same in both runs (both loaded from the same directory, neither trained it).
    for ours, theirs in zip(run.model.get_layer("bert_text_encoder").get_weights(),
                            cached_run[0].model.get_layer("bert_text_encoder").get_weights()):
        np.testing.assert_array_equal(ours, theirs)


# ------------------------------------------------------------------------------------------- export
def test_export_and_reload_give_the_run_model_predictions(cached_run, tmp_path):
    import tensorflow as tf

    from linnet.export import export_run, load_saved_model

    run = cached_run[0]
    export_dir = export_run(run.path, tmp_path / "exports", warmup_rows=2)
    titles = ["red tee crew neck", "women chelsea boots", "backpack", "flip flops summer"]
    scores = load_saved_model(export_dir).signatures["scores"](title=tf.constant(titles))
    expected = run.model({"title": tf.constant(titles)})
    for level in range(1, 4):
        np.testing.assert_allclose(scores[f"level_{level}"].numpy(), expected[f"level_{level}"].numpy(), atol=1e-5)
