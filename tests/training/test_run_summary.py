"""What a finished run tells a newcomer: no "level 7 nan" when the validation split has no product that deep,
and a run README whose MLflow command opens the store that exists, from any directory."""

from __future__ import annotations

from pathlib import Path

from linnet.data import CatalogSchema
from linnet.training.config import TrainingConfig
from linnet.training.run_directory import RunFiles, closing_summary, run_readme

METRICS = {"epochs_run": 12, "fit_seconds": 65.8, "examples_per_second": 10.0, "steady_examples_per_second": 12.0,
           "train_examples": 32, "validation_examples": 10, "catalog_examples": 50, "parameters": 1000,
           "replicas": 1, "validation": {"level_1_accuracy": 0.7, "level_2_accuracy": 0.875,
                                         "level_3_accuracy": float("nan")}}


def test_the_closing_summary_names_unlabelled_levels_instead_of_printing_nan():
    summary = closing_summary(METRICS, Path("runs/tour"))
    assert "nan" not in summary
    assert "level 1 0.700, level 2 0.875 (no validation product labelled at level 3)" in summary


def test_the_run_readme_gives_the_mlflow_store_that_exists(tmp_path, tiny_taxonomy):
    run_dir = tmp_path / "runs" / "tour"
    files = RunFiles(TrainingConfig(), CatalogSchema(category_column="category"), tiny_taxonomy, None, METRICS,
                     "products.csv")
    readme = run_readme(run_dir, files)
    assert f"sqlite:///{run_dir.resolve() / 'mlflow.db'}" in readme
    assert "nan" not in readme and "| 3 | - (no validation product labelled this deep) |" in readme

