"""``linnet train --catalog RECORDS``: the TFRecords `linnet beam build-tfrecords` writes train the same model as the
catalog file they were built from (same rows, labels and split), and their stored images reach the image pipeline."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from training.conftest import tiny_config, write_tiny_catalog

pytest.importorskip("apache_beam", reason="apache-beam is not installed (pip install -e '.[beam]')")

ROWS = 120


@pytest.fixture(scope="module")
def built(tiny_taxonomy, tmp_path_factory):
    """A tiny labelled CSV with a PNG per row, its taxonomy file, and the records build-tfrecords made of it."""
    from linnet.cli.main import main

    folder = tmp_path_factory.mktemp("records-train")
    (folder / "catalog").mkdir()
    catalog = write_tiny_catalog(folder / "catalog" / "catalog.csv", rows=ROWS, with_images=True)
    taxonomy = folder / "taxonomy.json"
    tiny_taxonomy.save(taxonomy)
    records = folder / "records"
    assert main(["beam", "build-tfrecords", "--catalog", str(catalog), "--taxonomy", str(taxonomy), "--out",
                 str(records), "--text-columns", "title", "--category-column", "category", "--image-column", "image",
                 "--shards", "3"]) == 0
    return catalog, taxonomy, records


def _train(catalog, out, config_path, *schema_flags):
    from linnet.cli.main import main

    assert main(["train", "--catalog", str(catalog), "--out", str(out), "--config", str(config_path), "--quiet",
                 *schema_flags]) == 0
    return json.loads((out / "metrics.json").read_text())


def test_training_from_the_records_matches_training_from_the_csv(built, tmp_path):
    from linnet.data import CatalogSchema, prepare_catalog
    from linnet.serving.predict import load_predictor
    from linnet.taxonomy import load_taxonomy

    catalog, taxonomy, records = built
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config(training={"epochs": 1})))
    text_only = ["--text-columns", "title", "--category-column", "category"]
    from_csv = _train(catalog, tmp_path / "csv", config, *text_only, "--taxonomy", str(taxonomy))
    # the records' images are left out by a schema without an image column (the config has no image encoder)
    from_records = _train(records, tmp_path / "records", config, *text_only)
    for key in ("catalog_examples", "train_examples", "validation_examples"):
        assert from_records[key] == from_csv[key], key
    assert from_records["catalog_examples"] == ROWS
    assert from_records["images"] == {}  # not read: the run trains on the text alone

    schema = CatalogSchema(text_columns=["title"], category_column="category")
    prepared = prepare_catalog(catalog, schema, taxonomy=load_taxonomy(taxonomy), split=(0.9, 0.1, 0.0))
    assert yaml.safe_load((tmp_path / "records" / "schema.yaml").read_text())["text_columns"] == ["title"]
    csv_nodes, records_nodes = [load_predictor(tmp_path / run).predict_prepared(prepared, progress=False)["node_ids"]
                                for run in ("csv", "records")]
    # the same rows, labels and split (only the shuffle order may differ): the two runs predict the same classes
    assert np.mean(np.all(csv_nodes == records_nodes, axis=-1)) >= 0.95


def test_the_records_images_reach_the_training_pipeline(built):
    """With the records' own schema (an image column) the stored image bytes are what make_dataset decodes: the same
    pixels as the image files of the CSV."""
    from linnet.data import make_dataset, prepare_catalog
    from linnet.data.tfrecord import read_tfrecord_catalog, tfrecord_catalog_schema
    from linnet.taxonomy import load_taxonomy

    catalog, taxonomy, records = built
    from_records = read_tfrecord_catalog(records, split=(0.9, 0.1, 0.0))
    assert from_records.schema.image_column == "image"
    assert from_records.report.images == {"bytes": ROWS, "none": 0}
    prepared = prepare_catalog(catalog, tfrecord_catalog_schema(records), taxonomy=load_taxonomy(taxonomy),
                               split=(0.9, 0.1, 0.0))
    assert sorted(from_records.ids) == sorted(prepared.ids)
    assert (from_records.split[np.argsort(from_records.ids)] == prepared.split[np.argsort(prepared.ids)]).all()

    def images(catalog):
        batches = list(make_dataset(catalog, batch_size=64, image_size=16, with_labels=False, deterministic=True))
        ids = catalog.ids  # unshuffled: in the catalog's order
        pixels = np.concatenate([batch["image"].numpy() for batch in batches])
        present = np.concatenate([batch["image_present"].numpy() for batch in batches])
        return dict(zip(ids, pixels)), present

    record_pixels, present = images(from_records)
    assert present.sum() == ROWS
    file_pixels, _ = images(prepared)
    for product_id in prepared.ids[:10]:
        np.testing.assert_array_equal(record_pixels[product_id], file_pixels[product_id])


def test_a_glob_of_shards_and_what_the_records_cannot_give(built, tiny_taxonomy):
    from linnet.data import CatalogSchema
    from linnet.data.tfrecord import read_metadata, read_tfrecord_catalog
    from linnet.errors import CatalogError, ConfigError
    from linnet.taxonomy import Taxonomy

    _, _, records = built
    train_only = read_tfrecord_catalog(records / "train-*.tfrecord")  # the stored split kept
    assert len(train_only) == read_metadata(records)["splits"]["train"]["examples"] > 0
    assert set(train_only.split) == {"train"}
    with pytest.raises(ConfigError, match=r"\['brand'\]"):
        read_tfrecord_catalog(records, CatalogSchema(text_columns=["title", "brand"], category_column="category"))
    with pytest.raises(ConfigError, match="--taxonomy"):
        read_tfrecord_catalog(records, taxonomy=Taxonomy.from_paths(["Lighting > Lamps"]))
    with pytest.raises(CatalogError, match="no TFRecord shard matches"):
        read_tfrecord_catalog(records / "nothing-*.tfrecord")


def test_bad_row_options_are_refused_for_records(built, tmp_path):
    from linnet.errors import ConfigError
    from linnet.training.trainer import train

    _, _, records = built
    with pytest.raises(ConfigError, match="failures-"):
        train(records, tmp_path / "never", config=tiny_config(), errors_path=tmp_path / "errors.jsonl", progress=False)
    assert not (tmp_path / "never").exists()


def test_records_on_another_filesystem(built, tiny_taxonomy, tmp_path, capsys):
    """Records at a URL (TensorFlow's in-memory ram://, standing in for gs://) read as the local ones; linnet train
    keeps the URL a URL (it gets as far as comparing the records' tree with --taxonomy)."""
    import uuid

    import tensorflow as tf

    from linnet.cli.main import main
    from linnet.data.tfrecord import read_tfrecord_catalog
    from linnet.taxonomy import Taxonomy

    _, _, records = built
    url = f"ram://linnet-{uuid.uuid4().hex}/records"
    tf.io.gfile.makedirs(url)
    for path in records.iterdir():
        if path.is_file():
            tf.io.gfile.copy(str(path), f"{url}/{path.name}")
    local, remote = read_tfrecord_catalog(records), read_tfrecord_catalog(url)
    assert remote.ids.tolist() == local.ids.tolist() and (remote.labels == local.labels).all()
    assert remote.image_sources.tolist() == local.image_sources.tolist()
    assert len(read_tfrecord_catalog(f"{url}/train-*.tfrecord")) == local.report.splits["train"]

    other = tmp_path / "other.json"
    Taxonomy.from_paths(["Lighting > Lamps"]).save(other)
    assert main(["train", "--catalog", url, "--out", str(tmp_path / "never"), "--taxonomy", str(other),
                 "--text-columns", "title", "--category-column", "category"]) == 2
    assert "the records' labels index the tree" in capsys.readouterr().err
