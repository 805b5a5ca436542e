"""Item co-occurrence: items bought in the same basket (or clicked in the same session), as a cosine
similarity kept to each item's ``K`` nearest neighbours (SciPy sparse products, no Python per event).

``S[i, j] = c_ij / sqrt(c_i c_j)``, ``c_ij`` the number of baskets holding both ``i`` and ``j``, ``c_i`` the
number holding ``i``; the diagonal is 0.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import sparse

from linnet.sessions.sequences import Sequences


@dataclasses.dataclass
class NeighbourTable:
    """Each item's ``K`` most co-occurring items: ``ids [M, K]`` (-1 = none) and ``weights [M, K]``."""

    ids: np.ndarray
    weights: np.ndarray

    def matrix(self) -> sparse.csr_matrix:
        """The table as a sparse ``[M, M]`` matrix."""
        num_items, k = self.ids.shape
        valid = self.ids >= 0
        rows = np.repeat(np.arange(num_items), k).reshape(num_items, k)
        return sparse.csr_matrix((self.weights[valid], (rows[valid], self.ids[valid])), shape=(num_items, num_items))


def basket_matrix(sequences: Sequences, num_items: int) -> sparse.csr_matrix:
    """Binary ``[baskets, M]`` matrix, one row per (user, basket) of the known items."""
    known = sequences.items >= 0
    owner = sequences.owner()[known]
    key = owner.astype(np.int64) * (int(sequences.baskets.max(initial=0)) + 1) + sequences.baskets[known]
    _, rows = np.unique(key, return_inverse=True)
    matrix = sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, sequences.items[known])),
                               shape=(int(rows.max(initial=-1)) + 1, num_items))
    matrix.data[:] = 1.0  # an item twice in a basket counts once
    return matrix


def cooccurrence_neighbours(sequences: Sequences, num_items: int, k: int = 100) -> NeighbourTable:
    """The ``k`` highest-cosine co-occurring items of every item (see the module docstring)."""
    baskets = basket_matrix(sequences, num_items)  # 0/1: an item twice in a basket counts once
    counts = np.asarray(baskets.sum(axis=0)).ravel()
    together = (baskets.T @ baskets).tocsr()
    together.setdiag(0)
    together.eliminate_zeros()
    norm = np.sqrt(np.maximum(counts, 1.0))
    together = sparse.diags(1.0 / norm) @ together @ sparse.diags(1.0 / norm)
    together = together.tocsr()
    ids = np.full((num_items, k), -1, dtype=np.int32)
    weights = np.zeros((num_items, k), dtype=np.float32)
    lengths = np.diff(together.indptr)
    if together.nnz:
        # Sort every row's entries by weight (descending) with one lexsort over (row, -weight).
        rows = np.repeat(np.arange(num_items), lengths)
        order = np.lexsort((-together.data, rows))
        rank = np.arange(together.nnz) - together.indptr[rows[order]]
        keep = rank < k
        ids[rows[order][keep], rank[keep]] = together.indices[order][keep]
        weights[rows[order][keep], rank[keep]] = together.data[order][keep]
    return NeighbourTable(ids, weights)
