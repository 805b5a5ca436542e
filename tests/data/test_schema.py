import argparse

import pytest

from linnet.cli.schema_options import add_schema_options, schema_from_args
from linnet.data import CatalogSchema
from linnet.errors import ConfigError


def test_feature_fields_and_roles():
    schema = CatalogSchema(text_columns=["title", "description"], attribute_columns=["size"], level_columns=["a", "b"],
                           image_column="img")
    assert schema.feature_text_fields == ["title", "description", "attributes"]
    assert schema.has_image and schema.has_category
    assert CatalogSchema().feature_text_fields == ["title"]
    assert not CatalogSchema().has_image


@pytest.mark.parametrize("kwargs, words", [
    ({"category_column": "c", "level_columns": ["a"]}, "not both"),
    ({"category_kind": "name"}, "category_kind"),
    ({"text_columns": ["attributes"], "attribute_columns": ["x"]}, "collides"),
    ({"text_columns": ["title", "title"]}, "more than one role"),
    ({"text_columns": [], "attribute_columns": []}, "at least one"),
])
def test_conflicting_keys_are_config_errors(kwargs, words):
    with pytest.raises(ConfigError, match=words):
        CatalogSchema(**kwargs)


def test_yaml_round_trip_and_unknown_key(tmp_path):
    schema = CatalogSchema(text_columns=["t"], category_column="c", path_separator=" / ", image_column="i",
                           image_root=str(tmp_path), value_column="v")
    path = schema.to_yaml(tmp_path / "run" / "schema.yaml")
    assert CatalogSchema.from_yaml(path) == schema
    assert CatalogSchema.load(path) == schema
    (tmp_path / "bad.yaml").write_text("id_column: id\ntext_colums: [a]\n")
    with pytest.raises(ConfigError, match="text_colums"):
        CatalogSchema.from_yaml(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="not found"):
        CatalogSchema.from_yaml(tmp_path / "absent.yaml")


def _parse(argv):
    parser = argparse.ArgumentParser()
    add_schema_options(parser)
    return parser.parse_args(argv)


def test_flags_exact_names_and_override_of_schema_file(tmp_path):
    args = _parse(["--id-column", "sku", "--text-columns", "title,description", "--attribute-columns", "colour,size",
                   "--category-column", "path", "--path-separator", " >> ", "--image-column", "img",
                   "--image-root", "/pics", "--value-column", "price"])
    schema = schema_from_args(args)
    assert (schema.id_column, schema.text_columns, schema.attribute_columns) == ("sku", ["title", "description"],
                                                                                 ["colour", "size"])
    assert (schema.category_column, schema.path_separator, schema.image_root, schema.value_column) == (
        "path", " >> ", "/pics", "price")
    saved = schema.to_yaml(tmp_path / "schema.yaml")
    overridden = schema_from_args(_parse(["--schema", str(saved), "--level-columns", "l1,l2"]))
    assert overridden.level_columns == ["l1", "l2"] and overridden.category_column is None
    assert overridden.id_column == "sku"
    # a run's saved schema is the default when nothing is given
    assert schema_from_args(_parse([]), default=schema) == schema
    assert schema_from_args(_parse([])) == CatalogSchema()
