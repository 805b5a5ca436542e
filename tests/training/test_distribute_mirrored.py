"""MirroredStrategy over two logical CPU devices trains the default text model (n-grams featurised in tf.data)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = r"""
import sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from conftest import tiny_config, write_tiny_catalog
from linnet.data import CatalogSchema
from linnet.training.trainer import train

work = Path(sys.argv[2])
catalog = write_tiny_catalog(work / "catalog.csv", rows=120)
schema = CatalogSchema(id_column="id", text_columns=["title"], category_column="category")
config = tiny_config(training={"strategy": "mirrored", "devices": ["/cpu:0", "/cpu:1"], "epochs": 3})
run = train(catalog, work / "run", schema=schema, config=config, progress=False)
losses = run.metrics["history"]["loss"]
print("RESULT", run.metrics["replicas"], losses[-1] < losses[0], sorted(run.model.output))
"""


def test_mirrored_strategy_over_two_cpus_trains(tmp_path):
    # Logical devices must be configured before TensorFlow starts, hence a child process.
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(Path(__file__).parent), str(tmp_path)], check=False,
        capture_output=True, text=True, timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert "RESULT 2 True ['embedding', 'level_1', 'level_2', 'level_3']" in result.stdout, result.stderr[-3000:]
