"""Images: what the product photo adds, with real ImageNet features (EfficientNet-Lite0, offline).

On the fashion catalogue's products that have a photo, the same deterministic split as ``quality``, three
LinNét configurations trained with ``train()`` over a few seeds:

- ``text``: the default configuration (hashed n-grams of title + attributes, wide path);
- ``text+image``: the default plus ``model.image_encoder: {name: efficientnet_lite0, weights: imagenet}``
  (frozen);
- ``image-only``: ``model.text_encoder: null``, ``model.wide.enabled: false``, the same image encoder: an
  image classifier over the main product photo.

The frozen CNN runs once per product and configuration (training's embedding cache, under
``$LINNET_CACHE_DIR``, so the later seeds and a second run reuse the vectors); the heads train on the stored
vectors. Scores are on test, with thresholds fitted on validation (hF1, leaf accuracy, leaf coverage and
precision at 0.99), the rows of `benchmarks.bench_quality`. The last table gives each configuration's mean
and spread over the seeds.

``LINNET_IMAGES_SEEDS`` (default ``1,2``), ``LINNET_IMAGES_SIZE`` (image side, default 96; the photos are
224 px) and ``LINNET_IMAGES_MAX_ROWS`` (default 2,000 products with a photo; 0 = all 9,583) change the run.
The defaults are the size that was measured (922 s at load 7-10, README's numbers): the run over all 9,583
photos at 128 px was killed by the kernel at 14.5 GB of memory, a cause not yet found.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import FASHION
from benchmarks.bench_quality import _image_catalog, _quality_row, _schema

IMAGE_ENCODER = {"name": "efficientnet_lite0", "weights": "imagenet", "trainable": False}


def configurations(seed: int, image_size: int) -> dict[str, tuple[dict, bool]]:
    """``{variant: (training config dict, schema with the image column)}`` for one seed."""
    training = {"seed": seed}
    with_image = {"image_size": image_size}
    return {
        "text": ({"training": training}, False),
        "text+image": ({"model": {"image_encoder": dict(IMAGE_ENCODER)}, "data": with_image, "training": training},
                       True),
        "image-only": ({"model": {"text_encoder": None, "wide": {"enabled": False},
                                  "image_encoder": dict(IMAGE_ENCODER)},
                        "data": with_image, "training": training}, True),
    }


def _scored_row(variant: str, seed: int, config: dict, catalog, catalog_path: Path, schema, work: Path) -> dict:
    from linnet.evaluation.evaluate import (
        catalog_truth,
        load_model,
        node_path_lookup,
        predictions_from_outputs,
    )
    from linnet.training.trainer import train

    started = time.perf_counter()
    run = train(catalog_path, work / f"run-{variant}-{seed}", schema=schema, config=config, catalog=catalog,
                progress=False)
    seconds = time.perf_counter() - started
    predictor = load_model(run.path)
    subsets = {split: catalog.subset(split) for split in ("validation", "test")}
    # small batches: a batch of 512 photos through the CNN holds gigabytes of activations
    parts = {split: predictions_from_outputs(predictor.predict_prepared(subset, batch_size=64, progress=False),
                                             predictor.taxonomy, subset.ids)
             for split, subset in subsets.items()}
    row = _quality_row(variant, f"LinNét seed {seed}", catalog_truth(subsets["validation"]), parts["validation"],
                       catalog_truth(subsets["test"]), parts["test"], node_path_lookup(predictor.taxonomy), seconds)
    row["load avg 1 min"] = round(os.getloadavg()[0], 1)
    return row


SUMMARY_COLUMNS = ("hF1", "leaf acc", "leaf coverage @0.99", "leaf precision @0.99")


def summary_rows(rows: list[dict]) -> list[dict]:
    """Mean and standard deviation over seeds of each variant's `SUMMARY_COLUMNS`, and the gain over ``text``."""
    by_variant: dict[str, list[dict]] = {}
    for row in rows:
        by_variant.setdefault(row["variant"], []).append(row)
    means = {variant: {column: float(np.mean([row[column] for row in group])) for column in SUMMARY_COLUMNS}
             for variant, group in by_variant.items()}
    summary = []
    for variant, group in by_variant.items():
        entry = {"variant": variant, "seeds": len(group)}
        for column in SUMMARY_COLUMNS:
            values = [row[column] for row in group]
            entry[column] = f"{np.mean(values):.4f} ± {np.std(values):.4f}"
        if "text" in means and variant != "text":
            for column in ("hF1", "leaf acc", "leaf coverage @0.99"):
                entry[f"{column} vs text"] = f"{means[variant][column] - means['text'][column]:+.4f}"
        summary.append(entry)
    return summary


def rows(seeds=None, image_size: int | None = None, max_rows: int | None = None) -> dict[str, list[dict]]:
    """The per-seed rows and their summary, as ``{table name: rows}`` (for ``quality`` to fold in)."""
    from linnet.data import prepare_catalog
    from linnet.evaluation.evaluate import DEFAULT_SPLIT

    seeds = seeds or [int(seed) for seed in os.environ.get("LINNET_IMAGES_SEEDS", "1,2").split(",")]
    image_size = image_size or int(os.environ.get("LINNET_IMAGES_SIZE", "96"))
    max_rows = max_rows or int(os.environ.get("LINNET_IMAGES_MAX_ROWS", "2000")) or None
    per_seed: list[dict] = []
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        path = _image_catalog(work, max_rows)
        catalogs = {with_image: prepare_catalog(path, _schema(with_image), max_rows=max_rows, split=DEFAULT_SPLIT)
                    for with_image in (False, True)}
        for seed in seeds:
            for variant, (config, with_image) in configurations(seed, image_size).items():
                per_seed.append(_scored_row(variant, seed, config, catalogs[with_image], path, _schema(with_image),
                                            work))
                done = per_seed[-1]
                print(f"  {variant} seed {seed}: hF1 {done['hF1']:.4f}, leaf acc {done['leaf acc']:.4f}, leaf "
                      f"coverage @0.99 {done['leaf coverage @0.99']:.4f}, train {done['train s']:.0f} s, "
                      f"load {done['load avg 1 min']}", flush=True)
        size = len(catalogs[True])
        test = int(np.sum(catalogs[True].split == "test"))
    title = f"{size:,} products with a photo, test {test:,}, EfficientNet-Lite0 ImageNet at {image_size} px"
    return {f"per seed ({title})": per_seed, f"over seeds ({title})": summary_rows(per_seed)}


def run() -> dict:
    if not (FASHION / "styles.csv").is_file():
        return {"skipped": [{"note": f"fashion catalogue not found at {FASHION}"}]}
    return rows()
