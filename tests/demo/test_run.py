"""`linnet demo --quick` end to end: every output exists and the printed numbers are metrics.json's; and
each step calls the library as the `linnet` command it prints does."""

from __future__ import annotations

import importlib
import inspect
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

import linnet.demo.run as demo_run


@pytest.fixture(scope="module")
def quick_demo(fashion_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "linnet-demo"
    result = subprocess.run(
        [sys.executable, "-m", "linnet", "demo", "--quick", "--data", str(fashion_dir), "--out", str(out)],
        capture_output=True, text=True, timeout=900, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return out, result.stdout


def test_quick_demo_writes_every_artifact(quick_demo):
    out, _ = quick_demo
    run_dir = out / "run"
    for name in ("config.yaml", "schema.yaml", "taxonomy.json", "model.keras", "metrics.json", "mlflow.db"):
        assert (run_dir / name).is_file(), name
    assert json.loads((out / "calibration.json").read_text())["level_thresholds"]
    versions = list((out / "exports" / "fashion").iterdir())
    assert [path.name for path in versions] == ["1"]
    assert (versions[0] / "saved_model.pb").is_file()
    assert (out / "evaluation" / "report.md").is_file()
    assert list((out / "evaluation").glob("*.png")), "the report has no plots"


def test_printed_comparison_matches_metrics_json(quick_demo):
    out, stdout = quick_demo
    metrics = json.loads((out / "evaluation" / "metrics.json").read_text())
    row = next(line for line in stdout.splitlines() if line.startswith("| LinNét (default)"))
    printed = [float(cell) for cell in re.findall(r"\d+\.\d+", row)]
    expected = [metrics[key] for key in ("hierarchical_precision", "hierarchical_recall", "hierarchical_f1",
                                         "leaf_accuracy", "coverage")]
    assert printed == pytest.approx(expected, abs=5e-5)


def test_held_out_products_are_classified_by_the_reloaded_export(quick_demo):
    _, stdout = quick_demo
    predicted = [line for line in stdout.splitlines() if line.strip().startswith("predicted:")]
    assert len(predicted) == 5
    assert any(" > " in line for line in predicted), "no held-out product got a path"


def test_demo_refuses_to_overwrite_a_run(quick_demo, fashion_dir):
    out, _ = quick_demo
    result = subprocess.run(
        [sys.executable, "-m", "linnet", "demo", "--quick", "--data", str(fashion_dir), "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2 and "already exists" in result.stderr


# ------------------------------------------------------------------------------------ the printed commands
KAGGLE_STYLES = (
    "id,gender,masterCategory,subCategory,articleType,baseColour,season,year,usage,productDisplayName\n"
    + "".join(f"{i},Men,Apparel,Topwear,Shirts,Blue,Fall,2011,Casual,Blue Shirt {i}\n" for i in range(12))
)
# The library functions each step calls: the name the demo imports -> the module the command imports it from.
STEP_FUNCTIONS = {
    "train": "linnet.training.trainer",
    "calibrate_model": "linnet.evaluation.evaluate",
    "export_run": "linnet.serving.export",
    "evaluate_baseline": "linnet.evaluation.evaluate",
    "evaluate_model": "linnet.evaluation.evaluate",
}


def _plain(value):
    """A call argument in a form both callers agree on: paths as text, configs and schemas as dicts, an
    empty collection as None (the library reads ``x or ()``)."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, (list, tuple, dict)) and not value:
        return None
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return str(value) if isinstance(value, Path) else value


def _recorders(monkeypatch, target, export_dir, calls):
    """Replaces each step's library function in ``target(name)`` by a recorder with canned results."""
    metrics = {key: 0.5 for key in demo_run.COMPARED_METRICS}
    results = {
        "train": None,
        "calibrate_model": (SimpleNamespace(level_thresholds=[0.5], node_thresholds={},
                                            report={"levels": [], "nodes": []}), []),
        "export_run": export_dir,
        "evaluate_baseline": {**metrics, "training_seconds": 1.0},
        "evaluate_model": metrics,
    }
    for name, module in STEP_FUNCTIONS.items():
        real = getattr(importlib.import_module(module), name)

        def record(*args, _name=name, _real=real, **kwargs):
            bound = inspect.signature(_real).bind(*args, **kwargs)
            bound.apply_defaults()
            calls.append((_name, {key: _plain(value) for key, value in bound.arguments.items()}))
            return results[_name]

        monkeypatch.setattr(target(name, module), name, record)


def test_each_step_calls_the_library_as_its_printed_command_does(monkeypatch, tmp_path, capsys):
    from linnet.cli.main import main

    data = tmp_path / "data"
    data.mkdir()
    (data / "styles.csv").write_text(KAGGLE_STYLES, encoding="utf-8")
    out = tmp_path / "out"
    export_dir = out / "exports" / demo_run.EXPORT_NAME / "1"
    monkeypatch.setattr(demo_run, "classify_in_fresh_process", lambda *args: [])
    monkeypatch.setattr(demo_run, "_held_out_ids", lambda *args: [])

    demo_calls = []
    _recorders(monkeypatch, lambda name, module: demo_run, export_dir, demo_calls)
    demo_run.run_demo(data, out, quick=True, image_weights=None)
    printed = capsys.readouterr().out
    commands = [shlex.split(line[len("$ linnet "):]) for line in printed.splitlines() if line.startswith("$ linnet ")]
    assert [argv[0] for argv in commands] == ["train", "calibrate", "export", "baseline", "evaluate"]

    command_calls = []
    _recorders(monkeypatch, lambda name, module: importlib.import_module(module), export_dir, command_calls)
    for argv in commands:
        assert main(argv) == 0, argv
        command_output = capsys.readouterr().out
        assert command_output in printed, f"`linnet {argv[0]}` prints what the demo does not:\n{command_output}"
    assert demo_calls == command_calls


def test_the_demo_starts_from_the_repository_default_config():
    assert (demo_run.REPO_CONFIGS / "default.yaml").is_file()
