"""Exact top-k cosine neighbours in TensorFlow, and a `NeighbourIndex` that ships inside a SavedModel.

Search is a batched matmul of unit vectors followed by ``tf.math.top_k``: exact, no Python per row, and
the same graph works eagerly, in a ``tf.function`` and as a SavedModel signature.

Example:
    >>> import numpy as np
    >>> index = NeighbourIndex(np.eye(3, dtype="float32"), ids=["a", "b", "c"])
    >>> result = index.search(np.array([[0.9, 0.1, 0.0]], "float32"), k=2)
    >>> [i.decode() for i in result["ids"][0]]
    ['a', 'b']
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from linnet.atomic_files import atomic_directory
from linnet.embeddings.vectors import check_k, check_vectors, l2_normalize
from linnet.errors import EmbeddingError
from linnet.serving.export import EMBED_SIGNATURE, load_saved_model

DEFAULT_QUERY_BATCH = 1024
NEIGHBOURS_SIGNATURE = "neighbours"


def _search_graph(queries, candidates, k):
    """TF ops: cosine scores and indices of the ``k`` nearest candidates (both inputs already unit rows)."""
    import tensorflow as tf  # lazy: the embeddings package and the faiss index run without TensorFlow

    queries = tf.math.l2_normalize(tf.cast(queries, tf.float32), axis=-1)
    scores = tf.linalg.matmul(queries, candidates, transpose_b=True)
    top = tf.math.top_k(scores, k=k, sorted=True)
    return top.values, tf.cast(top.indices, tf.int32)


_COMPILED_SEARCH = []


def _compiled_search():
    """One traced `_search_graph` per process (a new ``tf.function`` per call would retrace every time)."""
    import tensorflow as tf  # lazy: the embeddings package and the faiss index run without TensorFlow

    if not _COMPILED_SEARCH:
        _COMPILED_SEARCH.append(tf.function(_search_graph, reduce_retracing=True))
    return _COMPILED_SEARCH[0]


def exact_top_k(queries, candidates, k: int, batch_size: int = DEFAULT_QUERY_BATCH,
                exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Exact ``k`` nearest candidates of each query by cosine similarity.

    Args:
        queries: ``[Q, D]`` vectors (need not be normalised).
        candidates: ``[N, D]`` vectors (need not be normalised).
        k: Neighbours per query, ``1 <= k <= N``.
        batch_size: Queries per matmul (bounds memory to ``batch_size x N`` scores).
        exclude_self: Queries are the candidates themselves (same order): drop each row's own match.

    Returns:
        ``(scores float32 [Q, k], indices int32 [Q, k])``, best first.

    Raises:
        EmbeddingError: for a dimension mismatch, no candidates, ``k`` larger than the candidates, or NaN/inf.

    Example:
        >>> import numpy as np
        >>> scores, indices = exact_top_k(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0], [2.0, 0.1]]), k=1)
        >>> indices.tolist()
        [[1]]
    """
    import tensorflow as tf  # lazy: the embeddings package and the faiss index run without TensorFlow

    candidates = check_vectors(candidates, "candidates")
    queries = check_vectors(queries, "queries", dim=candidates.shape[1], allow_empty=True)
    if exclude_self and len(queries) != len(candidates):
        raise EmbeddingError("exclude_self needs the queries to be the candidates themselves")
    k = check_k(k, len(candidates) - int(exclude_self))
    candidate_tensor = tf.constant(l2_normalize(candidates))
    search = _compiled_search()
    fetch = k + int(exclude_self)
    all_scores, all_indices = [], []
    for start in range(0, len(queries), batch_size):
        scores, indices = search(tf.constant(queries[start:start + batch_size]), candidate_tensor, tf.constant(fetch))
        scores, indices = scores.numpy(), indices.numpy()
        if exclude_self:
            scores, indices = _drop_self(scores, indices, np.arange(start, start + len(indices)), k)
        all_scores.append(scores)
        all_indices.append(indices)
    if not all_scores:
        return np.zeros((0, k), np.float32), np.zeros((0, k), np.int32)
    return np.concatenate(all_scores), np.concatenate(all_indices)


