"""`linnet.taxonomy.core` on small handwritten trees: classes, encoding, masks, truncation, pruning, JSON."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from linnet.errors import TaxonomyError
from linnet.taxonomy import Node, Taxonomy, core, formats


def test_classes_are_grouped_by_parent_and_sorted_by_name(tiny_taxonomy):
    assert tiny_taxonomy.classes(1) == ["Bags", "Clothing", "Shoes"]
    assert tiny_taxonomy.classes(2) == ["Clothing > Tops", "Clothing > Trousers", "Shoes > Boots", "Shoes > Sandals"]
    assert tiny_taxonomy.classes(3) == ["Clothing > Tops > Shirts", "Clothing > Tops > T-Shirts", "Clothing > Trousers > Jeans"]
    assert tiny_taxonomy.class_index("Shoes > Sandals") == (2, 3)
    assert tiny_taxonomy.num_levels == 3
    assert tiny_taxonomy.leaves() == [
        "Bags", "Clothing > Tops > Shirts", "Clothing > Tops > T-Shirts", "Clothing > Trousers > Jeans",
        "Shoes > Boots", "Shoes > Sandals",
    ]


def test_unsorted_paths_keep_first_appearance():
    tax = Taxonomy.from_paths(["B > y", "A", "B > x"], sort=False)
    assert tax.classes(1) == ["B", "A"]
    assert tax.classes(2) == ["B > y", "B > x"]


def test_parent_index_and_child_mask(tiny_taxonomy):
    assert tiny_taxonomy.parent_index(2).tolist() == [1, 1, 2, 2]
    assert tiny_taxonomy.parent_index(3).tolist() == [0, 0, 1]
    assert tiny_taxonomy.parent_index(2).dtype == np.int32
    mask = tiny_taxonomy.child_mask(2)
    assert mask.dtype == bool and mask.shape == (3, 4)
    assert mask.tolist() == [
        [False, False, False, False],  # Bags is a leaf
        [True, True, False, False],
        [False, False, True, True],
    ]
    # Every class has exactly one parent.
    assert (tiny_taxonomy.child_mask(3).sum(axis=0) == 1).all()
    with pytest.raises(ValueError):
        tiny_taxonomy.parent_index(1)
    with pytest.raises(ValueError):
        tiny_taxonomy.child_mask(4)


def test_encode_uses_minus_one_below_the_label(tiny_taxonomy):
    codes = tiny_taxonomy.encode(["Clothing > Tops > T-Shirts", "Shoes > Boots", "Bags", None, float("nan")])
    assert codes.dtype == np.int32
    assert codes.tolist() == [[1, 0, 1], [2, 2, -1], [0, -1, -1], [-1, -1, -1], [-1, -1, -1]]
    assert tiny_taxonomy.decode(codes) == ["Clothing > Tops > T-Shirts", "Shoes > Boots", "Bags", None, None]


def test_encode_paths_and_unknown_labels(tiny_taxonomy):
    codes = tiny_taxonomy.encode_paths(["Shoes >> Sandals", None], separator=" >> ")
    assert codes.tolist() == [[2, 3, -1], [-1, -1, -1]]
    with pytest.raises(TaxonomyError, match="position 1"):
        tiny_taxonomy.encode_paths(["Bags", "Bags > Totes"])
    with pytest.raises(TaxonomyError, match="'Hats'"):
        tiny_taxonomy.encode(["Bags", "Hats"])


def test_decode_rejects_out_of_range_codes(tiny_taxonomy):
    with pytest.raises(TaxonomyError, match="level 2"):
        tiny_taxonomy.decode([[1, 4, -1]])
    with pytest.raises(ValueError):
        tiny_taxonomy.decode([[1, 0]])


def test_ancestors_descendants_paths(tiny_taxonomy):
    assert tiny_taxonomy.ancestors("Clothing > Tops > Shirts") == ["Clothing", "Clothing > Tops", "Clothing > Tops > Shirts"]
    assert tiny_taxonomy.ancestors("Bags", include_self=False) == []
    assert tiny_taxonomy.descendants("Clothing") == [
        "Clothing > Tops", "Clothing > Tops > Shirts", "Clothing > Tops > T-Shirts",
        "Clothing > Trousers", "Clothing > Trousers > Jeans",
    ]
    assert tiny_taxonomy.path("Shoes > Boots") == ("Shoes", "Boots")
    with pytest.raises(TaxonomyError, match="unknown node id"):
        tiny_taxonomy.ancestors("Hats")


def test_lookups_by_path(tiny_taxonomy):
    assert tiny_taxonomy.find_path(["Clothing", "Tops"]).id == "Clothing > Tops"
    assert tiny_taxonomy.find_path("Clothing > Skirts") is None
    assert tiny_taxonomy.deepest_known_ancestor("Clothing > Tops > Blouses > Silk").id == "Clothing > Tops"
    assert tiny_taxonomy.deepest_known_ancestor("Toys > Dolls") is None
    # Names are NFC-normalised before lookup: a decomposed "é" finds the composed one.
    tax = Taxonomy.from_paths(["Caf\u00e9 > Tables"])
    assert tax.find_path("Cafe\u0301 > Tables").id == "Caf\u00e9 > Tables"


def test_localized_names_and_lookups():
    nodes = [
        Node("1", "Shoes", None, 1, {"en": "Shoes", "de": "Schuhe"}),
        Node("2", "Boots", "1", 2, {"en": "Boots", "de": "Stiefel"}),
        Node("3", "Sandals", "1", 2, {"en": "Sandals"}),
    ]
    tax = Taxonomy(nodes, locales=["en", "de"])
    assert tax.name("2", "de") == "Stiefel"
    assert tax.name("3", "de") == "Sandals"  # no translation: the primary name
    assert tax.path_string("2", locale="de") == "Schuhe > Stiefel"
    assert tax.find_path("Schuhe > Stiefel", locale="de").id == "2"
    assert tax.encode_paths(["Schuhe > Stiefel"], locale="de").tolist() == [[0, 0]]
    with pytest.raises(TaxonomyError, match="unknown locale"):
        tax.name("2", "fr")


def test_truncate_and_truncation_map(tiny_taxonomy):
    two = tiny_taxonomy.truncate(2)
    assert two.level_sizes() == [3, 4]
    mapping = tiny_taxonomy.truncation_map(2)
    assert mapping["Clothing > Tops > Shirts"] == "Clothing > Tops"
    assert mapping["Bags"] == "Bags"
    assert set(mapping.values()) <= {node.id for node in two.nodes}
    labels = ["Clothing > Tops > Shirts", "Shoes > Boots"]
    # Truncated codes equal the first two levels of the full codes.
    assert two.encode([mapping[label] for label in labels]).tolist() == tiny_taxonomy.encode(labels)[:, :2].tolist()
    with pytest.raises(ValueError):
        tiny_taxonomy.truncate(0)


def test_prune_merges_rare_nodes_into_parents(tiny_taxonomy):
    counts = {"Clothing > Tops > Shirts": 5, "Clothing > Tops > T-Shirts": 1, "Clothing > Trousers > Jeans": 1,
              "Shoes > Boots": 4, "Bags": 1}
    pruned, mapping = tiny_taxonomy.prune(counts, min_count=2)
    assert pruned.classes(1) == ["Bags", "Clothing", "Shoes"]  # roots always stay
    assert pruned.classes(2) == ["Clothing > Tops", "Shoes > Boots"]
    assert pruned.classes(3) == ["Clothing > Tops > Shirts"]
    assert mapping["Clothing > Tops > T-Shirts"] == "Clothing > Tops"
    assert mapping["Clothing > Trousers > Jeans"] == "Clothing"
    assert mapping["Shoes > Sandals"] == "Shoes"
    # No label is lost: the counts move to the kept nodes.
    moved: dict[str, int] = {}
    for node_id, count in counts.items():
        moved[mapping[node_id]] = moved.get(mapping[node_id], 0) + count
    assert sum(moved.values()) == sum(counts.values())
    assert all(node_id in pruned for node_id in moved)
    with pytest.raises(TaxonomyError, match="Hats"):
        tiny_taxonomy.prune({"Hats": 3}, min_count=1)


def test_json_round_trip_is_exact(tmp_path, tiny_taxonomy):
    data = tiny_taxonomy.to_json()
    text = json.dumps(data)
    again = Taxonomy.from_json(json.loads(text))
    assert again.to_json() == data
    assert again.fingerprint() == tiny_taxonomy.fingerprint()
    path = tiny_taxonomy.save(tmp_path / "sub" / "tree.json")
    assert Taxonomy.load(path).to_json() == data
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def test_fingerprint_changes_with_the_label_space(tiny_taxonomy):
    other = Taxonomy.from_paths(["Clothing > Tops > T-Shirts", "Shoes > Boots"])
    assert other.fingerprint() != tiny_taxonomy.fingerprint()
    relabelled = Taxonomy.from_json({**tiny_taxonomy.to_json(), "source": "elsewhere"})
    assert relabelled.fingerprint() == tiny_taxonomy.fingerprint()


def test_pickle_round_trip(tiny_taxonomy):
    assert pickle.loads(pickle.dumps(tiny_taxonomy)) == tiny_taxonomy


def test_load_rejects_bad_json(tmp_path):
    path = tmp_path / "tree.json"
    path.write_text('{"format": "linnet-taxonomy",\n "nodes": [}', encoding="utf-8")
    with pytest.raises(TaxonomyError, match=r"tree.json:2"):
        Taxonomy.load(path)
    path.write_text('{"format": "something-else"}', encoding="utf-8")
    with pytest.raises(TaxonomyError, match="not a LinNét taxonomy"):
        Taxonomy.load(path)


def test_constructor_checks(tiny_taxonomy):
    with pytest.raises(TaxonomyError, match="duplicate id"):
        Taxonomy([Node("a", "A", None, 1), Node("a", "B", None, 1)])
    with pytest.raises(TaxonomyError, match="unknown parent"):
        Taxonomy([Node("a", "A", "zz", 2)])
    with pytest.raises(TaxonomyError, match="cycle"):
        Taxonomy([Node("r", "R", None, 1), Node("a", "A", "b", 2), Node("b", "B", "a", 2)])
    with pytest.raises(TaxonomyError, match="level"):
        Taxonomy([Node("r", "R", None, 1), Node("a", "A", "r", 3)])


def test_level_columns():
    tax = Taxonomy.from_level_columns([["Shoes", "Boots", None], ["Bags", "", ""], ["Shoes", "Boots", "Chelsea"]])
    assert tax.level_sizes() == [2, 1, 1]
    assert "Shoes > Boots > Chelsea" in tax
    with pytest.raises(TaxonomyError, match="path 2"):
        Taxonomy.from_level_columns([["Shoes"], [None, "Boots"]])
    with pytest.raises(TaxonomyError, match="path 1"):
        Taxonomy.from_level_columns([["Shoes", None, "Chelsea"]])


def test_child_mask_tensor_matches_numpy(tiny_taxonomy):
    tf = pytest.importorskip("tensorflow")
    tensor = tiny_taxonomy.child_mask_tensor(3)
    assert tensor.dtype == tf.bool
    assert tensor.numpy().tolist() == tiny_taxonomy.child_mask(3).tolist()


def _hand_built() -> Taxonomy:
    """Built from nodes (no reader): ids that are not paths, children given after their parents' siblings.

    10 Home / 11 Kitchen / 12 Knives, 13 Pans; 14 Garden (leaf at level 2); 20 Toys (leaf at level 1).
    """
    return Taxonomy([
        Node("20", "Toys", None, 1),
        Node("12", "Knives", "11", 3),
        Node("10", "Home", None, 1),
        Node("11", "Kitchen", "10", 2),
        Node("14", "Garden", "10", 2),
        Node("13", "Pans", "11", 3),
    ])


def test_hand_built_tree_orders_classes_depth_first_in_the_given_order():
    tax = _hand_built()
    assert [node.id for node in tax.nodes] == ["20", "10", "11", "12", "13", "14"]
    assert tax.classes(1) == ["20", "10"] and tax.classes(2) == ["11", "14"] and tax.classes(3) == ["12", "13"]
    assert tax.level_sizes() == [2, 2, 2] and len(tax) == 6 and tax.num_levels == 3
    assert [node.id for node in tax.roots] == ["20", "10"] and tax.children("11") == ("12", "13")
    assert tax.children(None) == ("20", "10") and tax.is_leaf("14") and not tax.is_leaf("10")
    assert tax.leaves() == ["20", "12", "13", "14"]
    assert "13" in tax and "99" not in tax and repr(tax) == "Taxonomy(6 nodes, 2 roots, 3 levels)"


def test_hand_built_tree_parent_index_child_mask_encode_decode():
    tax = _hand_built()
    assert tax.parent_index(2).tolist() == [1, 1] and tax.parent_index(3).tolist() == [0, 0]
    assert tax.child_mask(2).tolist() == [[False, False], [True, True]]
    assert tax.child_mask(3).tolist() == [[True, True], [False, False]]  # Garden (14) has no children
    codes = tax.encode(["13", 14, "20", None, ""])  # an integer is read as an id
    assert codes.tolist() == [[1, 0, 1], [1, 1, -1], [0, -1, -1], [-1, -1, -1], [-1, -1, -1]]
    assert tax.decode(codes) == ["13", "14", "20", None, None]
    assert tax.ancestors("12") == ["10", "11", "12"] and tax.path_string("12") == "Home > Kitchen > Knives"
    assert tax.find_path("Home > Kitchen > Pans").id == "13"
    with pytest.raises(TaxonomyError, match=r"unknown node id '99' at position 1 \(1 unknown labels in all\)"):
        tax.encode(["12", "99"])
    with pytest.raises(TaxonomyError, match="code 2 out of range at row 0, level 3"):
        tax.decode([[1, 0, 2]])


def test_hand_built_tree_truncate_subtree_counts_and_prune():
    tax = _hand_built()
    two = tax.truncate(2)
    assert [node.id for node in two.nodes] == ["20", "10", "11", "14"]
    assert tax.truncation_map(1) == {"20": "20", "10": "10", "11": "10", "12": "10", "13": "10", "14": "10"}
    assert tax.subtree_counts({"12": 2, "13": 1, "20": 4}) == {"20": 4, "10": 3, "11": 3, "12": 2, "13": 1, "14": 0}
    pruned, mapping = tax.prune({"12": 2, "13": 1, "20": 4}, min_count=2)
    assert [node.id for node in pruned.nodes] == ["20", "10", "11", "12"]
    assert mapping == {"20": "20", "10": "10", "11": "11", "12": "12", "13": "11", "14": "10"}
    with pytest.raises(ValueError, match="negative count"):
        tax.subtree_counts({"12": -1})
    with pytest.raises(ValueError, match="depth must be >= 1"):
        tax.truncation_map(0)


def test_save_replaces_an_existing_file_and_round_trips(tmp_path):
    tax = _hand_built()
    path = tmp_path / "tree.json"
    path.write_text("old", encoding="utf-8")
    assert tax.save(path) == path
    assert path.read_text(encoding="utf-8").endswith("\n") and Taxonomy.load(path) == tax
    assert sorted(tmp_path.iterdir()) == [path]


def test_the_from_readers_are_the_functions_formats_registered():
    assert core._READERS == {"paths": formats.read_paths, "level_columns": formats.read_level_columns,
                             "google": formats.read_google, "shopify": formats.read_shopify,
                             "table": formats.read_table}
    with pytest.raises(TaxonomyError, match="no taxonomy reader 'nope' is registered"):
        core._reader("nope")


def test_names_differing_only_in_case_are_one_node_spelled_as_most_paths_spell_it():
    tax = Taxonomy.from_paths(["Apparel > Shirts", "apparel > shirts", "Apparel > Shirts > Polos", "apparel > Bags"])
    assert tax.classes(1) == ["Apparel"]  # three of four paths spell it "Apparel"
    assert tax.classes(2) == ["Apparel > Bags", "Apparel > Shirts"]  # "Shirts" 2 : 1; "Bags" only one spelling
    assert tax.find_path("apparel > shirts > polos").id == "Apparel > Shirts > Polos"
    assert tax.find_path("APPAREL > BAGS").id == "Apparel > Bags"
    assert tax.deepest_known_ancestor("apparel > shirts > tees").id == "Apparel > Shirts"
    assert tax.find_path("Apparel > Shoes") is None


def test_a_case_insensitive_lookup_that_fits_two_nodes_is_an_error_naming_both():
    nodes = [Node("1", "Bags", None, 1), Node("2", "BAGS", None, 1)]  # a hand-built tree may hold both spellings
    tax = Taxonomy(nodes)
    assert tax.find_path("BAGS").id == "2"  # an exact spelling still wins
    with pytest.raises(TaxonomyError, match=r"ambiguous.*'1', '2'"):
        tax.find_path("bags")
