"""`linnet data inspect` and `linnet images fetch` through the argparse layer."""

import argparse
import json

import pytest

from linnet.cli import data as data_cli
from linnet.errors import ConfigError


def _run(argv):
    parser = argparse.ArgumentParser(prog="linnet")
    data_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_data_inspect_markdown_and_json(small_catalog, capsys):
    flags = ["--text-columns", "title", "--attribute-columns", "colour", "--category-column", "category",
             "--image-column", "image"]
    assert _run(["data", "inspect", str(small_catalog), *flags, "--check-images", "10"]) == 0
    out = capsys.readouterr().out
    assert "6 rows read, 6 usable, 0 bad" in out
    assert "| 1 | 3 | 3 | 6 | 100.0% | 3 | 1 | 3.0 | 3 |" in out  # level 1: Shoes 3, Bags 2, Accessories 1
    assert "| 2 | 4 | 4 | 5 | 83.3% |" in out
    assert "| missing_file | 1 |" in out and "| undecodable (of those checked) | 0 |" in out
    assert _run(["data", "inspect", str(small_catalog), *flags, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["images"]["file"] == 4 and report["text_lengths"]["title"]["max"] == len("Blue canvas sneakers")


def test_data_inspect_counts_bad_rows_and_unknown_labels(tmp_path, capsys):
    from linnet.taxonomy import Taxonomy

    catalog = tmp_path / "c.csv"
    catalog.write_text("id,title,category\n1,a,Shoes > Boots\n2,b,Shoes > Clogs\n2,c,Shoes > Boots\n3,d\n")
    tree_file = tmp_path / "tree.json"
    Taxonomy.from_paths(["Shoes > Boots"]).save(tree_file)
    _run(["data", "inspect", str(catalog), "--category-column", "category", "--taxonomy", str(tree_file)])
    out = capsys.readouterr().out
    assert "4 rows read, 1 usable, 2 bad" in out and "| Shoes > Clogs | 1 |" in out
    assert "line 4 (id '2'): field 'id': id '2' repeated" in out


def test_images_fetch_needs_an_image_column(small_catalog):
    with pytest.raises(ConfigError, match="--image-column"):
        _run(["images", "fetch", str(small_catalog), "--out", "x"])


def test_data_tfrecords_command_writes_shards_and_the_errors_file(small_catalog, tmp_path, capsys):
    from linnet.data.tfrecord import read_metadata

    bad = small_catalog.read_text() + "7,Broken,\n"
    small_catalog.write_text(bad)
    out = tmp_path / "records"
    code = _run(["data", "tfrecords", str(small_catalog), "--out", str(out), "--category-column", "category",
                 "--image-column", "image", "--errors-file", str(tmp_path / "errors.jsonl"),
                 "--examples-per-shard", "2"])
    assert code == 0
    metadata = read_metadata(out)
    assert sum(split["examples"] for split in metadata["splits"].values()) == 6
    assert "has 3 fields" in (tmp_path / "errors.jsonl").read_text()
    assert "1 bad rows" in capsys.readouterr().out
