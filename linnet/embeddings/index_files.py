"""A neighbour index on disk (``linnet neighbours build``): exact (TF) or approximate (faiss), with ids.

Directory layout::

    index.json      method, dim, size, parameters, where the vectors came from
    ids.npy         unicode [N] candidate ids
    vectors.npy     float32 [N, D] unit vectors (exact search; also kept with faiss for re-checks)
    faiss.index     the faiss index (methods hnsw / ivf)

Example:
    >>> import numpy as np
    >>> index = build_index(np.eye(4), ["a", "b", "c", "d"], "index_dir")  # doctest: +SKIP
    >>> load_index("index_dir").search(np.eye(4)[:1], k=2)["ids"].tolist()  # doctest: +SKIP
    [['a', 'b']]
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from linnet.atomic_files import atomic_path, write_json_atomically
from linnet.embeddings.ann import METHODS as APPROXIMATE_METHODS
from linnet.embeddings.ann import ApproximateIndex
from linnet.embeddings.neighbours import exact_top_k
from linnet.embeddings.vectors import check_k, check_vectors, l2_normalize
from linnet.errors import ConfigError, EmbeddingError

INDEX_FILE = "index.json"
METHODS = ("exact", *APPROXIMATE_METHODS)


class SearchIndex:
    """A loaded index: `search` returns ids and cosine scores of the ``k`` nearest candidates.

    Attributes:
        method: ``exact``, ``hnsw`` or ``ivf``.
        dim: Embedding dimension; queries of another dimension raise `EmbeddingError`.
        ids: Candidate ids ``[N]``.
    """

    def __init__(self, method: str, ids: np.ndarray, vectors: np.ndarray, approximate: ApproximateIndex | None = None,
                 info: dict | None = None):
        self.method = method
        self.ids = np.asarray(ids, dtype=str)
        self.vectors = vectors
        self.approximate = approximate
        self.info = info or {}
        self.dim = int(vectors.shape[1])

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, queries, k: int = 10) -> dict[str, np.ndarray]:
        """``{"ids": str [Q, k], "scores": float32 [Q, k], "indices": [Q, k]}``, best first."""
        queries = check_vectors(queries, "queries", dim=self.dim, allow_empty=True)
        k = check_k(k, len(self))
        if self.approximate is not None:
            scores, indices = self.approximate.search(queries, k)
        else:
            scores, indices = exact_top_k(queries, self.vectors, k)
        ids = np.where(indices >= 0, self.ids[np.maximum(indices, 0)], "")
        return {"ids": ids, "scores": scores.astype(np.float32), "indices": indices}


def build_index(vectors, ids, out_dir: str | os.PathLike, method: str = "exact", source: str = "",
                **params) -> SearchIndex:
    """Builds an index over ``vectors [N, D]`` with ``ids`` and writes it to ``out_dir``.

    Args:
        method: ``exact`` (TF matmul + top_k, no extra dependency), ``hnsw`` or ``ivf`` (faiss).
        params: `ApproximateIndex` arguments (``ef_search``, ``nlist``, ``nprobe``...).

    Raises:
        EmbeddingError: bad vectors (see `check_vectors`). ConfigError: unknown method, faiss missing.
    """
    if method not in METHODS:
        raise ConfigError(f"--method must be one of {METHODS}, got {method!r}")
    ids = np.asarray([str(i) for i in ids], dtype=str)
    vectors = l2_normalize(check_vectors(vectors, "candidates", ids=ids))
    if len(ids) != len(vectors):
        raise EmbeddingError(f"{len(ids)} ids for {len(vectors)} vectors")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    approximate = ApproximateIndex(method=method, **params).fit(vectors) if method != "exact" else None
    for name, array in (("ids.npy", ids), ("vectors.npy", vectors)):
        with atomic_path(out_dir / name, suffix=".npy") as temporary:  # ".npy": np.save would append it
            np.save(temporary, array)
    if approximate is not None:
        approximate.save(out_dir / "faiss.index")
    info = {"method": method, "dim": int(vectors.shape[1]), "size": len(ids), "params": params, "source": source}
    write_json_atomically(out_dir / INDEX_FILE, info)  # written last: its presence means the index is complete
    return SearchIndex(method, ids, vectors, approximate, info)


def load_index(directory: str | os.PathLike) -> SearchIndex:
    """Reads an index written by `build_index`.

    Raises:
        EmbeddingError: the directory holds no complete index.
    """
    directory = Path(directory)
    if not (directory / INDEX_FILE).is_file():
        raise EmbeddingError(f"{directory}: no {INDEX_FILE}; build one with 'linnet neighbours build'")
    info = json.loads((directory / INDEX_FILE).read_text(encoding="utf-8"))
    ids = np.load(directory / "ids.npy")
    vectors = np.load(directory / "vectors.npy")
    approximate = None
    if info["method"] != "exact":
        approximate = ApproximateIndex.load(directory / "faiss.index", method=info["method"], **info.get("params", {}))
    return SearchIndex(info["method"], ids, vectors, approximate, info)
