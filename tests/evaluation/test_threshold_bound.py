"""Thresholds that hold out of sample: on synthetic scores whose test precision is known (a large fresh draw
of the same distribution), cut-offs chosen on a lower confidence bound reach the target on test within a
point, where the point estimate often falls short; the held-out report says what they reach."""

from __future__ import annotations

import numpy as np
import pytest

from linnet.evaluation.calibration import (
    calibrate,
    held_out_check,
    threshold_for_precision,
)


def draw(seed: int, count: int):
    """A model right 90 % of the time; right answers are more confident than wrong ones, with overlap."""
    rng = np.random.default_rng(seed)
    right = rng.random(count) < 0.9
    return np.where(right, rng.beta(12, 1, count), rng.beta(4, 2, count)), right


@pytest.fixture(scope="module")
def test_draws():
    return [draw(1000 + seed, 100_000) for seed in range(40)]


def precision_at(threshold, test):
    confidence, right = test
    accepted = confidence >= threshold
    return float(right[accepted].mean()) if accepted.any() else float("nan")


def shortfalls(bound_z, target, test_draws):
    """Draws (of 40) whose test precision is more than a point under ``target``, and the mean coverage."""
    short, covered = 0, []
    for seed, test in enumerate(test_draws):
        threshold, _, _ = threshold_for_precision(*draw(seed, 500), target, bound_z=bound_z)
        precision = precision_at(threshold, test)
        short += int(precision < target - 0.01)
        covered.append(float((test[0] >= threshold).mean()))
    return short, float(np.mean(covered))


def test_the_default_bound_holds_the_target_out_of_sample_where_the_point_estimate_does_not(test_draws):
    point_short, point_coverage = shortfalls(0.0, 0.95, test_draws)
    default_short, default_coverage = shortfalls(1.0, 0.95, test_draws)
    assert point_short >= 3, "the point estimate on 500 products overfits (the defect this guards against)"
    assert default_short == 0
    assert default_coverage > point_coverage - 0.06, "the bound costs a little coverage, not most of it"
    # At 0.99 as well.
    assert shortfalls(1.0, 0.99, test_draws)[0] == 0


def test_the_default_is_the_bound():
    confidence, right = draw(0, 500)
    assert threshold_for_precision(confidence, right, 0.95) == threshold_for_precision(confidence, right, 0.95,
                                                                                      bound_z=1.0)
    assert threshold_for_precision(confidence, right, 0.95)[0] > threshold_for_precision(confidence, right, 0.95,
                                                                                         bound_z=0.0)[0]


def test_the_held_out_report_measures_precision_on_products_not_fitted_on(test_draws):
    confidence, right = draw(3, 4000)
    truth = np.where(right, "A", "A")[:, None].astype(object)
    predicted = np.where(right, "A", "B")[:, None].astype(object)
    report = held_out_check(truth, predicted, confidence[:, None], 0.95)
    assert report["folds"] == 2
    # Known answer: thresholds fitted on 2,000 products reach the target on the other 2,000 within a point.
    assert report["level_precision"][0] == pytest.approx(0.95, abs=0.01) or report["level_precision"][0] > 0.95
    assert 0.5 < report["level_coverage"][0] < 1.0
    calibration = calibrate(truth, predicted, confidence[:, None], 0.95)
    assert calibration.report["held_out"]["level_precision"] == report["level_precision"]
