"""The one core every engine adapter calls: an export loaded once per worker, a signature called on batches of
raw catalog rows, one result or one error per input id.

- `load_export(path)` loads an export version directory once per process (``tf.saved_model.load`` with the
  TF Text ops registered, through `linnet.serving.artifacts.load_artifact`) and keeps it for every later
  batch of that worker (a Beam ``ModelHandler.load_model``, a Spark ``predict_batch_udf`` factory).
- `catalog_rows(records, ...)` turns catalog records into `RawRow` (id + raw model inputs, the rules of
  `linnet.data.rows`, exactly as `linnet predict` reads them) or `RowError` (file, location, id, field,
  problem).
- `LoadedExport.run(signature, rows)` calls a signature on a batch and returns `BatchOutputs`: the output arrays
  of the rows it answered and one `RowError` per row it failed on (a batch whose model call fails is split in
  halves until the failing rows stand alone, so one bad row never takes a batch down).
- `prediction_batch` turns those outputs into the columns the jobs write, a whole batch at a time: `linnet
  predict`'s columns and values (`linnet.serving.result_columns`, the builder `linnet predict` itself uses),
  typed; `error_columns` gives the rows with an id but no prediction; `embedding_records` gives ``{"id",
  "embedding"}``.

An export may live on any filesystem TensorFlow reads (``gs://bucket/exports/linnet/1``; ``s3://``, ``hdfs://`` with
tensorflow-io): `local_export` copies it once per machine into a local cache through ``tf.io.gfile``, the launcher
copying only its assets (`describe`) and each worker the whole version directory (`load_export`).

Importing this module imports neither TensorFlow nor an engine.

Example:
    >>> export = load_export("exports/linnet/1")  # doctest: +SKIP
    >>> rows, errors = split_rows(catalog_rows(enumerate(records, 1), export.schema, export.text_fields,  # doctest: +SKIP
    ...                                        bool(export.image_size), file="a.jsonl"))
    >>> columns, problems = prediction_batch(rows, export.run("serving_default", rows), export.taxonomy)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from linnet.atomic_files import atomic_directory
from linnet.data.attributes import render_attributes
from linnet.data.rows import (
    RowProblem,
    empty_cells,
    image_input,
    row_id,
    row_ids_of_column,
    row_inputs,
    row_texts_of_column,
)
from linnet.data.schema import ATTRIBUTES_FIELD
from linnet.data.tfrecord import is_url
from linnet.errors import ConfigError
from linnet.serving.artifacts import (
    EXPORT,
    SAVED_MODEL_FILE,
    Artifact,
    artifact_kind,
    describe_export,
    load_artifact,
)
from linnet.serving.export import EMBED_SIGNATURE, IMAGE_BYTES_INPUT, TAXONOMY_ASSET
from linnet.serving.predict import ERROR_COLUMNS
from linnet.serving.result_columns import (
    column_kind,
    result_columns,
    result_header,
)

PREDICT_SIGNATURE = "serving_default"
#: Columns of the errors output (`linnet predict`'s errors file: ``id`` first).
ERROR_FIELDS = ("id", *[name for name in ERROR_COLUMNS if name != "id"])


@dataclasses.dataclass
class RawRow:
    """One catalog row ready for the model: its id, raw inputs (text strings, image bytes) and where it came from
    (``line`` is the line of a CSV/JSONL file or the row of a Parquet file, as ``location`` says)."""

    id: str
    inputs: dict
    file: str = ""
    line: int = 0
    location: str = ""
    image_problem: str | None = None  # the image cell names an image that could not be read


@dataclasses.dataclass
class RowError:
    """A row (or an input id) without a result: file, location (``line 12``, ``row 3``), id, field and problem."""

    id: str | None
    file: str
    location: str
    field: str | None
    problem: str
    line: int = 0  # the number in ``location``, to order rows

    def as_record(self) -> dict:
        return {"id": self.id or "", "file": self.file, "location": self.location, "field": self.field or "",
                "problem": self.problem}


@dataclasses.dataclass
class RowBatch:
    """Rows ready for the model, column by column (NumPy arrays, one entry per row): ids, raw inputs (one column per
    model input: text strings, image bytes), the file, line and location of each, and its image problem (None: none).
    What the engines pass from reading to the model: no Python object per row (`table_batch` builds one from an Arrow
    chunk, `RowBatch.of` from `RawRow`s)."""

    ids: np.ndarray
    inputs: dict[str, np.ndarray]
    files: np.ndarray
    lines: np.ndarray
    locations: np.ndarray
    image_problems: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def of(cls, rows: Sequence[RawRow] | RowBatch) -> RowBatch:
        """The batch of ``rows`` (a batch is itself); a row's ``image_error`` input (`linnet.data.rows.row_inputs`) is
        its ``image_problem`` here."""
        if isinstance(rows, RowBatch):
            return rows
        names = [name for name in rows[0].inputs if name != "image_error"] if rows else []
        return cls(_objects([row.id for row in rows]),
                   {name: _objects([row.inputs[name] for row in rows]) for name in names},
                   _objects([row.file for row in rows]), np.array([row.line for row in rows], np.int64),
                   _objects([row.location for row in rows]), _objects([row.image_problem for row in rows]))

    @classmethod
    def concat(cls, batches: Sequence[RowBatch]) -> RowBatch:
        """The rows of ``batches`` in order (an empty batch when none has rows)."""
        batches = [batch for batch in batches if len(batch)]
        if len(batches) == 1:
            return batches[0]
        if not batches:
            return cls.of([])

        def joined(name):
            return np.concatenate([getattr(batch, name) for batch in batches])

        return cls(joined("ids"), {name: np.concatenate([batch.inputs[name] for batch in batches])
                                   for name in batches[0].inputs},
                   joined("files"), joined("lines"), joined("locations"), joined("image_problems"))

    def __getitem__(self, places) -> RowBatch:
        """The rows at ``places`` (a slice, an index array or a bool mask)."""
        return RowBatch(self.ids[places], {name: column[places] for name, column in self.inputs.items()},
                        self.files[places], self.lines[places], self.locations[places], self.image_problems[places])

    def error(self, place: int, field: str | None, problem: str) -> RowError:
        """A `RowError` of the row at ``place``."""
        return RowError(self.ids[place], self.files[place], self.locations[place], field, problem,
                        int(self.lines[place]))


def _objects(values: Sequence) -> np.ndarray:
    """A 1-D object array of ``values`` (NumPy would make a list of equal-length bytes or lists 2-D)."""
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


class LoadedExport:
    """An export version directory loaded once: its signatures, taxonomy, schema and raw inputs.

    Attributes:
        path: the export directory.
        taxonomy, schema: the export's `linnet.taxonomy.Taxonomy` and `linnet.data.CatalogSchema` (or None).
        text_fields: raw text inputs in order; ``image_size``: None when the model reads no image.
    """

    def __init__(self, path):
        artifact = load_artifact(describe(path).path)
        self.path = Path(path)
        self.saved_model = artifact.saved_model
        self.taxonomy = artifact.taxonomy
        self.schema = artifact.schema
        self.text_fields = artifact.text_fields
        self.image_size = artifact.image_size

    @property
    def input_names(self) -> list[str]:
        return self.text_fields + ([IMAGE_BYTES_INPUT] if self.image_size else [])

    def call(self, signature: str, inputs: Mapping[str, Sequence]) -> dict[str, np.ndarray]:
        """The signature's outputs for a batch of raw inputs, one column per input (text strings, image bytes), as
        NumPy (strings as ``bytes``: the result builders decode the ones they write, once)."""
        import tensorflow as tf  # lazy: importing the engines must not load TensorFlow

        function = self.saved_model.signatures[signature]
        batch = {name: tf.constant(_objects(inputs[name]) if isinstance(inputs[name], list) else inputs[name],
                                   tf.string) for name in self.input_names}
        return {name: value.numpy() for name, value in function(**batch).items()}

    def run(self, signature: str, rows: Sequence[RawRow] | RowBatch) -> BatchOutputs:
        """The signature's outputs for the rows it answered and a `RowError` for each row it failed on.

        A model call that raises is retried on each half of the batch, down to single rows, so only the rows
        that fail get an error.
        """
        rows = RowBatch.of(rows)
        if not len(rows):
            return BatchOutputs({}, np.zeros(0, np.int64), {})
        try:
            outputs = self.call(signature, rows.inputs)
        except Exception as error:  # noqa: BLE001  any failure of the graph is one row's problem, found by halving
            if len(rows) == 1:
                return BatchOutputs({}, np.zeros(0, np.int64), {0: rows.error(
                    0, None, f"the model failed on this row: {type(error).__name__}: {_first_line(error)}")})
            middle = len(rows) // 2
            return self.run(signature, rows[:middle]).followed_by(self.run(signature, rows[middle:]), middle)
        return BatchOutputs(outputs, np.arange(len(rows)), {})


@dataclasses.dataclass
class BatchOutputs:
    """One signature call on a batch of rows: ``outputs`` (NumPy arrays) of the rows it answered, whose
    places in the batch ``answered`` holds, in order, and the `RowError` of each row it failed on, by place."""

    outputs: dict[str, np.ndarray]
    answered: np.ndarray
    failed: dict[int, RowError]

    def followed_by(self, other: BatchOutputs, offset: int) -> BatchOutputs:
        """This batch's outcome followed by that of the next ``other`` rows, which start at place ``offset``."""
        names = self.outputs.keys() or other.outputs.keys()
        outputs = {name: np.concatenate([part.outputs[name] for part in (self, other) if part.outputs])
                   for name in names}
        failed = {**self.failed, **{place + offset: error for place, error in other.failed.items()}}
        return BatchOutputs(outputs, np.concatenate([self.answered, other.answered + offset]), failed)


