"""The streaming Keras metrics agree with the NumPy metrics of `linnet.evaluation.metrics` on the same inputs."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from linnet.evaluation import metrics
from linnet.evaluation.keras_metrics import LeafHierarchicalF1, MaskedTopKAccuracy, leaf_ancestor_matrix
from linnet.taxonomy import Taxonomy

PATHS = ["A > a1 > x", "A > a1 > y", "A > a2 > z", "B > b1 > u", "B > b2 > v", "B > b2 > w"]


@pytest.fixture(scope="module")
def tree():
    return Taxonomy.from_paths(PATHS)


def test_top_k_skips_unlabelled_rows_and_matches_numpy():
    rng = np.random.default_rng(0)
    scores = rng.random((40, 7)).astype("float32")
    labels = rng.integers(-1, 7, size=40)
    for k in (1, 3):
        metric = MaskedTopKAccuracy(k=k)
        metric.update_state(labels[:25], scores[:25])  # two batches stream into one number
        metric.update_state(labels[25:], scores[25:])
        labelled = labels >= 0
        expected = metrics.top_k_accuracy(labels[labelled], scores[labelled], k)
        assert float(metric.result()) == pytest.approx(expected)
    metric.reset_state()
    assert float(metric.result()) == 0.0


def test_ancestor_matrix_follows_parent_index(tree):
    ancestors = leaf_ancestor_matrix([tree.parent_index(2), tree.parent_index(3)])
    assert ancestors.shape == (6, 3)
    for leaf, row in enumerate(ancestors):
        path = [tree.classes(level)[index] for level, index in enumerate(row, 1)]
        parts = tree.classes(3)[leaf].split(" > ")  # inferred trees use the full path as node id
        assert path == [" > ".join(parts[:depth]) for depth in (1, 2, 3)]


def test_leaf_hierarchical_f1_equals_numpy_on_full_depth_labels(tree):
    rng = np.random.default_rng(1)
    leaves = tree.classes(3)
    labels = rng.integers(-1, len(leaves), size=60)
    probabilities = rng.random((60, len(leaves))).astype("float32")
    metric = LeafHierarchicalF1.from_taxonomy(tree)
    metric.update_state(labels, probabilities)

    ancestors = leaf_ancestor_matrix([tree.parent_index(2), tree.parent_index(3)])
    names = [np.asarray(tree.classes(level), dtype=object) for level in (1, 2, 3)]

    def as_paths(indices):
        return np.stack([names[level][ancestors[indices, level]] for level in range(3)], axis=1)

    labelled = labels >= 0
    expected = metrics.hierarchical_precision_recall_f1(as_paths(labels[labelled]),
                                                        as_paths(probabilities[labelled].argmax(axis=1)))["f1"]
    assert float(metric.result()) == pytest.approx(expected)
    assert 0.0 < expected < 1.0


def test_metrics_run_inside_compile_and_round_trip(tree):
    metric = LeafHierarchicalF1.from_taxonomy(tree)
    clone = LeafHierarchicalF1.from_config(metric.get_config())
    np.testing.assert_array_equal(clone.ancestors, metric.ancestors)
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(6, activation="softmax")(inputs))
    model.compile(loss="sparse_categorical_crossentropy", metrics=[metric, MaskedTopKAccuracy(2)])
    x = np.random.default_rng(2).random((16, 4)).astype("float32")
    logs = model.evaluate(x, np.arange(16) % 6, verbose=0, return_dict=True)
    assert 0.0 <= logs["hierarchical_f1"] <= 1.0 and 0.0 <= logs["top_2_accuracy"] <= 1.0
