"""Peak memory (RSS) of training and of batch prediction on the full fashion catalogue.

Each command runs in its own child process, watched by a fresh Python parent that reports
``getrusage(RUSAGE_CHILDREN).ru_maxrss`` — the peak resident set of the child alone, TensorFlow included.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import FASHION

WATCHER = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:]).returncode\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code)\n"
)

SCHEMA_FLAGS = [
    "--id-column", "id",
    "--text-columns", "productDisplayName",
    "--attribute-columns", "gender,baseColour,season,usage",
    "--level-columns", "masterCategory,subCategory,articleType",
    "--image-column", "image_file",
    "--image-root", str(FASHION),
]


def peak_rss_mib(command: list[str]) -> tuple[float, float]:
    """Runs ``command``; returns (peak RSS in MiB, seconds). Raises when it fails."""
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", WATCHER, *command], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    last = result.stdout.strip().splitlines()[-1].split()
    peak_kib, code = int(last[0]), int(last[1])
    if code != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({code}):\n{result.stderr[-3000:]}")
    return peak_kib / 1024, seconds


def run() -> list[dict]:
    catalog = FASHION / "styles.csv"
    if not catalog.is_file():
        return [{"note": f"fashion catalogue not found at {FASHION}; skipped"}]
    rows = sum(1 for _ in catalog.open(encoding="utf-8")) - 1
    linnet = [sys.executable, "-m", "linnet"]
    with tempfile.TemporaryDirectory() as work:
        run_dir = Path(work) / "run"
        train = [*linnet, "train", "--catalog", str(catalog), "--out", str(run_dir), "--epochs", "1", *SCHEMA_FLAGS]
        train_mib, train_seconds = peak_rss_mib(train)
        predict = [*linnet, "predict", "--model", str(run_dir), "--catalog", str(catalog),
                   "--out", str(Path(work) / "predictions.csv")]
        predict_mib, predict_seconds = peak_rss_mib(predict)
    return [
        {"job": "linnet train (default config, 1 epoch, text + images)", "rows": rows,
         "peak RSS (MiB)": round(train_mib), "wall time (s)": round(train_seconds, 1)},
        {"job": "linnet predict (batch, whole catalogue)", "rows": rows,
         "peak RSS (MiB)": round(predict_mib), "wall time (s)": round(predict_seconds, 1)},
    ]
