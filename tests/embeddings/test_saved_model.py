"""The ``neighbours`` signature: added to a SavedModel with an ``embed`` signature, used after reloading."""

from __future__ import annotations

import numpy as np
import pytest

from linnet.embeddings.neighbours import NeighbourIndex, add_neighbours_signature
from linnet.errors import EmbeddingError

TITLES = ["red cotton shirt", "blue leather shoe", "classic watch", "slim leather bag", "red shirt slim"]


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
    """The real export (keras ExportArchive, assets, warm-up file) keeps working with the added signature."""
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
