"""Stop classes: "the product's path ends here", so paths of every depth compete on one footing.

In a ragged tree a product may stop at any node: at a leaf above the deepest level, or at an inner node that
carries labels itself ("Clothing > Women's Clothing" with children of its own). With ``model.stop_classes``
(the default) the head of level ``k`` (``k >= 2``) has, after its ``n_k`` real classes, one *stop column per
class of level k-1*: column ``n_k + j`` means "the path ends at class ``j`` of level k-1". A product labelled
down to depth ``d < L`` is trained with its level ``d+1`` label set to the stop column of its last node
(`with_stop_labels`), and no label below. So every node above the deepest level has one extra child, its stop
column, and every node is the end of exactly one path of that *augmented* tree:

- a path ending at a node of depth ``d < L`` scores ``log p_1 + ... + log p_d + log p_{d+1}(stop)`` (each term
  given the level above, `linnet.inference.classifier`): a shallow
  leaf pays a trained "ends here" term, which is small for a product the model places deeper, where before it
  paid nothing and beat deeper paths merely by having fewer terms;
- an inner node that carries labels is a candidate answer, chosen when its stop column outweighs its children.

The layout depends on the taxonomy alone (no training statistics), so `linnet.inference.classifier` finds it
from the width of each level's output: ``n_k + n_{k-1}`` is stop-aware, ``n_k`` is a model saved before stop
classes existed (its descent is unchanged).

Example:
    >>> import numpy as np
    >>> output_sizes([2, 3, 4], stop_classes=True)
    [2, 5, 7]
    >>> with_stop_labels(np.array([[0, 1, 2], [1, -1, -1], [0, 2, -1]]), [2, 3, 4]).tolist()
    [[0, 1, 2], [1, 4, -1], [0, 2, 6]]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def stop_counts(level_sizes: Sequence[int]) -> list[int]:
    """Stop columns per level: none at level 1, one per class of level k-1 at level k."""
    sizes = [int(size) for size in level_sizes]
    return [0] + sizes[:-1]


def output_sizes(level_sizes: Sequence[int], stop_classes: bool) -> list[int]:
    """Width of each level's output: ``n_k`` (+ ``n_{k-1}`` stop columns with ``stop_classes``)."""
    sizes = [int(size) for size in level_sizes]
    if not stop_classes:
        return sizes
    return [size + stops for size, stops in zip(sizes, stop_counts(sizes))]


def with_stop_labels(labels, level_sizes: Sequence[int]) -> np.ndarray:
    """``labels`` (int ``[N, L]``, ``-1`` = none, a prefix per row) with each row's stop column set at the level
    below its last label (rows labelled down to the deepest level, and unlabelled rows, are unchanged)."""
    labels = np.array(labels, dtype=np.int32, copy=True)
    sizes = [int(size) for size in level_sizes]
    if labels.ndim != 2 or labels.shape[1] != len(sizes) or labels.shape[1] < 2:
        return labels
    depth = (labels >= 0).sum(axis=1)
    rows = np.flatnonzero((depth >= 1) & (depth < len(sizes)))
    last = labels[rows, depth[rows] - 1]
    labels[rows, depth[rows]] = np.asarray(sizes, dtype=np.int32)[depth[rows]] + last
    return labels