def _drop_self(scores: np.ndarray, indices: np.ndarray, own: np.ndarray, k: int):
    """Removes each row's own index (or, with duplicates ranking first, its last entry) keeping k columns."""
    is_self = indices == own[:, None]
    # Rows where self is not in the top k+1 (exact duplicates tie with it): drop the last column instead.
    is_self[~is_self.any(axis=1), -1] = True
    keep = ~is_self
    return scores[keep].reshape(len(scores), k), indices[keep].reshape(len(indices), k)


class NeighbourIndex:
    """Candidate vectors and ids held as TF variables, searchable eagerly, in graphs and in a SavedModel.

    Args:
        vectors: ``[N, D]`` candidate vectors (normalised here; cosine similarity).
        ids: ``N`` candidate ids (str); default ``"0"``, ``"1"``, ...
        as_constant: Bake the candidates into the graph as constants instead of variables (variables are
            the default: they keep the graph small and can be reassigned with `assign` in the same shape).

    Attributes:
        dim: Embedding dimension ``D``.
        size: Number of candidates ``N``.

    Example:
        >>> import numpy as np
        >>> index = NeighbourIndex(np.random.default_rng(0).normal(size=(10, 4)))
        >>> index.search(np.ones((2, 4)), k=3)["scores"].shape
        (2, 3)
    """

    def __init__(self, vectors, ids: Sequence[str] | None = None, as_constant: bool = False):
        import tensorflow as tf  # lazy: the embeddings package and the faiss index run without TensorFlow

        ids = [str(i) for i in range(len(vectors))] if ids is None else [str(i) for i in ids]
        vectors = check_vectors(vectors, "candidates", ids=ids)
        if len(ids) != len(vectors):
            raise EmbeddingError(f"{len(ids)} ids for {len(vectors)} candidate vectors")
        self.dim = int(vectors.shape[1])
        self.size = int(vectors.shape[0])
        self.as_constant = as_constant
        self.module = tf.Module(name="neighbour_index")
        if as_constant:
            self.module.vectors = tf.constant(l2_normalize(vectors))
            self.module.ids = tf.constant(np.char.encode(np.asarray(ids, dtype=object).astype(str), "utf-8"))
        else:
            self.module.vectors = tf.Variable(l2_normalize(vectors), trainable=False, name="candidate_vectors")
            self.module.ids = tf.Variable(np.char.encode(np.asarray(ids, dtype=object).astype(str), "utf-8"), trainable=False,
                                          name="candidate_ids", dtype=tf.string)

    def graph_search(self, queries, k):
        """TF ops for use inside ``tf.function``/signatures: dict of ``ids``, ``scores``, ``indices``."""
        import tensorflow as tf  # lazy: the embeddings package and the faiss index run without TensorFlow

        queries = tf.convert_to_tensor(queries, tf.float32)
        if queries.shape.rank is not None and queries.shape[-1] is not None and queries.shape[-1] != self.dim:
            raise EmbeddingError(f"queries: embedding dimension {queries.shape[-1]} does not match the index's {self.dim}")
        checks = [
            tf.debugging.assert_less_equal(tf.cast(k, tf.int32), tf.shape(self.module.vectors)[0],
                                           message="k is larger than the neighbour index"),
            tf.debugging.assert_all_finite(queries, message="queries hold NaN or infinite values"),
        ]
        with tf.control_dependencies(checks):
            scores, indices = _search_graph(queries, self.module.vectors, k)
        return {"ids": tf.gather(self.module.ids, indices), "scores": scores, "indices": indices}

    def search(self, queries, k: int = 10, batch_size: int = DEFAULT_QUERY_BATCH) -> dict[str, np.ndarray]:
        """Exact ``k`` nearest candidates: ``{"ids": bytes [Q, k], "scores": [Q, k], "indices": int32 [Q, k]}``.

        Raises:
            EmbeddingError: dimension mismatch, ``k`` larger than the index, NaN/inf queries.
        """
        import tensorflow as tf  # lazy: the embeddings package and the faiss index run without TensorFlow

        queries = check_vectors(queries, "queries", dim=self.dim, allow_empty=True)
        k = check_k(k, self.size)
        if not hasattr(self, "_search_function"):
            self._search_function = tf.function(self.graph_search, reduce_retracing=True)
        parts = [self._search_function(tf.constant(queries[start:start + batch_size]), tf.constant(k))
                 for start in range(0, len(queries), batch_size)]
        if not parts:
            return {"ids": np.zeros((0, k), object), "scores": np.zeros((0, k), np.float32),
                    "indices": np.zeros((0, k), np.int32)}
        return {key: np.concatenate([part[key].numpy() for part in parts]) for key in ("ids", "scores", "indices")}

    def vector_signature(self, k: int):
        """Concrete function ``embedding float32 [B, D] -> {ids, scores, indices}`` with ``k`` fixed."""
        import tensorflow as tf  # lazy: the embeddings package and the faiss index run without TensorFlow

        k = check_k(k, self.size)

        @tf.function(input_signature=[tf.TensorSpec([None, self.dim], tf.float32, name="embedding")])
        def neighbours_of_vectors(embedding):
            return self.graph_search(embedding, k)

        return neighbours_of_vectors.get_concrete_function()


