"""Sharded TFRecord files of prepared examples, and a reader giving the same pipeline as `make_dataset`.

Layout of a TFRecord directory::

    metadata.json                          schema, taxonomy (JSON), text fields, levels, per-split counts
    train-00000-of-00004.tfrecord ...      tf.train.Example: id, split, text fields, image_bytes,
    validation-00000-of-00001.tfrecord     labels (int64 [L]), value
    test-...

Images are stored as their encoded bytes (read once from disk), so training from TFRecords needs neither
the catalog nor the image folder: `read_tfrecord_catalog` reads a directory (or a glob of its shards) back into
the `PreparedCatalog` `linnet train` trains on, images as inline bytes.
"""

from __future__ import annotations

import glob
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from google.protobuf.message import DecodeError

from linnet.atomic_files import shared_mode, write_atomically
from linnet.data.images import read_image_file
from linnet.data.pipeline import _augmenter, batch_finisher
from linnet.data.prepare import CatalogReport, PreparedCatalog
from linnet.data.readers import BadRow, RecordChunk
from linnet.data.schema import CatalogSchema
from linnet.data.split import SPLIT_NAMES, assign_splits
from linnet.data.weights import CLASS_WEIGHTINGS
from linnet.data.weights import class_weights as compute_class_weights
from linnet.errors import CatalogError, ConfigError
from linnet.progress import progress_bar
from linnet.taxonomy import Taxonomy

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
    if is_url(directory):  # gs://, hdfs://, ...: through TensorFlow's filesystems
        import tensorflow as tf  # lazy: linnet.data promises no TensorFlow at import

        url = f"{os.fspath(directory).rstrip('/')}/{METADATA_FILE}"
        if not tf.io.gfile.exists(url):
            raise CatalogError(f"{directory}: not a TFRecord directory written by write_tfrecords ({METADATA_FILE} "
                               "missing)")
        with tf.io.gfile.GFile(url, "r") as handle:
            return json.loads(handle.read())
    path = Path(directory) / METADATA_FILE
    if not path.is_file():
        raise CatalogError(f"{directory}: not a TFRecord directory written by write_tfrecords ({METADATA_FILE} missing)")
    return json.loads(path.read_text(encoding="utf-8"))


def is_url(path: str | os.PathLike) -> bool:
    """True for a URL (``gs://...``, ``s3://...``, ``ram://...``): read through ``tf.io.gfile``, never as a local
    `Path` (which would make ``gs://b`` ``gs:/b``)."""
    return "://" in os.fspath(path)


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
    files = [f"{os.fspath(directory).rstrip('/')}/{name}" for name in metadata["shards"][split]]  # local or gs://
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


# ------------------------------------------------------------------------------- a TFRecord catalog to train on
TFRECORD_SUFFIX = ".tfrecord"
_READ_BATCH = 4096  # records parsed per tf.io.parse_example call


def is_tfrecord_catalog(path: str | os.PathLike) -> bool:
    """True when ``path`` is a directory (a TFRecord catalog is one; `read_metadata` names one that is not), a
    file or glob of ``*.tfrecord`` shards, or a URL (``gs://...``: only TFRecord catalogs are read from URLs);
    False for a local catalog file (CSV/TSV/JSONL/Parquet). Reads no file."""
    text = os.fspath(path)
    return is_url(text) or os.path.isdir(text) or text.endswith(TFRECORD_SUFFIX)


