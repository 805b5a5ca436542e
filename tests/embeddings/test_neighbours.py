"""Exact top-k against NumPy brute force, the approximate index's recall, and the errors for bad input."""

from __future__ import annotations

import numpy as np
import pytest

from linnet.embeddings.ann import ApproximateIndex, recall_at_k
from linnet.embeddings.neighbours import NeighbourIndex, exact_top_k
from linnet.errors import EmbeddingError


def brute_force(queries, candidates, k):
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    c = candidates / np.linalg.norm(candidates, axis=1, keepdims=True)
    scores = q @ c.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, axis=1), order


@pytest.fixture(scope="module")
def random_vectors():
    rng = np.random.default_rng(0)
    return rng.normal(size=(50, 12)).astype(np.float32), rng.normal(size=(300, 12)).astype(np.float32)


@pytest.mark.parametrize("batch_size", [7, 1024])
def test_exact_top_k_matches_brute_force(random_vectors, batch_size):
    queries, candidates = random_vectors
    scores, indices = exact_top_k(queries, candidates * 3.0, k=10, batch_size=batch_size)
    expected_scores, expected_indices = brute_force(queries, candidates, 10)
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_allclose(scores, expected_scores, atol=1e-5)
    assert scores.dtype == np.float32 and indices.shape == (50, 10)


def test_exclude_self(random_vectors):
    _, candidates = random_vectors
    _, indices = exact_top_k(candidates, candidates, k=3, exclude_self=True)
    assert not np.any(indices == np.arange(len(candidates))[:, None])
    np.testing.assert_array_equal(indices, brute_force(candidates, candidates, 4)[1][:, 1:])


def test_neighbour_index_search_and_ids(random_vectors):
    queries, candidates = random_vectors
    ids = [f"p{i}" for i in range(len(candidates))]
    for as_constant in (False, True):
        index = NeighbourIndex(candidates, ids=ids, as_constant=as_constant)
        result = index.search(queries, k=5, batch_size=16)
        _, expected = brute_force(queries, candidates, 5)
        np.testing.assert_array_equal(result["indices"], expected)
        assert [i.decode() for i in result["ids"][0]] == [ids[j] for j in expected[0]]
    assert index.search(np.zeros((0, 12)), k=2)["scores"].shape == (0, 2)


@pytest.mark.parametrize("call,message", [
    (lambda q, c: exact_top_k(q[:, :5], c, 3), "dimension 5 does not match 12"),
    (lambda q, c: exact_top_k(q, c[:0], 3), "empty"),
    (lambda q, c: exact_top_k(q, c[:4], 5), "k=5 is larger than the index \\(4 vectors\\)"),
    (lambda q, c: exact_top_k(q, c, 0), "positive integer"),
    (lambda q, c: exact_top_k(np.where(np.arange(12) == 3, np.nan, q), c, 3), "NaN or infinite"),
    (lambda q, c: NeighbourIndex(np.vstack([c[:2], [[np.inf] * 12]]), ids=["a", "b", "c"]), "id 'c'"),
    (lambda q, c: NeighbourIndex(c).search(q[:, :3], k=1), "dimension 3 does not match 12"),
    (lambda q, c: NeighbourIndex(c[:3]).search(q, k=4), "larger than the index"),
    (lambda q, c: exact_top_k(q[0], c, 1), "2-D"),
    (lambda q, c: NeighbourIndex(c[:3], ids=["a"]), "1 ids for 3"),
])
def test_bad_input_is_a_clear_error(random_vectors, call, message):
    queries, candidates = random_vectors
    with pytest.raises(EmbeddingError, match=message):
        call(queries, candidates)


def test_index_inside_tf_function(random_vectors):
    import tensorflow as tf

    queries, candidates = random_vectors
    index = NeighbourIndex(candidates)
    signature = index.vector_signature(k=4)
    result = signature(embedding=tf.constant(queries))
    np.testing.assert_array_equal(result["indices"].numpy(), brute_force(queries, candidates, 4)[1])
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN"):
        signature(embedding=tf.constant(np.full((1, 12), np.nan, np.float32)))


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
