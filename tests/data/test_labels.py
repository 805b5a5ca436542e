"""Label mapping: trees inferred from a path column or level columns, given trees, unknown-label policies."""

import json

import numpy as np
import pytest

from linnet.data import CatalogSchema, prepare_catalog
from linnet.errors import CatalogError, ConfigError

from .conftest import write_csv

HEADER = ["id", "title", "category"]


def _given_tree():
    from linnet.taxonomy import Taxonomy

    return Taxonomy.from_paths(["Shoes > Boots", "Shoes > Sneakers", "Bags > Totes"])


def test_tree_inferred_from_the_path_column(small_catalog, small_schema):
    catalog = prepare_catalog(small_catalog, small_schema)
    tree = catalog.taxonomy
    assert tree.num_levels == 2 and sorted(tree.classes(1)) == ["Accessories", "Bags", "Shoes"]
    assert catalog.taxonomy.decode(catalog.labels) == [
        "Shoes > Boots", "Shoes > Sneakers", "Shoes > Boots", "Bags > Totes", "Bags > Backpacks", "Accessories"]
    assert catalog.labels[5, 1] == -1  # a depth-1 product has no level-2 label


def test_level_columns_and_path_column_give_the_same_labels(tmp_path):
    rows = [["1", "a", "Shoes", "Boots", ""], ["2", "b", "Shoes", "", ""], ["3", "c", "Bags", "Totes", "Big"]]
    path = write_csv(tmp_path / "levels.csv", ["id", "title", "l1", "l2", "l3"], rows)
    by_level = prepare_catalog(path, CatalogSchema(level_columns=["l1", "l2", "l3"]))
    paths = write_csv(tmp_path / "paths.csv", HEADER, [[r[0], r[1], " / ".join(x for x in r[2:] if x)] for r in rows])
    by_path = prepare_catalog(paths, CatalogSchema(category_column="category", path_separator=" / "))
    assert by_level.taxonomy.classes(3) == by_path.taxonomy.classes(3) == ["Bags > Totes > Big"]
    np.testing.assert_array_equal(by_level.labels, by_path.labels)
    assert by_level.labels.tolist()[1] == [by_level.taxonomy.classes(1).index("Shoes"), -1, -1]


def test_gap_in_level_columns_is_a_bad_row(tmp_path):
    path = write_csv(tmp_path / "gap.csv", ["id", "title", "l1", "l2", "l3"], [["1", "a", "Shoes", "", "Boots"]])
    with pytest.raises(CatalogError, match=r"gap\.csv: line 2 \(id '1'\): field 'l3': a name after the empty level 'l2'"):
        prepare_catalog(path, CatalogSchema(level_columns=["l1", "l2", "l3"]))


def _unknown_catalog(tmp_path):
    rows = [["1", "a", "Shoes > Boots"], ["2", "b", "Shoes > Clogs"], ["3", "c", "Shoes > Clogs"],
            ["4", "d", "Garden > Hoses"], ["5", "e", ""]]
    return write_csv(tmp_path / "unknown.csv", HEADER, rows)


def test_unknown_labels_error_lists_labels_counts_and_ids(tmp_path):
    with pytest.raises(CatalogError) as caught:
        prepare_catalog(_unknown_catalog(tmp_path), CatalogSchema(category_column="category"), _given_tree())
    message = str(caught.value)
    assert "unknown.csv" in message and "'category'" in message and "2 category label(s) not in the tree" in message
    assert "'Shoes > Clogs' ×2 (line 3, id '2')" in message and "'Garden > Hoses' ×1 (line 5, id '4')" in message


def test_unknown_labels_skip_reports_and_writes_them(tmp_path):
    errors = tmp_path / "errors.jsonl"
    catalog = prepare_catalog(_unknown_catalog(tmp_path), CatalogSchema(category_column="category"), _given_tree(),
                              unknown_labels="skip", errors_path=errors)
    assert list(catalog.ids) == ["1", "5"]
    assert catalog.labels[1].tolist() == [-1, -1] and catalog.report.unlabelled == 1
    report = catalog.report
    assert report.unknown_labels == {"Shoes > Clogs": 2, "Garden > Hoses": 1}
    assert report.unknown_label_ids["Shoes > Clogs"] == ["2", "3"] and report.dropped_unknown == 3
    written = [json.loads(line) for line in errors.read_text().splitlines()]
    assert [row["id"] for row in written] == ["2", "3", "4"] and all(row["field"] == "category" for row in written)


def test_unknown_labels_ancestor_maps_to_the_deepest_known_node(tmp_path):
    tree = _given_tree()
    catalog = prepare_catalog(_unknown_catalog(tmp_path), CatalogSchema(category_column="category"), tree,
                              unknown_labels="ancestor")
    assert list(catalog.ids) == ["1", "2", "3", "5"]  # 'Garden > Hoses' has no known prefix: left out, reported
    assert tree.decode(catalog.labels) == ["Shoes > Boots", "Shoes", "Shoes", None]
    assert catalog.report.mapped_to_ancestor == 2 and catalog.report.dropped_unknown == 1


