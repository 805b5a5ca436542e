"""Confidence thresholds that reach a target precision with the largest coverage.

The classifier descends the tree top-down and reports one confidence per level for its full path. A level is
*exposed* when its confidence passes the level's threshold and every level above it was exposed; a node may
demand more for itself and its descendants (a per-node override), in which case the effective threshold of a
level is the largest of the level threshold and the overrides of the nodes on the path down to it.

:func:`calibrate` picks, on a validation split, per-level thresholds level by level from the top: at level k,
among products exposed down to level k-1, the smallest threshold whose exposed products reach the target
precision (so the largest coverage), judged by a lower confidence bound of that precision so the threshold
holds on new products (`threshold_for_precision`), and reports what it reaches held out (`held_out_check`).
Calibrating the confidences first (temperature, isotonic) would not change these cut-offs: a monotone map of a
level's confidences keeps their order, so the same products pass; the bound is what keeps small splits honest. Per-node targets then add overrides for named subtrees. Everything is
vectorised over products (a sort and a cumulative sum per level).

Example:
    >>> import numpy as np
    >>> from linnet.evaluation.calibration import calibrate
    >>> y_true = np.array([["A"], ["A"], ["B"], ["B"]], dtype=object)
    >>> full = np.array([["A"], ["A"], ["A"], ["B"]], dtype=object)   # third product wrong
    >>> confidence = np.array([[0.9], [0.8], [0.6], [0.7]])
    >>> calibrate(y_true, full, confidence, target_precision=1.0).level_thresholds
    [0.7]
    >>> calibrate(y_true, full, confidence, target_precision=0.6).level_thresholds  # 3 of 4 is no proof of 0.6
    [0.7]
    >>> calibrate(y_true, full, confidence, target_precision=0.6, bound_z=0.0).level_thresholds  # all, as low as seen
    [0.6]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from linnet.errors import ConfigError, EvaluationError
from linnet.evaluation import metrics
from linnet.inference.calibration_file import (
    read_calibration_file,
    validate_calibration,
    write_calibration_file,
)

#: Threshold written for a level where no threshold reaches the target: no confidence passes it.
WITHHOLD_ALL = 1.0 + 1e-6
#: One-sided normal quantile of the lower confidence bound a cut-off's precision must reach the target with
#: (`precision_lower_bound`; 1.0: 84 %). 0 is the plain point estimate, which overfits small validation splits:
#: on synthetic scores with a known answer (tests/evaluation/test_threshold_bound.py) 500 validation products
#: put the test precision more than a point under a 0.95 target in 7 of 40 draws at 0, in none at 1.0, at a
#: few points of coverage (1.645 costs far more coverage at 0.99).
DEFAULT_BOUND_Z = 1.0
DEFAULT_TABLE_TARGETS = (0.8, 0.9, 0.95, 0.98, 0.99)


def check_target(target: float, name: str = "target precision") -> float:
    """Return ``target`` as a float, or raise :class:`ConfigError` unless it lies in (0, 1]."""
    try:
        value = float(target)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number in (0, 1], got {target!r}") from None
    if not 0.0 < value <= 1.0 or math.isnan(value):
        raise ConfigError(f"{name} must be in (0, 1], got {target!r}")
    return value


# ----------------------------------------------------------------------------------- applying thresholds
def effective_thresholds(full_nodes, level_thresholds: Sequence[float], node_thresholds: Mapping | None = None) -> np.ndarray:
    """Per product and level, the threshold that applies: ``max(t_k, overrides of nodes on the path to level k)``."""
    full_nodes = metrics.as_label_matrix(full_nodes)
    n, num_levels = full_nodes.shape
    if len(level_thresholds) != num_levels:
        raise EvaluationError(f"{len(level_thresholds)} level thresholds for {num_levels} levels")
    thresholds = np.broadcast_to(np.asarray(level_thresholds, dtype=np.float64), (n, num_levels)).copy()
    if node_thresholds:
        nodes = list(node_thresholds)
        values = np.array([float(node_thresholds[node]) for node in nodes] + [0.0])
        override = np.zeros((n, num_levels))
        for column in range(num_levels):
            position = metrics.index_of(nodes, full_nodes[:, column])  # -1 -> the trailing 0.0
            override[:, column] = values[position]
        # An override holds for its node and every level below it on the same path.
        thresholds = np.maximum(thresholds, np.maximum.accumulate(override, axis=1))
    return thresholds


def exposed_mask(full_nodes, confidences, level_thresholds, node_thresholds=None) -> np.ndarray:
    """Boolean ``[N, L]``: True where the level is exposed (it and every level above pass their thresholds)."""
    full_nodes = metrics.as_label_matrix(full_nodes)
    confidences = np.asarray(confidences, dtype=np.float64).reshape(full_nodes.shape)
    passes = (confidences >= effective_thresholds(full_nodes, level_thresholds, node_thresholds))
    passes &= ~metrics.missing_mask(full_nodes)
    return np.logical_and.accumulate(passes, axis=1)


def apply_thresholds(full_nodes, confidences, level_thresholds, node_thresholds=None) -> np.ndarray:
    """The exposed prediction: ``full_nodes`` with withheld levels replaced by ``""`` (or ``-1`` for ints)."""
    full_nodes = metrics.as_label_matrix(full_nodes)
    exposed = exposed_mask(full_nodes, confidences, level_thresholds, node_thresholds)
    blank = -1 if np.issubdtype(full_nodes.dtype, np.integer) else ""
    out = full_nodes.astype(object) if blank == "" else full_nodes.copy()
    out[~exposed] = blank
    return out


# -------------------------------------------------------------------------------------- one threshold
def _running_precision(confidence: np.ndarray, correct: np.ndarray, weights: np.ndarray):
    """Items sorted by confidence (highest first) with the running accepted weight and precision, and a mask
    of the last item of each run of equal confidences (the only places a threshold can cut)."""
    order = np.argsort(-confidence, kind="stable")
    sorted_confidence = confidence[order]
    accepted = np.cumsum(weights[order])
    hits = np.cumsum(weights[order] * correct[order])
    last_of_tie = np.r_[sorted_confidence[1:] != sorted_confidence[:-1], True]
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(accepted > 0, hits / accepted, np.nan)
    return sorted_confidence, accepted, precision, last_of_tie


def precision_lower_bound(hits, accepted, effective_count, z: float = DEFAULT_BOUND_Z):
    """Wilson score lower bound of a precision ``hits / accepted`` measured on ``effective_count`` items.

    ``(p + z²/2n - z sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)``; with ``z = 0`` it is ``p``. Unlike the normal
    interval it stays below 1 when every item is right (``n / (n + z²)``), so a cut-off accepting 30 items
    without a miss does not "reach" 0.99 (it needs about ``z² / (1 - target)`` of them).

    Example:
        >>> round(float(precision_lower_bound(100, 100, 100)), 4)
        0.9901
        >>> float(precision_lower_bound(95, 100, 100, z=0.0))
        0.95
    """
    hits, accepted, n = (np.asarray(value, dtype=np.float64) for value in (hits, accepted, effective_count))
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(accepted > 0, hits / accepted, np.nan)
        n = np.maximum(n, 1e-12)
        z2 = float(z) ** 2
        centre = p + z2 / (2 * n)
        spread = float(z) * np.sqrt(np.maximum(p * (1 - p) / n + z2 / (4 * n * n), 0.0))
        return (centre - spread) / (1 + z2 / n)


def threshold_for_precision(confidence, correct, target_precision: float, sample_weight=None,
                            bound_z: float = DEFAULT_BOUND_Z) -> tuple[float, float, float]:
    """The smallest threshold whose accepted items reach ``target_precision``, i.e. the largest coverage,
    judged by a lower confidence bound of their precision (`precision_lower_bound` with ``bound_z``).

    Why a bound: the cut-off is chosen where the measured precision meets the target, and among the many
    cut-offs tried the deepest one that does so is often a lucky fluctuation of a small split, so the
    precision it reaches on new products falls short. Requiring the bound to reach the target keeps the
    chosen precision's shortfall out of sample small (a weighted split counts its Kish effective size).

    Items are sorted by confidence, highest first; accepting the top ``j`` items gives precision
    ``sum_{i<=j} w_i c_i / sum_{i<=j} w_i``. Cut-offs only fall between distinct confidences (ties are
    accepted or refused together). Precision is not monotone in the cut-off, so the deepest cut-off that
    meets the target is taken, not the first one that fails. When accepting every item meets the target,
    the threshold is the lowest confidence seen, not 0: the split says nothing about items less confident
    than any it holds, so they are withheld rather than assumed as good. Measured on the quality benchmark's
    catalogs (docs/evaluation.md, "Thresholds that do not reach below the split"), the new items this
    withholds were wrong more often than right, at a cost of at most 0.2 points of coverage.

    Args:
        confidence: ``[N]`` confidences.
        correct: ``[N]`` booleans, whether each item's prediction is right.
        target_precision: in (0, 1].
        sample_weight: optional ``[N]`` weights.
        bound_z: the bound's one-sided normal quantile (0: the measured precision itself).

    Returns:
        ``(threshold, precision, coverage)`` (the precision measured, not its bound); ``(WITHHOLD_ALL, nan, 0.0)``
        when no cut-off reaches it, and
        ``(0.0, nan, nan)`` when there is no item.
    """
    target = check_target(target_precision)
    confidence = np.asarray(confidence, dtype=np.float64).reshape(-1)
    correct = np.asarray(correct, dtype=bool).reshape(-1)
    if confidence.size == 0:
        return 0.0, float("nan"), float("nan")
    weights = metrics.check_sample_weight(sample_weight, confidence.size)
    sorted_confidence, accepted, precision, last_of_tie = _running_precision(confidence, correct, weights)
    effective = accepted ** 2 / np.maximum(np.cumsum(weights[np.argsort(-confidence, kind="stable")] ** 2), 1e-300)
    # No bound reaches 1: a target of 1 asks for no miss among the accepted items.
    lower = precision if target >= 1.0 else precision_lower_bound(precision * accepted, accepted, effective, bound_z)
    # A tiny tolerance so a target of exactly 0.95 is met by 19/20 despite float rounding.
    feasible = np.nonzero(last_of_tie & (lower >= target - 1e-12) & (accepted > 0))[0]
    if feasible.size == 0:
        return WITHHOLD_ALL, float("nan"), 0.0
    cut = feasible[-1]
    threshold = float(sorted_confidence[cut])
    return threshold, float(precision[cut]), float(accepted[cut] / weights.sum())


def precision_coverage_curve(confidence, correct, sample_weight=None) -> dict:
    """Precision and coverage for every distinct threshold, for plots: ``{"threshold", "precision", "coverage"}``.

    ``coverage(t) = share of items with confidence >= t``; ``precision(t)`` = accuracy among them.
    """
    confidence = np.asarray(confidence, dtype=np.float64).reshape(-1)
    correct = np.asarray(correct, dtype=bool).reshape(-1)
    if confidence.size == 0:
        return {"threshold": np.array([]), "precision": np.array([]), "coverage": np.array([])}
    weights = metrics.check_sample_weight(sample_weight, confidence.size)
    sorted_confidence, accepted, precision, last_of_tie = _running_precision(confidence, correct, weights)
    return {"threshold": sorted_confidence[last_of_tie], "precision": precision[last_of_tie],
            "coverage": accepted[last_of_tie] / max(weights.sum(), 1e-300)}


def reliability_curve(confidence, correct, bins: int = 10) -> dict:
    """Calibration (reliability) curve: mean confidence against accuracy in equal-width confidence bins.

    Returns ``{"confidence", "accuracy", "count"}`` per non-empty bin and the expected calibration error
    ``ece = sum_b (n_b / N) |acc_b - conf_b|``.
    """
    confidence = np.asarray(confidence, dtype=np.float64).reshape(-1)
    correct = np.asarray(correct, dtype=np.float64).reshape(-1)
    which = np.clip((confidence * bins).astype(int), 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    confidence_sum = np.bincount(which, weights=confidence, minlength=bins)
    correct_sum = np.bincount(which, weights=correct, minlength=bins)
    keep = count > 0
    mean_confidence = confidence_sum[keep] / count[keep]
    accuracy = correct_sum[keep] / count[keep]
    ece = float(np.sum(count[keep] / max(count.sum(), 1) * np.abs(accuracy - mean_confidence)))
    return {"confidence": mean_confidence, "accuracy": accuracy, "count": count[keep], "ece": ece}


# ----------------------------------------------------------------------------------- the calibration
@dataclass
class Calibration:
    """Thresholds for the inference wrapper and the export (the calibration file of ``docs/architecture.md``).

    Attributes:
        level_thresholds: one threshold per level, level 1 first.
        node_thresholds: ``{node id: threshold}`` overrides for a node and its descendants.
        taxonomy_fingerprint: the fingerprint of the taxonomy the thresholds were fitted for.
        decoding: the descent whose confidences the thresholds were fitted on (``"path"`` or ``"greedy"``;
            None: not recorded, accepted by either).
        report: how each threshold was found (precision and coverage reached on the calibration split);
            not written to the file.
    """

    level_thresholds: list[float]
    node_thresholds: dict[str, float] = field(default_factory=dict)
    taxonomy_fingerprint: str | None = None
    report: dict = field(default_factory=dict)
    decoding: str | None = None

    def to_dict(self) -> dict:
        payload = {"level_thresholds": [float(value) for value in self.level_thresholds],
                   "node_thresholds": {str(node): float(value) for node, value in self.node_thresholds.items()},
                   "taxonomy_fingerprint": self.taxonomy_fingerprint}
        if self.decoding is not None:
            payload["decoding"] = self.decoding
        return payload

    def save(self, path) -> Path:
        """Write the calibration file atomically, through the inference room's writer
        (:func:`linnet.inference.calibration_file.write_calibration_file`, which checks the payload first, so the
        file is always one the inference wrapper and the export accept)."""
        return write_calibration_file(path, self.to_dict())

    @classmethod
    def load(cls, path, taxonomy=None) -> Calibration:
        """Read a calibration file (through the inference room's reader, the one format check).

        Raises:
            ConfigError: unreadable file, missing or unknown key, a threshold that is not a number in [0, 1.01],
                or, with ``taxonomy``, a level count or fingerprint that does not match (both fingerprints named).
        """
        payload = read_calibration_file(path)
        levels, nodes = validate_calibration(payload, taxonomy, source=str(path))
        return cls(levels, nodes, payload.get("taxonomy_fingerprint"), decoding=payload.get("decoding"))

    def check_taxonomy(self, taxonomy, source: str = "calibration", decoding: str | None = None) -> None:
        """Raise :class:`ConfigError` naming what differs when these thresholds do not fit ``taxonomy`` (or, with
        ``decoding``, were fitted on the other decoding's confidences)."""
        validate_calibration(self.to_dict(), taxonomy, source=source, decoding=decoding)

    def apply(self, full_nodes, confidences) -> np.ndarray:
        """The exposed predictions under these thresholds (see :func:`apply_thresholds`)."""
        return apply_thresholds(full_nodes, confidences, self.level_thresholds, self.node_thresholds)


def _validate_inputs(y_true, full_nodes, confidences):
    y_true, full_nodes = metrics.as_label_matrix(y_true), metrics.as_label_matrix(full_nodes)
    confidences = np.asarray(confidences, dtype=np.float64)
    if y_true.shape[0] == 0:
        raise EvaluationError("the calibration split is empty: no product to fit thresholds on")
    if y_true.shape != full_nodes.shape or confidences.shape != full_nodes.shape:
        raise EvaluationError(f"shapes differ: labels {y_true.shape}, predictions {full_nodes.shape}, "
                              f"confidences {confidences.shape}")
    return y_true, full_nodes, confidences


def judged_mask(y_true) -> np.ndarray:
    """``[N, L]``: where a prediction is judged. Every level of a labelled product: a node below a label that ends
    above it is wrong (the label is the answer, labels on inner nodes included, and hierarchical precision
    counts the extra node against it); nowhere for a product without a label.

    Judging only the levels a label reaches made thresholds blind to paths that go too deep: on the ragged
    fashion catalogue (labels cut at random) a 0.95 target gave test hierarchical precision 0.83 at full
    coverage; judged at every level, 0.99 (docs/evaluation.md, "Thresholds on ragged labels").
    """
    missing = metrics.missing_mask(y_true)
    return np.broadcast_to(~missing[:, :1], missing.shape)


def fit_level_thresholds(y_true, full_nodes, confidences, target_precision=0.95, sample_weight=None,
                         bound_z: float = DEFAULT_BOUND_Z) -> tuple[list, list]:
    """Per-level thresholds, top-down: level k is fitted on the products exposed down to level k-1.

    Args:
        target_precision: one float for every level, or one per level.
        bound_z: cut-offs must reach the target with this lower confidence bound (`threshold_for_precision`).

    Returns:
        ``(thresholds, per-level report dicts with precision, coverage and products judged)``.
    """
    y_true, full_nodes, confidences = _validate_inputs(y_true, full_nodes, confidences)
    num_levels = y_true.shape[1]
    targets = [target_precision] * num_levels if np.ndim(target_precision) == 0 else list(target_precision)
    if len(targets) != num_levels:
        raise ConfigError(f"{len(targets)} target precisions for {num_levels} levels")
    targets = [check_target(value, f"target precision of level {level}") for level, value in enumerate(targets, 1)]
    weights = metrics.check_sample_weight(sample_weight, y_true.shape[0])
    judged_rows = judged_mask(y_true)
    has_pred = ~metrics.missing_mask(full_nodes)
    reached = np.ones(y_true.shape[0], dtype=bool)
    thresholds, report = [], []
    for column in range(num_levels):
        candidates = reached & has_pred[:, column]
        judged = candidates & judged_rows[:, column]
        correct = (full_nodes[judged, column] == y_true[judged, column]).astype(bool)
        threshold, precision, _ = threshold_for_precision(confidences[judged, column], correct, targets[column],
                                                          weights[judged], bound_z)
        thresholds.append(threshold)
        reached = candidates & (confidences[:, column] >= threshold)
        report.append({"level": column + 1, "target_precision": targets[column], "threshold": threshold,
                       "precision": precision, "coverage": float(weights[reached].sum() / weights.sum()),
                       "judged": int(judged.sum()), "reachable": threshold <= 1.0})
    return thresholds, report


def fit_node_threshold(y_true, full_nodes, confidences, node, target_precision: float, level_thresholds,
                       node_thresholds=None, max_candidates: int = 1024) -> tuple[float, dict]:
    """The smallest override for ``node`` so that, under it, every level of its subtree reaches the target.

    Products whose full path passes through ``node`` are exposed with effective thresholds
    ``max(level threshold, override)``; among candidate overrides (the distinct confidences of those
    products, thinned to ``max_candidates`` quantiles) the smallest one that makes the precision of each level
    from the node's depth down at least ``target_precision`` wins (tried in vectorised chunks, smallest first).

    Raises:
        EvaluationError: ``node`` is not on any predicted path of the split.
    """
    target = check_target(target_precision, f"target precision of node {node!r}")
    y_true, full_nodes, confidences = _validate_inputs(y_true, full_nodes, confidences)
    under = np.asarray(full_nodes == node).any(axis=1)
    if not under.any():
        raise EvaluationError(f"node {node!r} is on no predicted path of the calibration split; cannot fit its target")
    depth = int(np.nonzero(np.asarray(full_nodes[under] == node).any(axis=0))[0][0])
    sub_true, sub_full, sub_conf = y_true[under], full_nodes[under], confidences[under]
    others = {key: value for key, value in (node_thresholds or {}).items() if key != node}
    candidates = np.unique(np.r_[0.0, sub_conf[:, depth:].ravel()])
    if candidates.size > max_candidates:
        candidates = np.unique(np.quantile(candidates, np.linspace(0, 1, max_candidates)))
    judged_true = judged_mask(sub_true)
    present = ~metrics.missing_mask(sub_full)
    right = judged_true & present & (sub_full == sub_true)
    base = effective_thresholds(sub_full, level_thresholds, others)
    below = np.arange(sub_full.shape[1]) >= depth  # the override holds from the node's level down
    # Candidates are tried in vectorised chunks [C, n, L], smallest first, stopping at the first that works.
    chunk = max(1, int(2e7 // max(sub_full.size, 1)))
    for start in range(0, candidates.size, chunk):
        trial = candidates[start:start + chunk, None, None]
        thresholds = np.where(below, np.maximum(base, trial), base)
        exposed = np.logical_and.accumulate((sub_conf >= thresholds) & present, axis=2)
        counts = (exposed & judged_true)[:, :, depth:].sum(1)
        hits = (exposed & right)[:, :, depth:].sum(1)
        feasible = np.all((counts == 0) | (hits >= target * counts - 1e-9), axis=1)
        if feasible.any():
            first = int(np.argmax(feasible))
            candidate = float(candidates[start + first])
            coverage = exposed[first, :, depth:].mean(0)
            return candidate, {"node": str(node), "level": depth + 1, "target_precision": target,
                               "threshold": candidate, "products": int(under.sum()),
                               "coverage": coverage.tolist(), "reachable": True}
    return WITHHOLD_ALL, {"node": str(node), "level": depth + 1, "target_precision": target,
                          "threshold": WITHHOLD_ALL, "products": int(under.sum()), "reachable": False}


def calibrate(y_true, full_nodes, confidences, target_precision=0.95, node_targets: Mapping | None = None,
              taxonomy_fingerprint: str | None = None, sample_weight=None,
              bound_z: float = DEFAULT_BOUND_Z) -> Calibration:
    """Fit per-level thresholds (and per-node overrides) on a validation split.

    Level cut-offs must reach the target with a lower confidence bound of their precision (``bound_z``,
    `threshold_for_precision`), so they hold on products the split did not see; ``report["held_out"]`` says
    what they reach there, measured by two-fold cross-fitting (`held_out_check`).

    Args:
        y_true: ``[N, L]`` true node ids (``""`` where none).
        full_nodes: ``[N, L]`` node ids of the full descent, before thresholds.
        confidences: ``[N, L]`` the confidence of each level of that descent.
        target_precision: precision each level must reach (float, or one per level), in (0, 1].
        node_targets: ``{node id: precision}`` for subtrees that need more than their level's target.
        taxonomy_fingerprint: stored in the file so a mismatching model is refused.
        sample_weight: optional ``[N]`` weights (business value).
        bound_z: the bound's one-sided normal quantile (0: the measured precision, as before the bound).

    Returns:
        A :class:`Calibration`; ``report`` holds what each threshold reaches on this split and held out.

    Raises:
        ConfigError: a target outside (0, 1].
        EvaluationError: an empty split, mismatched shapes or an unknown node.
    """
    thresholds, level_report = fit_level_thresholds(y_true, full_nodes, confidences, target_precision, sample_weight,
                                                    bound_z)
    held_out = held_out_check(y_true, full_nodes, confidences, target_precision, sample_weight, bound_z)
    node_thresholds, node_report = {}, []
    for node, target in (node_targets or {}).items():
        threshold, report = fit_node_threshold(y_true, full_nodes, confidences, node, target, thresholds,
                                               node_thresholds)
        node_thresholds[str(node)] = threshold
        node_report.append(report)
    return Calibration(thresholds, node_thresholds, taxonomy_fingerprint,
                       report={"levels": level_report, "nodes": node_report, "held_out": held_out})


def held_out_check(y_true, full_nodes, confidences, target_precision=0.95, sample_weight=None,
                   bound_z: float = DEFAULT_BOUND_Z, folds: int = 2, seed: int = 0) -> dict:
    """What level thresholds fitted this way reach on products they were not fitted on: the split is cut into
    ``folds`` random parts, each part is exposed under thresholds fitted on the others, and the exposed
    predictions of every part are scored together.

    Returns:
        ``{"folds", "level_precision", "level_coverage", "hierarchical_precision"}`` (precision among the
        exposed products of each level; NaN where a level exposes none).
    """
    y_true, full_nodes, confidences = _validate_inputs(y_true, full_nodes, confidences)
    weights = metrics.check_sample_weight(sample_weight, y_true.shape[0])
    part = np.random.default_rng(seed).permutation(y_true.shape[0]) % max(2, int(folds))
    exposed = np.empty(full_nodes.shape, dtype=object)
    for fold in np.unique(part):
        fit, held = part != fold, part == fold
        if not fit.any():
            exposed[held] = ""
            continue
        thresholds, _ = fit_level_thresholds(y_true[fit], full_nodes[fit], confidences[fit], target_precision,
                                             weights[fit], bound_z)
        exposed[held] = apply_thresholds(full_nodes[held].astype(object), confidences[held], thresholds)
    hierarchical = metrics.hierarchical_precision_recall_f1(y_true, exposed, sample_weight=weights)
    return {"folds": int(max(2, folds)),
            "level_precision": metrics.precision_on_covered(y_true, exposed, weights).tolist(),
            "level_coverage": metrics.coverage(exposed, weights).tolist(),
            "hierarchical_precision": hierarchical["precision"]}


def tradeoff_table(y_true, full_nodes, confidences, targets: Sequence[float] = DEFAULT_TABLE_TARGETS,
                   sample_weight=None, bound_z: float = DEFAULT_BOUND_Z) -> list[dict]:
    """For several target precisions: the thresholds, per-level coverage and precision, hierarchical scores.

    Each row is measured on the same split the thresholds were fitted on (use a separate split to judge them).
    """
    y_true, full_nodes, confidences = _validate_inputs(y_true, full_nodes, confidences)
    rows = []
    for target in targets:
        thresholds, _ = fit_level_thresholds(y_true, full_nodes, confidences, target, sample_weight, bound_z)
        exposed = apply_thresholds(full_nodes, confidences, thresholds)
        hierarchical = metrics.hierarchical_precision_recall_f1(y_true, exposed, sample_weight=sample_weight)
        rows.append({"target_precision": float(target), "level_thresholds": thresholds,
                     "level_coverage": metrics.coverage(exposed, sample_weight).tolist(),
                     "level_precision": metrics.precision_on_covered(y_true, exposed, sample_weight).tolist(),
                     "hierarchical_precision": hierarchical["precision"],
                     "hierarchical_f1": hierarchical["f1"]})
    return rows


def format_tradeoff_table(rows: list[dict]) -> str:
    """The trade-off as two Markdown tables that fit in 100 columns for up to 7 levels, one row per target:
    the thresholds per level with hierarchical precision and F1, then coverage/precision per level. A cell
    with nothing to measure (no product kept at that level) shows ``-``.

    Example:
        >>> row = {"target_precision": 0.9, "level_thresholds": [0.51234, 0.0], "level_coverage": [0.8, 0.0],
        ...        "level_precision": [0.95, float("nan")], "hierarchical_precision": 0.9, "hierarchical_f1": 0.7}
        >>> print(format_tradeoff_table([row]))
        | target | t1 | t2 | hP | hF1 |
        |---|---|---|---|---|
        | 0.9 | 0.512 | 0.000 | 0.900 | 0.700 |
        <BLANKLINE>
        | target | L1 cov/P | L2 cov/P |
        |---|---|---|
        | 0.9 | 0.80/0.95 | 0.00/- |
    """
    if not rows:
        return "(no rows)"
    levels = range(1, len(rows[0]["level_thresholds"]) + 1)
    thresholds = [[f"{row['target_precision']:g}", *(_rounded(value, 3) for value in row["level_thresholds"]),
                   _rounded(row["hierarchical_precision"], 3), _rounded(row["hierarchical_f1"], 3)] for row in rows]
    quality = [[f"{row['target_precision']:g}",
                *(f"{_rounded(coverage, 2)}/{_rounded(precision, 2)}"
                  for coverage, precision in zip(row["level_coverage"], row["level_precision"]))] for row in rows]
    return "\n\n".join([_markdown_table(["target", *(f"t{k}" for k in levels), "hP", "hF1"], thresholds),
                        _markdown_table(["target", *(f"L{k} cov/P" for k in levels)], quality)])


def _rounded(value, digits: int) -> str:
    return "-" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(cells) + " |" for cells in rows])
