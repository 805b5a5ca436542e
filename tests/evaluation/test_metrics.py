"""Metric values computed by hand on a small tree (A: x, y; B: z), with shallow labels and withheld levels."""

from __future__ import annotations

import math

import numpy as np
import pytest

from linnet.evaluation import metrics

# Row 1 exact; row 2 wrong leaf; row 3 withheld at level 2; row 4 shallow label, predicted deeper.
Y_TRUE = np.array([["A", "A > x"], ["A", "A > y"], ["B", "B > z"], ["B", ""]], dtype=object)
Y_PRED = np.array([["A", "A > x"], ["A", "A > x"], ["B", ""], ["B", "B > z"]], dtype=object)


def test_hierarchical_micro_by_hand():
    # |P∩T| = 2+1+1+1 = 5, sum|P| = 2+2+1+2 = 7, sum|T| = 2+2+2+1 = 7
    scores = metrics.hierarchical_precision_recall_f1(Y_TRUE, Y_PRED, "micro")
    assert scores["precision"] == pytest.approx(5 / 7)
    assert scores["recall"] == pytest.approx(5 / 7)
    assert scores["f1"] == pytest.approx(5 / 7)


def test_hierarchical_macro_by_hand():
    scores = metrics.hierarchical_precision_recall_f1(Y_TRUE, Y_PRED, "macro")
    assert scores["precision"] == pytest.approx((1 + 0.5 + 1 + 0.5) / 4)
    assert scores["recall"] == pytest.approx((1 + 0.5 + 0.5 + 1) / 4)
    assert scores["f1"] == pytest.approx((1 + 0.5 + 2 / 3 + 2 / 3) / 4)


def test_macro_precision_ignores_uncovered_products():
    y_pred = Y_PRED.copy()
    y_pred[1] = ["", ""]  # nothing predicted for row 2: it leaves precision, it costs recall
    scores = metrics.hierarchical_precision_recall_f1(Y_TRUE, y_pred, "macro")
    assert scores["precision"] == pytest.approx((1 + 1 + 0.5) / 3)
    assert scores["recall"] == pytest.approx((1 + 0 + 0.5 + 1) / 4)


def test_level_leaf_coverage_and_covered_precision():
    assert metrics.level_accuracy(Y_TRUE, Y_PRED).tolist() == pytest.approx([1.0, 1 / 3])
    assert metrics.leaf_accuracy(Y_TRUE, Y_PRED) == pytest.approx(0.25)
    assert metrics.coverage(Y_PRED).tolist() == pytest.approx([1.0, 0.75])
    # level 2 judged on rows 1 and 2 only (row 3 withheld, row 4 has no true level 2)
    assert metrics.precision_on_covered(Y_TRUE, Y_PRED).tolist() == pytest.approx([1.0, 0.5])


def test_integer_class_indices_work_like_node_ids():
    y_true = np.array([[0, 0], [0, 1], [1, 2], [1, -1]])
    y_pred = np.array([[0, 0], [0, 0], [1, -1], [1, 2]])
    assert metrics.hierarchical_precision_recall_f1(y_true, y_pred)["f1"] == pytest.approx(5 / 7)
    assert metrics.level_accuracy(y_true, y_pred).tolist() == pytest.approx([1.0, 1 / 3])


def test_flat_precision_recall_f1_at_level_2():
    # level 2 rows: truth x, y, z; predictions x, x, withheld
    micro = metrics.precision_recall_f1(Y_TRUE, Y_PRED, level=2, average="micro")
    assert (micro["precision"], micro["recall"], micro["support"]) == (pytest.approx(0.5), pytest.approx(1 / 3), 3)
    assert micro["f1"] == pytest.approx(0.4)
    macro = metrics.precision_recall_f1(Y_TRUE, Y_PRED, level=2, average="macro")
    assert macro["precision"] == pytest.approx(1 / 6)  # x: 1/2, y: 0, z: 0
    assert macro["recall"] == pytest.approx(1 / 3)
    assert macro["f1"] == pytest.approx(2 / 9)
    weighted = metrics.precision_recall_f1(Y_TRUE, Y_PRED, level=2, average="weighted", sample_weight=[4, 1, 1, 1])
    # support weights x: 4, y: 1, z: 1 -> recall (4*1 + 0 + 0) / 6
    assert weighted["recall"] == pytest.approx(4 / 6)


def test_value_weighted_scores():
    values = np.array([1.0, 3.0, 0.0, 2.0])
    assert metrics.level_accuracy(Y_TRUE, Y_PRED, values).tolist() == pytest.approx([1.0, 1 / 4])
    scores = metrics.hierarchical_precision_recall_f1(Y_TRUE, Y_PRED, sample_weight=values)
    # intersections 2,1,1,1 weighted: 2+3+0+2 = 7; |P| weighted 2+6+0+4 = 12; |T| 2+6+0+2 = 10
    assert scores["precision"] == pytest.approx(7 / 12)
    assert scores["recall"] == pytest.approx(7 / 10)
    table = {"A": 2.0, "A > y": 9.0}
    assert metrics.values_from_categories(Y_TRUE, table, default=0.5).tolist() == [2.0, 9.0, 0.5, 0.5]


