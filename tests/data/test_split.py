"""`linnet.data.split`: the deterministic split by id hash, optionally stratified."""

import numpy as np
import pytest

from linnet.data import assign_splits
from linnet.errors import ConfigError


def test_split_is_a_function_of_the_id_alone():
    ids = [f"sku-{number}" for number in range(20_000)]
    splits = assign_splits(ids)
    again = assign_splits(ids[::-1])[::-1]
    assert (splits == again).all()
    subset = assign_splits(ids[:500])
    assert (subset == splits[:500]).all()
    shares = {name: float((splits == name).mean()) for name in ("train", "validation", "test")}
    assert shares["train"] == pytest.approx(0.70, abs=0.015)
    assert shares["validation"] == pytest.approx(0.15, abs=0.01)
    assert (assign_splits(ids, salt="other") != splits).mean() > 0.3
    # pinned: the split of a product never changes between versions
    assert assign_splits(["15970", "39386", "59263", "21379", "a", "b", "c", "d"]).tolist() == [
        "test", "validation", "train", "train", "train", "train", "train", "validation"]


def test_stratified_split_gives_every_leaf_its_share():
    ids = [str(number) for number in range(300)]
    strata = np.array(["rare"] * 20 + ["common"] * 280)
    splits = assign_splits(ids, strata=strata)
    rare = splits[:20]
    assert (rare == "train").sum() == 14 and (rare == "validation").sum() == 3 and (rare == "test").sum() == 3
    assert (assign_splits(ids, strata=strata) == splits).all()


def test_bad_fractions():
    with pytest.raises(ConfigError, match="sum"):
        assign_splits(["a"], (0.5, 0.2, 0.2))
