"""Streaming Keras versions of the `linnet.evaluation.metrics` scores that make sense batch by batch during ``fit``.

`linnet.evaluation.metrics` scores whole prediction matrices after the fact (NumPy, path strings, thresholds). During
training the model only has one level's probabilities per output and integer labels with ``-1`` for "no
label at this level"; these metrics accept exactly that and skip the ``-1`` rows, so a shallow label never
counts as a miss:

- `MaskedTopKAccuracy`: top-k accuracy of one level (``k=1`` is that level's accuracy).
- `LeafHierarchicalF1`: micro hierarchical F1 of the leaf level's argmax, counting the ancestors the
  predicted and the true leaf share (Kiritchenko et al.), from the taxonomy's ``parent_index`` chain.

Both are plain ``keras.metrics.Metric`` subclasses (any backend ops), serialisable, and agree with
`linnet.evaluation.metrics.top_k_accuracy` / `linnet.evaluation.metrics.hierarchical_precision_recall_f1` on the same inputs.

Example:
    >>> import numpy as np
    >>> metric = MaskedTopKAccuracy(k=2)
    >>> metric.update_state(np.array([2, -1, 0]), np.array([[0.1, 0.5, 0.4], [1, 0, 0], [0.2, 0.3, 0.5]]))
    >>> float(metric.result())
    0.5
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="linnet")
class MaskedTopKAccuracy(keras.metrics.Metric):
    """Share of labelled products whose true class is among the ``k`` highest scores of this level.

    ``sum_i [y_i >= 0] * [y_i in top_k(p_i)] / sum_i [y_i >= 0]``; rows labelled ``-1`` are skipped and
    sample weights multiply each labelled row. Ties at the k-th score count as hits (rank = number of
    strictly higher scores).

    Args:
        k: how many of the top classes count.
        name: metric name (default ``top_{k}_accuracy``).
    """

    def __init__(self, k: int = 5, name: str | None = None, dtype=None):
        super().__init__(name=name or f"top_{int(k)}_accuracy", dtype=dtype)
        if int(k) < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        self.k = int(k)
        self.hits = self.add_variable(shape=(), initializer="zeros", name="hits")
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
        scores = ops.cast(y_pred, "float32")
        labelled = ops.greater_equal(labels, 0)
        true_score = ops.take_along_axis(scores, ops.expand_dims(ops.maximum(labels, 0), -1), axis=-1)
        rank = ops.sum(ops.cast(ops.greater(scores, true_score), "float32"), axis=-1)
        weight = ops.cast(labelled, "float32")
        if sample_weight is not None:
            weight = weight * ops.reshape(ops.cast(sample_weight, "float32"), (-1,))
        self.hits.assign_add(ops.sum(weight * ops.cast(ops.less(rank, float(self.k)), "float32")))
        self.total.assign_add(ops.sum(weight))

    def result(self):
        return ops.divide_no_nan(self.hits, self.total)

    def reset_state(self):
        self.hits.assign(0.0)
        self.total.assign(0.0)

    def get_config(self):
        return {"k": self.k, "name": self.name, "dtype": self.dtype}


def leaf_ancestor_matrix(parent_indices: Sequence) -> np.ndarray:
    """``int32 [n_leaf, L]``: the class index at every level of each leaf-level class's path.

    Args:
        parent_indices: ``[taxonomy.parent_index(level) for level in 2..L]`` (level-k class -> level-(k-1)
            class), as the taxonomy gives them.
    """
    chain = [np.asarray(parents, dtype=np.int64) for parents in parent_indices]
    if not chain:
        raise ValueError("a hierarchical metric needs at least two levels (one parent_index array)")
    n_leaf = len(chain[-1])
    columns = [np.arange(n_leaf)]
    for parents in reversed(chain):
        columns.append(parents[columns[-1]])
    return np.stack(columns[::-1], axis=1).astype(np.int32)


@keras.saving.register_keras_serializable(package="linnet")
class LeafHierarchicalF1(keras.metrics.Metric):
    """Micro hierarchical F1 of the leaf level: ``2 hP hR / (hP + hR)`` with ``hP = hR = sum |A(p) ∩ A(t)| /
    sum |A(t)|``, where ``A(x)`` is the set of ancestors of leaf ``x`` (itself included).

    Only products labelled down to the leaf level are counted (the leaf label ``-1`` rows are skipped); for
    them both paths have ``L`` nodes, so hierarchical precision and recall are equal and the F1 is the mean
    share of the true path that the predicted leaf's path gets right. The same value as
    ``linnet.evaluation.metrics.hierarchical_precision_recall_f1`` on full-depth labels and full-depth predictions.

    Args:
        ancestors: ``[n_leaf, L]`` class index per level of each leaf (see `leaf_ancestor_matrix`), or
            use `from_taxonomy`.
        name: metric name.
    """

    def __init__(self, ancestors, name: str = "hierarchical_f1", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.ancestors = np.asarray(ancestors, dtype=np.int32)
        if self.ancestors.ndim != 2:
            raise ValueError(f"ancestors must be [n_leaf, levels], got shape {self.ancestors.shape}")
        self.shared = self.add_variable(shape=(), initializer="zeros", name="shared")
        self.true_nodes = self.add_variable(shape=(), initializer="zeros", name="true_nodes")

    @classmethod
    def from_taxonomy(cls, taxonomy, **kwargs) -> LeafHierarchicalF1:
        levels = range(2, taxonomy.num_levels + 1)
        return cls(leaf_ancestor_matrix([taxonomy.parent_index(level) for level in levels]), **kwargs)

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
        predicted = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
        table = ops.convert_to_tensor(self.ancestors)
        true_paths = ops.take(table, ops.maximum(labels, 0), axis=0)
        predicted_paths = ops.take(table, predicted, axis=0)
        shared = ops.sum(ops.cast(ops.equal(true_paths, predicted_paths), "float32"), axis=-1)
        weight = ops.cast(ops.greater_equal(labels, 0), "float32")
        if sample_weight is not None:
            weight = weight * ops.reshape(ops.cast(sample_weight, "float32"), (-1,))
        self.shared.assign_add(ops.sum(weight * shared))
        self.true_nodes.assign_add(ops.sum(weight) * float(self.ancestors.shape[1]))

    def result(self):
        return ops.divide_no_nan(self.shared, self.true_nodes)

    def reset_state(self):
        self.shared.assign(0.0)
        self.true_nodes.assign(0.0)

    def get_config(self):
        return {"ancestors": self.ancestors.tolist(), "name": self.name, "dtype": self.dtype}
