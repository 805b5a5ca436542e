"""One tiny run through `linnet.training.trainer.train`: the run directory, MLflow, losses, masking, seeds, weights."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from linnet.errors import ConfigError

from .conftest import tiny_config

RUN_FILES = ("config.yaml", "schema.yaml", "taxonomy.json", "model.keras", "metrics.json", "mlflow.db", "README.md")


def test_run_directory_holds_every_file_and_they_read_back(tiny_run, tiny_taxonomy, tiny_schema):
    from linnet.taxonomy import Taxonomy
    from linnet.training.config import TrainingConfig

    for name in RUN_FILES:
        assert (tiny_run.path / name).is_file(), name
    assert not (tiny_run.path / "state").exists()  # working state is removed once the run is finished
    config = TrainingConfig.from_dict(yaml.safe_load((tiny_run.path / "config.yaml").read_text()))
    assert config == tiny_run.config and config.training.epochs == 3 and config.model.fusion_dim == 32
    assert yaml.safe_load((tiny_run.path / "schema.yaml").read_text())["category_column"] == "category"
    assert tiny_run.schema.feature_text_fields == tiny_schema.feature_text_fields
    assert Taxonomy.load(tiny_run.path / "taxonomy.json").fingerprint() == tiny_taxonomy.fingerprint()
    metrics = json.loads((tiny_run.path / "metrics.json").read_text())
    assert metrics["epochs_run"] == 3 and metrics["train_examples"] + metrics["validation_examples"] <= 240
    assert set(metrics["validation"]) == {"level_1_accuracy", "level_2_accuracy", "level_3_accuracy"}
    assert len(metrics["level_weights_by_epoch"]) == 3
    readme = (tiny_run.path / "README.md").read_text()
    assert "Validation accuracy per level" in readme and f"{metrics['parameters']:,}" in readme
    assert f"{metrics['validation']['level_1_accuracy']:.4f}" in readme


def test_saved_model_predicts_probabilities(tiny_run, tiny_taxonomy):
    import tensorflow as tf

    from linnet.model import output_sizes

    outputs = tiny_run.model({"title": tf.constant(["blue denim jeans", "leather tote bag"])})
    widths = output_sizes(tiny_taxonomy.level_sizes(), stop_classes=True)  # the default: linnet.model.stops
    for level in (1, 2, 3):
        probabilities = outputs[f"level_{level}"].numpy()
        assert probabilities.shape == (2, widths[level - 1])
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_mlflow_run_has_params_metrics_and_level_weights_per_epoch(tiny_run, tiny_taxonomy):
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{(tiny_run.path / 'mlflow.db').as_posix()}")
    experiment = client.get_experiment_by_name("linnet")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["config.training.epochs"] == "3"
    assert run.data.params["schema.category_column"] == "category"
    assert run.data.tags["taxonomy_fingerprint"] == tiny_taxonomy.fingerprint()
    history = tiny_run.metrics["level_weights_by_epoch"]
    for level in (1, 2, 3):
        logged = client.get_metric_history(run.info.run_id, f"level_weight_{level}")
        assert [point.step for point in logged] == [0, 1, 2]
        np.testing.assert_allclose([point.value for point in logged],
                                   [history[str(epoch)][level - 1] for epoch in range(3)], rtol=1e-6)
    losses = client.get_metric_history(run.info.run_id, "loss")
    assert len(losses) == 3
    assert "final_level_3_accuracy" in run.data.metrics
    artifacts = {item.path for item in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "metrics.json", "model"} <= artifacts


def test_the_exponential_schedule_moves_weight_to_the_leaf(tiny_run):
    weights = tiny_run.metrics["level_weights_by_epoch"]
    assert weights["0"][0] > weights["0"][2]
    assert weights["2"][2] > weights["0"][2]
    for epoch_weights in weights.values():
        assert sum(epoch_weights) == pytest.approx(1.0, rel=1e-5)


def test_loss_falls_and_the_tree_is_learned(tiny_run):
    # The default wide path starts from a LinearSVC (wide.init auto) that already separates the tiny catalogue,
    # so the deep heads start near a small loss and still lower it.
    history = tiny_run.metrics["history"]
    assert history["loss"][-1] < history["loss"][0]
    assert tiny_run.metrics["validation"]["level_1_accuracy"] > 0.6


def test_from_zero_the_loss_falls_by_sgd_alone(tiny_catalog_file, tiny_schema, tiny_taxonomy, tmp_path):
    from linnet.training.trainer import train

    run = train(tiny_catalog_file, tmp_path / "zeros", schema=tiny_schema, config=tiny_config(
        model={"wide": {"num_buckets": 1024, "init": "zeros"}}), taxonomy=tiny_taxonomy, progress=False)
    history = run.metrics["history"]
    assert history["loss"][-1] < 0.7 * history["loss"][0]
    assert run.metrics["validation"]["level_1_accuracy"] > 0.6


def test_shallow_products_add_nothing_to_deeper_levels(tiny_run, tiny_taxonomy):
    """``Bags`` is a level-1 leaf: its products have no level-2/3 label, so those losses are exactly zero."""
    import tensorflow as tf

    from linnet.model import make_level_weight_variables
    from linnet.training.trainer import level_losses

    labels = tiny_taxonomy.encode(["Bags", "Bags", "Shoes > Sandals"])
    assert labels[0].tolist()[1:] == [-1, -1] and labels[2, 2] == -1 and labels[2, 1] >= 0
    outputs = tiny_run.model({"title": tf.constant(["tote bag", "backpack", "slides"])})
    losses = level_losses(tiny_run.config.model, make_level_weight_variables([1.0, 1.0, 1.0]))
    bags = slice(0, 2)
    assert float(losses["level_1"](labels[bags, 0], outputs["level_1"][bags])) > 0
    assert float(losses["level_2"](labels[bags, 1], outputs["level_2"][bags])) == 0.0
    assert float(losses["level_3"](labels[:, 2], outputs["level_3"])) == 0.0


def test_same_seed_same_weights_and_class_weights_change_the_loss(tiny_run, tiny_catalog_file, tiny_schema,
                                                                 tiny_taxonomy, tmp_path):
    from linnet.training.trainer import train

    again = train(tiny_catalog_file, tmp_path / "again", schema=tiny_schema, config=tiny_config(),
                  taxonomy=tiny_taxonomy, progress=False)
    for first, second in zip(tiny_run.model.get_weights(), again.model.get_weights()):
        np.testing.assert_array_equal(first, second)
    assert again.metrics["history"]["loss"] == tiny_run.metrics["history"]["loss"]
    weighted = train(tiny_catalog_file, tmp_path / "weighted", schema=tiny_schema,
                     config=tiny_config(data={"class_weighting": "balanced"}), taxonomy=tiny_taxonomy, progress=False)
    # Same seed, data order and initial weights: only the class weights differ, so the first epoch's loss does.
    assert weighted.metrics["history"]["loss"][0] != pytest.approx(tiny_run.metrics["history"]["loss"][0], rel=1e-4)


def test_an_existing_run_is_never_overwritten(tiny_run, tiny_catalog_file, tiny_schema):
    from linnet.training.trainer import train

    before = (tiny_run.path / "model.keras").stat().st_mtime_ns
    with pytest.raises(ConfigError, match="already holds a finished run"):
        train(tiny_catalog_file, tiny_run.path, schema=tiny_schema, config=tiny_config(), progress=False)
    with pytest.raises(ConfigError, match="already holds a finished run"):
        train(tiny_catalog_file, tiny_run.path, schema=tiny_schema, config=tiny_config(), progress=False, resume=True)
    assert (tiny_run.path / "model.keras").stat().st_mtime_ns == before
