"""Quality on catalogs of different shapes: the default LinNét configuration against TF-IDF + LinearSVC and hiclass.

Catalogs (titles and the text attributes each has, and the photo where there is one):

- ``fashion``: the Myntra fashion catalogue, a regular 3-level tree where every label is a leaf;
- ``fashion ragged``: the same products with a random 30 % of their labels cut to an inner node (depth 1 or 2,
  drawn once with a fixed seed): labels on inner nodes that also have children;
- ``fashion photos``: the catalogue's products that have a photo (9,583), title + attributes + photo. LinNét is
  the default plus the one key the default asks for when a catalog has an image column, ``model.image_encoder``
  (`PHOTO_ENCODER`: ImageNet EfficientNet-Lite0, frozen, at ``LINNET_QUALITY_IMAGE_SIZE`` px, default 128); the
  baselines read the text. Left out with ``LINNET_QUALITY_IMAGES=0``. (What the photo adds to LinNét alone,
  text against text+image against image-only, is the ``images`` area.)
- ``shopify exports``: 81 real stores' products, Google/Shopify taxonomy paths of depth 1 to 7 (labels on inner
  nodes, a long tail), capped per store and split *by store* (every test product comes from a store no model
  trained on).

For each catalog and seed (the seed salts the split and seeds training), every model trains on train; thresholds
for 0.95 and 0.99 precision per level are fitted on validation (`linnet.evaluation.calibration.calibrate`, its
default lower-bound rule) and every number is measured on test. Columns: hierarchical F1 (mean ± sd over seeds),
exact (the whole predicted path equals the label, depth included), inner acc (exact on the test rows labelled
with an inner node), and per target the share of predicted nodes exposed (cov, mean over seeds), their
hierarchical precision on test (P: right exposed nodes over exposed nodes, every seed's test products pooled) and
that precision's range over the seeds that exposed anything (with how many did). The verdict row per catalog gives LinNét's hF1 margin over the better baseline with a 95 %
paired-bootstrap interval over the test products of every seed pooled, how many of those products LinNét, the
baseline and both get wrong (the whole path), and the oracle hF1 gain: what an oracle that takes LinNét's path
wherever it is right and the baseline's elsewhere adds over the baseline (`miss_overlap`; a bound on what choosing
between the two, product by product, can add when one of them is right).

Sizes are capped so one run takes about 20 minutes on a loaded 2-core machine (``LINNET_QUALITY_ROWS``, rows per
catalog, default 6,000; ``LINNET_QUALITY_STORE_CAP``, products per store, default 150; ``LINNET_QUALITY_SEEDS``,
default 2; ``LINNET_QUALITY_CATALOGS``, a comma-separated subset of the catalog names). Each finished
(catalog, seed) prints its rows to stderr as it goes. Training times are wall-clock on a shared machine; the verdict rows carry the load average.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import FASHION, SHARED

ATTRIBUTES = ["gender", "baseColour", "season", "year", "usage"]
SHOPIFY = SHARED / "shopify_exports"
TARGETS = (0.95, 0.99)
BOOTSTRAP_RESAMPLES = 2000
RAGGED_SHARE = 0.3
#: The image encoder LinNét adds on the ``fashion photos`` catalog (offline ImageNet weights from a package).
PHOTO_ENCODER = {"name": "efficientnet_lite0", "weights": "imagenet", "trainable": False}


def hierarchical_f1_of(counts: np.ndarray) -> np.ndarray:
    """Micro hF1 of `linnet.evaluation.metrics.hierarchical_counts` summed over the second-to-last axis
    (``[..., N, 3]`` -> ``[...]``)."""
    true_positives, predicted, actual = np.moveaxis(counts.sum(axis=-2), -1, 0).astype(np.float64)
    return 2 * true_positives / np.maximum(predicted + actual, 1)


def paired_bootstrap_interval(ours: np.ndarray, theirs: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES,
                              seed: int = 0) -> tuple[float, float]:
    """95 % interval of ``hF1(ours) - hF1(theirs)`` over products resampled with replacement (the same
    products for both models in every resample), from per-product `linnet.evaluation.metrics.hierarchical_counts`."""
    rng = np.random.default_rng(seed)
    differences = np.empty(resamples)
    for start in range(0, resamples, 100):
        picks = rng.integers(0, ours.shape[0], size=(min(100, resamples - start), ours.shape[0]))
        differences[start:start + len(picks)] = hierarchical_f1_of(ours[picks]) - hierarchical_f1_of(theirs[picks])
    low, high = np.percentile(differences, [2.5, 97.5])
    return float(low), float(high)


def miss_overlap(ours: np.ndarray, theirs: np.ndarray) -> dict:
    """Where two models miss, from their per-product `linnet.evaluation.metrics.hierarchical_counts` on the same
    products: how many paths each gets wrong (a path is right when ``|P ∩ T| = |P| = |T|``, depth included), how
    many both get wrong, and the hF1 an oracle gains over ``theirs`` by taking ``ours`` wherever it is right and
    ``theirs`` elsewhere."""
    right_ours = (ours[:, 0] == ours[:, 1]) & (ours[:, 1] == ours[:, 2])
    right_theirs = (theirs[:, 0] == theirs[:, 1]) & (theirs[:, 1] == theirs[:, 2])
    oracle = np.where(right_ours[:, None], ours, theirs)
    return {"misses": int((~right_ours).sum()), "their misses": int((~right_theirs).sum()),
            "shared misses": int((~right_ours & ~right_theirs).sum()),
            "oracle gain": float(hierarchical_f1_of(oracle) - hierarchical_f1_of(theirs))}


# ------------------------------------------------------------------------------------------ the catalogs
def _fashion_frame(rows: int):
    import pandas as pd

    frame = pd.read_csv(FASHION / "styles.csv", dtype=str, keep_default_na=False)
    frame = frame[frame["category_path"] != ""]
    return frame.sample(n=min(rows, len(frame)), random_state=0).reset_index(drop=True)


def _ragged(frame):
    """A random ``RAGGED_SHARE`` of the labels cut to depth 1 or 2 (fixed seed: one derived catalog)."""
    rng = np.random.default_rng(0)
    frame = frame.copy()
    cut = rng.random(len(frame)) < RAGGED_SHARE
    depth = rng.integers(1, 3, size=len(frame))
    paths = frame["category_path"].str.split(" > ")
    frame.loc[cut, "category_path"] = [" > ".join(parts[:keep]) for parts, keep in zip(paths[cut], depth[cut])]
    return frame


def _photo_frame(rows: int):
    """The fashion products with a photo, ``rows`` of them at most (the same random draw for every seed)."""
    import pandas as pd

    frame = pd.read_csv(FASHION / "styles.csv", dtype=str, keep_default_na=False)
    frame = frame[(frame["category_path"] != "") & (frame["image_file"] != "")]
    return frame.sample(n=min(rows, len(frame)), random_state=0).reset_index(drop=True)


def _shopify_frame(store_cap: int):
    import pandas as pd

    frame = pd.read_csv(SHOPIFY / "products.csv", dtype=str, keep_default_na=False)
    frame = frame[frame["category_path"] != ""]
    return frame.groupby("store", group_keys=False).head(store_cap).reset_index(drop=True)


def _catalogs(work: Path, rows: int, store_cap: int, photos: bool = True) -> list[tuple[str, Path, object, str | None]]:
    """``(name, csv path, schema, column to split by or None for the id hash)`` of every catalog found
    (``photos``: with the ``fashion photos`` catalog, whose schema has the image column)."""
    from linnet.data import CatalogSchema

    catalogs = []
    if (FASHION / "styles.csv").is_file():
        schema = CatalogSchema(id_column="id", text_columns=["productDisplayName"], attribute_columns=ATTRIBUTES,
                               category_column="category_path")
        fashion = _fashion_frame(rows)
        for name, frame in (("fashion", fashion), ("fashion ragged", _ragged(fashion))):
            path = work / f"{name.replace(' ', '_')}.csv"
            frame.to_csv(path, index=False)
            catalogs.append((name, path, schema, None))
        if photos:
            path = work / "fashion_photos.csv"
            _photo_frame(rows).to_csv(path, index=False)
            catalogs.append(("fashion photos", path, dataclasses.replace(schema, image_column="image_file",
                                                                          image_root=str(FASHION)), None))
    if (SHOPIFY / "products.csv").is_file():
        schema = CatalogSchema(id_column="id", text_columns=["title"],
                               attribute_columns=["product_type", "vendor", "tags"], category_column="category_path")
        path = work / "shopify_exports.csv"
        _shopify_frame(store_cap).to_csv(path, index=False)
        catalogs.append(("shopify exports", path, schema, "store"))
    return catalogs


def _split(catalog, path: Path, by: str | None, seed: int):
    """The catalog with a 70/15/15 split salted by the seed: by id hash, or by the value of column ``by``."""
    from linnet.data.split import assign_splits

    if by is None:
        keys = catalog.ids
    else:
        import pandas as pd

        frame = pd.read_csv(path, dtype=str, keep_default_na=False).set_index("id")
        keys = frame.loc[np.asarray(catalog.ids).astype(str), by].to_numpy()
    return dataclasses.replace(catalog, split=assign_splits(keys, (0.7, 0.15, 0.15), salt=f"seed-{seed}"))


# ------------------------------------------------------------------------------------------ scoring
def _score(truth_validation, validation, truth_test, test, taxonomy) -> dict:
    """hF1, exact, inner acc, and coverage / precision on test at each target (thresholds fitted on validation)."""
    from linnet.evaluation import calibration, metrics

    full = np.asarray(test.full_node_ids, dtype=object)
    counts = metrics.hierarchical_counts(truth_test, full)
    exact = np.all(truth_test == full, axis=1)
    last = np.array([next((node for node in row[::-1] if node), "") for row in truth_test], dtype=object)
    inner = np.array([bool(node) and not taxonomy.is_leaf(node) for node in last])
    row = {"hF1": float(hierarchical_f1_of(counts)), "exact": float(exact.mean()),
           "inner acc": float(exact[inner].mean()) if inner.any() else float("nan"), "inner rows": int(inner.sum())}
    predicted_nodes = max(int((full != "").sum()), 1)
    for target in TARGETS:
        thresholds = calibration.calibrate(truth_validation, validation.full_node_ids, validation.confidences, target)
        exposed = np.asarray(thresholds.apply(full, test.confidences), dtype=object)
        hits, shown, _ = metrics.hierarchical_counts(truth_test, exposed).sum(axis=0)
        row[f"cov @{target:g}"] = float(shown / predicted_nodes)
        row[f"P @{target:g}"] = float(hits / shown) if shown else float("nan")  # hierarchical precision
        row[f"exposed @{target:g}"], row[f"right @{target:g}"] = int(shown), int(hits)
    return row, counts


def _baselines(catalog, truth_validation, truth_test) -> list[tuple[str, dict, np.ndarray, float]]:
    from linnet.evaluation.evaluate import baseline_predictions, predict_with_baseline

    results = []
    for kind in ("tfidf", "hiclass"):
        test, baseline, seconds = baseline_predictions(kind, catalog, ("train",), "test")
        validation = predict_with_baseline(baseline, catalog.subset("validation"))
        row, counts = _score(truth_validation, validation, truth_test, test, catalog.taxonomy)
        results.append((f"baseline {kind}", row, counts, seconds))
    return results


def linnet_config(schema, seed: int, image_size: int | None = None) -> dict:
    """LinNét's training config on a catalog: the default (seeded), plus `PHOTO_ENCODER` when ``schema`` has an
    image column (the default config refuses to train past an image column without an image encoder)."""
    config = {"training": {"seed": seed}}
    if schema.has_image:
        config["model"] = {"image_encoder": dict(PHOTO_ENCODER)}
        config["data"] = {"image_size": image_size or int(os.environ.get("LINNET_QUALITY_IMAGE_SIZE", "128"))}
    return config


def linnet_label(schema) -> str:
    """The model column's name for LinNét on a catalog."""
    return "LinNét default + photo" if schema.has_image else "LinNét default"


