"""Embeddings: quality of the product space (k-NN leaf accuracy) and approximate-index recall and speed.

Quality: the fashion catalogue (title + attributes), one id-hash split. A model is trained with the
softmax leaf head and one with the ArcFace leaf head (same config otherwise). Each test product's leaf is
predicted from its nearest training products by cosine similarity of the ``embedding`` output: Acc@1 is
"the nearest neighbour has the right leaf", Acc@5 "one of the 5 nearest has it". The classifier's own leaf
accuracy (argmax, and right leaf in its top 5) is printed next to it.

Index: recall@10 of the faiss HNSW and IVF indexes against the exact TF search, build time and queries per
second, on the fashion training vectors (the test vectors as queries) and on 100,000 random 64-d vectors.

``LINNET_EMBEDDINGS_EPOCHS`` (default 3) and ``LINNET_EMBEDDINGS_MAX_ROWS`` make a quick look cheaper.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import FASHION

ATTRIBUTES = ["gender", "baseColour", "season", "year", "usage"]
K = 10


def _say(message: str) -> None:
    print(f"[embeddings] {message}", file=sys.stderr, flush=True)


def _schema():
    from linnet.data import CatalogSchema

    return CatalogSchema(id_column="id", text_columns=["productDisplayName"], attribute_columns=ATTRIBUTES,
                         category_column="category_path")


def _outputs(model, catalog, leaf_output: str, batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings [N, D], leaf probabilities [N, n_leaf]) in one pass over the catalog."""
    import tensorflow as tf

    from linnet.data import make_dataset

    input_names = [tensor.name.split(":")[0] for tensor in model.inputs]
    call = tf.function(lambda features: model(features, training=False), reduce_retracing=True)
    embeddings, leaves = [], []
    for features in make_dataset(catalog, batch_size=batch_size, with_labels=False, deterministic=True):
        outputs = call({name: features[name] for name in input_names})
        embeddings.append(outputs["embedding"].numpy())
        leaves.append(outputs[leaf_output].numpy())
    return np.concatenate(embeddings), np.concatenate(leaves)


def _knn_accuracy(train_vectors, train_leaf, test_vectors, test_leaf, k: int = 5) -> tuple[float, float]:
    from linnet.embeddings import exact_top_k

    _, neighbours = exact_top_k(test_vectors, train_vectors, k=k, batch_size=2048)
    neighbour_leaves = train_leaf[neighbours]
    return (float(np.mean(neighbour_leaves[:, 0] == test_leaf)),
            float(np.mean((neighbour_leaves == test_leaf[:, None]).any(axis=1))))


def _has_cosine_head(model) -> bool:
    from linnet.model.arcface import CosineSimilarityHead

    return any(isinstance(layer, CosineSimilarityHead) for layer in model._flatten_layers())


def _arcface_wired(taxonomy, text_fields) -> bool:
    """Whether ``build_model`` honours ``leaf_head: arcface`` (checked on a tiny model before hours of training)."""
    from linnet.model import ModelConfig, build_model

    config = ModelConfig(leaf_head="arcface", text_encoder={"name": "hashed_ngrams", "num_bins": 64, "embedding_dim": 4},
                         fusion_dim=8, head_hidden_units=[8])
    return _has_cosine_head(build_model(config, taxonomy, text_fields=text_fields))


