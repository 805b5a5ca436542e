"""The Best Buy recommender network, kept as the documented baseline architecture (Keras).

The time-decayed user vector of a history (`linnet.sessions.user_vectors`) goes through
``Dense(hidden) + ReLU → Dropout → BatchNormalization → Dense(M) + softmax``; the target is what the user
bought next. Training examples come from the training sequences themselves: every user with two baskets or
more, the history without the last basket as input and each item of the last basket as a target (Best
Buy's "most recent item"; the items of a basket share one timestamp, so the basket stands for it). The full
softmax is used: at the few thousand items of one shop it costs less than a sampled one's bookkeeping
(``docs/sessions.md``).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from linnet.sessions.sequences import Sequences, split_last_basket
from linnet.sessions.user_vectors import user_vectors


def build_network(num_items: int, dim: int, hidden: int = 256, dropout: float = 0.2) -> keras.Model:
    inputs = keras.Input((dim,), name="user_vector")
    hidden_layer = keras.layers.Dense(hidden, activation="relu", name="hidden")(inputs)
    hidden_layer = keras.layers.Dropout(dropout, name="dropout")(hidden_layer)
    hidden_layer = keras.layers.BatchNormalization(name="batch_norm")(hidden_layer)
    outputs = keras.layers.Dense(num_items, activation="softmax", name="next_item")(hidden_layer)
    return keras.Model(inputs, outputs, name="best_buy_network")


def train_network(train: Sequences, item_vectors: np.ndarray, decay_days: float = 30.0, epochs: int = 10,
                  hidden: int = 256, dropout: float = 0.2, batch_size: int = 256, seed: int = 0,
                  strategy: str = "default", progress: bool = False) -> keras.Model:
    """Fits the network on ``train``'s last baskets (see the module docstring) under the named strategy."""
    from linnet.training.config import FitConfig
    from linnet.training.trainer import make_strategy

    history, owner, targets = split_last_basket(train)
    inputs = user_vectors(history, item_vectors, decay_days)[owner]
    keras.utils.set_random_seed(seed)
    with make_strategy(FitConfig(strategy=strategy)).scope():
        model = build_network(len(item_vectors), item_vectors.shape[1], hidden, dropout)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    data = (tf.data.Dataset.from_tensor_slices((inputs, targets.astype(np.int32)))
            .shuffle(len(targets), seed=seed).batch(batch_size).prefetch(tf.data.AUTOTUNE))
    model.fit(data, epochs=epochs, shuffle=False, verbose=1 if progress else 0)
    return model


def network_scores(model: keras.Model, histories: Sequences, item_vectors: np.ndarray,
                   decay_days: float = 30.0) -> np.ndarray:
    """``[U, M]`` next-item probabilities for each history."""
    return model.predict(user_vectors(histories, item_vectors, decay_days), batch_size=512, verbose=0)
