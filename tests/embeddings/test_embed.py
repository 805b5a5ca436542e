"""embed_catalog: same vectors as predict, sharded files with ids, resume, formats, `linnet embed`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from linnet.embeddings.embed import (
    embed_catalog,
    load_embedder,
    load_embeddings,
    read_manifest,
)
from linnet.errors import ConfigError, EmbeddingError


@pytest.fixture(scope="module")
def predicted(tiny_model, tiny_catalog, tiny_schema):
    """(ids, embeddings) of the good rows through plain ``model.predict``."""
    from linnet.data import prepare_catalog

    catalog = prepare_catalog(tiny_catalog, tiny_schema, bad_rows="skip")
    outputs = tiny_model.predict({"title": np.asarray(catalog.texts["title"], dtype=object)}, verbose=0)
    return catalog.ids, outputs["embedding"]


@pytest.mark.parametrize("file_format", ["npy", "parquet"])
def test_embed_matches_predict(tiny_model, tiny_catalog, tiny_schema, predicted, tmp_path, file_format):
    result = embed_catalog(tiny_model, tiny_catalog, tmp_path / "vectors", schema=tiny_schema, batch_size=8,
                           shard_rows=20, file_format=file_format, progress=False)
    assert (result.rows, result.shards_written, result.bad_rows) == (45, 3, 1)
    ids, vectors = load_embeddings(tmp_path / "vectors")
    expected_ids, expected = predicted
    assert ids.tolist() == expected_ids.tolist()
    np.testing.assert_allclose(vectors, expected, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert read_manifest(tmp_path / "vectors")["dim"] == 16


def test_resume_skips_finished_shards(tiny_model, tiny_catalog, tiny_schema, tmp_path):
    out = tmp_path / "vectors"
    embed_catalog(tiny_model, tiny_catalog, out, schema=tiny_schema, shard_rows=10, progress=False)
    complete_ids, complete_vectors = load_embeddings(out)
    # Simulate a job cut off after two shards: the manifest lists only those, and is not complete.
    manifest = read_manifest(out)
    manifest["shards"][2:] = [None] * (len(manifest["shards"]) - 2)
    manifest["complete"] = False
    (out / "part-00003.npy").unlink()
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(EmbeddingError, match="did not finish"):
        load_embeddings(out)
    assert len(load_embeddings(out, allow_partial=True)[0]) == 20
    first_shard_time = (out / "part-00000.npy").stat().st_mtime_ns
    result = embed_catalog(tiny_model, tiny_catalog, out, schema=tiny_schema, shard_rows=10, progress=False)
    assert (result.shards_skipped, result.shards_written) == (2, 3)
    assert (out / "part-00000.npy").stat().st_mtime_ns == first_shard_time
    ids, vectors = load_embeddings(out)
    assert ids.tolist() == complete_ids.tolist()
    np.testing.assert_allclose(vectors, complete_vectors, atol=1e-6)  # batch shapes differ: last-bit rounding
    with pytest.raises(ConfigError, match="different job"):
        embed_catalog(tiny_model, tiny_catalog, out, schema=tiny_schema, shard_rows=7, progress=False)


def test_load_embedder_from_keras_file(tiny_model_file, tiny_schema):
    embedder = load_embedder(tiny_model_file, schema=tiny_schema)
    assert embedder.dim == 16 and embedder.image_size is None and embedder.input_names == ["title"]
    with pytest.raises(ConfigError, match="expected a run directory"):
        load_embedder(tiny_model_file.parent / "nothing.here")


def test_cli_embed(tiny_model_file, tiny_catalog, predicted, tmp_path, capsys):
    from linnet.cli.main import main

    out = tmp_path / "cli_vectors"
    code = main(["embed", "--model", str(tiny_model_file), "--catalog", str(tiny_catalog), "--out", str(out),
                 "--text-columns", "title", "--shard-rows", "16", "--format", "parquet", "--no-progress"])
    assert code == 0
    assert "45 products" in capsys.readouterr().out
    ids, vectors = load_embeddings(out)
    expected_ids, expected = predicted
    assert ids.tolist() == expected_ids.tolist()
    np.testing.assert_allclose(vectors, expected, atol=1e-6)
    assert main(["embed", "--model", str(tmp_path), "--catalog", str(tiny_catalog), "--out", str(out)]) == 2


def test_same_embedding_through_predict_export_and_cli(tiny_export, tiny_catalog, predicted, tmp_path):
    """One product, one vector: model.predict, the export's `embed` signature and `linnet embed` agree."""
    import tensorflow as tf

    from linnet.cli.main import main
    from linnet.data import CatalogSchema, prepare_catalog

    expected_ids, expected = predicted
    catalog = prepare_catalog(tiny_catalog, CatalogSchema(text_columns=["title"]), bad_rows="skip")
    signature = tf.saved_model.load(str(tiny_export)).signatures["embed"]
    through_signature = signature(title=tf.constant(catalog.texts["title"].astype(str)))["embedding"].numpy()
    np.testing.assert_allclose(through_signature, expected, atol=1e-6)
    # The export carries its schema (inputs.json): no schema flags needed.
    out = tmp_path / "from_export"
    assert main(["embed", "--model", str(tiny_export), "--catalog", str(tiny_catalog), "--out", str(out),
                 "--no-progress", "--batch-size", "16"]) == 0
    ids, vectors = load_embeddings(out)
    assert ids.tolist() == expected_ids.tolist()
    np.testing.assert_allclose(vectors, expected, atol=1e-6)
    embedder = load_embedder(tiny_export)
    assert (embedder.dim, embedder.schema.text_columns, embedder.taxonomy.level_sizes()) == (16, ["title"], [2, 4])


