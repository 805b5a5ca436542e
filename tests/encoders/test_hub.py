"""SavedModel handles as frozen encoders: tiny SavedModels exported here, loaded by path and by URL."""

from __future__ import annotations

import functools
import http.server
import tarfile
import threading

import numpy as np
import pytest

from linnet.errors import ConfigError


def _text_module(tf):
    class TextModule(tf.Module):
        """Hashes each text into 16 buckets and returns that row of a 16 x 4 table."""

        def __init__(self):
            super().__init__()
            self.table = tf.Variable(np.arange(64, dtype="float32").reshape(16, 4))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def __call__(self, texts):
            return tf.gather(self.table, tf.strings.to_hash_bucket_fast(texts, 16))

    return TextModule()


@pytest.fixture(scope="module")
def text_saved_model(tmp_path_factory, tf):
    path = tmp_path_factory.mktemp("hub") / "text_model"
    module = _text_module(tf)
    signature = tf.function(lambda texts: {"embedding": module(texts)}, input_signature=[tf.TensorSpec([None], tf.string, name="texts")])
    tf.saved_model.save(module, str(path), signatures={"serving_default": signature})
    return path


@pytest.fixture(scope="module")
def image_saved_model(tmp_path_factory, tf):
    class ImageModule(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
        def __call__(self, images):
            return {"default": tf.reduce_mean(images, axis=[1, 2]), "other": tf.zeros([tf.shape(images)[0], 2])}

    path = tmp_path_factory.mktemp("hub") / "image_model"
    tf.saved_model.save(ImageModule(), str(path))
    return path


def _expected(tf, texts):
    table = np.arange(64, dtype="float32").reshape(16, 4)
    return table[tf.strings.to_hash_bucket_fast(tf.constant(texts), 16).numpy()]


def test_text_model_by_path_joins_fields(text_saved_model, tf):
    from linnet.encoders import build_text_encoder

    encoder = build_text_encoder("hub", ["title", "brand"], handle=str(text_saved_model))
    assert encoder.output_dim == 4 and encoder.trainable_weights == []
    vectors = encoder({"title": tf.constant(["red shirt", "mug"]), "brand": tf.constant(["acme", ""])})
    np.testing.assert_array_equal(vectors.numpy(), _expected(tf, ["red shirt. acme", "mug"]))


def test_signature_and_output_key(text_saved_model, tf):
    from linnet.encoders.hub import HubEncoder

    encoder = HubEncoder(str(text_saved_model), text_fields=["title"], signature="serving_default", output_key="embedding")
    np.testing.assert_array_equal(encoder({"title": tf.constant(["x"])}).numpy(), _expected(tf, ["x"]))
    with pytest.raises(ConfigError, match="nope"):
        HubEncoder(str(text_saved_model), text_fields=["title"], signature="nope")


def test_image_model_scales_and_picks_default_output(image_saved_model):
    from linnet.encoders import build_image_encoder

    encoder = build_image_encoder("hub", handle=str(image_saved_model), image_size=8)
    assert encoder.output_dim == 3
    images = np.full((2, 8, 8, 3), 255.0, "float32")
    np.testing.assert_allclose(encoder(images).numpy(), np.ones((2, 3)), rtol=1e-6)


def test_keras_file_round_trip(text_saved_model, tmp_path, tf):
    import keras

    from linnet.encoders import build_text_encoder

    title = keras.Input(shape=(), dtype="string", name="title")
    encoder = build_text_encoder("hub", ["title"], handle=str(text_saved_model))
    model = keras.Model({"title": title}, keras.layers.Dense(2)(encoder({"title": title})))
    inputs = {"title": tf.constant(["a", "b c"])}
    path = tmp_path / "hub.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded(inputs).numpy(), model(inputs).numpy(), rtol=1e-6)


def test_bad_handles_are_config_errors(tmp_path):
    from linnet.encoders import build_text_encoder

    with pytest.raises(ConfigError, match="handle"):
        build_text_encoder("hub", ["title"])
    with pytest.raises(ConfigError, match="no_model_here"):
        build_text_encoder("hub", ["title"], handle=str(tmp_path / "no_model_here"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="saved_model.pb"):
        build_text_encoder("hub", ["title"], handle=str(tmp_path / "empty"))


def test_url_handle_is_downloaded_into_cache_dir(text_saved_model, tmp_path, tf):
    from linnet.encoders.hub import HubEncoder

    served = tmp_path / "served"
    served.mkdir()
    with tarfile.open(served / "model.tar.gz", "w:gz") as archive:
        for item in text_saved_model.iterdir():
            archive.add(item, arcname=item.name)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/model.tar.gz"
        encoder = HubEncoder(url, text_fields=["title"], cache_dir=str(tmp_path / "cache"))
    finally:
        server.shutdown()
        server.server_close()
    assert encoder.resolved_path.startswith(str(tmp_path / "cache"))
    np.testing.assert_array_equal(encoder({"title": tf.constant(["x"])}).numpy(), _expected(tf, ["x"]))
