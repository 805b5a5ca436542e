"""Localized category names as extra labelled examples: on a small three-locale tree, through a prepared
catalog, and on Shopify's real seven-locale tree."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from linnet.errors import ConfigError


@pytest.fixture(scope="module")
def tree():
    from linnet.taxonomy import Node, Taxonomy

    def node(node_id, parent, level, en, de, fr=None):
        names = {"en-US": en, "de-DE": de}
        if fr is not None:
            names["fr-FR"] = fr
        return Node(node_id, en, parent, level, names)

    return Taxonomy(
        [
            node("1", None, 1, "Apparel", "Bekleidung", "Vêtements"),
            node("2", "1", 2, "Shoes", "Schuhe", "Chaussures"),
            node("3", "2", 3, "Boots", "Stiefel", "Bottes"),
            node("4", "1", 2, "Accessories", "Accessoires", "Accessoires"),
            node("5", None, 1, "Electronics", "Elektronik", "Électronique"),
            node("6", "5", 2, "Accessories", "Zubehör", "Accessoires"),
            # No French name: French falls back to nothing, not to the English name.
            node("7", "5", 2, "Audio", "audio"),
        ],
        locales=["en-US", "de-DE", "fr-FR"],
    )


def test_every_non_primary_name_becomes_an_example_of_its_node(tree):
    from linnet.data.localized_names import localized_name_examples

    examples = localized_name_examples(tree)
    pairs = list(zip(examples.locales, examples.texts, examples.node_ids))
    assert pairs == [
        ("de-DE", "Bekleidung", "1"), ("de-DE", "Schuhe", "2"), ("de-DE", "Stiefel", "3"),
        ("de-DE", "Accessoires", "4"), ("de-DE", "Elektronik", "5"), ("de-DE", "Zubehör", "6"),
        # "audio" is the English name in another case: nothing new, skipped.
        ("fr-FR", "Vêtements", "1"), ("fr-FR", "Chaussures", "2"), ("fr-FR", "Bottes", "3"),
        # French "Accessoires" for node 4 repeats the German example: added once.
        ("fr-FR", "Électronique", "5"), ("fr-FR", "Accessoires", "6"),
    ]
    np.testing.assert_array_equal(examples.labels, tree.encode(list(examples.node_ids)))
    assert examples.labels.dtype == np.int32 and examples.labels.shape == (11, 3)
    assert len(set(examples.ids)) == len(examples) and examples.ids[0] == "localized-name:de-DE:1"


def test_paths_tell_apart_same_names_under_different_parents(tree):
    from linnet.data.localized_names import localized_name_examples

    examples = localized_name_examples(tree, locales=["fr-FR"], text="path")
    by_node = dict(zip(examples.node_ids, examples.texts))
    assert by_node["3"] == "Vêtements > Chaussures > Bottes"
    assert by_node["4"] == "Vêtements > Accessoires" and by_node["6"] == "Électronique > Accessoires"
    both = localized_name_examples(tree, locales=["de-DE"], text="name_and_path")
    assert len(both) == 2 * 6 - 2  # the two roots' names and paths are the same text
    assert len(set(both.ids)) == len(both)


def test_locale_selection_primary_names_and_depth(tree):
    from linnet.data.localized_names import localized_name_examples

    german = localized_name_examples(tree, locales="de-DE", max_level=1)
    assert list(german.texts) == ["Bekleidung", "Elektronik"]
    with_primary = localized_name_examples(tree, locales=["en-US"], include_primary=True)
    assert list(with_primary.texts) == [node.name for node in tree.nodes]
    assert len(localized_name_examples(tree, locales=["en-US"])) == 0


@pytest.mark.parametrize(
    ("options", "message"),
    [({"locales": ["it-IT"]}, "it-IT"), ({"text": "title"}, "text must be"), ({"max_level": 0}, "max_level")],
)
def test_bad_options_raise_config_error(tree, options, message):
    from linnet.data.localized_names import localized_name_examples

    with pytest.raises(ConfigError, match=message):
        localized_name_examples(tree, **options)


def test_a_tree_without_locales_is_refused(tiny_taxonomy):
    from linnet.data.localized_names import localized_name_examples

    with pytest.raises(ConfigError, match="no localized names"):
        localized_name_examples(tiny_taxonomy)


def test_names_are_appended_to_the_training_split_of_a_prepared_catalog(tree, tmp_path):
    from linnet.data import CatalogSchema, prepare_catalog
    from linnet.data.localized_names import add_localized_names, localized_name_examples

    path = tmp_path / "products.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "title", "brand", "category"])
        for index in range(12):
            writer.writerow([f"p{index}", f"product {index}", "acme", "Apparel > Shoes > Boots" if index % 2 else "Electronics"])
    schema = CatalogSchema(id_column="id", text_columns=["title", "brand"], category_column="category")
    catalog = prepare_catalog(path, schema, taxonomy=tree)
    extended = add_localized_names(catalog, locales=["de-DE"])
    expected = localized_name_examples(tree, locales=["de-DE"])
    count = len(catalog)
    assert len(extended) == count + len(expected)
    assert list(extended.texts["title"][count:]) == list(expected.texts)
    assert list(extended.texts["brand"][count:]) == [""] * len(expected)
    assert set(extended.split[count:]) == {"train"}
    np.testing.assert_array_equal(extended.labels[count:], expected.labels)
    # The real products are untouched, in every split.
    np.testing.assert_array_equal(extended.labels[:count], catalog.labels)
    assert list(extended.ids[:count]) == list(catalog.ids)
    assert len(extended.subset("test")) == len(catalog.subset("test"))
    with pytest.raises(ConfigError, match="colour"):
        add_localized_names(catalog, text_field="colour")


def test_shopify_names_in_seven_languages(shared_data):
    from linnet.data.localized_names import localized_name_examples
    from linnet.taxonomy import Taxonomy

    folder = shared_data / "taxonomy" / "shopify"
    files = [folder / locale / "categories.txt" for locale in ("en", "de", "ja")]
    if not all(file.is_file() for file in files):
        pytest.skip("Shopify category files not found")
    tree = Taxonomy.from_shopify([str(file) for file in files], primary_locale="en")
    examples = localized_name_examples(tree, max_level=2)
    assert set(examples.locales) == {"de", "ja"}
    shallow = [node for node in tree.nodes if node.level <= 2]
    # Nearly every category has its own German and Japanese name.
    assert len(examples) > 1.8 * len(shallow)
    assert (examples.labels[:, 0] >= 0).all() and (examples.labels[:, 2:] == -1).all()
    japanese = {node_id: text for node_id, text, locale in zip(examples.node_ids, examples.texts, examples.locales)
                if locale == "ja"}
    assert any("\u3040" <= character <= "\u30ff" or "\u4e00" <= character <= "\u9fff"
               for character in "".join(japanese.values()))
