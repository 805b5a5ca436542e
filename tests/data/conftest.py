"""Fixtures of the data room: tiny handwritten catalogs and images built in temporary directories."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest

CATALOG_ROWS = [
    # id, title, colour, category, image
    ("1", "Red leather boots", "red", "Shoes > Boots", "img/1.jpg"),
    ("2", "Blue canvas sneakers", "blue", "Shoes > Sneakers", "img/2.png"),
    ("3", "Black ankle boots", "black", "Shoes > Boots", "img/3.gif"),
    ("4", "Leather tote bag", "brown", "Bags > Totes", "img/missing.jpg"),
    ("5", "Canvas backpack", "green", "Bags > Backpacks", ""),
    ("6", "Silk scarf", "red", "Accessories", "img/6.webp"),
]


def encode_image(fmt: str, size: int = 24, seed: int = 0) -> bytes:
    from PIL import Image

    pixels = (np.random.default_rng(seed).random((size, size + 4, 3)) * 255).astype("uint8")
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt)
    return buffer.getvalue()


def write_csv(path: Path, header, rows, delimiter: str = ",") -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def small_catalog(tmp_path: Path) -> Path:
    """A six-product CSV with a path column, an attribute column and images in four formats (one missing)."""
    images = tmp_path / "img"
    images.mkdir()
    for name, fmt in (("1.jpg", "JPEG"), ("2.png", "PNG"), ("3.gif", "GIF"), ("6.webp", "WEBP")):
        (images / name).write_bytes(encode_image(fmt, seed=len(name)))
    return write_csv(tmp_path / "catalog.csv", ["id", "title", "colour", "category", "image"], CATALOG_ROWS)


@pytest.fixture
def small_schema():
    from linnet.data import CatalogSchema

    return CatalogSchema(id_column="id", text_columns=["title"], attribute_columns=["colour"],
                         category_column="category", image_column="image")