@functools.lru_cache(maxsize=4)
def load_export(path) -> LoadedExport:
    """The export at ``path`` (local, or any ``tf.io.gfile`` URL: `local_export`), loaded once per process (every
    later call returns the same object)."""
    return LoadedExport(local_export(os.fspath(path)))


#: Where `local_export` keeps the exports it copied (one folder per URL, under the machine's temporary folder).
EXPORT_CACHE = "linnet-exports"


@functools.lru_cache(maxsize=8)
def local_export(path: str, assets_only: bool = False) -> str:
    """A local directory holding the export at ``path``: ``path`` itself when local, else a copy made once per
    machine through ``tf.io.gfile`` (gs:// is built into TensorFlow; s3://, hdfs:// need tensorflow-io) into
    ``<tmp>/linnet-exports/<hash of the URL>``. An export version directory is never rewritten (``linnet export``
    writes a new version), so a complete copy is reused; a copy is made in a scratch folder and renamed, so workers
    sharing a machine never read a half-copied model.

    Args:
        path: the export version directory.
        assets_only: copy only ``assets/`` (what `describe` reads: taxonomy, schema, inputs), as a launcher needs.

    Raises:
        ConfigError: the URL holds no ``saved_model.pb``, or lists a file outside itself.
    """
    text = os.fspath(path)
    if not is_url(text):
        return text
    import tensorflow as tf  # lazy: only a remote export needs TensorFlow's filesystems at the launcher

    source = text.rstrip("/")
    if not tf.io.gfile.exists(f"{source}/{SAVED_MODEL_FILE}"):
        raise ConfigError(f"{text}: no {SAVED_MODEL_FILE} there; the engines run an export version directory "
                          "(linnet export)")
    digest = hashlib.sha256(source.encode("utf-8")).hexdigest()[:20]
    cache = Path(tempfile.gettempdir()) / EXPORT_CACHE
    target = cache / (f"{digest}-assets" if assets_only else digest)
    if target.is_dir():  # only ever renamed into place complete
        return str(target)
    try:
        with atomic_directory(target) as scratch:
            scratch = scratch.resolve()
            top = f"{source}/assets" if assets_only else source
            for directory, _, files in tf.io.gfile.walk(top) if tf.io.gfile.isdir(top) else ():
                folder = directory.rstrip("/")
                if folder != top and not folder.startswith(f"{top}/"):
                    continue  # a listing by name prefix also gives "assets.extra" for "assets"
                for name in files:
                    remote = f"{folder}/{name}"
                    if not tf.io.gfile.exists(remote) or tf.io.gfile.isdir(remote):
                        continue  # the same: a prefix listing's names that are no file of this folder
                    destination = (scratch / folder[len(source):].lstrip("/") / name).resolve()
                    if not destination.is_relative_to(scratch):
                        raise ConfigError(f"{text}: the listing names {remote}, outside the export")
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    tf.io.gfile.copy(remote, str(destination), overwrite=True)
    except OSError:
        if not target.is_dir():
            raise
        # another worker on this machine renamed its complete copy first: keep that one
    return str(target)


