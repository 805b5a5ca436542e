"""Embedding cache: frozen encoders run once per product; the heads train on the stored vectors.

When every encoder of a model is frozen (BERT or USE used as a feature extractor, an ImageNet
MobileNet with ``trainable: false``), running the encoders every step of every
epoch recomputes the same vectors. Instead, `plan` splits the model at its ``joined`` layer (where the
encoders end), the encoders run once over the catalog, and the vectors are stored as sharded ``.npz`` files
under ``CACHE_DIR/<fingerprint>/``. The fingerprint hashes the encoders' configs and weight values
(`linnet.encoders.encoder_fingerprint`), the text fields and the image size, so a different encoder never
reads another's vectors. Inside a shard, each vector is keyed by product id plus a digest of the product's
inputs (text fields and image source), so an edited product is recomputed rather than served stale.

A second run with the same encoders (even on a grown catalog) computes only the products it has not seen.
After training, `CachePlan.copy_heads_into` copies the trained head weights into the full model by layer
name, and the run saves the full model (encoders + heads) as usual.

**Frozen encoders beside a wide path** (``model.wide.with_pretrained`` with a frozen BERT/USE, or a frozen
n-gram encoder): `plan` returns a `WideCachePlan`. The ``joined`` vectors are cached as above; the heads model
also takes ``ngram_ids`` and ``ngram_weights``, which the full model's ``featurizer`` layer (no trainable
weights) computes from the products' text in the tf.data pipeline, so the wide path trains on every product
while the encoders ran once.

**Cached where frozen.** When only the image encoder is frozen (the n-gram text encoder and the wide path
train, as in the default model plus a frozen ImageNet MobileNet), `plan` returns an `ImageFeaturesPlan`:
the image encoder runs once per product *that has an image* (a product without one has
``image_present = 0``, its gated vector is zeros, and the CNN never sees it), the gated vectors are stored in
the same `EmbeddingStore` (keyed by product id + a digest of the image source; fingerprint of the image
encoder's config, weights and input size), and a model built by ``build_model(..., image_features_dim=D)``
trains on them: its ``image_features`` input replaces ``image`` and the encoder, every other layer (text
featurizer and embedding bag, wide path, fusion, heads) has the same name as in the full model and trains as
usual. Its tf.data pipeline reads no image file: shuffled row indices are batched and gathered from the
cached vectors, text strings, labels and sample weights in a parallel map.

Example:
    >>> from linnet.training.embedding_cache import EmbeddingStore
    >>> store = EmbeddingStore("/tmp/linnet-cache", "f" * 64)  # doctest: +SKIP
    >>> vectors, missing = store.lookup(["id-1", "id-2"], ["digest-1", "digest-2"])  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from linnet.atomic_files import atomic_path, write_atomically
from linnet.data import make_dataset, sample_weights
from linnet.encoders import encoder_fingerprint
from linnet.model import build_model, names
from linnet.model.builder import build_heads, classifier_outputs_model
from linnet.training.featurized import (
    featurized_training_model,
    has_wide_path,
    wide_featurizer_layer,
)

SHARD_ROWS = 50_000


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
            with atomic_path(self.directory / name, suffix=".npz") as temporary:
                np.savez(temporary, keys=keys[start:start + SHARD_ROWS],
                         vectors=np.asarray(vectors[start:start + SHARD_ROWS], dtype=np.float32))
            manifest["shards"].append({"file": name, "rows": int(min(SHARD_ROWS, len(keys) - start))})
        write_atomically(self.directory / "manifest.json", json.dumps(manifest, indent=1))


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

    # Which encoders' outputs come from the cache ("text", "image"), for the run's metrics.
    cached_encoders: list[str] = []

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
        # Turns a gathered batch into the heads model's inputs in tf.data (`_gathered`); None: as gathered.
        self.featurize = None

    def vectors(self, catalog, image_size, batch_size: int, cache_dir=None, progress: bool = False) -> np.ndarray:
        """The joined encoder vectors of every product of ``catalog``, from the cache or computed and stored."""
        # Hashed now, not when the plan was made: weights set in between (a frozen n-gram encoder's IDF table,
        # learnt from the training texts) change the vectors.
        self.fingerprint = encoders_fingerprint(self.encoder_model)
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
        def dataset(catalog, shuffle: bool):
            vectors = self.vectors(catalog, image_size, fit.batch_size, cache_dir, progress)
            labels = {names.level_output(k): catalog.labels[:, k - 1] for k in range(1, catalog.labels.shape[1] + 1)}
            weights = sample_weights(catalog.labels, weights_by_level)
            data = tf.data.Dataset.from_tensor_slices((vectors, labels, weights))
            if shuffle:
                data = data.shuffle(data_config.shuffle_buffer or min(len(catalog), 100_000), seed=fit.seed,
                                    reshuffle_each_iteration=True)
            return data.batch(fit.batch_size).prefetch(tf.data.AUTOTUNE)

        train = dataset(train_catalog, True)
        validation = dataset(validation_catalog, False) if len(validation_catalog) else None
        return train, validation

    def _gathered(self, columns: tuple, rows: int, batch_size: int, shuffle_buffer: int | None = None, seed=None):
        """Batches of ``columns`` (nested NumPy arrays of ``rows`` rows) gathered by (shuffled) row index."""
        tensors = tf.nest.map_structure(tf.constant, columns)
        featurize = self.featurize

        def gather(indices):
            batch = tf.nest.map_structure(lambda column: tf.gather(column, indices), tensors)
            batch = featurize(*batch) if featurize is not None else batch
            return batch if len(batch) > 1 else batch[0]

        data = tf.data.Dataset.range(rows)
        if shuffle_buffer:
            data = data.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
        data = data.batch(batch_size).map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return data.prefetch(tf.data.AUTOTUNE)

    def copy_heads_into(self, model) -> None:
        """Copies the trained heads' weights into ``model`` by layer name."""
        for layer in self.heads_model.layers:
            if layer.weights:
                model.get_layer(layer.name).set_weights(layer.get_weights())

    def summary(self) -> dict:
        return {
            "cached_encoders": list(self.cached_encoders),
            "fingerprint": self.fingerprint,
            "directory": str(self.cache_directory) if self.cache_directory else None,
            "reused": self.reused,
            "computed": self.computed,
            "encode_seconds": round(self.encode_seconds, 2),
        }


