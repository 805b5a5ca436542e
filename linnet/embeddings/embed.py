"""`embed_catalog`: one L2-normalised vector per product, streamed to sharded files with ids, resumable.

Output directory::

    manifest.json          dim, rows, shard size, format, the catalog and model it came from, shards done
    part-00000.npy         float32 [n, D]          (format "npy")
    part-00000.ids.npy     unicode [n] product ids
    part-00000.parquet     columns id, embedding   (format "parquet")

Shard ``i`` holds catalog rows ``[i * shard_size, (i + 1) * shard_size)``; each shard is written
atomically and recorded in the manifest, so a killed job rerun with the same arguments skips the shards
that are done.

Example:
    >>> result = embed_catalog("runs/fashion", "catalog.csv", "vectors/")  # doctest: +SKIP
    >>> ids, vectors = load_embeddings("vectors/")  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from linnet.atomic_files import atomic_path, write_json_atomically
from linnet.data import CatalogReader, make_dataset, prepare_catalog
from linnet.data.images import IMAGE_FIELD
from linnet.data.schema import check_input_columns
from linnet.errors import ConfigError, EmbeddingError
from linnet.progress import progress_bar
from linnet.serving.artifacts import RUN, Artifact, artifact_kind, load_artifact
from linnet.serving.export import EMBED_SIGNATURE

MANIFEST_FILE = "manifest.json"
FORMATS = ("npy", "parquet")
#: The model's embedding output (`linnet.model.names.EMBEDDING`, not imported: linnet.model loads Keras, and
#: this module's readers (load_embeddings) run without TensorFlow).
EMBEDDING_OUTPUT = "embedding"
DEFAULT_SHARD_ROWS = 100_000


# ---------------------------------------------------------------------------------------------- the model side
@dataclass
class Embedder:
    """A model reduced to ``features -> embedding``: a Keras model or a SavedModel's ``embed`` signature.

    Attributes:
        dim: Embedding dimension.
        schema: The catalog schema the model was trained on (None when unknown).
        image_size: Image side the model expects, or None for a text-only model.
        source: Where the model came from (path or model name), recorded in manifests.
        taxonomy: The model's tree, when known.
    """

    function: Any
    dim: int
    input_names: list[str]
    schema: Any = None
    image_size: int | None = None
    source: str = ""
    taxonomy: Any = None
    keras_model: Any = None

    def embed_batch(self, features: dict) -> np.ndarray:
        """float32 ``[B, D]`` for one batch of model features (extra keys are ignored)."""
        inputs = {name: features[name] for name in self.input_names if name in features}
        missing = [name for name in self.input_names if name not in inputs]
        if missing:
            raise ConfigError(f"{self.source}: the catalog gives no model input(s) {missing}; check the schema flags")
        output = self.function(inputs)
        if isinstance(output, dict):
            output = output[EMBEDDING_OUTPUT]
        return np.asarray(output, dtype=np.float32)


def _image_size_of(model) -> int | None:
    for tensor in model.inputs:
        if tensor.name.split(":")[0] == IMAGE_FIELD and len(tensor.shape) == 4 and tensor.shape[1]:
            return int(tensor.shape[1])
    return None


def embedder_from_keras(model, schema=None, source: str | None = None, taxonomy=None) -> Embedder:
    """An `Embedder` over a Keras model whose outputs include ``embedding`` (the model contract)."""
    import keras  # lazy: the embeddings package and load_embeddings run without TensorFlow

    outputs = model.output
    if isinstance(outputs, dict):
        if EMBEDDING_OUTPUT not in outputs:
            raise ConfigError(f"model {model.name!r} has no {EMBEDDING_OUTPUT!r} output (outputs: {sorted(outputs)})")
        embedding_model = keras.Model(model.input, outputs[EMBEDDING_OUTPUT], name=f"{model.name}_embedding")
    else:
        embedding_model = model
    input_names = [tensor.name.split(":")[0] for tensor in model.inputs]
    # A traced call, not model.predict per shard: predict rebuilds its function and progress bar every time.
    import tensorflow as tf  # lazy: as keras above

    function = tf.function(lambda inputs: embedding_model(inputs, training=False), reduce_retracing=True)
    return Embedder(function=lambda inputs: function(inputs).numpy(), dim=int(embedding_model.output.shape[-1]),
                    input_names=input_names, schema=schema, image_size=_image_size_of(model),
                    source=source or model.name, taxonomy=taxonomy, keras_model=model)


def load_embedder(source, schema=None) -> Embedder:
    """An `Embedder` from a Keras model, a run directory, a ``.keras`` file or an exported SavedModel.

    Args:
        source: ``keras.Model``; run directory (``linnet train --out``); ``model.keras``; or a SavedModel
            directory with an ``embed`` signature (``linnet export``). Run or export is
            `linnet.serving.artifacts`'s rule, and its loader loads either.
        schema: Overrides the run's saved schema (needed for a bare ``.keras`` file).

    Raises:
        ConfigError: the path holds none of these.
    """
    import keras  # lazy: the embeddings package and load_embeddings run without TensorFlow

    if isinstance(source, keras.Model):
        return embedder_from_keras(source, schema)
    path = Path(source)
    if artifact_kind(path, required=False) is not None:
        artifact = load_artifact(path)
        if artifact.kind == RUN:
            return embedder_from_keras(artifact.model, schema or artifact.schema, source=artifact.source,
                                       taxonomy=artifact.taxonomy)
        return _embedder_from_saved_model(artifact, schema)
    if path.suffix == ".keras" and path.is_file():
        import linnet.model  # noqa: F401  lazy (loads Keras): registers the custom layers

        model = keras.saving.load_model(path, compile=False, safe_mode=True)
        return embedder_from_keras(model, schema, source=str(path))
    raise ConfigError(f"--model {path}: expected a run directory (with model.keras), a .keras file or an exported "
                      "SavedModel (with saved_model.pb)")


def _embedder_from_saved_model(artifact: Artifact, schema=None) -> Embedder:
    """The ``embed`` signature of a `linnet export` (raw text strings + ``image_bytes`` in, ``embedding`` out)."""
    import tensorflow as tf  # lazy: the embeddings package and load_embeddings run without TensorFlow

    loaded = artifact.saved_model
    if EMBED_SIGNATURE not in loaded.signatures:
        raise ConfigError(f"{artifact.path}: the SavedModel has no {EMBED_SIGNATURE!r} signature "
                          f"(signatures: {sorted(loaded.signatures)})")
    signature = loaded.signatures[EMBED_SIGNATURE]
    _, specs = signature.structured_input_signature
    dim = signature.structured_outputs[EMBEDDING_OUTPUT].shape[-1]

    def call(inputs):
        tensors = {name: tf.convert_to_tensor(inputs[name], dtype=specs[name].dtype) for name in specs}
        return signature(**tensors)[EMBEDDING_OUTPUT].numpy()

    embedder = Embedder(function=call, dim=int(dim), input_names=sorted(specs), schema=schema or artifact.schema,
                        source=artifact.source, taxonomy=artifact.taxonomy)
    embedder.raw_image_input = artifact.inputs.get("image_input")  # the signature decodes images: feed raw bytes
    embedder.loaded = loaded  # keeps the signature's variables alive
    return embedder


# ---------------------------------------------------------------------------------------------- files
def _write_json(path: Path, payload: dict) -> None:
    write_json_atomically(path, payload)


def _write_shard(out_dir: Path, number: int, ids: np.ndarray, vectors: np.ndarray, file_format: str) -> dict:
    stem = f"part-{number:05d}"
    if file_format == "npy":
        # Through an open handle: np.save given a name would append ".npy" to the temporary one.
        with atomic_path(out_dir / f"{stem}.ids.npy") as temporary, open(temporary, "wb") as handle:
            np.save(handle, np.asarray(ids, dtype=str))
        with atomic_path(out_dir / f"{stem}.npy") as temporary, open(temporary, "wb") as handle:
            np.save(handle, vectors)
        return {"vectors": f"{stem}.npy", "ids": f"{stem}.ids.npy", "rows": len(ids)}
    import pyarrow as pa  # lazy: pyarrow only for the parquet format
    import pyarrow.parquet as pq  # lazy: as pyarrow

    table = pa.table({
        "id": pa.array([str(i) for i in ids], pa.string()),
        EMBEDDING_OUTPUT: pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1), pa.float32()), vectors.shape[1]),
    })
    with atomic_path(out_dir / f"{stem}.parquet") as temporary:
        pq.write_table(table, str(temporary))
    return {"file": f"{stem}.parquet", "rows": len(ids)}


def _read_shard(out_dir: Path, shard: dict) -> tuple[np.ndarray, np.ndarray]:
    if "vectors" in shard:
        return np.load(out_dir / shard["ids"]), np.load(out_dir / shard["vectors"])
    import pyarrow.parquet as pq  # lazy: pyarrow only for the parquet format

    table = pq.read_table(out_dir / shard["file"])
    column = table.column(EMBEDDING_OUTPUT).combine_chunks()
    vectors = column.values.to_numpy(zero_copy_only=False).reshape(len(table), column.type.list_size)
    return np.asarray(table.column("id").to_pylist(), dtype=str), vectors.astype(np.float32)


def load_embeddings(directory: str | os.PathLike, allow_partial: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``(ids [N] str, vectors float32 [N, D])`` from a directory written by `embed_catalog`.

    Raises:
        EmbeddingError: no manifest, or an unfinished job (unless ``allow_partial``).
    """
    directory = Path(directory)
    manifest_path = directory / MANIFEST_FILE
    if not manifest_path.is_file():
        raise EmbeddingError(f"{directory}: no {MANIFEST_FILE}; expected the output of 'linnet embed'")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if not manifest.get("complete") and not allow_partial:
        raise EmbeddingError(f"{directory}: the embedding job did not finish ({len(manifest['shards'])} of "
                             f"{manifest['num_shards']} shards); rerun 'linnet embed' with the same arguments to resume")
    parts = [_read_shard(directory, shard) for shard in manifest["shards"] if shard is not None]
    if not parts:
        return np.zeros(0, dtype=str), np.zeros((0, manifest["dim"]), np.float32)
    return np.concatenate([ids for ids, _ in parts]), np.concatenate([vectors for _, vectors in parts])


