"""The `Example:` sections of the taxonomy modules' docstrings and docs/taxonomy.md run as written."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

MODULES = ["linnet.taxonomy", "linnet.taxonomy.core", "linnet.taxonomy.formats", "linnet.taxonomy.mapping",
           "linnet.taxonomy.stats", "linnet.taxonomy.download"]
DOCS = Path(__file__).resolve().parents[2] / "docs" / "taxonomy.md"


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_docs_page_examples(monkeypatch):
    # The page's paths are relative to the repository root, as a reader would run them.
    root = DOCS.parents[1]
    if not (root.parent / "shared" / "data" / "taxonomy").is_dir():
        pytest.skip("../shared/data/taxonomy not found next to the repository")
    monkeypatch.chdir(root)
    result = doctest.testfile(str(DOCS), module_relative=False, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    assert result.attempted > 10