def frozen_encoder_model(model):
    """``model``'s encoder part (inputs -> ``joined``), or None when it trains.

    Also None when ``model`` has a wide path not fed by a layer named ``featurizer`` (the n-gram featurizer,
    without trainable weights, that the cache runs in tf.data): its inputs could not be computed then.
    """
    try:
        joined = model.get_layer(names.JOINED)
    except ValueError:
        return None
    encoder_model = keras.Model(model.inputs, joined.output, name="encoders")
    if encoder_model.trainable_weights:
        return None
    if has_wide_path(model) and wide_featurizer_layer(model) is None:
        return None
    return encoder_model


def encoders_fingerprint(encoder_model) -> str:
    """Fingerprint of the encoder part: input names, each weighted layer's config and weights."""
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


def plan(model, config, taxonomy=None, text_fields=None, image_size: int | None = None) -> CachePlan | None:
    """How ``model`` trains on cached embeddings, or None when nothing it runs is both frozen and cacheable.

    - Every encoder frozen and no wide path: a `CachePlan`. The heads model is built by
      `linnet.model.builder.build_heads` on an input of the ``joined`` width, with the same layer names as
      in ``model``.
    - Every encoder frozen and a wide path fed by the ``featurizer`` layer: a `WideCachePlan` (the heads
      model also takes the n-gram ids and weights, computed in tf.data).
    - Only the image encoder frozen (and ``taxonomy`` + ``image_size`` given, no image augmentation, which
      would change the encoder's input every epoch): an `ImageFeaturesPlan`.

    Args:
        model: the full model (`linnet.model.build_model`).
        config: the `TrainingConfig`.
        taxonomy, text_fields, image_size: what ``model`` was built with (the partial case rebuilds it with
            an ``image_features`` input).
    """
    encoder_model = frozen_encoder_model(model)
    if encoder_model is None:
        return image_features_plan(model, config, taxonomy, text_fields, image_size)
    num_levels = sum(1 for name in model.output if name.startswith("level_"))
    class_counts = [int(model.output[names.level_output(level)].shape[-1]) for level in range(1, num_levels + 1)]
    joined_width = int(encoder_model.output.shape[-1])
    vector = keras.Input(shape=(joined_width,), dtype="float32", name=names.JOINED_VECTOR)
    fingerprint = encoders_fingerprint(encoder_model)
    if has_wide_path(model):
        # The frozen encoders' vector comes from the cache; the wide path's n-grams are computed in tf.data.
        ids = keras.Input(shape=(None,), dtype="int64", name=names.NGRAM_IDS)
        weights = keras.Input(shape=(None,), dtype="float32", name=names.NGRAM_WEIGHTS)
        outputs = build_heads(config.model, class_counts, vector, ids, weights)
        inputs = {names.JOINED_VECTOR: vector, names.NGRAM_IDS: ids, names.NGRAM_WEIGHTS: weights}
        heads_model = classifier_outputs_model(keras.Model(inputs, outputs, name="heads"))
        cache_plan = WideCachePlan(model, config, encoder_model, heads_model, fingerprint,
                                   wide_featurizer_layer(model))
    else:
        outputs = build_heads(config.model, class_counts, vector)
        # The same training outputs as the full model's (an ArcFace leaf trains on its cosines).
        heads_model = classifier_outputs_model(keras.Model(vector, outputs, name="heads"))
        cache_plan = CachePlan(model, config, encoder_model, heads_model, fingerprint)
    cache_plan.cached_encoders = [kind for kind, present in (
        ("text", any(tensor.dtype == "string" for tensor in model.inputs)),
        ("image", names.IMAGE in _named_inputs(model)),
    ) if present]
    return cache_plan