def add_neighbours_signature(saved_model_dir: str | os.PathLike, index: NeighbourIndex, out_dir: str | os.PathLike,
                             k: int = 10, embed_signature: str = EMBED_SIGNATURE) -> Path:
    """Copies a SavedModel to ``out_dir`` with a ``neighbours`` signature that searches ``index``.

    When the SavedModel has an ``embed`` signature, ``neighbours`` takes the same product inputs, embeds
    them and returns ``ids``, ``scores``, ``indices`` (``[B, k]``) and ``embedding``; a second signature
    ``neighbours_by_vector`` takes ``embedding [B, D]`` directly. The candidates travel as variables of the
    SavedModel. Assets, ``assets.extra`` (TF Serving warm-up) and other files of the source directory are
    copied along.

    Raises:
        EmbeddingError: the model's embedding dimension differs from the index's, or ``k`` is too large.

    Example:
        >>> add_neighbours_signature("export/linnet/1", index, "export/linnet/2", k=10)  # doctest: +SKIP
    """
    import tensorflow as tf  # lazy: the embeddings package and the faiss index run without TensorFlow

    source, out_dir = Path(saved_model_dir), Path(out_dir)
    k = check_k(k, index.size)
    loaded = load_saved_model(source)
    signatures = dict(loaded.signatures)
    signatures["neighbours_by_vector"] = index.vector_signature(k)
    if embed_signature in signatures:
        embed = signatures[embed_signature]
        _, input_specs = embed.structured_input_signature
        embedding_spec = embed.structured_outputs.get("embedding")
        if embedding_spec is None:
            raise EmbeddingError(f"{source}: the {embed_signature!r} signature has no 'embedding' output")
        model_dim = embedding_spec.shape[-1]
        if model_dim is not None and model_dim != index.dim:
            raise EmbeddingError(f"{source}: the model's embedding dimension {model_dim} does not match the "
                                 f"index's {index.dim}")

        def neighbours(**inputs):
            embedding = embed(**inputs)["embedding"]
            return {**index.graph_search(embedding, k), "embedding": embedding}

        signatures[NEIGHBOURS_SIGNATURE] = tf.function(neighbours).get_concrete_function(**input_specs)
    else:
        signatures[NEIGHBOURS_SIGNATURE] = signatures["neighbours_by_vector"]
    loaded.neighbour_index = index.module
    with atomic_directory(out_dir) as temporary:
        tf.saved_model.save(loaded, str(temporary), signatures=signatures)
        for entry in source.iterdir():  # MODEL_CARD.md, assets.extra/ ... that tf.saved_model.save does not write
            target = temporary / entry.name
            if not target.exists():
                (shutil.copytree if entry.is_dir() else shutil.copy2)(entry, target)
        if out_dir.exists():  # replaced only once the new copy is complete
            shutil.rmtree(out_dir)
    return out_dir
