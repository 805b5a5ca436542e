"""`prepare_catalog`: read a catalog, check every row, map labels to the tree, split, and report.

The result, a `PreparedCatalog`, holds plain NumPy arrays (ids, text fields, image sources, per-level
labels, split names) that `make_dataset`, the TFRecord writer, the baselines and evaluation all read.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from linnet.atomic_files import write_atomically
from linnet.data.attributes import render_attributes
from linnet.data.images import IMAGE_KINDS, UNUSABLE_IMAGE_KINDS, resolve_image_source
from linnet.data.readers import DEFAULT_CHUNK_ROWS, BadRow, CatalogReader
from linnet.data.rows import RowProblem, is_empty, row_id, row_text
from linnet.data.schema import ATTRIBUTES_FIELD, CatalogSchema
from linnet.data.split import (
    DEFAULT_FRACTIONS,
    SPLIT_NAMES,
    assign_splits,
    check_fractions,
)
from linnet.errors import CatalogError, ConfigError, TaxonomyError
from linnet.progress import progress_bar
from linnet.taxonomy import Taxonomy

UNKNOWN_LABEL_POLICIES = ("error", "skip", "ancestor")
BAD_ROW_POLICIES = ("error", "skip")
_EXAMPLE_IDS = 5


@dataclass
class CatalogReport:
    """What `prepare_catalog` found: nothing is dropped without being counted and named here.

    Attributes:
        rows_read: Records in the file (readable or not).
        rows_kept: Rows in the prepared catalog.
        bad_rows: Unreadable or invalid rows (`BadRow`, each naming file, line, id and field).
        unknown_labels: Category label text -> number of rows whose label is not in the tree.
        unknown_label_ids: Category label text -> the first few product ids carrying it.
        mapped_to_ancestor: Rows whose unknown label was mapped to its deepest known ancestor.
        dropped_unknown: Rows left out because of an unknown label (policy ``skip``, or no known ancestor).
        unlabelled: Rows without any category value (kept, labels ``-1``).
        images: Image availability counts: ``file``, ``bytes``, ``none`` and the unusable kinds
            (`linnet.data.images.UNUSABLE_IMAGE_KINDS`).
        missing_image_ids: The first few ids of rows whose image is unusable (missing, outside the image
            root, not an image, too large, a URL not fetched).
        splits: Rows per split.
        errors_path: Where the bad rows were written, if anywhere.
    """

    path: str
    rows_read: int = 0
    rows_kept: int = 0
    bad_rows: list[BadRow] = field(default_factory=list)
    unknown_labels: dict[str, int] = field(default_factory=dict)
    unknown_label_ids: dict[str, list[str]] = field(default_factory=dict)
    unknown_label_policy: str = "error"
    mapped_to_ancestor: int = 0
    dropped_unknown: int = 0
    unlabelled: int = 0
    images: dict[str, int] = field(default_factory=dict)
    missing_image_ids: list[str] = field(default_factory=list)
    splits: dict[str, int] = field(default_factory=dict)
    errors_path: str | None = None

    @property
    def unusable_images(self) -> int:
        """Rows whose image cell gives no usable image (missing, outside the root, not an image, too large)."""
        return sum(self.images.get(kind, 0) for kind in UNUSABLE_IMAGE_KINDS)

    def to_dict(self) -> dict[str, Any]:
        data = {key: value for key, value in self.__dict__.items() if key != "bad_rows"}
        data["unusable_images"] = self.unusable_images
        data["bad_rows"] = len(self.bad_rows)
        data["bad_row_examples"] = [row.message() for row in self.bad_rows[:10]]
        return data

    def summary(self) -> str:
        lines = [f"{self.path}: {self.rows_read} rows read, {self.rows_kept} kept"]
        if self.bad_rows:
            lines.append(f"  {len(self.bad_rows)} bad rows" + (f" (written to {self.errors_path})" if self.errors_path else ""))
            lines += [f"    {row.message()}" for row in self.bad_rows[:5]]
        if self.unknown_labels:
            total = sum(self.unknown_labels.values())
            lines.append(f"  {len(self.unknown_labels)} unknown labels on {total} rows (policy {self.unknown_label_policy}):"
                         f" {self.mapped_to_ancestor} mapped to an ancestor, {self.dropped_unknown} left out")
            for label, count in sorted(self.unknown_labels.items(), key=lambda item: -item[1])[:5]:
                lines.append(f"    {label!r}: {count} rows, e.g. ids {self.unknown_label_ids.get(label, [])}")
        if self.unlabelled:
            lines.append(f"  {self.unlabelled} rows have no category")
        if self.images:
            lines.append("  images: " + ", ".join(f"{kind} {count}" for kind, count in self.images.items() if count))
            if self.unusable_images:
                given = sum(self.images.values()) - self.images.get("none", 0)
                lines.append(f"  {self.unusable_images} of {given} images unusable "
                             f"({self.unusable_images / max(given, 1):.0%}), e.g. ids {self.missing_image_ids}")
        if self.splits:
            lines.append("  splits: " + ", ".join(f"{name} {count}" for name, count in self.splits.items()))
        return "\n".join(lines)


@dataclass
class PreparedCatalog:
    """A catalog read, checked, labelled and split; every array has one entry per kept row.

    Attributes:
        ids: ``[N]`` product ids (str).
        texts: ``{field: [N] str}`` for each of ``schema.feature_text_fields``.
        image_sources: ``[N]`` absolute file path (str), inline bytes, or ``""`` for no usable image;
            None when the schema has no image column.
        labels: int32 ``[N, L]`` class index per level, ``-1`` for no label; ``[N, 0]`` without a tree.
        split: ``[N]`` in ``{"train", "validation", "test"}``.
        values: float32 ``[N]`` business value (NaN when empty), or None.
        locations: ``[N]`` line (row for Parquet) of each product in the source file.
        taxonomy: The tree the labels index (given, or inferred from the category column); None when
            the catalog has no categories and no tree was given.
    """

    ids: np.ndarray
    texts: dict[str, np.ndarray]
    image_sources: np.ndarray | None
    labels: np.ndarray
    split: np.ndarray
    values: np.ndarray | None
    locations: np.ndarray
    taxonomy: Any
    schema: CatalogSchema
    report: CatalogReport
    source: str = ""

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, split: str | Sequence[str] | np.ndarray) -> PreparedCatalog:
        """The rows of one split (``"train"``), several splits, or a boolean mask / index array."""
        if isinstance(split, str) or (isinstance(split, (list, tuple)) and all(isinstance(s, str) for s in split)):
            names = [split] if isinstance(split, str) else list(split)
            unknown = sorted(set(names) - set(SPLIT_NAMES))
            if unknown:
                raise ConfigError(f"unknown split name(s) {unknown}; choose from {SPLIT_NAMES}")
            selection = np.isin(self.split, names)
        else:
            selection = np.asarray(split)

        def take(array):
            return None if array is None else array[selection]

        return PreparedCatalog(
            ids=self.ids[selection], texts={key: value[selection] for key, value in self.texts.items()},
            image_sources=take(self.image_sources), labels=self.labels[selection], split=self.split[selection],
            values=take(self.values), locations=self.locations[selection], taxonomy=self.taxonomy,
            schema=self.schema, report=self.report, source=self.source,
        )

    @property
    def num_levels(self) -> int:
        return int(self.labels.shape[1])

    def image_available(self) -> np.ndarray:
        """bool ``[N]``: the row has an image file or inline bytes (it may still fail to decode)."""
        if self.image_sources is None:
            return np.zeros(len(self), dtype=bool)
        return np.fromiter((len(source) > 0 for source in self.image_sources), dtype=bool, count=len(self))


# ---------------------------------------------------------------------------------------------- row checks
# The id and text rules are linnet.data.rows', shared with batch prediction; these two are training's own.
def _category(value: Any, schema: CatalogSchema) -> Any:
    """Hashable category key of a row: path string, tuple of names, node id string, or None."""
    column = schema.category_column
    if schema.level_columns:
        names = []
        ended_at = None
        for level_column in schema.level_columns:
            cell = value.get(level_column)
            if is_empty(cell):
                ended_at = ended_at or level_column
                continue
            if not isinstance(cell, str):
                raise RowProblem(level_column, f"a category name must be text, got {type(cell).__name__} {cell!r}")
            if ended_at is not None:
                raise RowProblem(level_column, f"a name after the empty level {ended_at!r}: {cell!r}")
            names.append(cell.strip())
        return tuple(names) or None
    cell = value.get(column)
    if is_empty(cell):
        return None
    if schema.category_kind == "id":
        if isinstance(cell, (int, np.integer)) and not isinstance(cell, bool):
            return str(int(cell))
        if isinstance(cell, str):
            return cell.strip()
        raise RowProblem(column, f"a category id must be a string or an integer, got {type(cell).__name__} {cell!r}")
    if isinstance(cell, (list, tuple)) and all(isinstance(name, str) for name in cell):
        return tuple(name.strip() for name in cell if name.strip()) or None
    if not isinstance(cell, str):
        raise RowProblem(column, f"a category path must be text, got {type(cell).__name__} {cell!r}")
    return cell.strip()


def _value(value: Any, column: str) -> float:
    if is_empty(value):
        return math.nan
    if isinstance(value, bool):
        raise RowProblem(column, f"must be a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise RowProblem(column, f"must be a number, got {value!r}") from None


def _label_text(key: Any, separator: str) -> str:
    return separator.join(key) if isinstance(key, tuple) else str(key)


# ---------------------------------------------------------------------------------------------- labels
def _infer_taxonomy(keys: list, schema: CatalogSchema, source: str):
    """Tree inferred from the distinct labels; labels that cannot form a path are returned as problems."""
    def build(subset):
        if schema.level_columns:
            return Taxonomy.from_level_columns([list(key) for key in subset], source=source)
        return Taxonomy.from_paths(subset, separator=schema.path_separator, source=source)

    try:
        return build(keys), {}
    except TaxonomyError:
        problems, good = {}, []
        for key in keys:
            try:
                build([key])
                good.append(key)
            except TaxonomyError as error:
                problems[key] = str(error)
        if not good:
            raise CatalogError(f"{source}: no usable category labels; e.g. {next(iter(problems.values()))}") from None
        return build(good), problems


def _lookup(taxonomy, key: Any, schema: CatalogSchema) -> str | None:
    if schema.category_kind == "id":
        return key if key in taxonomy else None
    try:
        node = taxonomy.find_path(key, locale=schema.category_locale, separator=schema.path_separator)
    except TaxonomyError:
        return None
    return None if node is None else node.id


def _ancestor(taxonomy, key: Any, schema: CatalogSchema) -> str | None:
    if schema.category_kind == "id":
        return None
    try:
        node = taxonomy.deepest_known_ancestor(key, locale=schema.category_locale, separator=schema.path_separator)
    except TaxonomyError:
        return None
    return None if node is None else node.id


# ---------------------------------------------------------------------------------------------- reading rows
@dataclass
class _Rows:
    """The checked fields of usable rows (one chunk, or a whole file)."""

    ids: list[str] = field(default_factory=list)
    locations: list[int] = field(default_factory=list)
    texts: dict[str, list[str]] = field(default_factory=dict)
    attributes: list[str] = field(default_factory=list)
    categories: list[Any] = field(default_factory=list)
    images: list[Any] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def extend(self, other: _Rows) -> None:
        for name in ("ids", "locations", "attributes", "categories", "images", "values"):
            getattr(self, name).extend(getattr(other, name))
        for name, column in other.texts.items():
            self.texts.setdefault(name, []).extend(column)


class _RowChecker:
    """Reads a catalog chunk by chunk, checks every record and collects the usable rows.

    Bad rows go to ``report.bad_rows`` in file order; with ``bad_rows="error"`` the first one raises.
    Repeated ids are caught across chunks.
    """

    def __init__(self, path, schema: CatalogSchema, report_policy: str, bad_rows: str, *, format, chunk_rows,
                 max_rows, categories_only: bool = False, max_bad_rows: int | None = None):
        self.schema = schema
        self.categories_only = categories_only
        required = [schema.id_column, *(schema.level_columns or [])]
        required += [schema.category_column] if schema.category_column else []
        if not categories_only:
            required += [*schema.text_columns, *schema.attribute_columns]
            required += [name for name in (schema.image_column, schema.value_column) if name]
        self.reader = CatalogReader(path, format=format, chunk_rows=chunk_rows,
                                    columns=required if categories_only else schema.columns())
        self.reader.require(required)
        self.source = str(self.reader.path)
        self.report = CatalogReport(path=self.source, unknown_label_policy=report_policy)
        self.bad_rows = bad_rows
        self.max_rows = max_rows
        self.max_bad_rows = max_bad_rows
        self.first_seen: dict[str, int] = {}

    @property
    def location_kind(self) -> str:
        return self.reader.location_kind

    def _fail_fast(self) -> None:
        problems = self.report.bad_rows
        if self.bad_rows == "error" and problems:
            raise CatalogError(problems[0].message() + " (pass errors_path= / --errors-file to skip bad rows "
                               "and keep them in a file)")
        check_bad_row_limit(self.report, self.max_bad_rows)

    def _done(self) -> bool:
        return self.max_rows is not None and self.report.rows_read >= self.max_rows

    def chunks(self, progress: bool = False) -> Iterator[_Rows]:
        schema, report = self.schema, self.report
        progress_bar = _progress(progress, self.source)
        try:
            for chunk in self.reader:
                rows = _Rows(texts={name: [] for name in schema.text_columns})
                unread = sorted(chunk.bad_rows, key=lambda bad: bad.location)
                for bad in unread:
                    bad.location_kind = self.location_kind
                report.rows_read += len(unread)
                for location, record in zip(chunk.locations, chunk.records):
                    while unread and unread[0].location < location:  # report problems in file order
                        report.bad_rows.append(unread.pop(0))
                        self._fail_fast()
                    if self._done():
                        break
                    report.rows_read += 1
                    self._add(rows, location, record)
                report.bad_rows.extend(unread)
                self._fail_fast()
                progress_bar.update(len(chunk.records) + len(chunk.bad_rows))
                yield rows
                if self._done():
                    break
        finally:
            progress_bar.close()

    def _add(self, rows: _Rows, location: int, record: dict) -> None:
        schema = self.schema
        product_id = None
        try:
            product_id = row_id(record, schema.id_column)
            if self.categories_only:
                category = _category(record, schema) if schema.has_category else None
                rows.categories.append(category)
                return
            if product_id in self.first_seen:
                raise RowProblem(schema.id_column, f"id {product_id!r} repeated (first at "
                                f"{self.location_kind} {self.first_seen[product_id]})")
            row_texts = [row_text(record.get(name), name) for name in schema.text_columns]
            category = _category(record, schema) if schema.has_category else None
            value = _value(record.get(schema.value_column), schema.value_column) if schema.value_column else math.nan
        except RowProblem as error:
            self.report.bad_rows.append(BadRow(self.source, location, product_id, error.field, error.problem, record,
                                               self.location_kind))
            self._fail_fast()
            return
        self.first_seen[product_id] = location
        rows.ids.append(product_id)
        rows.locations.append(location)
        for name, text in zip(schema.text_columns, row_texts):
            rows.texts[name].append(text)
        if schema.attribute_columns:
            rows.attributes.append(render_attributes(record, schema.attribute_columns))
        rows.categories.append(category)
        if schema.image_column:
            rows.images.append(record.get(schema.image_column))
        rows.values.append(value)


def check_bad_row_limit(report: CatalogReport, max_bad_rows: int | None) -> None:
    """Raises `CatalogError` once more than ``max_bad_rows`` rows are bad (None: no limit)."""
    if max_bad_rows is not None and len(report.bad_rows) > max_bad_rows:
        raise CatalogError(f"{report.path}: more than {max_bad_rows} bad rows (max_bad_rows / --max-bad-rows); "
                           f"the first: {report.bad_rows[0].message()}")


def _check_options(schema, taxonomy, unknown_labels, bad_rows, errors_path, split, max_bad_rows=None):
    if unknown_labels not in UNKNOWN_LABEL_POLICIES:
        raise ConfigError(f"unknown_labels must be one of {UNKNOWN_LABEL_POLICIES}, got {unknown_labels!r}")
    if max_bad_rows is not None and (isinstance(max_bad_rows, bool) or not isinstance(max_bad_rows, int)
                                     or max_bad_rows < 0):
        raise ConfigError(f"max_bad_rows must be a non-negative integer, got {max_bad_rows!r}")
    skipping = errors_path is not None or max_bad_rows is not None
    bad_rows = bad_rows or ("skip" if skipping else "error")
    if bad_rows not in BAD_ROW_POLICIES:
        raise ConfigError(f"bad_rows must be one of {BAD_ROW_POLICIES}, got {bad_rows!r}")
    if schema.category_kind == "id" and taxonomy is None and schema.has_category:
        raise ConfigError("category ids need a taxonomy: pass taxonomy= (or --taxonomy)")
    return bad_rows, check_fractions(split)


# ---------------------------------------------------------------------------------------------- main entry
def prepare_catalog(
    path: str | os.PathLike,
    schema: CatalogSchema,
    taxonomy=None,
    unknown_labels: str = "error",
    split: Sequence[float] = DEFAULT_FRACTIONS,
    *,
    stratify: bool = False,
    split_salt: str = "",
    errors_path: str | os.PathLike | None = None,
    bad_rows: str | None = None,
    format: str | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    max_rows: int | None = None,
    progress: bool = False,
    max_bad_rows: int | None = None,
) -> PreparedCatalog:
    """Reads a catalog in chunks, checks every row, maps labels to the tree and splits by id hash.

    Args:
        path: A ``.csv``/``.tsv`` (optionally gzipped), ``.jsonl`` or ``.parquet`` catalog.
        schema: The column roles.
        taxonomy: The tree to label with (`linnet.taxonomy.Taxonomy`); inferred from the category
            column(s) when None.
        unknown_labels: A label not in the tree: ``"error"`` (raise, listing them with counts and ids),
            ``"skip"`` (leave the row out, reported), ``"ancestor"`` (label the row with the deepest node of
            its path the tree knows; rows with no known prefix are left out, reported).
        split: Train, validation and test fractions.
        stratify: Cut the split per leaf class, so rare leaves appear in every split.
        split_salt: Change it for a different deterministic split.
        errors_path: Write every bad row and every left-out row here (JSON Lines, one object per row with
            file, line, id, field, problem and the record). Implies ``bad_rows="skip"``.
        bad_rows: ``"error"`` raises on the first unreadable or invalid row; ``"skip"`` keeps going and
            reports them. Default: ``"skip"`` when ``errors_path`` or ``max_bad_rows`` is given, else ``"error"``.
        max_bad_rows: Skipping, raise once more than this many rows are bad (read or left out); the errors
            file is written first. None: no limit.
        format: Override the format sniffed from the file name.
        chunk_rows: Records read per chunk.
        max_rows: Read at most this many records (for quick looks and tests).
        progress: Show a tqdm progress bar.

    Returns:
        A `PreparedCatalog`; its ``report`` counts and names everything that was not used as is.

    Raises:
        CatalogError: naming file, line, id and field of the first bad row (``bad_rows="error"``), or
            listing unknown labels (``unknown_labels="error"``), or for a missing column or empty file.

    Example:
        >>> schema = CatalogSchema(text_columns=["productDisplayName"], category_column="category_path",
        ...                        image_column="image_file")
        >>> catalog = prepare_catalog("../shared/data/fashion_product_images/styles.csv", schema,
        ...                           max_rows=500)  # doctest: +SKIP
        >>> catalog.subset("train").labels.shape  # doctest: +SKIP
        (352, 3)
    """
    bad_rows, fractions = _check_options(schema, taxonomy, unknown_labels, bad_rows, errors_path, split, max_bad_rows)
    checker = _RowChecker(path, schema, unknown_labels, bad_rows, format=format, chunk_rows=chunk_rows,
                          max_rows=max_rows, max_bad_rows=max_bad_rows)
    rows = _Rows(texts={name: [] for name in schema.text_columns})
    try:
        for chunk_rows_ in checker.chunks(progress):
            rows.extend(chunk_rows_)
        if not rows.ids:
            _raise_no_rows(checker, errors_path)
        catalog = _assemble(rows, checker, taxonomy, unknown_labels, fractions, split_salt, stratify)
        check_bad_row_limit(checker.report, max_bad_rows)
    except CatalogError:
        if max_bad_rows is not None:  # the rows that tipped it over are in the errors file
            _write_errors(errors_path, checker.report)
        raise
    _write_errors(errors_path, checker.report)
    return catalog


def prepare_catalog_chunks(
    path: str | os.PathLike,
    schema: CatalogSchema,
    taxonomy=None,
    unknown_labels: str = "error",
    split: Sequence[float] = DEFAULT_FRACTIONS,
    *,
    split_salt: str = "",
    errors_path: str | os.PathLike | None = None,
    bad_rows: str | None = None,
    format: str | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    max_rows: int | None = None,
    progress: bool = False,
    max_bad_rows: int | None = None,
) -> Iterator[PreparedCatalog]:
    """`prepare_catalog` one chunk at a time, for catalogs too big to hold: yields a `PreparedCatalog` per chunk.

    Every chunk has the same taxonomy (given, or inferred in a first pass that reads only the category
    column(s)) and shares one `CatalogReport`, complete when the generator is exhausted; the errors file
    is written then. The split is by id hash, so it is the same as `prepare_catalog`'s (stratification
    needs the whole catalog and is not offered here). Repeated ids are caught across chunks.

    Example:
        >>> for chunk in prepare_catalog_chunks("big.csv", schema, chunk_rows=100_000):  # doctest: +SKIP
        ...     write_some(chunk)
    """
    bad_rows, fractions = _check_options(schema, taxonomy, unknown_labels, bad_rows, errors_path, split, max_bad_rows)
    if taxonomy is None and schema.has_category:
        taxonomy = _infer_taxonomy_streaming(path, schema, format, chunk_rows, max_rows)
    checker = _RowChecker(path, schema, unknown_labels, bad_rows, format=format, chunk_rows=chunk_rows,
                          max_rows=max_rows, max_bad_rows=max_bad_rows)
    produced = 0
    for rows in checker.chunks(progress):
        if rows.ids:
            chunk = _assemble(rows, checker, taxonomy, unknown_labels, fractions, split_salt, stratify=False)
            check_bad_row_limit(checker.report, max_bad_rows)
            produced += len(chunk)
            if len(chunk):
                yield chunk
    if not produced:
        _raise_no_rows(checker, errors_path)
    _write_errors(errors_path, checker.report)


def _infer_taxonomy_streaming(path, schema: CatalogSchema, format, chunk_rows, max_rows):
    """The tree of the distinct category labels, read in a pass over the id and category column(s) only."""
    checker = _RowChecker(path, schema, "skip", "skip", format=format, chunk_rows=chunk_rows, max_rows=max_rows,
                          categories_only=True)
    distinct: dict[Any, None] = {}
    for rows in checker.chunks():
        distinct.update(dict.fromkeys(key for key in rows.categories if key is not None))
    if not distinct:
        raise CatalogError(f"{checker.source}: no row has a category, so no tree can be inferred; pass a taxonomy")
    taxonomy, _ = _infer_taxonomy(list(distinct), schema, checker.source)
    return taxonomy


def _raise_no_rows(checker: _RowChecker, errors_path) -> None:
    report = checker.report
    _write_errors(errors_path, report)
    raise CatalogError(f"{checker.source}: no usable rows ({report.rows_read} read, {len(report.bad_rows)} bad)"
                       + (f"; first problem: {report.bad_rows[0].message()}" if report.bad_rows else ""))


def _assemble(rows: _Rows, checker: _RowChecker, taxonomy, unknown_labels, fractions, split_salt, stratify):
    """A `PreparedCatalog` of checked rows: labels mapped, images resolved, split assigned; report updated."""
    schema, report, source = checker.schema, checker.report, checker.source
    image_root = schema.image_root or str(checker.reader.path.parent)
    ids = rows.ids
    keep = np.ones(len(ids), dtype=bool)
    labels, taxonomy = _map_labels(rows.categories, ids, rows.locations, schema, taxonomy, unknown_labels, report,
                                   keep, source, checker.location_kind)
    image_sources = None
    if schema.image_column:
        counts: Counter = Counter(report.images)
        resolved = np.empty(len(rows.images), dtype=object)
        for position, raw in enumerate(rows.images):
            resolved[position], kind = resolve_image_source(raw, image_root, confine=not schema.allow_images_outside_root)
            counts[kind] += 1
            if kind in UNUSABLE_IMAGE_KINDS and len(report.missing_image_ids) < _EXAMPLE_IDS:
                report.missing_image_ids.append(ids[position])
        report.images = {kind: counts.get(kind, 0) for kind in IMAGE_KINDS}
        image_sources = resolved
    strata = None
    if stratify and labels.shape[1]:
        deepest = np.where(labels >= 0, np.arange(labels.shape[1]), -1).max(axis=1)
        strata = np.array([f"{level}:{labels[row, level]}" for row, level in enumerate(deepest)])
    split_names = assign_splits(ids, fractions, salt=split_salt, strata=strata)
    text_arrays = {name: np.array(column, dtype=object) for name, column in rows.texts.items()}
    if schema.attribute_columns:
        text_arrays[ATTRIBUTES_FIELD] = np.array(rows.attributes, dtype=object)
    catalog = PreparedCatalog(
        ids=np.array(ids, dtype=object), texts=text_arrays, image_sources=image_sources, labels=labels,
        split=split_names, values=np.array(rows.values, dtype=np.float32) if schema.value_column else None,
        locations=np.array(rows.locations, dtype=np.int64), taxonomy=taxonomy, schema=schema, report=report,
        source=source,
    )
    if not keep.all():
        catalog = catalog.subset(keep)
    report.rows_kept += len(catalog)
    for name in SPLIT_NAMES:
        report.splits[name] = report.splits.get(name, 0) + int((catalog.split == name).sum())
    return catalog


def _map_labels(categories, ids, locations, schema, taxonomy, policy, report, keep, source, location_kind):
    if not schema.has_category:
        if taxonomy is None:
            return np.zeros((len(ids), 0), dtype=np.int32), None
        return np.full((len(ids), taxonomy.num_levels), -1, dtype=np.int32), taxonomy
    distinct = list(dict.fromkeys(key for key in categories if key is not None))
    malformed: dict[Any, str] = {}
    if taxonomy is None:
        if not distinct:
            raise CatalogError(f"{source}: no row has a category, so no tree can be inferred; pass a taxonomy")
        taxonomy, malformed = _infer_taxonomy(distinct, schema, source)
    node_of: dict[Any, str | None] = {}
    unknown: dict[Any, list[int]] = {}
    for key in distinct:
        node_of[key] = None if key in malformed else _lookup(taxonomy, key, schema)
    for position, key in enumerate(categories):
        if key is None:
            report.unlabelled += 1
        elif node_of[key] is None:
            unknown.setdefault(key, []).append(position)
    column = schema.category_column or ",".join(schema.level_columns)
    separator = schema.path_separator if schema.category_column else " > "
    if unknown:
        for key, positions in unknown.items():
            text = _label_text(key, separator)
            report.unknown_labels[text] = report.unknown_labels.get(text, 0) + len(positions)
            examples = report.unknown_label_ids.setdefault(text, [])
            examples.extend(ids[p] for p in positions[:_EXAMPLE_IDS - len(examples)])
        if policy == "error":
            described = ", ".join(
                f"{_label_text(key, separator)!r} ×{len(positions)} ({location_kind} {locations[positions[0]]}, "
                f"id {ids[positions[0]]!r}{': ' + malformed[key] if key in malformed else ''})"
                for key, positions in sorted(unknown.items(), key=lambda item: -len(item[1]))[:10])
            raise CatalogError(
                f"{source}: field {column!r}: {len(unknown)} category label(s) not in the tree, on "
                f"{sum(map(len, unknown.values()))} rows: {described}. Fix them, or pass unknown_labels='skip' "
                "or 'ancestor' (--unknown-labels)")
        for key, positions in unknown.items():
            ancestor = _ancestor(taxonomy, key, schema) if policy == "ancestor" else None
            if ancestor is not None:
                report.mapped_to_ancestor += len(positions)
                node_of_ancestor = ("ancestor", key)
                node_of[node_of_ancestor] = ancestor
                for position in positions:
                    categories[position] = node_of_ancestor
                continue
            why = malformed.get(key, "label not in the tree")
            for position in positions:
                keep[position] = False
                report.dropped_unknown += 1
                report.bad_rows.append(BadRow(source, locations[position], ids[position], column,
                                              f"{why} (unknown_labels={policy!r}): {_label_text(key, separator)!r}",
                                              {schema.id_column: ids[position], column: _label_text(key, separator)},
                                              location_kind))
    node_ids = [None if key is None else node_of[key] for key in categories]
    return taxonomy.encode(node_ids).astype(np.int32), taxonomy


def _write_errors(errors_path, report: CatalogReport) -> None:
    if errors_path is None:
        return
    rows = sorted(report.bad_rows, key=lambda bad: bad.location)
    path = write_atomically(errors_path, "".join(json.dumps(row.to_dict(), ensure_ascii=False) + "\n" for row in rows))
    report.errors_path = str(path)


def _progress(enabled: bool, source: str):
    return progress_bar(desc=f"reading {Path(source).name}", unit=" rows", enabled=enabled, unit_scale=True)