def describe(path) -> Artifact:
    """What a job needs to build its pipeline (taxonomy, schema, text fields, image size), without loading the
    SavedModel or TensorFlow (a remote export's assets are copied first: `local_export`).

    Raises:
        ConfigError: ``path`` is not an export version directory (a run directory: export it first).
    """
    remote = is_url(path)
    path = local_export(os.fspath(path), assets_only=True)  # a remote one: checked to hold saved_model.pb
    if not remote and artifact_kind(path) != EXPORT:
        raise ConfigError(f"{path}: the engines run an export version directory (linnet export), not a run directory")
    artifact = describe_export(path)
    if artifact.taxonomy is None:
        raise ConfigError(f"{path}: not a LinNét export: assets/{TAXONOMY_ASSET} is missing")
    return artifact


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else ""


#: What the jobs' errors output says of an unusable image (`linnet.data.images.UNUSABLE_IMAGE_KINDS`).
_IMAGE_PROBLEMS = {"url_not_fetched": "image URL not fetched (linnet images fetch)",
                   "missing_file": "image file not found or unreadable",
                   "outside_root": "image path outside the image root (--allow-images-outside-root to allow)",
                   "not_image": "not an image (its first bytes are no JPEG, PNG, GIF, BMP or WebP)",
                   "too_large": "image file over the size limit"}


