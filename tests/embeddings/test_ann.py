"""The approximate index (`linnet.embeddings.ann`): recall against the exact search, save/load, errors."""

from __future__ import annotations

import numpy as np
import pytest

from linnet.embeddings.ann import ApproximateIndex, recall_at_k
from linnet.embeddings.neighbours import exact_top_k
from linnet.errors import EmbeddingError

from .conftest import brute_force


@pytest.mark.parametrize("method", ["hnsw", "ivf"])
def test_approximate_recall_on_random_data(method, tmp_path):
    pytest.importorskip("faiss")
    rng = np.random.default_rng(1)
    candidates = rng.normal(size=(5000, 32)).astype(np.float32)
    queries = rng.normal(size=(200, 32)).astype(np.float32)
    _, exact = exact_top_k(queries, candidates, k=10)
    index = ApproximateIndex(method=method, nprobe=64).fit(candidates)
    scores, approximate = index.search(queries, k=10)
    recall = recall_at_k(approximate, exact)
    assert recall >= 0.9, recall
    # Scores are cosines, like the exact search's.
    np.testing.assert_allclose(scores[:, 0], brute_force(queries, candidates, 1)[0][:, 0], atol=0.05)
    index.save(tmp_path / "index.faiss")
    reloaded = ApproximateIndex.load(tmp_path / "index.faiss", method=method, nprobe=64)
    np.testing.assert_array_equal(reloaded.search(queries, k=10)[1], approximate)
    with pytest.raises(EmbeddingError, match="dimension"):
        index.search(queries[:, :8], k=3)
    with pytest.raises(EmbeddingError, match="larger than the index"):
        index.search(queries, k=5001)


def test_recall_counts_overlap():
    assert recall_at_k(np.array([[0, 1, 2]]), np.array([[2, 1, 0]])) == 1.0
    assert recall_at_k(np.array([[0, 5, 6]]), np.array([[2, 1, 0]])) == pytest.approx(1 / 3)
