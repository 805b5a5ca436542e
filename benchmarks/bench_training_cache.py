"""Training with a frozen image encoder: the CNN run every step vs cached once ("cached where frozen").

The default model (hashed n-gram text encoder + wide path, both trained) plus a frozen MobileNetV2
(width 0.35, 96 px, as `linnet demo` trains it) on a slice of the fashion catalogue. Three runs of
`linnet.training.trainer.train`, two epochs each (the first includes tracing; the second is the steady epoch):

1. ``training.embedding_cache: false``: every step decodes the batch's images and runs the CNN;
2. the cache, empty: the CNN runs once per product with an image (the one-off encode time is reported
   apart from the epochs), then the text encoder, wide path and heads train on the stored vectors;
3. the cache again: the vectors are reused;
4. for reference, the same model without an image encoder: the floor the cached runs can reach.

The machine's CPU may be shared: the load average before and after each run is printed with it.

Run: ``python -m benchmarks training_cache`` (``LINNET_BENCH_CACHE_ROWS`` sets the slice, default 5,000).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import yaml

from linnet.data import CatalogSchema
from linnet.demo.catalog import DEMO_SCHEMA, write_demo_catalog

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LINNET_SHARED_DATA", REPO.parent / "shared" / "data")) / "fashion_product_images"
ROWS = int(os.environ.get("LINNET_BENCH_CACHE_ROWS", "5000"))
IMAGE_SIZE = 96
BATCH_SIZE = 64


def _config(cache_dir: Path, embedding_cache: bool, with_image: bool = True) -> dict:
    config = yaml.safe_load((REPO / "training" / "configs" / "default.yaml").read_text(encoding="utf-8"))
    if with_image:
        config["model"]["image_encoder"] = {"name": "mobilenet_v2", "alpha": 0.35, "image_size": IMAGE_SIZE,
                                            "weights": None, "trainable": False}
        config["data"]["image_size"] = IMAGE_SIZE
    config["training"].update(epochs=2, batch_size=BATCH_SIZE, verbose=0, early_stopping_patience=None,
                              checkpoints=False, tensorboard=False, embedding_cache=embedding_cache,
                              cache_dir=str(cache_dir))
    return config


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def run() -> list[dict]:
    from linnet.training.trainer import train  # lazy: imports TensorFlow

    if not (DATA / "styles.csv").is_file():
        raise FileNotFoundError(f"fashion catalogue not found at {DATA}")
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        report = write_demo_catalog(DATA, scratch / "catalog.csv", limit=ROWS)
        schema = CatalogSchema(**DEMO_SCHEMA)
        for label, cached, with_image in (("CNN every step (no cache)", False, True),
                                          ("cache, first run (encodes)", True, True),
                                          ("cache, second run (reuses)", True, True),
                                          ("no image encoder (floor)", True, False)):
            load_before = _load()
            started = time.perf_counter()
            result = train(scratch / "catalog.csv", scratch / f"run-{len(rows)}", schema=schema,
                           config=_config(scratch / "cache", cached, with_image), progress=False)
            wall = time.perf_counter() - started
            metrics = result.metrics
            cache = metrics.get("embedding_cache") or {}
            epochs = metrics["epoch_seconds"]
            rows.append({
                "run": label,
                "products": report.rows,
                "with image": report.with_image,
                "train products": metrics["train_examples"],
                "epoch 1 s (traces)": epochs[0],
                "epoch 2 s (steady)": epochs[-1],
                "steady products/s": metrics["steady_examples_per_second"],
                "encode s (one-off)": cache.get("encode_seconds"),
                "computed": cache.get("computed"),
                "reused": cache.get("reused"),
                "without image": cache.get("without_image"),
                "train() wall s": round(wall, 1),
                "load avg before": load_before,
                "load avg after": _load(),
            })
            print(rows[-1], flush=True)
    uncached, cached = rows[0]["epoch 2 s (steady)"], rows[2]["epoch 2 s (steady)"]
    rows.append({"run": f"steady epoch speed-up with the cache: {uncached / max(cached, 1e-9):.1f}x"})
    return rows


if __name__ == "__main__":
    from benchmarks.__main__ import markdown_table

    print(markdown_table(run()))
