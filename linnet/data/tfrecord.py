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
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from linnet.atomic_files import shared_mode, write_atomically
from linnet.data.images import read_image_file
from linnet.data.pipeline import _augmenter, batch_finisher
from linnet.data.split import SPLIT_NAMES
from linnet.data.weights import CLASS_WEIGHTINGS
from linnet.data.weights import class_weights as compute_class_weights
from linnet.errors import CatalogError, ConfigError
from linnet.progress import progress_bar

METADATA_FILE = "metadata.json"
_IMAGE_BYTES = "image_bytes"
_LABELS = "labels"


def _image_bytes(source: Any) -> bytes:
    if isinstance(source, bytes):
        return source
    if isinstance(source, str) and source:
        # checked again as it is read (size, magic bytes): it may have changed since preparation; a file
        # that vanished or changed into something else is stored as "no image", like a missing file
        return read_image_file(source)[0]
    return b""


class _ShardWriter:
    """Writes one split's examples into numbered shards of at most ``per_shard`` examples each.

    Shards are written to temporary files and get their final ``-of-N`` names in `finish`, once N is known.
    """

    def __init__(self, out_dir: Path, split: str, per_shard: int):
        self.out_dir, self.split, self.per_shard = out_dir, split, per_shard
        self.finished: list[str] = []  # temporary names of complete shards
        self.writer = None
        self.temporary = None
        self.in_shard = 0

    def write(self, serialized: bytes) -> None:
        import tensorflow as tf  # lazy: linnet.data promises no TensorFlow at import

        if self.writer is None:
            with tempfile.NamedTemporaryFile(dir=self.out_dir, prefix=f".{self.split}-", suffix=".tmp",
                                             delete=False) as handle:
                self.temporary = handle.name
            self.writer = tf.io.TFRecordWriter(self.temporary)
        self.writer.write(serialized)
        self.in_shard += 1
        if self.in_shard >= self.per_shard:
            self._close()

    def _close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.finished.append(self.temporary)
            self.writer, self.in_shard = None, 0

    def finish(self) -> list[str]:
        self._close()
        total = len(self.finished)
        names = []
        for shard, temporary in enumerate(self.finished):
            name = f"{self.split}-{shard:05d}-of-{total:05d}.tfrecord"
            os.chmod(temporary, shared_mode())  # NamedTemporaryFile made it 0600
            os.replace(temporary, self.out_dir / name)
            names.append(name)
        return names


def _serialize(catalog, row: int, fields) -> bytes:
    import tensorflow as tf  # lazy: linnet.data promises no TensorFlow at import

    def bytes_feature(values):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))

    feature = {
        "id": bytes_feature([str(catalog.ids[row]).encode("utf-8")]),
        "split": bytes_feature([str(catalog.split[row]).encode()]),
        _LABELS: tf.train.Feature(int64_list=tf.train.Int64List(value=catalog.labels[row].tolist())),
        _IMAGE_BYTES: bytes_feature([_image_bytes(catalog.image_sources[row]) if catalog.image_sources is not None
                                     else b""]),
    }
    for name in fields:
        feature[name] = bytes_feature([str(catalog.texts[name][row]).encode("utf-8")])
    if catalog.values is not None:
        feature["value"] = tf.train.Feature(float_list=tf.train.FloatList(value=[catalog.values[row]]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def write_tfrecords(catalog, out_dir: str | os.PathLike, *, examples_per_shard: int = 10_000,
                    progress: bool = True) -> Path:
    """Writes a prepared catalog as sharded TFRecords, one set of shards per split, plus ``metadata.json``.

    Shards are written to temporary files and renamed when complete; ``metadata.json`` is written last,
    so a directory with metadata is always whole.

    Args:
        catalog: A `PreparedCatalog`, or the chunks of `prepare_catalog_chunks` (written as they come, so a
            catalog bigger than memory streams through).
        out_dir: Output directory.
        examples_per_shard: Shard size (shards of one split are read in parallel).
        progress: Show a tqdm progress bar.

    Returns:
        ``out_dir``.

    Example:
        >>> write_tfrecords(prepare_catalog("catalog.csv", schema), "records/")  # doctest: +SKIP
        >>> write_tfrecords(prepare_catalog_chunks("huge.csv", schema), "records/")  # doctest: +SKIP
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    chunks = [catalog] if hasattr(catalog, "subset") else catalog
    writers = {split: _ShardWriter(out_dir, split, examples_per_shard) for split in SPLIT_NAMES}
    class_counts: dict[str, list[np.ndarray]] = {}
    examples = dict.fromkeys(SPLIT_NAMES, 0)
    first = None
    with progress_bar(total=len(catalog) if chunks is not catalog else None, desc="writing TFRecords", unit=" examples",
                      enabled=progress) as bar:
        for chunk in chunks:
            first = first or chunk
            fields = chunk.schema.feature_text_fields
            sizes = chunk.taxonomy.level_sizes() if chunk.taxonomy is not None else []
            for split in SPLIT_NAMES:
                rows = np.flatnonzero(chunk.split == split)
                examples[split] += len(rows)
                labels = chunk.labels[rows]
                counts = [np.bincount(labels[:, level][labels[:, level] >= 0], minlength=size)
                          for level, size in enumerate(sizes)]
                class_counts[split] = [a + b for a, b in zip(class_counts[split], counts)] \
                    if split in class_counts else counts
                for row in rows:
                    writers[split].write(_serialize(chunk, row, fields))
                bar.update(len(rows))
    if first is None:
        raise CatalogError("write_tfrecords: no examples to write")
    shards = {split: writer.finish() for split, writer in writers.items()}
    metadata = {
        "format": "linnet-tfrecords", "version": 1, "text_fields": first.schema.feature_text_fields,
        "num_levels": first.num_levels, "has_image": first.image_sources is not None,
        "has_value": first.values is not None, "schema": first.schema.to_dict(), "shards": shards,
        "splits": {split: {"examples": examples[split], "class_counts": [c.tolist() for c in class_counts.get(split, [])]}
                   for split in SPLIT_NAMES},
        "taxonomy": first.taxonomy.to_json() if first.taxonomy is not None else None,
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
    import tensorflow as tf  # lazy: linnet.data promises no TensorFlow at import

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
    files_dataset = tf.data.Dataset.from_tensor_slices(tf.constant(files, dtype=tf.string))
    if shuffle:
        files_dataset = files_dataset.shuffle(len(files), seed=seed)
    # unshuffled reads keep the file order (evaluation aligns predictions with ids); shuffled ones mix shards
    dataset = files_dataset.interleave(tf.data.TFRecordDataset, cycle_length=max(1, min(len(files), 8)) if shuffle else 1,
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
    weights = {}
    for level, counts in enumerate(class_counts, start=1):
        labels = np.repeat(np.arange(len(counts)), counts)[:, None]
        weights[f"level_{level}"] = compute_class_weights(labels, [len(counts)], weighting)["level_1"]
    return weights
