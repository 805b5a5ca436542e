"""`linnet.data.prepare`: label mapping (trees inferred from a path column or level columns, given trees,
unknown-label policies), row checks, splits, attributes, images and the report."""

import json

import numpy as np
import pytest

from linnet.data import SPLIT_NAMES, CatalogSchema, prepare_catalog
from linnet.errors import CatalogError, ConfigError
from linnet.taxonomy import Taxonomy

from .conftest import write_csv

HEADER = ["id", "title", "category"]


def _given_tree():
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
    # b"garbage" lacks an image format's magic bytes: refused when read, counted, never decoded
    assert catalog.report.images["bytes"] == 1 and catalog.report.images["none"] == 1
    assert catalog.report.images["not_image"] == 1 and catalog.report.unusable_images == 1
    from linnet.data import make_dataset

    features, _, _ = next(iter(make_dataset(catalog, batch_size=3, image_size=16)))
    assert features["image_present"].numpy().tolist() == [1.0, 0.0, 0.0]


def _jsonl(path, records):
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


def test_images_column_resolves_files_and_counts_what_is_missing(small_catalog, small_schema):
    catalog = prepare_catalog(small_catalog, small_schema)
    folder = small_catalog.parent
    assert catalog.report.images == {"file": 4, "bytes": 0, "missing_file": 1, "url_not_fetched": 0,
                                     "outside_root": 0, "not_image": 0, "too_large": 0, "none": 1}
    assert catalog.report.missing_image_ids == ["4"]
    assert catalog.image_sources.tolist() == [
        str(folder / "img" / "1.jpg"), str(folder / "img" / "2.png"), str(folder / "img" / "3.gif"), "", "",
        str(folder / "img" / "6.webp")]
    assert catalog.image_available().tolist() == [True, True, True, False, False, True]
    assert "images: file 4, missing_file 1, none 1" in catalog.report.summary()


def test_without_an_image_column_there_are_no_image_sources(small_catalog):
    catalog = prepare_catalog(small_catalog, CatalogSchema(category_column="category"))
    assert catalog.image_sources is None and catalog.report.images == {}
    assert catalog.image_available().tolist() == [False] * 6


def test_attribute_columns_render_into_the_attributes_text(small_catalog, small_schema):
    catalog = prepare_catalog(small_catalog, small_schema)
    assert sorted(catalog.texts) == ["attributes", "title"]
    assert catalog.texts["attributes"].tolist() == [
        "colour: red", "colour: blue", "colour: black", "colour: brown", "colour: green", "colour: red"]
    assert catalog.texts["title"][0] == "Red leather boots"


def test_splits_are_counted_and_subsets_select_them(small_catalog, small_schema):
    catalog = prepare_catalog(small_catalog, small_schema, split=(0.5, 0.25, 0.25))
    assert set(catalog.split) <= set(SPLIT_NAMES)
    assert catalog.report.splits == {name: int((catalog.split == name).sum()) for name in SPLIT_NAMES}
    assert sum(catalog.report.splits.values()) == catalog.report.rows_kept == len(catalog) == 6
    train = catalog.subset("train")
    assert list(train.ids) == [i for i, name in zip(catalog.ids, catalog.split) if name == "train"]
    assert train.texts["title"].tolist() == [t for t, name in zip(catalog.texts["title"], catalog.split) if name == "train"]
    assert len(catalog.subset(["train", "validation", "test"])) == 6
    # The split is a function of the id (and salt) alone: preparing again gives the same one.
    np.testing.assert_array_equal(prepare_catalog(small_catalog, small_schema, split=(0.5, 0.25, 0.25)).split,
                                  catalog.split)
    with pytest.raises(ConfigError, match="unknown split name"):
        catalog.subset("dev")


