"""The baselines every recommender is compared with (NumPy/SciPy): popularity, the user's own past items,
item co-occurrence (item-kNN).

Each is a function ``scores(histories, now) -> [U, M] float32``: ``histories`` is a `Sequences` of the
users' known events (vocabulary indices), ``now`` the time (int64 seconds) of each user's recommendation;
`top_k` turns scores into ranked item indices. An item scored 0 is never recommended (``-1`` slot).
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from linnet.sessions.cooccurrence import NeighbourTable
from linnet.sessions.sequences import SECONDS_PER_DAY, Sequences


def user_item_matrix(histories: Sequences, num_items: int, weights: np.ndarray | None = None) -> sparse.csr_matrix:
    """``[U, M]`` sum of ``weights`` (1 per event by default) of each user's events of each item."""
    known = histories.items >= 0
    values = np.ones(known.sum(), dtype=np.float64) if weights is None else np.asarray(weights)[known]
    matrix = sparse.csr_matrix((values, (histories.owner()[known], histories.items[known])),
                               shape=(len(histories), num_items))
    matrix.sum_duplicates()
    return matrix


def recent_popularity(train: Sequences, num_items: int, days: float = 90.0) -> np.ndarray:
    """``[M]`` events per item in the last ``days`` days of the training events, scaled to max 1."""
    end = int(train.times.max(initial=0))
    recent = (train.times >= end - days * SECONDS_PER_DAY) & (train.items >= 0)
    counts = np.bincount(train.items[recent], minlength=num_items).astype(np.float64)
    return (counts / max(counts.max(initial=0), 1.0)).astype(np.float32)


def popularity_scores(popularity: np.ndarray, histories: Sequences) -> np.ndarray:
    """Popularity: every user gets the same list, the most bought items of the last 90 days."""
    return np.broadcast_to(popularity, (len(histories), len(popularity))).astype(np.float32)


def repeat_scores(histories: Sequences, now: np.ndarray, num_items: int, popularity: np.ndarray | None = None,
                  recency_days: float = 365.0) -> np.ndarray:
    """The user's own past items: ``count_i + 0.99 exp(-age_i / recency_days)`` with ``age_i`` the days since
    the user last bought ``i`` (frequency first, recency breaks ties); slots the history cannot fill go to
    popularity (scaled below any past item) when ``popularity`` is given."""
    counts = user_item_matrix(histories, num_items).toarray()
    owner = histories.owner()
    known = histories.items >= 0
    last = np.zeros_like(counts)
    age_days = (np.asarray(now)[owner] - histories.times) / SECONDS_PER_DAY
    np.maximum.at(last, (owner[known], histories.items[known]), np.exp(-age_days[known] / recency_days))
    scores = counts + 0.99 * last
    if popularity is not None:
        scores = np.where(counts > 0, scores, 1e-3 * popularity[None, :])
    return scores.astype(np.float32)


def item_knn_scores(histories: Sequences, neighbours: NeighbourTable, num_items: int) -> np.ndarray:
    """Item co-occurrence (item-kNN): ``score_i = Σ_{j in history} count_j S[j, i]``, ``S`` the cosine
    co-occurrence kept to each item's K nearest (`NeighbourTable`)."""
    return (user_item_matrix(histories, num_items) @ neighbours.matrix()).toarray().astype(np.float32)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """``[U, k]`` item indices of the k highest scores, best first (equal scores among the chosen: lower index
    first); ``-1`` where the score is not positive."""
    scores = np.asarray(scores)
    k_eff = min(k, scores.shape[1])
    part = np.argpartition(-scores, k_eff - 1, axis=1)[:, :k_eff]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    chosen = np.take_along_axis(part, order, axis=1)
    chosen = np.where(np.take_along_axis(scores, chosen, axis=1) > 0, chosen, -1)
    return np.pad(chosen, ((0, 0), (0, k - k_eff)), constant_values=-1).astype(np.int32)
