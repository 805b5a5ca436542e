"""The embedding cache is reused by a second run with the same frozen encoder; an image-only model trains
without it."""

from __future__ import annotations

import numpy as np

from .conftest import tiny_config, write_tiny_catalog


def test_second_run_with_the_same_frozen_image_encoder_reuses_the_cache(tmp_path):
    from linnet.data import CatalogSchema
    from linnet.training.trainer import train

    catalog = write_tiny_catalog(tmp_path / "catalog.csv", rows=60, with_images=True)
    schema = CatalogSchema(id_column="id", text_columns=["title"], category_column="category", image_column="image",
                           image_root=str(tmp_path))
    config = tiny_config(
        model={"text_encoder": None, "image_encoder": {"name": "mobilenet_v2", "weights": None, "alpha": 0.35,
                                                       "image_size": 32, "trainable": False}},
        training={"epochs": 2, "cache_dir": str(tmp_path / "cache")},
    )
    first = train(catalog, tmp_path / "first", schema=schema, config=config, progress=False)
    second = train(catalog, tmp_path / "second", schema=schema, config=config, progress=False)
    products = first.metrics["train_examples"] + first.metrics["validation_examples"]
    assert first.metrics["embedding_cache"]["computed"] == products
    assert first.metrics["embedding_cache"]["reused"] == 0
    assert second.metrics["embedding_cache"]["reused"] == products
    assert second.metrics["embedding_cache"]["computed"] == 0
    assert second.metrics["embedding_cache"]["fingerprint"] == first.metrics["embedding_cache"]["fingerprint"]
    assert (tmp_path / "cache" / first.metrics["embedding_cache"]["fingerprint"] / "manifest.json").is_file()
    # The saved model is the full one (image in, probabilities out), trained identically from the same cache.
    assert "image" in {tensor.name for tensor in second.model.inputs}
    for one, other in zip(first.model.get_weights(), second.model.get_weights()):
        np.testing.assert_allclose(one, other, rtol=1e-5, atol=1e-6)


def test_image_only_model_trains_without_the_cache_on_a_catalog_with_text(tmp_path):
    """The pipeline yields the schema's text fields too; an image-only model must get only its own inputs."""
    from linnet.data import CatalogSchema
    from linnet.training.trainer import train

    catalog = write_tiny_catalog(tmp_path / "catalog.csv", rows=40, with_images=True)
    schema = CatalogSchema(id_column="id", text_columns=["title"], category_column="category", image_column="image",
                           image_root=str(tmp_path))
    config = tiny_config(
        model={"text_encoder": None, "image_encoder": {"name": "mobilenet_v2", "weights": None, "alpha": 0.35,
                                                       "image_size": 32, "trainable": False}},
        training={"epochs": 1, "embedding_cache": False},
    )
    run = train(catalog, tmp_path / "run", schema=schema, config=config, progress=False)
    assert run.metrics["embedding_cache"] is None
    assert sorted(tensor.name for tensor in run.model.inputs) == ["image", "image_present"]
    assert np.isfinite(run.metrics["history"]["loss"][0])
