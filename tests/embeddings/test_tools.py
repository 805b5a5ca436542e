"""Index files, `linnet neighbours build|query`, matching, `linnet match` and the projector files."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from linnet.embeddings.index_files import build_index, load_index
from linnet.embeddings.matching import match
from linnet.embeddings.projector import write_projector
from linnet.errors import EmbeddingError


def write_vectors_dir(directory, ids, vectors, shard_rows=7):
    from linnet.embeddings.embed import (
        EmbeddingResult,  # noqa: F401  the module owns the layout
        _write_json,
        _write_shard,
    )

    directory.mkdir(parents=True, exist_ok=True)
    shards = [_write_shard(directory, number, ids[start:start + shard_rows], vectors[start:start + shard_rows], "npy")
              for number, start in enumerate(range(0, len(ids), shard_rows))]
    _write_json(directory / "manifest.json", {"dim": vectors.shape[1], "rows": len(ids), "num_shards": len(shards),
                                              "shards": shards, "complete": True})
    return directory


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def clustered():
    """30 products in 3 tight clusters, plus ids."""
    rng = np.random.default_rng(5)
    centres = rng.normal(size=(3, 8))
    vectors = (centres[np.arange(30) % 3] + 0.05 * rng.normal(size=(30, 8))).astype(np.float32)
    return np.array([f"p{i:02d}" for i in range(30)]), vectors


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


def test_match_within_and_between(clustered):
    ids, vectors = clustered
    duplicates = vectors.copy()
    duplicates[1] = vectors[0] * 2.0  # the same direction: cosine 1
    pairs = match(duplicates, ids, threshold=0.999, k=5)
    assert pairs.iloc[0][["id_a", "id_b"]].tolist() == ["p00", "p01"]
    assert pairs["score"].iloc[0] == pytest.approx(1.0, abs=1e-5)
    # Within one catalog: no self pairs, each pair once.
    everything = match(vectors, ids, threshold=-1.0, k=29)
    assert len(everything) == 30 * 29 // 2
    assert not (everything["id_a"] == everything["id_b"]).any()
    # Same-cluster pairs only above a high threshold: 3 clusters of 10 -> 3 * 45 pairs.
    assert len(match(vectors, ids, threshold=0.9, k=29)) == 135
    between = match(vectors[:5], ids[:5], vectors[5:], ids[5:], threshold=0.9, k=3)
    assert len(between) == 15 and set(between["id_a"]) == set(ids[:5])
    assert all(int(a[1:]) % 3 == int(b[1:]) % 3 for a, b in zip(between["id_a"], between["id_b"]))
    assert list(between["score"]) == sorted(between["score"], reverse=True)
    with pytest.raises(EmbeddingError, match="dimension"):
        match(vectors, ids, vectors[:, :3], ids)
    with pytest.raises(EmbeddingError, match="threshold"):
        match(vectors, ids, threshold=1.5)


def test_cli_match(clustered, tmp_path):
    from linnet.cli.main import main

    ids, vectors = clustered
    a = write_vectors_dir(tmp_path / "a", ids[:10], vectors[:10])
    b = write_vectors_dir(tmp_path / "b", np.array([f"q{i}" for i in range(20)]), vectors[10:])
    assert main(["match", "--vectors", str(a), "--other-vectors", str(b), "--threshold", "0.9", "--k", "20",
                 "--out", str(tmp_path / "pairs.csv")]) == 0
    rows = read_csv(tmp_path / "pairs.csv")
    # Product p{i} of A (cluster i % 3) matches the 6 or 7 products of B's 20 in its cluster.
    assert len(rows) == sum(sum(1 for j in range(10, 30) if j % 3 == i % 3) for i in range(10))
    assert main(["match", "--out", str(tmp_path / "x.csv")]) == 2


def test_projector_files_parse(clustered, tmp_path):
    ids, vectors = clustered
    titles = [f"title\twith tab {i}" for i in range(30)]
    paths = [["Apparel", "Tops"] if i % 2 else ["Shoes"] for i in range(30)]
    written = write_projector(tmp_path / "projector", vectors, ids, titles=titles, paths=paths)
    parsed = np.loadtxt(written["vectors"], delimiter="\t", dtype=np.float32)
    np.testing.assert_allclose(parsed, vectors, rtol=1e-5, atol=1e-6)
    lines = written["metadata"].read_text(encoding="utf-8").splitlines()
    assert lines[0].split("\t") == ["id", "title", "level_1", "level_2"]
    assert len(lines) == 31 and all(len(line.split("\t")) == 4 for line in lines)
    assert lines[1].split("\t") == ["p00", "title with tab 0", "Shoes", ""]
    from google.protobuf import text_format
    from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig

    config = text_format.Parse(written["config"].read_text(), ProjectorConfig())
    assert (config.embeddings[0].tensor_path, config.embeddings[0].metadata_path) == ("vectors.tsv", "metadata.tsv")
    assert written["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Only ids: one column, no header (the projector's rule for single-column metadata).
    single = write_projector(tmp_path / "single", vectors, ids, png=False)
    assert single["metadata"].read_text().splitlines()[:2] == ["p00", "p01"] and "png" not in single


def test_cli_projector_with_catalog(tiny_catalog, tmp_path):
    from linnet.cli.main import main

    ids = np.array([f"p{i:03d}" for i in range(45)])
    vectors = np.random.default_rng(0).normal(size=(45, 6)).astype(np.float32)
    vectors_dir = write_vectors_dir(tmp_path / "vectors", ids, vectors, shard_rows=20)
    assert main(["projector", "--vectors", str(vectors_dir), "--catalog", str(tiny_catalog), "--text-columns", "title",
                 "--category-column", "category", "--out", str(tmp_path / "projector")]) == 0
    lines = (tmp_path / "projector" / "metadata.tsv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "id\ttitle\tlevel_1\tlevel_2"
    assert lines[1].split("\t")[2:] == ["Apparel", "Tops"] and lines[2].split("\t")[2:] == ["Apparel", "Shoes"]
    assert (tmp_path / "projector" / "scatter.png").stat().st_size > 1000


def test_tsne_projection_keeps_clusters_apart(clustered):
    from linnet.embeddings.projector import project_2d

    _, vectors = clustered
    coordinates = project_2d(vectors, "tsne", tsne_iterations=250)
    centres = np.array([coordinates[np.arange(30) % 3 == c].mean(axis=0) for c in range(3)])
    spread = max(np.linalg.norm(coordinates[np.arange(30) % 3 == c] - centres[c], axis=1).max() for c in range(3))
    assert coordinates.shape == (30, 2)
    assert min(np.linalg.norm(centres[i] - centres[j]) for i in range(3) for j in range(i + 1, 3)) > spread
