"""Apache Beam jobs: ``predict`` and ``embed`` a catalog with an export, on any Beam runner.

Pipeline (`predict_pipeline`, `embed_pipeline`)::

    catalog files (path or glob, any Beam filesystem) ─► read each file with linnet's CatalogReader
        (CSV/TSV/JSONL/Parquet) or TFRecordCatalogReader (*.tfrecord; bad rows ─► errors)  │
    ─► one row per id (GroupByKey of (id, file, line); a repeated id ─► errors) ─► RunInference(ExportModelHandler)
    ─► predictions (linnet predict's columns) / vectors ─► sharded Parquet or JSONL   + errors output

`ExportModelHandler` is the `apache_beam.ml.inference.base.ModelHandler` Beam's stock TensorFlow handler cannot
be for a LinNét export: its ``load_model`` is ``tf.saved_model.load`` (with TF Text's ops registered,
`linnet.engines.signature_batches.load_export`, once per worker process) and ``run_inference`` calls one
signature on a batch of raw rows. Files are the unit of reading (shard a big catalog into files); rows travel in
lists of ``batch_size`` (one model call each, so Beam's per-element cost is paid per batch) and are reshuffled
before inference, so inference spreads over the workers whatever the file sizes.

Every input row comes out once: a prediction (or an empty prediction with ``error`` set, for a row with an id
that could not be predicted) in ``predictions-*``, and every problem in ``errors-*`` (``id``, ``file``,
``location``, ``field``, ``problem``) — `linnet predict`'s two files, as shards.

Example:
    >>> import apache_beam as beam  # doctest: +SKIP
    >>> with beam.Pipeline(options=pipeline_options([])) as pipeline:  # doctest: +SKIP
    ...     predict_pipeline(pipeline, "exports/linnet/1", "catalog/*.jsonl", "out/")
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import ModelHandler, PredictionResult, RunInference
from apache_beam.options.pipeline_options import PipelineOptions

from linnet.data.readers import CatalogReader, detect_format
from linnet.data.schema import check_input_columns
from linnet.data.tfrecord import TFRECORD_FORMAT, TFRECORD_SUFFIX, TFRecordCatalogReader
from linnet.engines.signature_batches import (
    EMBED_SIGNATURE,
    ERROR_FIELDS,
    PREDICT_SIGNATURE,
    RawRow,
    RowError,
    catalog_rows,
    describe,
    embedding_records,
    error_record,
    load_export,
    prediction_batch,
    prediction_columns,
)
from linnet.errors import CatalogError, ConfigError

#: The in-process runner the jobs use when no ``--runner`` is given (Beam's DirectRunner may pick Prism,
#: which downloads a binary).
IN_PROCESS_RUNNER = "apache_beam.runners.portability.fn_api_runner.FnApiRunner"
OUTPUT_FORMATS = ("parquet", "jsonl")
EMBEDDING_FORMATS = ("parquet", "jsonl", "tfrecord")
PREDICTIONS, ERRORS, EMBEDDINGS = "predictions", "errors", "embeddings"
_ERRORS_TAG, _UNREAD_TAG, _IDS_TAG = "errors", "unread", "ids"


def pipeline_options(args: Sequence[str] = (), **options) -> PipelineOptions:
    """Beam's `PipelineOptions` from command-line flags (``--runner DataflowRunner --project ...``), with the
    in-process runner when none is named: one worker thread per core (``--direct_num_workers``, default the core
    count, ``--direct_running_mode multi_threading``), which share the export loaded once in the process; the model
    call releases the GIL, so one thread's model call overlaps another's reading and result building."""
    flags = list(args)
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
    on each batch of rows. An element is a list of packed `RawRow` (`_pack`; the rows of one model call, as `ReadCatalog` groups
    them: Beam's per-element cost is paid per batch, not per row); each result is
    ``PredictionResult(example=row count, inference=(records, errors))``: for ``serving_default`` the records are
    one ``pyarrow.Table`` of `linnet predict`'s columns, for ``embed`` a list of ``{"id", "embedding"}``.

    Args:
        export_dir: the export version directory (any path the workers can read).
        signature: ``serving_default`` (prediction records with `linnet predict`'s columns) or ``embed``.
        min_batch_size, max_batch_size, max_batch_duration_secs: Beam's batching knobs (`beam.BatchElements`), in
            elements (lists of rows); the default, one element per model call, keeps each call at the rows per
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
        rows = [_unpack(row) for element in batch for row in element]
        outcome = model.run(self.signature, rows)
        if self.signature == EMBED_SIGNATURE:
            records, errors = embedding_records(rows, outcome)
        else:  # one Arrow table per model call, built column by column: what the Parquet writer takes
            columns, errors = prediction_batch(rows, outcome, model.taxonomy)
            records = columns_table(columns, _pyarrow_schema(prediction_columns(model.taxonomy.num_levels)))
        # one model call for the whole batch; its records and errors ride on the first element's result
        return [PredictionResult(len(element), (records, errors) if index == 0 else ([], []))
                for index, element in enumerate(batch)]

    def get_num_bytes(self, batch) -> int:
        return sum(len(value) for element in batch for row in element for value in row[5].values())

    def get_metrics_namespace(self) -> str:
        return "linnet"


# ------------------------------------------------------------------------------------------- reading
class ReadCatalogFile(beam.DoFn):
    """A catalog file (a path on any Beam filesystem) ─► lists of up to ``rows_per_element`` packed items (`RawRow`, or
    the `RowError` of a bad row that has an id), ``(id, (file, line, location))`` per such item (tagged ``ids``)
    and the `RowError` of each row without a readable id (tagged ``errors``): `linnet predict`'s reader and rules."""

    def __init__(self, schema, text_fields: Sequence[str], with_image: bool, format: str | None = None,
                 rows_per_element: int = 256):
        self.schema, self.text_fields, self.with_image, self.format = schema, list(text_fields), with_image, format
        self.rows_per_element = int(rows_per_element)

    def process(self, path: str):
        with _local_copy(path) as local:
            try:
                reader = _open_catalog(local, path, self.format, self.schema.image_column)
                check_input_columns(self.schema, reader.columns, path)  # the id and the text columns, as predict
            except CatalogError as error:
                yield beam.pvalue.TaggedOutput(_ERRORS_TAG, RowError(None, path, "", None, str(error)))
                return
            image_root = self.schema.image_root or (str(Path(path).parent) if FileSystems.get_scheme(path) is None
                                                    else None)
            items: list = []
            for chunk in reader:
                bad = [RowError(row.product_id, path, f"{reader.location_kind} {row.location}", row.field,
                                row.problem, row.location) for row in chunk.bad_rows]
                read = catalog_rows(zip(chunk.locations, chunk.records), self.schema, self.text_fields,
                                    self.with_image, file=path, location_kind=reader.location_kind,
                                    image_root=image_root)
                for item in [*bad, *read]:
                    if item.id is None:
                        yield beam.pvalue.TaggedOutput(_ERRORS_TAG, item)
                        continue
                    yield beam.pvalue.TaggedOutput(_IDS_TAG, (item.id, (item.file, item.line, item.location)))
                    items.append(_pack(item))
                    if len(items) >= self.rows_per_element:
                        yield items
                        items = []
            if items:
                yield items


