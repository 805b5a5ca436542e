"""`linnet.taxonomy.formats`: format sniffing and the readers, on small files the tests write."""

from __future__ import annotations

import json
import sys

import pytest

from linnet.errors import TaxonomyError
from linnet.taxonomy import Taxonomy, load_taxonomy, sniff_format

GOOGLE_WITH_IDS = """# Google_Product_Taxonomy_Version: 2021-09-21
1 - Animals & Pet Supplies
3237 - Animals & Pet Supplies > Live Animals
2 - Animals & Pet Supplies > Pet Supplies
3 - Animals & Pet Supplies > Pet Supplies > Bird Supplies
166 - Apparel & Accessories
"""

GOOGLE_GERMAN = """# Google_Product_Taxonomy_Version: 2021-09-21
1 - Tiere & Tierbedarf
3237 - Tiere & Tierbedarf > Lebende Tiere
2 - Tiere & Tierbedarf > Haustierbedarf
3 - Tiere & Tierbedarf > Haustierbedarf > Vogelzubehör
166 - Bekleidung & Accessoires
"""

SHOPIFY = """# Shopify Product Taxonomy - Categories: 2025-08-unstable
# Format: {GID} : {Ancestor name} > ... > {Category name}

gid://shopify/TaxonomyCategory/ap                : Animals & Pet Supplies
gid://shopify/TaxonomyCategory/ap-1              : Animals & Pet Supplies > Live Animals
gid://shopify/TaxonomyCategory/ap-2              : Animals & Pet Supplies > Pet Supplies
gid://shopify/TaxonomyCategory/aa                : Apparel & Accessories
"""


def write(folder, name, text):
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_google_with_ids(tmp_path):
    tax = load_taxonomy(write(tmp_path, "taxonomy-with-ids.en-US.txt", GOOGLE_WITH_IDS))
    assert tax.level_sizes() == [2, 2, 1]
    assert tax.version == "2021-09-21"
    assert tax.node("3").parent_id == "2"
    assert tax.path_string("3") == "Animals & Pet Supplies > Pet Supplies > Bird Supplies"
    assert tax.locales == ("en-US",)


def test_google_without_ids_gets_path_ids(tmp_path):
    text = "\n".join(
        [GOOGLE_WITH_IDS.splitlines()[0]] + [line.split(" - ", 1)[1] for line in GOOGLE_WITH_IDS.splitlines()[1:]]
    )
    path = write(tmp_path, "taxonomy.en-US.txt", text)
    assert sniff_format(path) == "google"
    tax = load_taxonomy(path)
    assert "Animals & Pet Supplies > Pet Supplies" in tax
    assert tax.node("Animals & Pet Supplies > Pet Supplies > Bird Supplies").level == 3
    # Path ids are stable: reading the file again gives the same fingerprint.
    assert load_taxonomy(path).fingerprint() == tax.fingerprint()


def test_google_locales_join_by_id(tmp_path):
    english = write(tmp_path, "taxonomy-with-ids.en-US.2021-09-21.txt", GOOGLE_WITH_IDS)
    german = write(tmp_path, "taxonomy-with-ids.de-DE.2021-09-21.txt", GOOGLE_GERMAN)
    tax = load_taxonomy([german, english])  # the English file is primary whatever the order
    assert tax.locales == ("en-US", "de-DE")
    assert tax.name("3") == "Bird Supplies"
    assert tax.name("3", "de-DE") == "Vogelzubehör"
    assert tax.path("3", "de-DE") == ("Tiere & Tierbedarf", "Haustierbedarf", "Vogelzubehör")
    assert tax.find_path("Tiere & Tierbedarf > Lebende Tiere", locale="de-DE").id == "3237"


def test_shopify(tmp_path):
    path = write(tmp_path, "en/categories.txt", SHOPIFY)
    assert sniff_format(path) == "shopify"
    tax = load_taxonomy(path)
    assert tax.version == "2025-08-unstable"
    assert tax.level_sizes() == [2, 2]
    assert tax.node("gid://shopify/TaxonomyCategory/ap-2").parent_id == "gid://shopify/TaxonomyCategory/ap"
    assert tax.locales == ("en",)


def test_json_round_trip_through_load(tmp_path, tiny_taxonomy):
    path = tiny_taxonomy.save(tmp_path / "tree.json")
    assert sniff_format(path) == "json"
    again = load_taxonomy(path)
    assert again == tiny_taxonomy
    assert again.to_json() == tiny_taxonomy.to_json()


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".json"])
def test_tables(tmp_path, suffix):
    rows = [("10", "", "Shoes", "Schuhe"), ("11", "10", "Boots", "Stiefel"), ("12", "", "Bags", "Taschen")]
    if suffix in (".csv", ".tsv"):
        sep = "," if suffix == ".csv" else "\t"
        text = sep.join(["id", "parent_id", "name", "name_de"]) + "\n" + "\n".join(sep.join(row) for row in rows)
    else:
        entries = [{"id": i, "parent_id": p or None, "name": n, "names": {"de": d}} for i, p, n, d in rows]
        lines = [json.dumps(entry) for entry in entries]
        text = "\n".join(lines) if suffix == ".jsonl" else "[\n" + ",\n".join(lines) + "\n]"
    path = write(tmp_path, "tree" + suffix, text)
    assert sniff_format(path) == "table"
    tax = load_taxonomy(path)
    assert [node.id for node in tax.nodes] == ["10", "11", "12"]
    assert tax.node("11").level == 2
    assert tax.name("11", "de") == "Stiefel"


def test_path_list_with_sniffed_separator(tmp_path):
    path = write(tmp_path, "paths.txt", "Shoes >> Boots\nShoes >> Sandals\nBags\n")
    tax = load_taxonomy(path)
    assert tax.classes(2) == ["Shoes > Boots", "Shoes > Sandals"]


def test_missing_file_is_a_taxonomy_error(tmp_path):
    with pytest.raises(TaxonomyError, match="not found"):
        load_taxonomy(tmp_path / "nope.txt")


def test_tiny_taxonomy_fixture(tiny_taxonomy):
    assert isinstance(tiny_taxonomy, Taxonomy)
    assert tiny_taxonomy.level_sizes() == [3, 4, 3]


def test_importing_the_package_does_not_import_tensorflow():
    import subprocess

    code = "import sys, linnet.taxonomy, linnet.cli.taxonomy; print('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_hash_names_after_the_header_are_categories(tmp_path):
    path = write(tmp_path, "taxonomy.en-US.txt", GOOGLE_WITH_IDS.splitlines()[0] + "\nMusic\n#1 Hits\nMusic > #1 Hits\n")
    tax = load_taxonomy(path)
    assert tax.classes(1) == ["Music", "#1 Hits"]
    assert "Music > #1 Hits" in tax
