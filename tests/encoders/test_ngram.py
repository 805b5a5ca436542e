"""The hashed n-gram featurizer, the embedding bag and the default text encoder."""

from __future__ import annotations

import math

import numpy as np
import pytest

from linnet.errors import ConfigError


def _bins(featurizer, **fields):
    import tensorflow as tf

    ids, weights = featurizer({name: tf.constant(values) for name, values in fields.items()})
    ids, weights = ids.numpy(), weights.numpy()
    return [dict(zip(row_ids[row_weights > 0].tolist(), row_weights[row_weights > 0].tolist()))
            for row_ids, row_weights in zip(ids, weights)]


@pytest.fixture(scope="module")
def featurizer():
    from linnet.encoders import HashedNgramFeaturizer

    return HashedNgramFeaturizer(["title", "attributes"], num_bins=2**20)


def test_featurizer_lists_distinct_bins_with_padding(featurizer):
    rows = _bins(featurizer, title=["red shirt", "shirt"], attributes=["", ""])
    # "shirt": 1 word unigram + char 3..5-grams of "<shirt>" (5 + 4 + 3) = 13 n-grams.
    assert len(rows[1]) == 13
    # "red shirt": 2 unigrams + 1 bigram + "<red>" (3+2+1) + "<shirt>" (12) = 21.
    assert len(rows[0]) == 21
    assert set(rows[1]) < set(rows[0])
    assert all(0 <= bin_id < 2**20 for row in rows for bin_id in row)


def test_character_ngrams_stay_inside_words_and_rows():
    from linnet.encoders import HashedNgramFeaturizer

    chars_only = HashedNgramFeaturizer(["title"], num_bins=2**20, word_ngram_range=None)
    # "<ab>": <ab, ab>, <ab>; "<cd>": the same three shapes -> 6; any gram across the space would add more.
    two_words, glued, second_row = _bins(chars_only, title=["ab cd", "abcd", "cd"])
    assert len(two_words) == 6
    assert set(second_row) < set(two_words)  # "cd" alone gives the same grams as inside "ab cd"
    assert len(set(glued) & set(second_row)) == 1  # of "<cd", "cd>", "<cd>" only "cd>" is in "<abcd>"


def test_repeated_ngrams_get_sublinear_weight():
    from linnet.encoders import HashedNgramFeaturizer

    # Raw term-frequency weights: without the per-kind L2 norms (IDF is all ones until adapt).
    sublinear = HashedNgramFeaturizer(["title", "attributes"], num_bins=2**20, normalize_per_kind=False)
    (row,) = _bins(sublinear, title=["red red red"], attributes=[""])
    assert max(row.values()) == pytest.approx(1 + math.log(3))
    plain = HashedNgramFeaturizer(["title", "attributes"], num_bins=2**20, sublinear_tf=False,
                                  normalize_per_kind=False)
    (row,) = _bins(plain, title=["red red red"], attributes=[""])
    assert max(row.values()) == 3.0


def test_fields_hash_into_separate_spaces(featurizer):
    from linnet.encoders import HashedNgramFeaturizer

    title, attributes = _bins(featurizer, title=["red", ""], attributes=["", "red"])
    assert title and attributes and not set(title) & set(attributes)
    shared = HashedNgramFeaturizer(["title", "attributes"], num_bins=2**20, field_prefixes=False)
    title, attributes = _bins(shared, title=["red", ""], attributes=["", "red"])
    assert set(title) == set(attributes)


def test_latin_cyrillic_and_cjk_all_give_ngrams(featurizer):
    latin, cyrillic, chinese, japanese, empty = _bins(
        featurizer,
        title=["Baumwollhemd", "футболка", "男士红色棉质T恤", "メンズ Tシャツ", "  "],
        attributes=[""] * 5,
    )
    assert len(latin) > 10 and len(cyrillic) > 10
    # CJK: every character is a word, so there are character uni- and bi-grams (8 chars -> 8 + 7 + ...).
    assert len(chinese) >= 15 and len(japanese) >= 10
    assert empty == {}
    (same_chinese,) = _bins(featurizer, title=["男士 红色 棉质 T恤"], attributes=[""])
    assert set(same_chinese) == set(chinese)  # spacing of CJK text does not matter


