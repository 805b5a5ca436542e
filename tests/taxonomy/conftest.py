"""Real taxonomy files from ../shared/data/taxonomy, loaded once per session; tests skip when absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from linnet.taxonomy import load_taxonomy


@pytest.fixture(scope="session")
def taxonomy_data(shared_data: Path) -> Path:
    path = shared_data / "taxonomy"
    if not path.is_dir():
        pytest.skip(f"taxonomy data not found at {path}")
    return path


@pytest.fixture(scope="session")
def google_2021(google_taxonomy_file):
    return load_taxonomy(google_taxonomy_file)


@pytest.fixture(scope="session")
def shopify_en_file(taxonomy_data: Path) -> Path:
    path = taxonomy_data / "shopify" / "en" / "categories.txt"
    if not path.is_file():
        pytest.skip(f"Shopify taxonomy not found at {path}")
    return path


@pytest.fixture(scope="session")
def shopify_en(shopify_en_file):
    return load_taxonomy(shopify_en_file)
