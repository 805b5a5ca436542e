"""The quality benchmark's catalogs: the photo catalog holds only products with a photo, reads them through the image
column, and LinNét gets the one config key an image column asks for (no training here: the benchmark trains)."""

from __future__ import annotations

import pandas as pd
import pytest


@pytest.fixture
def shared(tmp_path, monkeypatch):
    from benchmarks import bench_quality

    fashion = tmp_path / "fashion_product_images"
    fashion.mkdir()
    rows = [{"id": str(index), "gender": "Men", "baseColour": "Blue", "season": "Fall", "year": "2012",
             "usage": "Casual", "productDisplayName": f"Product {index}",
             "category_path": "Apparel > Topwear > Shirts" if index % 2 else "Footwear > Shoes > Flats",
             "image_file": f"images/{index}.jpg" if index % 3 else ""} for index in range(30)]
    rows[4]["category_path"] = ""  # unlabelled: no catalog keeps it
    pd.DataFrame(rows).to_csv(fashion / "styles.csv", index=False)
    monkeypatch.setattr(bench_quality, "FASHION", fashion)
    monkeypatch.setattr(bench_quality, "SHOPIFY", tmp_path / "absent")
    return fashion


def test_photo_catalog_keeps_labelled_products_with_a_photo_and_reads_the_image_column(shared, tmp_path):
    from benchmarks import bench_quality

    catalogs = {name: (path, schema, by) for name, path, schema, by in bench_quality._catalogs(tmp_path, 100, 10)}
    assert list(catalogs) == ["fashion", "fashion ragged", "fashion photos"]
    path, schema, by = catalogs["fashion photos"]
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    expected = {str(index) for index in range(30) if index % 3 and index != 4}
    assert set(frame["id"]) == expected
    assert (schema.image_column, schema.image_root, by) == ("image_file", str(shared), None)
    assert not catalogs["fashion"][1].has_image
    assert len(pd.read_csv(catalogs["fashion"][0])) == 29


def test_photo_catalog_is_left_out_on_request_and_capped_by_rows(shared, tmp_path):
    from benchmarks import bench_quality

    assert [entry[0] for entry in bench_quality._catalogs(tmp_path, 100, 10, photos=False)] == ["fashion",
                                                                                              "fashion ragged"]
    photos = next(entry for entry in bench_quality._catalogs(tmp_path, 5, 10) if entry[0] == "fashion photos")
    assert len(pd.read_csv(photos[1])) == 5


def test_linnet_gets_an_image_encoder_only_where_the_catalog_has_photos(shared, tmp_path):
    from benchmarks import bench_quality
    from linnet.training.config import TrainingConfig

    schemas = {name: schema for name, _, schema, _ in bench_quality._catalogs(tmp_path, 100, 10)}
    text = TrainingConfig.from_dict(bench_quality.linnet_config(schemas["fashion"], seed=3))
    photo = TrainingConfig.from_dict(bench_quality.linnet_config(schemas["fashion photos"], seed=3, image_size=96))
    assert text.model.image_encoder is None and text.training.seed == 3
    assert photo.model.image_encoder["name"] == "efficientnet_lite0" and photo.data.image_size == 96
    assert photo.training.seed == 3
    assert bench_quality.linnet_label(schemas["fashion photos"]) != bench_quality.linnet_label(schemas["fashion"])
