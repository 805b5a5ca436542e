"""The keras-hub BERT encoder on a tiny BERT built here: pooling, padding, presets, Hugging Face
directories, `.keras` round trips, fine-tuning and the errors a bad preset gives."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from .conftest import TEXTS, tiny_backbone, tiny_tokenizer, write_hugging_face_dir


def _titles(texts=TEXTS):
    import tensorflow as tf

    return {"title": tf.constant(texts)}


def test_output_is_unit_length_and_has_the_backbone_width(tiny_encoder, tiny_vectors):
    assert tiny_encoder.output_dim == 32
    assert tiny_vectors.shape == (len(TEXTS), 32)
    assert tiny_vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(tiny_vectors, axis=1), 1.0, atol=1e-5)


def test_tokens_are_wrapped_in_cls_and_sep_and_padded_to_the_longest_text(tiny_encoder):
    features = tiny_encoder.tokenize(_titles(["red shirt", "mug"]))
    ids = features["token_ids"].numpy()
    vocabulary = tiny_tokenizer().get_vocabulary()
    assert [vocabulary[i] for i in ids[0]] == ["[CLS]", "red", "shirt", "[SEP]"]
    assert [vocabulary[i] for i in ids[1]] == ["[CLS]", "mug", "[SEP]", "[PAD]"]
    np.testing.assert_array_equal(features["padding_mask"].numpy(), [[1, 1, 1, 1], [1, 1, 1, 0]])
    assert not features["segment_ids"].numpy().any()


def test_long_texts_are_truncated_to_sequence_length(tiny_encoder):
    from linnet.encoders.bert import BertTextEncoder

    short = BertTextEncoder(tiny_encoder.backbone, tiny_encoder.tokenizer, sequence_length=5)
    ids = short.tokenize(_titles(["red blue cotton wool shirt tee men"]))["token_ids"].numpy()
    assert ids.shape == (1, 5)
    assert ids[0, -1] == tiny_encoder.tokenizer.token_to_id("[SEP]")


def test_mean_pooling_averages_the_real_tokens_only(tiny_encoder, tiny_vectors):
    import keras

    features = tiny_encoder.tokenize(_titles())
    sequence = keras.ops.convert_to_numpy(tiny_encoder.backbone(features)["sequence_output"])
    mask = features["padding_mask"].numpy()[:, :, None].astype("float32")
    expected = (sequence * mask).sum(axis=1) / mask.sum(axis=1)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(tiny_vectors, expected, atol=1e-5)


def test_a_text_gets_the_same_vector_alone_and_next_to_longer_texts(tiny_encoder, tiny_vectors):
    alone = tiny_encoder(_titles([TEXTS[-1]])).numpy()
    np.testing.assert_allclose(alone[0], tiny_vectors[-1], atol=1e-5)


def test_cls_and_max_pooling(tiny_encoder):
    import keras

    from linnet.encoders.bert import BertTextEncoder

    features = tiny_encoder.tokenize(_titles())
    sequence = keras.ops.convert_to_numpy(tiny_encoder.backbone(features)["sequence_output"])
    cls = BertTextEncoder(tiny_encoder.backbone, tiny_encoder.tokenizer, pooling="cls", normalize=False)
    np.testing.assert_allclose(cls(_titles()).numpy(), sequence[:, 0], atol=1e-5)
    maximum = BertTextEncoder(tiny_encoder.backbone, tiny_encoder.tokenizer, pooling="max", normalize=False)
    mask = features["padding_mask"].numpy()[:, :, None]
    np.testing.assert_allclose(maximum(_titles()).numpy(), np.where(mask, sequence, -np.inf).max(axis=1), atol=1e-5)


def test_fields_are_joined_and_empty_fields_dropped(tiny_encoder):
    import tensorflow as tf

    from linnet.encoders.bert import BertTextEncoder

    two = BertTextEncoder(tiny_encoder.backbone, tiny_encoder.tokenizer, text_fields=["title", "brand"])
    vectors = two({"title": tf.constant(["red shirt", "red shirt"]), "brand": tf.constant(["mug", ""])}).numpy()
    joined = tiny_encoder(_titles(["red shirt. mug", "red shirt"])).numpy()
    np.testing.assert_allclose(vectors, joined, atol=1e-5)


def test_hugging_face_directory_loads_offline_to_the_same_vectors(hugging_face_dir, tiny_vectors):
    from linnet.encoders.bert import BertTextEncoder, build_text_encoder

    encoder = build_text_encoder(["title"], preset=str(hugging_face_dir))
    assert isinstance(encoder, BertTextEncoder)
    assert (encoder.pooling, encoder.normalize, encoder.output_dim) == ("mean", True, 32)
    np.testing.assert_allclose(encoder(_titles()).numpy(), tiny_vectors, atol=1e-4)


def test_sentence_transformers_files_set_pooling_normalisation_and_length(tiny_encoder, tmp_path):
    from linnet.encoders.bert import build_text_encoder

    directory = write_hugging_face_dir(tiny_encoder.backbone, tmp_path / "st", pooling="cls", normalize=False)
    encoder = build_text_encoder(["title"], preset=str(directory))
    assert (encoder.pooling, encoder.normalize, encoder.sequence_length) == ("cls", False, 16)
    overridden = build_text_encoder(["title"], preset=str(directory), pooling="mean", sequence_length=8)
    assert (overridden.pooling, overridden.sequence_length) == ("mean", 8)


def test_saved_preset_loads_back_with_linnet_and_keras_hub(tiny_encoder, saved_preset, tiny_vectors):
    import keras_hub

    from linnet.encoders.bert import (
        ENCODER_CONFIG_FILE,
        BertTextEncoder,
        build_text_encoder,
    )

    written = json.loads((Path(saved_preset) / ENCODER_CONFIG_FILE).read_text())
    assert written == {"pooling": "mean", "normalize": True, "sequence_length": 32}
    encoder = build_text_encoder(["title"], preset=saved_preset)
    np.testing.assert_allclose(encoder(_titles()).numpy(), tiny_vectors, atol=1e-5)
    # keras-hub reads it as an ordinary preset.
    backbone = keras_hub.models.BertBackbone.from_preset(saved_preset)
    preprocessor = keras_hub.models.BertTextEmbedderPreprocessor.from_preset(saved_preset)
    same = BertTextEncoder(backbone, preprocessor.tokenizer, sequence_length=32)
    np.testing.assert_allclose(same(_titles()).numpy(), tiny_vectors, atol=1e-5)


def test_save_preset_refuses_a_non_empty_directory(tiny_encoder, tmp_path):
    from linnet.errors import ConfigError

    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="taken"):
        tiny_encoder.save_preset(str(tmp_path / "taken"))
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["taken"]


def test_keras_file_round_trip_needs_no_preset(tiny_encoder, tiny_vectors, tmp_path):
    import keras

    title = keras.Input(shape=(), dtype="string", name="title")
    model = keras.Model({"title": title}, tiny_encoder({"title": title}))
    model.save(tmp_path / "encoder.keras")
    reloaded = keras.models.load_model(tmp_path / "encoder.keras")
    np.testing.assert_allclose(reloaded.predict(_titles(), verbose=0), tiny_vectors, atol=1e-5)


def test_config_round_trip(tiny_encoder):
    from linnet.encoders.bert import BertTextEncoder

    encoder = BertTextEncoder(tiny_encoder.backbone, tiny_encoder.tokenizer, text_fields=["title", "brand"],
                              pooling="cls", normalize=False, sequence_length=12, field_separator=" | ")
    config = encoder.get_config()
    clone = BertTextEncoder.from_config(config)
    for key in ("text_fields", "pooling", "normalize", "sequence_length", "fine_tune", "field_separator"):
        assert getattr(clone, key) == getattr(encoder, key), key
    assert clone.get_config()["backbone"] == config["backbone"]


def test_frozen_by_default_and_fine_tuning_updates_the_backbone():
    import keras
    import tensorflow as tf

    from linnet.encoders.bert import BertTextEncoder

    frozen = BertTextEncoder(tiny_backbone(), tiny_tokenizer())
    assert frozen.trainable_weights == []
    tuned = BertTextEncoder(tiny_backbone(), tiny_tokenizer(), fine_tune=True, normalize=False)
    assert len(tuned.trainable_weights) == len(tuned.backbone.weights)
    before = keras.ops.convert_to_numpy(tuned.backbone.get_layer("token_embedding").embeddings).copy()
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(tuned(_titles(), training=True)))
    gradients = tape.gradient(loss, tuned.trainable_weights)
    keras.optimizers.SGD(0.1).apply_gradients(zip(gradients, tuned.trainable_weights))
    after = keras.ops.convert_to_numpy(tuned.backbone.get_layer("token_embedding").embeddings)
    assert not np.allclose(before, after)


def test_registry_builds_it_by_name(hugging_face_dir):
    from linnet.encoders import build_text_encoder
    from linnet.encoders.bert import BertTextEncoder

    encoder = build_text_encoder({"name": "bert", "preset": str(hugging_face_dir), "fine_tune": True}, ["title"])
    assert isinstance(encoder, BertTextEncoder) and encoder.fine_tune and encoder.trainable_weights


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "needs a 'preset'"),
        ({"preset": "/nowhere/bert"}, "/nowhere/bert does not exist"),
        ({"pooling": "sum"}, "pooling"),
        ({"sequence_length": 64}, "max_sequence_length 32"),
    ],
)
def test_bad_options_raise_config_error(hugging_face_dir, options, message):
    from linnet.encoders.bert import build_text_encoder
    from linnet.errors import ConfigError

    if options and "preset" not in options:
        options = {"preset": str(hugging_face_dir), **options}
    with pytest.raises(ConfigError, match=message):
        build_text_encoder(["title"], **options)


@pytest.mark.parametrize("missing", ["model.safetensors", "vocab.txt"])
def test_directory_without_weights_or_vocabulary_names_the_file(hugging_face_dir, tmp_path, missing):
    import shutil

    from linnet.encoders.bert import build_text_encoder
    from linnet.errors import ConfigError

    broken = tmp_path / "broken"
    shutil.copytree(hugging_face_dir, broken)
    (broken / missing).unlink()
    with pytest.raises(ConfigError, match=missing):
        build_text_encoder(["title"], preset=str(broken))


def test_directory_of_another_format_is_refused(tmp_path):
    from linnet.encoders.bert import build_text_encoder
    from linnet.errors import ConfigError

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(ConfigError, match="gpt2"):
        build_text_encoder(["title"], preset=str(tmp_path))
