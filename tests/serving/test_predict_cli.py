"""`linnet predict` through the real entry point: a catalog lacking the model's text columns is refused
(naming the columns expected and found), TensorFlow's start-up lines stay hidden, no progress bar is drawn
into a pipe, `top_k` carries names and no empty errors file is written."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def _linnet(*arguments, cwd):
    environment = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    environment.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the command quiets TensorFlow itself
    environment.pop("LINNET_PROGRESS", None)
    return subprocess.run([sys.executable, "-m", "linnet", *map(str, arguments)], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=300, check=False)


def _write(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_predict_refuses_a_catalog_without_the_models_text_columns(run_dir, tmp_path):
    catalog = _write(tmp_path / "names.csv", ["id", "name"], [["1", "red boots"], ["2", "blue jeans"]])
    result = _linnet("predict", "--model", run_dir, "--catalog", catalog, "--out", tmp_path / "out.csv", cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("linnet predict: error: ") and "names.csv" in error
    assert "['title', 'brand']" in error and "found ['id', 'name']" in error, error
    assert "--allow-missing-text" not in error, "nothing the model reads is there: no flag can help"
    assert not (tmp_path / "out.csv").exists()
    # Quiet by default: TensorFlow was imported (the model was loaded) without a line of its C++ logs.
    assert "cudart_stub" not in result.stderr and "absl::InitializeLog" not in result.stderr, result.stderr


def test_a_partial_catalog_predicts_with_the_flag_quietly(run_dir, tmp_path):
    catalog = _write(tmp_path / "titles.csv", ["id", "title", "path"],
                     [["1", "red leather boots", "Shoes > Boots"], ["2", "blue denim jeans", ""]])
    out = tmp_path / "out.csv"
    # Without the flag this file is refused ("lacks ['brand']", tests/data/test_input_columns.py); with it:
    result = _linnet("predict", "--model", run_dir, "--catalog", catalog, "--out", out, "--allow-missing-text",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "2 products predicted, 0 bad rows" in result.stdout
    assert "\r" not in result.stderr and "predict:" not in result.stderr, "no progress bar drawn into a pipe"
    assert "cudart_stub" not in result.stderr, result.stderr
    assert not (tmp_path / "out.errors.csv").exists(), "no bad row: no errors file"
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    leaf_names = {"T-Shirts", "Shirts", "Jeans", "Boots", "Sandals", "Bags"}
    for row in rows:
        candidates = row["top_k"].split("|")
        assert candidates and all(candidate.split(":", 2)[2] in leaf_names for candidate in candidates), row["top_k"]
