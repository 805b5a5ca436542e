"""The quality benchmark's per-product hierarchical counts and the paired-bootstrap interval of the hF1 margin."""

from __future__ import annotations

import numpy as np
import pytest


def _paths(rows):
    return np.array(rows, dtype=object)


def test_counts_sum_to_linnet_metrics_hierarchical_f1_with_shallow_labels():
    from benchmarks.bench_quality import hierarchical_f1_of
    from linnet.evaluation import metrics

    truth = _paths([["A", "A>B", "A>B>C"], ["A", "A>D", ""], ["E", "", ""], ["A", "A>B", "A>B>F"]])
    predicted = _paths([["A", "A>B", "A>B>C"], ["A", "A>B", "A>B>C"], ["A", "A>D", ""], ["A", "A>B", "A>B>C"]])
    counts = metrics.hierarchical_counts(truth, predicted)
    # Hand count (true positives, predicted nodes, true nodes) per product.
    np.testing.assert_array_equal(counts, [[3, 3, 3], [1, 3, 2], [0, 2, 1], [2, 3, 3]])
    assert float(hierarchical_f1_of(counts)) == pytest.approx(2 * 6 / (11 + 9))
    assert float(hierarchical_f1_of(counts)) == pytest.approx(metrics.summarize(truth, predicted)["hierarchical_f1"])


def test_bootstrap_interval_is_zero_for_one_model_and_brackets_a_real_difference():
    from benchmarks.bench_quality import paired_bootstrap_interval
    from linnet.evaluation.metrics import hierarchical_counts

    rng = np.random.default_rng(0)
    truth = _paths([["A", "A>B"] if flip else ["C", "C>D"] for flip in rng.integers(0, 2, 400)])
    wrong = _paths([["C", "C>D"] if row[0] == "A" else ["A", "A>B"] for row in truth])
    # "ours" is right on 90 % of the products, "theirs" on 60 %: an hF1 margin of about +0.3.
    ours = hierarchical_counts(truth, np.where((rng.uniform(size=400) < 0.9)[:, None], truth, wrong))
    theirs = hierarchical_counts(truth, np.where((rng.uniform(size=400) < 0.6)[:, None], truth, wrong))
    assert paired_bootstrap_interval(ours, ours, resamples=200) == (0.0, 0.0)
    low, high = paired_bootstrap_interval(ours, theirs, resamples=500)
    observed = ours[:, 0].sum() / ours[:, 1].sum() - theirs[:, 0].sum() / theirs[:, 1].sum()
    assert 0 < low < observed < high < 0.6


def test_miss_overlap_counts_wrong_paths_and_the_oracle_takes_ours_only_where_it_is_right():
    from benchmarks.bench_quality import hierarchical_f1_of, miss_overlap
    from linnet.evaluation.metrics import hierarchical_counts

    truth = _paths([["A", "A>B"], ["A", "A>B"], ["C", "C>D"], ["C", ""], ["A", "A>B"]])
    # ours: right, right, wrong leaf, too deep, wrong; theirs: right, wrong, wrong leaf, right, right.
    ours = hierarchical_counts(truth, _paths([["A", "A>B"], ["A", "A>B"], ["C", "C>E"], ["C", "C>D"], ["C", "C>D"]]))
    theirs = hierarchical_counts(truth, _paths([["A", "A>B"], ["C", "C>D"], ["C", "C>F"], ["C", ""], ["A", "A>B"]]))
    overlap = miss_overlap(ours, theirs)
    assert (overlap["misses"], overlap["their misses"], overlap["shared misses"]) == (3, 2, 1)
    # The oracle is right on all but product 2 (both wrong there; it keeps theirs, one node of two).
    oracle = np.array([[2, 2, 2], [2, 2, 2], [1, 2, 2], [1, 1, 1], [2, 2, 2]])
    assert overlap["oracle gain"] == pytest.approx(float(hierarchical_f1_of(oracle) - hierarchical_f1_of(theirs)))
    assert overlap["oracle gain"] > 0
    assert miss_overlap(theirs, theirs)["oracle gain"] == 0.0