def test_ids_and_texts_follow_the_shared_row_rules(tmp_path):
    path = _jsonl(tmp_path / "c.jsonl", [
        {"id": 12.0, "title": "float id", "category": "A > B"},
        {"id": " p2 ", "title": "   ", "category": "A > B"},
        {"id": True, "title": "bool id", "category": "A > B"},
        {"id": 1.5, "title": "fractional id", "category": "A > B"},
        {"id": "  ", "title": "blank id", "category": "A > B"},
    ])
    catalog = prepare_catalog(path, CatalogSchema(category_column="category"), bad_rows="skip")
    assert list(catalog.ids) == ["12", "p2"]
    assert catalog.texts["title"].tolist() == ["float id", ""]  # whitespace-only text is no text
    problems = {(row.location, row.field): row.problem for row in catalog.report.bad_rows}
    assert problems == {
        (3, "id"): "an id must be a string or an integer, got bool True",
        (4, "id"): "an id must be a string or an integer, got float 1.5",
        (5, "id"): "the id is empty",
    }
    assert all(row.file == str(path) for row in catalog.report.bad_rows)


def test_bad_category_and_value_cells_name_their_field(tmp_path):
    path = _jsonl(tmp_path / "c.jsonl", [
        {"id": 1, "title": "ok", "category": "A > B", "price": "2.5"},
        {"id": 2, "title": "path is a number", "category": 7, "price": 1},
        {"id": 3, "title": "price is a bool", "category": "A > B", "price": True},
        {"id": 4, "title": "no price", "category": "A", "price": None},
    ])
    schema = CatalogSchema(category_column="category", value_column="price")
    with pytest.raises(CatalogError, match=r"c\.jsonl: line 2 \(id '2'\): field 'category': a category path must be "
                                           r"text, got int 7"):
        prepare_catalog(path, schema)
    catalog = prepare_catalog(path, schema, bad_rows="skip")
    assert list(catalog.ids) == ["1", "4"]
    assert catalog.values[0] == 2.5 and np.isnan(catalog.values[1]) and catalog.values.dtype == np.float32
    assert [(row.location, row.field) for row in catalog.report.bad_rows] == [(2, "category"), (3, "price")]
    assert catalog.report.bad_rows[1].problem == "must be a number, got True"


def test_options_are_checked_before_reading(small_catalog, small_schema):
    with pytest.raises(ConfigError, match="unknown_labels must be one of"):
        prepare_catalog(small_catalog, small_schema, unknown_labels="guess")
    with pytest.raises(ConfigError, match="bad_rows must be one of"):
        prepare_catalog(small_catalog, small_schema, bad_rows="ignore")


def test_a_catalog_without_usable_rows_is_an_error_naming_the_first_problem(tmp_path):
    path = write_csv(tmp_path / "c.csv", HEADER, [["", "a", "A > B"], ["", "b", "A > C"]])
    with pytest.raises(CatalogError, match=r"no usable rows \(2 read, 2 bad\); first problem: .*line 2: field 'id': "
                                           r"the id is empty"):
        prepare_catalog(path, CatalogSchema(category_column="category"), bad_rows="skip")


def test_report_to_dict_counts_bad_rows_and_keeps_examples(tmp_path):
    catalog = prepare_catalog(_unknown_catalog(tmp_path), CatalogSchema(category_column="category"), _given_tree(),
                              unknown_labels="skip")
    data = catalog.report.to_dict()
    assert data["bad_rows"] == 3 and data["rows_read"] == 5 and data["rows_kept"] == 2
    assert data["bad_row_examples"][0].startswith(f"{tmp_path / 'unknown.csv'}: line 3 (id '2'): field 'category':")
    assert data["unknown_label_policy"] == "skip"
    assert json.loads(json.dumps(data)) == data  # JSON-ready


def test_a_given_tree_labels_and_keeps_its_levels_without_a_category_column(small_catalog):
    tree = Taxonomy.from_paths(["Shoes > Boots", "Bags"])
    catalog = prepare_catalog(small_catalog, CatalogSchema(), tree)
    assert catalog.taxonomy is tree and catalog.labels.tolist() == [[-1, -1]] * 6
    no_tree = prepare_catalog(small_catalog, CatalogSchema())
    assert no_tree.taxonomy is None and no_tree.labels.shape == (6, 0) and no_tree.num_levels == 0
