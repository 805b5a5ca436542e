"""Training speed through `linnet.training.trainer.train` on the fashion catalogue (``styles.csv``).

Two tables:

- **throughput**: products/s of the default text-only config (``TrainingConfig()``: hashed word 1-2 and
  char 3-5 grams over ``productDisplayName`` + attributes, 2^18 x 64 table, wide linear path, chained heads,
  batch 256). What keeps it fast: ``LazyAdamW`` updates only the table rows a batch touched (the dense
  reference in issue 4 ran at ~150 products/s), and the n-grams are computed in the ``tf.data`` pipeline in
  parallel with the step (``training.featurize_in_dataset``; the row without it is shown for comparison).
  The rate is the median of epochs 2-4 (the first one traces the step; the slowest of the three is shown
  too), training steps only: the validation pass at each epoch's end is timed apart (``median epoch s with
  validation`` is the wall time).
- **embedding cache**: a frozen MobileNetV2 (image-only model, 96 px, random weights: the timing does not
  depend on the weights, and no ImageNet file is on this offline machine) on the products that have an
  image. Epoch time of the heads on cached vectors vs the same epoch running the frozen encoder on every
  step (``training.embedding_cache: false``), both the epoch after the first; the one-off encoding cost of
  the cached run is shown too.

- **time breakdown**: where one ``train`` call spends its wall and CPU seconds, step by step (imports,
  catalog, model build with the featurizers' IDF, the wide path's SVM start and its worker processes, datasets,
  MLflow, each graph traced, the epochs, evaluation, writing and reloading the run): the default config on
  the first ``BREAKDOWN_ROWS`` fashion titles (issue 21: under 3 minutes on 2 idle cores), and the README
  tour's training (50 products over the whole Google tree, ``training/configs/small_catalog.yaml``). The
  steps are timed by wrapping the trainer's own step functions and TensorFlow's graph tracing from here,
  in a child process each (so the imports are counted and nothing stays patched).

The machine is shared (other processes use the same cores): the 1-minute load average before and after
each row is printed next to the numbers.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import FASHION
from linnet.data import CatalogSchema, prepare_catalog

ATTRIBUTES = ["gender", "baseColour", "season", "year", "usage"]
IMAGE_SIZE = 96
# Epochs of each throughput row: the first traces the step; the rate is the median of the others, because
# one epoch on this shared 2-core VM varied from 12 to 17 s between back-to-back runs.
THROUGHPUT_EPOCHS = 4


def _say(message: str) -> None:
    print(f"[training] {message}", file=sys.stderr, flush=True)


def _schema(with_image: bool):
    return CatalogSchema(id_column="id", text_columns=["productDisplayName"], attribute_columns=ATTRIBUTES,
                         category_column="category_path",
                         image_column="image_file" if with_image else None,
                         image_root=str(FASHION) if with_image else None)


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _train(catalog, work: Path, name: str, config: dict):
    from linnet.training.trainer import train  # lazy: imports TensorFlow

    load_before = _load()
    cpu_before = time.process_time()
    run = train(FASHION / "styles.csv", work / name, schema=catalog.schema, config=config, catalog=catalog,
                progress=False)
    return run, load_before, time.process_time() - cpu_before


def _throughput_rows(work: Path) -> list[dict]:
    from linnet.model.builder import wide_bucket_count  # lazy: imports TensorFlow
    from linnet.training.config import TrainingConfig  # lazy: imports TensorFlow

    catalog = prepare_catalog(FASHION / "styles.csv", _schema(False), progress=False)
    defaults = TrainingConfig()
    class_counts = catalog.taxonomy.level_sizes()
    text = defaults.model.text_encoder
    rows = []
    for featurize_in_dataset in (True, False):
        _say(f"default text-only config, featurize_in_dataset={featurize_in_dataset}, {THROUGHPUT_EPOCHS} epochs")
        config = {"training": {"epochs": THROUGHPUT_EPOCHS, "verbose": 0, "featurize_in_dataset": featurize_in_dataset,
                               "early_stopping_patience": None}}
        run, load_before, cpu_seconds = _train(catalog, work, f"text-{featurize_in_dataset}", config)
        metrics = run.metrics
        steady = metrics["epoch_train_seconds"][1:]
        steady_seconds = statistics.median(steady)
        rows.append({
            "config": "default text-only (TrainingConfig())",
            "n-grams computed in": "tf.data (parallel)" if featurize_in_dataset else "the model step",
            "optimizer": "LazyAdamW (sparse rows)",
            "text table": f"{text.get('num_bins', 2**18):,} x {text.get('embedding_dim', 64)}"
                          if "num_bins" in text else "2^18 x 64 (encoder default)",
            "wide table": f"{wide_bucket_count(defaults.model, class_counts):,} x {sum(class_counts)} classes",
            "batch": defaults.training.batch_size,
            "train products": metrics["train_examples"],
            "products/s (median epoch)": round(metrics["train_examples"] / steady_seconds, 1),
            "products/s (slowest epoch)": round(metrics["train_examples"] / max(steady), 1),
            "epoch 1 s (traces)": metrics["epoch_train_seconds"][0],
            f"epochs 2-{THROUGHPUT_EPOCHS} s": " / ".join(f"{seconds:.2f}" for seconds in steady),
            "median epoch s with validation": statistics.median(metrics["epoch_seconds"][1:]),
            "parameters": metrics["parameters"],
            "val acc level 3": metrics["validation"].get("level_3_accuracy"),
            "process CPU s / wall s": round(cpu_seconds / max(metrics["fit_seconds"], 1e-9), 2),
            "load avg before/after": f"{load_before} / {_load()}",
            "target": ">= 2,000 products/s on 2 cores",
        })
    return rows


def _image_catalog(work: Path) -> Path:
    import pandas as pd  # lazy: for the image rows only

    frame = pd.read_csv(FASHION / "styles.csv", dtype=str, keep_default_na=False)
    frame = frame[frame["image_file"] != ""]
    path = work / "styles_with_images.csv"
    frame.to_csv(path, index=False)
    return path


def _cache_rows(work: Path) -> list[dict]:
    catalog = prepare_catalog(_image_catalog(work), _schema(True), progress=False)
    model = {"text_encoder": None,
             "image_encoder": {"name": "mobilenet_v2", "weights": None, "image_size": IMAGE_SIZE, "trainable": False}}
    common = {"verbose": 0, "early_stopping_patience": None, "cache_dir": str(work / "cache")}
    _say(f"frozen MobileNetV2 {IMAGE_SIZE}px on {len(catalog):,} products with images: cached heads, 3 epochs")
    cached, cached_load, _ = _train(catalog, work, "cached",
                                    {"model": model, "training": {**common, "epochs": 3, "embedding_cache": True}})
    _say("the same with the frozen encoder run on every step, 2 epochs")
    uncached, uncached_load, _ = _train(catalog, work, "uncached",
                                        {"model": model, "training": {**common, "epochs": 2, "embedding_cache": False}})
    cached_epoch = sum(cached.metrics["epoch_seconds"][1:]) / len(cached.metrics["epoch_seconds"][1:])
    uncached_epoch = uncached.metrics["epoch_seconds"][-1]
    cache = cached.metrics["embedding_cache"] or {}
    return [
        {"run": "heads on cached embeddings", "train products": cached.metrics["train_examples"],
         "epoch s (after the first)": round(cached_epoch, 3),
         "one-off encoding s": cache.get("encode_seconds"), "vectors computed": cache.get("computed"),
         "load avg before/after": f"{cached_load} / {_load()}"},
        {"run": "frozen encoder every step", "train products": uncached.metrics["train_examples"],
         "epoch s (after the first)": round(uncached_epoch, 3), "one-off encoding s": 0.0, "vectors computed": None,
         "load avg before/after": f"{uncached_load} / {_load()}"},
        {"run": "ratio (every step / cached)", "epoch s (after the first)": round(uncached_epoch / cached_epoch, 1),
         "target": ">= 10x"},
    ]


BREAKDOWN_ROWS = 20_000
REPO_ROOT = Path(__file__).resolve().parents[1]
GOOGLE_TAXONOMY = "taxonomy/google/taxonomy-with-ids.en-US.2021-09-21.txt"
# The trainer's steps (linnet.training.trainer) timed by the breakdown, in the order train() runs them.
TRAINER_STEPS = ["_prepare_run", "_build_models", "_init_wide_path", "_compile", "_datasets", "_log_run_start",
                 "_assemble", "_validation_accuracies", "write_run", "_log_run_files", "load_run"]
_BREAKDOWN_CHILD = r"""
import functools, json, os, resource, sys, time
started_wall, started_cpu = time.perf_counter(), time.process_time()
rows = []

