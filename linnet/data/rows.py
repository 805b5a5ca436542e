"""One catalog row turned into a model's raw inputs: the product id, the text fields, the image bytes.

Training's `linnet.data.prepare_catalog` and batch prediction (`linnet.serving.predict`) both read rows
with these rules, so a product gets the same id and inputs in both.

Example:
    >>> from linnet.data.rows import row_id
    >>> row_id({"id": 12.0}, "id")
    '12'
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from linnet.data.attributes import render_attributes
from linnet.data.images import (
    UNUSABLE_IMAGE_KINDS,
    read_image_file,
    resolve_image_source,
)
from linnet.data.schema import ATTRIBUTES_FIELD


class RowProblem(Exception):
    """A catalog row that cannot be used: the field at fault (None: the whole row) and what is wrong."""

    def __init__(self, field: str | None, problem: str):
        super().__init__(problem)
        self.field = field
        self.problem = problem


def is_empty(value) -> bool:
    """A missing cell: None, a NaN that a reader left for an empty field, or text that is only whitespace."""
    return value is None or (isinstance(value, float) and math.isnan(value)) or (
        isinstance(value, str) and not value.strip()
    )


def row_id(record: Mapping, column: str) -> str:
    """The product id of a record as text: a string stripped, an integer (or a float that a reader gave for
    an integer column) without ``.0``.

    Raises:
        RowProblem: for an empty id, or one that is neither text nor an integer (``True``, ``1.5``, a list).
    """
    value = record.get(column)
    if is_empty(value):
        raise RowProblem(column, "the id is empty")
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    raise RowProblem(column, f"an id must be a string or an integer, got {type(value).__name__} {value!r}")


def row_ids_of_array(values) -> tuple[np.ndarray, np.ndarray]:
    """`row_id` over an Arrow array of text or integers (`linnet.data.readers.jsonl_ids`), vectorised: ``(keep,
    ids)``, ``keep`` a bool mask of the values that are ids (not null, not only whitespace), ``ids`` an object array
    of those ids as text (strings stripped as `str.strip` does, integers in decimal)."""
    ids = row_ids_of_column(values)
    keep = np.not_equal(ids, None)
    return keep, ids[keep]


def row_ids_of_column(values) -> np.ndarray:
    """`row_id` of every cell of an Arrow array of text or integers (or all nulls), vectorised: an object array of the
    ids as text (strings stripped as `str.strip` does, integers in decimal), ``None`` where `row_id` finds the id
    empty.

    Raises:
        TypeError: the array holds neither text nor integers (`row_id`'s rules, record by record, apply).
    """
    import pyarrow as pa  # lazy: only the column readers need it
    import pyarrow.compute as pc

    if pa.types.is_null(values.type):
        return np.full(len(values), None, dtype=object)
    if pa.types.is_integer(values.type):
        ids = values.cast(pa.string())
    elif _is_text(values.type):
        ids = pc.utf8_trim_whitespace(values)  # Arrow's whitespace is str.isspace's (every code point compared)
    else:
        raise TypeError(f"ids must be text or integers, got Arrow type {values.type}")
    ids = ids.to_numpy(zero_copy_only=False)
    ids[empty_cells(values)] = None
    return ids


def empty_cells(values) -> np.ndarray:
    """`is_empty` of every cell of an Arrow array, vectorised: a bool mask of the nulls and of the text that is only
    whitespace (as `str.isspace`, Arrow's ``utf8_is_space`` agreeing on every code point)."""
    import pyarrow.compute as pc  # lazy: as in row_ids_of_column

    empty = values.is_null()
    if _is_text(values.type):
        blank = pc.or_(pc.equal(pc.utf8_length(values), 0), pc.utf8_is_space(values))
        empty = pc.or_(empty, pc.fill_null(blank, True))
    return empty.to_numpy(zero_copy_only=False)


def row_texts_of_column(values, column: str) -> tuple[np.ndarray, dict[int, RowProblem]]:
    """`row_text` of every cell of an Arrow array of text, integers or nulls, vectorised: the texts (an object array,
    ``""`` for an empty cell) and the `RowProblem` of each cell that is not text, by place (an integer: `row_text`'s
    problem, built for those cells only)."""
    import pyarrow as pa  # lazy: as in row_ids_of_column

    empty = empty_cells(values)
    if _is_text(values.type):
        texts = values.to_numpy(zero_copy_only=False)
        texts[empty] = ""
        return texts, {}
    if not (pa.types.is_null(values.type) or pa.types.is_integer(values.type)):
        raise TypeError(f"text cells must be text, integers or nulls, got Arrow type {values.type}")
    places = np.flatnonzero(~empty)
    cells = values.take(pa.array(places)).to_pylist() if len(places) else []
    problems = {}
    for place, value in zip(places.tolist(), cells):
        try:
            row_text(value, column)
        except RowProblem as problem:
            problems[place] = problem
    return np.full(len(values), "", dtype=object), problems


def _is_text(kind) -> bool:
    import pyarrow as pa  # lazy: as in row_ids_of_column

    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def row_text(value, column: str) -> str:
    """A text cell as the model reads it: ``""`` when empty.

    Raises:
        RowProblem: when the cell holds something other than text (a number, a list).
    """
    if is_empty(value):
        return ""
    if isinstance(value, str):
        return value
    raise RowProblem(column, f"must be text, got {type(value).__name__} {value!r}")


def row_inputs(record: Mapping, schema, text_fields: Sequence[str], with_image: bool, image_root) -> dict:
    """Raw model inputs of one catalog record (the same text rules as `linnet.data.prepare_catalog`).

    With an image, ``image_error`` says why the image is unusable (one of
    `linnet.data.images.UNUSABLE_IMAGE_KINDS`), or is ``""``.
    """
    inputs = {}
    for field in text_fields:
        if field == ATTRIBUTES_FIELD:
            inputs[field] = render_attributes(record, schema.attribute_columns)
            continue
        inputs[field] = row_text(record.get(field), field)
    if with_image:
        raw = record.get(schema.image_column) if schema.image_column else None
        inputs["image_bytes"], inputs["image_error"] = image_input(raw, schema, image_root)
    return inputs


def image_input(raw, schema, image_root) -> tuple[bytes, str]:
    """The image bytes of a catalog cell (`read_image`, confined unless the schema allows images outside the root)
    and why it is unusable (one of `linnet.data.images.UNUSABLE_IMAGE_KINDS`, or ``""``)."""
    image, kind = read_image(raw, image_root, confine=not getattr(schema, "allow_images_outside_root", False))
    return image, kind if kind in UNUSABLE_IMAGE_KINDS else ""


def read_image(raw, image_root, *, confine: bool = True) -> tuple[bytes, str]:
    """Encoded image bytes of a catalog cell (path, fetched URL, data/base64 bytes) and the
    `linnet.data.images.resolve_image_source` kind; ``b""`` when absent or unusable (confined to
    ``image_root``, magic bytes and size checked)."""
    if is_empty(raw):
        return b"", "none"
    source, kind = resolve_image_source(raw, image_root or ".", confine=confine)
    if kind == "bytes":
        return source, kind
    if kind == "file":
        return read_image_file(source)
    return b"", kind