def _open_catalog(local: str, path: str, format: str | None, image_column: str | None):
    """The reader of a catalog file: `CatalogReader` (CSV/TSV/JSONL/Parquet) or, for ``*.tfrecord`` files (or
    ``format="tfrecord"``), `TFRecordCatalogReader` (tf.train.Example records, ``build-tfrecords``' among them)."""
    if format == TFRECORD_FORMAT or (format is None and path.endswith(TFRECORD_SUFFIX)):
        return TFRecordCatalogReader(local, image_column=image_column)
    return CatalogReader(local, format=format or detect_format(path))


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


def _repeats(item, id_column: str):
    """The rows of an id after its first (by file and line), as ``((file, line), error)``: `linnet predict` keeps
    the first row of an id and reports the repeats without an id."""
    product_id, places = item
    places = sorted(places)
    for file, line, location in places[1:]:
        yield (file, line), RowError(None, file, location, id_column, f"id {product_id!r} repeated", line)


def _pack(item: RawRow | RowError) -> tuple:
    """A row as a tuple of plain values: Beam encodes those itself, where a dataclass would be pickled at every
    stage boundary (the largest per-row cost of the job, measured)."""
    if isinstance(item, RowError):
        return (False, item.id, item.file, item.line, item.location, item.field, item.problem)
    return (True, item.id, item.file, item.line, item.location, item.inputs, item.image_problem)


