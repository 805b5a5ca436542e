"""Pipeline speed: examples/s of the tf.data pipeline with images, against a training step it must feed.

The target (issue 3): on 2 cores, time per batch of the pipeline stays below the training step time of a
MobileNetV2 (alpha 0.35) at 96 px on the same batch, so the model never waits for data. Runs on the
fashion catalogue's products with images when ``../shared/data`` is there, else on generated JPEGs.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

BATCH_SIZE = 64
IMAGE_SIZE = 96
EXAMPLES = 2048
TRAIN_STEPS = 4
REPO_ROOT = Path(__file__).resolve().parents[1]
from benchmarks import SHARED


def _catalog(work: Path):
    from linnet.data import CatalogSchema, prepare_catalog

    styles = SHARED / "fashion_product_images" / "styles.csv"
    if styles.is_file():
        schema = CatalogSchema(text_columns=["productDisplayName"],
                               attribute_columns=["gender", "baseColour", "season", "usage"],
                               category_column="category_path", image_column="image_file")
        catalog = prepare_catalog(styles, schema, max_rows=12_000)
        with_image = np.flatnonzero(catalog.image_available())[:EXAMPLES]
        return catalog.subset(np.isin(np.arange(len(catalog)), with_image)), "fashion (224 px JPEGs)"
    import csv

    from PIL import Image

    rng = np.random.default_rng(0)
    rows = []
    for index in range(EXAMPLES):
        pixels = (rng.random((224, 224, 3)) * 255).astype("uint8")
        Image.fromarray(pixels).save(work / f"{index}.jpg", quality=90)
        rows.append([str(index), f"product {index}", f"L{index % 5} > S{index % 17}", f"{index}.jpg"])
    path = work / "catalog.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["id", "title", "category", "image"], *rows])
    schema = CatalogSchema(text_columns=["title"], category_column="category", image_column="image")
    return prepare_catalog(path, schema), "generated (224 px JPEGs)"


def _time_pipeline(dataset, batches: int) -> float:
    iterator = iter(dataset)
    next(iterator)  # warm-up: graph tracing, thread pools
    started = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return (time.perf_counter() - started) / batches


def _train_step_seconds(batch, num_classes: int) -> float:
    import keras

    backbone = keras.applications.MobileNetV2(input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3), alpha=0.35,
                                              include_top=False, weights=None, pooling="avg")
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
    scaled = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(backbone(scaled))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    features, labels, weights = batch
    images, level_1 = features["image"], labels["level_1"]
    model.train_on_batch(images, level_1, sample_weight=weights["level_1"])  # warm-up (tracing)
    started = time.perf_counter()
    for _ in range(TRAIN_STEPS):
        model.train_on_batch(images, level_1, sample_weight=weights["level_1"])
    return (time.perf_counter() - started) / TRAIN_STEPS


def run() -> list[dict]:
    from linnet.data import make_dataset
    from linnet.data.tfrecord import read_tfrecords, write_tfrecords

    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        catalog, source = _catalog(work)
        catalog.split[:] = "train"  # one split: the whole sample feeds the measurement
        batches = max(1, len(catalog) // BATCH_SIZE - 1)
        variants = {
            "make_dataset, image files": make_dataset(catalog, BATCH_SIZE, shuffle=True, image_size=IMAGE_SIZE,
                                                      class_weighting="sqrt", repeat=True),
            "make_dataset, image files + augmentation": make_dataset(
                catalog, BATCH_SIZE, shuffle=True, image_size=IMAGE_SIZE, augment=True, class_weighting="sqrt",
                repeat=True),
        }
        write_tfrecords(catalog, work / "records", examples_per_shard=512, progress=False)
        variants["read_tfrecords (4 shards)"] = read_tfrecords(work / "records", "train", BATCH_SIZE, shuffle=True,
                                                               image_size=IMAGE_SIZE, class_weighting="sqrt",
                                                               repeat=True)
        step = _train_step_seconds(next(iter(variants["make_dataset, image files"])),
                                   len(catalog.taxonomy.classes(1)))
        rows = []
        for name, dataset in variants.items():
            per_batch = _time_pipeline(dataset, batches)
            rows.append({
                "pipeline": name, "data": source, "batch": BATCH_SIZE, "image px": IMAGE_SIZE,
                "examples/s": BATCH_SIZE / per_batch, "pipeline ms/batch": per_batch * 1000,
                "MobileNetV2-0.35 step ms": step * 1000, "keeps the step fed": "yes" if per_batch < step else "NO",
            })
        return rows


if __name__ == "__main__":
    from benchmarks.__main__ import markdown_table

    print(markdown_table(run()))