def _named_inputs(model) -> dict:
    return model.input if isinstance(model.input, dict) else {}


def frozen_image_branch(model):
    """``{image, image_present} -> {"vector": gated image vector, "present": [B, 1]}`` of ``model``.

    None when ``model`` has no image input or its image encoder has trainable weights.
    """
    inputs = _named_inputs(model)
    if names.IMAGE not in inputs or names.IMAGE_PRESENT not in inputs:
        return None
    try:
        gate = model.get_layer(names.IMAGE_GATE)
    except ValueError:
        return None
    branch_inputs = {names.IMAGE: inputs[names.IMAGE], names.IMAGE_PRESENT: inputs[names.IMAGE_PRESENT]}
    if image_encoder_part(branch_inputs[names.IMAGE], gate).trainable_weights:
        return None
    present = keras.layers.Reshape((1,), name="image_present_column")(branch_inputs[names.IMAGE_PRESENT])
    return keras.Model(branch_inputs, {"vector": gate.output, "present": present}, name="image_branch")


def image_features_plan(model, config, taxonomy, text_fields, image_size) -> ImageFeaturesPlan | None:
    """An `ImageFeaturesPlan` when ``model``'s image encoder is frozen and something else trains; else None."""
    if taxonomy is None or not image_size or config.model.image_encoder is None or config.data.augment:
        return None
    branch = frozen_image_branch(model)
    if branch is None:
        return None
    image_dim = int(branch.output["vector"].shape[-1])
    features_model = build_model(config.model, taxonomy, text_fields=text_fields, image_size=image_size,
                                 name=f"{model.name}_image_features", image_features_dim=image_dim)
    # Start from the full model's initial weights, so a cached run begins where an uncached one would.
    for layer in features_model.layers:
        if layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    heads_model = classifier_outputs_model(features_model)
    text_inputs = [name for name, tensor in features_model.input.items() if tensor.dtype == "string"]
    featurize = None
    if config.training.featurize_in_dataset or config.training.strategy != "default":
        # Same as training without the cache: the n-grams are computed in tf.data, in parallel with the step.
        featurized = featurized_training_model(heads_model, text_inputs)
        if featurized is not None:
            heads_model, featurize = featurized
    # The encoder part (image -> vector, with the image size in its input shape) is what the vectors depend on.
    fingerprint = encoders_fingerprint(image_encoder_part(branch.input[names.IMAGE], branch.get_layer(names.IMAGE_GATE)))
    cache_plan = ImageFeaturesPlan(model, config, branch, heads_model, fingerprint, image_dim, text_inputs)
    cache_plan.featurize = featurize
    return cache_plan


def image_encoder_part(image_input, gate):
    """``image -> image encoder output`` (the input of the presence gate) as a Keras model."""
    return keras.Model(image_input, gate.input[0], name="image_encoder_part")


