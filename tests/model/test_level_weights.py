"""Level weights (fixed and scheduled), the masked loss and the masked accuracy, checked numerically."""

from __future__ import annotations

import math

import numpy as np
import pytest

from linnet.errors import ConfigError
from linnet.model import (
    LevelWeightsConfig,
    MaskedSparseCategoricalAccuracy,
    MaskedSparseCategoricalCrossentropy,
    exponential_level_weights,
    fixed_level_weights,
    level_weight_scheduler,
    level_weights_for_epoch,
    make_level_weight_variables,
)


def test_fixed_weights_rise_with_depth_or_are_given():
    np.testing.assert_allclose(fixed_level_weights(3), [1 / 6, 2 / 6, 3 / 6], rtol=1e-6)
    np.testing.assert_allclose(fixed_level_weights(2, [0.3, 0.7]), [0.3, 0.7])
    with pytest.raises(ConfigError, match="2 weights but the taxonomy has 3 levels"):
        fixed_level_weights(3, [0.5, 0.5])


def test_exponential_schedule_moves_weight_from_level_one_to_leaf():
    num_levels = 4
    first = exponential_level_weights(0, num_levels, half_life_epochs=2.0, sharpness=1.0, floor=0.1)
    # Epoch 0: focus on level 1, raw_k = exp(-(k - 1)) + 0.1.
    raw = np.exp(-np.arange(4.0)) + 0.1
    np.testing.assert_allclose(first, raw / raw.sum(), rtol=1e-6)
    # After one half-life the focus is half-way: level 1 + (L - 1) / 2 = 2.5.
    middle = exponential_level_weights(2, num_levels, half_life_epochs=2.0, sharpness=1.0, floor=0.1)
    raw = np.exp(-np.abs(np.arange(1.0, 5.0) - 2.5)) + 0.1
    np.testing.assert_allclose(middle, raw / raw.sum(), rtol=1e-6)
    late = exponential_level_weights(40, num_levels)
    assert np.argmax(late) == num_levels - 1
    for epoch in range(6):
        weights = exponential_level_weights(epoch, num_levels)
        assert math.isclose(float(weights.sum()), 1.0, rel_tol=1e-5)
    leaf_share = [exponential_level_weights(epoch, num_levels)[-1] for epoch in range(8)]
    assert all(later > earlier for earlier, later in zip(leaf_share, leaf_share[1:]))


def test_masked_loss_ignores_missing_labels_and_scales_by_level_weight():
    predictions = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]], dtype="float32")
    labels = np.array([0, -1, 2])
    loss = MaskedSparseCategoricalCrossentropy(level_weight=0.5)
    expected = 0.5 * (-math.log(0.7) - math.log(0.4)) / 3  # sum over batch size, masked row adds 0
    assert float(loss(labels, predictions)) == pytest.approx(expected, rel=1e-5)
    # A variable weight changes the loss without rebuilding it.
    (variable,) = make_level_weight_variables([1.0])
    loss = MaskedSparseCategoricalCrossentropy(level_weight=variable)
    before = float(loss(labels, predictions))
    variable.assign(0.25)
    assert float(loss(labels, predictions)) == pytest.approx(before * 0.25, rel=1e-5)
    # Sample weights (class weights) multiply each product's term.
    weighted = float(loss(labels, predictions, sample_weight=np.array([2.0, 0.0, 0.0], dtype="float32")))
    assert weighted == pytest.approx(0.25 * 2.0 * -math.log(0.7) / 3, rel=1e-5)
    assert MaskedSparseCategoricalCrossentropy.from_config(loss.get_config()).level_weight == pytest.approx(0.25)


def test_masked_accuracy_counts_labelled_products_only():
    metric = MaskedSparseCategoricalAccuracy()
    metric.update_state(np.array([0, -1, 1, 1]), np.array([[0.9, 0.1], [0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]),
                        sample_weight=np.array([5.0, 1.0, 1.0, 1.0]))
    assert float(metric.result()) == pytest.approx(2 / 3)


def test_scheduler_sets_and_logs_weights_each_epoch():
    config = LevelWeightsConfig(type="exponential", half_life_epochs=1.0)
    variables = make_level_weight_variables(level_weights_for_epoch(config, 0, 3))
    callback = level_weight_scheduler(config, variables)
    for epoch in range(3):
        callback.on_epoch_begin(epoch)
        logs = {}
        callback.on_epoch_end(epoch, logs)
        expected = exponential_level_weights(epoch, 3, half_life_epochs=1.0)
        np.testing.assert_allclose([logs[f"level_weight_{k}"] for k in (1, 2, 3)], expected, rtol=1e-6)
        np.testing.assert_allclose(callback.weights_by_epoch[epoch], expected, rtol=1e-6)
    fixed = level_weight_scheduler(LevelWeightsConfig(type="fixed", weights=[1.0, 2.0, 3.0]), variables)
    fixed.on_epoch_begin(5)
    assert [float(v.numpy()) for v in variables] == [1.0, 2.0, 3.0]


def test_label_smoothing_mixes_in_the_uniform_target_on_labelled_products_only():
    labels = np.array([0, -1])
    probabilities = np.array([[0.5, 0.3, 0.2], [0.9, 0.05, 0.05]], "float32")
    smoothed = MaskedSparseCategoricalCrossentropy(label_smoothing=0.1)
    cross_entropy = -math.log(0.5)
    uniform = -(math.log(0.5) + math.log(0.3) + math.log(0.2)) / 3
    # (1 - eps) CE + eps * mean_k(-log p_k) for the labelled product; the unlabelled one adds 0; mean over 2.
    assert float(smoothed(labels, probabilities)) == pytest.approx((0.9 * cross_entropy + 0.1 * uniform) / 2, rel=1e-5)
    from_logits = MaskedSparseCategoricalCrossentropy(from_logits=True, label_smoothing=0.1)
    assert float(from_logits(labels, np.log(probabilities))) == pytest.approx(float(smoothed(labels, probabilities)),
                                                                            rel=1e-5)
    assert smoothed.get_config()["label_smoothing"] == 0.1
    with pytest.raises(ValueError, match="label_smoothing"):
        MaskedSparseCategoricalCrossentropy(label_smoothing=1.0)


def test_label_smoothing_config_is_checked():
    from linnet.training.config import TrainingConfig

    assert TrainingConfig.from_dict({"training": {"label_smoothing": 0.1}}).training.label_smoothing == 0.1
    with pytest.raises(ConfigError, match="training.label_smoothing"):
        TrainingConfig.from_dict({"training": {"label_smoothing": 1.5}})
