"""Epoch-end weight averaging and n-gram dropout (`linnet.training.regularizers`)."""

from __future__ import annotations

import numpy as np
import pytest

from linnet.errors import ConfigError

from .conftest import Killed, kill_after_epoch, tiny_config


def _tiny_keras_model(seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(3)])
    model.compile(optimizer=keras.optimizers.SGD(0.1),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def _data(seed, n=64):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    return x, (x[:, 0] > 0).astype("int64") + (x[:, 1] > 0).astype("int64")


class _RawRecorder:
    """Records the raw trainable weights at the end of each epoch's training (before the averaging swap)."""

    def __new__(cls):
        import keras

        class Recorder(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.raw = []
                self._epoch_start = []

            def on_train_batch_begin(self, batch, logs=None):
                if batch == 0:  # the weights the epoch's first step trains
                    self._epoch_start.append([v.numpy().copy() for v in self.model.trainable_variables])

            def on_test_begin(self, logs=None):
                if len(self.raw) < len(self._epoch_start):
                    self.raw.append([v.numpy().copy() for v in self.model.trainable_variables])

            def on_epoch_end(self, epoch, logs=None):
                if len(self.raw) < len(self._epoch_start):
                    self.raw.append([v.numpy().copy() for v in self.model.trainable_variables])

        return Recorder()


@pytest.mark.parametrize("with_validation", [True, False])
def test_weight_averaging_keeps_the_mean_of_the_end_of_epoch_weights(with_validation):
    from linnet.training.regularizers import WeightAveraging

    x, y = _data(0)
    vx, vy = _data(1, 32)
    model = _tiny_keras_model()
    recorder = _RawRecorder()
    history = model.fit(x, y, batch_size=16, epochs=4, verbose=0, shuffle=False,
                        validation_data=(vx, vy) if with_validation else None,
                        callbacks=[recorder, WeightAveraging(start_epoch=2)])
    assert len(recorder.raw) == 4
    # Each epoch trained on from the raw weights of the epoch before, not from the mean.
    for before, after in zip(recorder.raw[:-1], recorder._epoch_start[1:]):
        for raw, start in zip(before, after):
            np.testing.assert_allclose(start, raw, rtol=1e-6, atol=1e-7)
    expected = [np.mean([epoch[index] for epoch in recorder.raw[1:]], axis=0) for index in range(len(recorder.raw[0]))]
    final = [v.numpy() for v in model.trainable_variables]
    for got, want, last_raw in zip(final, expected, recorder.raw[-1]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        assert not np.allclose(got, last_raw)  # the mean, not the last epoch's weights
    if with_validation:
        # The validation loss of the last epoch is the averaged model's.
        assert history.history["val_loss"][-1] == pytest.approx(model.evaluate(vx, vy, verbose=0), rel=1e-5)
    # Evaluating after fit does not swap anything.
    model.evaluate(vx, vy, verbose=0)
    for got, want in zip([v.numpy() for v in model.trainable_variables], expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_weight_averaging_from_a_later_epoch_than_the_run_leaves_the_weights_alone():
    from linnet.training.regularizers import WeightAveraging

    x, y = _data(0)
    model = _tiny_keras_model()
    recorder = _RawRecorder()
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False, callbacks=[recorder, WeightAveraging(3)])
    for got, raw in zip([v.numpy() for v in model.trainable_variables], recorder.raw[-1]):
        np.testing.assert_array_equal(got, raw)


def _batches():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    weights = rng.uniform(0.1, 1.0, size=(4, 200, 40)).astype("float32")
    weights[:, :, 30:] = 0.0  # padding
    weights[:, 0, 1:] = 0.0  # a row with a single n-gram
    weights /= np.maximum(np.linalg.norm(weights, axis=-1, keepdims=True), 1e-12)
    ids = np.arange(weights.size).reshape(weights.shape)
    labels = np.zeros((4, 200), "int64")
    return weights, tf.data.Dataset.from_tensor_slices(({"ngram_ids": ids, "ngram_weights": weights}, labels))


def test_ngram_dropout_drops_about_rate_and_keeps_row_norms():
    from linnet.training.regularizers import ngram_dropout

    original, dataset = _batches()
    dropped = dataset.apply(ngram_dropout(0.3, seed=7, weights_key="ngram_weights"))
    first = np.stack([features["ngram_weights"].numpy() for features, _ in dropped])
    real = original > 0
    zeroed = real & (first == 0)
    assert 0.25 < zeroed.sum() / real.sum() < 0.35
    assert np.all(first[~real] == 0)  # padding stays padding
    np.testing.assert_allclose(np.linalg.norm(first, axis=-1), np.linalg.norm(original, axis=-1), rtol=1e-5)
    # Kept n-grams keep their proportions (one scale per row).
    row = first[1, 3]
    kept = row > 0
    np.testing.assert_allclose(row[kept] / original[1, 3][kept], (row[kept] / original[1, 3][kept])[0], rtol=1e-5)
    # A row whose single n-gram was dropped keeps it; ids pass through.
    np.testing.assert_allclose(first[:, 0, 0], original[:, 0, 0], rtol=1e-6)
    # A new iterator (next epoch) draws new masks; the same seed repeats the sequence.
    second = np.stack([features["ngram_weights"].numpy() for features, _ in dropped])
    assert not np.array_equal(first == 0, second == 0)
    again = np.stack([f["ngram_weights"].numpy()
                      for f, _ in dataset.apply(ngram_dropout(0.3, seed=7, weights_key="ngram_weights"))])
    np.testing.assert_array_equal(again, first)


def test_config_rejects_bad_values():
    from linnet.training.config import TrainingConfig

    with pytest.raises(ConfigError, match="training.ngram_dropout"):
        TrainingConfig.from_dict({"training": {"ngram_dropout": 1.0}})
    with pytest.raises(ConfigError, match="training.average_weights_from_epoch"):
        TrainingConfig.from_dict({"training": {"average_weights_from_epoch": 0}})


def test_averaged_run_with_ngram_dropout_resumes_to_the_uninterrupted_result(tiny_catalog_file, tiny_schema,
                                                                            tiny_taxonomy, tmp_path):
    from linnet.training.trainer import train

    config = tiny_config(training={"average_weights_from_epoch": 2, "ngram_dropout": 0.2})
    whole = train(tiny_catalog_file, tmp_path / "whole", schema=tiny_schema, config=config, taxonomy=tiny_taxonomy,
                  progress=False)
    assert whole.metrics["history"]["val_level_1_accuracy"][-1] > 0.5
    with pytest.raises(Killed):
        train(tiny_catalog_file, tmp_path / "killed", schema=tiny_schema, config=config, taxonomy=tiny_taxonomy,
              progress=False, callbacks=[kill_after_epoch(2)])
    resumed = train(tiny_catalog_file, tmp_path / "killed", schema=tiny_schema, config=config,
                    taxonomy=tiny_taxonomy, progress=False, resume=True)
    assert resumed.metrics["resumed_from_epoch"] == 2
    for uninterrupted, continued in zip(whole.model.get_weights(), resumed.model.get_weights()):
        np.testing.assert_allclose(continued, uninterrupted, rtol=1e-5, atol=1e-6)


def test_wide_loss_trains_the_wide_path_as_a_classifier_of_its_own(tiny_run, tiny_catalog_file, tiny_schema,
                                                                   tiny_taxonomy, tmp_path):
    from linnet.training.trainer import train

    config = tiny_config(training={"wide_loss_weight": 2.0})
    run = train(tiny_catalog_file, tmp_path / "wide", schema=tiny_schema, config=config, taxonomy=tiny_taxonomy,
                progress=False)
    history = run.metrics["history"]
    levels = range(1, tiny_taxonomy.num_levels + 1)
    assert all(f"wide_{level}_loss" in history and f"val_wide_{level}_loss" in history for level in levels)
    assert history["wide_3_loss"][-1] < history["wide_3_loss"][0]
    # The objective is the levels' losses plus the weighted wide-only losses.
    for epoch in range(len(history["loss"])):
        levels_loss = sum(history[f"level_{level}_loss"][epoch] for level in levels)
        wide_loss = sum(history[f"wide_{level}_loss"][epoch] for level in levels)
        assert history["loss"][epoch] == pytest.approx(levels_loss + 2.0 * wide_loss, rel=0.1)
        assert history["loss"][epoch] > levels_loss + 1.5 * wide_loss
    assert sorted(run.model.output) == sorted(tiny_run.model.output)  # the saved model has no wide_k outputs
