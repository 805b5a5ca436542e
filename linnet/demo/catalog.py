"""The public Myntra "Fashion Product Images" catalogue, read the way `linnet demo` needs it.

Two layouts are in circulation and both are read:

- the shared copy: ``styles.csv`` with ``category_path`` and ``image_file`` columns (``images/<id>.jpg``,
  empty when the product has no image);
- the Kaggle "Fashion Product Images (Small)" download: ``styles.csv`` with the columns
  ``id, gender, masterCategory, subCategory, articleType, baseColour, season, year, usage,
  productDisplayName`` and ``images/<id>.jpg`` next to it. A few of its rows carry unquoted commas in the
  title (the last column), so they have more fields than the header; the extra fields are the rest of the
  title and are joined back, not dropped.

The result is one tidy CSV (``id, title, gender, colour, season, usage, level_1, level_2, level_3, image``)
that every other command reads with plain schema flags (:data:`DEMO_SCHEMA_FLAGS`).
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from linnet.atomic_files import atomic_path
from linnet.errors import CatalogError

LEVEL_COLUMNS = ("masterCategory", "subCategory", "articleType")
ATTRIBUTE_COLUMNS = {"gender": "gender", "baseColour": "colour", "season": "season", "usage": "usage"}
TITLE_COLUMN = "productDisplayName"
REQUIRED_COLUMNS = ("id", TITLE_COLUMN, *LEVEL_COLUMNS)
OUTPUT_COLUMNS = ("id", "title", *ATTRIBUTE_COLUMNS.values(), "level_1", "level_2", "level_3", "image")

#: Schema of the tidy catalog, as the flags every catalog-reading command takes.
DEMO_SCHEMA = {
    "id_column": "id",
    "text_columns": ["title"],
    "attribute_columns": list(ATTRIBUTE_COLUMNS.values()),
    "level_columns": ["level_1", "level_2", "level_3"],
    "image_column": "image",
    # the tidy catalog is the demo's own, with absolute paths into the catalogue's images/ folder
    # (docs/security.md: image paths outside the image root are refused unless allowed explicitly)
    "allow_images_outside_root": True,
}
DEMO_SCHEMA_FLAGS = [
    "--id-column", "id",
    "--text-columns", "title",
    "--attribute-columns", ",".join(ATTRIBUTE_COLUMNS.values()),
    "--level-columns", "level_1,level_2,level_3",
    "--image-column", "image",
    "--allow-images-outside-root",
]


@dataclass
class FashionCatalogReport:
    """What reading the catalogue found."""

    rows: int = 0
    with_image: int = 0
    rejoined_titles: list[str] = field(default_factory=list)  # ids whose title held unquoted commas
    layout: str = ""


def write_demo_catalog(data_dir: str | os.PathLike, out_path: str | os.PathLike,
                       limit: int | None = None) -> FashionCatalogReport:
    """Writes the tidy catalog to ``out_path`` (atomically) and returns what it found.

    Args:
        data_dir: the folder holding ``styles.csv`` and ``images/``.
        out_path: where the tidy CSV goes; image paths in it are absolute, so it can be read from anywhere.
        limit: keep only this many products, chosen by a hash of the id (the same ones every time).

    Raises:
        CatalogError: ``styles.csv`` is missing, empty, or lacks a required column (named), or a row is
            too short to hold every column (file and line named).

    Example:
        >>> report = write_demo_catalog("../shared/data/fashion_product_images", "/tmp/catalog.csv")  # doctest: +SKIP
    """
    data_dir = Path(data_dir)
    styles = data_dir / "styles.csv"
    if not styles.is_file():
        raise CatalogError(f"{styles}: not found; --data must point at the folder holding styles.csv and images/")
    image_dir = data_dir / "images"
    available_images = set(os.listdir(image_dir)) if image_dir.is_dir() else set()
    report = FashionCatalogReport()
    rows = []
    with styles.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header:
            raise CatalogError(f"{styles}: the file is empty")
        missing = [column for column in REQUIRED_COLUMNS if column not in header]
        if missing:
            raise CatalogError(f"{styles}, line 1: missing column(s) {missing}; found {header}")
        position = {name: index for index, name in enumerate(header)}
        title_is_last = position[TITLE_COLUMN] == len(header) - 1
        report.layout = "shared (category_path, image_file)" if "image_file" in position else "Kaggle (images/<id>.jpg)"
        for values in reader:
            line = reader.line_num
            if not values:
                continue
            if len(values) > len(header) and title_is_last:
                values = values[: len(header) - 1] + [",".join(values[len(header) - 1:])]
                report.rejoined_titles.append(values[position["id"]])
            if len(values) != len(header):
                raise CatalogError(
                    f"{styles}, line {line} (id {values[0]!r}): {len(values)} fields, the header has {len(header)}"
                )
            record = {name: values[index].strip() for name, index in position.items()}
            image_name = Path(record.get("image_file") or f"images/{record['id']}.jpg").name
            image = str((image_dir / image_name).resolve()) if image_name in available_images else ""
            report.with_image += bool(image)
            rows.append([
                record["id"], record[TITLE_COLUMN],
                *(record.get(column, "") for column in ATTRIBUTE_COLUMNS),
                *(record[column] for column in LEVEL_COLUMNS),
                image,
            ])
    if limit is not None and limit < len(rows):
        rows.sort(key=lambda row: hashlib.md5(row[0].encode()).hexdigest())
        rows = rows[:limit]
        report.with_image = sum(1 for row in rows if row[-1])
    report.rows = len(rows)
    with atomic_path(out_path) as temporary, temporary.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(OUTPUT_COLUMNS)
        writer.writerows(rows)
    return report