def test_featurizer_rejects_bad_configs_and_missing_fields(featurizer, tf):
    from linnet.encoders import HashedNgramFeaturizer

    with pytest.raises(ConfigError, match="char_ngram_range"):
        HashedNgramFeaturizer(["title"], char_ngram_range=(5, 3))
    with pytest.raises(ConfigError, match="at least one"):
        HashedNgramFeaturizer(["title"], word_ngram_range=None, char_ngram_range=None)
    with pytest.raises(ConfigError, match="text_fields"):
        HashedNgramFeaturizer("title")
    with pytest.raises(ConfigError, match="attributes"):
        featurizer({"title": tf.constant(["x"])})


@pytest.mark.parametrize("pooling", ["sqrtn", "mean", "sum"])
def test_embedding_bag_pools_weighted_rows(pooling, tf):
    from linnet.encoders import EmbeddingBag

    bag = EmbeddingBag(input_dim=5, output_dim=2, pooling=pooling)
    bag.build()
    table = np.arange(10, dtype="float32").reshape(5, 2)
    bag.embeddings.assign(table)
    ids = np.array([[1, 3, 0], [7, 0, 0], [0, 0, 0]], "int64")  # 7 folds to row 2
    weights = np.array([[1.0, 2.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]], "float32")
    pooled = bag(tf.constant(ids), tf.constant(weights)).numpy()
    summed = np.stack([table[1] + 2 * table[3], table[2], np.zeros(2)])
    divisor = {"sum": [1, 1, 1], "mean": [3, 1, 1], "sqrtn": [math.sqrt(5), 1, 1]}[pooling]
    np.testing.assert_allclose(pooled, summed / np.array(divisor)[:, None], rtol=1e-6)


def test_encoder_output_and_sparse_gradient(tiny_text_encoder, tf):
    inputs = {"title": tf.constant(["Red shirt", "Blue jeans"]), "attributes": tf.constant(["color: red", ""])}
    with tf.GradientTape() as tape:
        vectors = tiny_text_encoder(inputs)
        loss = tf.reduce_sum(tf.square(vectors))
    assert vectors.shape == (2, tiny_text_encoder.output_dim) == (2, 8)
    assert vectors.dtype == tf.float32
    (gradient,) = tape.gradient(loss, tiny_text_encoder.trainable_weights)
    assert isinstance(gradient, tf.IndexedSlices)
    ids, weights = tiny_text_encoder.featurizer(inputs)
    touched = set(ids.numpy()[weights.numpy() > 0].tolist())
    assert set(gradient.indices.numpy().tolist()) == touched


def test_config_and_keras_file_round_trip(tiny_text_model, tiny_text_encoder, tmp_path, tf):
    import keras

    from linnet.encoders import HashedNgramEncoder

    clone = HashedNgramEncoder.from_config(tiny_text_encoder.get_config())
    assert clone.get_config() == tiny_text_encoder.get_config()
    inputs = {"title": tf.constant(["Red cotton shirt", "Кружка"]), "attributes": tf.constant(["size: m", ""])}
    expected = tiny_text_model(inputs).numpy()
    path = tmp_path / "text.keras"
    tiny_text_model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded(inputs).numpy(), expected, rtol=1e-6)


def test_wide_path_shares_the_featurizer(tiny_text_encoder, tf):
    import keras

    from linnet.encoders import EmbeddingBag

    inputs = {field: keras.Input(shape=(), dtype="string", name=field) for field in ("title", "attributes")}
    ids, weights = tiny_text_encoder.featurizer(inputs)
    logits = EmbeddingBag(input_dim=256, output_dim=5, pooling="sqrtn", name="wide")(ids, weights)
    model = keras.Model(inputs, logits)
    output = model({"title": tf.constant(["a b", "c"]), "attributes": tf.constant(["", "d"])})
    assert output.shape == (2, 5)