# --------------------------------------------------------------------------------------------- rows
def catalog_rows(located_records: Iterable[tuple[int, Mapping]], schema, text_fields: Sequence[str],
                 with_image: bool, file: str = "", location_kind: str = "line",
                 image_root=None) -> Iterator[RawRow | RowError]:
    """`RawRow` or `RowError` per ``(location, record)``, read with `linnet predict`'s rules (`linnet.data.rows`).

    An image cell that names a file that is missing or a URL never fetched gives the row without an image (as
    `linnet predict` does) and an ``image_problem`` the jobs report in their errors output.
    """
    root = schema.image_root or image_root or (str(Path(file).parent) if file else ".")
    for location, record in located_records:
        where = f"{location_kind} {location}"
        product_id = None
        try:
            product_id = row_id(record, schema.id_column)
            inputs = row_inputs(record, schema, text_fields, with_image, root)
        except RowProblem as problem:
            yield RowError(product_id, file, where, problem.field, problem.problem, int(location))
            continue
        kind = inputs.get("image_error") if with_image else None  # row_inputs' reason, confinement option included
        image_problem = _IMAGE_PROBLEMS.get(kind, f"image unusable: {kind}") if kind else None
        yield RawRow(product_id, inputs, file, int(location), where, image_problem)


def table_batch(table, locations: Sequence[int], schema, text_fields: Sequence[str], with_image: bool,
                file: str = "", location_kind: str = "line", image_root=None) -> tuple[RowBatch, list[RowError]]:
    """`catalog_rows` of the records of an Arrow table (a `linnet.data.readers.RecordChunk`'s ``table``: columns of
    text, integers or nulls; a column it lacks is empty) at ``locations``, column by column: the `RowBatch` of the
    rows `catalog_rows` makes a `RawRow` of and the `RowError` of each other row, in order. The id and text rules
    run on whole columns (`linnet.data.rows.row_ids_of_column`, `row_texts_of_column`); only the attributes text and
    the image cells that name an image are read row by row."""
    import pyarrow as pa  # lazy: only the column readers need it

    count = table.num_rows
    names = table.schema.names

    def column(name):
        return table.column(name).combine_chunks() if name in names else pa.nulls(count)

    root = schema.image_root or image_root or (str(Path(file).parent) if file else ".")
    ids = row_ids_of_column(column(schema.id_column))
    problems: dict[int, RowProblem] = {place: RowProblem(schema.id_column, "the id is empty")
                                       for place in np.flatnonzero(np.equal(ids, None)).tolist()}
    inputs = {}
    for field in text_fields:
        if field == ATTRIBUTES_FIELD:
            records = table.select([name for name in schema.attribute_columns if name in names]).to_pylist()
            inputs[field] = _objects([render_attributes(record, schema.attribute_columns) for record in records])
            continue
        inputs[field], bad = row_texts_of_column(column(field), field)
        for place, problem in bad.items():
            problems.setdefault(place, problem)  # a row's first problem: its id's, then its fields' in order
    image_problems = np.full(count, None, dtype=object)
    if with_image:
        cells = column(schema.image_column) if schema.image_column else pa.nulls(count)
        images = np.full(count, b"", dtype=object)
        named = [place for place in np.flatnonzero(~empty_cells(cells)).tolist() if place not in problems]
        raws = cells.take(pa.array(named, pa.int64())).to_pylist() if named else []
        for place, raw in zip(named, raws):
            images[place], kind = image_input(raw, schema, root)
            if kind:
                image_problems[place] = _IMAGE_PROBLEMS.get(kind, f"image unusable: {kind}")
        inputs[IMAGE_BYTES_INPUT] = images
    lines = np.asarray(locations, dtype=np.int64)
    where = np.strings.add(f"{location_kind} ", lines.astype(str)).astype(object)
    errors = [RowError(ids[place], file, where[place], problem.field, problem.problem, int(lines[place]))
              for place, problem in sorted(problems.items())]
    keep = np.ones(count, dtype=bool)
    keep[list(problems)] = False
    batch = RowBatch(ids, inputs, np.full(count, file, dtype=object), lines, where, image_problems)
    return batch[keep], errors


