"""Class weights per level from label frequencies, and per-example sample weights for ``model.fit``."""

from __future__ import annotations

import numpy as np

from linnet.errors import ConfigError

CLASS_WEIGHTINGS = ("none", "balanced", "sqrt")


def class_weights(labels, num_classes, weighting: str = "balanced") -> dict[str, np.ndarray]:
    """Weight of each class of each level, from how often it occurs in ``labels``.

    ``balanced`` is scikit-learn's ``n_labelled / (n_present_classes * count)``; ``sqrt`` is its square
    root (gentler on rare leaves of big trees), rescaled so the labelled examples keep an average weight
    of 1; ``none`` is 1 everywhere. Classes that never occur get 0 (they contribute no loss anyway).

    Args:
        labels: int ``[N, L]`` class index per level, ``-1`` for no label; or a `PreparedCatalog`.
        num_classes: Classes per level (``taxonomy.level_sizes()``); taken from the catalog when one is given.
        weighting: ``"balanced"``, ``"sqrt"`` or ``"none"``.

    Returns:
        ``{"level_1": float32 [n_1], ...}``.

    Example:
        >>> weights = class_weights(np.array([[0], [0], [0], [1]]), [2])
        >>> [round(float(w), 3) for w in weights["level_1"]]
        [0.667, 2.0]
    """
    if weighting not in CLASS_WEIGHTINGS:
        raise ConfigError(f"class weighting must be one of {CLASS_WEIGHTINGS}, got {weighting!r}")
    if hasattr(labels, "labels") and hasattr(labels, "taxonomy"):
        num_classes = labels.taxonomy.level_sizes() if num_classes is None else num_classes
        labels = labels.labels
    labels = np.asarray(labels)
    result = {}
    for level, size in enumerate(num_classes, start=1):
        column = labels[:, level - 1]
        column = column[column >= 0]
        if weighting == "none":
            result[f"level_{level}"] = np.ones(size, dtype=np.float32)
            continue
        counts = np.bincount(column, minlength=size).astype(np.float64)
        present = counts > 0
        weights = np.zeros(size, dtype=np.float64)
        if present.any():
            weights[present] = column.size / (present.sum() * counts[present])
            if weighting == "sqrt":
                weights = np.sqrt(weights)
                weights *= column.size / float((weights * counts).sum())
        result[f"level_{level}"] = weights.astype(np.float32)
    return result


def sample_weights(labels, weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-example weight of each level: the class weight of the label, ``0`` where the label is ``-1``.

    Example:
        >>> sample_weights(np.array([[1, -1]]), {"level_1": np.array([0.5, 2.0]), "level_2": np.ones(3)})
        {'level_1': array([2.], dtype=float32), 'level_2': array([0.], dtype=float32)}
    """
    labels = np.asarray(labels)
    result = {}
    for level in range(1, labels.shape[1] + 1):
        column = labels[:, level - 1]
        table = np.asarray(weights[f"level_{level}"], dtype=np.float32)
        result[f"level_{level}"] = np.where(column >= 0, table[np.maximum(column, 0)], 0.0).astype(np.float32)
    return result