def tfrecord_catalog_files(path: str | os.PathLike) -> tuple[list[str], dict[str, Any]]:
    """The shard files of a TFRecord directory (every split's, as ``metadata.json`` lists them) or of a glob of
    shards (``records/train-*.tfrecord``), and the ``metadata.json`` next to them.

    Raises:
        CatalogError: no shard matches, the shards are in several folders, or their folder has no metadata.
    """
    text = os.fspath(path)
    if is_url(text):
        import tensorflow as tf  # lazy: linnet.data promises no TensorFlow at import

        text = text.rstrip("/")
        is_dir, matches = tf.io.gfile.isdir(text), lambda: sorted(tf.io.gfile.glob(text))
    else:
        is_dir, matches = os.path.isdir(text), lambda: sorted(glob.glob(text))
    if is_dir:
        metadata = read_metadata(text)
        return [f"{text.rstrip('/')}/{name}" for split in SPLIT_NAMES for name in metadata["shards"].get(split, [])], \
            metadata
    files = matches()
    if not files:
        raise CatalogError(f"{text}: no TFRecord shard matches")
    folders = {name.rsplit("/", 1)[0] if is_url(name) else os.path.dirname(os.path.abspath(name)) for name in files}
    if len(folders) > 1:
        raise CatalogError(f"{text}: the shards are in {len(folders)} folders; a TFRecord catalog is one folder "
                           f"with its {METADATA_FILE}")
    return files, read_metadata(folders.pop())


def tfrecord_catalog_schema(path: str | os.PathLike, schema: CatalogSchema | None = None) -> CatalogSchema:
    """The schema a TFRecord catalog was written with, or ``schema`` when given and the records hold what it reads:
    each of its feature text fields, and images if it has an image column (a schema without one trains on the
    text alone, leaving the stored images out).

    Raises:
        ConfigError: ``schema`` names a text field, or an image, the records do not hold.
    """
    _, metadata = tfrecord_catalog_files(path)
    if schema is None:
        return CatalogSchema.from_dict(metadata["schema"], where=f"{os.fspath(path)} {METADATA_FILE}")
    missing = [name for name in schema.feature_text_fields if name not in metadata["text_fields"]]
    if missing or (schema.has_image and not metadata["has_image"]):
        lacking = f"text field(s) {missing}" if missing else "images"
        raise ConfigError(f"{os.fspath(path)}: the records hold text fields {metadata['text_fields']} and "
                          f"{'images' if metadata['has_image'] else 'no images'}, not the {lacking} the schema flags "
                          "name; leave the schema flags out to train on the records' own schema")
    return schema


