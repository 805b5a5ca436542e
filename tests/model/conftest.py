"""Tiny trees and models for the model room's tests (built once per session)."""

from __future__ import annotations

import pytest

TINY_MODEL = {
    "text_encoder": {"name": "hashed_ngrams", "num_bins": 2048, "embedding_dim": 16},
    "fusion_dim": 32,
    "head_hidden_units": [32],
    "head_dropout": 0.0,
    "wide": {"num_buckets": 1024},
}

PATHS = ["Clothing > Shirts", "Clothing > Pants > Jeans", "Clothing > Pants > Chinos", "Shoes > Boots", "Shoes"]
TITLES = {
    "Clothing > Shirts": ["red cotton shirt", "blue linen shirt", "white oxford shirt"],
    "Clothing > Pants > Jeans": ["slim blue jeans", "black denim jeans", "ripped jeans"],
    "Clothing > Pants > Chinos": ["beige chinos", "navy chino trousers", "stretch chinos"],
    "Shoes > Boots": ["leather chelsea boots", "hiking boots", "rain boots"],
    "Shoes": ["shoes", "footwear", "pair of shoes"],
}


@pytest.fixture(scope="session")
def tiny_taxonomy():
    from linnet.taxonomy import Taxonomy

    return Taxonomy.from_paths(PATHS)


@pytest.fixture(scope="session")
def tiny_config():
    from linnet.model import ModelConfig

    return ModelConfig.from_dict(TINY_MODEL)


@pytest.fixture(scope="session")
def tiny_model(tiny_config, tiny_taxonomy):
    from linnet.model import build_model

    return build_model(tiny_config, tiny_taxonomy, ["title"])


@pytest.fixture(scope="session")
def tiny_examples(tiny_taxonomy):
    """``(titles [N], labels int32 [N, 3])``; products labelled "Shoes" have no level-2/3 label."""
    import numpy as np

    titles, paths = [], []
    for path, examples in TITLES.items():
        for title in examples:
            titles.append(title)
            paths.append(path)
    labels = tiny_taxonomy.encode(paths)
    return np.array(titles * 4), np.concatenate([labels] * 4)
