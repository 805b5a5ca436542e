"""Sharded TFRecord files of prepared examples, and a reader giving the same pipeline as `make_dataset`.

Layout of a TFRecord directory::

    metadata.json                          schema, taxonomy (JSON), text fields, levels, per-split counts
    train-00000-of-00004.tfrecord ...      tf.train.Example: id, split, text fields, image_bytes,
    validation-00000-of-00001.tfrecord     labels (int64 [L]), value
    test-...

Images are stored as their encoded bytes (read once from disk), so training from TFRecords needs neither
the catalog nor the image folder.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from linnet.data._atomic import write_atomically
from linnet.data.split import SPLIT_NAMES
from linnet.errors import CatalogError

METADATA_FILE = "metadata.json"
_IMAGE_BYTES = "image_bytes"
_LABELS = "labels"


def _image_bytes(source: Any) -> bytes:
    if isinstance(source, bytes):
        return source
    if isinstance(source, str) and source:
        try:
            return Path(source).read_bytes()
        except OSError:
            return b""  # vanished since preparation: stored as "no image", like a missing file
    return b""


def write_tfrecords(catalog, out_dir: str | os.PathLike, *, examples_per_shard: int = 10_000,
                    progress: bool = True) -> Path:
    """Writes a `PreparedCatalog` as sharded TFRecords, one set of shards per split, plus ``metadata.json``.

    Each shard is written to a temporary file and renamed when complete; ``metadata.json`` is written last,
    so a directory with metadata is always whole.

    Args:
        catalog: The prepared catalog (all splits).
        out_dir: Output directory.
        examples_per_shard: Shard size (shards of one split are read in parallel).
        progress: Show a tqdm progress bar.

    Returns:
        ``out_dir``.

    Example:
        >>> write_tfrecords(prepare_catalog("catalog.csv", schema), "records/")  # doctest: +SKIP
    """
    import tensorflow as tf
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fields = catalog.schema.feature_text_fields
    counts: dict[str, Any] = {}
    shards: dict[str, list[str]] = {}

    def bytes_feature(values):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))

    with tqdm(total=len(catalog), desc="writing TFRecords", unit=" examples", disable=not progress) as bar:
        for split in SPLIT_NAMES:
            rows = np.flatnonzero(catalog.split == split)
            num_shards = max(1, math.ceil(len(rows) / examples_per_shard))
            labels = catalog.labels[rows]
            counts[split] = {
                "examples": len(rows),
                "class_counts": [np.bincount(labels[:, level][labels[:, level] >= 0],
                                             minlength=size).tolist()
                                 for level, size in enumerate(catalog.taxonomy.level_sizes())]
                if catalog.taxonomy is not None else [],
            }
            shards[split] = []
            for shard, part in enumerate(np.array_split(rows, num_shards)):
                name = f"{split}-{shard:05d}-of-{num_shards:05d}.tfrecord"
                with tempfile.NamedTemporaryFile(dir=out_dir, suffix=".tmp", delete=False) as handle:
                    temporary = handle.name
                with tf.io.TFRecordWriter(temporary) as writer:
                    for row in part:
                        feature = {
                            "id": bytes_feature([str(catalog.ids[row]).encode("utf-8")]),
                            "split": bytes_feature([split.encode()]),
                            _LABELS: tf.train.Feature(int64_list=tf.train.Int64List(value=catalog.labels[row].tolist())),
                            _IMAGE_BYTES: bytes_feature([_image_bytes(catalog.image_sources[row])
                                                         if catalog.image_sources is not None else b""]),
                        }
                        for name_ in fields:
                            feature[name_] = bytes_feature([str(catalog.texts[name_][row]).encode("utf-8")])
                        if catalog.values is not None:
                            feature["value"] = tf.train.Feature(float_list=tf.train.FloatList(value=[catalog.values[row]]))
                        writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
                        bar.update(1)
                os.replace(temporary, out_dir / name)
                shards[split].append(name)
    metadata = {
        "format": "linnet-tfrecords", "version": 1, "text_fields": fields, "num_levels": catalog.num_levels,
        "has_image": catalog.image_sources is not None, "has_value": catalog.values is not None,
        "schema": catalog.schema.to_dict(), "splits": counts, "shards": shards,
        "taxonomy": catalog.taxonomy.to_json() if catalog.taxonomy is not None else None,
    }
    write_atomically(out_dir / METADATA_FILE, json.dumps(metadata))
    return out_dir


def read_metadata(directory: str | os.PathLike) -> dict[str, Any]:
    path = Path(directory) / METADATA_FILE
    if not path.is_file():
        raise CatalogError(f"{directory}: not a TFRecord directory written by write_tfrecords ({METADATA_FILE} missing)")
    return json.loads(path.read_text(encoding="utf-8"))


def read_tfrecords(directory: str | os.PathLike, split: str = "train", batch_size: int = 256, *,
                   shuffle: bool = False, image_size: int | None = None, augment: Any = False,
                   class_weighting: str = "none", class_weights: dict[str, np.ndarray] | None = None,
                   with_labels: bool = True, seed: int | None = None, deterministic: bool | None = None,
                   shuffle_buffer: int = 10_000, repeat: bool = False, with_ids: bool = False):
    """The ``(features, labels, sample_weights)`` pipeline of `make_dataset`, read from TFRecord shards.

    Class weights come from the split's label counts stored in ``metadata.json`` unless given.

    Example:
        >>> dataset = read_tfrecords("records/", "train", batch_size=64, image_size=96)  # doctest: +SKIP
    """
    import tensorflow as tf

    from linnet.data.pipeline import _augmenter, batch_finisher
    from linnet.data.weights import CLASS_WEIGHTINGS
    from linnet.errors import ConfigError

    metadata = read_metadata(directory)
    if split not in metadata["shards"]:
        raise ConfigError(f"unknown split {split!r}; {directory} has {sorted(metadata['shards'])}")
    files = [str(Path(directory) / name) for name in metadata["shards"][split]]
    fields = metadata["text_fields"]
    num_levels = metadata["num_levels"]
    if image_size is not None and not metadata["has_image"]:
        raise ConfigError(f"{directory}: image_size is set but the records hold no images")
    weights = None
    if with_labels:
        if class_weights is not None:
            weights = class_weights
        else:
            if class_weighting not in CLASS_WEIGHTINGS:
                raise ConfigError(f"class weighting must be one of {CLASS_WEIGHTINGS}, got {class_weighting!r}")
            weights = _weights_from_counts(metadata["splits"][split]["class_counts"], class_weighting)
    spec = {name: tf.io.FixedLenFeature([], tf.string) for name in [*fields, "id", _IMAGE_BYTES]}
    spec[_LABELS] = tf.io.FixedLenFeature([num_levels], tf.int64)
    files_dataset = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        files_dataset = files_dataset.shuffle(len(files), seed=seed)
    # unshuffled reads keep the file order (evaluation aligns predictions with ids); shuffled ones mix shards
    dataset = files_dataset.interleave(tf.data.TFRecordDataset, cycle_length=min(len(files), 8) if shuffle else 1,
                                       num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    if shuffle:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.batch(batch_size)

    def parse(serialized):
        parsed = tf.io.parse_example(serialized, spec)
        parsed["__image_bytes"] = parsed.pop(_IMAGE_BYTES)
        parsed["__labels"] = tf.cast(parsed.pop(_LABELS), tf.int32)
        return parsed

    finish = batch_finisher(fields, image_size, _augmenter(augment, seed) if image_size else None, weights)

    def parse_and_finish(serialized):
        batch = parse(serialized)
        result = finish(batch)
        if with_ids:
            features = result[0] if isinstance(result, tuple) else result
            features["id"] = batch["id"]
        return result

    dataset = dataset.map(parse_and_finish, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _weights_from_counts(class_counts: list[list[int]], weighting: str) -> dict[str, np.ndarray]:
    """`linnet.data.class_weights` from stored per-level class counts (same formulas, no labels needed)."""
    from linnet.data.weights import class_weights

    weights = {}
    for level, counts in enumerate(class_counts, start=1):
        labels = np.repeat(np.arange(len(counts)), counts)[:, None]
        weights[f"level_{level}"] = class_weights(labels, [len(counts)], weighting)["level_1"]
    return weights
