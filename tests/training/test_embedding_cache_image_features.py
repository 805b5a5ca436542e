"""Cached embeddings where frozen: a frozen image encoder runs once per product while text, wide path and
heads train (`linnet.training.embedding_cache.ImageFeaturesPlan`).

One tiny catalog (60 products, 3-level tree, every third product with a 16 px PNG), MobileNetV2 (width
0.35, random weights, frozen) at 32 px, trained twice against one cache directory. Calls of
`linnet.training.embedding_cache.encode_images`, the only place the cache runs the CNN, are recorded.
"""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

LEAVES = {
    "Clothing > Tops > Tees": ["tee", "graphic tee", "crew neck"],
    "Clothing > Tops > Shirts": ["oxford shirt", "linen shirt", "flannel"],
    "Clothing > Trousers > Jeans": ["denim jeans", "slim jeans", "bootcut"],
    "Shoes > Boots > Chelsea": ["chelsea boots", "ankle boots", "suede boots"],
    "Shoes > Sandals > Slides": ["slides", "flip flops", "pool slides"],
}
NOISE = ["red", "blue", "black", "men", "women", "classic", "new"]
IMAGE_SIZE = 32
ROWS = 60
# Trained layers of the text encoder, the wide path, fusion and a head.
COMPARED_LAYERS = ["embedding_bag", "wide_level_3", "fusion", "head_3_logits"]


