"""`linnet.data.rows`: the one set of rules that turns a catalog row into a product id and raw model inputs
(training's prepare_catalog and batch prediction both use it)."""

from __future__ import annotations

import base64
import math

import numpy as np
import pytest

from linnet.data import CatalogSchema
from linnet.data.rows import (
    RowProblem,
    is_empty,
    read_image,
    row_id,
    row_inputs,
    row_text,
)


@pytest.mark.parametrize("value", [None, math.nan, np.float64("nan"), "", "   ", "\t\n"])
def test_empty_cells(value):
    assert is_empty(value)


@pytest.mark.parametrize("value", [0, 0.0, "x", " x ", b"", [], False])
def test_cells_that_are_not_empty(value):
    assert not is_empty(value)


@pytest.mark.parametrize(("value", "expected"), [
    ("p1", "p1"), ("  p1 ", "p1"), (12, "12"), (np.int64(7), "7"), (12.0, "12"), (np.float64(3.0), "3"),
])
def test_row_id_as_text(value, expected):
    assert row_id({"sku": value}, "sku") == expected


@pytest.mark.parametrize(("value", "problem"), [
    (None, "the id is empty"),
    (math.nan, "the id is empty"),
    ("  ", "the id is empty"),
    (True, "an id must be a string or an integer, got bool True"),
    (1.5, "an id must be a string or an integer, got float 1.5"),
    ([1], "an id must be a string or an integer, got list [1]"),
])
def test_row_id_problems_name_the_id_column(value, problem):
    with pytest.raises(RowProblem) as caught:
        row_id({"sku": value}, "sku")
    assert caught.value.field == "sku" and caught.value.problem == problem and str(caught.value) == problem


def test_a_missing_id_column_is_an_empty_id():
    with pytest.raises(RowProblem, match="the id is empty"):
        row_id({"title": "x"}, "id")


def test_row_text():
    assert row_text("  Red boots ", "title") == "  Red boots "  # text is passed on as it is
    assert row_text(None, "title") == row_text(math.nan, "title") == row_text("  ", "title") == ""
    with pytest.raises(RowProblem) as caught:
        row_text(42, "title")
    assert caught.value.field == "title" and caught.value.problem == "must be text, got int 42"


def test_row_inputs_text_fields_and_attributes():
    schema = CatalogSchema(text_columns=["title", "brand"], attribute_columns=["colour", "size"])
    record = {"id": "1", "title": "Boots", "brand": None, "colour": "red", "size": "42"}
    inputs = row_inputs(record, schema, schema.feature_text_fields, with_image=False, image_root=None)
    assert inputs == {"title": "Boots", "brand": "", "attributes": "colour: red; size: 42"}
    with pytest.raises(RowProblem) as caught:
        row_inputs({**record, "brand": 3.5}, schema, ["title", "brand"], with_image=False, image_root=None)
    assert caught.value.field == "brand"


PNG_HEAD = b"\x89PNG\r\n\x1a\n"  # the bytes are checked for an image format's signature, not decoded here


def test_row_inputs_reads_image_bytes(tmp_path):
    (tmp_path / "a.jpg").write_bytes(PNG_HEAD + b"png bytes")
    schema = CatalogSchema(text_columns=["title"], image_column="image")
    inputs = row_inputs({"title": "x", "image": "a.jpg"}, schema, ["title"], with_image=True, image_root=tmp_path)
    assert inputs == {"title": "x", "image_bytes": PNG_HEAD + b"png bytes", "image_error": ""}
    no_image_column = CatalogSchema(text_columns=["title"])
    assert row_inputs({"title": "x"}, no_image_column, ["title"], with_image=True, image_root=tmp_path) == {
        "title": "x", "image_bytes": b"", "image_error": ""}


def test_read_image_sources(tmp_path):
    (tmp_path / "a.png").write_bytes(PNG_HEAD + b"png bytes")
    assert read_image("a.png", tmp_path) == (PNG_HEAD + b"png bytes", "file")
    assert read_image(str(tmp_path / "a.png"), tmp_path)[0] == PNG_HEAD + b"png bytes"  # absolute, inside the root
    assert read_image(str(tmp_path / "a.png"), None) == (b"", "outside_root")  # root "." : elsewhere
    assert read_image(str(tmp_path / "a.png"), None, confine=False)[0] == PNG_HEAD + b"png bytes"
    assert read_image(PNG_HEAD + b"inline", tmp_path) == (PNG_HEAD + b"inline", "bytes")
    assert read_image(b"inline", tmp_path) == (b"", "not_image")
    uri = "data:image/png;base64," + base64.b64encode(PNG_HEAD + b"uri bytes").decode()
    assert read_image(uri, tmp_path) == (PNG_HEAD + b"uri bytes", "bytes")
    for absent in (None, math.nan, "", "   ", "missing.png", "https://example.com/never-fetched.jpg"):
        assert read_image(absent, tmp_path)[0] == b""
