"""`check_input_columns`: a catalog lacking the model's text columns is refused, naming expected and found."""

from __future__ import annotations

import pytest

from linnet.data.schema import CatalogSchema, check_input_columns
from linnet.errors import CatalogError

SCHEMA = CatalogSchema(text_columns=["title", "brand"], attribute_columns=["colour"], category_column="path")


def test_every_column_the_model_reads_is_there():
    check_input_columns(SCHEMA, ["id", "title", "brand", "colour", "price"], "c.csv")


def test_one_missing_text_column_is_refused_unless_allowed():
    with pytest.raises(CatalogError) as error:
        check_input_columns(SCHEMA, ["id", "title", "colour"], "c.csv")
    message = str(error.value)
    assert "c.csv" in message and "lacks ['brand']" in message
    assert "['title', 'brand', 'colour']" in message and "found ['id', 'title', 'colour']" in message
    assert "--allow-missing-text" in message
    check_input_columns(SCHEMA, ["id", "title", "colour"], "c.csv", allow_missing_text=True)


def test_no_text_column_at_all_is_refused_even_with_the_flag():
    with pytest.raises(CatalogError, match=r"lacks \['title', 'brand', 'colour'\]; found \['id', 'name'\]"):
        check_input_columns(SCHEMA, ["id", "name"], "c.csv", allow_missing_text=True)


def test_an_image_model_may_lose_its_texts_with_the_flag():
    schema = CatalogSchema(text_columns=["title"], image_column="image")
    check_input_columns(schema, ["id", "image"], "c.csv", allow_missing_text=True)


def test_the_id_column_is_required():
    with pytest.raises(CatalogError, match="no id column 'sku'"):
        check_input_columns(CatalogSchema(id_column="sku"), ["id", "title"], "c.csv")
