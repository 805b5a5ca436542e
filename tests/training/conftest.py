"""Tiny catalogs and configs of the training room's tests (tiny_taxonomy's tree, a few hundred products).

Products are labelled with the leaves of the shared ``tiny_taxonomy`` fixture, including its shallow
leaves (``Bags`` at level 1, ``Shoes > Sandals`` at level 2), so deeper levels carry masked labels.
Each leaf has its own vocabulary plus noise words, so a few epochs learn it.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest

LEAF_WORDS = {
    "Clothing > Tops > T-Shirts": ["tee", "crew neck", "graphic tee", "cotton t-shirt"],
    "Clothing > Tops > Shirts": ["oxford shirt", "button down", "linen shirt", "flannel"],
    "Clothing > Trousers > Jeans": ["denim jeans", "slim jeans", "bootcut", "selvedge denim"],
    "Shoes > Boots": ["chelsea boots", "hiking boots", "ankle boots", "rain boots"],
    "Shoes > Sandals": ["flip flops", "sandals", "slides", "strappy sandals"],
    "Bags": ["tote bag", "backpack", "clutch", "duffel"],
}
NOISE = ["red", "blue", "black", "white", "men", "women", "classic", "new", "summer", "size m"]

TINY_TRAINING = {
    "model": {
        "text_encoder": {"name": "hashed_ngrams", "num_bins": 4096, "embedding_dim": 16},
        "fusion_dim": 32,
        "head_hidden_units": [32],
        "head_dropout": 0.2,
        "wide": {"num_buckets": 1024},
    },
    "training": {
        "epochs": 3,
        "batch_size": 32,
        "verbose": 0,
        "early_stopping_patience": None,
        "optimizer": {"learning_rate": 0.01, "warmup_fraction": 0.0},
    },
}


def write_tiny_catalog(path: Path, rows: int = 240, seed: int = 0, with_images: bool = False) -> Path:
    """CSV ``id,title,category[,image]``; images (when asked) are small PNGs next to the CSV."""
    rng = np.random.default_rng(seed)
    leaves = list(LEAF_WORDS)
    header = ["id", "title", "category"] + (["image"] if with_images else [])
    if with_images:
        (path.parent / "images").mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in range(rows):
            leaf = leaves[row % len(leaves)]
            title = f"{rng.choice(NOISE)} {rng.choice(LEAF_WORDS[leaf])} {rng.choice(NOISE)}"
            record = [f"p{row:05d}", title, leaf]
            if with_images:
                name = f"images/{row:05d}.png"
                (path.parent / name).write_bytes(_png(row, leaves.index(leaf)))
                record.append(name)
            writer.writerow(record)
    return path


def _png(seed: int, colour_index: int, size: int = 16) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    pixels = np.full((size, size, 3), 40 * colour_index, dtype=np.uint8) + rng.integers(0, 30, (size, size, 3),
                                                                                         dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


class Killed(Exception):
    """What `kill_after_epoch`'s callback raises: a simulated kill of a training run."""


def kill_after_epoch(epoch: int):
    """A Keras callback that raises `Killed` at the end of epoch ``epoch`` (1-based), as a killed job would stop."""
    import keras

    class KillAfterEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, index, logs=None):
            if index + 1 == epoch:
                raise Killed(f"simulated kill after epoch {epoch}")

    return KillAfterEpoch()


def tiny_config(**overrides) -> dict:
    """``TINY_TRAINING`` with ``section={key: value}`` overrides merged one level deep."""
    config = {section: dict(values) for section, values in TINY_TRAINING.items()}
    for section, values in overrides.items():
        config.setdefault(section, {}).update(values)
    return config


@pytest.fixture(scope="session")
def tiny_catalog_file(tmp_path_factory) -> Path:
    return write_tiny_catalog(tmp_path_factory.mktemp("catalog") / "catalog.csv")


@pytest.fixture(scope="session")
def tiny_schema():
    from linnet.data import CatalogSchema

    return CatalogSchema(id_column="id", text_columns=["title"], category_column="category")


@pytest.fixture(scope="session")
def tiny_taxonomy_file(tiny_taxonomy, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("taxonomy") / "taxonomy.json"
    tiny_taxonomy.save(path)
    return path


@pytest.fixture(scope="session")
def tiny_run(tiny_catalog_file, tiny_schema, tiny_taxonomy, tmp_path_factory):
    """One finished run of the tiny config (shared by the tests that only read a run directory)."""
    from linnet.training.trainer import train

    out = tmp_path_factory.mktemp("runs") / "tiny"
    return train(tiny_catalog_file, out, schema=tiny_schema, config=tiny_config(), taxonomy=tiny_taxonomy,
                 progress=False)
