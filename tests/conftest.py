"""Fixtures shared by every room's tests.

Room-specific fixtures live in ``tests/<room>/conftest.py``. Anything that builds a TensorFlow model is
session-scoped: importing TensorFlow and building graphs is the slow part of this suite.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("LINNET_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (or ``$LINNET_SHARED_DATA``); skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def fashion_dir(shared_data: Path) -> Path:
    path = shared_data / "fashion_product_images"
    if not (path / "styles.csv").is_file():
        pytest.skip(f"fashion catalogue not found at {path}")
    return path


@pytest.fixture(scope="session")
def google_taxonomy_file(shared_data: Path) -> Path:
    path = shared_data / "taxonomy" / "google" / "taxonomy-with-ids.en-US.2021-09-21.txt"
    if not path.is_file():
        pytest.skip(f"Google taxonomy not found at {path}")
    return path


@pytest.fixture(scope="session")
def tiny_taxonomy():
    """A handwritten 3-level tree (6 leaves at depths 1 to 3) that every room's tests can share.

    Level sizes ``[3, 4, 3]``; class order is by name within each parent. ``"Bags"`` is a leaf at level 1,
    ``"Shoes > Sandals"`` a leaf at level 2.
    """
    from linnet.taxonomy import Taxonomy

    return Taxonomy.from_paths(
        [
            "Clothing > Tops > T-Shirts",
            "Clothing > Tops > Shirts",
            "Clothing > Trousers > Jeans",
            "Shoes > Boots",
            "Shoes > Sandals",
            "Bags",
        ],
        source="tiny_taxonomy fixture",
    )
