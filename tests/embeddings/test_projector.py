"""Projector files and the 2-D scatter (`linnet.embeddings.projector`) and `linnet projector`."""

from __future__ import annotations

import numpy as np

from linnet.embeddings.projector import write_projector

from .conftest import write_vectors_dir


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
