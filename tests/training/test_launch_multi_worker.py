"""``training/launch_multi_worker.py``: the TF_CONFIG and command line it gives each worker (nothing started).

These tests check what the launcher writes without starting anything; test_distribute.py
starts a real two-worker run through it.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

LAUNCHER = Path(__file__).resolve().parents[2] / "training" / "launch_multi_worker.py"


@pytest.fixture(scope="module")
def launcher():
    spec = importlib.util.spec_from_file_location("launch_multi_worker", LAUNCHER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_worker_gets_the_cluster_and_its_own_index(launcher):
    ports = launcher.free_ports(3)
    assert len(set(ports)) == 3 and all(1024 <= port < 65536 for port in ports)
    workers = [f"localhost:{port}" for port in ports]
    jobs = launcher.plan(["--catalog", "c.csv", "--epochs", "2"], "runs/x", workers, [0, 1, 2])
    for index, job in enumerate(jobs):
        assert job["tf_config"] == {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        command = job["command"]
        assert command[1:4] == ["-m", "linnet", "train"]
        assert command[command.index("--strategy") + 1] == "multi_worker"
        assert command[command.index("--epochs") + 1] == "2"
    outs = [job["command"][job["command"].index("--out") + 1] for job in jobs]
    assert outs == ["runs/x", "runs/x.worker-1", "runs/x.worker-2"]  # only the chief writes the real run
    with pytest.raises(ValueError, match="outside the cluster"):
        launcher.tf_config(workers, 3)


def test_dry_run_prints_a_tf_config_per_worker(launcher, capsys):
    assert launcher.main(["--workers", "2", "--out", "runs/y", "--dry-run", "--", "--catalog", "c.csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    configs = [json.loads(line.split("'")[1]) for line in lines]
    assert [config["task"]["index"] for config in configs] == [0, 1]
    assert configs[0]["cluster"] == configs[1]["cluster"] and len(configs[0]["cluster"]["worker"]) == 2


def test_several_machines_start_only_their_own_task(launcher, capsys):
    hosts = "10.0.0.1:2222,10.0.0.2:2222"
    assert launcher.main(["--hosts", hosts, "--index", "1", "--out", "runs/z", "--dry-run", "--", "--catalog", "c"]) == 0
    (line,) = capsys.readouterr().out.strip().splitlines()
    config = json.loads(line.split("'")[1])
    assert config == {"cluster": {"worker": ["10.0.0.1:2222", "10.0.0.2:2222"]}, "task": {"type": "worker", "index": 1}}
    assert line.endswith("--out runs/z.worker-1")


def test_the_launcher_owns_out_and_strategy(launcher):
    with pytest.raises(SystemExit):
        launcher.main(["--out", "runs/a", "--", "--catalog", "c.csv", "--out", "elsewhere"])
    with pytest.raises(SystemExit):
        launcher.main(["--out", "runs/a", "--", "--catalog", "c.csv", "--strategy", "mirrored"])


def test_linnet_train_accepts_the_strategy_flag():
    from linnet.cli.main import build_parser

    args = build_parser().parse_args(["train", "--catalog", "c.csv", "--out", "o", "--strategy", "multi_worker"])
    assert args.strategy == "multi_worker"
