"""Candidate duplicate pairs: products whose embeddings' cosine similarity is at least a threshold.

Used to group offers of the same product from different sellers into one product card: match a new feed
against the catalog (two sets) or find duplicates inside one catalog.

Example:
    >>> import numpy as np
    >>> vectors = np.array([[1.0, 0.0], [0.99, 0.05], [0.0, 1.0]])
    >>> match(vectors, ["a", "b", "c"], threshold=0.9).to_dict("records")  # doctest: +ELLIPSIS
    [{'id_a': 'a', 'id_b': 'b', 'score': 0.99...}]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from linnet.embeddings.neighbours import exact_top_k
from linnet.embeddings.vectors import check_vectors
from linnet.errors import EmbeddingError


def match(vectors_a, ids_a: Sequence[str], vectors_b=None, ids_b: Sequence[str] | None = None,
          threshold: float = 0.9, k: int = 10, batch_size: int = 1024):
    """Pairs ``(id_a, id_b, score)`` with cosine ``score >= threshold``, highest first.

    Each product of A is compared with its ``k`` nearest products of B (exact search), so at most ``k``
    pairs per product of A are returned; raise ``k`` for very dense duplicate groups. Without B, A is
    matched against itself: a product never pairs with itself and each pair appears once.

    Args:
        vectors_a / ids_a: The first catalog's vectors ``[N, D]`` and ids.
        vectors_b / ids_b: The second catalog's (None: within A).
        threshold: Minimum cosine similarity, in ``[-1, 1]``.
        k: Candidates looked at per product of A (clipped to the size of B).

    Returns:
        ``pandas.DataFrame`` with columns ``id_a``, ``id_b``, ``score``.

    Raises:
        EmbeddingError: dimension mismatch, empty B, non-finite vectors, bad threshold.
    """
    import pandas as pd  # lazy: pandas costs start-up time (the result is a DataFrame)

    if not -1.0 <= threshold <= 1.0:
        raise EmbeddingError(f"threshold is a cosine similarity in [-1, 1], got {threshold}")
    within = vectors_b is None
    vectors_a = check_vectors(vectors_a, "catalog A", ids=ids_a, allow_empty=True)
    vectors_b = vectors_a if within else check_vectors(vectors_b, "catalog B", dim=vectors_a.shape[1], ids=ids_b)
    ids_a = np.asarray([str(i) for i in ids_a], dtype=object)
    ids_b = ids_a if within else np.asarray([str(i) for i in ids_b], dtype=object)
    if len(ids_a) != len(vectors_a) or len(ids_b) != len(vectors_b):
        raise EmbeddingError("each catalog needs one id per vector")
    empty = pd.DataFrame({"id_a": pd.Series(dtype=str), "id_b": pd.Series(dtype=str), "score": pd.Series(dtype=np.float32)})
    available = len(vectors_b) - int(within)
    if len(vectors_a) == 0 or (within and available < 1):
        return empty
    scores, indices = exact_top_k(vectors_a, vectors_b, k=min(k, available), batch_size=batch_size,
                                  exclude_self=within)
    rows = np.repeat(np.arange(len(vectors_a)), scores.shape[1])
    columns, values = indices.reshape(-1), scores.reshape(-1)
    keep = values >= threshold
    rows, columns, values = rows[keep], columns[keep], values[keep]
    if within:
        # (i, j) and (j, i) are one pair; each may be found from either side, so canonicalise, then dedupe.
        rows, columns = np.minimum(rows, columns), np.maximum(rows, columns)
        _, first = np.unique(rows.astype(np.int64) * len(ids_a) + columns, return_index=True)
        rows, columns, values = rows[first], columns[first], values[first]
    if len(values) == 0:
        return empty
    frame = pd.DataFrame({"id_a": ids_a[rows], "id_b": ids_b[columns], "score": values.astype(np.float32)})
    return frame.sort_values(["score", "id_a", "id_b"], ascending=[False, True, True], kind="stable").reset_index(drop=True)
