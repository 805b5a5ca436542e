"""`linnet calibrate` and `linnet evaluate` on a real run directory from `linnet.training.trainer.train`.

One tiny run (2-level tree, 240 products, a few seconds of training) is calibrated and evaluated through the
command line: the calibration file is the model's, the report scores the whole file it is given, MLflow gets
the same numbers as metrics.json, and a calibration or catalog made for another tree is refused by name.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

TINY_CONFIG = {
    "model": {"text_encoder": {"name": "hashed_ngrams", "num_bins": 4096, "embedding_dim": 16}, "fusion_dim": 16,
              "embedding_dim": 8, "head_hidden_units": [16], "wide": {"num_buckets": 1024}},
    "training": {"epochs": 4, "batch_size": 32, "tensorboard": False, "checkpoints": False,
                 "backup_and_restore": False, "verbose": 0, "early_stopping_patience": None,
                 "embedding_cache": False},
}
SCHEMA_FLAGS = ["--id-column", "id", "--text-columns", "title", "--attribute-columns", "colour",
                "--category-column", "path", "--value-column", "value"]


@pytest.fixture(scope="module")
def run(catalog_csv, schema, tmp_path_factory):
    from linnet.training.trainer import train

    return train(catalog_csv, tmp_path_factory.mktemp("model_path") / "run", schema=schema, config=TINY_CONFIG,
                 progress=False)


@pytest.fixture(scope="module")
def calibrated(run, catalog_csv, tmp_path_factory):
    from linnet.cli.main import main

    path = tmp_path_factory.mktemp("calibration") / "calibration.json"
    assert main(["calibrate", "--model", str(run.path), "--catalog", str(catalog_csv), "--out", str(path),
                 "--target-precision", "0.9", "--node-target", "Home=0.99", "--quiet"]) == 0
    return path


@pytest.fixture(scope="module")
def report(run, catalog_csv, calibrated, tmp_path_factory):
    from linnet.cli.main import main

    out = tmp_path_factory.mktemp("report") / "eval"
    assert main(["evaluate", "--model", str(run.path), "--catalog", str(catalog_csv), "--out", str(out),
                 "--calibration", str(calibrated), "--subtree", "Footwear", "--quiet"]) == 0
    return out


def test_calibrate_writes_the_models_thresholds_and_prints_the_tradeoff(run, calibrated, capsys):
    data = json.loads(calibrated.read_text())
    assert data["taxonomy_fingerprint"] == run.taxonomy.fingerprint()
    assert data["decoding"] == "greedy", "a run directory decodes greedily (DEFAULT_DECODING) unless told otherwise"
    assert len(data["level_thresholds"]) == run.taxonomy.num_levels
    # The node target was given by path and is stored by the model's node id.
    assert set(data["node_thresholds"]) <= {node.id for node in run.taxonomy.nodes}


def test_evaluate_scores_the_whole_file_by_default(run, report, catalog_csv, schema):
    from linnet.data import prepare_catalog

    metrics = json.loads((report / "metrics.json").read_text())
    for key in ("hierarchical_precision", "hierarchical_recall", "hierarchical_f1", "level_accuracy",
                "leaf_accuracy", "coverage", "n_products"):
        assert key in metrics
    test = prepare_catalog(catalog_csv, schema)  # no --split: the file the user passed, every product of it
    assert metrics["n_products"] == len(test) == 240
    with open(report / "predictions.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(row["id"] for row in rows) == sorted(test.ids)
    # The thresholded path is a prefix of the full descent, and its depth is what was exposed.
    for row in rows:
        assert row["full_path"].startswith(row["predicted_path"])
        assert int(row["depth"]) == (len(row["predicted_path"].split(" > ")) if row["predicted_path"] else 0)
    assert set(metrics["subtrees"]) == {"Footwear"}
    # Top-k needs the per-level probabilities, which the run path keeps; level 1's top-1 is the descent's.
    assert metrics["level_top1_accuracy"][0] == pytest.approx(metrics["without_thresholds"]["level_accuracy"][0])
    assert all(top5 >= top1 for top5, top1 in zip(metrics["level_top5_accuracy"], metrics["level_top1_accuracy"]))
    assert len(metrics["value_weighted"]["level_accuracy"]) == 2


def test_evaluate_logs_the_same_numbers_to_the_runs_mlflow_store(run, report):
    import mlflow

    from linnet.training.tracking import tracking_uri_for

    metrics = json.loads((report / "metrics.json").read_text())
    client = mlflow.MlflowClient(tracking_uri=tracking_uri_for(run.path))
    logged = [found for experiment in client.search_experiments()
              for found in client.search_runs([experiment.experiment_id])
              if (found.info.run_name or "").startswith("evaluate")]
    assert len(logged) == 1
    assert logged[0].data.metrics["eval_hierarchical_f1"] == pytest.approx(metrics["hierarchical_f1"])
    assert logged[0].data.metrics["eval_level_2_accuracy"] == pytest.approx(metrics["level_accuracy"][1])
    artifacts = {item.path for item in client.list_artifacts(logged[0].info.run_id, "evaluation")}
    assert {"evaluation/metrics.json", "evaluation/report.md"} <= artifacts


def test_a_calibration_for_another_tree_is_refused_naming_both_fingerprints(run, catalog_csv, tmp_path, capsys):
    from linnet.evaluation.calibration import Calibration
    from linnet.cli.main import main
    from linnet.taxonomy import Taxonomy

    other = Taxonomy.from_paths(["Garden > Tools", "Garden > Seeds"])
    path = Calibration([0.5, 0.5], {}, other.fingerprint()).save(tmp_path / "other.json")
    assert main(["evaluate", "--model", str(run.path), "--catalog", str(catalog_csv), "--out",
                 str(tmp_path / "eval"), "--calibration", str(path), "--quiet", "--no-mlflow"]) == 2
    message = capsys.readouterr().err
    assert other.fingerprint() in message and run.taxonomy.fingerprint() in message
    assert not (tmp_path / "eval" / "metrics.json").exists()


def test_unknown_labels_are_counted_and_ancestor_mode_cuts_them(run, catalog_csv, tmp_path):
    import pandas as pd

    from linnet.evaluation.evaluate import evaluate_model

    frame = pd.read_csv(catalog_csv)
    frame.loc[frame["path"] == "Home > Lamps", "path"] = "Home > Rugs"   # a leaf the model never saw
    moved = tmp_path / "moved.csv"
    frame.to_csv(moved, index=False)
    scored = evaluate_model(run.path, moved, tmp_path / "score", split="all", log_mlflow=False, progress=False)
    cut = evaluate_model(run.path, moved, tmp_path / "ancestor", split="all", unknown_labels="ancestor",
                         log_mlflow=False, progress=False)
    assert scored["unknown_labels"] == {"mode": "score", "count": 48}
    assert cut["unknown_labels"]["count"] == 48
    # Scored as they are, 'Home > Rugs' can never be hit; cut to 'Home', level 2 of those rows is not scored.
    assert scored["level_accuracy"][1] <= 192 / 240
    assert cut["level_accuracy"][1] > scored["level_accuracy"][1]
    assert np.isclose(cut["level_accuracy"][0], scored["level_accuracy"][0])


def test_an_export_scores_like_its_run(run, report, catalog_csv, tmp_path):
    from linnet.evaluation.evaluate import evaluate_model
    from linnet.serving.export import export_run

    export_dir = export_run(run.path, tmp_path / "exports")
    # The export reads the raw catalog rows (not the prepared tf.data), with the run's schema and split.
    exported = evaluate_model(export_dir, catalog_csv, tmp_path / "eval", schema=run.schema, log_mlflow=False,
                              progress=False, split_fractions=run.config.data.split)
    from_run = json.loads((report / "metrics.json").read_text())
    assert exported["n_products"] == from_run["n_products"]
    for key in ("hierarchical_f1", "level_accuracy"):
        assert exported["without_thresholds"][key] == pytest.approx(from_run["without_thresholds"][key])


def test_thresholds_of_one_decoding_are_refused_by_the_other(run, calibrated, catalog_csv, tmp_path, capsys):
    from linnet.cli.main import main
    from linnet.errors import ConfigError
    from linnet.serving.export import export_run

    path = tmp_path / "path.json"
    assert main(["calibrate", "--model", str(run.path), "--catalog", str(catalog_csv), "--out", str(path),
                 "--target-precision", "0.9", "--decoding", "path", "--quiet"]) == 0
    assert json.loads(path.read_text())["decoding"] == "path"
    # Evaluated greedily (the default), the whole-path thresholds would judge other confidences.
    assert main(["evaluate", "--model", str(run.path), "--catalog", str(catalog_csv), "--out", str(tmp_path / "eval"),
                 "--calibration", str(path), "--quiet", "--no-mlflow"]) == 2
    assert "fitted on the 'path' decoding" in capsys.readouterr().err
    assert main(["evaluate", "--model", str(run.path), "--catalog", str(catalog_csv), "--out", str(tmp_path / "eval"),
                 "--calibration", str(path), "--decoding", "path", "--quiet", "--no-mlflow"]) == 0
    with pytest.raises(ConfigError, match="fitted on the 'greedy' decoding"):
        export_run(run.path, tmp_path / "exports", calibration=calibrated, decoding="path")
    assert not (tmp_path / "exports").exists(), "refused before anything is written"
    export_dir = export_run(run.path, tmp_path / "exports", calibration=path, decoding="path")
    assert json.loads((export_dir / "assets" / "calibration.json").read_text())["decoding"] == "path"
    # An export's decoding is fixed: asking it for the other one names both.
    assert main(["calibrate", "--model", str(export_dir), "--catalog", str(catalog_csv), "--out",
                 str(tmp_path / "x.json"), "--decoding", "greedy", "--quiet"]) == 2
    assert "decodes 'path'" in capsys.readouterr().err


def test_batch_size_bounds_each_model_call_and_changes_no_prediction(run, report, catalog_csv, tmp_path, monkeypatch):
    import types

    from linnet.evaluation import evaluate as evaluate_module
    from linnet.evaluation.evaluate import IMAGE_BATCH_SIZE, TEXT_BATCH_SIZE, evaluate_model, load_model

    assert load_model(run.path).batch_size == TEXT_BATCH_SIZE
    calls = []
    original = evaluate_module.Predictor.predict_prepared

    def spy(self, catalog, batch_size=None, **kwargs):
        calls.append(batch_size or self.batch_size)  # None: the predictor's own (predict_prepared's default)
        return original(self, catalog, batch_size=batch_size, **kwargs)

    monkeypatch.setattr(evaluate_module.Predictor, "predict_prepared", spy)
    small = evaluate_model(run.path, catalog_csv, tmp_path / "small", batch_size=7, log_mlflow=False, progress=False)
    assert calls == [7]
    default = json.loads((report / "metrics.json").read_text())
    assert small["without_thresholds"]["hierarchical_f1"] == pytest.approx(default["without_thresholds"]["hierarchical_f1"])
    # A model that reads images gets the small default (the CNN's activations grow with the batch).
    monkeypatch.setattr(evaluate_module, "load_predictor",
                        lambda *args, **kwargs: types.SimpleNamespace(image_size=224, batch_size=kwargs["batch_size"]))
    assert load_model(run.path).batch_size == IMAGE_BATCH_SIZE
    assert load_model(run.path, batch_size=3).batch_size == 3
