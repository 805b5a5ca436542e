"""The Beam jobs on the in-process runner against `linnet predict` on the same rows."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("apache_beam", reason="apache-beam is not installed (pip install -e '.[beam]')")


def read_shards(directory, name: str) -> pd.DataFrame:
    parquet = sorted(directory.glob(f"{name}-*.parquet"))
    if parquet:
        return pd.concat([pd.read_parquet(path) for path in parquet], ignore_index=True)
    lines = [json.loads(line) for path in sorted(directory.glob(f"{name}-*.jsonl"))
             for line in path.read_text(encoding="utf-8").splitlines() if line]
    return pd.DataFrame(lines)


@pytest.fixture(scope="module")
def beam_predictions(exported, catalog_dir, tmp_path_factory):
    from linnet.engines.beam import predict_pipeline, run_job

    out = tmp_path_factory.mktemp("beam-predict")
    state = run_job(predict_pipeline, exported, str(catalog_dir / "*.jsonl"), str(out), max_batch_size=4)
    return state, read_shards(out, "predictions"), read_shards(out, "errors")


def test_beam_predict_matches_linnet_predict(beam_predictions, linnet_predict):
    state, predictions, _ = beam_predictions
    expected, _ = linnet_predict
    assert state == "DONE"
    assert sorted(predictions["id"]) == sorted(expected)  # every id exactly once
    for record in predictions.to_dict("records"):
        row = expected[record["id"]]
        for column in ("path", "full_path", "node_id", "top_k", "error"):
            assert (record[column] or "") == row[column], (record["id"], column)
        confidence = float(row["confidence"]) if row["confidence"] else np.nan
        np.testing.assert_allclose(record["confidence"], confidence, atol=1e-6)
        for level in (1, 2, 3):
            assert (record[f"level_{level}_node_id"] or "") == row[f"level_{level}_node_id"]
            want = float(row[f"level_{level}_confidence"]) if row[f"level_{level}_confidence"] else np.nan
            np.testing.assert_allclose(record[f"level_{level}_confidence"], want, atol=1e-6)
        assert (str(int(record["depth"])) if record["depth"] == record["depth"] else "") == row["depth"]


def test_beam_predict_reports_every_bad_row_and_image(beam_predictions, linnet_predict):
    _, predictions, errors = beam_predictions
    _, expected_errors = linnet_predict
    # linnet predict's errors, as (file name, location, id): each one is in the Beam errors output
    wanted = {(error["file"].rsplit("/", 1)[-1], error["location"], error["id"]) for error in expected_errors}
    got = {(error["file"].rsplit("/", 1)[-1], error["location"], error["id"]) for error in errors.to_dict("records")}
    assert wanted <= got
    assert {"id 'p0' repeated", "id 'p100' repeated"} <= set(errors["problem"])
    bad_title = predictions.set_index("id").loc["bad-title-0"]
    assert "must be text" in bad_title["error"] and not bad_title["path"]
    # images: a named file that is missing and bytes that do not decode are reported, the products still predicted
    image_errors = errors[errors["field"] == "image_bytes"]
    assert "missing-image-0" in set(image_errors["id"])
    corrupt = {f"p{number}" for number in range(1, 14, 3)}
    assert corrupt <= set(image_errors["id"])
    assert predictions.set_index("id").loc[sorted(corrupt), "path"].str.len().gt(0).all()
