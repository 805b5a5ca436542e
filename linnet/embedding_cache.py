"""Embedding cache: frozen encoders run once per product; the heads train on the stored vectors.

When every encoder of a model is frozen (BERT or USE used as a feature extractor, an ImageNet
MobileNet with ``trainable: false``) and there is no wide path, running the encoders every step of every
epoch recomputes the same vectors. Instead, `plan` splits the model at its ``joined`` layer (where the
encoders end), the encoders run once over the catalog, and the vectors are stored as sharded ``.npz`` files
under ``CACHE_DIR/<fingerprint>/``. The fingerprint hashes the encoders' configs and weight values
(`linnet.encoders.encoder_fingerprint`), the text fields and the image size, so a different encoder never
reads another's vectors. Inside a shard, each vector is keyed by product id plus a digest of the product's
inputs (text fields and image source), so an edited product is recomputed rather than served stale.

A second run with the same encoders (even on a grown catalog) computes only the products it has not seen.
After training, `CachePlan.copy_heads_into` copies the trained head weights into the full model by layer
name, and the run saves the full model (encoders + heads) as usual.

Example:
    >>> from linnet.embedding_cache import EmbeddingStore
    >>> store = EmbeddingStore("/tmp/linnet-cache", "f" * 64)  # doctest: +SKIP
    >>> vectors, missing = store.lookup(["id-1", "id-2"], ["digest-1", "digest-2"])  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

SHARD_ROWS = 50_000
JOINED_LAYER = "joined"


def default_cache_dir() -> Path:
    """``$LINNET_CACHE_DIR/embeddings`` or ``~/.cache/linnet/embeddings``."""
    root = os.environ.get("LINNET_CACHE_DIR")
    return Path(root) / "embeddings" if root else Path.home() / ".cache" / "linnet" / "embeddings"


class EmbeddingStore:
    """Sharded vectors of one encoder fingerprint: ``DIR/<fingerprint>/shard-NNNNN.npz`` + ``manifest.json``.

    Args:
        cache_dir: the cache root.
        fingerprint: the encoders' fingerprint (directory name).
    """

    def __init__(self, cache_dir, fingerprint: str):
        self.directory = Path(cache_dir) / fingerprint
        self.fingerprint = fingerprint

    def _manifest(self) -> dict:
        path = self.directory / "manifest.json"
        if not path.is_file():
            return {"fingerprint": self.fingerprint, "shards": []}
        return json.loads(path.read_text(encoding="utf-8"))

    def lookup(self, ids, digests) -> tuple[np.ndarray | None, np.ndarray]:
        """Vectors of the products found (rows of the missing ones are zeros) and a bool mask of the missing.

        Returns:
            ``(vectors [N, D] or None when nothing is cached, missing bool [N])``.
        """
        keys = [f"{product_id}\0{digest}" for product_id, digest in zip(ids, digests)]
        wanted = {key: row for row, key in enumerate(keys)}
        vectors = None
        found = np.zeros(len(keys), dtype=bool)
        for shard in self._manifest()["shards"]:
            with np.load(self.directory / shard["file"], allow_pickle=False) as data:
                shard_keys, shard_vectors = data["keys"], data["vectors"]
            if vectors is None:
                vectors = np.zeros((len(keys), shard_vectors.shape[1]), dtype=np.float32)
            for shard_row, key in enumerate(shard_keys.tolist()):
                row = wanted.get(key)
                if row is not None and not found[row]:
                    vectors[row] = shard_vectors[shard_row]
                    found[row] = True
        return vectors, ~found

    def add(self, ids, digests, vectors: np.ndarray) -> None:
        """Appends new shards holding ``vectors`` (atomic writes; the manifest is replaced last)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        manifest = self._manifest()
        keys = np.asarray([f"{product_id}\0{digest}" for product_id, digest in zip(ids, digests)])
        for start in range(0, len(keys), SHARD_ROWS):
            name = f"shard-{len(manifest['shards']):05d}.npz"
            with tempfile.NamedTemporaryFile(dir=self.directory, suffix=".npz", delete=False) as handle:
                np.savez(handle, keys=keys[start:start + SHARD_ROWS],
                         vectors=np.asarray(vectors[start:start + SHARD_ROWS], dtype=np.float32))
                temporary = handle.name
            os.replace(temporary, self.directory / name)
            manifest["shards"].append({"file": name, "rows": int(min(SHARD_ROWS, len(keys) - start))})
        with tempfile.NamedTemporaryFile("w", dir=self.directory, suffix=".json", delete=False) as handle:
            json.dump(manifest, handle, indent=1)
            temporary = handle.name
        os.replace(temporary, self.directory / "manifest.json")


def input_digests(catalog, text_fields) -> list[str]:
    """One short digest per product of everything the encoders read (text fields and image source)."""
    columns = [np.asarray(catalog.texts[field]).astype(str) for field in text_fields]
    images = catalog.image_sources if catalog.image_sources is not None else [""] * len(catalog)
    digests = []
    for row in range(len(catalog)):
        digest = hashlib.blake2b(digest_size=8)
        for column in columns:
            digest.update(column[row].encode("utf-8"))
            digest.update(b"\0")
        source = images[row]
        digest.update(source if isinstance(source, bytes) else str(source).encode("utf-8"))
        digests.append(digest.hexdigest())
    return digests