def image_digests(image_sources) -> list[str]:
    """One short digest per product of its image source: file path + size + modification time, or the bytes.

    A file replaced in place at the same path gets a new digest, so its vector is recomputed.
    """
    digests = []
    for source in image_sources:
        digest = hashlib.blake2b(digest_size=8)
        if isinstance(source, bytes):
            digest.update(b"bytes\0" + source)
        else:
            digest.update(b"path\0" + str(source).encode("utf-8"))
            try:
                status = os.stat(source)
                digest.update(f"\0{status.st_size}\0{status.st_mtime_ns}".encode())
            except OSError:  # read (and found missing) by the pipeline, which then blanks the image
                pass
        digests.append(digest.hexdigest())
    return digests


def encode_images(image_branch, catalog, image_size: int, batch_size: int, progress: bool = False) -> np.ndarray:
    """``float32 [N, D + 1]``: the gated image vector of each product of ``catalog`` and its ``image_present``.

    Images are read and decoded by `linnet.data.make_dataset` (parallel, prefetched), the frozen encoder runs
    in ``predict``. Tests count calls of this function: it is the only place the cache runs the CNN.
    """
    features = make_dataset(catalog, batch_size=batch_size, image_size=image_size, with_labels=False)
    features = features.map(lambda batch: {names.IMAGE: batch[names.IMAGE],
                                           names.IMAGE_PRESENT: batch[names.IMAGE_PRESENT]})
    outputs = image_branch.predict(features, verbose=1 if progress else 0)
    return np.concatenate([np.asarray(outputs["vector"], dtype=np.float32),
                           np.asarray(outputs["present"], dtype=np.float32).reshape(-1, 1)], axis=1)


class GatheredCachePlan(CachePlan):
    """A cache plan whose heads model reads cached vectors beside other columns (text, n-grams, flags).

    Subclasses say which columns a catalog gives (`_columns`); the datasets are built here: row indices are
    shuffled (seeded, reshuffled every epoch) and batched, and a parallel map gathers each batch's rows from
    tensors held in memory (then ``self.featurize``, when set, turns them into the heads model's inputs).
    """

    def _columns(self, catalog, image_size, batch_size: int, cache_dir=None, progress: bool = False) -> dict:
        raise NotImplementedError

    def datasets(self, train_catalog, validation_catalog, fit, data_config, image_size, weights_by_level,
                 progress: bool = False, cache_dir=None):
        """``(train, validation)`` tf.data of ``(features, labels, sample_weights)`` for the heads model."""
        def dataset(catalog, shuffle: bool):
            features = self._columns(catalog, image_size, fit.batch_size, cache_dir, progress)
            labels = {names.level_output(k): catalog.labels[:, k - 1].astype(np.int32)
                      for k in range(1, catalog.labels.shape[1] + 1)}
            columns = (features, labels, sample_weights(catalog.labels, weights_by_level))
            buffer = (data_config.shuffle_buffer or min(len(catalog), 100_000)) if shuffle else None
            return self._gathered(columns, len(catalog), fit.batch_size, buffer, fit.seed)

        train = dataset(train_catalog, True)
        validation = dataset(validation_catalog, False) if len(validation_catalog) else None
        return train, validation

    def features_dataset(self, catalog, image_size, batch_size: int, cache_dir=None):
        """tf.data of ``heads_model``'s inputs for ``catalog`` in order (no labels), from the cached vectors."""
        return self._gathered((self._columns(catalog, image_size, batch_size, cache_dir),), len(catalog), batch_size)


