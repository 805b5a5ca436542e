"""TFRecordCatalogReader: tf.train.Example records read as catalog records; a damaged file gives bad rows, not errors."""

from __future__ import annotations

import pytest


def _write(path, titles):
    import tensorflow as tf

    with tf.io.TFRecordWriter(str(path)) as writer:
        for number, title in enumerate(titles):
            writer.write(tf.train.Example(features=tf.train.Features(feature={
                "id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[f"p{number}".encode()])),
                "title": tf.train.Feature(bytes_list=tf.train.BytesList(value=[title.encode()])),
                "price": tf.train.Feature(float_list=tf.train.FloatList(value=[1.5])),
                "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"\x89PNG\r\n\x1a\n\x00"])),
            })).SerializeToString())


def test_records_columns_and_a_file_cut_short(tmp_path):
    from linnet.data.tfrecord import TFRecordCatalogReader
    from linnet.errors import CatalogError

    path = tmp_path / "catalog.tfrecord"
    _write(path, ["red shirt", "boots", "tote bag"])
    reader = TFRecordCatalogReader(path, chunk_rows=2, image_column="image")
    assert sorted(reader.columns) == ["id", "image", "price", "title"]
    records = [record for chunk in reader for record in chunk.records]
    assert [record["title"] for record in records] == ["red shirt", "boots", "tote bag"]
    assert records[0]["price"] == 1.5 and records[0]["image"] == b"\x89PNG\r\n\x1a\n\x00"  # image bytes kept
    with pytest.raises(CatalogError, match=r"\['brand'\] not found"):
        reader.require(["id", "brand"])

    path.write_bytes(path.read_bytes()[:-7])  # the last record cut short
    chunks = list(TFRecordCatalogReader(path, chunk_rows=1, image_column="image"))
    assert [record["id"] for chunk in chunks for record in chunk.records] == ["p0", "p1"]
    bad = [row for chunk in chunks for row in chunk.bad_rows]
    assert len(bad) == 1 and bad[0].location == 3 and "after record 2: truncated record" in bad[0].message()

    (tmp_path / "empty.tfrecord").touch()
    with pytest.raises(CatalogError, match="empty"):
        TFRecordCatalogReader(tmp_path / "empty.tfrecord")
