"""`linnet demo --quick` end to end: every output exists and the printed numbers are metrics.json's."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest


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
