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
    """`linnet beam predict` with small batches and a Beam pipeline option passed through to the runner."""
    from linnet.cli.main import main

    out = tmp_path_factory.mktemp("beam-predict")
    code = main(["beam", "predict", "--model", str(exported), "--catalog", str(catalog_dir / "*.jsonl"),
                 "--out", str(out), "--batch-size", "4", "--direct_num_workers=1"])
    return code, read_shards(out, "predictions"), read_shards(out, "errors")


def test_beam_predict_matches_linnet_predict(beam_predictions, linnet_predict):
    code, predictions, _ = beam_predictions
    expected, _ = linnet_predict
    assert code == 0
    assert_same_predictions(predictions, expected)


def assert_same_predictions(predictions: pd.DataFrame, expected: dict) -> None:
    """Beam's predictions hold every id of `linnet predict`'s once, with its paths and confidences."""
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


def test_beam_embed_writes_the_embed_signature_per_id(exported, catalog_dir, loaded, tmp_path, capsys):
    import tensorflow as tf

    from linnet.cli.main import main

    assert main(["beam", "embed", "--model", str(exported), "--catalog", str(catalog_dir / "part-2.jsonl"),
                 "--out", str(tmp_path), "--format", "jsonl", "--batch-size", "3"]) == 0
    assert "DONE" in capsys.readouterr().out
    vectors = read_shards(tmp_path, "embeddings").set_index("id")["embedding"]
    errors = read_shards(tmp_path, "errors")
    records = [json.loads(line) for line in (catalog_dir / "part-2.jsonl").read_text().splitlines()[:9]]
    assert sorted(vectors.index) == sorted([record["id"] for record in records] + ["missing-image-100"])
    assert {"bad-title-100"} <= set(errors["id"]) and "id 'p100' repeated" in set(errors["problem"])
    images = [(catalog_dir / record["image"]).read_bytes() if record["image"] else b"" for record in records]
    expected = loaded.signatures["embed"](title=tf.constant([record["title"] for record in records]),
                                          brand=tf.constant([record["brand"] for record in records]),
                                          image_bytes=tf.constant(images))["embedding"].numpy()
    got = np.stack([np.asarray(vectors[record["id"]], np.float32) for record in records])
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_beam_build_tfrecords_writes_what_read_tfrecords_reads(catalog_dir, tiny_taxonomy, tmp_path, capsys):
    import csv

    from linnet.cli.main import main
    from linnet.data.tfrecord import read_metadata, read_tfrecords

    taxonomy = tiny_taxonomy.save(tmp_path / "taxonomy.json") or tmp_path / "taxonomy.json"
    catalog = tmp_path / "labelled" / "catalog.csv"
    catalog.parent.mkdir()
    (catalog.parent / "good.png").write_bytes((catalog_dir / "good.png").read_bytes())
    paths = ["Clothing > Tops > Shirts", "Shoes > Boots", "Bags", "Clothing > Trousers > Jeans"]
    rows = [{"id": f"r{number}", "title": f"product {number}", "brand": "acme", "path": paths[number % 4],
             "image": [str(catalog.parent / "good.png"), "", "http://127.0.0.1:9/unreachable.jpg"][number % 3]}
            for number in range(30)]  # (a file with URLs finds its images in the fetched folder: local ones absolute, outside it, so allowed)
    rows.append({"id": "unknown-label", "title": "a lamp", "brand": "", "path": "Lighting > Lamps", "image": ""})
    with open(catalog, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    out = tmp_path / "records"
    assert main(["beam", "build-tfrecords", "--catalog", str(catalog), "--taxonomy", str(taxonomy), "--out", str(out),
                 "--text-columns", "title,brand", "--category-column", "path", "--image-column", "image",
                 "--timeout", "1", "--retries", "0", "--allow-images-outside-root"]) == 0
    assert "DONE" in capsys.readouterr().out
    metadata = read_metadata(out)
    assert sum(split["examples"] for split in metadata["splits"].values()) == 30
    ids, present = [], []
    for split in ("train", "validation", "test"):
        for features, labels, _ in read_tfrecords(out, split, batch_size=8, image_size=16, with_ids=True):
            ids += [value.decode() for value in features["id"].numpy()]
            present += features["image_present"].numpy().tolist()
            assert labels["level_1"].shape[0] == features["id"].shape[0]
    assert sorted(ids) == sorted(f"r{number}" for number in range(30))
    assert sum(present) == 10  # the local images; the URLs could not be fetched
    failures = [json.loads(line) for path in out.glob("failures-*.jsonl") for line in path.read_text().splitlines()]
    assert {failure.get("url") for failure in failures if failure.get("status")} == {"http://127.0.0.1:9/unreachable.jpg"}
    assert any(failure.get("id") == "unknown-label" for failure in failures)


def _example(features: dict) -> bytes:
    import tensorflow as tf

    return tf.train.Example(features=tf.train.Features(feature={
        name: tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
        for name, value in features.items()})).SerializeToString()


@pytest.fixture(scope="module")
def tfrecord_catalog(catalog_dir, tmp_path_factory):
    """part-1.jsonl's good rows as tf.train.Example records in build-tfrecords' layout (the image as ``image_bytes``),
    plus a record with a title that is not UTF-8 and a record that is not an Example."""
    import tensorflow as tf

    rows = [json.loads(line) for line in (catalog_dir / "part-1.jsonl").read_text().splitlines()[:14]]
    path = tmp_path_factory.mktemp("tfrecord-catalog") / "part-1.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        for row in rows:
            image = (catalog_dir / row["image"]).read_bytes() if row["image"] else b""
            writer.write(_example({"id": row["id"].encode(), "title": row["title"].encode(),
                                   "brand": row["brand"].encode(), "split": b"test", "image_bytes": image}))
        writer.write(_example({"id": b"latin-1", "title": "caf\xe9".encode("latin-1"), "brand": b"", "image_bytes": b""}))
        writer.write(b"not an example at all")
    return path, [row["id"] for row in rows]


def test_beam_predict_reads_tfrecord_catalogs(exported, tfrecord_catalog, linnet_predict, tmp_path):
    from linnet.cli.main import main

    path, ids = tfrecord_catalog
    expected, _ = linnet_predict
    assert main(["beam", "predict", "--model", str(exported), "--catalog", str(path.parent / "*.tfrecord"),
                 "--out", str(tmp_path), "--batch-size", "5", "--format", "jsonl"]) == 0
    predictions, errors = read_shards(tmp_path, "predictions"), read_shards(tmp_path, "errors")
    assert sorted(predictions["id"]) == sorted(ids)  # every id of a readable record once
    for record in predictions.to_dict("records"):  # the same paths and confidences as linnet predict on the JSONL
        row = expected[record["id"]]
        assert (record["path"] or "") == row["path"]
        confidence = float(row["confidence"]) if row["confidence"] else np.nan  # nothing exposed: no confidence
        np.testing.assert_allclose(record["confidence"], confidence, atol=1e-6)
    problems = dict(zip(errors["location"], errors["problem"]))
    assert "not valid UTF-8" in problems["record 15"] and "not a tf.train.Example" in problems["record 16"]
    corrupt = {f"p{number}" for number in range(1, 14, 3)}  # image bytes that do not decode: reported, predicted
    assert corrupt <= set(errors[errors["field"] == "image_bytes"]["id"])


def test_beam_embed_reads_tfrecord_catalogs(exported, loaded, catalog_dir, tfrecord_catalog, tmp_path):
    import tensorflow as tf

    from linnet.cli.main import main

    path, ids = tfrecord_catalog
    assert main(["beam", "embed", "--model", str(exported), "--catalog", str(path), "--out", str(tmp_path),
                 "--format", "jsonl", "--batch-size", "8"]) == 0
    vectors = read_shards(tmp_path, "embeddings").set_index("id")["embedding"]
    assert sorted(vectors.index) == sorted(ids)
    rows = [json.loads(line) for line in (catalog_dir / "part-1.jsonl").read_text().splitlines()[:14]]
    images = [(catalog_dir / row["image"]).read_bytes() if row["image"] else b"" for row in rows]
    expected = loaded.signatures["embed"](title=tf.constant([row["title"] for row in rows]),
                                          brand=tf.constant([row["brand"] for row in rows]),
                                          image_bytes=tf.constant(images))["embedding"].numpy()
    np.testing.assert_allclose(np.stack([np.asarray(vectors[row["id"]], np.float32) for row in rows]), expected,
                               atol=1e-5)


def test_beam_predict_runs_an_export_from_another_filesystem(exported, catalog_dir, linnet_predict, tmp_path,
                                                            monkeypatch, capsys):
    """--model as a URL (here TensorFlow's in-memory ram://, standing in for gs://): the launcher copies the export's
    assets, the worker the whole export, each once, into the machine's cache; the predictions are the local export's."""
    import tempfile
    import uuid

    import tensorflow as tf

    from linnet.cli.main import main
    from linnet.engines.signature_batches import EXPORT_CACHE

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the cache of copies under this test's folder
    url = f"ram://linnet-{uuid.uuid4().hex}/exports/1"
    for directory, _, files in tf.io.gfile.walk(str(exported)):
        folder = url + directory[len(str(exported)):]  # "" or "/variables", ...
        tf.io.gfile.makedirs(folder)
        for name in files:
            tf.io.gfile.copy(f"{directory}/{name}", f"{folder}/{name}")
    expected, _ = linnet_predict
    assert main(["beam", "predict", "--model", url, "--catalog", str(catalog_dir / "part-2.jsonl"),
                 "--out", str(tmp_path / "out"), "--format", "jsonl"]) == 0
    predictions = read_shards(tmp_path / "out", "predictions")
    assert len(predictions) == 11  # part-2's 9 good rows, bad-title-100 and missing-image-100, once each
    for record in predictions.to_dict("records"):
        assert (record["path"] or "") == expected[record["id"]]["path"]
    copies = sorted(path.name for path in (tmp_path / EXPORT_CACHE).iterdir())
    assert len(copies) == 2 and copies[1].endswith("-assets")  # the worker's whole copy and the launcher's assets
    assert (tmp_path / EXPORT_CACHE / copies[0] / "saved_model.pb").is_file()
    assert not (tmp_path / EXPORT_CACHE / copies[1] / "saved_model.pb").exists()
    capsys.readouterr()
    assert main(["beam", "predict", "--model", f"{url}/missing", "--catalog", str(catalog_dir / "part-2.jsonl"),
                 "--out", str(tmp_path / "never")]) == 2
    assert "missing: no saved_model.pb there" in capsys.readouterr().err
def test_in_process_runner_uses_a_worker_thread_per_core_unless_told():
    import os

    from apache_beam.options.pipeline_options import DirectOptions, StandardOptions

    from linnet.engines.beam import IN_PROCESS_RUNNER, pipeline_options

    default = pipeline_options([])
    assert default.view_as(StandardOptions).runner == IN_PROCESS_RUNNER
    assert default.view_as(DirectOptions).direct_num_workers == (os.cpu_count() or 1)
    assert default.view_as(DirectOptions).direct_running_mode == "multi_threading"
    told = pipeline_options(["--direct_num_workers=1", "--direct_running_mode", "in_memory"]).view_as(DirectOptions)
    assert (told.direct_num_workers, told.direct_running_mode) == (1, "in_memory")
    elsewhere = pipeline_options(["--runner", "DataflowRunner"]).get_all_options(drop_default=True)
    assert "direct_num_workers" not in elsewhere and "direct_running_mode" not in elsewhere  # only in process


def test_id_census_keeps_the_first_row_of_each_id_by_file_and_line():
    from linnet.engines.beam import id_census, id_fingerprint, id_hashes

    def listed(path, located_ids):
        return (path, np.array([line for line, _ in located_ids], np.int64).tobytes(),
                id_hashes([i for _, i in located_ids]).tobytes())

    census = id_census([listed("b.jsonl", [(1, "x"), (2, "y"), (7, "x")]),
                        listed("a.jsonl", [(9, "y"), (3, "z")]),
                        listed("c.jsonl", [])])
    # y's first row is a.jsonl line 9 (files before lines); x's is b.jsonl line 1
    assert census.repeats == {("b.jsonl", 2), ("b.jsonl", 7)}
    assert census.fingerprint == id_fingerprint(["x", "y", "z"]) == id_fingerprint(["z", "x", "y"])
    assert census.fingerprint != id_fingerprint(["x", "y"]) and census.fingerprint != id_fingerprint(["x", "y", "z", "z"])
    assert id_census([]).fingerprint == id_fingerprint([]) == (0, 0)


def test_beam_rows_go_from_reading_to_the_parquet_writer_in_one_fused_stage(exported, tmp_path):
    """Nothing between the row reader, RunInference and the predictions writer makes the in-process runner keep
    rows in a buffer (a GroupByKey/Reshuffle, a side input read by the rows' consumer, a Flatten of several inputs):
    the three run in one stage, so the job's memory does not grow with the rows."""
    import apache_beam as beam
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    from linnet.engines.beam import pipeline_options, predict_pipeline

    pipeline = beam.Pipeline(options=pipeline_options([]))
    predict_pipeline(pipeline, exported, str(tmp_path / "*.jsonl"), str(tmp_path / "out"))
    _, stages = FnApiRunner().create_stages(pipeline.to_runner_api())
    names = [{transform.unique_name for transform in stage.transforms} for stage in stages]
    reading = [stage for stage in names if "ReadCatalog/Read/ParDo(ReadCatalogFile)" in stage]
    assert len(reading) == 1
    assert {"RunInference/BeamML_RunInference", "Writepredictions/Write/WriteImpl/WriteBundles"} <= reading[0]


@pytest.mark.parametrize("fault", ["lost", "repeated"])
def test_beam_predict_fails_when_an_id_is_lost_or_repeated(exported, catalog_dir, tmp_path, monkeypatch, fault):
    import pyarrow as pa

    from linnet.engines.beam import ExportModelHandler, predict_pipeline, run_job

    run_inference = ExportModelHandler.run_inference

    def faulty(self, batch, model, inference_args=None):  # a bug that loses or repeats one row of every call
        results = run_inference(self, batch, model, inference_args)
        table, errors = results[0].inference
        table = table.slice(1) if fault == "lost" else pa.concat_tables([table, table.slice(0, 1)])
        return [results[0]._replace(inference=(table, errors)), *results[1:]]

    monkeypatch.setattr(ExportModelHandler, "run_inference", faulty)
    with pytest.raises(Exception, match="a lost or a repeated id"):
        run_job(predict_pipeline, exported, str(catalog_dir / "part-2.jsonl"), str(tmp_path), ["--direct_num_workers=1"],
                batch_size=4)
    assert not list(tmp_path.glob("_linnet-ids-*"))  # the id lists are deleted, the check failing or not


def test_file_parts_cover_every_line_once():
    import numpy as np

    from linnet.engines.beam import file_parts

    lines = np.array([9, 1, 2, 5, 3, 7, 8, 4], np.int64)  # a file's id rows (bad rows first, as ListIds lists them)
    parts = file_parts("a.jsonl", lines, 2, 3)
    assert parts == [("a.jsonl", 0, 5), ("a.jsonl", 5, None)]
    assert file_parts("a.jsonl", lines, 2, 5) == [("a.jsonl", 0, None)]  # fewer rows than two parts' worth
    assert file_parts("a.jsonl", None, 4, 1) == [("a.jsonl", 0, None)]  # an unreadable file: read whole
    assert len(file_parts("a.jsonl", lines, 8, 1)) == 8


def test_beam_predict_splits_one_file_between_worker_threads(exported, catalog_dir, linnet_predict, tmp_path,
                                                              monkeypatch):
    """One catalog file and two worker threads: the file is read in two parts; every id still comes out once, bad
    rows and repeats included."""
    from linnet.engines import beam
    from linnet.engines.beam import predict_pipeline, run_job

    parts, split = [], beam.file_parts

    def spy(*args):
        parts.extend(split(*args))
        return split(*args)

    monkeypatch.setattr(beam, "file_parts", spy)
    expected, _ = linnet_predict
    assert run_job(predict_pipeline, exported, str(catalog_dir / "part-1.jsonl"), str(tmp_path),
                   ["--direct_num_workers=2"], batch_size=2) == "DONE"
    assert len(parts) == 2  # the in-process runner ran the census here: the file went out in two parts
    predictions, errors = read_shards(tmp_path, "predictions"), read_shards(tmp_path, "errors")
    part_1 = {f"p{number}" for number in range(14)} | {"bad-title-0", "missing-image-0"}  # conftest's write_catalog
    assert sorted(predictions["id"]) == sorted(part_1)
    for record in predictions.to_dict("records"):
        assert (record["path"] or "") == expected[record["id"]]["path"]
    assert "id 'p0' repeated" in set(errors["problem"]) and "bad-title-0" in set(predictions["id"])


def test_pipeline_type_check_is_off_unless_asked_for():
    from apache_beam.options.pipeline_options import TypeOptions

    from linnet.engines.beam import pipeline_options

    assert pipeline_options([]).view_as(TypeOptions).pipeline_type_check is False
    assert pipeline_options(["--runner", "DataflowRunner"]).view_as(TypeOptions).pipeline_type_check is False
    assert pipeline_options([], pipeline_type_check=True).view_as(TypeOptions).pipeline_type_check is True


def test_a_clean_json_lines_catalog_lists_its_ids_through_arrow(exported, tmp_path):
    """A catalog of well-formed JSON lines (bad rows that parse included: a non-text title, an empty id, a repeated
    id) takes the id pass's Arrow path, and the job still gives every id once, the repeat as an error."""
    from linnet.data.readers import CatalogReader
    from linnet.engines.beam import (
        _arrow_listed_ids,
        _record_listed_ids,
        predict_pipeline,
        run_job,
    )

    from .conftest import write_catalog

    path = write_catalog(tmp_path / "in", "clean.jsonl", 0, 7, bad=False)
    path.write_text(path.read_text() + "\n".join(json.dumps(record) for record in [
        {"id": "odd", "title": 12.5}, {"id": " ", "title": "no id"}, {"id": " p1 ", "title": "the same id again"}]) + "\n")
    arrow, records = _arrow_listed_ids(str(path), "id"), _record_listed_ids(CatalogReader(path), "id")
    assert arrow is not None
    assert all(np.array_equal(mine, theirs) for mine, theirs in zip(arrow, records))
    run_job(predict_pipeline, exported, str(path), str(tmp_path / "out"), ["--direct_num_workers=1"], batch_size=4)
    predictions, errors = read_shards(tmp_path / "out", "predictions"), read_shards(tmp_path / "out", "errors")
    assert sorted(predictions["id"]) == sorted([f"p{number}" for number in range(7)] + ["odd"])
    assert "id 'p1' repeated" in set(errors["problem"])


def test_a_json_lines_catalog_arrow_reads_is_predicted_as_linnet_predict_does(exported, export_schema, tmp_path):
    """The second pass reads a JSON Lines file Arrow reads alike column by column (`table_batch`): bad rows that
    parse (an empty id, a repeated id, a missing image) and images (good, undecodable, none) come out as `linnet
    predict` writes them."""
    import csv

    from linnet.data.readers import CatalogReader
    from linnet.engines.beam import predict_pipeline, run_job
    from linnet.serving.predict import load_predictor, predict_catalog

    from .conftest import write_catalog

    path = write_catalog(tmp_path / "in", "clean.jsonl", 0, 10, bad=False)
    path.write_text(path.read_text() + "\n".join(json.dumps(record) for record in [
        {"id": " ", "title": "no id", "image": ""}, {"id": " p1 ", "title": "the same id again", "image": ""},
        {"id": "missing-image", "title": "boots", "image": "gone.png"}]) + "\n")
    (chunk,) = CatalogReader(path, table_columns=["id", "title", "brand", "image"])
    assert chunk.table is not None  # the Arrow path
    run_job(predict_pipeline, exported, str(path), str(tmp_path / "out"), ["--direct_num_workers=1"], batch_size=4)
    predictions, errors = read_shards(tmp_path / "out", "predictions"), read_shards(tmp_path / "out", "errors")
    predict_catalog(load_predictor(exported), path, export_schema, tmp_path / "p.csv", tmp_path / "e.csv",
                    progress=False)
    with open(tmp_path / "p.csv", newline="", encoding="utf-8") as handle:
        expected = {row["id"]: row for row in csv.DictReader(handle)}
    with open(tmp_path / "e.csv", newline="", encoding="utf-8") as handle:
        expected_errors = {(row["location"], row["id"]) for row in csv.DictReader(handle)}
    assert_same_predictions(predictions, expected)
    assert expected_errors <= {(row["location"], row["id"]) for row in errors.to_dict("records")}
    assert "id 'p1' repeated" in set(errors["problem"])
    image_errors = errors[errors["field"] == "image_bytes"]
    assert {"missing-image", "p1", "p4", "p7"} <= set(image_errors["id"])  # a missing file; undecodable bytes


def test_tfrecord_outputs_are_written_by_the_bundles_that_make_them(exported, tmp_path):
    """`beam embed --format tfrecord` (and build-tfrecords, the same writer) writes each record in the stage that makes
    it (flat memory: no GroupByKey holds the records), and the shards hold every record once: a shard made of two
    bundles' files is their records one after the other, the scratch folder is gone."""
    import apache_beam as beam
    import tensorflow as tf
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    from linnet.engines.beam import (
        TFRECORD_SCRATCH_PREFIX,
        WriteTFRecordShards,
        _join_shards,
        embed_pipeline,
        pipeline_options,
    )

    pipeline = beam.Pipeline(options=pipeline_options([]))
    embed_pipeline(pipeline, exported, str(tmp_path / "*.jsonl"), str(tmp_path / "out"), output_format="tfrecord")
    _, stages = FnApiRunner().create_stages(pipeline.to_runner_api())
    names = [{transform.unique_name for transform in stage.transforms} for stage in stages]
    reading = [stage for stage in names if "ReadCatalog/Read/ParDo(ReadCatalogFile)" in stage]
    assert len(reading) == 1
    assert {"RunInference/BeamML_RunInference", "Writeembeddings/WriteBundles"} <= reading[0]

    records = [f"record {number}".encode() for number in range(40)]
    out = tmp_path / "shards"
    with beam.Pipeline(options=pipeline_options(["--direct_num_workers=1"])) as pipeline:
        _ = pipeline | beam.Create(records) | WriteTFRecordShards(str(out), "part", 4)
    shards = sorted(out.glob("part-*-of-00004.tfrecord"))
    assert 1 < len(shards) <= 4 and not list(out.glob(f"{TFRECORD_SCRATCH_PREFIX}*"))
    read = [record.numpy() for record in tf.data.TFRecordDataset([str(path) for path in shards])]
    assert sorted(read) == sorted(records)

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    for bundle, part in enumerate((records[:3], records[3:5])):
        with tf.io.TFRecordWriter(str(scratch / f"00001-{bundle}.tfrecord")) as writer:
            for record in part:
                writer.write(record)
    written = list(_join_shards([(1, str(scratch / "00001-0.tfrecord")), (1, str(scratch / "00001-1.tfrecord"))],
                                str(tmp_path / "joined"), "train", 2, str(scratch)))
    assert written == [str(tmp_path / "joined" / "train-00001-of-00002.tfrecord")] and not scratch.exists()
    assert [record.numpy() for record in tf.data.TFRecordDataset(written)] == records[:5]
