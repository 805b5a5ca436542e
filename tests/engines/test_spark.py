"""The Spark UDF, `linnet spark predict` and the streaming job on one local[2] session, against `linnet predict`."""

from __future__ import annotations

import csv
import json
import os
import shutil

import numpy as np
import pytest

pytest.importorskip("pyspark", reason="pyspark is not installed (pip install -e '.[spark]')")


@pytest.fixture(scope="module")
def spark():
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("Spark needs Java (no java on PATH and no JAVA_HOME)")
    from linnet.engines.spark import local_session

    session = local_session("local[2]", "linnet-tests")
    yield session
    session.stop()


def assert_same_as_linnet_predict(records, expected):
    """Each id's first record (a DataFrame keeps repeats: one row out per row in) against `linnet predict`'s row,
    for the rows it predicted (a number in a JSON title is text to Spark's string schema, an error to predict)."""
    first = {}
    for record in records:
        first.setdefault(record["id"], record)
    compared = [record for record in first.values() if record["id"] in expected and not expected[record["id"]]["error"]]
    assert len(compared) >= 8
    for record in compared:
        row = expected[record["id"]]
        for column in ("path", "full_path", "node_id", "top_k"):
            assert (record[column] or "") == row[column], (record["id"], column)
        for column in ("confidence", "level_1_confidence", "level_2_confidence", "level_3_confidence"):
            want = float(row[column]) if row[column] else np.nan
            np.testing.assert_allclose(np.nan if record[column] is None else record[column], want, atol=1e-6)


def test_udf_gives_one_struct_per_row_like_linnet_predict(spark, exported, export_schema, catalog_dir,
                                                          linnet_predict):
    from linnet.engines.spark import input_columns, linnet_udf

    expected, _ = linnet_predict
    frame = spark.read.schema("id string, title string, brand string, image string").json(
        str(catalog_dir / "part-1.jsonl"))
    udf = linnet_udf(exported, export_schema, batch_size=4, image_root=catalog_dir)
    out = frame.withColumn("category", udf(*input_columns(export_schema))).select("category.*").collect()
    records = [row.asDict() for row in out]
    assert len(records) == frame.count()  # one row out per row in, the broken JSON line too
    good = [record for record in records if not record["error"]]
    assert {record["id"] for record in good} >= {f"p{number}" for number in range(14)}
    assert_same_as_linnet_predict(good, expected)
    failed = {record["error"] for record in records if record["error"]}
    assert failed == {"the id is empty"}  # the row without an id and the broken JSON line (read as nulls)
    problems = {record["id"]: record["image_problem"] for record in records if record["image_problem"]}
    assert "missing-image-0" in problems and "decoded" in problems["p1"]


def test_spark_predict_command_writes_predictions_and_errors(spark, exported, catalog_dir, linnet_predict, tmp_path,
                                                             capsys):
    from linnet.cli.main import main

    expected, _ = linnet_predict
    # part-2 as CSV, its columns in another order than the schema's and one column more (read by header name),
    # its image paths absolute inside --image-root (outside the root they are refused, as by linnet predict;
    # --image-root alone keeps the export's text columns)
    records = [json.loads(line) for line in (catalog_dir / "part-2.jsonl").read_text().splitlines() if line != "{not json"]
    catalog = tmp_path / "catalog" / "part-2.csv"
    catalog.parent.mkdir()
    with open(catalog, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["extra", "image", "brand", "title", "id"])
        writer.writeheader()
        writer.writerows({**record, "image": record["image"] and str(catalog_dir / record["image"]),
                          "extra": "x, \"quoted\""} for record in records)
    out = tmp_path / "out"
    assert main(["spark", "predict", "--model", str(exported), "--catalog", str(catalog), "--out", str(out),
                 "--master", "local[2]", "--batch-size", "3", "--image-root", str(catalog_dir)]) == 0
    assert "products predicted" in capsys.readouterr().out
    predictions = [row.asDict() for row in spark.read.parquet(str(out / "predictions")).collect()]
    assert len(predictions) == 13  # 9 good rows and 4 bad ones, each once
    assert_same_as_linnet_predict(predictions, expected)
    errors = [row.asDict() for row in spark.read.parquet(str(out / "errors")).collect()]
    assert {(row["field"], row["problem"]) for row in errors if row["id"] is None} == {(None, "the id is empty")}
    assert "missing-image-100" in {row["id"] for row in errors if row["field"] == "image_bytes"}


def test_streaming_job_classifies_only_new_files(spark, exported, catalog_dir, tmp_path):
    from linnet.engines.spark import classify_stream

    landing, out, checkpoint = tmp_path / "landing", tmp_path / "out", tmp_path / "checkpoint"
    landing.mkdir()
    shutil.copy(catalog_dir / "part-1.jsonl", landing / "part-1.jsonl")
    classify_stream(spark, exported, str(landing), str(out), str(checkpoint), batch_size=8)
    first = [row.id for row in spark.read.parquet(str(out)).select("id").collect()]
    assert len(first) == 19 and "p0" in first
    shutil.copy(catalog_dir / "part-2.jsonl", landing / "part-2.jsonl")
    classify_stream(spark, exported, str(landing), str(out), str(checkpoint), batch_size=8)
    second = [row.id for row in spark.read.parquet(str(out)).select("id").collect()]
    assert len(second) == 19 + 14  # part-1 was not classified again
    assert second.count("p0") == 2 and second.count("p100") == 2  # each file's own repeat of its first id


def test_spark_predict_counts_what_it_wrote_and_writes_empty_errors_for_a_clean_catalog(spark, exported,
                                                                                      export_schema, catalog_dir,
                                                                                      tmp_path):
    from linnet.engines.spark import predict_catalog_spark

    # the counts are observed while the predictions are written: they must be those of the written datasets
    summary = predict_catalog_spark(spark, exported, str(catalog_dir / "part-1.jsonl"), str(tmp_path / "bad"),
                                    export_schema, batch_size=5)
    assert summary["rows"] == spark.read.parquet(str(tmp_path / "bad" / "predictions")).count() == 19
    assert summary["errors"] == spark.read.parquet(str(tmp_path / "bad" / "errors")).count() > 0
    clean = tmp_path / "clean.jsonl"  # text only: no image that could fail to decode
    clean.write_text("".join(json.dumps({"id": f"c{number}", "title": "linen shirt", "brand": "acme", "image": ""})
                             + "\n" for number in range(7)), encoding="utf-8")
    summary = predict_catalog_spark(spark, exported, str(clean), str(tmp_path / "clean"), export_schema)
    assert (summary["rows"], summary["errors"]) == (7, 0)
    errors = spark.read.parquet(str(tmp_path / "clean" / "errors"))  # there, empty, with the errors' columns
    assert errors.columns == ["id", "field", "problem"] and errors.count() == 0