def _quality_rows(catalog, catalog_path: Path, work: Path, epochs: int) -> tuple[list[dict], dict]:
    from linnet.training.trainer import train

    leaf_level = catalog.num_levels
    leaf_output = f"level_{leaf_level}"
    train_part, test_part = catalog.subset("train"), catalog.subset("test")
    train_labelled = train_part.labels[:, -1] >= 0
    test_labelled = test_part.labels[:, -1] >= 0
    rows, vectors = [], {}
    for head in ("softmax", "arcface"):
        if head == "arcface" and not _arcface_wired(catalog.taxonomy, catalog.schema.feature_text_fields):
            rows.append({"leaf head": head, "note": "build_model ignores leaf_head: arcface (not wired yet)"})
            continue
        config = {"model": {"leaf_head": head}, "training": {"epochs": epochs, "verbose": 0}}
        _say(f"training the {head} leaf head ({epochs} epochs)")
        started = time.perf_counter()
        try:
            run = train(catalog_path, work / f"run-{head}", schema=catalog.schema, config=config, catalog=catalog,
                        progress=False)
        except Exception as error:  # noqa: BLE001  one failed variant must not hide the other row
            rows.append({"leaf head": head, "note": f"not trained: {type(error).__name__}: {error}"[:200]})
            continue
        seconds = time.perf_counter() - started
        if head == "arcface" and not _has_cosine_head(run.model):
            rows.append({"leaf head": head, "note": "build_model ignores leaf_head: arcface (not wired yet)"})
            continue
        train_vectors, _ = _outputs(run.model, train_part, leaf_output)
        test_vectors, test_probabilities = _outputs(run.model, test_part, leaf_output)
        truth = test_part.labels[test_labelled, -1]
        knn_1, knn_5 = _knn_accuracy(train_vectors[train_labelled], train_part.labels[train_labelled, -1],
                                     test_vectors[test_labelled], truth)
        top5 = np.argsort(-test_probabilities[test_labelled], axis=1)[:, :5]
        rows.append({
            "leaf head": head,
            "k-NN Acc@1": knn_1,
            "k-NN Acc@5": knn_5,
            "classifier Acc@1": float(np.mean(top5[:, 0] == truth)),
            "classifier Acc@5": float(np.mean((top5 == truth[:, None]).any(axis=1))),
            "dim": int(train_vectors.shape[1]),
            "epochs": epochs,
            "train s": seconds,
        })
        vectors[head] = (train_vectors, test_vectors)
    return rows, vectors


def _index_rows(name: str, candidates: np.ndarray, queries: np.ndarray) -> list[dict]:
    from linnet.embeddings import exact_top_k
    from linnet.embeddings.ann import ApproximateIndex, recall_at_k

    started = time.perf_counter()
    _, exact = exact_top_k(queries, candidates, k=K, batch_size=1024)
    exact_seconds = time.perf_counter() - started
    rows = [{"data": name, "index": "exact (TF matmul + top_k)", "build s": 0.0, "recall@10": 1.0,
             "queries/s": len(queries) / exact_seconds}]
    try:
        import faiss  # noqa: F401
    except ImportError:
        return rows + [{"data": name, "index": "faiss", "note": "faiss not installed (pip install 'linnet[ann]')"}]
    _say(f"approximate indexes on {name}")
    for label, params in (("faiss HNSW (M=32, efSearch=64)", {"method": "hnsw"}),
                          ("faiss IVF (nprobe=16)", {"method": "ivf", "nprobe": 16})):
        started = time.perf_counter()
        index = ApproximateIndex(**params).fit(candidates)
        build = time.perf_counter() - started
        started = time.perf_counter()
        _, approximate = index.search(queries, k=K)
        seconds = time.perf_counter() - started
        rows.append({"data": name, "index": label, "build s": build, "recall@10": recall_at_k(approximate, exact),
                     "queries/s": len(queries) / seconds})
    return rows


def run() -> dict:
    tables: dict[str, list[dict]] = {}
    epochs = int(os.environ.get("LINNET_EMBEDDINGS_EPOCHS", "3"))
    max_rows = int(os.environ.get("LINNET_EMBEDDINGS_MAX_ROWS", "0")) or None
    if (FASHION / "styles.csv").is_file():
        from linnet.data import prepare_catalog
        from linnet.training.config import TrainingConfig

        defaults = TrainingConfig().data
        catalog = prepare_catalog(FASHION / "styles.csv", _schema(), max_rows=max_rows, split=tuple(defaults.split),
                                  split_salt=defaults.split_salt)
        with tempfile.TemporaryDirectory() as scratch:
            rows, vectors = _quality_rows(catalog, FASHION / "styles.csv", Path(scratch), epochs)
        counts = {split: int(np.sum(catalog.split == split)) for split in ("train", "test")}
        tables[f"k-NN leaf accuracy, fashion ({counts['train']:,} train neighbours, {counts['test']:,} test)"] = rows
        if vectors:
            train_vectors, test_vectors = next(iter(vectors.values()))
            index_rows = _index_rows(f"fashion {next(iter(vectors))} ({len(train_vectors):,} x {train_vectors.shape[1]})",
                                     train_vectors, test_vectors)
        else:
            index_rows = []
    else:
        tables["k-NN leaf accuracy"] = [{"note": f"fashion catalogue not found at {FASHION}"}]
        index_rows = []
    rng = np.random.default_rng(0)
    candidates = rng.normal(size=(100_000, 64)).astype(np.float32)
    queries = rng.normal(size=(2_000, 64)).astype(np.float32)
    index_rows += _index_rows("random (100,000 x 64)", candidates, queries)
    tables["nearest-neighbour index: recall@10 vs exact, speed"] = index_rows
    return tables
