"""Top-k recommendation metrics (NumPy, vectorised over users).

``recommended`` is ``[U, k']`` int item indices, best first, ``-1`` for an empty slot; ``targets`` is a list
of ``U`` arrays of target item indices (the items of the user's next basket; an item unknown to the model
is ``-1``, can never be hit, but still counts in recall's denominator).
"""

from __future__ import annotations

import numpy as np


def _hits(recommended: np.ndarray, targets: list[np.ndarray], k: int) -> np.ndarray:
    """``[U, k]`` bool: slot j of user u holds one of u's targets (each target counted once)."""
    top = np.asarray(recommended)[:, :k]
    num_items = int(max(top.max(initial=0), max((t.max(initial=0) for t in targets), default=0))) + 1
    owner = np.repeat(np.arange(len(targets)), [len(t) for t in targets])
    flat = np.concatenate(targets) if targets else np.zeros(0, dtype=np.int64)
    keys = np.unique(owner[flat >= 0].astype(np.int64) * num_items + flat[flat >= 0])
    slots = np.arange(len(top))[:, None].astype(np.int64) * num_items + top
    return np.isin(slots, keys) & (top >= 0)


def hit_rate_at_k(recommended, targets, k: int) -> float:
    """HR@k = (1/U) Σ_u 1[ top_k(u) ∩ T_u ≠ ∅ ]: the share of users with at least one target in their top k."""
    return float(_hits(recommended, targets, k).any(axis=1).mean()) if len(targets) else 0.0


def recall_at_k(recommended, targets, k: int) -> float:
    """Recall@k = (1/U) Σ_u |top_k(u) ∩ T_u| / |T_u|: the share of each user's targets found, averaged."""
    if not len(targets):
        return 0.0
    sizes = np.array([max(len(np.unique(t)), 1) for t in targets], dtype=np.float64)
    return float((_hits(recommended, targets, k).sum(axis=1) / sizes).mean())


def mrr_at_k(recommended, targets, k: int) -> float:
    """MRR@k = (1/U) Σ_u 1 / rank_u, rank_u the 1-based position of u's first target in the top k (the term
    is 0 when there is none)."""
    if not len(targets):
        return 0.0
    hits = _hits(recommended, targets, k)
    first = np.argmax(hits, axis=1)
    return float(np.where(hits.any(axis=1), 1.0 / (first + 1), 0.0).mean())


def coverage(recommended, num_items: int, k: int) -> float:
    """Coverage@k = |∪_u top_k(u)| / M: the share of the M catalogue items recommended to someone."""
    top = np.asarray(recommended)[:, :k]
    return float(len(np.unique(top[top >= 0])) / max(num_items, 1))


def all_metrics(recommended, targets, num_items: int, ks=(10, 20)) -> dict[str, float]:
    """hit_rate@k, recall@k, mrr@k and coverage@k for every k in ``ks``."""
    out: dict[str, float] = {}
    for k in ks:
        out[f"hit_rate@{k}"] = hit_rate_at_k(recommended, targets, k)
        out[f"recall@{k}"] = recall_at_k(recommended, targets, k)
        out[f"mrr@{k}"] = mrr_at_k(recommended, targets, k)
        out[f"coverage@{k}"] = coverage(recommended, num_items, k)
    return out
