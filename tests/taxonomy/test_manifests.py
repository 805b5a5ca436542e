"""The repository's taxonomy/*.json manifests agree with the download sources and the shared copies."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from linnet.taxonomy import load_taxonomy
from linnet.taxonomy.sources import SOURCES

MANIFESTS = Path(__file__).resolve().parents[2] / "taxonomy"


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_manifest_matches_sources(name):
    manifest = json.loads((MANIFESTS / f"{name}.json").read_text(encoding="utf-8"))
    source = SOURCES[name]
    assert manifest["url_template"] == source.url_template
    assert manifest["cache_path_template"] == source.relative_template
    assert tuple(manifest["locales"]) == source.locales
    assert all(len(copy["sha256"]) == 64 for copy in manifest["known_copies"])


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_known_copies_match_their_checksums(name, shared_data):
    manifest = json.loads((MANIFESTS / f"{name}.json").read_text(encoding="utf-8"))
    for copy in manifest["known_copies"]:
        path = shared_data / copy["shared_path"]
        if not path.is_file():
            pytest.skip(f"{path} not found")
        assert hashlib.sha256(path.read_bytes()).hexdigest() == copy["sha256"], path
        if "nodes" in copy and copy.get("locale") in ("en-US", "en"):
            tree = load_taxonomy(path)
            assert (len(tree), len(tree.roots), tree.num_levels) == (copy["nodes"], copy["roots"], copy["levels"])