def _unpack(packed: tuple) -> RawRow | RowError:
    is_row, product_id, file, line, location, detail, problem = packed
    if is_row:
        return RawRow(product_id, detail, file, line, location, problem)
    return RowError(product_id, file, location, detail, problem, line)


def _first_rows(items: list, repeats: dict):
    """The items of an element that are the first of their id: lists of packed `RawRow` (main) and the bad rows
    (``unread``, as `RowError`)."""
    rows = []
    for item in items:
        if (item[2], item[3]) in repeats:
            continue
        if item[0]:
            rows.append(item)
        else:
            yield beam.pvalue.TaggedOutput(_UNREAD_TAG, _unpack(item))
    if rows:
        yield rows


class ReadCatalog(beam.PTransform):
    """Catalog files matching a pattern ─► lists of `RawRow` (``rows``, the first row of each id), the bad rows
    that hold an id (``unread``, first of their id) and every other `RowError` (``errors``)."""

    def __init__(self, pattern: str, schema, text_fields: Sequence[str], with_image: bool, format: str | None = None,
                 rows_per_element: int = 256):
        super().__init__()
        self.pattern, self.schema, self.text_fields, self.with_image, self.format = (
            pattern, schema, text_fields, with_image, format)
        self.rows_per_element = rows_per_element

    def expand(self, begin):
        paths = (begin
                 | "Match" >> fileio.MatchFiles(self.pattern)
                 | "Paths" >> beam.Map(lambda metadata: metadata.path)
                 | "SpreadFiles" >> beam.Reshuffle())
        read = paths | "Read" >> beam.ParDo(ReadCatalogFile(
            self.schema, self.text_fields, self.with_image, self.format, self.rows_per_element)).with_outputs(
            _ERRORS_TAG, _IDS_TAG, main="items")
        # every id once: only (id, file, line) tuples are grouped, not the rows
        repeats = (read[_IDS_TAG]
                   | "GroupIds" >> beam.GroupByKey()
                   | "Repeats" >> beam.FlatMap(_repeats, self.schema.id_column))
        first = (read.items
                 | "SpreadRows" >> beam.Reshuffle()
                 | "FirstOfEachId" >> beam.FlatMap(_first_rows, beam.pvalue.AsDict(
                     repeats | "RepeatPlaces" >> beam.Map(lambda item: (item[0], True))))
                 .with_outputs(_UNREAD_TAG, main="rows"))
        repeat_errors = repeats | "RepeatErrors" >> beam.Map(lambda item: item[1])
        errors = (read[_ERRORS_TAG], repeat_errors) | "ReadErrors" >> beam.Flatten()
        return {"rows": first.rows, _UNREAD_TAG: first[_UNREAD_TAG], _ERRORS_TAG: errors}


# ------------------------------------------------------------------------------------------- writing
def _pyarrow_schema(columns: Sequence[str]):
    import pyarrow as pa  # lazy: only the Parquet writers need it

    def kind(column: str):
        if column in ("depth", "image_present"):
            return pa.int64()
        return pa.float64() if column.endswith("confidence") else pa.string()

    return pa.schema([(column, kind(column)) for column in columns])


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


def _records(records) -> list:
    """A list of records, or the rows of an Arrow table as records."""
    return records if isinstance(records, list) else records.to_pylist()


def columns_table(columns: dict, schema):
    """An Arrow table of ``schema``'s columns from NumPy columns (`prediction_batch`'s): NaN and ``None`` are nulls."""
    import pyarrow as pa  # lazy: as in _pyarrow_schema

    return pa.Table.from_arrays([pa.array(columns[field.name], type=field.type, from_pandas=True)
                                 for field in schema], schema=schema)


