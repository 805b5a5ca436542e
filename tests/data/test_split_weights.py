import numpy as np
import pytest

from linnet.data import assign_splits, class_weights, sample_weights
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


def test_class_weights_balanced_sqrt_none_and_masked_sample_weights():
    labels = np.array([[0, 0], [0, 1], [0, 1], [1, -1]])
    balanced = class_weights(labels, [2, 3], "balanced")
    np.testing.assert_allclose(balanced["level_1"], [4 / (2 * 3), 4 / (2 * 1)])
    np.testing.assert_allclose(balanced["level_2"], [3 / (2 * 1), 3 / (2 * 2), 0.0])
    sqrt = class_weights(labels, [2, 3], "sqrt")
    raw = np.sqrt([4 / 6, 2.0])
    np.testing.assert_allclose(sqrt["level_1"], raw * 4 / (raw[0] * 3 + raw[1]), rtol=1e-6)
    assert sqrt["level_1"][1] / sqrt["level_1"][0] == pytest.approx(np.sqrt(3), rel=1e-5)
    none = class_weights(labels, [2, 3], "none")
    assert (none["level_2"] == 1).all()
    per_example = sample_weights(labels, balanced)
    np.testing.assert_allclose(per_example["level_1"], [2 / 3, 2 / 3, 2 / 3, 2.0], rtol=1e-6)
    np.testing.assert_allclose(per_example["level_2"], [1.5, 0.75, 0.75, 0.0])
    with pytest.raises(ConfigError, match="weighting"):
        class_weights(labels, [2, 3], "inverse")