def timed(owner, name, label):
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return original(*args, **kwargs)
        finally:
            rows.append([label, time.perf_counter() - wall, time.process_time() - cpu])
    setattr(owner, name, wrapper)

import keras
from tensorflow.python.framework import func_graph
from linnet.data import CatalogSchema
from linnet.training import trainer, tracking
rows.append(["imports (TensorFlow, Keras, linnet.training)", time.perf_counter() - started_wall,
             time.process_time() - started_cpu])
depth, steps = [0], []
trace = func_graph.func_graph_from_py_func

def traced(name, *args, **kwargs):
    depth[0] += 1
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        return trace(name, *args, **kwargs)
    finally:
        depth[0] -= 1
        if depth[0] == 0:
            if name == "multi_step_on_iterator":  # Keras's step function: fit traces training, then validation
                steps.append(name)
                name = "of the training step" if len(steps) == 1 else "of the validation step"
            rows.append([f"  trace {name}", time.perf_counter() - wall, time.process_time() - cpu])
func_graph.func_graph_from_py_func = traced
for step in json.loads(sys.argv[2]):
    timed(trainer, step, step.lstrip("_").replace("_", " "))
timed(tracking.MlflowTracker, "__enter__", "MLflow store and run")
timed(keras.Model, "fit", "fit (all epochs, traces and validation included)")
timed(keras.Model, "evaluate", "evaluate")
job = json.loads(sys.argv[1])
job["schema"] = CatalogSchema(**job["schema"])
wall, cpu = time.perf_counter(), time.process_time()
run = trainer.train(**job, progress=False)
rows.append(["train() in all", time.perf_counter() - wall, time.process_time() - cpu])
try:
    from joblib.externals.loky import get_reusable_executor
    get_reusable_executor().shutdown(wait=True)  # reaps the SVM's worker processes, so their CPU is counted
