"""A tiny text model with the model output contract (``level_k`` probabilities + ``embedding``) and catalog.

The model is built once per session; it is built here rather than with ``linnet.model.build_model`` so
the embeddings tests only depend on the contract (dict outputs, L2-normalised ``embedding``).
"""

from __future__ import annotations

import csv

import numpy as np
import pytest

WORDS = ["red", "blue", "cotton", "leather", "shirt", "shoe", "bag", "watch", "slim", "classic"]
CATEGORIES = ["Apparel > Tops", "Apparel > Shoes", "Accessories > Bags", "Accessories > Watches"]


@pytest.fixture(scope="session")
def tiny_model():
    import keras

    from linnet.encoders import build_text_encoder

    keras.utils.set_random_seed(0)
    title = keras.Input(shape=(), dtype="string", name="title")
    encoded = build_text_encoder("hashed_ngrams", ["title"], num_bins=512, embedding_dim=16)({"title": title})
    hidden = keras.layers.Dense(16, activation="relu", name="fuse")(encoded)
    embedding = keras.layers.UnitNormalization(name="embedding")(hidden)
    level_1 = keras.layers.Dense(2, activation="softmax", name="level_1")(hidden)
    level_2 = keras.layers.Dense(4, activation="softmax", name="level_2")(keras.layers.Concatenate()([hidden, level_1]))
    return keras.Model({"title": title}, {"level_1": level_1, "level_2": level_2, "embedding": embedding},
                       name="tiny_linnet")


@pytest.fixture(scope="session")
def tiny_model_file(tiny_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.keras"
    tiny_model.save(path)
    return path


@pytest.fixture(scope="session")
def tiny_catalog(tmp_path_factory):
    """CSV ``id,title,category`` of 45 products, with one bad row (an empty id) the jobs must skip."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("catalog") / "catalog.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "title", "category"])
        for row in range(45):
            words = " ".join(rng.choice(WORDS, size=3))
            writer.writerow([f"p{row:03d}", words, CATEGORIES[row % 4]])
        writer.writerow(["", "no id here", CATEGORIES[0]])
    return path


@pytest.fixture(scope="session")
def tiny_schema():
    from linnet.data import CatalogSchema

    return CatalogSchema(id_column="id", text_columns=["title"], category_column="category")


@pytest.fixture(scope="session")
def tiny_export(tiny_model, tmp_path_factory):
    """The tiny model exported by the inference room's `export_model` (signatures serving_default/embed/scores)."""
    from linnet.data import CatalogSchema
    from linnet.serving.export import export_model
    from linnet.taxonomy import Taxonomy

    taxonomy = Taxonomy.from_paths(CATEGORIES, separator=" > ")
    schema = CatalogSchema(id_column="id", text_columns=["title"], category_column="category")
    return export_model(tiny_model, taxonomy, tmp_path_factory.mktemp("exports"), name="tiny", schema=schema)


def write_vectors_dir(directory, ids, vectors, shard_rows=7):
    from linnet.embeddings.embed import (
        EmbeddingResult,  # noqa: F401  the module owns the layout
        _write_json,
        _write_shard,
    )

    directory.mkdir(parents=True, exist_ok=True)
    shards = [_write_shard(directory, number, ids[start:start + shard_rows], vectors[start:start + shard_rows], "npy")
              for number, start in enumerate(range(0, len(ids), shard_rows))]
    _write_json(directory / "manifest.json", {"dim": vectors.shape[1], "rows": len(ids), "num_shards": len(shards),
                                              "shards": shards, "complete": True})
    return directory


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="session")
def clustered():
    """30 products in 3 tight clusters, plus ids."""
    rng = np.random.default_rng(5)
    centres = rng.normal(size=(3, 8))
    vectors = (centres[np.arange(30) % 3] + 0.05 * rng.normal(size=(30, 8))).astype(np.float32)
    return np.array([f"p{i:02d}" for i in range(30)]), vectors


def brute_force(queries, candidates, k):
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    c = candidates / np.linalg.norm(candidates, axis=1, keepdims=True)
    scores = q @ c.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, axis=1), order
