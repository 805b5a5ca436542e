"""Item vectors after training: cosine neighbours with titles, the projector / 2-D map, and cold start.

Cold start: an item never seen in the sequences (new stock) has no item2vec vector, but it has a title. The
LinNét product embedding of titles (a classifier run or export, `linnet.embeddings.load_embedder`) is mapped
to the item2vec space by ridge regression learned on the items that have both; the mapped vector of a new
item can then be recommended and can find neighbours like any other.
"""

from __future__ import annotations

import os

import numpy as np

from linnet.embeddings.vectors import l2_normalize
from linnet.errors import ConfigError

_EXTRA_TEXT = ""


def nearest(query_vectors: np.ndarray, item_vectors: np.ndarray, k: int, exclude: np.ndarray | None = None):
    """``(indices [Q, k], cosines [Q, k])`` of the most similar items; ``exclude[q]`` (an index) is skipped."""
    similarity = l2_normalize(np.asarray(query_vectors, np.float32)) @ l2_normalize(np.asarray(item_vectors, np.float32)).T
    if exclude is not None:
        similarity[np.arange(len(similarity)), exclude] = -np.inf
    k = min(k, similarity.shape[1])
    order = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(similarity, order, axis=1)


def item_neighbours(model, items, k: int = 5) -> list[tuple]:
    """``(item_id, rank, neighbour_id, cosine, neighbour title)`` rows for known ``items``.

    Raises:
        ConfigError: an item the run does not know.
    """
    index = model.vocabulary.index(list(items))
    unknown = [item for item, position in zip(items, index) if position < 0]
    if unknown:
        raise ConfigError(f"item(s) {unknown[:5]} are not in the run's vocabulary")
    order, scores = nearest(model.vectors[index], model.vectors, k, exclude=index)
    return [(item, rank + 1, model.vocabulary.ids[j], float(score), model.titles[j])
            for item, row, row_scores in zip(items, order, scores)
            for rank, (j, score) in enumerate(zip(row, row_scores))]


def embed_titles(linnet_model, titles) -> np.ndarray:
    """LinNét product embeddings of ``titles`` (the first text input gets the title, the others ``""``)."""
    import tensorflow as tf  # lazy: TensorFlow

    from linnet.embeddings.embed import load_embedder

    embedder = load_embedder(linnet_model)
    text_inputs = [name for name in embedder.input_names if name != "image_bytes"]
    if not text_inputs:
        raise ConfigError(f"{linnet_model}: the model has no text input to embed titles with")
    titles = [str(title) for title in titles]
    parts = []
    for start in range(0, len(titles), 256):
        batch = titles[start:start + 256]
        features = {name: tf.constant(batch if position == 0 else [_EXTRA_TEXT] * len(batch))
                    for position, name in enumerate(text_inputs)}
        parts.append(embedder.embed_batch(features))
    return np.concatenate(parts) if parts else np.zeros((0, embedder.dim), np.float32)


def fit_title_map(title_vectors: np.ndarray, item_vectors: np.ndarray, ridge: float = 1.0) -> np.ndarray:
    """``W [Dt + 1, D]`` minimising ``|[X, 1] W - Y|² + ridge |W|²`` (closed form) on items with both."""
    features = np.hstack([np.asarray(title_vectors, np.float64), np.ones((len(title_vectors), 1))])
    if len(features) < 2:
        raise ConfigError("cold start needs at least two items with both a title and an item vector")
    gram = features.T @ features + ridge * np.eye(features.shape[1])
    return np.linalg.solve(gram, features.T @ np.asarray(item_vectors, np.float64)).astype(np.float32)


def apply_title_map(weights: np.ndarray, title_vectors: np.ndarray) -> np.ndarray:
    """Item-space vectors of items known only by their title vectors."""
    return (np.hstack([title_vectors, np.ones((len(title_vectors), 1), np.float32)]) @ weights).astype(np.float32)


def write_item_projector(model, out_dir: str | os.PathLike, projection: str = "tsne", colour_model=None,
                         max_points: int = 5000) -> dict:
    """`linnet.embeddings.projector` files for the item vectors, titles as metadata; the 2-D map is coloured
    by the level-1 category a LinNét classifier predicts from each title (``colour_model``), if given."""
    from linnet.embeddings.projector import write_projector

    paths = None
    if colour_model is not None:
        from linnet.serving.predict import load_predictor  # lazy: TensorFlow

        predictor = load_predictor(colour_model)
        inputs = {name: (list(model.titles) if position == 0 else [""] * len(model.titles))
                  for position, name in enumerate(predictor.input_names)}
        predicted = predictor.predict_raw(inputs)
        paths = [[str(path).split(" > ")[0]] for path in predicted["path"]]
    return write_projector(out_dir, model.vectors, list(model.vocabulary.ids), titles=list(model.titles), paths=paths,
                           projection=projection, max_png_points=max_points)


def add_cold_start_items(model, linnet_model, new_ids, new_titles, ridge: float = 1.0):
    """A copy of the sessions ``model`` whose vocabulary also holds ``new_ids`` (items never seen in a
    sequence), with item vectors mapped from their titles' LinNét embeddings (see the module docstring).

    The new items have no co-occurrence neighbours and no popularity; they reach users through the
    time-decayed user vector and are found by `nearest`.

    Raises:
        ConfigError: fewer than two known items have a title, or a new id is already known.
    """
    import dataclasses

    from linnet.sessions.cooccurrence import NeighbourTable
    from linnet.sessions.sequences import ItemVocabulary

    new_ids = np.asarray([str(item) for item in new_ids], dtype=object)
    known_already = [item for item, index in zip(new_ids, model.vocabulary.index(new_ids)) if index >= 0]
    if known_already:
        raise ConfigError(f"item(s) {known_already[:5]} are already in the run; cold start is for new items")
    titled = np.flatnonzero(np.array([bool(str(title).strip()) for title in model.titles]))
    vectors = embed_titles(linnet_model, list(model.titles[titled]) + [str(title) for title in new_titles])
    weights = fit_title_map(vectors[:len(titled)], model.vectors[titled], ridge)
    mapped = apply_title_map(weights, vectors[len(titled):])
    extra = len(new_ids)
    neighbours = NeighbourTable(np.vstack([model.neighbours.ids, np.full((extra, model.neighbours.ids.shape[1]), -1,
                                                                          dtype=model.neighbours.ids.dtype)]),
                                np.vstack([model.neighbours.weights, np.zeros((extra, model.neighbours.ids.shape[1]),
                                                                               dtype=model.neighbours.weights.dtype)]))
    return dataclasses.replace(
        model,
        vocabulary=ItemVocabulary(np.concatenate([model.vocabulary.ids, new_ids]),
                                  np.concatenate([model.vocabulary.counts, np.zeros(extra, np.int64)])),
        titles=np.concatenate([model.titles, np.asarray(list(new_titles), dtype=object)]),
        vectors=np.vstack([model.vectors, mapped]).astype(np.float32),
        neighbours=neighbours,
        popularity=np.concatenate([model.popularity, np.zeros(extra, np.float32)]),
        metrics={**model.metrics, "cold_start_items": extra, "cold_start_source": str(linnet_model)})