def test_word_and_character_blocks_are_normalised_separately(tf):
    from linnet.encoders import HashedNgramFeaturizer

    def block_norms(**options):
        words = HashedNgramFeaturizer(["title"], num_bins=2**20, char_ngram_range=None, idf=False, **options)
        both = HashedNgramFeaturizer(["title"], num_bins=2**20, idf=False, **options)
        title = ["red cotton shirt with long sleeves"]
        (row,) = _bins(both, title=title)
        (word_row,) = _bins(words, title=title)
        word_part = sum(row[bucket] ** 2 for bucket in word_row)
        return word_part, sum(value ** 2 for value in row.values()) - word_part

    word_part, char_part = block_norms(normalize_per_kind=True)
    assert word_part == pytest.approx(1.0, abs=1e-5) and char_part == pytest.approx(1.0, abs=1e-5)
    # Without it, the 11 word n-grams are a small share of the 11 + 73 n-grams' squared norm.
    word_part, char_part = block_norms(normalize_per_kind=False)
    assert word_part / (word_part + char_part) < 0.2


def test_idf_is_learned_from_the_training_texts_by_adapt(tf):
    from linnet.encoders import HashedNgramFeaturizer

    featurizer = HashedNgramFeaturizer(["title"], num_bins=2**20, word_ngram_range=[1, 1], char_ngram_range=None,
                                       sublinear_tf=False, idf=True, normalize_per_kind=False)
    (before,) = _bins(featurizer, title=["shirt red"])
    assert sorted(before.values()) == [1.0, 1.0]  # all ones until adapt
    documents = featurizer.adapt({"title": np.array(["shirt red", "shirt blue", "shirt green"])})
    assert documents == 3
    (after,) = _bins(featurizer, title=["shirt red"])
    # smoothed IDF: log((1 + n) / (1 + df)) + 1; "shirt" is in all 3 titles, "red" in one.
    assert sorted(after.values()) == pytest.approx([1.0, math.log(4 / 2) + 1])
    (unseen,) = _bins(featurizer, title=["hat"])
    assert list(unseen.values()) == pytest.approx([math.log(4 / 1) + 1])


def test_adapt_names_a_missing_field(tf):
    from linnet.encoders import HashedNgramFeaturizer

    with pytest.raises(ConfigError, match="attributes"):
        HashedNgramFeaturizer(["title", "attributes"], num_bins=64, idf=True).adapt({"title": np.array(["a"])})


def test_adapted_idf_survives_keras_save_and_load_and_is_copied_by_layer_name(tiny_text_encoder, tmp_path, tf):
    import keras

    from linnet.encoders.ngram import (
        adapt_featurizers,
        copy_featurizer_weights,
        idf_featurizers,
    )

    def model():
        texts = {field: keras.Input(shape=(), dtype="string", name=field) for field in ("title", "attributes")}
        config = {**tiny_text_encoder.get_config(), "idf": True}
        return keras.Model(texts, tiny_text_encoder.__class__.from_config(config)(texts))

    adapted, fresh = model(), model()
    texts = {"title": np.array(["red shirt", "blue shirt", "red hat"]), "attributes": np.array(["a", "a", "b"])}
    assert adapt_featurizers(adapted, texts) == 3
    (layer,) = idf_featurizers(adapted)
    idf = layer.idf_weights.numpy()
    # unseen buckets get log((1 + 3) / 1) + 1; "shirt" (2 of 3 titles) gets log(4 / 3) + 1
    assert idf.max() == pytest.approx(math.log(4) + 1) and idf.min() <= math.log(4 / 3) + 1 + 1e-6
    path = tmp_path / "adapted.keras"
    adapted.save(path)
    (loaded,) = idf_featurizers(keras.saving.load_model(path))
    np.testing.assert_array_equal(loaded.idf_weights.numpy(), idf)
    (other,) = idf_featurizers(fresh)
    assert np.all(other.idf_weights.numpy() == 1.0)
    copy_featurizer_weights(adapted, fresh)
    np.testing.assert_array_equal(other.idf_weights.numpy(), idf)
