"""Session fixtures of the inference tests: one tiny model per taxonomy, built once."""

from __future__ import annotations

import pytest

from inference.tiny_models import build_tiny_model


@pytest.fixture(scope="session")
def tiny_model(tiny_taxonomy):
    return build_tiny_model(tiny_taxonomy)


@pytest.fixture(scope="session")
def google_taxonomy(google_taxonomy_file):
    from linnet.taxonomy import load_taxonomy

    return load_taxonomy(google_taxonomy_file)