def _linnet(catalog, path: Path, schema, work: Path, seed: int, truth_validation, truth_test):
    from linnet.evaluation.evaluate import load_model, predictions_from_outputs
    from linnet.training.trainer import train

    started = time.perf_counter()
    run = train(path, work / f"run-{path.stem}-{seed}", schema=schema, catalog=catalog,
                config=linnet_config(schema, seed), progress=False)
    seconds = time.perf_counter() - started
    predictor = load_model(run.path)
    # Small batches with photos: a batch of 512 through the CNN holds gigabytes of activations.
    batch = 64 if schema.has_image else None
    parts = {split: predictions_from_outputs(predictor.predict_prepared(catalog.subset(split), batch_size=batch,
                                                                        progress=False),
                                             predictor.taxonomy, catalog.subset(split).ids)
             for split in ("validation", "test")}
    row, counts = _score(truth_validation, parts["validation"], truth_test, parts["test"], catalog.taxonomy)
    row["epochs"] = run.metrics.get("epochs_run")
    return row, counts, seconds


def _mean(values) -> float:
    """Mean of the defined values (NaN when none is: a catalog without inner-node labels)."""
    values = np.asarray(values, dtype=np.float64)
    return float(values[~np.isnan(values)].mean()) if (~np.isnan(values)).any() else float("nan")


