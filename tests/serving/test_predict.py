"""Batch prediction: predictor on a raw frame, the resumable catalog job with bad rows, and `linnet predict`."""

from __future__ import annotations

import csv
import json

import numpy as np
import pandas as pd
import pytest

from serving.conftest import png_bytes
from linnet.errors import ConfigError


@pytest.fixture(scope="session")
def predictor(exported):
    from linnet.serving.predict import load_predictor

    return load_predictor(exported, batch_size=3)


@pytest.fixture(scope="session")
def image_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("images")
    (directory / "good.png").write_bytes(png_bytes())
    (directory / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return directory


def read_csv(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def in_image_root(schema, image_dir):
    """The schema with ``image_dir`` as its image root: image paths outside the root are refused (issue 23)."""
    return type(schema).from_dict({**schema.to_dict(), "image_root": str(image_dir)})


def test_predict_frame_matches_the_serving_signature(predictor, loaded, image_dir, tiny_taxonomy, export_schema):
    import tensorflow as tf

    frame = pd.DataFrame({"id": ["a", "b", "c", "d", "e"],
                          "title": ["red tee", "leather boots", None, "canvas bag", "jeans"],
                          "brand": ["acme", "", "zeta", None, "acme"],
                          "image": [str(image_dir / "good.png"), str(image_dir / "corrupt.jpg"), "missing.png", None,
                                    str(image_dir / "good.png")]})
    assert predictor.taxonomy == tiny_taxonomy and predictor.schema.text_columns == ["title", "brand"]
    outputs = predictor.predict_frame(frame, in_image_root(export_schema, image_dir))  # batch_size 3: two calls
    images = [png_bytes(), (image_dir / "corrupt.jpg").read_bytes(), b"", b"", png_bytes()]
    served = loaded.signatures["serving_default"](
        title=tf.constant(["red tee", "leather boots", "", "canvas bag", "jeans"]),
        brand=tf.constant(["acme", "", "zeta", "", "acme"]), image_bytes=tf.constant(images))
    assert outputs["path"].tolist() == [value.decode() for value in served["path"].numpy()]
    np.testing.assert_allclose(outputs["confidences"], served["confidences"].numpy(), rtol=1e-5)
    np.testing.assert_array_equal(outputs["image_present"], [1, 0, 0, 0, 1])
    assert outputs["level_1"].shape == (5, 3) and outputs["full_class_ids"].shape == (5, 3)


def test_load_predictor_rejects_other_directories(tmp_path):
    from linnet.serving.predict import load_predictor

    with pytest.raises(ConfigError, match="run directory"):
        load_predictor(tmp_path)


def test_an_exports_decoding_is_fixed_and_it_predicts_raw_rows_only(exported, predictor):
    from linnet.serving.predict import load_predictor

    assert predictor.decoding == "greedy" and predictor.classifier is None
    with pytest.raises(ConfigError, match="raw rows"):
        predictor.predict_prepared(None)
    with pytest.raises(ConfigError, match="--decoding path: the export at .* decodes 'greedy'"):
        load_predictor(exported, decoding="path")


def test_a_runs_predictor_applies_its_calibration_file_unless_told_not_to(run_dir, calibration_path, image_dir,
                                                                          tmp_path):
    import shutil

    from linnet.serving.predict import load_predictor

    run = shutil.copytree(run_dir, tmp_path / "run")
    shutil.copy(calibration_path, run / "calibration.json")
    calibrated = load_predictor(run, batch_size=3)
    assert calibrated.classifier.level_thresholds == pytest.approx([0.2, 0.3, 0.3])
    assert calibrated.classifier.node_thresholds == pytest.approx({"Shoes": 0.5})
    plain = load_predictor(run, run_calibration=False, decoding="greedy")
    assert plain.classifier.level_thresholds == [0.0, 0.0, 0.0] and plain.classifier.node_thresholds == {}
    assert plain.decoding == plain.classifier.decoding == "greedy"
    frame = pd.DataFrame({"id": ["a", "b"], "title": ["red tee", "boots"], "brand": ["acme", ""],
                          "image": [str(image_dir / "good.png"), None]})
    outputs = plain.predict_frame(frame, in_image_root(plain.schema, image_dir))
    np.testing.assert_array_equal(outputs["depth"], (outputs["full_class_ids"] >= 0).sum(axis=1))
    np.testing.assert_array_equal(outputs["image_present"], [1, 0])
    with pytest.raises(ConfigError, match="decoding must be one of path, greedy"):
        load_predictor(run, decoding="beam")


def write_catalog(path, image_dir):
    lines = [
        {"id": "p1", "title": "red tee", "brand": "acme", "image": str(image_dir / "good.png")},
        {"id": "p2", "title": "leather boots", "brand": "", "image": str(image_dir / "corrupt.jpg")},
        {"id": "", "title": "no id", "brand": "x", "image": None},
        {"id": "p3", "title": 42, "brand": "x", "image": None},
        {"id": "p1", "title": "repeated id", "brand": "x", "image": None},
        "{this line is not json",
        *[{"id": f"q{index}", "title": f"product {index}", "brand": "b", "image": None} for index in range(7)],
    ]
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


class CountingPredictor:
    """Wraps a predictor, counting rows predicted, and fails on call number ``fail_on`` (an interruption)."""

    def __init__(self, predictor, fail_on=None):
        self.inner, self.fail_on, self.calls, self.rows = predictor, fail_on, 0, 0
        self.taxonomy, self.text_fields, self.input_names = predictor.taxonomy, predictor.text_fields, predictor.input_names

    def predict_raw(self, inputs):
        self.calls += 1
        if self.calls == self.fail_on:
            raise KeyboardInterrupt
        self.rows += len(inputs["title"])
        return self.inner.predict_raw(inputs)


def test_predict_catalog_keeps_going_reports_bad_rows_and_resumes(predictor, export_schema, image_dir, tmp_path):
    from linnet.serving.predict import predict_catalog

    catalog = write_catalog(tmp_path / "catalog.jsonl", image_dir)
    out, errors = tmp_path / "predictions.csv", tmp_path / "errors.csv"
    export_schema = in_image_root(export_schema, image_dir)
    interrupted = CountingPredictor(predictor, fail_on=3)
    with pytest.raises(KeyboardInterrupt):
        predict_catalog(interrupted, catalog, export_schema, out, errors, batch_size=3, progress=False)
    assert not out.exists() and (tmp_path / "predictions.csv.partial").exists()

    resumed = CountingPredictor(predictor)
    summary = predict_catalog(resumed, catalog, export_schema, out, errors, batch_size=3, progress=False)
    assert resumed.rows == 9 - 6, "the 6 products written before the interruption are not predicted again"
    assert summary["rows"] == 3 and summary["resumed"] == 6 + 1  # 6 predictions and the error line of p3, in catalog order
    rows = read_csv(out)
    assert [row["id"] for row in rows] == ["p1", "p2", "p3", "q0", "q1", "q2", "q3", "q4", "q5", "q6"]
    by_id = {row["id"]: row for row in rows}
    assert "must be text" in by_id["p3"]["error"] and by_id["p3"]["path"] == ""
    assert by_id["p1"]["error"] == "" and by_id["p1"]["image_present"] == "1" and by_id["p2"]["image_present"] == "0"
    assert by_id["q0"]["full_path"] and int(by_id["q0"]["depth"]) >= 0 and by_id["q0"]["level_1_node_id"] in (
        "", "Bags", "Clothing", "Shoes")
    problems = read_csv(errors)
    assert len(problems) == 4, problems  # empty id, non-text title, repeated id, broken JSON line
    assert sorted(problem["location"] for problem in problems) == ["line 3", "line 4", "line 5", "line 6"]
    assert {problem["field"] for problem in problems} >= {"id", "title"}
    assert not list(tmp_path.glob("*.partial"))


def test_cli_predict_and_bad_model_path(exported, image_dir, tmp_path, capsys):
    from linnet.cli.main import main

    catalog = write_catalog(tmp_path / "catalog.jsonl", image_dir)
    out = tmp_path / "out.csv"
    assert main(["predict", "--model", str(exported), "--catalog", str(catalog), "--out", str(out), "--quiet",
                 "--image-root", str(image_dir)]) == 0
    assert "9 products predicted, 4 bad rows" in capsys.readouterr().out
    assert len(read_csv(out)) == 10 and len(read_csv(tmp_path / "out.errors.csv")) == 4
    assert main(["predict", "--model", str(tmp_path), "--catalog", str(catalog), "--out", str(out)]) == 2
    assert "expected a run directory" in capsys.readouterr().err


def test_cli_export_of_a_directory_that_is_not_a_run(tmp_path, capsys):
    from linnet.cli.main import main

    assert main(["export", str(tmp_path), "--out", str(tmp_path / "exports")]) == 2
    assert "not a finished run directory" in capsys.readouterr().err
    assert not (tmp_path / "exports").exists()
