"""`keras.applications` image encoders (weights=None or a weights file the test saves; never downloads)."""

from __future__ import annotations

import numpy as np
import pytest

from linnet.errors import ConfigError


@pytest.fixture(scope="module")
def mobilenet():
    import keras

    from linnet.encoders import build_image_encoder

    keras.utils.set_random_seed(3)
    return build_image_encoder("mobilenet_v2", image_size=32, alpha=0.35, weights=None)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(0, 255, size=(2, 32, 32, 3)).astype("float32")


def test_mobilenet_is_frozen_and_pools(mobilenet, images):
    vectors = mobilenet(images)
    assert tuple(vectors.shape) == (2, mobilenet.output_dim) == (2, 1280)
    assert mobilenet.trainable_weights == []
    vectors = np.asarray(vectors)
    # A random backbone gives tiny activations; different images must still differ relative to them.
    assert np.abs(vectors[0] - vectors[1]).max() > 1e-3 * np.abs(vectors).max() > 0


def test_a_frozen_encoder_adds_no_trainable_weights_to_a_model(mobilenet):
    """A functional model collects variables layer by layer; the backbone's must say frozen too."""
    import keras

    image = keras.Input(shape=(32, 32, 3))
    model = keras.Model(image, keras.layers.Dense(2)(mobilenet(image)))
    trainable = [variable.path for variable in model.trainable_weights]
    assert len(trainable) == 2 and all(path.startswith("dense") for path in trainable), trainable
    assert not any(variable.trainable for variable in mobilenet.backbone.weights)


def test_preprocessing_is_inside(mobilenet, images):
    # MobileNetV2 expects [-1, 1]; feeding the [0, 255] image pre-scaled must give the same vector.
    import keras

    raw = mobilenet(images)
    direct = mobilenet.backbone(keras.applications.mobilenet_v2.preprocess_input(images.copy()), training=False)
    np.testing.assert_allclose(raw, direct, rtol=1e-5, atol=1e-6)


def test_partial_unfreeze_keeps_batch_norm_frozen():
    import keras

    from linnet.encoders import build_image_encoder

    encoder = build_image_encoder("mobilenet_v2", image_size=32, alpha=0.35, trainable=6)
    trained = [layer for layer in encoder.backbone.layers if layer.trainable and layer.weights]
    assert trained and all(not isinstance(layer, keras.layers.BatchNormalization) for layer in trained)
    assert all(encoder.backbone.layers.index(layer) >= len(encoder.backbone.layers) - 6 for layer in trained)
    assert 0 < len(encoder.trainable_weights) < len(encoder.weights)


def test_weights_file_loads_and_mismatch_is_named(mobilenet, images, tmp_path):
    from linnet.encoders import build_image_encoder

    path = tmp_path / "mobilenet.weights.h5"
    mobilenet.backbone.save_weights(path)
    loaded = build_image_encoder("mobilenet_v2", image_size=32, alpha=0.35, weights=str(path))
    np.testing.assert_allclose(loaded(images), mobilenet(images), rtol=1e-5, atol=1e-6)
    with pytest.raises(ConfigError, match="mobilenet.weights.h5"):
        build_image_encoder("mobilenet_v2", image_size=32, alpha=0.5, weights=str(path))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"name": "vgg16"}, "vgg16"),
        ({"name": "mobilenet_v2", "image_size": 100, "weights": "imagenet"}, "image_size 100"),
        ({"name": "mobilenet_v2", "image_size": 96, "alpha": 0.6, "weights": "imagenet"}, "alpha"),
        ({"name": "xception", "image_size": 64}, ">= 71"),
        ({"name": "resnet50", "image_size": 64, "alpha": 0.5}, "alpha"),
        ({"name": "mobilenet_v2", "image_size": 32, "weights": "/nonexistent/w.weights.h5"}, "/nonexistent/w.weights.h5"),
        ({"name": "mobilenet_v2", "image_size": 32, "trainable": -1}, "trainable"),
    ],
)
def test_bad_configs_fail_before_training(options, message):
    from linnet.encoders import build_image_encoder

    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        build_image_encoder(**options)


def test_keras_file_round_trip(mobilenet, images, tmp_path):
    import keras

    inputs = keras.Input((32, 32, 3), name="image")
    model = keras.Model(inputs, mobilenet(inputs))
    path = tmp_path / "image.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded(images), model(images), rtol=1e-5, atol=1e-6)
    assert loaded.layers[-1].get_config() == mobilenet.get_config()


@pytest.mark.parametrize(
    ("name", "size"),
    [("efficientnet_b0", 32), ("xception", 71), ("inception_v3", 75), ("resnet50", 32)],
)
def test_every_architecture_builds(name, size):
    from linnet.encoders import build_image_encoder

    encoder = build_image_encoder(name, image_size=size)
    vectors = encoder(np.full((1, size, size, 3), 128.0, "float32"))
    assert tuple(vectors.shape) == (1, encoder.output_dim) and encoder.output_dim >= 1280
    assert np.isfinite(vectors).all()
