"""Metrics against hand-computed answers, baselines and the decay formula (NumPy only)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from linnet.sessions.baselines import (
    item_knn_scores,
    popularity_scores,
    recent_popularity,
    repeat_scores,
    top_k,
)
from linnet.sessions.cooccurrence import cooccurrence_neighbours
from linnet.sessions.metrics import coverage, hit_rate_at_k, mrr_at_k, recall_at_k
from linnet.sessions.sequences import (
    SECONDS_PER_DAY,
    ItemVocabulary,
    Sequences,
    build_sequences,
)
from linnet.sessions.user_vectors import decay_weights, user_vectors

from .conftest import GROUPS, ITEMS_PER_GROUP, planted_log


def test_metrics_match_hand_computed_values():
    recommended = np.array([[3, 1, 2], [0, 4, -1], [5, 6, 7]])
    targets = [np.array([1, 2]), np.array([9]), np.array([7, -1])]
    assert hit_rate_at_k(recommended, targets, 3) == pytest.approx(2 / 3)
    assert hit_rate_at_k(recommended, targets, 1) == 0.0
    assert recall_at_k(recommended, targets, 3) == pytest.approx((1.0 + 0.0 + 0.5) / 3)
    assert mrr_at_k(recommended, targets, 3) == pytest.approx((1 / 2 + 0 + 1 / 3) / 3)
    assert coverage(recommended, 10, 2) == pytest.approx(6 / 10)  # {3, 1, 0, 4, 5, 6}


def _sequences(events):
    frame = pd.DataFrame(events, columns=["user", "item", "time", "basket"]).assign(title="", line=0)
    vocabulary = ItemVocabulary.from_items(frame["item"])
    return build_sequences(frame, vocabulary), vocabulary


def test_repeat_baseline_ranks_by_frequency_then_recency_and_fills_with_popularity():
    day = SECONDS_PER_DAY
    sequences, vocabulary = _sequences([("u", "old", 0, "1"), ("u", "often", 1 * day, "2"),
                                        ("u", "often", 2 * day, "3"), ("u", "new", 3 * day, "4"),
                                        ("v", "hit", 3 * day, "5"), ("w", "hit", 3 * day, "6")])
    popularity = recent_popularity(sequences, len(vocabulary))
    scores = repeat_scores(sequences.select(np.array([True, False, False])), np.array([3 * day]), len(vocabulary),
                           popularity)
    ranked = [vocabulary.ids[i] for i in top_k(scores, 4)[0]]
    assert ranked == ["often", "new", "old", "hit"]
    assert [vocabulary.ids[i] for i in top_k(popularity_scores(popularity, sequences), 1)[:, 0]] == ["hit"] * 3


def test_cooccurrence_recovers_the_planted_groups():
    frame = planted_log().rename(columns={"customer": "user", "sku": "item", "order": "basket"})
    frame = frame.assign(time=pd.to_datetime(frame["when"]).astype("int64") // 10**9, title="", line=0)
    vocabulary = ItemVocabulary.from_items(frame["item"])
    sequences = build_sequences(frame, vocabulary)
    table = cooccurrence_neighbours(sequences, len(vocabulary), k=ITEMS_PER_GROUP - 1)
    group = np.array([item.split("_")[0] for item in vocabulary.ids])
    assert (group[table.ids] == group[:, None]).all()
    scores = item_knn_scores(sequences, table, len(vocabulary))
    best = top_k(scores, 1)[:, 0]
    user_group = np.array([f"g{int(user[1:]) % GROUPS}" for user in sequences.users])
    assert (group[best] == user_group).all()


def test_decay_weights_equal_the_formula():
    ages = np.array([0.0, 3.0, 10.0, 40.0])
    expected = np.exp(-ages / 7.0) / np.exp(-ages / 7.0).sum()
    np.testing.assert_allclose(decay_weights(ages, 7.0), expected, rtol=1e-12)
    day = SECONDS_PER_DAY
    sequences = Sequences(np.array(["u"], dtype=object), np.array([0, 3]), np.array([0, 1, -1], dtype=np.int32),
                          np.array([0, 10 * day, 5 * day]), np.array([0, 1, 2], dtype=np.int32))
    vectors = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    weights = decay_weights(np.array([10.0, 0.0]), 5.0)  # the unknown item (-1) is left out
    np.testing.assert_allclose(user_vectors(sequences, vectors, 5.0)[0], weights @ vectors, rtol=1e-6)
