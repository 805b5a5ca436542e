"""``leaf_head: arcface``: the leaf level is a cosine head trained with ArcFaceLoss; the model contract holds."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from linnet.model import ModelConfig, build_model  # noqa: E402
from linnet.model.arcface import ArcFaceLoss, ArcFaceProbabilities, CosineSimilarityHead  # noqa: E402
from linnet.model.builder import classifier_outputs_model, has_arcface_leaf  # noqa: E402


@pytest.fixture(scope="module")
def arcface_config(tiny_config):
    return ModelConfig.from_dict({**tiny_config.to_dict(), "leaf_head": "arcface", "arcface_scale": 16.0,
                                  "arcface_margin": 0.2, "embedding_dim": 16})


@pytest.fixture(scope="module")
def trained_arcface(arcface_config, tiny_taxonomy, tiny_examples):
    """A tiny ArcFace model fitted for a few epochs with training's own level losses; returns (model, history)."""
    from linnet.model import MaskedSparseCategoricalAccuracy, make_level_weight_variables
    from linnet.training.trainer import level_losses

    keras.utils.set_random_seed(0)
    model = build_model(arcface_config, tiny_taxonomy, ["title"])
    trained = classifier_outputs_model(model)
    variables = make_level_weight_variables([1.0, 1.0, 1.0])
    trained.compile(optimizer=keras.optimizers.Adam(0.02), loss=level_losses(arcface_config, variables),
                    metrics={f"level_{k}": [MaskedSparseCategoricalAccuracy()] for k in (1, 2, 3)})
    titles, labels = tiny_examples
    targets = {f"level_{k}": labels[:, k - 1] for k in (1, 2, 3)}
    history = trained.fit(tf.constant(titles), targets, epochs=12, batch_size=15, verbose=0)
    return model, history


def test_leaf_is_a_cosine_head_and_upper_levels_stay_softmax(arcface_config, tiny_taxonomy):
    model = build_model(arcface_config, tiny_taxonomy, ["title"])
    assert has_arcface_leaf(model)
    assert isinstance(model.get_layer("level_3_cosine"), CosineSimilarityHead)
    assert isinstance(model.get_layer("level_3"), ArcFaceProbabilities)
    assert model.get_layer("level_3").scale == 16.0
    assert not any(layer.name in ("wide_level_3", "head_3_logits") for layer in model.layers)
    assert model.get_layer("wide_level_2") is not None  # the levels above keep their wide path
    assert sorted(model.output) == ["embedding", "level_1", "level_2", "level_3"]
    # The cosine head reads the product vector that the embedding output normalises.
    cosine_input = model.get_layer("level_3_cosine")._inbound_nodes[0].parent_nodes[0].operation
    embedding_input = model.get_layer("embedding")._inbound_nodes[0].parent_nodes[0].operation
    assert cosine_input is embedding_input
    # Training reads the cosines on the leaf, the probabilities elsewhere.
    trained = classifier_outputs_model(model)
    assert trained.output["level_3"].name == model.get_layer("level_3_cosine").output.name
    assert trained.output["level_2"].name == model.output["level_2"].name


def test_training_uses_the_arcface_loss_on_the_leaf(arcface_config):
    from linnet.model import MaskedSparseCategoricalCrossentropy
    from linnet.training.trainer import level_losses

    variables = [keras.Variable(w, trainable=False) for w in (0.2, 0.3, 0.5)]
    losses = level_losses(arcface_config, variables)
    assert isinstance(losses["level_3"], ArcFaceLoss)
    assert (losses["level_3"].scale, losses["level_3"].margin) == (16.0, 0.2)
    assert losses["level_3"].level_weight is variables[2]
    assert isinstance(losses["level_1"], MaskedSparseCategoricalCrossentropy)
    softmax_losses = level_losses(ModelConfig(), variables)
    assert not any(isinstance(loss, ArcFaceLoss) for loss in softmax_losses.values())


def test_a_few_epochs_reduce_the_loss_and_learn_the_leaf(trained_arcface, tiny_examples):
    model, history = trained_arcface
    losses = history.history["loss"]
    assert losses[-1] < 0.5 * losses[0]
    assert history.history["level_3_loss"][-1] < history.history["level_3_loss"][0]
    titles, labels = tiny_examples
    leaf = model({"title": tf.constant(titles)})["level_3"].numpy()
    labelled = labels[:, 2] >= 0
    assert np.mean(leaf.argmax(axis=1)[labelled] == labels[labelled, 2]) > 0.8


def test_predicted_probabilities_sum_to_one(trained_arcface):
    model, _ = trained_arcface
    outputs = model({"title": tf.constant(["blue linen shirt", "leather boots", "zzz unseen"])})
    for level in (1, 2, 3):
        probabilities = outputs[f"level_{level}"].numpy()
        assert np.all(probabilities >= 0)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_keras_file_round_trip_loads_in_a_fresh_process(trained_arcface, tmp_path):
    model, _ = trained_arcface
    path = tmp_path / "arcface.keras"
    model.save(path)
    titles = ["slim blue jeans", "rain boots"]
    expected = model({"title": tf.constant(titles)})["level_3"].numpy()
    np.save(tmp_path / "expected.npy", expected)
    # What a process that can build a model imports (linnet.model, linnet.encoders), nothing ArcFace-specific.
    script = (
        "import sys, numpy as np, keras, tensorflow as tf\n"
        "import linnet.encoders, linnet.model\n"
        "assert 'linnet.model.arcface' in sys.modules\n"
        f"model = keras.saving.load_model({str(path)!r}, safe_mode=True, compile=False)\n"
        f"actual = model({{'title': tf.constant({titles!r})}})['level_3'].numpy()\n"
        f"np.testing.assert_allclose(actual, np.load({str(tmp_path / 'expected.npy')!r}), rtol=1e-5, atol=1e-6)\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("ok")
