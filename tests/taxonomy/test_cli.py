"""``linnet taxonomy`` sub-commands, run in-process through the real parser."""

from __future__ import annotations

import pytest

from linnet.cli.main import main
from linnet.taxonomy import load_taxonomy


def test_stats_prints_nodes_per_level(tmp_path, tiny_taxonomy, capsys):
    path = tiny_taxonomy.save(tmp_path / "tree.json")
    assert main(["taxonomy", "stats", str(path)]) == 0
    out = capsys.readouterr().out
    assert "nodes: 10" in out
    assert "  1: 3\n  2: 4\n  3: 3\n" in out


def test_stats_on_the_real_google_file(google_taxonomy_file, capsys):
    assert main(["taxonomy", "stats", str(google_taxonomy_file)]) == 0
    out = capsys.readouterr().out
    assert "nodes: 5595" in out
    assert "  1: 21\n" in out
    assert "  7: 48\n" in out
    assert "levels: 7" in out


def test_bad_file_exits_2_with_line_number(tmp_path, capsys):
    path = tmp_path / "taxonomy-with-ids.en-US.txt"
    path.write_text("# Google_Product_Taxonomy_Version: 2021-09-21\n1 - A\noops\n", encoding="utf-8")
    assert main(["taxonomy", "stats", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:3:" in err and "oops" in err


@pytest.mark.parametrize("target,suffix", [("json", ".json"), ("table", ".csv"), ("google", ".txt"), ("paths", ".txt")])
def test_convert_round_trips_the_label_space(tmp_path, tiny_taxonomy, target, suffix):
    source = tiny_taxonomy.save(tmp_path / "tree.json")
    output = tmp_path / f"out-{target}{suffix}"
    assert main(["taxonomy", "convert", str(source), "--to", target, "-o", str(output)]) == 0
    again = load_taxonomy(output)
    assert again.level_sizes() == tiny_taxonomy.level_sizes()
    assert [again.path(node.id) for node in again.nodes] == [tiny_taxonomy.path(node.id) for node in tiny_taxonomy.nodes]


def test_convert_truncates(tmp_path, tiny_taxonomy):
    source = tiny_taxonomy.save(tmp_path / "tree.json")
    output = tmp_path / "two.json"
    assert main(["taxonomy", "convert", str(source), "--depth", "2", "-o", str(output)]) == 0
    assert load_taxonomy(output).level_sizes() == [3, 4]


def test_show_prints_an_indented_subtree(tmp_path, tiny_taxonomy, capsys):
    source = tiny_taxonomy.save(tmp_path / "tree.json")
    assert main(["taxonomy", "show", str(source), "--node", "Clothing > Tops", "--ids"]) == 0
    out = capsys.readouterr().out
    assert "path: Clothing > Tops" in out
    assert "level: 2" in out
    assert "Tops  [Clothing > Tops]\n  Shirts  [Clothing > Tops > Shirts]\n  T-Shirts" in out


def test_ids_only_a_secondary_locale_has_are_reported(tmp_path, capsys):
    english = tmp_path / "taxonomy-with-ids.en-US.txt"
    german = tmp_path / "taxonomy-with-ids.de-DE.txt"
    english.write_text("# Google_Product_Taxonomy_Version: 2021-09-21\n1 - Animals\n", encoding="utf-8")
    german.write_text("# Google_Product_Taxonomy_Version: 2021-09-21\n1 - Tiere\n77 - Pflanzen\n", encoding="utf-8")
    assert main(["taxonomy", "stats", str(english), str(german), "--json"]) == 0
    captured = capsys.readouterr()
    assert "warning:" in captured.err and "1 ids" in captured.err and "'77'" in captured.err
    assert '"nodes": 1' in captured.out and '"de-DE"' in captured.out
