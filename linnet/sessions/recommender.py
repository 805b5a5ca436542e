"""The default recommender, in TensorFlow ops: the same ``tf.Module`` scores histories in Python and is
saved as the SavedModel (`linnet.sessions.export`), so the export reproduces ``recommend`` exactly.

Repeat purchases dominate retail, so the user's own history leads (repeat-aware scoring):

- an item the user bought before scores ``count + 0.99 exp(-age / recency_days)`` (``age`` in days since
  they last bought it): frequency first, the most recent first among equal counts — always above any item
  they never bought;
- every other item scores ``0.5 [(1 - γ - δ) N_i + γ max(0, cos(u, v_i)) + δ p_i]`` (below 0.5, so after
  every past item): ``N`` the co-occurrence neighbours of the history (`linnet.sessions.cooccurrence`),
  each event weighted by ``exp(-age / recency_days)`` and scaled to max 1; ``u`` the time-decayed item2vec
  user vector (softmax of ``-age / decay_days``, `linnet.sessions.user_vectors`); ``p`` the popularity of
  the last 90 days of training (max 1). A history of only unknown items gets the popular items.

Ages count back from the latest event of the history, so a history scores the same whenever it is asked.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from linnet.embeddings.vectors import l2_normalize
from linnet.sessions.config import RecommenderParams
from linnet.sessions.cooccurrence import NeighbourTable
from linnet.sessions.sequences import SECONDS_PER_DAY


class SessionRecommender(tf.Module):
    """Scores every item for a batch of histories and returns the top k.

    ``recommend(item_ids [B, L] string, timestamps [B, L] int64 seconds, k) -> {"item_ids" [B, k], "scores"
    [B, k], "unknown_items" [B]}``: ``""`` pads a history and is neither scored nor counted; an id the
    model does not know is ignored and counted in ``unknown_items``. ``item_vectors(item_ids [N]) ->
    {"vectors" [N, D], "known" [N]}`` (zeros for an unknown id).
    """

    def __init__(self, item_ids, item_vectors, neighbours: NeighbourTable, popularity,
                 params: RecommenderParams | None = None, name: str = "session_recommender"):
        super().__init__(name=name)
        params = params or RecommenderParams()
        self.params = params
        self.num_items = len(item_ids)
        self.ids = tf.constant(np.asarray(item_ids, dtype=object).astype(str).astype(bytes))
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(self.ids, tf.range(self.num_items, dtype=tf.int32)), default_value=-1)
        vectors = np.asarray(item_vectors, dtype=np.float32)
        self.vectors = tf.Variable(vectors, trainable=False, name="item_vectors")
        self.unit_vectors = tf.Variable(l2_normalize(vectors), trainable=False, name="unit")
        self.neighbour_ids = tf.Variable(neighbours.ids.astype(np.int32), trainable=False, name="neighbour_ids")
        self.neighbour_weights = tf.Variable(neighbours.weights.astype(np.float32), trainable=False,
                                             name="neighbour_weights")
        self.popularity = tf.Variable(np.asarray(popularity, np.float32), trainable=False, name="popularity")
        self.weights_ = tf.constant([params.recency_days, params.decay_days, params.vector_weight,
                                     params.popularity_weight], dtype=tf.float32)

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None, None], tf.int64)])
    def score_indices(self, items, times):
        """``[B, M]`` scores of histories given as vocabulary indices (``-1``: pad or unknown)."""
        recency_days, decay_days, gamma, delta = tf.unstack(self.weights_)
        valid = items >= 0
        batch = tf.shape(items)[0]
        seconds = tf.cast(times, tf.float64)
        latest = tf.reduce_max(tf.where(valid, seconds, tf.constant(-np.inf, tf.float64)), axis=1, keepdims=True)
        age = tf.cast(tf.where(valid, (latest - seconds) / SECONDS_PER_DAY, 0.0), tf.float32)
        rows = tf.broadcast_to(tf.range(batch)[:, None], tf.shape(items))
        index = tf.boolean_mask(tf.stack([rows, items], axis=-1), valid)
        shape = tf.stack([batch, self.num_items])
        recency = tf.boolean_mask(tf.exp(-age / recency_days), valid)
        counts = tf.scatter_nd(index, tf.ones_like(recency), shape)
        last = tf.tensor_scatter_nd_max(tf.zeros(shape), index, recency)
        repeat = counts + 0.99 * last
        # Co-occurrence neighbours of the history, each event weighted by its recency.
        neighbour_ids = tf.gather(self.neighbour_ids, tf.boolean_mask(items, valid))
        neighbour_weights = tf.gather(self.neighbour_weights, tf.boolean_mask(items, valid)) * recency[:, None]
        has_neighbour = neighbour_ids >= 0
        neighbour_rows = tf.broadcast_to(index[:, :1], tf.shape(neighbour_ids))
        neighbour_index = tf.boolean_mask(tf.stack([neighbour_rows, neighbour_ids], axis=-1), has_neighbour)
        together = tf.scatter_nd(neighbour_index, tf.boolean_mask(neighbour_weights, has_neighbour), shape)
        together = tf.math.divide_no_nan(together, tf.reduce_max(together, axis=1, keepdims=True))
        # The time-decayed item2vec user vector: softmax of -age / decay_days over the known events.
        weights = tf.nn.softmax(tf.where(valid, -age / decay_days, -np.inf), axis=1)
        weights = tf.where(valid, weights, 0.0)
        user = tf.einsum("bl,bld->bd", weights, tf.gather(self.vectors, tf.maximum(items, 0)))
        similarity = tf.nn.relu(tf.matmul(tf.math.l2_normalize(user, axis=1), self.unit_vectors, transpose_b=True))
        fill = 0.5 * ((1.0 - gamma - delta) * together + gamma * similarity + delta * self.popularity[None, :])
        return tf.where(counts > 0, repeat, fill)

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None, None], tf.int64),
                                  tf.TensorSpec([], tf.int32)])
    def top_k_indices(self, items, times, k):
        """``(indices [B, k], scores [B, k])``; index ``-1`` where the score is 0 (nothing to recommend)."""
        scores = self.score_indices(items, times)
        top = tf.math.top_k(scores, k=tf.minimum(k, self.num_items))
        return tf.where(top.values > 0, top.indices, -1), top.values

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.string), tf.TensorSpec([None, None], tf.int64),
                                  tf.TensorSpec([], tf.int32)])
    def recommend(self, item_ids, timestamps, k):
        items = self.table.lookup(item_ids)
        unknown = tf.reduce_sum(tf.cast((items < 0) & (item_ids != ""), tf.int32), axis=1)
        indices, scores = self.top_k_indices(items, timestamps, k)
        ids = tf.where(indices >= 0, tf.gather(self.ids, tf.maximum(indices, 0)), "")
        return {"item_ids": ids, "scores": scores, "unknown_items": unknown}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def item_vectors(self, item_ids):
        index = self.table.lookup(item_ids)
        known = index >= 0
        vectors = tf.where(known[:, None], tf.gather(self.vectors, tf.maximum(index, 0)), 0.0)
        return {"vectors": vectors, "known": known}


def score_in_batches(recommender: SessionRecommender, items: np.ndarray, times: np.ndarray, k: int,
                     batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """``top_k_indices`` over ``[U, L]`` padded histories in batches: ``(indices [U, k], scores [U, k])``."""
    indices, scores = [], []
    for start in range(0, max(len(items), 1), batch_size):
        top, values = recommender.top_k_indices(tf.constant(items[start:start + batch_size], tf.int32),
                                                tf.constant(times[start:start + batch_size], tf.int64),
                                                tf.constant(k, tf.int32))
        indices.append(top.numpy())
        scores.append(values.numpy())
    return np.concatenate(indices), np.concatenate(scores)
