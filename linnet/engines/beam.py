"""Apache Beam jobs: ``predict`` and ``embed`` a catalog with an export, on any Beam runner.

Pipeline (`predict_pipeline`, `embed_pipeline`)::

    catalog files (path or glob, any Beam filesystem)
    ─► ListIds: each file's id hashes and lines (a file under OUT/_linnet-ids-*) ─► IdCensus (repeats, fingerprint)
    ─► read each file with linnet's CatalogReader (CSV/TSV/JSONL/Parquet) or TFRecordCatalogReader (*.tfrecord;
        bad rows and repeated ids ─► errors) ─► RunInference(ExportModelHandler) ─► predictions (linnet predict's
        columns) / vectors ─► sharded Parquet or JSONL   + errors output   (one fused stage from reading to writing)
    ─► check: the ids written are the distinct ids read, once each (else the job fails)

`ExportModelHandler` is the `apache_beam.ml.inference.base.ModelHandler` Beam's stock TensorFlow handler cannot
be for a LinNét export: its ``load_model`` is ``tf.saved_model.load`` (with TF Text's ops registered,
`linnet.engines.signature_batches.load_export`, once per worker process) and ``run_inference`` calls one
signature on a batch of raw rows. Files are the unit of reading (shard a big catalog into files); rows travel in
batches of ``batch_size``, column by column (`linnet.engines.signature_batches.RowBatch`: one model call each, so
Beam's per-element cost is paid per batch, and no Python object is made per row). No stage boundary
carries rows (the in-process runner holds a stage's whole output in memory), so memory stays flat as rows grow.

Every input row comes out once: a prediction (or an empty prediction with ``error`` set, for a row with an id
that could not be predicted) in ``predictions-*``, and every problem in ``errors-*`` (``id``, ``file``,
``location``, ``field``, ``problem``) — `linnet predict`'s two files, as shards.

Example:
    >>> import apache_beam as beam  # doctest: +SKIP
    >>> with beam.Pipeline(options=pipeline_options([])) as pipeline:  # doctest: +SKIP
    ...     predict_pipeline(pipeline, "exports/linnet/1", "catalog/*.jsonl", "out/")
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import shutil
import tempfile
import uuid
import zlib
from collections.abc import Sequence
from pathlib import Path

import apache_beam as beam
import numpy as np
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import ModelHandler, PredictionResult, RunInference
from apache_beam.options.pipeline_options import (
    DirectOptions,
    PipelineOptions,
    StandardOptions,
)
from apache_beam.transforms.window import GlobalWindows

from linnet.data.readers import CatalogReader, detect_format, jsonl_ids
from linnet.data.rows import RowProblem, row_id, row_ids_of_array
from linnet.data.schema import ATTRIBUTES_FIELD, check_input_columns
from linnet.data.tfrecord import TFRECORD_FORMAT, TFRECORD_SUFFIX, TFRecordCatalogReader
from linnet.engines.signature_batches import (
    EMBED_SIGNATURE,
    ERROR_FIELDS,
    PREDICT_SIGNATURE,
    RowBatch,
    RowError,
    catalog_rows,
    describe,
    embedding_records,
    error_columns,
    load_export,
    prediction_batch,
    prediction_columns,
    split_rows,
    table_batch,
)
from linnet.errors import CatalogError, ConfigError
from linnet.serving.result_columns import column_kind

#: The in-process runner the jobs use when no ``--runner`` is given (Beam's DirectRunner may pick Prism,
#: which downloads a binary).
IN_PROCESS_RUNNER = "apache_beam.runners.portability.fn_api_runner.FnApiRunner"
OUTPUT_FORMATS = ("parquet", "jsonl")
EMBEDDING_FORMATS = ("parquet", "jsonl", "tfrecord")
PREDICTIONS, ERRORS, EMBEDDINGS = "predictions", "errors", "embeddings"
#: Rows per Parquet row group of the outputs (model calls' tables are joined up to this).
ROW_GROUP_ROWS = 16384
#: The folder under OUT where a job keeps its id lists (`ListIds`) until its id check deletes it.
SCRATCH_PREFIX = "_linnet-ids-"
_ERRORS_TAG = "errors"


def pipeline_options(args: Sequence[str] = (), **options) -> PipelineOptions:
    """Beam's `PipelineOptions` from command-line flags (``--runner DataflowRunner --project ...``), with the
    in-process runner when none is named: one worker thread per core (``--direct_num_workers``, default the core
    count, ``--direct_running_mode multi_threading``), which share the export loaded once in the process; the model
    call releases the GIL, so one thread's model call overlaps another's reading and result building. Beam's
    construction-time type check is off unless asked for (``--pipeline_type_check``): the jobs declare no type hints,
    and the check cost about a second of every job (``inspect.signature`` on every transform, measured)."""
    flags = list(args)
    if not (_given("pipeline_type_check", flags, options) or _given("no_pipeline_type_check", flags, options)):
        options["pipeline_type_check"] = False  # the jobs declare no type hints; Beam's check costs ~1 s a job
    if not _given("runner", flags, options):
        options["runner"] = IN_PROCESS_RUNNER
        if not _given("direct_num_workers", flags, options):
            options["direct_num_workers"] = os.cpu_count() or 1
        if not _given("direct_running_mode", flags, options):
            options["direct_running_mode"] = "multi_threading"
    return PipelineOptions(flags, **options)


def _given(name: str, flags: Sequence[str], options: dict) -> bool:
    return name in options or any(flag == f"--{name}" or flag.startswith(f"--{name}=") for flag in flags)


# ------------------------------------------------------------------------------------------ handler
class ExportModelHandler(ModelHandler):
    """RunInference's handler for a LinNét export: ``tf.saved_model.load`` once per worker, one signature called
    on each batch of rows. An element is ``(RowBatch, [RowError])``: the rows of one model call, column by column, as
    `ReadCatalog` groups them (Beam's per-element cost is paid per batch, not per row, and no Python object is made
    per row), and the bad rows with an id that get an empty prediction beside them; each result is
    ``PredictionResult(example=row count, inference=(records, errors))``: for ``serving_default`` the records are
    one ``pyarrow.Table`` of `linnet predict`'s columns, for ``embed`` a list of ``{"id", "embedding"}``.

    Args:
        export_dir: the export version directory (any path the workers can read).
        signature: ``serving_default`` (prediction records with `linnet predict`'s columns) or ``embed``.
        min_batch_size, max_batch_size, max_batch_duration_secs: Beam's batching knobs (`beam.BatchElements`), in
            elements (batches of rows); the default, one element per model call, keeps each call at the rows per
            element `ReadCatalog` was given.
    """

    def __init__(self, export_dir, signature: str = PREDICT_SIGNATURE, *, min_batch_size: int | None = None,
                 max_batch_size: int | None = 1, max_batch_duration_secs: int | None = None):
        super().__init__(min_batch_size=min_batch_size, max_batch_size=max_batch_size,
                         max_batch_duration_secs=max_batch_duration_secs)
        if signature not in (PREDICT_SIGNATURE, EMBED_SIGNATURE):
            raise ConfigError(f"signature {signature!r}: the Beam jobs run {PREDICT_SIGNATURE!r} or {EMBED_SIGNATURE!r}")
        self.export_dir = os.fspath(export_dir)
        self.signature = signature

    def load_model(self):
        return load_export(self.export_dir)

    def run_inference(self, batch, model, inference_args=None):
        rows = RowBatch.concat([element[0] for element in batch])
        unread = [error for element in batch for error in element[1]]  # bad rows that hold an id
        outcome = model.run(self.signature, rows)
        if self.signature == EMBED_SIGNATURE:
            records, errors = embedding_records(rows, outcome)
        else:  # one Arrow table per model call, built column by column: what the Parquet writer takes
            num_levels = model.taxonomy.num_levels
            schema = _prediction_schema(num_levels)
            columns, errors = prediction_batch(rows, outcome, model.taxonomy) if len(rows) else ({}, [])
            # a bad row with an id still gets its line in the predictions (an empty one with the problem), as in
            # `linnet predict`
            parts = [columns, error_columns([item.id for item in unread], [item.problem for item in unread],
                                            num_levels) if unread else {}]
            records = _concat_tables([columns_table(part, schema) for part in parts if part], schema)
        # one model call for the whole batch; its records and errors ride on the first element's result
        return [PredictionResult(len(element[0]) + len(element[1]), (records, [*unread, *errors]) if index == 0
                                 else ([], [])) for index, element in enumerate(batch)]

    def get_num_bytes(self, batch) -> int:
        return sum(sum(map(len, column)) for rows, _ in batch for column in rows.inputs.values())

    def get_metrics_namespace(self) -> str:
        return "linnet"


# ------------------------------------------------------------------------------------------- reading
def _open_catalog_checked(local: str, path: str, schema, format: str | None, columns: list | None = None,
                          line_range: tuple | None = None, table_columns: list | None = None):
    """The reader of a catalog file whose columns hold the id and the text columns (`linnet predict`'s check).

    Raises:
        CatalogError: the file cannot be opened as a catalog, or lacks a column the schema names.
    """
    reader = _open_catalog(local, path, format, schema.image_column, columns, line_range, table_columns)
    check_input_columns(schema, reader.columns, path)
    return reader


class ListIds(beam.DoFn):
    """A catalog file ─► ``(path, ids file, its columns)``: for its rows that have an id, read with `linnet predict`'s reader and id
    rule (`linnet.data.rows.row_id`) and nothing else (no text, no image), their lines (int64) and 128-bit id hashes
    (`id_hashes`, two uint64), 24 bytes a row, written to a file under ``scratch_dir`` (any Beam filesystem): the
    first pass of the every-id-once rule. The arrays travel as a file, not as an element: the in-process runner
    holds some 25 times an element's bytes when it passes one between stages (measured: 24 MB of ids, 600 MB).
    A file that cannot be read gives ``(path, None, None)`` (the second pass, `ReadCatalogFile`, reports it)."""

    def __init__(self, schema, format: str | None, scratch_dir: str):
        self.schema, self.format, self.scratch_dir = schema, format, scratch_dir

    def process(self, path: str):
        with _local_copy(path) as local:
            try:
                reader = _open_catalog_checked(local, path, self.schema, self.format)
            except CatalogError:
                yield path, None, None  # read (and reported) whole by the second pass
                return
            listed = _arrow_listed_ids(local, self.schema.id_column) if getattr(reader, "format", None) == "jsonl" else None
            lines, hashes = listed if listed is not None else _record_listed_ids(reader, self.schema.id_column)
        name = FileSystems.join(self.scratch_dir, hashlib.sha256(path.encode("utf-8")).hexdigest()[:32] + ".ids")
        with FileSystems.create(name) as handle:  # the same name on a retry: a whole file replaces a partial one
            handle.write(lines.tobytes())
            handle.write(hashes.tobytes())
        yield path, name, reader.columns


def _arrow_listed_ids(local: str, id_column: str):
    """``(lines, id hashes)`` of a JSON Lines file read by Arrow, ids only (`linnet.data.readers.jsonl_ids`, the same
    rows and ids as `CatalogReader` and `row_id`: 0.2 s against 0.9 s for 100,000 rows, load 1.3); None when the file
    needs the record-by-record reader."""
    found = jsonl_ids(local, id_column)
    if found is None:
        return None
    lines, values = found
    try:
        keep, ids = row_ids_of_array(values)
    except TypeError:  # ids that are neither text nor integers: row_id's rules, record by record
        return None
    return lines[keep], id_hashes(ids)


def _record_listed_ids(reader, id_column: str):
    """``(lines, id hashes)`` of a catalog read record by record with `row_id` (rows without an id are left out; bad
    rows that have one are listed), one pair of arrays per chunk: no Python list of the whole file."""
    lines, hashes = [], []
    for chunk in reader:
        chunk_lines = [row.location for row in chunk.bad_rows if row.product_id is not None]
        chunk_ids = [row.product_id for row in chunk.bad_rows if row.product_id is not None]
        for line, record in zip(chunk.locations, chunk.records):
            try:
                chunk_ids.append(row_id(record, id_column))
            except RowProblem:
                continue
            chunk_lines.append(line)
        lines.append(np.asarray(chunk_lines, np.int64))
        hashes.append(id_hashes(chunk_ids))
    return np.concatenate(lines or [np.zeros(0, np.int64)]), np.concatenate(hashes or [id_hashes([])])


def _listed_ids(files: Sequence[tuple[str, str | None]]) -> list[tuple[str, bytes, bytes]]:
    """`ListIds`' files read back as ``(path, lines bytes, hashes bytes)``."""
    listed = []
    for path, name, _ in files:
        if name is None:
            continue
        with FileSystems.open(name) as handle:
            data = handle.read()
        rows = len(data) // 24
        listed.append((path, data[:8 * rows], data[8 * rows:]))
    return listed


#: Keys of the two 64-bit hashes of an id (pandas' ``hash_array`` takes 16 characters): 128 bits, so two distinct
#: ids of a catalog share both with a chance of about rows² / 2**129 (1e-27 for a million rows).
_HASH_KEYS = ("linnet-id-hash-1", "linnet-id-hash-2")


def id_hashes(ids, keys: Sequence[str] = _HASH_KEYS) -> np.ndarray:
    """``[len(ids), len(keys)]`` uint64: a 64-bit hash of each id per key, by default two (vectorized: pandas'
    ``hash_array``)."""
    import pandas as pd  # lazy: only the jobs' id rule and check need it

    values = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=object)
    if not len(values):
        return np.zeros((0, len(keys)), np.uint64)
    return np.stack([pd.util.hash_array(values, hash_key=key) for key in keys], axis=1)


@dataclasses.dataclass(frozen=True)
class IdCensus:
    """The ids of a catalog, from `ListIds`' arrays: the rows that repeat an id (``(file, line)``: every row of an id
    after its first by file and line, as `linnet predict` keeps the first) and the fingerprint of the distinct ids
    (`id_fingerprint`), which the job's output must match."""

    repeats: frozenset
    fingerprint: tuple[int, int]


def id_census(listed: Sequence[tuple]) -> IdCensus:
    """`IdCensus` of `ListIds`' ``(path, lines, hashes)`` (bytes of int64 and of ``[rows, 2]`` uint64; one NumPy sort by id hash, file and line: no Python per
    row but the repeats')."""
    listed = sorted(((path, np.frombuffer(lines, np.int64), np.frombuffer(hashes, np.uint64).reshape(-1, 2))
                     for path, lines, hashes in listed if len(lines)), key=lambda item: item[0])
    if not listed:
        return IdCensus(frozenset(), (0, 0))
    files = np.concatenate([np.full(len(lines), rank, np.int32) for rank, (_, lines, _) in enumerate(listed)])
    lines = np.concatenate([lines for _, lines, _ in listed])
    hashes = np.concatenate([hashes for _, _, hashes in listed])
    order = np.lexsort((lines, files, hashes[:, 1], hashes[:, 0]))
    hashes = hashes[order]
    repeated = np.concatenate([[False], (hashes[1:] == hashes[:-1]).all(axis=1)])
    places = order[repeated]
    repeats = frozenset((listed[rank][0], line) for rank, line in zip(files[places].tolist(), lines[places].tolist()))
    first = hashes[~repeated, 0]
    return IdCensus(repeats, (len(first), _wrapped_sum(first)))


def id_fingerprint(ids) -> tuple[int, int]:
    """``(count, sum of 64-bit hashes)`` of a sequence of ids (the first of `id_hashes`), the sum wrapped to a signed
    64-bit integer (what Beam encodes): adding two fingerprints gives that of the two sequences together, so a lost
    or a repeated id changes it."""
    values = ids.to_numpy(zero_copy_only=False) if hasattr(ids, "to_numpy") else ids
    hashes = id_hashes(values, _HASH_KEYS[:1])[:, 0]  # the first hash only: the census sums the same one
    return len(hashes), _wrapped_sum(hashes)


def _wrapped_sum(hashes: np.ndarray) -> int:
    return int(hashes.sum(dtype=np.uint64).astype(np.int64)) if len(hashes) else 0


def add_fingerprints(fingerprints) -> tuple[int, int]:
    """The fingerprint of all the sequences whose fingerprints are given (Beam combines with it)."""
    count = total = 0
    for number, hashes in fingerprints:
        count, total = count + number, (total + hashes + 2**63) % 2**64 - 2**63
    return count, total


class CensusAndParts(beam.DoFn):
    """All of `ListIds`' ``(path, ids file, columns)`` ─► the `IdCensus` (tagged ``census``) and the parts of the files
    the second pass reads (``(path, first line, end line or None, columns)``: the columns ListIds read, so the
    second pass does not read the header again): each file whole, or, when there are fewer files
    than ``parallelism`` (the in-process runner's worker threads), in parts of about as many rows each, so every
    thread reads and predicts (a JSON Lines part skips the other lines unparsed; other formats' readers parse the
    lines before the part and drop them)."""

    def __init__(self, parallelism: int = 1, min_part_rows: int = 1024):
        self.parallelism, self.min_part_rows = max(1, int(parallelism)), max(1, int(min_part_rows))

    def process(self, files):
        listed = _listed_ids(files)
        yield beam.pvalue.TaggedOutput("census", id_census(listed))
        lines = {path: np.frombuffer(file_lines, np.int64) for path, file_lines, _ in listed}
        wanted = -(-self.parallelism // max(1, len(files)))
        for path, _, columns in sorted(files, key=lambda item: item[0]):
            yield from ((*part, columns) for part in file_parts(path, lines.get(path), wanted, self.min_part_rows))


def file_parts(path: str, lines, wanted: int, min_part_rows: int):
    """``(path, start, stop)`` parts of a file whose id rows are on ``lines``: up to ``wanted`` parts of at least
    ``min_part_rows`` of them, covering every line (``[start, stop)``, the last one open: ``stop`` None)."""
    count = 0 if lines is None else len(lines)
    parts = max(1, min(wanted, count // min_part_rows))
    if parts == 1:
        return [(path, 0, None)]
    ordered = np.sort(lines)
    cuts = np.unique(ordered[[count * part // parts for part in range(1, parts)]]).tolist()
    return [(path, start, stop) for start, stop in zip([0, *cuts], [*cuts, None])]


class IdsNotAccountedFor(RuntimeError):
    """The job's output does not hold every distinct input id exactly once (a bug, never a bad row)."""


def _check_every_id(scratch_dir: str, census: IdCensus, written: tuple[int, int], what: str) -> None:
    listed = FileSystems.match([FileSystems.join(scratch_dir, "*.ids")])[0].metadata_list
    if listed:  # the files by name: an object store (gs://) has no folder to delete
        FileSystems.delete([metadata.path for metadata in listed])
    if FileSystems.exists(scratch_dir):
        FileSystems.delete([scratch_dir])
    if tuple(census.fingerprint) != tuple(written):
        raise IdsNotAccountedFor(
            f"the job read {census.fingerprint[0]} distinct ids but its {what} hold {written[0]} ids that are not "
            "exactly those, once each (a lost or a repeated id): the output is not complete")


class ReadCatalogFile(beam.DoFn):
    """A part of a catalog file (``(path, start line, stop line or None, columns or None)``, `file_parts`; the path on any Beam
    filesystem) ─► ``(RowBatch, [RowError])`` elements of ``rows_per_element`` rows (the first row of each id:
    `IdCensus`; a JSON Lines chunk Arrow reads goes through `table_batch`, column by column, any other through
    `catalog_rows`), with the `RowError`s of the bad rows that have an id, and the `RowError` of each row without a
    readable id or repeating one (tagged ``errors``): `linnet predict`'s reader and rules."""

    def __init__(self, schema, text_fields: Sequence[str], with_image: bool, format: str | None = None,
                 rows_per_element: int = 256):
        self.schema, self.text_fields, self.with_image, self.format = schema, list(text_fields), with_image, format
        self.rows_per_element = int(rows_per_element)

    def process(self, part: tuple, census: IdCensus):
        path, start, stop, columns = part
        whole = start == 0 and stop is None
        with _local_copy(path) as local:
            try:
                reader = _open_catalog_checked(local, path, self.schema, self.format, columns,
                                               None if whole else (start, stop), self._table_columns())
            except CatalogError as error:
                yield beam.pvalue.TaggedOutput(_ERRORS_TAG, RowError(None, path, "", None, str(error)))
                return
            image_root = self.schema.image_root or (str(Path(path).parent) if FileSystems.get_scheme(path) is None
                                                    else None)
            repeated = np.array(sorted(line for file, line in census.repeats if file == path), np.int64)
            pending, unread, count = [], [], 0  # rows and bad rows with an id not yet sent, and how many
            for chunk in reader:
                located = zip(chunk.locations, chunk.records)
                bad_rows = chunk.bad_rows
                if not whole and getattr(reader, "format", None) != "jsonl":  # this part's lines (JSON Lines read no others)
                    located = [(line, record) for line, record in located if _within(line, start, stop)]
                    bad_rows = [row for row in bad_rows if _within(row.location, start, stop)]
                bad = [RowError(row.product_id, path, f"{reader.location_kind} {row.location}", row.field,
                                row.problem, row.location) for row in bad_rows]
                if chunk.table is not None:  # JSON Lines read by Arrow: the rules run column by column
                    rows, errors = table_batch(chunk.table, chunk.locations, self.schema, self.text_fields,
                                               self.with_image, file=path, location_kind=reader.location_kind,
                                               image_root=image_root)
                else:
                    read, errors = split_rows(catalog_rows(located, self.schema, self.text_fields, self.with_image,
                                                           file=path, location_kind=reader.location_kind,
                                                           image_root=image_root))
                    rows = RowBatch.of(read)
                if len(repeated) and len(rows):  # a repeat of an id read before: an error, not a row
                    repeats = np.isin(rows.lines, repeated)
                    yield from (beam.pvalue.TaggedOutput(_ERRORS_TAG, self._repeat(rows, place))
                                for place in np.flatnonzero(repeats).tolist())
                    rows = rows[~repeats]
                for error in [*bad, *errors]:
                    if error.id is None:
                        yield beam.pvalue.TaggedOutput(_ERRORS_TAG, error)
                    elif len(repeated) and error.line in repeated:
                        yield beam.pvalue.TaggedOutput(_ERRORS_TAG, RowError(
                            None, path, error.location, self.schema.id_column, f"id {error.id!r} repeated", error.line))
                    else:
                        unread.append(error)
                pending.append(rows)
                count += len(rows)
                while count + len(unread) >= self.rows_per_element:
                    rows = RowBatch.concat(pending)
                    size = max(0, self.rows_per_element - len(unread))
                    yield rows[:size], unread[:self.rows_per_element]
                    pending, unread, count = [rows[size:]], unread[self.rows_per_element:], len(rows) - size
            if count or unread:
                yield RowBatch.concat(pending), unread

    def _repeat(self, rows: RowBatch, place: int) -> RowError:
        return RowError(None, rows.files[place], rows.locations[place], self.schema.id_column,
                        f"id {rows.ids[place]!r} repeated", int(rows.lines[place]))

    def _table_columns(self) -> list[str]:
        """The columns the rows are read from (id, text, attribute and image columns): what a JSON Lines chunk read by
        Arrow keeps."""
        schema = self.schema
        names = [schema.id_column, *(field for field in self.text_fields if field != ATTRIBUTES_FIELD)]
        if ATTRIBUTES_FIELD in self.text_fields:
            names += list(schema.attribute_columns)
        if self.with_image and schema.image_column:
            names.append(schema.image_column)
        return list(dict.fromkeys(names))


def _within(line: int, start: int, stop: int | None) -> bool:
    return start <= line and (stop is None or line < stop)


def _open_catalog(local: str, path: str, format: str | None, image_column: str | None, columns: list | None = None,
                  line_range: tuple | None = None, table_columns: list | None = None):
    """The reader of a catalog file: `CatalogReader` (CSV/TSV/JSONL/Parquet; with ``line_range``, JSON Lines skips
    the other lines unparsed) or, for ``*.tfrecord`` files (or ``format="tfrecord"``), `TFRecordCatalogReader`
    (tf.train.Example records, ``build-tfrecords``' among them)."""
    if format == TFRECORD_FORMAT or (format is None and path.endswith(TFRECORD_SUFFIX)):
        return TFRecordCatalogReader(local, image_column=image_column)
    return CatalogReader(local, format=format or detect_format(path), known_columns=columns, line_range=line_range,
                         table_columns=table_columns)


class _local_copy:
    """A local path for a file on any Beam filesystem (the file itself when local; else a temporary copy)."""

    def __init__(self, path: str):
        self.path, self.temporary = path, None

    def __enter__(self) -> str:
        if FileSystems.get_scheme(self.path) is None:
            return self.path
        handle, self.temporary = tempfile.mkstemp(suffix="".join(Path(self.path).suffixes[-2:]))
        with os.fdopen(handle, "wb") as local, FileSystems.open(self.path) as remote:
            shutil.copyfileobj(remote, local)
        return self.temporary

    def __exit__(self, *exc_info) -> None:
        if self.temporary:
            os.unlink(self.temporary)


class ReadCatalog(beam.PTransform):
    """Catalog files matching a pattern ─► ``(RowBatch, [RowError])`` elements (``rows``: the first row of each id, and
    the bad rows that hold an id), every other `RowError` (``errors``) and the `IdCensus` (``census``).
    ``scratch_dir`` (a folder on a filesystem every worker writes and the census reads; default a new one under this
    machine's temporary folder, enough for the in-process runner) holds `ListIds`' files until the job deletes it.
    ``parallelism``: split files into parts when there are fewer files than this (`CensusAndParts`).

    Two passes over each file, each fused with what follows it, so no stage holds the rows: `ListIds` (ids only)
    gives the `IdCensus`, a side input of `ReadCatalogFile`, which reads the rows and drops the repeats."""

    def __init__(self, pattern: str, schema, text_fields: Sequence[str], with_image: bool, format: str | None = None,
                 rows_per_element: int = 256, scratch_dir: str | None = None, parallelism: int = 1):
        super().__init__()
        self.parallelism = parallelism
        self.pattern, self.schema, self.text_fields, self.with_image, self.format = (
            pattern, schema, text_fields, with_image, format)
        self.rows_per_element = rows_per_element
        self.scratch_dir = scratch_dir or FileSystems.join(tempfile.gettempdir(), f"linnet-ids-{uuid.uuid4().hex}")

    def expand(self, begin):
        paths = (begin
                 | "Match" >> fileio.MatchFiles(self.pattern)
                 | "Paths" >> beam.Map(lambda metadata: metadata.path)
                 | "SpreadFiles" >> beam.Reshuffle())
        listed = (paths
                  | "ListIds" >> beam.ParDo(ListIds(self.schema, self.format, self.scratch_dir))
                  | "AllIds" >> beam.combiners.ToList()
                  | "IdCensus" >> beam.ParDo(CensusAndParts(self.parallelism, 4 * self.rows_per_element))
                  .with_outputs("census", main="parts"))
        census = listed.census
        read = listed.parts | "Read" >> beam.ParDo(
            ReadCatalogFile(self.schema, self.text_fields, self.with_image, self.format, self.rows_per_element),
            census=beam.pvalue.AsSingleton(census)).with_outputs(_ERRORS_TAG, main="rows")
        return {"rows": read.rows, _ERRORS_TAG: read[_ERRORS_TAG], "census": census}


# ------------------------------------------------------------------------------------------- writing
def _pyarrow_schema(columns: Sequence[str]):
    import pyarrow as pa  # lazy: only the Parquet writers need it

    kinds = {"long": pa.int64(), "double": pa.float64(), "string": pa.string()}
    return pa.schema([(column, kinds[column_kind(column)]) for column in columns])


@functools.cache
def _prediction_schema(num_levels: int):
    """The predictions' Arrow schema, built once per tree depth (every model call of a job needs it)."""
    return _pyarrow_schema(prediction_columns(num_levels))


def _embedding_schema():
    import pyarrow as pa  # lazy: as above

    return pa.schema([("id", pa.string()), ("embedding", pa.list_(pa.float32()))])


def _write(batches, out_dir: str, name: str, output_format: str, schema_fn):
    """Write a PCollection of record lists or Arrow tables (one per model call) as ``OUT/<name>-*`` shards."""
    prefix = FileSystems.join(out_dir, name)
    if output_format == "parquet":
        schema = schema_fn()
        return (batches
                | f"Nonempty{name}" >> beam.Filter(len)
                | f"Table{name}" >> beam.Map(_table, schema)
                | f"RowGroups{name}" >> beam.ParDo(_RowGroups(schema))
                | f"Write{name}" >> beam.io.WriteToParquetBatched(prefix, schema, file_name_suffix=".parquet"))
    records = batches | f"Records{name}" >> beam.FlatMap(_records)
    if output_format == "tfrecord":
        return (records | f"Serialize{name}" >> beam.Map(_embedding_example)
                | f"Write{name}" >> WriteTFRecordShards(out_dir, name))
    return (records | f"Json{name}" >> beam.Map(lambda record: json.dumps(record, ensure_ascii=False))
            | f"Write{name}" >> beam.io.WriteToText(prefix, file_name_suffix=".jsonl"))


def _table(records, schema):
    import pyarrow as pa  # lazy: as in _pyarrow_schema

    return records if isinstance(records, pa.Table) else pa.Table.from_pylist(records, schema=schema)


class _RowGroups(beam.DoFn):
    """Arrow tables (one per model call) ─► tables of at least ``rows`` rows (the rest at the bundle's end): one
    Parquet row group each, so a shard's footer does not grow by a row group's metadata every model call."""

    def __init__(self, schema, rows: int = ROW_GROUP_ROWS):
        self.schema, self.rows = schema, int(rows)

    def start_bundle(self):
        self.tables, self.count = [], 0

    def process(self, table):
        self.tables.append(table)
        self.count += table.num_rows
        if self.count >= self.rows:
            yield self._flush()

    def finish_bundle(self):
        if self.tables:
            yield GlobalWindows.windowed_value(self._flush())

    def _flush(self):
        table = _concat_tables(self.tables, self.schema).combine_chunks()
        self.tables, self.count = [], 0
        return table


def _concat_tables(tables: list, schema):
    import pyarrow as pa  # lazy: as in _pyarrow_schema

    return tables[0] if len(tables) == 1 else pa.concat_tables(tables) if tables else schema.empty_table()


def _records(records) -> list:
    """A list of records, or the rows of an Arrow table as records."""
    return records if isinstance(records, list) else records.to_pylist()


def columns_table(columns: dict, schema):
    """An Arrow table of ``schema``'s columns from NumPy columns (`prediction_batch`'s): NaN and ``None`` are nulls."""
    import pyarrow as pa  # lazy: as in _pyarrow_schema

    return pa.Table.from_arrays([pa.array(columns[field.name], type=field.type, from_pandas=True)
                                 for field in schema], schema=schema)


class WriteTFRecordShards(beam.PTransform):
    """Serialized records ─► ``DIR/<name>-SSSSS-of-NNNNN.tfrecord`` written by ``tf.io.TFRecordWriter``; the output is
    the paths written.

    Flat in memory: each bundle writes its records as they come (a record's shard is a hash of its bytes) to one file
    per shard under a scratch folder ``DIR/_linnet-tfrecords-*`` and outputs only the names (`_WriteBundleShards`). A
    last step, once every bundle is done, joins each shard's files into its final name (TFRecord framing is
    self-delimiting: the files' bytes one after the other, streamed) through a temporary name and a rename (a shard is
    whole or absent), then deletes the scratch folder. Only the files of the bundles that succeeded are named in
    that step's input, so a retried bundle's records are written exactly once. A shard that gets no record is not
    written.

    Beam's own ``WriteToTFRecord`` needs a CRC-32C package LinNét does not install; TensorFlow writes the same
    framing.
    """

    def __init__(self, out_dir: str, name: str, num_shards: int = 4):
        super().__init__()
        self.out_dir, self.name, self.num_shards = out_dir, name, int(num_shards)

    def expand(self, records):
        scratch = FileSystems.join(self.out_dir, f"{TFRECORD_SCRATCH_PREFIX}{self.name}-{uuid.uuid4().hex}")
        return (records
                | "WriteBundles" >> beam.ParDo(_WriteBundleShards(scratch, self.num_shards))
                | "AllFiles" >> beam.combiners.ToList()
                | "JoinShards" >> beam.FlatMap(_join_shards, self.out_dir, self.name, self.num_shards, scratch))


#: The folder under OUT where `WriteTFRecordShards` keeps each bundle's files until it joins them.
TFRECORD_SCRATCH_PREFIX = "_linnet-tfrecords-"


class _WriteBundleShards(beam.DoFn):
    """Serialized records ─► ``(shard, file)`` per shard a bundle wrote to: the bundle's records of that shard, in a
    new file under ``scratch`` (written as they come, closed at the bundle's end)."""

    def __init__(self, scratch: str, num_shards: int):
        self.scratch, self.num_shards = scratch, int(num_shards)

    def start_bundle(self):
        self.writers, self.files = {}, {}

    def process(self, record: bytes):
        shard = zlib.crc32(record) % self.num_shards
        writer = self.writers.get(shard)
        if writer is None:
            import tensorflow as tf  # lazy: only the TFRecord outputs need it

            tf.io.gfile.makedirs(self.scratch)
            self.files[shard] = FileSystems.join(self.scratch, f"{shard:05d}-{uuid.uuid4().hex}.tfrecord")
            writer = self.writers[shard] = tf.io.TFRecordWriter(self.files[shard])
        writer.write(record)

    def finish_bundle(self):
        for shard, writer in sorted(self.writers.items()):
            writer.close()
            yield GlobalWindows.windowed_value((shard, self.files[shard]))
        self.writers, self.files = {}, {}


def _join_shards(files: list, out_dir: str, name: str, count: int, scratch: str):
    """Each shard's bundle files (``(shard, file)``) joined into ``OUT/<name>-SSSSS-of-NNNNN.tfrecord`` (renamed
    into place whole); the scratch folder deleted; yields the paths written."""
    import tensorflow as tf  # lazy: only the TFRecord outputs need it

    by_shard: dict[int, list[str]] = {}
    for shard, path in files:
        by_shard.setdefault(shard, []).append(path)
    tf.io.gfile.makedirs(out_dir)
    for shard, paths in sorted(by_shard.items()):
        path = FileSystems.join(out_dir, f"{name}-{shard:05d}-of-{count:05d}.tfrecord")
        if len(paths) > 1:
            temporary = f"{path}.tmp-{os.getpid()}"
            with tf.io.gfile.GFile(temporary, "wb") as joined:
                for part in sorted(paths):
                    with tf.io.gfile.GFile(part, "rb") as handle:
                        shutil.copyfileobj(handle, joined, 1 << 22)
            paths = [temporary]
        tf.io.gfile.rename(paths[0], path, overwrite=True)
        yield path
    if tf.io.gfile.exists(scratch):
        tf.io.gfile.rmtree(scratch)


def _embedding_example(record: dict) -> bytes:
    import tensorflow as tf  # lazy: only the TFRecord output needs it

    return tf.train.Example(features=tf.train.Features(feature={
        "id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[record["id"].encode("utf-8")])),
        "embedding": tf.train.Feature(float_list=tf.train.FloatList(value=record["embedding"])),
    })).SerializeToString()


def _check_format(output_format: str, allowed: Sequence[str]) -> str:
    if output_format not in allowed:
        raise ConfigError(f"output format {output_format!r}: choose from {', '.join(allowed)}")
    return output_format


# ---------------------------------------------------------------------------------------------- jobs
def _job(pipeline, export_dir, catalog: str, out_dir: str, signature: str, schema=None, format: str | None = None,
         batch_size: int = 256, max_batch_duration_secs: int | None = None):
    artifact = describe(export_dir)
    schema = schema or artifact.schema
    if schema is None:
        raise ConfigError(f"{export_dir}: the export saved no schema; pass the schema flags")
    scratch_dir = FileSystems.join(out_dir, f"{SCRATCH_PREFIX}{uuid.uuid4().hex}")
    read = pipeline | "Begin" >> beam.Create([None]) | "ReadCatalog" >> ReadCatalog(
        catalog, schema, artifact.text_fields, bool(artifact.image_size), format, rows_per_element=batch_size,
        scratch_dir=scratch_dir, parallelism=_in_process_threads(pipeline))
    handler = ExportModelHandler(export_dir, signature, max_batch_duration_secs=max_batch_duration_secs)
    results = read["rows"] | "RunInference" >> RunInference(handler)
    record_batches = results | "Records" >> beam.Map(lambda result: result.inference[0])
    model_errors = results | "ModelErrors" >> beam.FlatMap(lambda result: result.inference[1])
    errors = (read[_ERRORS_TAG], model_errors) | "AllErrors" >> beam.Flatten()
    return artifact, (read["census"], scratch_dir), results, record_batches, errors


def _in_process_threads(pipeline) -> int:
    """The in-process runner's worker threads (1 on any other runner, where files are the unit of reading)."""
    options = pipeline.options
    if options.view_as(StandardOptions).runner != IN_PROCESS_RUNNER:
        return 1
    return options.view_as(DirectOptions).direct_num_workers or 1


def _predicted_ids(table) -> tuple[int, int]:
    """The id fingerprint of a model call's predictions (an Arrow table; an empty list for a call's later elements)."""
    return id_fingerprint([] if isinstance(table, list) else table["id"])


def _check_ids(pipeline, census, accounted, what: str) -> None:
    """Fail the job unless the ids that came out (``accounted``: one fingerprint per model call) are the distinct
    ids read, once each: a combine of two numbers per call, checked once every call is done; then delete the id
    lists (``census`` is the census and the folder of `ListIds`' files)."""
    census, scratch_dir = census
    written = accounted | f"{what}Fingerprint" >> beam.CombineGlobally(add_fingerprints)
    (pipeline
     | f"Check{what}" >> beam.Create([scratch_dir])
     | f"EveryIdOnce{what}" >> beam.Map(_check_every_id, beam.pvalue.AsSingleton(census),
                                        beam.pvalue.AsSingleton(written), what))


def predict_pipeline(pipeline, export_dir, catalog: str, out_dir: str, schema=None, format: str | None = None,
                     output_format: str = "parquet", batch_size: int = 256, max_batch_duration_secs: int | None = None):
    """Add `linnet predict` as a Beam job to ``pipeline``: ``OUT/predictions-*`` and ``OUT/errors-*`` shards.

    Args:
        export_dir: an export version directory (`linnet export`).
        catalog: a catalog file, or a glob of files, on any Beam filesystem.
        out_dir: output directory (any Beam filesystem).
        schema: the catalog's `linnet.data.CatalogSchema` (default: the export's).
        format: the catalog format (default: from each file's name).
        output_format: ``parquet`` (typed columns) or ``jsonl``.
        batch_size: rows per model call (rows travel through the pipeline in batches of this size).
        max_batch_duration_secs: RunInference's longest wait for a batch (streaming pipelines).

    Returns:
        ``{"predictions": PCollection of Arrow tables (one per model call), "errors": PCollection of error
        records}``. The job fails (`IdsNotAccountedFor`) unless the predictions hold every distinct id read once.
    """
    _check_format(output_format, OUTPUT_FORMATS)
    artifact, census, _, predictions, errors = _job(pipeline, export_dir, catalog, out_dir, PREDICT_SIGNATURE,
                                                    schema, format, batch_size, max_batch_duration_secs)
    _check_ids(pipeline, census, predictions | "PredictedIds" >> beam.Map(_predicted_ids), "predictions")
    error_records = errors | "ErrorRecords" >> beam.Map(lambda error: [error.as_record()])
    columns = prediction_columns(artifact.taxonomy.num_levels)
    _write(predictions, out_dir, PREDICTIONS, output_format, lambda: _pyarrow_schema(columns))
    _write(error_records, out_dir, ERRORS, output_format, lambda: _pyarrow_schema(ERROR_FIELDS))
    return {PREDICTIONS: predictions, ERRORS: error_records}


def embed_pipeline(pipeline, export_dir, catalog: str, out_dir: str, schema=None, format: str | None = None,
                   output_format: str = "parquet", batch_size: int = 256, max_batch_duration_secs: int | None = None):
    """The ``embed`` signature as a Beam job: ``OUT/embeddings-*`` (``id``, ``embedding``; Parquet, JSONL or
    TFRecord ``tf.train.Example``) and ``OUT/errors-*`` (Parquet or JSONL). Arguments as `predict_pipeline`; the
    job fails unless every distinct id read has a vector or an error row (a bad row, a row the model failed on)."""
    _check_format(output_format, EMBEDDING_FORMATS)
    _, census, results, record_batches, errors = _job(pipeline, export_dir, catalog, out_dir, EMBED_SIGNATURE,
                                                      schema, format, batch_size, max_batch_duration_secs)
    # the rows of a model call come out as a vector or as one of the call's errors (all of them name a row)
    _check_ids(pipeline, census, results | "EmbeddedIds" >> beam.Map(lambda result: id_fingerprint(
        [record["id"] for record in result.inference[0]] + [error.id for error in result.inference[1]])), "embeddings")
    error_records = errors | "ErrorRecords" >> beam.Map(lambda error: [error.as_record()])
    _write(record_batches, out_dir, EMBEDDINGS, output_format, _embedding_schema)
    error_format = "jsonl" if output_format == "jsonl" else "parquet"
    _write(error_records, out_dir, ERRORS, error_format, lambda: _pyarrow_schema(ERROR_FIELDS))
    return {EMBEDDINGS: record_batches, ERRORS: error_records}


def run_job(job, export_dir, catalog: str, out_dir: str, pipeline_args: Sequence[str] = (), **options) -> str:
    """Build ``job`` (`predict_pipeline` or `embed_pipeline`) in a pipeline from ``pipeline_args`` and run it to
    the end; returns the final state (``DONE``)."""
    pipeline = beam.Pipeline(options=pipeline_options(pipeline_args))
    job(pipeline, export_dir, catalog, out_dir, **options)
    result = pipeline.run()
    return str(result.wait_until_finish())
