"""Encoders by name, lazy plug-ins, fingerprints."""

from __future__ import annotations

import numpy as np
import pytest

from linnet.errors import ConfigError


def test_default_and_config_mapping_build_the_ngram_encoder():
    from linnet.encoders import HashedNgramEncoder, build_text_encoder

    by_name = build_text_encoder("hashed_ngrams", ["title"], num_bins=128, embedding_dim=4)
    by_config = build_text_encoder({"name": "hashed_ngrams", "num_bins": 128, "embedding_dim": 4}, ["title"])
    assert isinstance(by_name, HashedNgramEncoder) and isinstance(by_config, HashedNgramEncoder)
    assert by_config.output_dim == 4 and by_config.num_bins == 128
    assert isinstance(build_text_encoder(text_fields=["title"]), HashedNgramEncoder)


def test_unknown_names_and_options_are_config_errors():
    from linnet.encoders import build_image_encoder, build_text_encoder

    with pytest.raises(ConfigError, match="'fasttext'"):
        build_text_encoder("fasttext", ["title"])
    with pytest.raises(ConfigError, match="'vgg16'"):
        build_image_encoder("vgg16")
    with pytest.raises(ConfigError, match="num_buckets"):
        build_text_encoder("hashed_ngrams", ["title"], num_buckets=10)
    with pytest.raises(ConfigError, match="no 'name'"):
        build_text_encoder({"num_bins": 10}, ["title"])


def test_plug_in_modules_are_imported_only_when_built():
    from linnet.encoders import (
        build_text_encoder,
        register_text_encoder,
        text_encoder_names,
    )

    assert {"bert", "use_multilingual_v3", "hub", "hashed_ngrams"} <= set(text_encoder_names())
    register_text_encoder("not_installed_yet", "linnet.encoders.no_such_module")  # no import here
    with pytest.raises(ConfigError, match="no_such_module"):
        build_text_encoder("not_installed_yet", ["title"])


def test_layer_class_without_factory_gets_the_field_dict_adapter(tf):
    import keras

    from linnet.encoders import (
        TextFieldsAdapter,
        build_text_encoder,
        register_text_encoder,
    )

    class FieldLengths(keras.layers.Layer):
        """Takes a list of string tensors (like the USE encoder): returns their lengths in order."""

        output_dim = 2

        def __init__(self, scale=1.0, **kwargs):
            super().__init__(**kwargs)
            self.scale = scale

        def call(self, fields):
            return tf.stack([tf.cast(tf.strings.length(f), tf.float32) * self.scale for f in fields], axis=1)

    register_text_encoder("lengths", "linnet.encoders.ngram:no_factory_here", layer_class=FieldLengths)
    encoder = build_text_encoder("lengths", ["title", "brand"], scale=2.0)
    assert isinstance(encoder, TextFieldsAdapter) and encoder.output_dim == 2
    vectors = encoder({"brand": tf.constant(["acme"]), "title": tf.constant(["mug"])})
    assert vectors.numpy().tolist() == [[6.0, 8.0]]
    with keras.saving.CustomObjectScope({"FieldLengths": FieldLengths}):
        clone = TextFieldsAdapter.from_config(encoder.get_config())
    assert clone.text_fields == ["title", "brand"] and clone.layer.scale == 2.0


def test_fingerprint_of_configs_and_layers(tmp_path):
    from linnet.encoders import build_text_encoder, encoder_fingerprint

    config = {"name": "mobilenet_v2", "image_size": 96, "weights": None}
    assert encoder_fingerprint(config) == encoder_fingerprint(dict(reversed(list(config.items()))))
    assert encoder_fingerprint(config) != encoder_fingerprint({**config, "image_size": 128})
    weights = tmp_path / "w.weights.h5"
    weights.write_bytes(b"one")
    first = encoder_fingerprint({**config, "weights": str(weights)})
    weights.write_bytes(b"two")
    assert encoder_fingerprint({**config, "weights": str(weights)}) != first

    encoder = build_text_encoder("hashed_ngrams", ["title"], num_bins=64, embedding_dim=4)
    encoder.build()
    before = encoder_fingerprint(encoder)
    assert before == encoder_fingerprint(encoder)
    encoder.embedding_bag.embeddings.assign(np.zeros((64, 4), "float32"))
    assert encoder_fingerprint(encoder) != before


def test_pretrained_room_factory_is_what_the_name_resolves_to():
    from linnet.encoders import registry, use_multilingual

    factory, layer_class = registry._resolve(
        registry._TEXT_ENCODERS, "use_multilingual_v3", "text_encoder", registry.text_encoder_names()
    )
    assert factory is use_multilingual.build_text_encoder and layer_class is None