def _png(row: int, colour: int) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(row)
    pixels = np.full((16, 16, 3), 50 * colour, dtype=np.uint8) + rng.integers(0, 40, (16, 16, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def _write_catalog(directory) -> tuple:
    rng = np.random.default_rng(7)
    leaves = list(LEAVES)
    (directory / "images").mkdir()
    with open(directory / "catalog.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "title", "category", "image"])
        for row in range(ROWS):
            leaf = leaves[row % len(leaves)]
            image = ""
            if row % 3 == 0:
                image = f"images/{row:03d}.png"
                (directory / image).write_bytes(_png(row, leaves.index(leaf)))
            title = f"{rng.choice(NOISE)} {rng.choice(LEAVES[leaf])} {rng.choice(NOISE)}"
            writer.writerow([f"p{row:03d}", title, leaf, image])
    return directory / "catalog.csv"


def _config(cache_dir, **image_options) -> dict:
    return {
        "model": {
            "text_encoder": {"name": "hashed_ngrams", "num_bins": 2048, "embedding_dim": 16},
            "image_encoder": {"name": "mobilenet_v2", "alpha": 0.35, "weights": None, "trainable": False,
                              **image_options},
            "fusion_dim": 32,
            "head_hidden_units": [32],
            "head_dropout": 0.0,
            "wide": {"num_buckets": 512},
        },
        "data": {"image_size": IMAGE_SIZE, "split": [0.7, 0.3, 0.0]},
        "training": {
            "epochs": 4, "batch_size": 16, "verbose": 0, "early_stopping_patience": None,
            "checkpoints": False, "tensorboard": False, "cache_dir": str(cache_dir),
            "optimizer": {"learning_rate": 0.01, "warmup_fraction": 0.0},
        },
    }


@pytest.fixture(scope="module")
def catalog_file(tmp_path_factory):
    return _write_catalog(tmp_path_factory.mktemp("partial_catalog"))


@pytest.fixture(scope="module")
def schema(catalog_file):
    from linnet.data import CatalogSchema

    return CatalogSchema(id_column="id", text_columns=["title"], category_column="category",
                         image_column="image", image_root=str(catalog_file.parent))


@pytest.fixture(scope="module")
def runs(catalog_file, schema, tmp_path_factory):
    """Two runs with the same config and cache directory.

    Returns:
        ``[(run, plan, ids of the products the CNN encoded, initial weights of COMPARED_LAYERS), ...]``.
    """
    from linnet.training import embedding_cache
    from linnet.training.trainer import train

    root = tmp_path_factory.mktemp("partial_runs")
    config = _config(root / "cache")
    plans, encoded, initial_weights = [], [], []
    original_plan, original_encode = embedding_cache.plan, embedding_cache.encode_images

    def recording_plan(*args, **kwargs):
        plans.append(original_plan(*args, **kwargs))
        trained = plans[-1].heads_model
        initial_weights.append({name: trained.get_layer(name).get_weights() for name in COMPARED_LAYERS})
        return plans[-1]

    def recording_encode(branch, catalog, *args, **kwargs):
        encoded[-1].extend(str(product_id) for product_id in catalog.ids)
        return original_encode(branch, catalog, *args, **kwargs)

    results = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(embedding_cache, "plan", recording_plan)
        patch.setattr(embedding_cache, "encode_images", recording_encode)
        for name, epochs in (("first", None), ("second", 1)):
            encoded.append([])
            run = train(catalog_file, root / name, schema=schema, config=config, epochs=epochs, progress=False)
            results.append((run, plans[-1], encoded[-1], initial_weights[-1]))
    return results


@pytest.fixture(scope="module")
def fitted_catalog(catalog_file, schema):
    """The products the runs trained and validated on (the test split is empty)."""
    from linnet.data import prepare_catalog

    return prepare_catalog(catalog_file, schema, split=(0.7, 0.3, 0.0), progress=False)


def test_only_products_with_images_run_the_cnn(runs, fitted_catalog):
    from linnet.training.embedding_cache import ImageFeaturesPlan

    run, plan, encoded, _ = runs[0]
    assert isinstance(plan, ImageFeaturesPlan)
    with_images = {str(product_id) for product_id, source in zip(fitted_catalog.ids, fitted_catalog.image_sources)
                   if source}
    assert len(with_images) == ROWS // 3
    assert sorted(encoded) == sorted(with_images)
    summary = run.metrics["embedding_cache"]
    assert summary["cached_encoders"] == ["image"]
    assert summary["computed"] == len(with_images)
    assert summary["reused"] == 0
    assert summary["without_image"] == ROWS - len(with_images)
    assert summary["encode_seconds"] > 0


def test_second_run_reuses_the_image_vectors(runs):
    first_summary = runs[0][0].metrics["embedding_cache"]
    run, plan, encoded, _ = runs[1]
    summary = run.metrics["embedding_cache"]
    assert encoded == []
    assert summary["computed"] == 0
    assert summary["reused"] == first_summary["computed"]
    assert summary["fingerprint"] == first_summary["fingerprint"]


def test_loss_falls(runs):
    losses = runs[0][0].metrics["history"]["loss"]
    assert losses[-1] < losses[0]


def test_saved_full_model_predicts_like_the_trained_partial_model(runs, fitted_catalog):
    from linnet.data import make_dataset

    run, plan, _, initial_weights = runs[0]
    assert "image" in run.model.input and "image_features" not in run.model.input
    # Training changed the weights, and the saved model holds the trained ones, not its initial ones.
    for name in COMPARED_LAYERS:
        saved, trained = run.model.get_layer(name).get_weights(), plan.heads_model.get_layer(name).get_weights()
        assert not all(np.allclose(a, b) for a, b in zip(saved, initial_weights[name])), name
        for saved_array, trained_array in zip(saved, trained):
            np.testing.assert_array_equal(saved_array, trained_array)
    # The saved model reads raw images and runs the CNN; the trained model read the cached vectors.
    full = run.model.predict(make_dataset(fitted_catalog, batch_size=32, image_size=IMAGE_SIZE, with_labels=False),
                             verbose=0)
    vectors, present = plan.image_features(fitted_catalog, IMAGE_SIZE, 32)
    np.testing.assert_array_equal(present, [1.0 if source else 0.0 for source in fitted_catalog.image_sources])
    assert np.abs(vectors[present == 1]).sum(axis=1).min() > 0 and not vectors[present == 0].any()
    partial = plan.heads_model.predict(plan.features_dataset(fitted_catalog, IMAGE_SIZE, 32), verbose=0)
    for level in range(1, 4):
        np.testing.assert_allclose(full[f"level_{level}"], partial[f"level_{level}"], atol=1e-5)


@pytest.fixture(scope="module")
def tiny_taxonomy_of_leaves():
    from linnet.taxonomy import Taxonomy

    return Taxonomy.from_paths(list(LEAVES))


def _plan_for(config_dict, taxonomy):
    from linnet.training import embedding_cache
    from linnet.model import build_model
    from linnet.training.trainer import resolve_config

    config = resolve_config(config_dict)
    model = build_model(config.model, taxonomy, ["title"], image_size=IMAGE_SIZE)
    return embedding_cache.plan(model, config, taxonomy=taxonomy, text_fields=["title"], image_size=IMAGE_SIZE)


def test_trainable_image_encoder_or_augmentation_keeps_the_default_path(tiny_taxonomy_of_leaves, tmp_path):
    assert _plan_for(_config(tmp_path, trainable=True), tiny_taxonomy_of_leaves) is None
    augmented = _config(tmp_path)
    augmented["data"]["augment"] = True
    assert _plan_for(augmented, tiny_taxonomy_of_leaves) is None


def test_every_encoder_frozen_still_caches_the_joined_vector(tiny_taxonomy_of_leaves, tmp_path):
    from linnet.training.embedding_cache import CachePlan, ImageFeaturesPlan

    config = _config(tmp_path)
    config["model"]["text_encoder"] = None
    plan = _plan_for(config, tiny_taxonomy_of_leaves)
    assert isinstance(plan, CachePlan) and not isinstance(plan, ImageFeaturesPlan)
    assert plan.summary()["cached_encoders"] == ["image"]


def test_image_features_model_keeps_every_other_layer_name(tiny_taxonomy_of_leaves, tmp_path):
    from linnet.model import build_model
    from linnet.training.trainer import resolve_config

    config = resolve_config(_config(tmp_path)).model
    full = build_model(config, tiny_taxonomy_of_leaves, ["title"], image_size=IMAGE_SIZE)
    partial = build_model(config, tiny_taxonomy_of_leaves, ["title"], image_features_dim=1280)
    encoder = {layer.name for layer in full.layers if layer.name.endswith("_encoder")}
    assert encoder == {"mobilenet_v2_encoder"}
    assert {layer.name for layer in partial.layers} == (
        {layer.name for layer in full.layers} - encoder - {"image"} | {"image_features"})
    assert partial.get_layer("embedding_bag").trainable_weights  # the text encoder trains


def test_trainable_image_encoder_trains_every_step_without_the_cache(runs, catalog_file, schema, tmp_path):
    from linnet.training.trainer import train

    frozen_run = runs[0][0]
    run = train(catalog_file, tmp_path / "trainable", schema=schema, epochs=1, progress=False,
                config=_config(tmp_path / "cache", trainable=True))
    assert run.metrics["embedding_cache"] is None
    assert np.isfinite(run.metrics["history"]["loss"][-1])
    # Both runs start from the same seeded MobileNetV2; only the trainable one changed it.
    trained = run.model.get_layer("mobilenet_v2_encoder").get_weights()
    frozen = frozen_run.model.get_layer("mobilenet_v2_encoder").get_weights()
    assert any(not np.allclose(a, b) for a, b in zip(trained, frozen))