def split_rows(items: Iterable[RawRow | RowError]) -> tuple[list[RawRow], list[RowError]]:
    rows, errors = [], []
    for item in items:
        (errors if isinstance(item, RowError) else rows).append(item)
    return rows, errors


# ------------------------------------------------------------------------------------------ results
def prediction_columns(num_levels: int) -> list[str]:
    """The columns of a prediction record: `linnet predict`'s, in its order."""
    return result_header(num_levels)


def prediction_batch(rows: Sequence[RawRow] | RowBatch, outcome: BatchOutputs,
                     taxonomy) -> tuple[dict[str, np.ndarray], list[RowError]]:
    """`linnet predict`'s columns for every row of a batch, in order (`prediction_columns`; numbers typed, absent
    numbers ``None``), and the errors.

    A row the model failed on gets an empty prediction carrying the problem in ``error`` (as `linnet predict`
    writes a bad row with an id) and a `RowError`; a row whose image was named but unreadable, or whose bytes
    did not decode (``image_present`` 0), keeps its prediction and gets a `RowError` for the image field.
    """
    rows = RowBatch.of(rows)
    num_levels = taxonomy.num_levels
    answered = outcome.answered
    predicted = result_columns(rows.ids[answered], outcome.outputs, num_levels, taxonomy) if len(answered) else None
    failed = sorted(outcome.failed)
    failures = error_columns([outcome.failed[place].id for place in failed],
                             [outcome.failed[place].problem for place in failed], num_levels)
    columns = merge_rows(len(rows), [(answered, predicted), (np.array(failed, np.int64), failures)])
    errors = [outcome.failed[place] for place in failed]
    problems = rows.image_problems.copy()
    problems[failed] = None
    images = rows.inputs.get(IMAGE_BYTES_INPUT)
    if images is not None and predicted is not None:  # bytes given that the model could not decode
        undecoded = answered[(images[answered] != b"") & (predicted["image_present"] == 0)]
        undecoded = undecoded[np.equal(problems[undecoded], None)]
        problems[undecoded] = "image bytes could not be decoded (predicted without the image)"
    errors += [rows.error(place, IMAGE_BYTES_INPUT, problems[place])
               for place in np.flatnonzero(np.not_equal(problems, None)).tolist()]
    return columns, errors