def test_category_ids_need_and_use_a_taxonomy(tmp_path):
    tree = _given_tree()
    boots = tree.find_path("Shoes > Boots").id
    path = write_csv(tmp_path / "ids.csv", HEADER, [["1", "a", boots], ["2", "b", "nope"]])
    schema = CatalogSchema(category_column="category", category_kind="id")
    with pytest.raises(ConfigError, match="need a taxonomy"):
        prepare_catalog(path, schema)
    catalog = prepare_catalog(path, schema, tree, unknown_labels="skip")
    assert tree.decode(catalog.labels) == ["Shoes > Boots"] and catalog.report.unknown_labels == {"nope": 1}


def test_stratified_split_per_leaf(small_catalog, small_schema):
    plain = prepare_catalog(small_catalog, small_schema)
    stratified = prepare_catalog(small_catalog, small_schema, stratify=True)
    assert len(stratified.split) == len(plain.split)
    # every leaf with a single product puts it in train (the largest share)
    assert (stratified.split == "train").sum() >= 4


def test_fashion_catalogue_both_label_layouts_agree(fashion_dir):
    text = {"text_columns": ["productDisplayName"], "attribute_columns": ["gender", "baseColour", "season", "usage"],
                "image_column": "image_file"}
    by_path = prepare_catalog(fashion_dir / "styles.csv", CatalogSchema(category_column="category_path", **text),
                              max_rows=400)
    by_level = prepare_catalog(fashion_dir / "styles.csv",
                               CatalogSchema(level_columns=["masterCategory", "subCategory", "articleType"], **text),
                               max_rows=400)
    assert len(by_path) == 400 and by_path.num_levels == 3
    assert by_path.taxonomy.decode(by_path.labels) == by_level.taxonomy.decode(by_level.labels)
    assert (by_path.labels >= 0).all()
    assert by_path.texts["attributes"][0] == "gender: Men; baseColour: Navy Blue; season: Fall; usage: Casual"
    assert by_path.report.images["file"] + by_path.report.images["none"] == 400
    assert by_path.report.images["file"] > 50
    shares = {name: (by_path.split == name).mean() for name in ("train", "validation", "test")}
    assert 0.6 < shares["train"] < 0.8


def test_localized_names_and_ids_map_to_the_same_google_nodes(shared_data, tmp_path):
    from linnet.taxonomy import Taxonomy

    folder = shared_data / "taxonomy" / "google"
    files = [folder / "taxonomy-with-ids.en-US.2015-02-19.txt", folder / "taxonomy-with-ids.de-DE.2015-02-19.txt"]
    if not all(path.is_file() for path in files):
        pytest.skip("Google 2015 en-US/de-DE files not found")
    tree = Taxonomy.from_google(files)
    german = write_csv(tmp_path / "de.csv", HEADER, [["1", "Wanderschuh", "Bekleidung & Accessoires > Schuhe"],
                                                     ["2", "Stiefelsocken", "Bekleidung & Accessoires > Schuh-Accessoires > Stiefelsocken"]])
    by_name = prepare_catalog(german, CatalogSchema(category_column="category", category_locale="de-DE"), tree)
    ids = write_csv(tmp_path / "ids.csv", HEADER, [["1", "Wanderschuh", "187"], ["2", "Stiefelsocken", "5567"]])
    by_id = prepare_catalog(ids, CatalogSchema(category_column="category", category_kind="id"), tree)
    np.testing.assert_array_equal(by_name.labels, by_id.labels)
    assert tree.decode(by_id.labels) == ["187", "5567"]
    # the German path is unknown among the primary (English) names
    with pytest.raises(CatalogError, match="not in the tree"):
        prepare_catalog(german, CatalogSchema(category_column="category"), tree)


def test_inline_image_bytes_from_parquet(tmp_path):
    import pandas as pd

    from .conftest import encode_image

    frame = pd.DataFrame({"id": ["a", "b", "c"], "title": ["x", "y", "z"], "category": ["A > B", "A > C", "A"],
                          "image": [encode_image("PNG"), b"", b"garbage"]})
    frame.to_parquet(tmp_path / "c.parquet")
    schema = CatalogSchema(category_column="category", image_column="image")
    catalog = prepare_catalog(tmp_path / "c.parquet", schema)
    assert catalog.report.images["bytes"] == 2 and catalog.report.images["none"] == 1
    from linnet.data import make_dataset

    features, _, _ = next(iter(make_dataset(catalog, batch_size=3, image_size=16)))
    assert features["image_present"].numpy().tolist() == [1.0, 0.0, 0.0]
