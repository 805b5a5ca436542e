"""ArcFace head, loss and probabilities against a NumPy reference of the formula."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from linnet.errors import ConfigError
from linnet.model.arcface import (
    ArcFaceLoss,
    ArcFaceProbabilities,
    CosineSimilarityHead,
    arcface_logits,
    arcface_probabilities,
)


def reference_logits(labels, cosines, scale, margin, easy_margin=False):
    """Written from the paper, row by row, on purpose independent of the vectorised code."""
    logits = np.array(cosines, dtype=np.float64) * scale
    for row, label in enumerate(labels):
        if label < 0:
            continue
        cosine = float(cosines[row, label])
        theta = math.acos(min(max(cosine, -1.0), 1.0))
        if easy_margin:
            target = math.cos(theta + margin) if cosine > 0 else cosine
        elif theta + margin <= math.pi:
            target = math.cos(theta + margin)
        else:
            target = cosine - margin * math.sin(margin)
        logits[row, label] = scale * target
    return logits


def reference_loss(labels, cosines, scale, margin, easy_margin=False):
    logits = reference_logits(labels, cosines, scale, margin, easy_margin)
    losses = []
    for row, label in enumerate(labels):
        if label < 0:
            losses.append(0.0)
            continue
        shifted = logits[row] - logits[row].max()
        losses.append(-(shifted[label] - math.log(np.exp(shifted).sum())))
    return np.mean(losses)


@pytest.fixture()
def cosines_and_labels():
    rng = np.random.default_rng(0)
    cosines = rng.uniform(-1, 1, size=(64, 7)).astype(np.float32)
    # Targets near -1 put theta + m past pi; near +1 the sine is tiny.
    cosines[0, 3], cosines[1, 0], cosines[2, 6] = -0.999, 0.9999, -0.95
    labels = rng.integers(0, 7, size=64)
    labels[:3] = [3, 0, 6]
    labels[10:14] = -1
    return cosines, labels


@pytest.mark.parametrize("easy_margin", [False, True])
@pytest.mark.parametrize("scale,margin", [(30.0, 0.5), (16.0, 0.2), (64.0, 1.2)])
def test_logits_and_loss_match_reference(cosines_and_labels, scale, margin, easy_margin):
    cosines, labels = cosines_and_labels
    logits = keras.ops.convert_to_numpy(arcface_logits(labels, cosines, scale, margin, easy_margin))
    np.testing.assert_allclose(logits, reference_logits(labels, cosines, scale, margin, easy_margin), atol=2e-4 * scale)
    loss = ArcFaceLoss(scale=scale, margin=margin, easy_margin=easy_margin)
    np.testing.assert_allclose(float(loss(labels, cosines)), reference_loss(labels, cosines, scale, margin, easy_margin),
                               rtol=1e-4, atol=1e-4)


def test_margin_only_on_target_class(cosines_and_labels):
    cosines, labels = cosines_and_labels
    logits = keras.ops.convert_to_numpy(arcface_logits(labels, cosines, 10.0, 0.4))
    target = np.zeros_like(cosines, dtype=bool)
    labelled = labels >= 0
    target[np.arange(len(labels))[labelled], labels[labelled]] = True
    np.testing.assert_allclose(logits[~target], 10.0 * cosines[~target], rtol=1e-6)
    assert np.all(logits[target] < 10.0 * cosines[target])  # the margin always makes the target harder
    np.testing.assert_allclose(logits[~labelled], 10.0 * cosines[~labelled], rtol=1e-6)


def test_past_pi_uses_fallback_that_keeps_decreasing():
    margin = 0.5
    cosines = np.linspace(-1.0, 1.0, 401, dtype=np.float32)[:, None]
    target_logits = keras.ops.convert_to_numpy(arcface_logits(np.zeros(401, int), cosines, 1.0, margin))[:, 0]
    # Monotone in cos(theta): a worse angle never gets an easier target logit.
    assert np.all(np.diff(target_logits) >= -1e-6)
    past_pi = np.arccos(cosines[:, 0]) + margin > math.pi
    assert past_pi.any()
    np.testing.assert_allclose(target_logits[past_pi], cosines[past_pi, 0] - margin * math.sin(margin), atol=1e-6)
    # The naive cos(theta + m) would rise again past pi: the fallback must differ from it there.
    naive = np.cos(np.arccos(cosines[past_pi, 0]) + margin)
    assert np.all(target_logits[past_pi] < naive)


def test_zero_margin_is_plain_scaled_softmax(cosines_and_labels):
    cosines, labels = cosines_and_labels
    plain = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")(
        np.maximum(labels, 0), 8.0 * cosines).numpy()
    plain[labels < 0] = 0.0
    np.testing.assert_allclose(float(ArcFaceLoss(scale=8.0, margin=0.0)(labels, cosines)), plain.mean(), rtol=1e-5)


def test_level_weight_and_masking():
    cosines = np.array([[0.2, 0.1], [0.3, -0.4]], np.float32)
    full = float(ArcFaceLoss(level_weight=1.0)(np.array([0, 1]), cosines))
    assert float(ArcFaceLoss(level_weight=0.5)(np.array([0, 1]), cosines)) == pytest.approx(full / 2, rel=1e-5)
    assert float(ArcFaceLoss()(np.array([-1, -1]), cosines)) == 0.0
    variable = keras.Variable(2.0, trainable=False)
    assert float(ArcFaceLoss(level_weight=variable)(np.array([0, 1]), cosines)) == pytest.approx(2 * full, rel=1e-5)


def test_gradient_is_finite_on_the_class_centre():
    import tensorflow as tf

    cosines = tf.Variable([[1.0, -1.0, 0.0]])
    with tf.GradientTape() as tape:
        loss = ArcFaceLoss(scale=30.0, margin=0.5)(np.array([0]), cosines)
    assert np.all(np.isfinite(tape.gradient(loss, cosines).numpy()))


def test_head_outputs_cosines_against_numpy():
    rng = np.random.default_rng(1)
    inputs = rng.normal(size=(5, 6)).astype(np.float32)
    head = CosineSimilarityHead(4)
    cosines = head(inputs).numpy()
    kernel = head.kernel.numpy()
    expected = (inputs / np.linalg.norm(inputs, axis=1, keepdims=True)) @ (kernel / np.linalg.norm(kernel, axis=0))
    np.testing.assert_allclose(cosines, expected, atol=1e-5)
    # Scaling the input or one class vector does not change the cosines.
    np.testing.assert_allclose(head(inputs * 7.0).numpy(), cosines, atol=1e-5)
    assert np.all(np.isfinite(head(np.zeros((1, 6), np.float32)).numpy()))


def test_probabilities_have_no_margin():
    cosines = np.array([[0.5, 0.1, -0.2]], np.float32)
    expected = np.exp(20 * cosines) / np.exp(20 * cosines).sum()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(arcface_probabilities(cosines, 20.0)), expected, rtol=1e-5)
    np.testing.assert_allclose(ArcFaceProbabilities(20.0)(cosines).numpy(), expected, rtol=1e-5)


def test_round_trip_through_keras_file(tmp_path):
    inputs = keras.Input((6,), name="features")
    cosines = CosineSimilarityHead(3, name="level_2_cosine")(inputs)
    probabilities = ArcFaceProbabilities(12.0, name="level_2")(cosines)
    model = keras.Model(inputs, {"level_2_cosine": cosines, "level_2": probabilities})
    model.compile(optimizer="adam", loss={"level_2_cosine": ArcFaceLoss(12.0, 0.3, level_weight=0.7)})
    x = np.random.default_rng(2).normal(size=(16, 6)).astype(np.float32)
    y = np.arange(16) % 3
    model.fit(x, {"level_2_cosine": y}, epochs=1, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0)["level_2"], model.predict(x, verbose=0)["level_2"], atol=1e-6)
    loss = reloaded.loss["level_2_cosine"] if isinstance(reloaded.loss, dict) else None
    if loss is not None:
        assert (loss.scale, loss.margin, loss.level_weight) == (12.0, 0.3, pytest.approx(0.7))
    for layer in (CosineSimilarityHead(3, epsilon=1e-9), ArcFaceProbabilities(5.0)):
        assert type(layer).from_config(layer.get_config()).get_config() == layer.get_config()
    config = ArcFaceLoss(5.0, 0.1, easy_margin=True).get_config()
    assert ArcFaceLoss.from_config(config).get_config() == config


def test_training_separates_classes():
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(4, 8)).astype(np.float32)
    y = rng.integers(0, 4, size=256)
    x = centres[y] + 0.3 * rng.normal(size=(256, 8)).astype(np.float32)
    inputs = keras.Input((8,))
    model = keras.Model(inputs, CosineSimilarityHead(4)(inputs))
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=ArcFaceLoss(scale=16.0, margin=0.2))
    history = model.fit(x, y, epochs=15, batch_size=64, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    assert (model.predict(x, verbose=0).argmax(1) == y).mean() > 0.9


@pytest.mark.parametrize("scale,margin", [(0.0, 0.2), (-1.0, 0.2), (30.0, -0.1), (30.0, 2.0)])
def test_bad_parameters(scale, margin):
    with pytest.raises(ConfigError, match="arcface"):
        ArcFaceLoss(scale=scale, margin=margin)