def test_top_k_accuracy_with_indices_and_node_ids():
    scores = np.array([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3], [0.2, 0.3, 0.5], [0.3, 0.3, 0.4]])
    truth = np.array([2, 0, 0, -1])
    assert metrics.top_k_accuracy(truth, scores, k=1) == pytest.approx(1 / 3)
    assert metrics.top_k_accuracy(truth, scores, k=2) == pytest.approx(2 / 3)
    classes = ["A > x", "A > y", "B > z"]
    ids = np.array(["B > z", "A > x", "A > x", ""], dtype=object)
    assert metrics.top_k_accuracy(ids, scores, k=2, classes=classes) == pytest.approx(2 / 3)
    unseen = np.array(["C > q", "A > x", "A > x", ""], dtype=object)  # unknown to the model: a miss
    assert metrics.top_k_accuracy(unseen, scores, k=3, classes=classes) == pytest.approx(2 / 3)


def test_confusion_matrix_top_n_with_other_and_withheld_columns():
    matrix = metrics.confusion_matrix(Y_TRUE, Y_PRED, level=2, labels=["A > x", "B > z"])
    assert matrix.column_labels == ["A > x", "B > z", metrics.OTHER_LABEL, metrics.WITHHELD_LABEL]
    assert matrix.matrix.tolist() == [[1, 0, 0, 0], [0, 0, 0, 1]]
    by_volume = metrics.confusion_matrix(Y_TRUE, Y_PRED, level=1, top_n=1)
    assert by_volume.row_labels == ["A"]  # tie A/B broken by name
    assert by_volume.matrix.tolist() == [[2, 0, 0]]  # A, (other), (withheld)
    assert metrics.top_categories(Y_TRUE, 1, n=1, sample_weight=[0, 0, 1, 1]) == ["B"]


def test_subtree_breakdown_exposes_a_weak_corner():
    breakdown = metrics.subtree_breakdown(Y_TRUE, Y_PRED, ["A", "B > z", "C"])
    assert breakdown["A"]["n_products"] == 2
    assert breakdown["A"]["level_accuracy"] == pytest.approx([1.0, 0.5])
    assert breakdown["B > z"]["n_products"] == 1
    assert breakdown["B > z"]["coverage"] == 1.0
    assert breakdown["B > z"]["level_coverage"] == [1.0, 0.0]
    assert breakdown["C"] == {"n_products": 0}


def test_summarize_keys_and_nan_for_undefined():
    summary = metrics.summarize(Y_TRUE, Y_PRED, values=np.ones(4))
    for key in ("hierarchical_precision", "hierarchical_recall", "hierarchical_f1", "level_accuracy",
                "leaf_accuracy", "coverage", "n_products", "value_weighted"):
        assert key in summary
    assert summary["level_accuracy"] == pytest.approx([1.0, 1 / 3])
    empty = metrics.hierarchical_precision_recall_f1(np.array([["", ""]]), np.array([["", ""]]))
    assert math.isnan(empty["precision"]) and math.isnan(empty["f1"])


def test_paths_to_matrix_and_deepest_nodes():
    matrix = metrics.paths_to_matrix(["A > x", "B", None, ""], num_levels=2)
    assert matrix.tolist() == [["A", "A > x"], ["B", ""], ["", ""], ["", ""]]
    assert metrics.deepest_nodes(matrix).tolist() == ["A > x", "B", "", ""]


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="shape"):
        metrics.hierarchical_precision_recall_f1(Y_TRUE, Y_PRED[:, :1])
    with pytest.raises(ValueError, match="average"):
        metrics.hierarchical_precision_recall_f1(Y_TRUE, Y_PRED, "weighted")


def _random_tree_labels(rng, n, withhold=False):
    """Random 3-level paths over a small tree; node ids are path prefixes, so they are unique."""
    leaves = [(a, b, c) for a in "PQR" for b in "st" for c in "uvw"]
    chosen = [leaves[i] for i in rng.integers(0, len(leaves), n)]
    depth = rng.integers(1, 4, n) if withhold else np.full(n, 3)
    paths = [" > ".join(parts[:d]) for parts, d in zip(chosen, depth)]
    return metrics.paths_to_matrix(paths, num_levels=3)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")
@pytest.mark.parametrize("average", ["micro", "macro"])
def test_cross_check_against_hiclass(average):
    hiclass_metrics = pytest.importorskip("hiclass.metrics")
    rng = np.random.default_rng(0)
    y_true = _random_tree_labels(rng, 200, withhold=True)  # shallow true labels
    y_pred = _random_tree_labels(rng, 200)
    y_pred[:60] = y_true[:60]
    ours = metrics.hierarchical_precision_recall_f1(y_true, y_pred, average)
    y_true_str, y_pred_str = y_true.astype(str), y_pred.astype(str)
    assert ours["precision"] == pytest.approx(hiclass_metrics.precision(y_true_str, y_pred_str, average))
    assert ours["recall"] == pytest.approx(hiclass_metrics.recall(y_true_str, y_pred_str, average))
    assert ours["f1"] == pytest.approx(hiclass_metrics.f1(y_true_str, y_pred_str, average))
    if average == "micro":  # withheld predictions: hiclass drops "" from the predicted set too
        y_pred_withheld = _random_tree_labels(rng, 200, withhold=True)
        ours = metrics.hierarchical_precision_recall_f1(y_true, y_pred_withheld)
        assert ours["precision"] == pytest.approx(
            hiclass_metrics.precision(y_true_str, y_pred_withheld.astype(str)))
