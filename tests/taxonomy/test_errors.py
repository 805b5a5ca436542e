"""Every bad-input case raises TaxonomyError naming the file, the line number and the offending text."""

from __future__ import annotations

import re

import pytest

from linnet.errors import TaxonomyError
from linnet.taxonomy import (
    Taxonomy,
    TaxonomyMapping,
    load_shopify_google_mapping,
    load_taxonomy,
)

GOOGLE_HEADER = "# Google_Product_Taxonomy_Version: 2021-09-21\n"
SHOPIFY_HEADER = "# Shopify Product Taxonomy - Categories: 2025-08-unstable\n"
GID = "gid://shopify/TaxonomyCategory/"

# (case, file name, content, line number, text the message must quote)
CASES = [
    ("google malformed", "g.txt", GOOGLE_HEADER + "1 - A\n3237 A > B\n", 3, "3237 A > B"),
    ("google duplicate id", "g.txt", GOOGLE_HEADER + "1 - A\n2 - B\n1 - C\n", 4, "'1'"),
    ("google unknown parent", "g.txt", GOOGLE_HEADER + "1 - A\n2 - A > B\n3 - A > X > C\n", 4, "A > X > C"),
    ("google empty name", "g.txt", GOOGLE_HEADER + "1 - A\n2 - A >  > C\n", 3, "A >  > C"),
    ("google trailing separator", "g.txt", GOOGLE_HEADER + "1 - A\n2 - A > \n", 3, "A >"),
    ("google mixed separators", "g.txt", GOOGLE_HEADER + "1 - A\n2 - A >> B\n", 3, "A >> B"),
    ("google id in a file without ids", "g.txt", GOOGLE_HEADER + "A\nA > B\n7 - A > C\n", 4, "7 - A > C"),
    ("shopify malformed", "en/categories.txt", SHOPIFY_HEADER + f"{GID}a : A\n{GID}a-1 A > B\n", 3, "a-1 A > B"),
    ("shopify duplicate id", "en/categories.txt", SHOPIFY_HEADER + f"{GID}a : A\n{GID}a : B\n", 3, f"'{GID}a'"),
    ("shopify unknown parent", "en/categories.txt", SHOPIFY_HEADER + f"{GID}a : A\n\n{GID}a-1-1 : A > B > C\n", 4, "A > B > C"),
    ("shopify empty name", "en/categories.txt", SHOPIFY_HEADER + f"{GID}a : A\n{GID}a-1 : A > \u00a0\n", 3, "A >"),
    ("table malformed row", "t.csv", "id,parent_id,name\n1,,A\n2,1\n", 3, "2,1"),
    ("table duplicate id", "t.csv", "id,parent_id,name\n1,,A\n2,1,B\n2,1,C\n", 4, "'2'"),
    ("table unknown parent", "t.tsv", "id\tparent_id\tname\n1\t\tA\n2\t9\tB\n", 3, "'9'"),
    ("table cycle", "t.csv", "id,parent_id,name\n1,,A\n2,3,B\n3,2,C\n", 3, "2 -> 3 -> 2"),
    ("table empty name", "t.csv", "id,parent_id,name\n1,,A\n2,1,  \n", 3, "'2'"),
    ("jsonl empty name", "t.jsonl", '{"id": 1, "parent_id": null, "name": "A"}\n{"id": 2, "parent_id": 1, "name": ""}\n', 2, "'id': 2"),
    ("jsonl malformed", "t.jsonl", '{"id": 1, "parent_id": null, "name": "A"}\n{"id": 2,\n', 2, '{"id": 2,'),
    ("json list duplicate id", "t.json",
     '[\n{"id": 1, "parent_id": null, "name": "A"},\n{"id": 1, "parent_id": null, "name": "B"}\n]\n', 3, "'1'"),
    ("paths mixed separators", "p.txt", "A > B\nA > C\nA >> D\n", 3, "A >> D"),
    ("paths empty name", "p.txt", "A > B\n\nA >  > D\n", 3, "A >  > D"),
]


@pytest.mark.parametrize("case,name,content,line,text", CASES, ids=[case[0] for case in CASES])
def test_bad_file_names_file_line_and_text(tmp_path, case, name, content, line, text):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")
    with pytest.raises(TaxonomyError) as caught:
        load_taxonomy(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert text in message, message


def test_non_utf8_file_names_the_line(tmp_path):
    path = tmp_path / "g.txt"
    path.write_bytes(GOOGLE_HEADER.encode() + b"1 - A\n2 - A > B\xe9\n")
    with pytest.raises(TaxonomyError, match=re.escape(f"{path}:3: not UTF-8")):
        load_taxonomy(path)


def test_from_paths_names_the_path_number():
    with pytest.raises(TaxonomyError, match=r"path 2: mixed separators .*'A >> B'"):
        Taxonomy.from_paths(["A > C", "A >> B"])
    with pytest.raises(TaxonomyError, match=r"path 1: empty path"):
        Taxonomy.from_paths([""])


def test_locales_of_different_versions_do_not_join(tmp_path):
    english = tmp_path / "taxonomy-with-ids.en-US.txt"
    german = tmp_path / "taxonomy-with-ids.de-DE.txt"
    english.write_text(GOOGLE_HEADER + "1 - A\n", encoding="utf-8")
    german.write_text("# Google_Product_Taxonomy_Version: 2015-02-19\n1 - A\n", encoding="utf-8")
    with pytest.raises(TaxonomyError, match="different versions"):
        load_taxonomy([english, german])


def test_mapping_file_errors(tmp_path):
    shop = Taxonomy.from_paths(["Pets > Birds"])
    goog = Taxonomy.from_paths(["Animals > Bird Supplies"])
    path = tmp_path / "map.txt"
    path.write_text("# header\n→ Pets\n⇒ Animals\n\n→ Pets > Fish\n⇒ Animals\n", encoding="utf-8")
    with pytest.raises(TaxonomyError, match=re.escape(f"{path}:5: Shopify path not in the Shopify tree: 'Pets > Fish'")):
        load_shopify_google_mapping(path, shopify=shop, google=goog)
    path.write_text("→ Pets\n⇒ Animals\n⇒ Animals\n", encoding="utf-8")
    with pytest.raises(TaxonomyError, match=re.escape(f"{path}:3: ⇒ target without")):
        load_shopify_google_mapping(path, shopify=shop, google=goog)
    path.write_text("→ Pets\n⇒ Animals\n→ Pets\n⇒ Animals > Bird Supplies\n", encoding="utf-8")
    with pytest.raises(TaxonomyError, match=re.escape(f"{path}:3: Shopify category mapped twice (first on line 1)")):
        load_shopify_google_mapping(path, shopify=shop, google=goog)
    path.write_text("→ Pets > Birds\n⇒ Animals > Birds\n", encoding="utf-8")
    with pytest.raises(TaxonomyError, match=re.escape(f"{path}:2: Google path not in the Google tree")):
        load_shopify_google_mapping(path, shopify=shop, google=goog)
    with pytest.raises(TaxonomyError, match="target id"):
        TaxonomyMapping(shop, goog, {"Pets": "Plants"})


@pytest.mark.parametrize("bad", [None, float("nan"), 3])
def test_from_paths_rejects_missing_paths_with_their_number(bad):
    with pytest.raises(TaxonomyError, match="path 2: a path must be a string"):
        Taxonomy.from_paths(["A > B", bad])