def _summary(name: str, model: str, rows: list[dict], seconds: list[float]) -> dict:
    def mean(key):
        return _mean([row[key] for row in rows])

    hf1 = np.array([row["hF1"] for row in rows])
    summary = {"catalog": name, "model": model, "hF1": f"{hf1.mean():.4f} ± {hf1.std(ddof=1) if len(hf1) > 1 else 0:.4f}",
               "exact": mean("exact"), "inner acc": mean("inner acc")}
    for target in TARGETS:
        summary[f"cov @{target:g}"] = mean(f"cov @{target:g}")
        # Test precision pools the exposed nodes of every seed (right / exposed), as the hF1 interval pools
        # products: a seed exposing 40 nodes must not weigh as much as one exposing 400. The range is per seed.
        shown = sum(row[f"exposed @{target:g}"] for row in rows)
        per_seed = [row[f"P @{target:g}"] for row in rows if row[f"exposed @{target:g}"]]
        summary[f"P @{target:g}"] = sum(row[f"right @{target:g}"] for row in rows) / shown if shown else float("nan")
        summary[f"P @{target:g} seeds"] = (f"{min(per_seed):.3f}..{max(per_seed):.3f} ({len(per_seed)}/{len(rows)})"
                                           if per_seed else f"none exposed (0/{len(rows)})")
    summary["train s"] = float(np.mean(seconds))
    return summary


