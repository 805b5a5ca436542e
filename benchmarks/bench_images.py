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
The defaults are the size that was measured (922 s at load 7-10, README's numbers): this area's run over all
9,583 photos at 128 px (three configurations, two seeds, one process) was killed by the kernel at 14.5 GB, a
cause not yet found; the text+image configuration alone on all of them peaks at 4.0 GiB (docs/evaluation.md).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import FASHION
from benchmarks.bench_quality import ATTRIBUTES

IMAGE_ENCODER = {"name": "efficientnet_lite0", "weights": "imagenet", "trainable": False}


def _schema(with_image: bool):
    from linnet.data import CatalogSchema

    return CatalogSchema(id_column="id", text_columns=["productDisplayName"], attribute_columns=ATTRIBUTES,
                         category_column="category_path",
                         image_column="image_file" if with_image else None,
                         image_root=str(FASHION) if with_image else None)


def _image_catalog(work: Path, max_rows: int | None) -> Path:
    """The rows with an image, written to a temporary CSV (the shared data stays read-only)."""
    import pandas as pd

    frame = pd.read_csv(FASHION / "styles.csv", dtype=str, keep_default_na=False)
    frame = frame[frame["image_file"] != ""]
    if max_rows:
        frame = frame.head(max_rows)
    path = work / "styles_with_images.csv"
    frame.to_csv(path, index=False)
    return path


def _quality_row(variant: str, name: str, truth_validation, validation, truth_test, test, lookup, seconds,
                 counts: dict | None = None) -> dict:
    """One table row; ``counts`` (when given) receives the test products' `linnet.evaluation.metrics.hierarchical_counts`
    under the row's ``(variant, model)``."""
    from linnet.evaluation import calibration, metrics
    from linnet.evaluation.evaluate import to_path_matrix

    reverse = {path: node for node, path in lookup.items()} if lookup else None
    full = to_path_matrix(test.full_node_ids, lookup)
    summary = metrics.summarize(truth_test, full)
    if counts is not None:
        counts[(variant, name)] = metrics.hierarchical_counts(truth_test, full)
    row = {"variant": variant, "model": name,
           "hP": summary["hierarchical_precision"], "hR": summary["hierarchical_recall"],
           "hF1": summary["hierarchical_f1"]}
    for level, accuracy in enumerate(summary["level_accuracy"], 1):
        row[f"L{level} acc"] = accuracy
    row["leaf acc"] = summary["leaf_accuracy"]
    truth_validation_ids = to_path_matrix(truth_validation, reverse)
    for target in (0.95, 0.99):
        thresholds = calibration.calibrate(truth_validation_ids, validation.full_node_ids, validation.confidences,
                                           target)
        exposed = to_path_matrix(thresholds.apply(test.full_node_ids, test.confidences), lookup)
        precision = metrics.precision_on_covered(truth_test, exposed)
        coverage = metrics.coverage(exposed)
        row[f"leaf coverage @{target:g}"] = float(coverage[-1])
        row[f"leaf precision @{target:g}"] = float(precision[-1])
    row["train s"] = seconds
    return row


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
