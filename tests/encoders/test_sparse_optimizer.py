"""`LazyAdamW`: only the rows in the batch change; dense variables get Keras's AdamW update."""

from __future__ import annotations

import numpy as np
import pytest


def _bag_model(seed):
    import keras

    from linnet.encoders import EmbeddingBag

    keras.utils.set_random_seed(seed)
    ids = keras.Input(shape=(None,), dtype="int64", name="ids")
    weights = keras.Input(shape=(None,), dtype="float32", name="weights")
    vectors = EmbeddingBag(input_dim=64, output_dim=4, name="bag")(ids, weights)
    model = keras.Model([ids, weights], keras.layers.Dense(2, name="dense")(vectors))
    return model


BATCH_IDS = np.array([[3, 5, 0], [5, 9, 12]], "int64")
BATCH_WEIGHTS = np.array([[1.0, 1.0, 0.0], [1.0, 2.0, 1.0]], "float32")
TARGETS = np.array([[1.0, -1.0], [0.5, 2.0]], "float32")
TOUCHED = [3, 5, 9, 12]


def _step(model, optimizer, densify=False):
    import tensorflow as tf

    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model([BATCH_IDS, BATCH_WEIGHTS]) - TARGETS))
    gradients = tape.gradient(loss, model.trainable_weights)
    if densify:
        gradients = [tf.convert_to_tensor(gradient) for gradient in gradients]
    optimizer.apply(gradients, model.trainable_weights)
    return gradients


def _table(model):
    return model.get_layer("bag").embeddings.numpy().copy()


def test_only_batch_rows_change_even_with_weight_decay(tf):
    from linnet.encoders import LazyAdamW

    model = _bag_model(seed=1)
    optimizer = LazyAdamW(learning_rate=0.1, weight_decay=0.1)
    before = _table(model)
    gradients = _step(model, optimizer)
    assert isinstance(gradients[0], tf.IndexedSlices)
    after = _table(model)
    changed = np.flatnonzero(np.any(after != before, axis=1)).tolist()
    assert changed == TOUCHED
    for slot in optimizer.variables:
        if tuple(slot.shape) == (64, 4):
            slot_rows = np.flatnonzero(np.any(slot.numpy() != 0, axis=1)).tolist()
            assert slot_rows == TOUCHED


def test_first_step_matches_keras_adamw_on_touched_rows_and_dense_weights():
    import keras

    from linnet.encoders import LazyAdamW

    lazy_model, dense_model = _bag_model(seed=2), _bag_model(seed=2)
    options = {"learning_rate": 0.05, "weight_decay": 0.01}
    _step(lazy_model, LazyAdamW(**options))
    # Dense reference gradient: Keras's Adam squares IndexedSlices values before summing duplicate
    # indices (row 5 is in both examples), so its own sparse path is not a reference.
    _step(dense_model, keras.optimizers.AdamW(**options), densify=True)
    lazy_table, dense_table = _table(lazy_model), _table(dense_model)
    # At step 1 the moments start at zero, so the touched rows get the same Adam update; the dense
    # optimizer also decays every other row, which the lazy one leaves alone.
    np.testing.assert_allclose(lazy_table[TOUCHED], dense_table[TOUCHED], rtol=1e-5, atol=1e-7)
    untouched = [row for row in range(64) if row not in TOUCHED]
    assert not np.allclose(lazy_table[untouched], dense_table[untouched])
    # Dense variables go through TensorFlow's fused ResourceApplyAdam, which takes 1 - beta_2 in float32 where
    # Keras's Adam takes it in Python precision (0.999 -> 5e-5 relative in v): the same update to ~3e-6.
    for name in ("kernel", "bias"):
        lazy_weight = next(w for w in lazy_model.get_layer("dense").weights if name in w.path)
        dense_weight = next(w for w in dense_model.get_layer("dense").weights if name in w.path)
        np.testing.assert_allclose(lazy_weight.numpy(), dense_weight.numpy(), rtol=1e-5)


