"""The tiny export of the serving tests (two text fields and an image, calibrated), reused by the engine tests, and
a small catalog with every kind of bad row next to good ones, predicted once by `linnet predict` to compare with."""

from __future__ import annotations

import csv
import json

import pytest

from serving import conftest as serving_fixtures

# The serving tests' export (and what it is built from), built once per session and shared here.
image_model = serving_fixtures.image_model
export_schema = serving_fixtures.export_schema
calibration_path = serving_fixtures.calibration_path
exported = serving_fixtures.exported
loaded = serving_fixtures.loaded
png_bytes = serving_fixtures.png_bytes

TITLES = ["red cotton shirt", "leather boots", "blue jeans", "canvas tote bag", "summer sandals", "linen shirt",
          "wool trousers", "hiking boots", "silk blouse", "denim jacket", "beach bag", "running shoes"]


def write_catalog(directory, name: str, start: int, count: int, bad: bool = True):
    """A JSONL catalog of ``count`` good products (ids from ``start``; images: a PNG, a corrupt file, none) and,
    with ``bad``, a row with a non-text title, an empty id, a repeated id, broken JSON and a missing image file."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "good.png").write_bytes(png_bytes(20, 90))
    (directory / "corrupt.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    lines = []
    for offset in range(count):
        number = start + offset
        image = ["good.png", "corrupt.jpg", ""][number % 3]
        lines.append(json.dumps({"id": f"p{number}", "title": TITLES[number % len(TITLES)],
                                 "brand": ["acme", "", "zeta"][number % 3], "image": image}))
    if bad:
        lines += [json.dumps({"id": f"bad-title-{start}", "title": 12.5, "brand": "acme", "image": ""}),
                  json.dumps({"id": "", "title": "no id here", "brand": "", "image": ""}),
                  json.dumps({"id": f"p{start}", "title": "the same id again", "brand": "", "image": ""}),
                  "{not json",
                  json.dumps({"id": f"missing-image-{start}", "title": "boots", "brand": "", "image": "gone.png"})]
    path = directory / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def catalog_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("engines") / "catalog"
    write_catalog(directory, "part-1.jsonl", 0, 14)
    write_catalog(directory, "part-2.jsonl", 100, 9)
    return directory


@pytest.fixture(scope="session")
def linnet_predict(exported, export_schema, catalog_dir, tmp_path_factory):
    """`linnet predict` on each catalog file: ``({id: row}, [error rows])``, its CSV cells as written."""
    from linnet.serving.predict import load_predictor, predict_catalog

    predictor = load_predictor(exported)
    out = tmp_path_factory.mktemp("linnet-predict")
    rows, errors = {}, []
    for path in sorted(catalog_dir.glob("*.jsonl")):
        predict_catalog(predictor, path, export_schema, out / f"{path.stem}.csv", out / f"{path.stem}.errors.csv",
                        progress=False)
        with open(out / f"{path.stem}.csv", newline="", encoding="utf-8") as handle:
            rows.update({row["id"]: row for row in csv.DictReader(handle)})
        with open(out / f"{path.stem}.errors.csv", newline="", encoding="utf-8") as handle:
            errors += list(csv.DictReader(handle))
    return rows, errors
