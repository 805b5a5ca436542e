"""The real path: `linnet.training.trainer.train` on a tiny catalog -> `linnet export` -> reload, same predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

WORDS = {"Apparel > Shirts": "shirt oxford", "Apparel > Dresses": "dress gown", "Footwear > Boots": "boots chelsea",
         "Home": "lamp shade"}
TINY_CONFIG = {
    "model": {"text_encoder": {"name": "hashed_ngrams", "num_bins": 2048, "embedding_dim": 16}, "fusion_dim": 16,
              "embedding_dim": 8, "head_hidden_units": [16], "wide": {"enabled": False}},
    "training": {"epochs": 1, "batch_size": 16, "tensorboard": False, "checkpoints": False,
                 "backup_and_restore": False, "verbose": 0, "early_stopping_patience": None,
                 "embedding_cache": False},
}


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    from linnet.data import CatalogSchema
    from linnet.training.trainer import train

    directory = tmp_path_factory.mktemp("end_to_end")
    rows = [{"id": f"p{index}", "title": f"{WORDS[path].split()[index % 2]} {index}", "category": path}
            for index, path in enumerate(list(WORDS) * 12)]
    catalog = directory / "catalog.csv"
    pd.DataFrame(rows).to_csv(catalog, index=False)
    schema = CatalogSchema(text_columns=["title"], category_column="category")
    run = train(catalog, directory / "run", schema=schema, config=TINY_CONFIG, progress=False)
    return run, pd.DataFrame(rows)


def test_train_export_reload_gives_the_same_predictions(trained_run, tmp_path, capsys):
    from linnet.inference.calibration_file import save_calibration
    from linnet.cli.main import main
    from linnet.serving.predict import load_predictor

    run, frame = trained_run
    calibration = save_calibration(tmp_path / "calibration.json", [0.3, 0.3], {}, run.taxonomy)
    assert main(["export", str(run.path), "--out", str(tmp_path / "exports"), "--calibration", str(calibration)]) == 0
    export_dir = tmp_path / "exports" / run.path.name / "1"
    assert str(export_dir) in capsys.readouterr().out
    assert (export_dir / "MODEL_CARD.md").is_file()

    from_run = load_predictor(run.path)
    exported = load_predictor(export_dir)
    assert exported.taxonomy == run.taxonomy and exported.schema == run.schema
    run_outputs = from_run.predict_frame(frame)
    export_outputs = exported.predict_frame(frame)
    np.testing.assert_allclose(export_outputs["confidences"], run_outputs["confidences"], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(export_outputs["full_class_ids"], run_outputs["full_class_ids"])
    np.testing.assert_allclose(export_outputs["level_2"], run_outputs["level_2"], rtol=1e-5, atol=1e-6)
    # The export carries the calibration; the run directory has none, so it exposes the full path.
    assert np.all(export_outputs["depth"] <= run_outputs["depth"])
    expected_depth = (export_outputs["confidences"] >= 0.3).cumprod(axis=1).sum(axis=1)
    np.testing.assert_array_equal(export_outputs["depth"], expected_depth)