def test_a_schedule_is_read_once_per_step_and_gives_keras_adamw_updates():
    """Keras reads the learning rate once per variable (weight decay, then the update); LazyAdamW computes a
    schedule's value once per step (each read of a schedule is traced again), with the same weights after."""
    import keras

    from linnet.encoders import LazyAdamW

    class CountingSchedule(keras.optimizers.schedules.CosineDecay):
        calls = 0

        def __call__(self, step):
            type(self).calls += 1
            return super().__call__(step)

    options = {"weight_decay": 0.01}
    lazy_model, dense_model = _bag_model(seed=4), _bag_model(seed=4)
    lazy = LazyAdamW(learning_rate=CountingSchedule(0.0, 10, warmup_target=0.05, warmup_steps=2), **options)
    for _ in range(3):
        _step(lazy_model, lazy, densify=True)
    assert CountingSchedule.calls == 3  # 3 variables (table, kernel, bias), 3 steps: one read per step
    dense = keras.optimizers.AdamW(learning_rate=keras.optimizers.schedules.CosineDecay(
        0.0, 10, warmup_target=0.05, warmup_steps=2), **options)
    for _ in range(3):
        _step(dense_model, dense, densify=True)
    for lazy_weight, dense_weight in zip(lazy_model.weights, dense_model.weights):
        # to float32 rounding of 1 - beta_2 (see the test above); a step is ~0.05 here
        np.testing.assert_allclose(lazy_weight.numpy(), dense_weight.numpy(), rtol=1e-5, atol=1e-6)


def test_duplicate_indices_are_summed(tf):
    from linnet.encoders import LazyAdamW

    table = tf.Variable(np.zeros((4, 1), "float32"))
    optimizer = LazyAdamW(learning_rate=1.0, weight_decay=0.0, beta_1=0.0, beta_2=0.0, epsilon=0.0)
    gradient = tf.IndexedSlices(tf.constant([[1.0], [-3.0]]), tf.constant([1, 1]), tf.constant([4, 1]))
    optimizer.apply([gradient], [table])
    # Summed gradient -2 -> Adam step sign(-2) * lr = -1, so the value rises by 1.
    assert table.numpy().ravel().tolist() == [0.0, 1.0, 0.0, 0.0]


def test_fit_trains_text_model_and_saves_optimizer(tiny_text_encoder, tf, tmp_path):
    import keras

    from linnet.encoders import LazyAdamW, build_text_encoder

    encoder = build_text_encoder("hashed_ngrams", ["title"], num_bins=512, embedding_dim=8)
    title = keras.Input(shape=(), dtype="string", name="title")
    model = keras.Model({"title": title}, keras.layers.Dense(2)(encoder({"title": title})))
    model.compile(optimizer=LazyAdamW(learning_rate=0.05), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    texts = np.array(["red shirt", "blue shirt", "red dress", "green jeans"] * 8)
    labels = np.array([0, 1, 0, 1] * 8)
    dataset = tf.data.Dataset.from_tensor_slices(({"title": texts}, labels)).batch(8)
    history = model.fit(dataset, epochs=5, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    path = tmp_path / "fit.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded.optimizer, LazyAdamW)


def test_amsgrad_is_refused():
    from linnet.encoders import LazyAdamW

    with pytest.raises(ValueError, match="amsgrad"):
        LazyAdamW(amsgrad=True)


MIRRORED_SCRIPT = r"""
import numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from linnet.encoders import EmbeddingBag, HashedNgramFeaturizer, LazyAdamW
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
featurizer = HashedNgramFeaturizer(["title"], num_bins=512)
with strategy.scope():
    ids = keras.Input(shape=(None,), dtype="int64")
    weights = keras.Input(shape=(None,), dtype="float32")
    bag = EmbeddingBag(512, 8)
    model = keras.Model([ids, weights], keras.layers.Dense(2)(bag(ids, weights)))
    model.compile(optimizer=LazyAdamW(learning_rate=0.05),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
texts = np.array(["red shirt", "blue shirt", "red dress", "green jeans"] * 4)
labels = np.array([0, 1, 0, 1] * 4)
dataset = tf.data.Dataset.from_tensor_slices(({"title": texts}, labels)).batch(8).map(lambda x, y: (featurizer(x), y))
before = bag.embeddings.numpy().copy()
history = model.fit(dataset, epochs=3, verbose=0)
changed = set(np.flatnonzero(np.any(bag.embeddings.numpy() != before, axis=1)).tolist())
all_ids, all_weights = featurizer({"title": tf.constant(texts)})
touched = set(all_ids.numpy()[all_weights.numpy() > 0].tolist())
print("RESULT", history.history["loss"][-1] < history.history["loss"][0], changed == touched)
"""


def test_mirrored_strategy_over_two_cpus_keeps_updates_sparse():
    # Logical devices must be configured before TensorFlow starts, hence a child process.
    import os
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT], check=False, capture_output=True, text=True, timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert "RESULT True True" in result.stdout, result.stderr[-3000:]
