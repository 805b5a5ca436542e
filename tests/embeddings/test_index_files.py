"""Index files (`linnet.embeddings.index_files`) and `linnet neighbours build|query`."""

from __future__ import annotations

import numpy as np
import pytest

from linnet.embeddings.index_files import build_index, load_index
from linnet.errors import EmbeddingError

from .conftest import read_csv, write_vectors_dir


@pytest.mark.parametrize("method", ["exact", "hnsw"])
def test_index_files_round_trip(clustered, tmp_path, method):
    if method != "exact":
        pytest.importorskip("faiss")
    ids, vectors = clustered
    build_index(vectors, ids, tmp_path / "index", method=method)
    index = load_index(tmp_path / "index")
    assert (index.method, index.dim, len(index)) == (method, 8, 30)
    result = index.search(vectors[:4], k=10)
    # Each product's 10 nearest are exactly its own cluster.
    for row in range(4):
        assert {int(i[1:]) % 3 for i in result["ids"][row]} == {row % 3}
    assert result["ids"][0][0] == "p00"
    with pytest.raises(EmbeddingError, match="dimension 4 does not match 8"):
        index.search(vectors[:, :4], k=3)
    with pytest.raises(EmbeddingError, match="larger than the index"):
        index.search(vectors, k=31)


def test_index_errors(tmp_path):
    with pytest.raises(EmbeddingError, match="no index.json"):
        load_index(tmp_path)
    with pytest.raises(EmbeddingError, match="empty"):
        build_index(np.zeros((0, 3)), [], tmp_path / "empty")


def test_cli_neighbours_build_and_query(clustered, tmp_path):
    from linnet.cli.main import main

    ids, vectors = clustered
    vectors_dir = write_vectors_dir(tmp_path / "vectors", ids, vectors)
    assert main(["neighbours", "build", "--vectors", str(vectors_dir), "--out", str(tmp_path / "index")]) == 0
    assert main(["neighbours", "query", "--index", str(tmp_path / "index"), "--vectors", str(vectors_dir),
                 "--k", "3", "--out", str(tmp_path / "neighbours.csv")]) == 0
    rows = read_csv(tmp_path / "neighbours.csv")
    assert len(rows) == 90
    first = [row for row in rows if row["query_id"] == "p04"]
    assert [row["rank"] for row in first] == ["1", "2", "3"] and first[0]["neighbour_id"] == "p04"
    assert all(int(row["neighbour_id"][1:]) % 3 == 1 for row in first)
    assert float(first[0]["score"]) == pytest.approx(1.0, abs=1e-5)
    other = write_vectors_dir(tmp_path / "other", ids[:2], vectors[:2, :5])
    assert main(["neighbours", "query", "--index", str(tmp_path / "index"), "--vectors", str(other),
                 "--out", str(tmp_path / "bad.csv")]) == 2


def test_cli_query_checks_model_dimension_first(tiny_model_file, tiny_catalog, clustered, tmp_path, capsys):
    from linnet.cli.main import main

    ids, vectors = clustered  # 8-dimensional; the tiny model embeds in 16
    build_index(vectors, ids, tmp_path / "index")
    code = main(["neighbours", "query", "--index", str(tmp_path / "index"), "--model", str(tiny_model_file),
                 "--catalog", str(tiny_catalog), "--out", str(tmp_path / "n.csv")])
    assert code == 2
    assert "16-dimensional embeddings but the index holds 8-dimensional" in capsys.readouterr().err