def run() -> dict:
    from linnet.data import prepare_catalog
    from linnet.evaluation.evaluate import catalog_truth

    rows_per_catalog = int(os.environ.get("LINNET_QUALITY_ROWS", "6000"))
    store_cap = int(os.environ.get("LINNET_QUALITY_STORE_CAP", "150"))
    seeds = list(range(int(os.environ.get("LINNET_QUALITY_SEEDS", "2"))))
    table, verdicts, sizes = [], [], []
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        catalogs = _catalogs(work, rows_per_catalog, store_cap,
                             photos=os.environ.get("LINNET_QUALITY_IMAGES", "1") != "0")
        wanted = os.environ.get("LINNET_QUALITY_CATALOGS")  # e.g. "shopify exports,fashion ragged"
        if wanted:
            catalogs = [entry for entry in catalogs if entry[0] in {name.strip() for name in wanted.split(",")}]
        if not catalogs:
            return {"skipped": [{"note": f"no catalog found under {SHARED}"}]}
        for name, path, schema, by in catalogs:
            prepared = prepare_catalog(path, schema)
            ours_label = linnet_label(schema)
            results: dict[str, list] = {}
            pooled: dict[str, list] = {}
            for seed in seeds:
                catalog = _split(prepared, path, by, seed)
                truth_validation = catalog_truth(catalog.subset("validation"))
                truth_test = catalog_truth(catalog.subset("test"))
                entries = _baselines(catalog, truth_validation, truth_test)
                row, counts, seconds = _linnet(catalog, path, schema, work, seed, truth_validation, truth_test)
                entries.append((ours_label, row, counts, seconds))
                for model, entry, _, took in entries:  # progress: a long run's finished rows
                    print(f"quality: {name} seed {seed} {model} ({took:.0f} s): "
                          + ", ".join(f"{key} {value:.4f}" for key, value in entry.items() if isinstance(value, float)),
                          file=sys.stderr, flush=True)
                for model, row, counts, seconds in entries:
                    results.setdefault(model, []).append((row, seconds))
                    pooled.setdefault(model, []).append(counts)
                sizes.append({"catalog": name, "seed": seed, "products": len(catalog),
                              "classes": len(catalog.taxonomy),
                              "train": int(np.sum(catalog.split == "train")),
                              "validation": int(np.sum(catalog.split == "validation")),
                              "test": int(np.sum(catalog.split == "test")),
                              "test inner-labelled": row["inner rows"],
                              "LinNét epochs": results[ours_label][-1][0].get("epochs")})
            for model, entries in results.items():
                table.append(_summary(name, model, [row for row, _ in entries], [seconds for _, seconds in entries]))
            ours = np.mean([row["hF1"] for row, _ in results[ours_label]])
            best = max((model for model in results if model.startswith("baseline")),
                       key=lambda model: np.mean([row["hF1"] for row, _ in results[model]]))
            low, high = paired_bootstrap_interval(np.concatenate(pooled[ours_label]),
                                                  np.concatenate(pooled[best]))
            overlap = miss_overlap(np.concatenate(pooled[ours_label]), np.concatenate(pooled[best]))
            verdicts.append({"catalog": name, "LinNét": ours_label, "better baseline": best,
                             "hF1 margin": float(ours - np.mean([row["hF1"] for row, _ in results[best]])),
                             "95% interval": f"{low:+.4f} to {high:+.4f}",
                             "inner acc margin": _mean([row["inner acc"] for row, _ in results[ours_label]])
                             - _mean([row["inner acc"] for row, _ in results[best]]),
                             "misses LinNét / baseline / both": f"{overlap['misses']} / {overlap['their misses']}"
                                                                f" / {overlap['shared misses']}",
                             "oracle hF1 gain": overlap["oracle gain"],
                             "load avg 1/5/15 min": "/".join(f"{value:.1f}" for value in os.getloadavg())})
    return {"quality by catalog (test, over seeds)": table, "LinNét vs the better baseline": verdicts,
            "catalogs and splits": sizes}
