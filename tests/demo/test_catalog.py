"""Reading both layouts of the fashion catalogue for `linnet demo`."""

from __future__ import annotations

import csv

import pytest

from linnet.demo.catalog import OUTPUT_COLUMNS, write_demo_catalog
from linnet.errors import CatalogError

KAGGLE_HEADER = "id,gender,masterCategory,subCategory,articleType,baseColour,season,year,usage,productDisplayName"


def read(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_kaggle_layout_rejoins_titles_with_commas_and_finds_images(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "7.jpg").write_bytes(b"not checked here")
    (tmp_path / "styles.csv").write_text(
        KAGGLE_HEADER + "\n"
        "7,Men,Apparel,Topwear,Shirts,Navy Blue,Fall,2011,Casual,Turtle Check Men Navy Blue Shirt\n"
        "8,Women,Footwear,Shoes,Heels,Black,Winter,2012,Party,Catwalk Women, Black Heels, Size 5\n",
        encoding="utf-8",
    )
    report = write_demo_catalog(tmp_path, tmp_path / "out" / "catalog.csv")
    rows = read(tmp_path / "out" / "catalog.csv")
    assert list(rows[0]) == list(OUTPUT_COLUMNS)
    assert report.rows == 2 and report.with_image == 1 and report.rejoined_titles == ["8"]
    assert rows[1]["title"] == "Catwalk Women, Black Heels, Size 5"
    assert [rows[1][f"level_{k}"] for k in (1, 2, 3)] == ["Footwear", "Shoes", "Heels"]
    assert rows[0]["image"].endswith("images/7.jpg") and rows[1]["image"] == ""
    assert rows[0]["colour"] == "Navy Blue"


def test_missing_column_and_short_row_are_named(tmp_path):
    (tmp_path / "styles.csv").write_text("id,gender,productDisplayName\n1,Men,Shirt\n", encoding="utf-8")
    with pytest.raises(CatalogError, match=r"line 1: missing column\(s\) \['masterCategory'"):
        write_demo_catalog(tmp_path, tmp_path / "catalog.csv")
    (tmp_path / "styles.csv").write_text(KAGGLE_HEADER + "\n9,Men,Apparel,Topwear\n", encoding="utf-8")
    with pytest.raises(CatalogError, match=r"line 2 \(id '9'\): 4 fields, the header has 10"):
        write_demo_catalog(tmp_path, tmp_path / "catalog.csv")
    with pytest.raises(CatalogError, match="not found"):
        write_demo_catalog(tmp_path / "nowhere", tmp_path / "catalog.csv")


def test_limit_keeps_the_same_products_every_time(tmp_path):
    lines = [KAGGLE_HEADER] + [f"{i},Men,Apparel,Topwear,Shirts,Blue,Fall,2011,Casual,Shirt {i}" for i in range(50)]
    (tmp_path / "styles.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    first = write_demo_catalog(tmp_path, tmp_path / "a.csv", limit=10)
    write_demo_catalog(tmp_path, tmp_path / "b.csv", limit=10)
    assert first.rows == 10
    assert [r["id"] for r in read(tmp_path / "a.csv")] == [r["id"] for r in read(tmp_path / "b.csv")]


def test_shared_copy_reads_whole(fashion_dir, tmp_path):
    report = write_demo_catalog(fashion_dir, tmp_path / "catalog.csv")
    assert report.rows == 44_446 and report.with_image == 9_583
