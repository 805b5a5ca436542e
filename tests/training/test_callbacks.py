"""BackupAndRestore: a run killed after an epoch resumes with ``resume=True`` and ends with the same weights."""

from __future__ import annotations

import numpy as np
import pytest

from linnet.errors import ConfigError

from .conftest import Killed, kill_after_epoch, tiny_config


def test_interrupted_run_resumes_to_the_uninterrupted_result(tiny_run, tiny_catalog_file, tiny_schema,
                                                            tiny_taxonomy, tmp_path):
    from linnet.training.trainer import train

    out = tmp_path / "killed"
    with pytest.raises(Killed):
        train(tiny_catalog_file, out, schema=tiny_schema, config=tiny_config(), taxonomy=tiny_taxonomy,
              progress=False, callbacks=[kill_after_epoch(2)])
    assert (out / "state" / "backup").is_dir() and not (out / "model.keras").exists()
    with pytest.raises(ConfigError, match="--resume"):
        train(tiny_catalog_file, out, schema=tiny_schema, config=tiny_config(), taxonomy=tiny_taxonomy, progress=False)

    resumed = train(tiny_catalog_file, out, schema=tiny_schema, config=tiny_config(), taxonomy=tiny_taxonomy,
                    progress=False, resume=True)
    assert resumed.metrics["resumed_from_epoch"] == 2
    assert resumed.metrics["epochs_run"] == 1  # only the third epoch ran again
    # tiny_run is the same config trained without interruption (dropout on: seed states are restored too).
    assert resumed.metrics["history"]["loss"][-1] == pytest.approx(tiny_run.metrics["history"]["loss"][-1], rel=1e-6)
    for uninterrupted, continued in zip(tiny_run.model.get_weights(), resumed.model.get_weights()):
        np.testing.assert_allclose(continued, uninterrupted, rtol=1e-6, atol=1e-7)
