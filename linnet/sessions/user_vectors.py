"""Time-decayed user vectors (the Best Buy formula), NumPy.

A user's vector is the weighted average of the vectors of the items in their history, with weights

    w_j = exp(-t_j / d) / Σ_l exp(-t_l / d)        (a softmax of -t/d over the history)

``t_j`` the age of event ``j`` (days before the user's latest event) and ``d`` the decay in days. An event
whose item has no vector (unknown, ``-1``) is left out of the softmax.
"""

from __future__ import annotations

import numpy as np

from linnet.embeddings.vectors import l2_normalize
from linnet.sessions.sequences import SECONDS_PER_DAY, Sequences


def decay_weights(ages_days: np.ndarray, decay_days: float) -> np.ndarray:
    """``softmax(-ages_days / decay_days)`` over the last axis (ages may be any shape; each row sums to 1)."""
    logits = -np.asarray(ages_days, dtype=np.float64) / float(decay_days)
    logits -= logits.max(axis=-1, keepdims=True)
    weights = np.exp(logits)
    return weights / weights.sum(axis=-1, keepdims=True)


def user_vectors(histories: Sequences, item_vectors: np.ndarray, decay_days: float = 30.0) -> np.ndarray:
    """``[U, D]`` time-decayed user vectors (zeros for a user without a known item)."""
    known = histories.items >= 0
    owner = histories.owner()[known]
    times = histories.times[known].astype(np.float64)
    latest = np.full(len(histories), -np.inf)
    np.maximum.at(latest, owner, times)
    logits = -(latest[owner] - times) / SECONDS_PER_DAY / float(decay_days)
    weights = np.exp(logits)  # the user's latest event has logit 0, so no overflow
    totals = np.bincount(owner, weights, minlength=len(histories))
    weights = weights / totals[owner]
    out = np.zeros((len(histories), item_vectors.shape[1]), dtype=np.float64)
    np.add.at(out, owner, weights[:, None] * item_vectors[histories.items[known]])
    return out.astype(np.float32)


def cosine_scores(users: np.ndarray, item_vectors: np.ndarray) -> np.ndarray:
    """``[U, M]`` cosine similarity of each user vector with each item vector (0 for a zero vector)."""
    return l2_normalize(users) @ l2_normalize(item_vectors).T