class ImageFeaturesPlan(GatheredCachePlan):
    """A run whose frozen image encoder is cached while the text encoder, wide path and heads train.

    ``heads_model`` (what ``fit`` trains) is the full model rebuilt with an ``image_features`` input;
    ``encoder_model`` is the image branch of the full model. The store holds ``D + 1`` columns per product:
    the gated image vector and ``image_present`` (a file that fails to decode gives 0 and a zero vector).
    """

    cached_encoders = ["image"]

    def __init__(self, model, config, image_branch, heads_model, fingerprint: str, image_dim: int, text_fields):
        super().__init__(model, config, image_branch, heads_model, fingerprint)
        self.image_dim = image_dim
        self.text_fields = text_fields
        self.without_image = 0
        # self.featurize is set when the n-gram featurizer runs in tf.data
        # (`linnet.training.featurized.featurized_training_model`).

    def image_features(self, catalog, image_size, batch_size: int, cache_dir=None,
                       progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """``(vectors float32 [N, D], image_present float32 [N])`` of ``catalog``, cached or computed now."""
        columns = np.zeros((len(catalog), self.image_dim + 1), dtype=np.float32)
        rows = np.flatnonzero(catalog.image_available())
        self.without_image += len(catalog) - len(rows)
        if len(rows):
            store = EmbeddingStore(cache_dir or default_cache_dir(), self.fingerprint)
            self.cache_directory = store.directory
            ids = np.asarray(catalog.ids)[rows]
            digests = image_digests(np.asarray(catalog.image_sources, dtype=object)[rows])
            cached, missing = store.lookup(ids, digests)
            if cached is not None and cached.shape[1] == columns.shape[1]:
                columns[rows[~missing]] = cached[~missing]
            else:
                missing[:] = True
            self.reused += int((~missing).sum())
            if missing.any():
                if progress:
                    print(f"Embedding cache: encoding {int(missing.sum()):,} product images once with the frozen "
                          f"image encoder ({int((~missing).sum()):,} cached, {len(catalog) - len(rows):,} without "
                          f"an image) into {store.directory}")
                selection = np.zeros(len(catalog), dtype=bool)
                selection[rows[missing]] = True
                started = time.perf_counter()
                computed = encode_images(self.encoder_model, catalog.subset(selection), image_size, batch_size,
                                         progress)
                self.encode_seconds += time.perf_counter() - started
                store.add(ids[missing], [digest for digest, gone in zip(digests, missing) if gone], computed)
                columns[rows[missing]] = computed
                self.computed += int(missing.sum())
        return columns[:, :self.image_dim], columns[:, self.image_dim]

    def _columns(self, catalog, image_size, batch_size: int, cache_dir=None, progress: bool = False) -> dict:
        """The text fields (``tf.string [B]``; the n-gram ids and weights instead when the featurizer runs in
        the pipeline), ``image_features`` ``[B, D]`` and ``image_present`` ``[B]``: no image is read."""
        vectors, present = self.image_features(catalog, image_size, batch_size, cache_dir, progress)
        # object arrays stay variable-length tf.strings (astype(str) would pad each to the longest)
        features = {field: np.asarray(catalog.texts[field], dtype=object) for field in self.text_fields}
        features[names.IMAGE_FEATURES] = vectors
        features[names.IMAGE_PRESENT] = present
        return features

    def summary(self) -> dict:
        return {**super().summary(), "mode": "image_features", "without_image": self.without_image}


class WideCachePlan(GatheredCachePlan):
    """Frozen encoders cached beside a trainable wide path (``model.wide``; e.g. wide + a frozen BERT/USE).

    The ``joined`` vectors are cached exactly as by `CachePlan` (same store, fingerprint and digests); the
    heads model (`linnet.model.builder.build_heads` with the full model's layer names, so
    `CachePlan.copy_heads_into` applies) takes ``joined_vector``, ``ngram_ids`` and ``ngram_weights``. The
    n-grams are computed in the tf.data pipeline by the full model's ``featurizer`` layer (no trainable
    weights) from the products' text, batch by batch, in a parallel map (as
    `linnet.training.featurized.featurized_training_model` does without the cache).
    """

    def __init__(self, model, config, encoder_model, heads_model, fingerprint: str, featurizer):
        super().__init__(model, config, encoder_model, heads_model, fingerprint)
        self.text_fields = list(featurizer.text_fields)

        def featurize(features, *rest):
            ids, weights = featurizer({field: features[field] for field in self.text_fields})
            mapped = {names.JOINED_VECTOR: features[names.JOINED_VECTOR], names.NGRAM_IDS: ids,
                      names.NGRAM_WEIGHTS: weights}
            return (mapped, *rest)

        self.featurize = featurize

    def _columns(self, catalog, image_size, batch_size: int, cache_dir=None, progress: bool = False) -> dict:
        """``joined_vector`` (cached) and the text the pipeline turns into ``ngram_ids``/``ngram_weights``."""
        vectors = self.vectors(catalog, image_size, batch_size, cache_dir, progress)
        # object arrays stay variable-length tf.strings (astype(str) would pad each to the longest)
        features = {field: np.asarray(catalog.texts[field], dtype=object) for field in self.text_fields}
        features[names.JOINED_VECTOR] = vectors
        return features

    def summary(self) -> dict:
        return {**super().summary(), "mode": "joined_and_wide"}
