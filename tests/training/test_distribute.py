"""Two workers on localhost under ``MultiWorkerMirroredStrategy`` train the tiny model with ``linnet train``.

The workers are started by ``training/launch_multi_worker.py`` (each its own process and ``TF_CONFIG``,
on free localhost ports, CPU only), as in training/README.md's worked example, for one epoch. Two
TensorFlow processes tracing the model take about 2.5 minutes on two shared cores under load (one
single-process ``linnet train`` of the same config takes about 70 s there).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from .conftest import tiny_config, write_tiny_catalog

ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = ROOT / "training" / "launch_multi_worker.py"


def _can_bind_two_localhost_ports() -> bool:
    sockets = []
    try:
        for _ in range(2):
            handle = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(handle)
            handle.bind(("localhost", 0))
        return True
    except OSError:
        return False
    finally:
        for handle in sockets:
            handle.close()


def test_two_workers_train_and_the_chief_writes_a_run_that_predicts(tmp_path):
    if not _can_bind_two_localhost_ports():
        pytest.skip("cannot bind TCP ports on localhost for the two workers")
    from linnet.training.run_directory import load_run

    catalog = write_tiny_catalog(tmp_path / "catalog.csv", rows=240)
    config = tmp_path / "tiny.yaml"
    # Checkpoints, backups and TensorBoard logs are other tests' business; here they would only add time.
    fit = {"epochs": 1, "checkpoints": False, "backup_and_restore": False, "tensorboard": False}
    config.write_text(yaml.safe_dump(tiny_config(training=fit)), encoding="utf-8")
    out = tmp_path / "run"
    command = [sys.executable, str(LAUNCHER), "--workers", "2", "--out", str(out), "--",
               "--catalog", str(catalog), "--config", str(config), "--text-columns", "title",
               "--category-column", "category", "--quiet"]
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "-1",
                   "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=900,
                            check=False)
    logs = "".join(f"\n--- {log.name}\n{log.read_text(errors='replace')[-3000:]}"
                   for log in sorted(tmp_path.glob("*.log")))
    assert "worker 0 finished with exit code 0" in result.stdout, result.stdout + logs
    assert "worker 1 finished with exit code 0" in result.stdout, result.stdout + logs
    assert result.returncode == 0, result.stdout + logs

    chief = load_run(out)
    assert chief.metrics["replicas"] == 2 and chief.metrics["epochs_run"] == 1
    assert np.isfinite(chief.metrics["history"]["loss"][0])
    import tensorflow as tf

    titles = ["blue denim jeans new", "black chelsea boots", "red tote bag"]
    outputs = chief.model({"title": tf.constant(titles)})
    level_1 = outputs["level_1"].numpy()
    assert level_1.shape == (3, len(chief.taxonomy.classes(1)))
    np.testing.assert_allclose(level_1.sum(axis=1), 1.0, rtol=1e-5)
    predicted = [chief.taxonomy.name(chief.taxonomy.classes(1)[index]) for index in level_1.argmax(axis=1)]
    assert predicted == ["Clothing", "Shoes", "Bags"]  # one epoch on half a batch each already learns level 1

    # Gradients were summed across the workers after every step, so worker 1's copy holds the same weights.
    worker = load_run(Path(f"{out}.worker-1"))
    for chief_weight, worker_weight in zip(chief.model.get_weights(), worker.model.get_weights(), strict=True):
        np.testing.assert_allclose(chief_weight, worker_weight, rtol=1e-6, atol=1e-6)


def test_the_keras_fixes_apply_only_across_several_workers():
    # One process (default strategy, MirroredStrategy) keeps running Keras's own trainer code.
    import tensorflow as tf
    from keras.src.backend.tensorflow import trainer as tf_trainer

    from linnet.training.distribute import is_multi_worker, keras_multi_worker_fixes

    original = (tf_trainer.reduce_per_replica, tf_trainer.TensorFlowTrainer._maybe_symbolic_build)
    strategy = tf.distribute.get_strategy()
    assert not is_multi_worker(strategy)
    with keras_multi_worker_fixes(strategy):
        assert (tf_trainer.reduce_per_replica, tf_trainer.TensorFlowTrainer._maybe_symbolic_build) == original
    assert (tf_trainer.reduce_per_replica, tf_trainer.TensorFlowTrainer._maybe_symbolic_build) == original


@pytest.mark.parametrize("strategy", ["mirrored", "multi_worker"])
def test_several_steps_per_execution_under_a_strategy_is_refused_with_the_key(strategy):
    # Keras 3.15 fails on it at the first step (keras-team/keras#19246); the config says so before training.
    from linnet.errors import ConfigError
    from linnet.training.config import TrainingConfig

    with pytest.raises(ConfigError, match=r"training\.steps_per_execution.*19246"):
        TrainingConfig.from_dict({"training": {"strategy": strategy, "steps_per_execution": 4}})
    assert TrainingConfig.from_dict({"training": {"strategy": strategy}}).training.steps_per_execution == 1
    assert TrainingConfig.from_dict({"training": {"steps_per_execution": 4}}).training.steps_per_execution == 4