def read_manifest(directory: str | os.PathLike) -> dict:
    return json.loads((Path(directory) / MANIFEST_FILE).read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------- the job
@dataclass
class EmbeddingResult:
    """What `embed_catalog` did: ``rows`` embedded, ``shards_written`` now, ``shards_skipped`` from an earlier run."""

    out_dir: Path
    dim: int
    rows: int
    shards_written: int
    shards_skipped: int
    bad_rows: int
    report: Any = None


def _ids_digest(ids: np.ndarray) -> str:
    digest = hashlib.sha256()
    for product_id in ids:
        digest.update(str(product_id).encode("utf-8") + b"\0")
    return digest.hexdigest()[:16]


def _prepare(catalog, schema, errors_path, max_rows):
    if not isinstance(catalog, (str, os.PathLike)):
        return catalog
    if schema is None:
        raise ConfigError("embedding a catalog file needs its schema (schema=, or the run's schema.yaml)")
    # Embedding needs no labels: leave the category out so unknown labels cannot stop the job.
    unlabelled = dataclasses.replace(schema, category_column=None, level_columns=None)
    check_input_columns(unlabelled, CatalogReader(catalog).columns, catalog)
    return prepare_catalog(catalog, unlabelled, bad_rows="skip", errors_path=errors_path, max_rows=max_rows)


def embed_catalog(model, catalog, out_dir: str | os.PathLike, schema=None, batch_size: int = 256,
                  shard_rows: int = DEFAULT_SHARD_ROWS, file_format: str = "npy", progress: bool = True,
                  errors_path: str | os.PathLike | None = None, max_rows: int | None = None) -> EmbeddingResult:
    """Embeds every product of a catalog, shard by shard, resuming a job that was cut off.

    Args:
        model: Anything `load_embedder` takes (run directory, ``.keras``, SavedModel, ``keras.Model``) or an
            `Embedder`.
        catalog: Catalog file path (read with ``schema``, bad rows skipped and reported) or a `PreparedCatalog`.
        out_dir: Output directory (created; a finished or matching unfinished job there is resumed).
        schema: Catalog schema; default: the model's saved schema.
        batch_size: Products per model call.
        shard_rows: Products per output file.
        file_format: ``"npy"`` or ``"parquet"``.
        progress: Show a tqdm progress bar over products.
        errors_path: Write the catalog's bad rows here (JSON Lines).
        max_rows: Read at most this many catalog records.

    Returns:
        `EmbeddingResult`.

    Raises:
        ConfigError: ``out_dir`` holds the embeddings of another catalog, model or shard layout.

    Example:
        >>> embed_catalog("runs/fashion", "styles.csv", "vectors", file_format="parquet")  # doctest: +SKIP
    """
    if file_format not in FORMATS:
        raise ConfigError(f"format must be one of {FORMATS}, got {file_format!r}")
    if shard_rows < 1 or batch_size < 1:
        raise ConfigError("shard_rows and batch_size must be positive")
    embedder = model if isinstance(model, Embedder) else load_embedder(model, schema)
    prepared = _prepare(catalog, schema or embedder.schema, errors_path, max_rows)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    num_shards = max(1, -(-len(prepared) // shard_rows))
    identity = {"catalog": str(getattr(prepared, "source", "")), "rows": len(prepared), "ids_sha256": _ids_digest(prepared.ids),
                "model": embedder.source, "dim": embedder.dim, "shard_rows": shard_rows, "format": file_format}
    manifest_path = out_dir / MANIFEST_FILE
    shards: list[dict | None] = [None] * num_shards
    if manifest_path.is_file():
        earlier = json.loads(manifest_path.read_text(encoding="utf-8"))
        differs = {key: (earlier.get("identity", {}).get(key), value) for key, value in identity.items()
                   if earlier.get("identity", {}).get(key) != value}
        if differs:
            raise ConfigError(f"{out_dir} holds embeddings of a different job ({differs}); "
                              "choose a new --out directory or delete it")
        shards = earlier["shards"]
    skipped = sum(shard is not None for shard in shards)
    manifest = {"identity": identity, "dim": embedder.dim, "rows": len(prepared), "num_shards": num_shards,
                "shards": shards, "complete": False}
    _write_json(manifest_path, manifest)

    bar = progress_bar(total=len(prepared), unit="product", desc="embed", enabled=progress)
    bar.update(sum(shard["rows"] for shard in shards if shard is not None))
    missing = [number for number in range(num_shards) if shards[number] is None]
    # One pipeline over every missing row (not one per shard: building and tracing a pipeline costs seconds);
    # vectors are cut into shards as they arrive.
    rows = np.concatenate([np.arange(number * shard_rows, min((number + 1) * shard_rows, len(prepared)))
                           for number in missing]) if missing else np.zeros(0, np.int64)
    pending = prepared.subset(rows)
    buffer: list[np.ndarray] = []
    buffered = written = 0
    for vectors in _embedded_batches(embedder, pending, batch_size):
        buffer.append(vectors)
        buffered += len(vectors)
        bar.update(len(vectors))
        while missing and buffered >= _shard_size(missing[0], shard_rows, len(prepared)):
            number = missing.pop(0)
            size = _shard_size(number, shard_rows, len(prepared))
            stacked = np.concatenate(buffer)
            start = number * shard_rows
            shards[number] = _write_shard(out_dir, number, prepared.ids[start:start + size], stacked[:size], file_format)
            buffer, buffered = [stacked[size:]], len(stacked) - size
            written += 1
            _write_json(manifest_path, manifest)
    for number in missing:  # an empty catalog still gets its (empty) shard
        shards[number] = _write_shard(out_dir, number, prepared.ids[:0], np.zeros((0, embedder.dim), np.float32),
                                      file_format)
        written += 1
    bar.close()
    manifest["complete"] = True
    _write_json(manifest_path, manifest)
    return EmbeddingResult(out_dir=out_dir, dim=embedder.dim, rows=len(prepared), shards_written=written,
                           shards_skipped=skipped, bad_rows=len(prepared.report.bad_rows), report=prepared.report)


def catalog_batches(embedder: Embedder, catalog, batch_size: int):
    """Model-ready feature batches of ``catalog`` for ``embedder`` (raw image bytes for a SavedModel)."""
    if hasattr(embedder, "raw_image_input"):
        return _raw_batches(catalog, batch_size, embedder.raw_image_input)
    return make_dataset(catalog, batch_size=batch_size, image_size=embedder.image_size, with_labels=False,
                        deterministic=True)


def _raw_batches(catalog, batch_size: int, image_input: str | None):
    for start in range(0, len(catalog), batch_size):
        # UTF-8 explicitly: NumPy's str -> bytes cast is ASCII-only and fails on the first "à".
        batch = {name: np.char.encode(np.asarray(values[start:start + batch_size], dtype=object).astype(str), "utf-8")
                 for name, values in catalog.texts.items()}
        if image_input and catalog.image_sources is not None:
            batch[image_input] = np.asarray([_image_bytes(source) for source in catalog.image_sources[start:start + batch_size]],
                                            dtype=object)
        yield batch


def _image_bytes(source) -> bytes:
    if isinstance(source, bytes):
        return source
    if not source:
        return b""
    try:
        return Path(source).read_bytes()
    except OSError:
        return b""  # the signature turns empty bytes into a blank image, as training does


def _shard_size(number: int, shard_rows: int, total: int) -> int:
    return min((number + 1) * shard_rows, total) - number * shard_rows


def _embedded_batches(embedder: Embedder, catalog, batch_size: int):
    if len(catalog) == 0:
        return
    for features in catalog_batches(embedder, catalog, batch_size):
        vectors = embedder.embed_batch(features)
        if vectors.ndim != 2 or vectors.shape[1] != embedder.dim:
            raise EmbeddingError(f"{embedder.source}: embedding of shape {vectors.shape}, expected [B, {embedder.dim}]")
        yield vectors
