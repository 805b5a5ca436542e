"""A small labelled catalog (2-level tree, 240 products) written once per session."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

LEAVES = {
    "Apparel > Shirts": ["shirt", "oxford", "collar"],
    "Apparel > Dresses": ["dress", "gown", "maxi"],
    "Footwear > Boots": ["boots", "chelsea", "hiking"],
    "Footwear > Sandals": ["sandals", "flip", "strap"],
    "Home > Lamps": ["lamp", "bulb", "shade"],
}
COLOURS = ["red", "blue", "black", "white", "green"]


def make_catalog_frame(n: int = 240, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    leaves = list(LEAVES)
    rows = []
    for index in range(n):
        leaf = leaves[index % len(leaves)]
        words = list(rng.choice(LEAVES[leaf], size=2)) + [str(rng.choice(COLOURS))]
        if index % 17 == 0:  # a few confusing titles so scores are not all perfect
            words = [str(rng.choice(COLOURS)), "item"]
        rows.append({"id": f"p{index:04d}", "title": " ".join(words), "colour": words[-1], "path": leaf,
                     "value": float(1 + index % 3)})
    return pd.DataFrame(rows)


@pytest.fixture(scope="session")
def catalog_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("evaluation") / "catalog.csv"
    make_catalog_frame().to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def schema():
    from linnet.data import CatalogSchema

    return CatalogSchema(id_column="id", text_columns=["title"], attribute_columns=["colour"], category_column="path",
                         value_column="value")