except ImportError:
    pass
children = resource.getrusage(resource.RUSAGE_CHILDREN)
rows.append(["worker processes (the SVM's one-vs-rest solves)", None, children.ru_utime + children.ru_stime])
rows.append(["process in all", time.perf_counter() - started_wall, time.process_time() - started_cpu])
print(json.dumps({"rows": rows, "epochs": run.metrics["epochs_run"], "train": run.metrics["train_examples"],
                  "epoch_train_seconds": run.metrics["epoch_train_seconds"],
                  "validation": run.metrics["validation"]}))
"""


def _breakdown(name: str, job: dict, work: Path) -> list[dict]:
    """The step-by-step wall and CPU seconds of one ``train(**job)`` in a child process."""
    import json
    import subprocess

    _say(f"time breakdown: {name}")
    job = {**job, "out_dir": str(work / f"breakdown-{len(list(work.iterdir()))}")}
    load_before = _load()
    environment = dict(os.environ, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, "-c", _BREAKDOWN_CHILD, json.dumps(job), json.dumps(TRAINER_STEPS)],
                            capture_output=True, text=True, env=environment, check=False)
    if result.returncode != 0:
        return [{"run": name, "note": f"failed: {result.stderr[-500:]}"}]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    merged: dict[str, list] = {}
    for label, wall, cpu in report["rows"]:  # an evaluate per epoch, a trace per graph: summed under one label
        seconds = merged.setdefault(label, [None, 0.0, 0])
        seconds[0] = None if wall is None else (seconds[0] or 0.0) + wall
        seconds[1] += cpu
        seconds[2] += 1
    rows = [{"run": name, "step": label if count == 1 else f"{label} (x{count})",
             "wall s": None if wall is None else round(wall, 2), "CPU s": round(cpu, 2)}
            for label, (wall, cpu, count) in merged.items()]
    rows.append({"run": name, "step": f"{report['epochs']} epochs on {report['train']:,} products; epoch train s",
                 "wall s": " / ".join(f"{seconds:.1f}" for seconds in report["epoch_train_seconds"]),
                 "CPU s": None, "load avg before/after": f"{load_before} / {_load()}"})
    rows.append({"run": name, "step": "validation accuracy per level",
                 "wall s": " / ".join(f"{value:.4f}" for value in report["validation"].values())})
    return rows


def _breakdown_rows(work: Path) -> list[dict]:
    fashion = {"catalog_path": str(FASHION / "styles.csv"), "max_rows": BREAKDOWN_ROWS,
               "schema": {"id_column": "id", "text_columns": ["productDisplayName"], "category_column": "category_path"}}
    rows = _breakdown(f"default config, {BREAKDOWN_ROWS:,} fashion titles", fashion, work)
    taxonomy = FASHION.parent / GOOGLE_TAXONOMY
    if taxonomy.is_file():
        tour = {"catalog_path": str(REPO_ROOT / "examples" / "products.csv"), "taxonomy": str(taxonomy),
                "config": str(REPO_ROOT / "training" / "configs" / "small_catalog.yaml"),
                "schema": {"id_column": "id", "text_columns": ["title", "description", "vendor", "product_type", "tags"],
                           "attribute_columns": ["attributes"], "category_column": "google_category"}}
        rows += _breakdown("README tour: 50 products, Google tree, small_catalog.yaml", tour, work)
    return rows


def run() -> dict[str, list[dict]]:
    if not (FASHION / "styles.csv").is_file():
        return {"skipped": [{"note": f"fashion catalogue not found at {FASHION}"}]}
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    tables: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        tables["time breakdown"] = _breakdown_rows(work)
        tables["throughput"] = _throughput_rows(work)
        if (FASHION / "images").is_dir():
            try:
                tables["embedding cache"] = _cache_rows(work)
            except Exception as error:  # noqa: BLE001  the throughput numbers must survive a failed cache row
                tables["embedding cache"] = [{"note": f"failed: {type(error).__name__}: {error}"[:300]}]
    return tables
