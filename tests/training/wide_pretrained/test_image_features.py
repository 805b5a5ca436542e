"""Wide + pretrained with a frozen image encoder and a fine-tuned text encoder: only the image vectors are
cached (`linnet.training.embedding_cache.ImageFeaturesPlan`); the trained model reads the cached image vectors, the
n-grams from tf.data and the raw strings for BERT, and predicts like the full model."""

from __future__ import annotations

import numpy as np

from training.conftest import write_tiny_catalog
from training.wide_pretrained.conftest import wide_config

IMAGE_SIZE = 32


def test_frozen_image_encoder_beside_a_fine_tuned_bert_and_the_wide_path(bert_dir, tiny_taxonomy, tmp_path):
    from linnet.data import CatalogSchema, make_dataset, prepare_catalog
    from linnet.model import build_model
    from linnet.training import embedding_cache
    from linnet.training.datasets import select_model_inputs
    from linnet.training.trainer import resolve_config

    config = wide_config(bert_dir, tmp_path / "cache", fine_tune=True)
    config["model"]["image_encoder"] = {"name": "mobilenet_v2", "alpha": 0.35, "weights": None, "trainable": False}
    config["data"] = {"image_size": IMAGE_SIZE}
    config = resolve_config(config)
    model = build_model(config.model, tiny_taxonomy, ["title"], image_size=IMAGE_SIZE)
    plan = embedding_cache.plan(model, config, tiny_taxonomy, ["title"], IMAGE_SIZE)
    assert isinstance(plan, embedding_cache.ImageFeaturesPlan)
    assert sorted(plan.heads_model.input) == ["image_features", "image_present", "ngram_ids", "ngram_weights",
                                              "title"]
    # The same non-zero wide tables in both (they start at zero), so the comparison covers the wide path.
    rng = np.random.default_rng(0)
    for name in ("wide_level_1", "wide_level_3"):
        weights = [rng.normal(size=weight.shape).astype("float32") for weight in model.get_layer(name).get_weights()]
        model.get_layer(name).set_weights(weights)
        plan.heads_model.get_layer(name).set_weights(weights)

    catalog_file = write_tiny_catalog(tmp_path / "catalog" / "catalog.csv", rows=12, seed=5, with_images=True)
    schema = CatalogSchema(id_column="id", text_columns=["title"], category_column="category", image_column="image",
                           image_root=str(catalog_file.parent))
    catalog = prepare_catalog(catalog_file, schema, progress=False)
    features = select_model_inputs(make_dataset(catalog, batch_size=8, image_size=IMAGE_SIZE, with_labels=False),
                                   model)
    full = model.predict(features, verbose=0)
    partial = plan.heads_model.predict(plan.features_dataset(catalog, IMAGE_SIZE, 8, tmp_path / "cache"), verbose=0)
    assert plan.computed == len(catalog)
    for level in range(1, 4):
        np.testing.assert_allclose(full[f"level_{level}"], partial[f"level_{level}"], atol=1e-5)
