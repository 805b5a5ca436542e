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


def run() -> dict[str, list[dict]]:
    if not (FASHION / "styles.csv").is_file():
        return {"skipped": [{"note": f"fashion catalogue not found at {FASHION}"}]}
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    tables: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        tables["throughput"] = _throughput_rows(work)
        if (FASHION / "images").is_dir():
            try:
                tables["embedding cache"] = _cache_rows(work)
            except Exception as error:  # noqa: BLE001  the throughput numbers must survive a failed cache row
                tables["embedding cache"] = [{"note": f"failed: {type(error).__name__}: {error}"[:300]}]
    return tables
