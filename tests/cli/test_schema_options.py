"""`schema_or_none`: a command that can reuse the model's saved schema gets None unless a schema flag is given."""

from __future__ import annotations

import argparse

import pytest

from linnet.cli.schema_options import add_schema_options, schema_or_none


@pytest.fixture
def parser():
    parser = argparse.ArgumentParser()
    add_schema_options(parser)
    parser.add_argument("--quiet", action="store_true")  # a flag of the command, not of the schema
    return parser


def test_no_schema_flag_keeps_the_saved_schema(parser):
    assert schema_or_none(parser.parse_args(["--quiet"])) is None


@pytest.mark.parametrize("flags, key, value", [
    (["--text-columns", "title,brand"], "text_columns", ["title", "brand"]),
    (["--level-columns", "a,b"], "level_columns", ["a", "b"]),
    (["--value-column", "price"], "value_column", "price"),
])
def test_any_schema_flag_gives_a_schema(parser, flags, key, value):
    assert getattr(schema_or_none(parser.parse_args(flags)), key) == value


def test_a_schema_file_alone_gives_its_schema(parser, tmp_path):
    path = tmp_path / "schema.yaml"
    path.write_text("id_column: sku\ntext_columns: [name]\ncategory_column: path\n", encoding="utf-8")
    schema = schema_or_none(parser.parse_args(["--schema", str(path)]))
    assert (schema.id_column, schema.text_columns, schema.category_column) == ("sku", ["name"], "path")
