"""Approximate nearest neighbours for large catalogs with faiss (``pip install 'linnet[ann]'``).

Vectors are L2-normalised and searched by inner product, so scores are cosine similarities, as in the
exact search. ``hnsw`` (default) needs no training and gives high recall; ``ivf`` trains coarse clusters
(``nlist``) and probes ``nprobe`` of them per query, which uses less memory on very large catalogs.

Example:
    >>> import numpy as np
    >>> vectors = np.random.default_rng(0).normal(size=(1000, 16)).astype("float32")
    >>> index = ApproximateIndex().fit(vectors)  # doctest: +SKIP
    >>> scores, indices = index.search(vectors[:3], k=5)  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os

import numpy as np

from linnet.atomic_files import atomic_path
from linnet.embeddings.vectors import check_k, check_vectors, l2_normalize
from linnet.errors import ConfigError, EmbeddingError

METHODS = ("hnsw", "ivf")


def import_faiss():
    """The faiss module, or a `ConfigError` telling how to install it."""
    try:
        import faiss  # lazy: an optional dependency (the 'ann' extra)
    except ImportError:
        raise ConfigError("the approximate index needs faiss: pip install 'linnet[ann]' (or pip install faiss-cpu); "
                          "the exact index (--method exact) works without it") from None
    return faiss


class ApproximateIndex:
    """A faiss index over unit vectors (inner product = cosine), scikit-learn style: `fit`, then `search`.

    Args:
        method: ``"hnsw"`` (graph, no training) or ``"ivf"`` (inverted lists over k-means clusters).
        hnsw_neighbours: HNSW graph degree ``M``.
        ef_construction / ef_search: HNSW beam widths when building / querying (higher: better recall, slower).
        nlist: IVF clusters (default ``4 * sqrt(N)``, at most ``N / 39`` so k-means has data to train on).
        nprobe: IVF clusters probed per query.
        threads: faiss OpenMP threads (None: faiss's default).

    Attributes:
        index_: The fitted faiss index.
        dim_: Embedding dimension.
        size_: Number of indexed vectors.
    """

    def __init__(self, method: str = "hnsw", hnsw_neighbours: int = 32, ef_construction: int = 80,
                 ef_search: int = 64, nlist: int | None = None, nprobe: int = 16, threads: int | None = None):
        if method not in METHODS:
            raise ConfigError(f"method must be one of {METHODS}, got {method!r}")
        self.method = method
        self.hnsw_neighbours = hnsw_neighbours
        self.ef_construction = ef_construction
        self.ef_search = ef_search
        self.nlist = nlist
        self.nprobe = nprobe
        self.threads = threads

    def fit(self, vectors) -> ApproximateIndex:
        """Builds the index over ``vectors [N, D]``."""
        faiss = import_faiss()
        if self.threads:
            faiss.omp_set_num_threads(int(self.threads))
        vectors = l2_normalize(check_vectors(vectors, "candidates"))
        size, dim = vectors.shape
        if self.method == "hnsw":
            index = faiss.IndexHNSWFlat(dim, self.hnsw_neighbours, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self.ef_construction
            index.hnsw.efSearch = self.ef_search
        else:
            nlist = self.nlist or max(1, min(int(4 * math.sqrt(size)), size // 39))
            quantizer = faiss.IndexFlatIP(dim)
            index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            index.train(vectors)
            index.nprobe = min(self.nprobe, nlist)
        index.add(vectors)
        self.index_, self.dim_, self.size_ = index, dim, size
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "index_"):
            raise EmbeddingError("the approximate index is not built yet: call fit(vectors) first")

    def search(self, queries, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """``(scores float32 [Q, k], indices int64 [Q, k])`` of the approximate ``k`` nearest vectors.

        An index position of ``-1`` means faiss found fewer than ``k`` (possible with small ``nprobe``).
        """
        self._check_fitted()
        queries = l2_normalize(check_vectors(queries, "queries", dim=self.dim_, allow_empty=True))
        k = check_k(k, self.size_)
        if len(queries) == 0:
            return np.zeros((0, k), np.float32), np.zeros((0, k), np.int64)
        scores, indices = self.index_.search(queries, k)
        return scores, indices

    def save(self, path: str | os.PathLike) -> None:
        """Writes the faiss index file atomically."""
        self._check_fitted()
        faiss = import_faiss()
        with atomic_path(path) as temporary:
            faiss.write_index(self.index_, str(temporary))

    @classmethod
    def load(cls, path: str | os.PathLike, **params) -> ApproximateIndex:
        """Reads an index written by `save` (``params`` are the constructor arguments it was built with)."""
        faiss = import_faiss()
        index = faiss.read_index(str(path))
        approximate = cls(**params)
        if approximate.method == "hnsw":
            index.hnsw.efSearch = approximate.ef_search
        else:
            index.nprobe = min(approximate.nprobe, index.nlist)
        approximate.index_, approximate.dim_, approximate.size_ = index, index.d, index.ntotal
        return approximate


def recall_at_k(approximate_indices: np.ndarray, exact_indices: np.ndarray) -> float:
    """Mean fraction of each query's exact top-k that the approximate top-k also returned.

    Example:
        >>> recall_at_k(np.array([[1, 2], [3, 9]]), np.array([[2, 1], [3, 4]]))
        0.75
    """
    approximate_indices, exact_indices = np.asarray(approximate_indices), np.asarray(exact_indices)
    if approximate_indices.shape != exact_indices.shape:
        raise EmbeddingError(f"recall needs equal shapes, got {approximate_indices.shape} and {exact_indices.shape}")
    if exact_indices.size == 0:
        return float("nan")
    hits = sum(len(set(a.tolist()) & set(e.tolist())) for a, e in zip(approximate_indices, exact_indices))
    return hits / exact_indices.size
