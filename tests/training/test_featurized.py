"""`linnet.training.featurized`: which inputs a model still reads past a cut in its graph (`inputs_read_past`);
a split featurized once (`featurized_once`) gives the batches the featurizer gives batch by batch."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from linnet.training.featurized import inputs_read_past


def _two_branch_model():
    """``a -> cut -> dense`` beside ``b -> dense``, added: ``b`` is read past ``cut``, ``a`` only through it."""
    a = keras.Input((3,), name="a")
    b = keras.Input((3,), name="b")
    cut = keras.layers.Dense(2, name="cut")(a)
    added = keras.layers.Add()([keras.layers.Dense(2)(cut), keras.layers.Dense(2)(b)])
    return keras.Model({"a": a, "b": b}, {"out": added})


def test_an_input_read_only_through_the_cut_is_not_read_past_it():
    model = _two_branch_model()
    cut = model.get_layer("cut").output
    assert inputs_read_past(model, [cut]) == {id(model.input["b"])}


def test_without_a_cut_every_input_is_read():
    model = _two_branch_model()
    assert inputs_read_past(model, []) == {id(model.input["a"]), id(model.input["b"])}


def test_an_input_read_both_through_and_beside_the_cut_is_read_past_it():
    a = keras.Input((3,), name="a")
    cut = keras.layers.Dense(2, name="cut")(a)
    beside = keras.layers.Dense(2)(a)
    model = keras.Model({"a": a}, keras.layers.Add()([cut, beside]))
    assert inputs_read_past(model, [model.get_layer("cut").output]) == {id(model.input["a"])}


@pytest.mark.parametrize("eager_batches", [4, 0], ids=["op-by-op", "tf.data-map"])
def test_featurized_once_gives_the_featurizers_rows_reshuffled_every_epoch(eager_batches, monkeypatch):
    import tensorflow as tf

    from linnet.encoders.ngram import HashedNgramFeaturizer
    from linnet.model import names
    from linnet.training import featurized

    monkeypatch.setattr(featurized, "EAGER_ADAPT_BATCHES", eager_batches)
    titles = np.array(["red cotton tee", "boots", "", "blue denim jeans slim fit", "canvas tote bag", "tee"])
    featurizer = HashedNgramFeaturizer(["title"], num_bins=512, idf=False)

    def featurize(features, labels, weights):
        ids, ngram_weights = featurizer({"title": features["title"]})
        return {names.NGRAM_IDS: ids, names.NGRAM_WEIGHTS: ngram_weights}, labels, weights

    rows = np.arange(len(titles), dtype=np.int32)
    batches = tf.data.Dataset.from_tensor_slices(({"title": titles}, {"level_1": rows},
                                                  {"level_1": np.ones(len(titles), "float32")})).batch(4)
    once = featurized.featurized_once(batches, featurize, batch_size=4, shuffle_seed=7)
    epochs = [[(features, labels["level_1"].numpy()) for features, labels, _ in once] for _ in range(2)]
    for epoch in epochs:
        assert sorted(np.concatenate([labels for _, labels in epoch]).tolist()) == rows.tolist()
        for features, labels in epoch:
            expected_ids, expected_weights = featurizer({"title": tf.constant(titles[labels])})
            width = int(expected_ids.shape[1])  # the batch's own padding, as the featurizer pads it
            assert features[names.NGRAM_IDS].shape == (len(labels), width)
            np.testing.assert_array_equal(features[names.NGRAM_IDS].numpy(), expected_ids.numpy())
            np.testing.assert_allclose(features[names.NGRAM_WEIGHTS].numpy(), expected_weights.numpy(), rtol=1e-6)
    orders = [np.concatenate([labels for _, labels in epoch]).tolist() for epoch in epochs]
    assert orders[0] != orders[1], "reshuffled every epoch"