def error_columns(ids: Sequence[str], problems: Sequence[str], num_levels: int) -> dict[str, np.ndarray]:
    """The empty predictions of rows with an id but no result: ``error`` holds the problem, numbers are ``None``,
    other text is empty."""
    count = len(ids)
    columns = {}
    for column in prediction_columns(num_levels):
        number = column_kind(column) != "string"
        columns[column] = np.full(count, None if number else "", dtype=object)
    columns["id"] = np.array(list(ids), dtype=object)
    columns["error"] = np.array(list(problems), dtype=object)
    return columns


def merge_rows(count: int, parts: Sequence[tuple[np.ndarray, dict[str, np.ndarray] | None]]) -> dict[str, np.ndarray]:
    """Columns of ``count`` rows from parts that each hold the rows at some places (``(places, columns)``, None
    for a part without rows; at least one part has columns, even if empty): a column keeps its NumPy type when
    every part has it, else becomes an object array."""
    parts = [(places, columns) for places, columns in parts if columns is not None]
    filled = [columns for places, columns in parts if len(places)]
    if len(filled) == 1 and all(len(column) == count for column in filled[0].values()):
        return filled[0]
    merged = {}
    for name in parts[0][1]:
        kinds = {columns[name].dtype for _, columns in parts}
        column = np.empty(count, dtype=kinds.pop() if len(kinds) == 1 else object)
        for places, columns in parts:
            column[places] = columns[name]
        merged[name] = column
    return merged


def with_nulls(column: np.ndarray) -> np.ndarray:
    """A column with its absent numbers (NaN) as ``None`` (what Spark and JSON take for a null)."""
    absent = _absent(column)
    return np.where(absent, None, column) if absent.any() else column


def _absent(column: np.ndarray) -> np.ndarray:
    if column.dtype.kind == "f":
        return np.isnan(column)
    if column.dtype == object:  # None, or NaN (the one value unequal to itself), compared in C
        return np.equal(column, None) | np.not_equal(column, column)
    return np.zeros(len(column), dtype=bool)


def embedding_records(rows: Sequence[RawRow] | RowBatch, outcome: BatchOutputs) -> tuple[list[dict], list[RowError]]:
    """``{"id", "embedding"}`` per row the ``embed`` signature answered, and the errors of the others."""
    rows = RowBatch.of(rows)
    vectors = np.asarray(outcome.outputs["embedding"], np.float32).tolist() if len(outcome.answered) else []
    records = [{"id": product_id, "embedding": vector}
               for product_id, vector in zip(rows.ids[outcome.answered].tolist(), vectors)]
    return records, [outcome.failed[place] for place in sorted(outcome.failed)]


__all__ = ["EMBED_SIGNATURE", "ERROR_FIELDS", "PREDICT_SIGNATURE", "BatchOutputs", "LoadedExport", "RawRow",
           "RowBatch", "RowError", "catalog_rows", "describe", "embedding_records", "error_columns",
           "load_export", "merge_rows", "prediction_batch", "prediction_columns", "split_rows",
           "table_batch", "with_nulls"]
