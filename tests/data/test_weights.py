"""`linnet.data.weights`: class weights per level and the per-example weights they give."""

import numpy as np
import pytest

from linnet.data import class_weights, sample_weights
from linnet.errors import ConfigError


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
