"""Checks and normalisation of embedding matrices (NumPy only; every other embeddings module calls these)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from linnet.errors import EmbeddingError


def check_vectors(vectors, name: str = "vectors", dim: int | None = None, ids: Sequence | None = None,
                  allow_empty: bool = False) -> np.ndarray:
    """``vectors`` as a float32 ``[N, D]`` array, or an `EmbeddingError` that says what is wrong.

    Args:
        vectors: Array-like ``[N, D]`` (a single ``[D]`` vector is not accepted: be explicit).
        name: What the vectors are, for the message (``"queries"``, ``"candidates"``).
        dim: Expected ``D`` (the index's or the model's), checked when given.
        ids: Row ids, used to name the first non-finite row.
        allow_empty: Accept ``N == 0``.

    Example:
        >>> check_vectors([[1.0, 0.0]]).dtype
        dtype('float32')
    """
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim != 2:
        raise EmbeddingError(f"{name}: expected a 2-D [rows, dim] matrix, got shape {array.shape}")
    if array.shape[0] == 0 and not allow_empty:
        raise EmbeddingError(f"{name}: empty (0 rows); there is nothing to search")
    if array.shape[1] == 0:
        raise EmbeddingError(f"{name}: vectors have dimension 0")
    if dim is not None and array.shape[1] != dim:
        raise EmbeddingError(f"{name}: embedding dimension {array.shape[1]} does not match {dim} "
                             "(index and model/vectors must come from the same embedding)")
    finite = np.isfinite(array).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        first = bad[0] if ids is None else f"{bad[0]} (id {ids[bad[0]]!r})"
        raise EmbeddingError(f"{name}: {len(bad)} row(s) hold NaN or infinite values, first at row {first}")
    return array


def l2_normalize(vectors: np.ndarray, epsilon: float = 1e-12) -> np.ndarray:
    """Rows scaled to unit length (a zero row stays zero, so its cosine with anything is 0).

    Example:
        >>> l2_normalize(np.array([[3.0, 4.0]], np.float32)).tolist()
        [[0.6000000238418579, 0.800000011920929]]
    """
    norms = np.sqrt(np.maximum(np.sum(np.square(vectors, dtype=np.float64), axis=1, keepdims=True), epsilon))
    return (vectors / norms).astype(np.float32)


def check_k(k: int, index_size: int) -> int:
    """``k`` as an int in ``[1, index_size]``, else an `EmbeddingError`."""
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise EmbeddingError(f"k must be a positive integer, got {k!r}")
    if k > index_size:
        raise EmbeddingError(f"k={k} is larger than the index ({index_size} vectors); ask for at most {index_size}")
    return int(k)