class CachePlan:
    """How a run with frozen encoders trains on cached embeddings (made by `plan`)."""

    def __init__(self, model, config, encoder_model, heads_model, fingerprint: str):
        self.model = model
        self.config = config
        self.encoder_model = encoder_model
        self.heads_model = heads_model
        self.fingerprint = fingerprint
        self.cache_directory: Path | None = None
        self.reused = 0
        self.computed = 0
        self.encode_seconds = 0.0

    def vectors(self, catalog, image_size, batch_size: int, cache_dir=None, progress: bool = False) -> np.ndarray:
        """The joined encoder vectors of every product of ``catalog``, from the cache or computed and stored."""
        from linnet.data import make_dataset

        store = EmbeddingStore(cache_dir or default_cache_dir(), self.fingerprint)
        self.cache_directory = store.directory
        text_fields = list(catalog.schema.feature_text_fields)
        digests = input_digests(catalog, text_fields)
        vectors, missing = store.lookup(catalog.ids, digests)
        self.reused += int((~missing).sum())
        if missing.any():
            started = time.perf_counter()
            subset = catalog.subset(missing)
            features = make_dataset(subset, batch_size=batch_size, image_size=image_size, with_labels=False)
            computed = np.asarray(self.encoder_model.predict(features, verbose=1 if progress else 0), dtype=np.float32)
            self.encode_seconds += time.perf_counter() - started
            store.add(subset.ids, [digest for digest, gone in zip(digests, missing) if gone], computed)
            if vectors is None:
                vectors = np.zeros((len(catalog), computed.shape[1]), dtype=np.float32)
            vectors[missing] = computed
            self.computed += int(missing.sum())
        return vectors

    def datasets(self, train_catalog, validation_catalog, fit, data_config, image_size, weights_by_level,
                 progress: bool = False, cache_dir=None):
        """``(train, validation)`` tf.data of ``(vector, labels, sample_weights)`` for the heads model."""
        import tensorflow as tf

        from linnet.data import sample_weights

        def dataset(catalog, shuffle: bool):
            vectors = self.vectors(catalog, image_size, fit.batch_size, cache_dir, progress)
            labels = {f"level_{k}": catalog.labels[:, k - 1] for k in range(1, catalog.labels.shape[1] + 1)}
            weights = sample_weights(catalog.labels, weights_by_level)
            data = tf.data.Dataset.from_tensor_slices((vectors, labels, weights))
            if shuffle:
                data = data.shuffle(data_config.shuffle_buffer or min(len(catalog), 100_000), seed=fit.seed,
                                    reshuffle_each_iteration=True)
            return data.batch(fit.batch_size).prefetch(tf.data.AUTOTUNE)

        train = dataset(train_catalog, True)
        validation = dataset(validation_catalog, False) if len(validation_catalog) else None
        return train, validation

    def copy_heads_into(self, model) -> None:
        """Copies the trained heads' weights into ``model`` by layer name."""
        for layer in self.heads_model.layers:
            if layer.weights:
                model.get_layer(layer.name).set_weights(layer.get_weights())

    def summary(self) -> dict:
        return {
            "fingerprint": self.fingerprint,
            "directory": str(self.cache_directory) if self.cache_directory else None,
            "reused": self.reused,
            "computed": self.computed,
            "encode_seconds": round(self.encode_seconds, 2),
        }


def frozen_encoder_model(model):
    """``model``'s encoder part (inputs -> ``joined``), or None when it trains or feeds a wide path."""
    import keras

    try:
        joined = model.get_layer(JOINED_LAYER)
    except ValueError:
        return None
    encoder_model = keras.Model(model.inputs, joined.output, name="encoders")
    if encoder_model.trainable_weights:
        return None
    if any(layer.name.startswith("wide_level_") for layer in model.layers):
        return None
    return encoder_model


def encoders_fingerprint(encoder_model) -> str:
    """Fingerprint of the encoder part: input names, each weighted layer's config and weights."""
    from linnet.encoders import encoder_fingerprint

    digest = hashlib.sha256()
    digest.update(json.dumps(sorted(encoder_model.input.keys()) if isinstance(encoder_model.input, dict) else [],
                             ).encode())
    digest.update(json.dumps([tuple(t.shape) for t in encoder_model.inputs], default=str).encode())
    for layer in encoder_model.layers:
        digest.update(layer.__class__.__name__.encode())
        if layer.weights or hasattr(layer, "output_dim"):
            digest.update(encoder_fingerprint(layer).encode())
        else:
            config = {key: value for key, value in layer.get_config().items() if key not in ("name", "trainable")}
            digest.update(json.dumps(config, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def plan(model, config) -> CachePlan | None:
    """A `CachePlan` when ``model``'s encoders are all frozen and it has no wide path; else None.

    The heads model is built by `linnet.model.builder.build_heads` on an input of the ``joined`` width,
    with the same layer names as in ``model``.
    """
    import keras

    from linnet.model.builder import build_heads, classifier_outputs_model

    encoder_model = frozen_encoder_model(model)
    if encoder_model is None:
        return None
    num_levels = sum(1 for name in model.output if name.startswith("level_"))
    class_counts = [int(model.output[f"level_{level}"].shape[-1]) for level in range(1, num_levels + 1)]
    joined_width = int(encoder_model.output.shape[-1])
    vector = keras.Input(shape=(joined_width,), dtype="float32", name="joined_vector")
    outputs = build_heads(config.model, class_counts, vector)
    # The same training outputs as the full model's (an ArcFace leaf trains on its cosines).
    heads_model = classifier_outputs_model(keras.Model(vector, outputs, name="heads"))
    return CachePlan(model, config, encoder_model, heads_model, encoders_fingerprint(encoder_model))