def test_embed_a_real_run_directory(tiny_catalog, tmp_path):
    """`linnet train`'s run directory: its saved schema is used, the vectors are the run model's."""
    from linnet.cli.main import main
    from linnet.data import CatalogSchema, prepare_catalog
    from linnet.training.trainer import train

    config = {
        "model": {"text_encoder": {"name": "hashed_ngrams", "num_bins": 512, "embedding_dim": 8}, "fusion_dim": 8,
                  "embedding_dim": 6, "head_hidden_units": [8], "wide": {"enabled": False}},
        "training": {"epochs": 1, "batch_size": 16, "tensorboard": False, "checkpoints": False,
                     "backup_and_restore": False, "verbose": 0, "early_stopping_patience": None,
                     "embedding_cache": False},
    }
    schema = CatalogSchema(text_columns=["title"], category_column="category")
    catalog = prepare_catalog(tiny_catalog, schema, bad_rows="skip")
    run = train(tiny_catalog, tmp_path / "run", schema=schema, config=config, catalog=catalog, progress=False)
    assert main(["embed", "--model", str(run.path), "--catalog", str(tiny_catalog), "--out", str(tmp_path / "v"),
                 "--no-progress"]) == 0
    ids, vectors = load_embeddings(tmp_path / "v")
    expected = run.model.predict({"title": np.asarray(catalog.texts["title"], dtype=object)}, verbose=0)["embedding"]
    assert ids.tolist() == catalog.ids.tolist() and vectors.shape == (45, 6)
    np.testing.assert_allclose(vectors, expected, atol=1e-6)


def test_raw_batches_encode_non_ascii_text_as_utf8():
    """An export takes raw UTF-8 bytes; accented and CJK titles must not fail NumPy's ASCII cast."""
    from linnet.embeddings.embed import _raw_batches

    titles = ["Chaussure à talon", "Hundebett groß", "猫のおもちゃ"]
    catalog = type("Catalog", (), {"texts": {"title": titles}, "image_sources": None, "__len__": lambda self: 3})()
    (batch,) = list(_raw_batches(catalog, batch_size=8, image_input=None))
    assert [value.decode("utf-8") for value in batch["title"]] == titles