class WriteTFRecordShards(beam.PTransform):
    """Serialized records ─► ``DIR/<name>-SSSSS-of-NNNNN.tfrecord`` written by ``tf.io.TFRecordWriter`` (each shard
    to a temporary name, then renamed: a shard is whole or absent); the output is the paths written.

    Beam's own ``WriteToTFRecord`` needs a CRC-32C package LinNét does not install; TensorFlow writes the same
    framing. A record's shard is a hash of its bytes, so a shard that gets no record is not written.
    """

    def __init__(self, out_dir: str, name: str, num_shards: int = 4):
        super().__init__()
        self.out_dir, self.name, self.num_shards = out_dir, name, int(num_shards)

    def expand(self, records):
        count = self.num_shards
        return (records
                | "Shard" >> beam.Map(lambda record: (zlib.crc32(record) % count, record))
                | "ByShard" >> beam.GroupByKey()
                | "WriteShard" >> beam.Map(_write_tfrecord_shard, self.out_dir, self.name, count))


def _write_tfrecord_shard(item, out_dir: str, name: str, count: int) -> str:
    import tensorflow as tf  # lazy: only the TFRecord outputs need it

    shard, records = item
    path = FileSystems.join(out_dir, f"{name}-{shard:05d}-of-{count:05d}.tfrecord")
    temporary = f"{path}.tmp-{os.getpid()}"
    tf.io.gfile.makedirs(out_dir)
    with tf.io.TFRecordWriter(temporary) as writer:
        for record in records:
            writer.write(record)
    tf.io.gfile.rename(temporary, path, overwrite=True)
    return path


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
    read = pipeline | "Begin" >> beam.Create([None]) | "ReadCatalog" >> ReadCatalog(
        catalog, schema, artifact.text_fields, bool(artifact.image_size), format, rows_per_element=batch_size)
    handler = ExportModelHandler(export_dir, signature, max_batch_duration_secs=max_batch_duration_secs)
    results = read["rows"] | "RunInference" >> RunInference(handler)
    record_batches = results | "Records" >> beam.Map(lambda result: result.inference[0])
    model_errors = results | "ModelErrors" >> beam.FlatMap(lambda result: result.inference[1])
    errors = (read[_ERRORS_TAG], read[_UNREAD_TAG], model_errors) | "AllErrors" >> beam.Flatten()
    return artifact, record_batches, read[_UNREAD_TAG], errors


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
        batch_size: rows per model call (rows travel through the pipeline in lists of this size).
        max_batch_duration_secs: RunInference's longest wait for a batch (streaming pipelines).

    Returns:
        ``{"predictions": PCollection of record lists, "errors": PCollection of error records}``.
    """
    _check_format(output_format, OUTPUT_FORMATS)
    artifact, record_batches, unread, errors = _job(pipeline, export_dir, catalog, out_dir, PREDICT_SIGNATURE, schema,
                                                    format, batch_size, max_batch_duration_secs)
    num_levels = artifact.taxonomy.num_levels
    # A row with an id that could not be read still gets its line in the predictions (an empty prediction
    # with the problem), as in `linnet predict`; the model's own failures already have one.
    empty = unread | "EmptyPredictions" >> beam.Map(lambda error: [error_record(error.id, error.problem, num_levels)])
    predictions = (record_batches, empty) | "AllPredictions" >> beam.Flatten()
    error_records = errors | "ErrorRecords" >> beam.Map(lambda error: [error.as_record()])
    columns = prediction_columns(num_levels)
    _write(predictions, out_dir, PREDICTIONS, output_format, lambda: _pyarrow_schema(columns))
    _write(error_records, out_dir, ERRORS, output_format, lambda: _pyarrow_schema(ERROR_FIELDS))
    return {PREDICTIONS: predictions, ERRORS: error_records}


def embed_pipeline(pipeline, export_dir, catalog: str, out_dir: str, schema=None, format: str | None = None,
                   output_format: str = "parquet", batch_size: int = 256, max_batch_duration_secs: int | None = None):
    """The ``embed`` signature as a Beam job: ``OUT/embeddings-*`` (``id``, ``embedding``; Parquet, JSONL or
    TFRecord ``tf.train.Example``) and ``OUT/errors-*`` (Parquet or JSONL). Arguments as `predict_pipeline`."""
    _check_format(output_format, EMBEDDING_FORMATS)
    _, record_batches, _, errors = _job(pipeline, export_dir, catalog, out_dir, EMBED_SIGNATURE, schema, format,
                                        batch_size, max_batch_duration_secs)
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
