"""Quality metrics for hierarchical predictions, as plain NumPy functions.

Every function takes label matrices of shape ``[N, L]``: one row per product, one column per taxonomy level
(level 1 first). A cell holds the node at that level: either a node id string (``""`` or ``None`` where the
product has no node at that level) or an int class index (``-1`` for none). Node ids must identify a node
uniquely across the whole tree (the taxonomy's node ids, or full paths joined with ``" > "``), so that two
cells are the same node exactly when they are equal.

A *withheld* level is a level the classifier chose not to expose (its confidence was below the threshold);
it is written as "no node" in the prediction matrix, so predictions are prefixes of the full descent path.
A *shallow* label is a true path that stops above the deepest level; its missing levels are not scored.

Example:
    >>> import numpy as np
    >>> from linnet.evaluation import metrics
    >>> y_true = np.array([["A", "A > x"], ["B", "B > y"]])
    >>> y_pred = np.array([["A", "A > x"], ["B", ""]])        # second product withheld at level 2
    >>> metrics.hierarchical_precision_recall_f1(y_true, y_pred)["f1"]
    0.8571428571428571
    >>> metrics.coverage(y_pred).tolist()
    [1.0, 0.5]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

PATH_SEPARATOR = " > "
WITHHELD_LABEL = "(withheld)"
OTHER_LABEL = "(other)"


# --------------------------------------------------------------------------------------------- inputs
def as_label_matrix(labels) -> np.ndarray:
    """Return ``labels`` as a 2-D array ``[N, L]`` (a 1-D array becomes one column)."""
    array = np.asarray(labels)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise ValueError(f"expected a label matrix of shape [N, L], got shape {array.shape}")
    return array


def missing_mask(labels) -> np.ndarray:
    """True where a label matrix holds "no node" (``-1`` for ints; ``""``/``None``/NaN for strings)."""
    array = np.asarray(labels)
    if np.issubdtype(array.dtype, np.integer):
        return array < 0
    if np.issubdtype(array.dtype, np.floating):
        return np.isnan(array) | (array < 0)
    if array.dtype.kind in "US":
        return array == array.dtype.type("")
    import pandas as pd  # lazy: only object arrays need it, and pandas is slow to import

    return np.asarray(pd.isna(array) | (array == ""), dtype=bool)


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validate a true/predicted pair; return both with their "has a node" masks."""
    y_true, y_pred = as_label_matrix(y_true), as_label_matrix(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has shape {y_true.shape} but y_pred has shape {y_pred.shape}")
    return y_true, y_pred, ~missing_mask(y_true), ~missing_mask(y_pred)


def check_sample_weight(sample_weight, n: int) -> np.ndarray:
    if sample_weight is None:
        return np.ones(n, dtype=np.float64)
    weights = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
    if weights.shape[0] != n:
        raise ValueError(f"sample_weight has {weights.shape[0]} entries for {n} products")
    if np.any(weights < 0) or not np.all(np.isfinite(weights)):
        raise ValueError("sample_weight must be finite and non-negative")
    return weights


def index_of(vocabulary: Sequence, cells) -> np.ndarray:
    """Position of each cell in ``vocabulary`` (-1 when absent), vectorised through a pandas index."""
    import pandas as pd  # lazy: pandas is slow to import; most metrics do not need it

    return pd.Index(list(vocabulary)).get_indexer(np.asarray(cells, dtype=object)).astype(np.int64)


def _ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, or NaN when nothing was counted (an undefined score is not a zero)."""
    return float(numerator / denominator) if denominator > 0 else float("nan")


def paths_to_matrix(paths: Iterable[str], num_levels: int | None = None, separator: str = PATH_SEPARATOR) -> np.ndarray:
    """Split full path strings into a node-id matrix whose node ids are path prefixes.

    ``"A > B > C"`` becomes ``["A", "A > B", "A > B > C"]``, the node ids of a tree inferred from paths.
    Empty paths (nothing predicted) become rows of ``""``.

    Example:
        >>> paths_to_matrix(["A > B", "C", ""], num_levels=2).tolist()
        [['A', 'A > B'], ['C', ''], ['', '']]
    """
    split = [[part.strip() for part in path.split(separator)] if isinstance(path, str) and path else [] for path in paths]
    depth = max((len(parts) for parts in split), default=0) if num_levels is None else num_levels
    matrix = np.full((len(split), depth), "", dtype=object)
    for row, parts in enumerate(split):
        for level in range(min(len(parts), depth)):
            matrix[row, level] = separator.join(parts[: level + 1])
    return matrix


def deepest_nodes(labels) -> np.ndarray:
    """The deepest node of each row (``""`` for an empty row): the full path when node ids are paths."""
    matrix = as_label_matrix(labels)
    present = ~missing_mask(matrix)
    depth = present.sum(axis=1)
    out = np.full(matrix.shape[0], "", dtype=object)
    rows = np.nonzero(depth > 0)[0]
    out[rows] = matrix[rows, depth[rows] - 1]
    return out


# ----------------------------------------------------------------------------------- per-level scores
def level_accuracy(y_true, y_pred, sample_weight=None) -> np.ndarray:
    """Accuracy at each level, over the products that have a true node at that level.

    ``acc_k = sum_i w_i [t_ik = p_ik] / sum_i w_i [t_ik present]``. A withheld level counts as a miss.
    With ``sample_weight`` set to each product's business value this is the value-weighted accuracy.

    Returns:
        float array ``[L]`` (NaN for a level with no true node).
    """
    y_true, y_pred, has_true, has_pred = _pair(y_true, y_pred)
    weights = check_sample_weight(sample_weight, y_true.shape[0])[:, None]
    correct = has_true & has_pred & (y_true == y_pred)
    return np.array([_ratio(n, d) for n, d in zip((weights * correct).sum(0), (weights * has_true).sum(0))])


def leaf_accuracy(y_true, y_pred, sample_weight=None) -> float:
    """Share of products whose exposed path equals the true path exactly (every level, same depth).

    ``acc_leaf = sum_i w_i [p_i = t_i] / sum_i w_i`` over products with at least one true node. A prediction
    withheld above the true leaf, or one deeper than a shallow true label, is a miss.
    """
    y_true, y_pred, has_true, has_pred = _pair(y_true, y_pred)
    weights = check_sample_weight(sample_weight, y_true.shape[0])
    same = np.all((has_true == has_pred) & (~has_true | (y_true == y_pred)), axis=1)
    labelled = has_true.any(axis=1)
    return _ratio((weights * (same & labelled)).sum(), (weights * labelled).sum())


def coverage(y_pred, sample_weight=None) -> np.ndarray:
    """Share of products that receive a prediction at each level after thresholds.

    ``coverage_k = sum_i w_i [p_ik present] / sum_i w_i``; ``coverage[0]`` is the share with any prediction.
    """
    y_pred = as_label_matrix(y_pred)
    weights = check_sample_weight(sample_weight, y_pred.shape[0])
    if weights.sum() == 0:
        return np.full(y_pred.shape[1], np.nan)
    return (weights[:, None] * ~missing_mask(y_pred)).sum(0) / weights.sum()


def precision_on_covered(y_true, y_pred, sample_weight=None) -> np.ndarray:
    """Per-level precision on the covered products: ``sum_i w_i [p_ik = t_ik] / sum_i w_i [p_ik present]``.

    Only products with a true node at level k enter level k (a shallow label cannot be judged deeper).
    """
    y_true, y_pred, has_true, has_pred = _pair(y_true, y_pred)
    weights = check_sample_weight(sample_weight, y_true.shape[0])[:, None]
    judged = has_true & has_pred
    correct = judged & (y_true == y_pred)
    return np.array([_ratio(n, d) for n, d in zip((weights * correct).sum(0), (weights * judged).sum(0))])


def top_k_accuracy(y_true_level, level_scores, k: int = 5, classes: Sequence | None = None, sample_weight=None) -> float:
    """Share of products whose true node at one level is among the ``k`` highest-scored classes.

    Args:
        y_true_level: ``[N]`` true class indices (``-1`` for none), or node ids when ``classes`` is given.
        level_scores: ``[N, n_classes]`` scores (probabilities) of that level.
        k: how many top classes count as a hit.
        classes: node id of each score column; needed when ``y_true_level`` holds node ids.
        sample_weight: optional ``[N]`` weights (business value).

    ``acc@k = sum_i w_i [t_i in top_k(s_i)] / sum_i w_i [t_i present]``. A true node unknown to ``classes``
    is a miss.
    """
    scores = np.asarray(level_scores, dtype=np.float64)
    truth = np.asarray(y_true_level).reshape(-1)
    if scores.ndim != 2 or scores.shape[0] != truth.shape[0]:
        raise ValueError(f"level_scores must be [N, n_classes] with N={truth.shape[0]}, got {scores.shape}")
    present = ~missing_mask(truth)
    if classes is not None:
        truth = np.where(present, index_of(classes, truth), -1)
    truth = truth.astype(np.int64)
    k = min(int(k), scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < scores.shape[1] else np.argsort(-scores, axis=1)
    hit = present & (top == truth[:, None]).any(axis=1) & (truth >= 0)
    weights = check_sample_weight(sample_weight, truth.shape[0])
    return _ratio((weights * hit).sum(), (weights * present).sum())


def precision_recall_f1(y_true, y_pred, level: int, average: str = "micro", sample_weight=None) -> dict:
    """Flat precision, recall and F1 of one level, over products with a true node at that level.

    Uses :func:`sklearn.metrics.precision_recall_fscore_support` with the label set = every node seen at
    that level in ``y_true`` or ``y_pred``; a withheld prediction belongs to no class, so it lowers recall
    but not precision. ``micro``: ``P = TP / predicted``, ``R = TP / true``; ``macro``: unweighted mean of
    per-class scores; ``weighted``: mean weighted by each class's true support.

    Args:
        level: 1-based level.
        average: ``"micro"``, ``"macro"`` or ``"weighted"``.
        sample_weight: optional ``[N]`` weights (business value gives value-weighted P/R/F1).

    Returns:
        ``{"precision", "recall", "f1", "support"}``.
    """
    from sklearn.metrics import precision_recall_fscore_support  # lazy: slow to import

    if average not in ("micro", "macro", "weighted"):
        raise ValueError(f"average must be 'micro', 'macro' or 'weighted', got {average!r}")
    y_true, y_pred, has_true, has_pred = _pair(y_true, y_pred)
    if not 1 <= level <= y_true.shape[1]:
        raise ValueError(f"level must be between 1 and {y_true.shape[1]}, got {level}")
    column = level - 1
    rows = has_true[:, column]
    if not rows.any():
        return {"precision": float("nan"), "recall": float("nan"), "f1": float("nan"), "support": 0}
    truth = y_true[rows, column].astype(str)
    predicted = y_pred[rows, column]
    predicted_present = has_pred[rows, column]
    # A label that is not a class at all, so withheld rows never count as a prediction of any class.
    none_label = "\x00withheld"
    predicted = np.where(predicted_present, predicted.astype(str), none_label)
    labels = np.union1d(truth, predicted[predicted_present])
    weights = None if sample_weight is None else check_sample_weight(sample_weight, y_true.shape[0])[rows]
    precision, recall, f1, _ = precision_recall_fscore_support(
        truth, predicted, labels=labels, average=average, sample_weight=weights, zero_division=0.0
    )
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1), "support": int(rows.sum())}


# ---------------------------------------------------------------------------------- hierarchical scores
def hierarchical_precision_recall_f1(y_true, y_pred, average: str = "micro", sample_weight=None) -> dict:
    """Hierarchical precision, recall and F1 over ancestor-augmented sets (Kiritchenko et al., 2006).

    ``T_i`` is the true node of product i with all its ancestors (the non-empty cells of its row) and
    ``P_i`` the predicted one (withheld levels excluded). Because node ids are unique and a node lives at one
    depth, ``|P_i ∩ T_i| = sum_k [p_ik = t_ik present]``.

    - ``micro``: ``hP = sum_i w_i|P_i ∩ T_i| / sum_i w_i|P_i|``, ``hR = sum_i w_i|P_i ∩ T_i| / sum_i w_i|T_i|``,
      ``hF = 2 hP hR / (hP + hR)``.
    - ``macro``: per-product ``hP_i``, ``hR_i``, ``hF_i = 2|P_i ∩ T_i| / (|P_i| + |T_i|)`` averaged (weighted by
      ``w_i``); ``hP`` averages over products with a prediction (uncovered ones are counted by
      :func:`coverage`), ``hR`` over products with a label, ``hF`` over products with either.

    Returns:
        ``{"precision", "recall", "f1"}`` (NaN where nothing was counted).
    """
    if average not in ("micro", "macro"):
        raise ValueError(f"average must be 'micro' or 'macro', got {average!r}")
    intersection, n_pred, n_true = hierarchical_counts(y_true, y_pred).T.astype(np.float64)
    weights = check_sample_weight(sample_weight, intersection.shape[0])
    if average == "micro":
        precision = _ratio((weights * intersection).sum(), (weights * n_pred).sum())
        recall = _ratio((weights * intersection).sum(), (weights * n_true).sum())
        f1 = _f1(precision, recall)
        return {"precision": precision, "recall": recall, "f1": f1}

    def mean_of(scores: np.ndarray, rows: np.ndarray) -> float:
        return _ratio((weights[rows] * scores[rows]).sum(), weights[rows].sum())

    with np.errstate(divide="ignore", invalid="ignore"):
        per_precision = intersection / n_pred
        per_recall = intersection / n_true
        per_f1 = 2 * intersection / (n_pred + n_true)
    return {
        "precision": mean_of(per_precision, n_pred > 0),
        "recall": mean_of(per_recall, n_true > 0),
        "f1": mean_of(per_f1, (n_pred + n_true) > 0),
    }


def hierarchical_counts(y_true, y_pred) -> np.ndarray:
    """Per product ``[N, 3]`` ints: ``|P_i ∩ T_i|``, ``|P_i|`` and ``|T_i|`` of
    `hierarchical_precision_recall_f1` (summed over products they give micro hP and hR; a paired bootstrap
    resamples them)."""
    y_true, y_pred, has_true, has_pred = _pair(y_true, y_pred)
    intersection = (has_true & has_pred & (y_true == y_pred)).sum(1)
    return np.stack([intersection, has_pred.sum(1), has_true.sum(1)], axis=1).astype(np.int64)


def _f1(precision: float, recall: float) -> float:
    if np.isnan(precision) or np.isnan(recall):
        return float("nan")
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


# --------------------------------------------------------------------------------------------- values
def values_from_categories(y_true, category_values: dict, default: float = 0.0) -> np.ndarray:
    """Per-product values from a per-category table: the value of the deepest true node found in the table.

    A product takes the value of its deepest node listed in ``category_values`` (so a table may price a
    whole vertical through its top node and override a few leaves); ``default`` when none is listed.

    Example:
        >>> values_from_categories([["A", "A > x"], ["B", ""]], {"A": 2.0, "A > x": 5.0}).tolist()
        [5.0, 0.0]
    """
    matrix = as_label_matrix(y_true)
    values = np.full(matrix.shape[0], float(default))
    present = ~missing_mask(matrix)
    table_nodes = list(category_values)
    table_values = np.array([float(category_values[node]) for node in table_nodes])
    for column in range(matrix.shape[1]):  # shallow to deep, so deeper nodes win
        position = np.where(present[:, column], index_of(table_nodes, matrix[:, column]), -1)
        found = position >= 0
        values[found] = table_values[position[found]]
    return values


# ----------------------------------------------------------------------------------------- confusion
@dataclass
class ConfusionMatrix:
    """Counts (or summed values) of true rows against predicted columns at one level.

    ``row_labels`` are the selected true nodes; ``column_labels`` are the same nodes followed by
    ``"(other)"`` (a prediction outside the selection) and ``"(withheld)"`` (no prediction at that level).
    """

    level: int
    row_labels: list
    column_labels: list
    matrix: np.ndarray


def top_categories(y_true, level: int, n: int = 20, sample_weight=None) -> list:
    """The ``n`` true nodes of ``level`` with the largest volume (or summed ``sample_weight``, e.g. value)."""
    matrix = as_label_matrix(y_true)
    column = matrix[:, level - 1]
    present = ~missing_mask(column)
    weights = check_sample_weight(sample_weight, matrix.shape[0])[present]
    nodes, inverse = np.unique(column[present].astype(str), return_inverse=True)
    totals = np.bincount(inverse, weights=weights, minlength=len(nodes))
    order = sorted(range(len(nodes)), key=lambda index: (-totals[index], nodes[index]))
    return [str(nodes[index]) for index in order[:n]]


def confusion_matrix(y_true, y_pred, level: int, labels: Sequence | None = None, top_n: int | None = 20,
                     sample_weight=None) -> ConfusionMatrix:
    """Confusion matrix of one level, restricted to ``labels`` (default: the ``top_n`` by volume/value).

    ``matrix[r, c] = sum_i w_i [t_ik = row_r and p_ik = column_c]`` over products with a true node at level k.
    """
    y_true, y_pred, has_true, has_pred = _pair(y_true, y_pred)
    column = level - 1
    if labels is None:
        labels = top_categories(y_true, level, n=top_n or 10**9, sample_weight=sample_weight)
    labels = [str(label) for label in labels]
    other, withheld = len(labels), len(labels) + 1
    weights = check_sample_weight(sample_weight, y_true.shape[0])
    rows = np.where(has_true[:, column], index_of(labels, y_true[:, column].astype(str)), -1)
    columns = index_of(labels, y_pred[:, column].astype(str))
    columns = np.where(has_pred[:, column], np.where(columns >= 0, columns, other), withheld)
    keep = rows >= 0
    matrix = np.zeros((len(labels), len(labels) + 2))
    np.add.at(matrix, (rows[keep], columns[keep]), weights[keep])
    return ConfusionMatrix(level, labels, labels + [OTHER_LABEL, WITHHELD_LABEL], matrix)


# ------------------------------------------------------------------------------------------ summaries
def summarize(y_true, y_pred, sample_weight=None, values=None) -> dict:
    """Every headline score of one set of predictions, as a JSON-ready dict.

    Keys: ``n_products``, ``hierarchical_precision``/``_recall``/``_f1`` (micro), ``hierarchical_macro``
    (dict), ``level_accuracy`` (list, level 1 first), ``leaf_accuracy``, ``coverage`` (share with any
    prediction), ``level_coverage``, ``level_precision_on_covered``, ``hierarchical_precision_on_covered``
    (macro hP over covered products), ``level_prf`` (per level, micro/macro/weighted) and, when ``values``
    is given, ``value_weighted`` (accuracy and hierarchical F1 weighted by value).
    """
    y_true, y_pred, _, _ = _pair(y_true, y_pred)
    micro = hierarchical_precision_recall_f1(y_true, y_pred, "micro", sample_weight)
    macro = hierarchical_precision_recall_f1(y_true, y_pred, "macro", sample_weight)
    level_cov = coverage(y_pred, sample_weight)
    result = {
        "n_products": int(y_true.shape[0]),
        "hierarchical_precision": micro["precision"],
        "hierarchical_recall": micro["recall"],
        "hierarchical_f1": micro["f1"],
        "hierarchical_macro": macro,
        "level_accuracy": level_accuracy(y_true, y_pred, sample_weight).tolist(),
        "leaf_accuracy": leaf_accuracy(y_true, y_pred, sample_weight),
        "coverage": float(level_cov[0]) if level_cov.size else float("nan"),
        "level_coverage": level_cov.tolist(),
        "level_precision_on_covered": precision_on_covered(y_true, y_pred, sample_weight).tolist(),
        "hierarchical_precision_on_covered": macro["precision"],
        "level_prf": [
            {average: precision_recall_f1(y_true, y_pred, level, average, sample_weight)
             for average in ("micro", "macro", "weighted")}
            for level in range(1, y_true.shape[1] + 1)
        ],
    }
    if values is not None:
        hierarchical = hierarchical_precision_recall_f1(y_true, y_pred, "micro", values)
        result["value_weighted"] = {
            "level_accuracy": level_accuracy(y_true, y_pred, values).tolist(),
            "leaf_accuracy": leaf_accuracy(y_true, y_pred, values),
            "hierarchical_f1": hierarchical["f1"],
            "level_f1_weighted": [precision_recall_f1(y_true, y_pred, level, "weighted", values)["f1"]
                                  for level in range(1, y_true.shape[1] + 1)],
        }
    return result


def subtree_mask(y_true, node) -> np.ndarray:
    """True for products whose true path passes through ``node`` (the node itself or any descendant)."""
    matrix = as_label_matrix(y_true)
    return np.asarray(matrix == node).any(axis=1)


def subtree_breakdown(y_true, y_pred, nodes: Iterable, sample_weight=None, values=None) -> dict:
    """:func:`summarize` restricted to the products under each node, so a weak corner cannot hide.

    Returns:
        ``{node: summary}``; a node with no product gets ``{"n_products": 0}``.
    """
    y_true, y_pred, _, _ = _pair(y_true, y_pred)
    out = {}
    for node in nodes:
        rows = subtree_mask(y_true, node)
        if not rows.any():
            out[str(node)] = {"n_products": 0}
            continue
        out[str(node)] = summarize(y_true[rows], y_pred[rows], _rows_of(sample_weight, rows), _rows_of(values, rows))
    return out


def _rows_of(array, rows: np.ndarray):
    return None if array is None else np.asarray(array)[rows]


def level_nodes(y_true, level: int) -> list:
    """The distinct true nodes of one level, sorted (handy to break a report down by every top vertical)."""
    column = as_label_matrix(y_true)[:, level - 1]
    return sorted({str(cell) for cell in column[~missing_mask(column)]})
