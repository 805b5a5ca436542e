"""Early stopping and the kept checkpoint watch the whole tree (`TreeAccuracy`), and training says why it stopped."""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import tiny_config, write_tiny_catalog


def test_tree_accuracy_weights_levels_by_their_labelled_products():
    from linnet.training.callbacks import TREE_METRIC, TreeAccuracy

    # A ragged tree: the deepest level labels 4 validation products, level 1 all 2,475.
    logs = {"val_level_1_accuracy": 0.9, "val_level_2_accuracy": 0.8, "val_level_3_accuracy": 0.0}
    TreeAccuracy([2475, 1000, 4]).on_epoch_end(0, logs)
    assert logs[TREE_METRIC] == pytest.approx((2475 * 0.9 + 1000 * 0.8) / 3479)
    # A level nobody is labelled at does not count, whatever Keras reports for it.
    logs = {"val_level_1_accuracy": 0.5, "val_level_2_accuracy": 1.0}
    TreeAccuracy([10, 0]).on_epoch_end(0, logs)
    assert logs[TREE_METRIC] == 0.5


def test_early_stopping_says_why_and_which_epoch_it_kept():
    import keras

    from linnet.training.callbacks import TREE_METRIC, TreeEarlyStopping

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    lines = []
    callback = TreeEarlyStopping(patience=2, report=lines.append)
    callback.set_model(model)
    callback.on_train_begin()
    for epoch, value in enumerate([0.5, 0.6, 0.59, 0.58, 0.7]):
        callback.on_epoch_end(epoch, {TREE_METRIC: value})
        if getattr(model, "stop_training", False):
            break
    callback.on_train_end()
    assert epoch == 3, "two epochs without improvement after the best (epoch 2) stop the run"
    assert lines == [callback.reason]
    assert "early stopping after epoch 4" in callback.reason and "epoch 2" in callback.reason
    assert TREE_METRIC in callback.reason


def test_a_run_monitors_the_tree_prints_why_it_stopped_and_predicts_shallow_leaves(
        tiny_catalog_file, tiny_schema, tiny_taxonomy, tmp_path, capsys):
    from linnet.inference.classifier import HierarchicalClassifier
    from linnet.training.trainer import train

    validation = write_tiny_catalog(tmp_path / "validation.csv", rows=60, seed=7)
    config = tiny_config(training={"early_stopping_patience": 1, "epochs": 4})
    run = train(tiny_catalog_file, tmp_path / "run", schema=tiny_schema, config=config, taxonomy=tiny_taxonomy,
                progress=True, validation_path=validation)
    # --validation FILE: every product of the catalog trains, the other file validates.
    assert (run.metrics["train_examples"], run.metrics["validation_examples"]) == (240, 60)
    history = run.metrics["history"]
    assert len(history["val_tree_accuracy"]) == run.metrics["epochs_run"]
    assert run.metrics["stopped"] and "kept the weights of epoch" in run.metrics["stopped"]
    assert run.metrics["stopped"] in capsys.readouterr().out
    # Stop classes trained from the labels' depths: the level-1 leaf and the level-2 leaf are predicted as such.
    classifier = HierarchicalClassifier(run.model, run.taxonomy)
    outputs = classifier.predict({"title": np.array(["black tote bag new", "red flip flops summer",
                                                     "blue denim jeans white"], dtype=object)}, verbose=0)
    paths = [path.decode() if isinstance(path, bytes) else path for path in outputs["full_path"]]
    assert paths == ["Bags", "Shoes > Sandals", "Clothing > Trousers > Jeans"]
