"""item2vec: skip-gram with negative sampling over item sequences, in Keras, fed by ``tf.data``.

Pairs (target, context) are every two events of one user at most ``window`` apart (word2vec's shrinking
window: a pair at distance ``w`` is kept with probability ``(window - w + 1) / window``), in both
directions, after frequent-item subsampling (an event of an item with frequency ``f`` is kept with
probability ``min(1, sqrt(t / f) + t / f)``, word2vec's rule). They are drawn again with a new seed each
epoch (NumPy, vectorised). ``tf.data`` batches them and draws ``negatives`` noise items per pair from the
unigram distribution raised to 3/4. The model scores ``v_target · c_context`` for the true context and the
noise items; the loss is the logistic loss of word2vec. Both tables get ``IndexedSlices`` gradients and
are updated row by row by `linnet.encoders.LazyAdamW`. The model is built and trained under the
``tf.distribute`` strategy `linnet.training.trainer.make_strategy` names.
"""

from __future__ import annotations

import dataclasses
import time

import keras
import numpy as np
import tensorflow as tf

from linnet.sessions.config import Item2VecConfig
from linnet.sessions.sequences import Sequences

NOISE_TABLE_SIZE = 1_000_000


def skipgram_pairs(sequences: Sequences, counts: np.ndarray, window: int, subsample: float,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(targets, contexts)`` int32 pairs of one epoch (see the module docstring)."""
    known = sequences.items >= 0
    items = sequences.items[known]
    owner = sequences.owner()[known]
    if subsample > 0:
        frequency = counts[items] / max(counts.sum(), 1)
        ratio = subsample / np.maximum(frequency, 1e-12)
        keep = rng.random(len(items)) < np.minimum(1.0, np.sqrt(ratio) + ratio)
        items, owner = items[keep], owner[keep]
    targets, contexts = [], []
    for distance in range(1, window + 1):  # a loop over window offsets, not over events
        same = owner[distance:] == owner[:-distance]
        same &= rng.random(len(same)) < (window - distance + 1) / window
        left, right = items[:-distance][same], items[distance:][same]
        targets += [left, right]
        contexts += [right, left]
    if not targets:
        return np.zeros(0, np.int32), np.zeros(0, np.int32)
    return np.concatenate(targets).astype(np.int32), np.concatenate(contexts).astype(np.int32)


def noise_table(counts: np.ndarray, size: int = NOISE_TABLE_SIZE) -> np.ndarray:
    """word2vec's table: item ``i`` fills a share ``count_i^0.75 / Σ count^0.75`` of ``size`` slots."""
    weights = np.asarray(counts, dtype=np.float64) ** 0.75
    slots = np.floor(np.cumsum(weights) / weights.sum() * size).astype(np.int64)
    return np.repeat(np.arange(len(counts)), np.diff(np.concatenate([[0], slots]))).astype(np.int32)


@keras.saving.register_keras_serializable(package="linnet.sessions")
class SkipGram(keras.Model):
    """``call({"target": [B], "context": [B, 1 + negatives]}) -> logits [B, 1 + negatives]``."""

    def __init__(self, num_items: int, dim: int, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.num_items, self.dim, self.seed = int(num_items), int(dim), int(seed)
        scale = 0.5 / dim
        self.item_vectors = keras.layers.Embedding(
            num_items, dim, name="item_vectors",
            embeddings_initializer=keras.initializers.RandomUniform(-scale, scale, seed=seed))
        self.context_vectors = keras.layers.Embedding(num_items, dim, name="context_vectors",
                                                      embeddings_initializer="zeros")

    def call(self, inputs):
        target = self.item_vectors(inputs["target"])
        context = self.context_vectors(inputs["context"])
        return tf.einsum("bd,bnd->bn", target, context)

    def get_config(self):
        return {**super().get_config(), "num_items": self.num_items, "dim": self.dim, "seed": self.seed}


def _dataset(targets, contexts, table, config: Item2VecConfig, epoch: int):
    negatives = config.negatives
    table = tf.constant(table)

    def add_noise(target, context):
        size = tf.shape(target)[0]
        index = tf.random.stateless_uniform([size, negatives], seed=[config.seed, epoch], maxval=table.shape[0],
                                            dtype=tf.int32)
        noise = tf.gather(table, index)
        labels = tf.concat([tf.ones([size, 1]), tf.zeros([size, negatives])], axis=1)
        return {"target": target, "context": tf.concat([context[:, None], noise], axis=1)}, labels

    return (tf.data.Dataset.from_tensor_slices((targets, contexts))
            .shuffle(min(len(targets), 1_000_000), seed=config.seed + epoch)
            .batch(config.batch_size)
            .map(add_noise, num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))


@dataclasses.dataclass
class Item2VecResult:
    vectors: np.ndarray  # [M, dim] item (input) vectors
    seconds: float
    pairs_per_epoch: list[int]
    history: dict


def train_item2vec(sequences: Sequences, counts: np.ndarray, config: Item2VecConfig | None = None,
                   callbacks=(), progress: bool = True) -> Item2VecResult:
    """Trains item vectors on ``sequences`` (vocabulary indices; ``counts`` = events per item)."""
    from linnet.encoders import LazyAdamW  # sparse rows
    from linnet.training.trainer import FitConfig, make_strategy

    config = config or Item2VecConfig()
    started = time.perf_counter()
    rng = np.random.default_rng(config.seed)
    table = noise_table(np.maximum(counts, 1))
    keras.utils.set_random_seed(config.seed)
    strategy = make_strategy(FitConfig(strategy=config.strategy))
    with strategy.scope():
        model = SkipGram(len(counts), config.dim, seed=config.seed)
        model.compile(optimizer=LazyAdamW(learning_rate=config.learning_rate, weight_decay=0.0),
                      loss=keras.losses.BinaryCrossentropy(from_logits=True))
    pairs, history = [], {"loss": []}
    for epoch in range(config.epochs):
        targets, contexts = skipgram_pairs(sequences, counts, config.window, config.subsample, rng)
        pairs.append(len(targets))
        if not len(targets):
            break
        fitted = model.fit(_dataset(targets, contexts, table, config, epoch), initial_epoch=epoch,
                           epochs=epoch + 1, shuffle=False, verbose=1 if progress else 0, callbacks=list(callbacks))
        history["loss"] += fitted.history.get("loss", [])
    if not model.built:
        model({"target": tf.zeros([1], tf.int32), "context": tf.zeros([1, 1], tf.int32)})
    vectors = model.item_vectors.embeddings.numpy()
    return Item2VecResult(vectors.astype(np.float32), time.perf_counter() - started, pairs, history)

