"""Tiny synthetic shopping logs with a known structure, shared by the sessions tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

GROUPS = 4
ITEMS_PER_GROUP = 6
DAY = 86_400


def planted_log(users: int = 120, baskets: int = 6, seed: int = 0) -> pd.DataFrame:
    """Each user shops in one group of items only (items ``g<group>_<n>``); every basket holds 3 of them."""
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(users):
        group = user % GROUPS
        for basket in range(baskets):
            chosen = rng.choice(ITEMS_PER_GROUP, size=3, replace=False)
            when = pd.Timestamp("2020-01-01") + pd.Timedelta(days=int(10 * basket + user % 7))
            for item in chosen:
                rows.append({"order": f"o{user}_{basket}", "sku": f"g{group}_{item}", "qty": 1,
                             "when": when.strftime("%Y-%m-%d %H:%M:%S"), "customer": f"c{user}",
                             "name": f"group {group} thing {item}"})
    return pd.DataFrame(rows)


@pytest.fixture(scope="session")
def planted_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("sessions") / "events.csv"
    planted_log().to_csv(path, index=False)
    return path


SCHEMA_FLAGS = ["--user-column", "customer", "--item-column", "sku", "--time-column", "when",
                "--basket-column", "order", "--quantity-column", "qty", "--title-column", "name"]
