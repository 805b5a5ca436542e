"""Duplicate pairs by cosine similarity (`linnet.embeddings.matching`) and `linnet match`."""

from __future__ import annotations

import numpy as np
import pytest

from linnet.embeddings.matching import match
from linnet.errors import EmbeddingError

from .conftest import read_csv, write_vectors_dir


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
