"""The real Google and Shopify files in ../shared/data/taxonomy (skipped when the folder is absent)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from linnet.taxonomy import TaxonomyMapping, load_shopify_google_mapping, load_taxonomy

GOOGLE_2015_LOCALES = ["en-US", "de-DE", "fr-FR", "es-ES", "it-IT", "ru-RU", "ja-JP"]


def test_google_2021(google_2021):
    assert len(google_2021) == 5595
    assert len(google_2021.roots) == 21
    assert google_2021.num_levels == 7
    assert google_2021.level_sizes() == [21, 192, 1349, 2203, 1385, 397, 48]
    assert google_2021.version == "2021-09-21"
    assert google_2021.path_string("3237") == "Animals & Pet Supplies > Live Animals"
    # The repaired non-ASCII names read as NFC text.
    assert google_2021.find_path("Arts & Entertainment > Party & Celebration > Party Supplies > Piñatas") is not None


def test_google_2021_masks_and_codes(google_2021):
    for level in range(2, google_2021.num_levels + 1):
        mask = google_2021.child_mask(level)
        assert mask.shape == (google_2021.level_sizes()[level - 2], google_2021.level_sizes()[level - 1])
        assert (mask.sum(axis=0) == 1).all()
    ids = [node.id for node in google_2021.nodes]
    codes = google_2021.encode(ids)
    assert google_2021.decode(codes) == ids
    assert np.array_equal((codes >= 0).sum(axis=1), [node.level for node in google_2021.nodes])


def test_google_2015_locales_join_by_id(taxonomy_data):
    files = [taxonomy_data / "google" / f"taxonomy-with-ids.{locale}.2015-02-19.txt" for locale in GOOGLE_2015_LOCALES]
    if not all(path.is_file() for path in files):
        pytest.skip("Google 2015 locale files not found")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tree = load_taxonomy(files)
    assert len(tree) == 5427
    assert len(tree.roots) == 21 and tree.num_levels == 7
    assert tree.version == "2015-02-19"
    assert set(tree.locales) == set(GOOGLE_2015_LOCALES) and tree.locales[0] == "en-US"
    assert tree.path("3237", "de-DE") == ("Tiere & Tierbedarf", "Lebende Tiere")
    assert tree.find_path("Tiere & Tierbedarf > Lebende Tiere", locale="de-DE").id == "3237"
    # Six locales translate every node; ja-JP lacks 3 and has 18 ids of its own, which are reported.
    for locale in GOOGLE_2015_LOCALES[:-1]:
        assert sum(locale in node.names for node in tree.nodes) == 5427
    assert sum("ja-JP" in node.names for node in tree.nodes) == 5424
    assert any("ja-JP" in str(warning.message) and "18 ids" in str(warning.message) for warning in caught)


def test_shopify_en(shopify_en):
    assert len(shopify_en) == 10595
    assert len(shopify_en.roots) == 26
    assert shopify_en.num_levels == 8
    assert shopify_en.version == "2025-08-unstable"
    assert shopify_en.node("gid://shopify/TaxonomyCategory/ap-2-1").name == "Bird Supplies"


def test_shopify_locales_join(taxonomy_data):
    files = [taxonomy_data / "shopify" / locale / "categories.txt" for locale in ("de", "en", "fr")]
    if not all(path.is_file() for path in files):
        pytest.skip("Shopify locale files not found")
    tree = load_taxonomy(files)
    assert len(tree) == 10595 and tree.locales == ("en", "de", "fr")
    assert all(len(node.names) == 3 for node in tree.nodes)


def test_shopify_to_google_mapping_resolves(taxonomy_data, shopify_en, google_2021):
    folder = taxonomy_data / "shopify" / "en" / "integrations"
    by_name = folder / "shopify_2025-08_to_google_2021-09-21.txt"
    by_id = folder / "shopify_2025-08_to_google_2021-09-21.tsv"
    if not by_name.is_file() or not by_id.is_file():
        pytest.skip("Shopify mapping files not found")
    mapping = load_shopify_google_mapping(by_name, shopify=shopify_en, google=google_2021)
    assert len(mapping) == 10535
    assert len(set(mapping.values())) == 5456
    assert mapping["gid://shopify/TaxonomyCategory/ap-1"] == "3237"
    # Shopify's names and the derived id table agree on every pair.
    assert load_shopify_google_mapping(by_id, shopify=shopify_en, google=google_2021) == mapping
    report = TaxonomyMapping(shopify_en, google_2021, mapping)
    assert len(report.unmapped) == 60
    assert report.map_path("gid://shopify/TaxonomyCategory/ap-2-1") == "Animals & Pet Supplies > Pet Supplies > Bird Supplies"
    # Labels of a model trained on Shopify, reported in Google's tree, encode as Google classes.
    mapped = [target for target in report.map_many(node.id for node in shopify_en.nodes) if target is not None]
    assert google_2021.encode(mapped).shape == (len(mapped), 7)