def read_tfrecord_catalog(path: str | os.PathLike, schema: CatalogSchema | None = None, *,
                          taxonomy: Taxonomy | None = None,
                          split: tuple[float, float, float] | None = None, split_salt: str = "",
                          max_rows: int | None = None) -> PreparedCatalog:
    """A TFRecord directory (`write_tfrecords`, ``linnet data tfrecords``, ``linnet beam build-tfrecords``) or a glob
    of its shards, read back into the `PreparedCatalog` `prepare_catalog` makes of a catalog file.

    The shards are read by a tf.data pipeline (parallel interleave of ``TFRecordDataset``, batched
    ``parse_example``, prefetch); images come back as their stored bytes (inline image sources), labels as stored
    (they index the taxonomy in ``metadata.json``). Records are read in their shards' order, so ``locations``
    are record numbers.

    Args:
        path: the directory, one shard, or a glob of shards (they and ``metadata.json`` in one folder); local or a
            URL TensorFlow reads (``gs://``; ``s3://``, ``hdfs://`` with tensorflow-io).
        schema: what to read (`tfrecord_catalog_schema`): its text fields, and the images only with an image column
            (default: the schema the records were written with).
        taxonomy: when given, it must be the tree the records' labels index (the same fingerprint).
        split: train, validation and test fractions to split again by id hash (`linnet.data.assign_splits`, the
            rule `prepare_catalog` follows, so a catalog file and its records split alike); None keeps the
            split stored in each record.
        split_salt: the salt of that split.
        max_rows: read at most this many records.

    Raises:
        CatalogError: not a TFRecord catalog (named), or no record in it.
        ConfigError: ``taxonomy`` is another tree than the records'.
    """
    import tensorflow as tf  # lazy: linnet.data promises no TensorFlow at import

    files, metadata = tfrecord_catalog_files(path)
    stored_taxonomy = Taxonomy.from_json(metadata["taxonomy"]) if metadata["taxonomy"] is not None else None
    if taxonomy is not None and (stored_taxonomy is None or stored_taxonomy.fingerprint() != taxonomy.fingerprint()):
        raise ConfigError(f"{os.fspath(path)}: the records' labels index the tree in their {METADATA_FILE}, not the "
                          "taxonomy given (--taxonomy); leave it out, or write the records with that tree")
    schema = tfrecord_catalog_schema(path, schema)
    fields, num_levels, with_image = list(schema.feature_text_fields), metadata["num_levels"], schema.has_image
    spec = {name: tf.io.FixedLenFeature([], tf.string)
            for name in [*fields, "id", "split", *([_IMAGE_BYTES] if with_image else [])]}
    spec[_LABELS] = tf.io.FixedLenFeature([num_levels], tf.int64)
    if metadata["has_value"]:
        spec["value"] = tf.io.FixedLenFeature([], tf.float32, default_value=float("nan"))
    dataset = tf.data.Dataset.from_tensor_slices(tf.constant(files, dtype=tf.string)).interleave(
        tf.data.TFRecordDataset, cycle_length=max(1, min(len(files), 8)), num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True)
    if max_rows is not None:
        dataset = dataset.take(max_rows)
    dataset = dataset.batch(_READ_BATCH).map(lambda serialized: tf.io.parse_example(serialized, spec),
                                             num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
    columns: dict[str, list[np.ndarray]] = {name: [] for name in spec}
    for batch in dataset.as_numpy_iterator():
        for name, values in batch.items():
            columns[name].append(values)
    if not columns["id"]:
        raise CatalogError(f"{os.fspath(path)}: no TFRecord in {len(files)} shard(s)")
    joined = {name: np.concatenate(parts) for name, parts in columns.items()}

    def text(values: np.ndarray) -> np.ndarray:
        return np.array([value.decode("utf-8") for value in values], dtype=object)

    ids = text(joined["id"])
    image_sources = None
    report = CatalogReport(path=os.fspath(path), rows_read=len(ids), rows_kept=len(ids))
    if with_image:
        image_sources = np.empty(len(ids), dtype=object)
        image_sources[:] = list(joined[_IMAGE_BYTES])
        present = int(sum(len(value) > 0 for value in image_sources))
        image_sources[[len(value) == 0 for value in image_sources]] = ""  # no usable image, as prepare_catalog
        report.images = {"bytes": present, "none": len(ids) - present}
    split_names = (np.array(text(joined["split"]), dtype="<U10") if split is None
                   else assign_splits(ids, split, salt=split_salt))
    report.splits = {name: int((split_names == name).sum()) for name in SPLIT_NAMES}
    labels = joined[_LABELS].astype(np.int32)
    report.unlabelled = int((labels[:, 0] < 0).sum()) if num_levels else len(ids)
    return PreparedCatalog(
        ids=ids, texts={name: text(joined[name]) for name in fields}, image_sources=image_sources, labels=labels,
        split=split_names, values=joined["value"].astype(np.float32) if metadata["has_value"] else None,
        locations=np.arange(1, len(ids) + 1, dtype=np.int64), taxonomy=stored_taxonomy, schema=schema, report=report,
        source=os.fspath(path),
    )


# ------------------------------------------------------------------- a file of tf.train.Example records to predict
TFRECORD_FORMAT = "tfrecord"
_PEEK_RECORDS = 100  # records whose feature names make the reader's columns


def _text_or_bytes(value: bytes) -> str | bytes:
    """An image cell: a path or URL when the bytes are UTF-8 text without NUL, else the image's own bytes."""
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return value
    return value if "\0" in text else text


class TFRecordCatalogReader:
    """`linnet.data.CatalogReader`'s interface (``columns``, ``require``, chunks of records) for a file of
    ``tf.train.Example`` records: the records `write_tfrecords` and ``linnet beam build-tfrecords`` write, or any
    Examples with the schema's columns as features (the Beam jobs read ``*.tfrecord`` catalogs with it).

    A feature with one value gives that value; none, None; several, a list. Text is UTF-8 (a bytes feature that is
    not is a bad row naming it); the image column keeps its bytes unless they are a path or URL, and the records'
    own ``image_bytes`` feature is read as ``image_column`` when the records have no feature of that name. A record
    that is not an Example, or a file cut short, gives a bad row (``record N``), never an exception.

    Example:
        >>> for chunk in TFRecordCatalogReader("records/test-00000-of-00001.tfrecord", image_column="image"):  # doctest: +SKIP
        ...     print(chunk.records[0]["title"])
    """

    format = TFRECORD_FORMAT
    location_kind = "record"

    def __init__(self, path: str | os.PathLike, chunk_rows: int = 1024, image_column: str | None = None):
        self.path, self.chunk_rows, self.image_column = Path(path), int(chunk_rows), image_column
        if not self.path.is_file():
            raise CatalogError(f"{self.path}: catalog file not found")
        if self.path.stat().st_size == 0:
            raise CatalogError(f"{self.path}: the file is empty")
        names: list[str] = []
        for chunk in self._chunks(limit=_PEEK_RECORDS):
            for record in chunk.records:
                names.extend(name for name in record if name not in names)
        self.columns = names

    def require(self, names) -> None:
        missing = [name for name in names if name not in self.columns]
        if missing:
            raise CatalogError(f"{self.path}: feature(s) {missing} not found; the records have {self.columns}")

    def __iter__(self):
        return self._chunks()

    def _chunks(self, limit: int | None = None):
        import tensorflow as tf  # lazy: linnet.data promises no TensorFlow at import

        dataset = tf.data.TFRecordDataset(str(self.path))
        if limit is not None:
            dataset = dataset.take(limit)
        number = 0
        batches = iter(dataset.batch(self.chunk_rows).prefetch(1))
        while True:
            chunk = RecordChunk()
            try:
                serialized = next(batches).numpy()
            except StopIteration:
                return
            except tf.errors.OpError as error:  # a file cut short, a checksum that does not match
                reason = error.message.split("}} ")[-1].split(" [Op:")[0]  # without TF's op names
                chunk.bad_rows.append(BadRow(str(self.path), number + 1, None, None,
                                             f"cannot read the records after record {number}: {reason}",
                                             location_kind=self.location_kind))
                yield chunk
                return
            for value in serialized:
                number += 1
                record, bad = self._record(value, number)
                if bad is not None:
                    chunk.bad_rows.append(bad)
                else:
                    chunk.records.append(record)
                    chunk.locations.append(number)
            yield chunk

    def _record(self, serialized: bytes, number: int) -> tuple[dict[str, Any], BadRow | None]:
        import tensorflow as tf  # lazy: as in _chunks

        try:
            example = tf.train.Example.FromString(serialized)
        except DecodeError as error:
            return {}, BadRow(str(self.path), number, None, None, f"not a tf.train.Example: {error}",
                              location_kind=self.location_kind)
        record: dict[str, Any] = {}
        undecodable = None
        for name, feature in example.features.feature.items():
            kind = feature.WhichOneof("kind")
            values = list(getattr(feature, kind).value) if kind else []
            if kind == "bytes_list":
                if name in (self.image_column, _IMAGE_BYTES):
                    values = [_text_or_bytes(value) for value in values]
                else:
                    try:
                        values = [value.decode("utf-8") for value in values]
                    except UnicodeDecodeError:
                        undecodable = undecodable or name
            record[name] = values[0] if len(values) == 1 else (values or None)
        if self.image_column and self.image_column not in record and _IMAGE_BYTES in record:
            record[self.image_column] = record.pop(_IMAGE_BYTES) or ""  # write_tfrecords' b"": no image
        if undecodable is not None:  # as CatalogReader's JSON Lines: the id is not trusted from a bad record
            return record, BadRow(str(self.path), number, None, undecodable,
                                  "not valid UTF-8 text (wrong encoding?)", location_kind=self.location_kind)
        return record, None
