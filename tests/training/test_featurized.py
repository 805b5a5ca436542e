"""`linnet.training.featurized.inputs_read_past`: which inputs a model still reads past a cut in its graph."""

from __future__ import annotations

import keras

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
