"""Exact top-k against NumPy brute force, the errors for bad input, and the ``neighbours`` signature: added to a
SavedModel with an ``embed`` signature, used after reloading."""

from __future__ import annotations

import numpy as np
import pytest

from linnet.embeddings.neighbours import (
    NeighbourIndex,
    add_neighbours_signature,
    exact_top_k,
)
from linnet.errors import EmbeddingError

from .conftest import brute_force

TITLES = ["red cotton shirt", "blue leather shoe", "classic watch", "slim leather bag", "red shirt slim"]


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


@pytest.fixture(scope="module")
def embed_saved_model(tiny_model, tmp_path_factory):
    """A SavedModel whose ``embed`` signature takes titles, like an export's (plus a file to carry along)."""
    import tensorflow as tf

    module = tf.Module()
    module.model = tiny_model

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="title")])
    def embed(title):
        return {"embedding": tiny_model({"title": title}, training=False)["embedding"]}

    path = tmp_path_factory.mktemp("export") / "1"
    tf.saved_model.save(module, str(path), signatures={"embed": embed})
    (path / "MODEL_CARD.md").write_text("card")
    return path


def test_neighbours_signature_after_reload(tiny_model, embed_saved_model, tmp_path):
    import tensorflow as tf

    catalog_vectors = tiny_model.predict({"title": np.array(TITLES, dtype=object)}, verbose=0)["embedding"]
    index = NeighbourIndex(catalog_vectors, ids=[f"sku{i}" for i in range(len(TITLES))])
    out = add_neighbours_signature(embed_saved_model, index, tmp_path / "2", k=3)
    assert (out / "MODEL_CARD.md").read_text() == "card"
    reloaded = tf.saved_model.load(str(out))
    assert {"embed", "neighbours", "neighbours_by_vector"} <= set(reloaded.signatures)
    query_titles = [*TITLES[:2], "watch classic"]
    result = reloaded.signatures["neighbours"](title=tf.constant(query_titles))
    expected = index.search(tiny_model.predict({"title": np.array(query_titles, dtype=object)}, verbose=0)["embedding"], k=3)
    np.testing.assert_array_equal(result["ids"].numpy(), expected["ids"])
    np.testing.assert_allclose(result["scores"].numpy(), expected["scores"], atol=1e-5)
    # A catalog title finds itself first.
    assert [i.decode() for i in result["ids"].numpy()[:2, 0]] == ["sku0", "sku1"]
    by_vector = reloaded.signatures["neighbours_by_vector"](embedding=tf.constant(catalog_vectors[:1]))
    assert by_vector["ids"].numpy()[0, 0] == b"sku0"
    # The embed signature still gives the same vectors as predict.
    np.testing.assert_allclose(reloaded.signatures["embed"](title=tf.constant(TITLES))["embedding"].numpy(),
                               catalog_vectors, atol=1e-6)


def test_neighbours_signature_rejects_wrong_dimension(embed_saved_model, tmp_path):
    index = NeighbourIndex(np.random.default_rng(0).normal(size=(4, 5)))
    with pytest.raises(EmbeddingError, match="embedding dimension 16 does not match the index's 5"):
        add_neighbours_signature(embed_saved_model, index, tmp_path / "bad", k=2)
    with pytest.raises(EmbeddingError, match="larger than the index"):
        add_neighbours_signature(embed_saved_model, index, tmp_path / "bad", k=5)
    assert not (tmp_path / "bad").exists()


def test_neighbours_signature_on_a_linnet_export(tiny_model, tiny_export, tmp_path):
    """The real export (tf.saved_model.save, assets, warm-up file) keeps working with the added signature."""
    import tensorflow as tf

    from linnet.cli.main import main
    from linnet.embeddings.embed import _write_json, _write_shard

    vectors = tiny_model.predict({"title": np.array(TITLES, dtype=object)}, verbose=0)["embedding"]
    vectors_dir = tmp_path / "vectors"
    vectors_dir.mkdir()
    shard = _write_shard(vectors_dir, 0, np.array(TITLES), vectors, "npy")
    _write_json(vectors_dir / "manifest.json", {"dim": 16, "rows": 5, "num_shards": 1, "shards": [shard],
                                                "complete": True})
    out = tmp_path / "2"
    assert main(["neighbours", "attach", "--export", str(tiny_export), "--vectors", str(vectors_dir),
                 "--out", str(out), "--k", "2"]) == 0
    assert (out / "assets.extra").is_dir() and (out / "assets" / "taxonomy.json").is_file()
    reloaded = tf.saved_model.load(str(out))
    result = reloaded.signatures["neighbours"](title=tf.constant(TITLES[2:4]))
    assert [row[0].decode() for row in result["ids"].numpy()] == TITLES[2:4]
    served = reloaded.signatures["serving_default"](title=tf.constant(TITLES[:1]))
    assert served["path"].shape == (1,)
