"""`linnet predict`'s result columns, built a batch at a time from the model's output arrays (no Python per row).

`result_columns(ids, outputs, num_levels, taxonomy)` turns one model call's outputs (``path``, ``depth``,
``node_ids``, ``names``, ``confidences``, ``top_k_*``, ``image_present``) into typed column arrays in the order of
`result_header`; `csv_rows` gives the text cells `linnet predict` writes, and the engines
(`linnet.engines.signature_batches`) turn the same columns into Arrow tables and Spark columns. Confidences are
rounded to the 6 decimals of the CSV cells (``0.158191``) and ``top_k`` scores written with 4, so every output says
the same numbers.

Example:
    >>> columns = result_columns(["p1"], outputs, taxonomy.num_levels, taxonomy)  # doctest: +SKIP
    >>> columns["path"][0], columns["confidence"][0]  # doctest: +SKIP
    ('Apparel > Tops', 0.912345)
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import numpy as np

#: Per-row outputs written by `linnet.serving.predict.predict_catalog`, before the per-level columns.
RESULT_COLUMNS = ("id", "path", "depth", "node_id", "confidence", "full_path", "top_k", "image_present", "error",
                  "image_error")
#: Columns holding whole numbers (``None`` where a row has no value); every ``*confidence`` column holds floats.
INTEGER_COLUMNS = ("depth", "image_present")


def column_kind(column: str) -> str:
    """The type of a result column in typed outputs (Parquet, Spark): ``"long"`` for `INTEGER_COLUMNS`, ``"double"``
    for every ``*confidence`` column, else ``"string"``."""
    if column in INTEGER_COLUMNS:
        return "long"
    return "double" if column.endswith("confidence") else "string"


def result_header(num_levels: int) -> list[str]:
    return list(RESULT_COLUMNS) + [f"level_{level}_{part}" for level in range(1, num_levels + 1)
                                   for part in ("node_id", "name", "confidence")]


def as_python_strings(outputs: Mapping) -> dict[str, np.ndarray]:
    """NumPy outputs with ``bytes`` cells decoded to ``str`` (object arrays)."""
    result = {}
    for name, value in outputs.items():
        array = np.asarray(value)
        if array.dtype.kind in "SO":
            # one pass over a flat list: half the time of np.vectorize, which calls a Python function per cell
            array = np.array([cell.decode("utf-8") if isinstance(cell, bytes) else cell
                              for cell in array.ravel().tolist()], dtype=object).reshape(array.shape)
        result[name] = array
    return result


def rounded(values, places: int) -> np.ndarray:
    """``float(f"{value:.{places}f}")`` for a whole array: the value its text cell says.

    ``rint(value * 10**places)`` is the correctly rounded decimal (ties to even, as ``format``) for float32 model
    outputs, and dividing by ``10**places`` gives the double nearest that decimal, as parsing the cell does.
    """
    values = np.asarray(values, dtype=np.float64)
    return np.rint(values * 10.0**places) / 10.0**places


def fixed(values, places: int) -> np.ndarray:
    """``f"{value:.{places}f}"`` for every value of an array (a str array of the same shape, an object one when every
    value is a probability and ``places`` at most 4: `_decimals`' cells, looked up)."""
    values = np.asarray(values, dtype=np.float64)
    scaled = np.rint(values * 10.0**places)
    if not values.size or not np.isfinite(scaled).all() or np.signbit(scaled).any() or scaled.max() >= 2.0**53:
        return np.strings.mod(f"%.{places}f", values).astype(str) if values.size else values.astype(str)
    if 1 <= places <= _LOOKED_UP_PLACES and scaled.max() <= 10**places:
        return _decimals(places)[scaled.astype(np.int64)]
    whole, part = np.divmod(scaled.astype(np.int64), 10**places)
    return np.strings.add(np.strings.add(whole.astype(str), "."), np.strings.zfill(part.astype(str), places))


#: `fixed` looks the text of a number from 0 to 1 up in a table for up to this many decimals (10,001 cells for 4).
_LOOKED_UP_PLACES = 4


@functools.cache
def _decimals(places: int) -> np.ndarray:
    """The text of every number from 0 to 1 in steps of ``10**-places``, with ``places`` decimals (an object array)."""
    step = 10**places
    return np.array([f"{number // step}.{number % step:0{places}d}" for number in range(step + 1)], dtype=object)


#: Outputs with several values per row (one per level, one per top-k candidate).
PER_ROW_OUTPUTS = ("node_ids", "names", "confidences", "top_k_node_ids", "top_k_scores")


def _per_row(values) -> np.ndarray:
    """A ``[rows, k]`` array of an output given as one: a 2-D array, or a 1-D object array whose cells are the
    rows' sequences (what a stand-in model or a serving client may return)."""
    array = np.asarray(values)
    if array.ndim == 1 and array.dtype == object and array.size:
        array = np.array(array.tolist(), dtype=object)
    return array


def _names(node_ids: np.ndarray, taxonomy) -> np.ndarray:
    """``":" + taxonomy.name(node)`` for every non-empty node id (``""`` for an empty one): an object array, looked up
    by a binary search of the taxonomy's sorted ids (`_name_table`), no Python per id.

    Raises:
        TaxonomyError: a node id the taxonomy does not have (`linnet.taxonomy.Taxonomy.name`'s error).
    """
    ids, names = _name_table(taxonomy)
    node_ids = np.asarray(node_ids, dtype=str)
    places = np.searchsorted(ids, node_ids)
    found = ids[np.minimum(places, len(ids) - 1)] == node_ids
    if not found.all():
        taxonomy.name(node_ids[~found][0])  # raises for the first unknown id
    return names[places]


#: `_name_table`'s tables by taxonomy (the taxonomy kept with them, so an id is never another's): a few per process.
_NAME_TABLES: dict[int, tuple] = {}


def _name_table(taxonomy) -> tuple[np.ndarray, np.ndarray]:
    """The taxonomy's node ids sorted (with ``""``) and ``":" + name`` of each (``""`` for ``""``), built once per
    taxonomy object."""
    entry = _NAME_TABLES.get(id(taxonomy))
    if entry is None or entry[0] is not taxonomy:
        by_id = {node.id: f":{node.name}" for node in taxonomy.nodes}
        by_id[""] = ""
        ids = np.array(sorted(by_id), dtype=str)
        if len(_NAME_TABLES) >= 8:
            _NAME_TABLES.clear()
        entry = _NAME_TABLES[id(taxonomy)] = (taxonomy, ids, np.array([by_id[node] for node in ids.tolist()], dtype=object))
    return entry[1], entry[2]


def top_k_cells(node_ids: np.ndarray, scores: np.ndarray, taxonomy=None) -> np.ndarray:
    """The ``top_k`` cell of each row: ``node:score:name`` per candidate (the name when ``taxonomy`` is given), joined
    by ``|``; an object array of ``str``, built a column of candidates at a time (object arrays add their ``str``s in
    C: faster than NumPy's fixed-width strings, which pay the widest cell on every add, or a join per row)."""
    node_ids = np.asarray(node_ids, dtype=str).astype(object)
    candidates = node_ids + ":" + fixed(scores, 4).astype(object)
    if taxonomy is not None:
        candidates = candidates + _names(node_ids, taxonomy)
    if not candidates.shape[1]:
        return np.full(len(candidates), "", dtype=object)
    cells = candidates[:, 0]
    for column in range(1, candidates.shape[1]):
        cells = cells + "|" + candidates[:, column]
    return cells


def result_columns(ids: Sequence[str], outputs: Mapping[str, np.ndarray], num_levels: int, taxonomy=None,
                   image_problems: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Typed columns of `result_header`, one entry per id, from one batch of model outputs (strings decoded or not).

    Strings are object arrays of ``str``; ``depth`` int64; confidences float64 rounded to the CSV's 6 decimals
    (``confidence`` is NaN where ``depth`` is 0); ``image_present`` int64, or ``None`` cells when the model reads
    no image; ``error`` is empty and ``image_error`` is ``image_problems``' entry (or empty).
    """
    count = len(ids)
    outputs = {**outputs, **{name: _per_row(outputs[name]) for name in PER_ROW_OUTPUTS}}
    depth = np.asarray(outputs["depth"], dtype=np.int64)
    text = as_python_strings({name: outputs[name] for name in ("path", "full_path", "node_ids", "names",
                                                                "top_k_node_ids")})
    node_ids = np.asarray(text["node_ids"], dtype=str)
    names = text["names"]
    confidences = rounded(outputs["confidences"], 6)
    rows = np.arange(count)
    at_depth = np.maximum(depth - 1, 0)
    reached = depth > 0
    empty = np.full(count, "", dtype=object)
    columns = {
        "id": np.array(list(ids), dtype=object),
        "path": text["path"].astype(object),
        "depth": depth,
        "node_id": np.where(reached, node_ids[rows, at_depth], "").astype(object),
        "confidence": np.where(reached, confidences[rows, at_depth], np.nan),
        "full_path": text["full_path"].astype(object),
        "top_k": top_k_cells(text["top_k_node_ids"], outputs["top_k_scores"], taxonomy),
        "image_present": (np.asarray(outputs["image_present"], dtype=np.int64) if "image_present" in outputs
                          else np.full(count, None, dtype=object)),
        "error": empty,
        "image_error": np.array(list(image_problems), dtype=object) if image_problems else empty,
    }
    for level in range(num_levels):
        columns[f"level_{level + 1}_node_id"] = node_ids[:, level].astype(object)
        columns[f"level_{level + 1}_name"] = names[:, level].astype(object)
        columns[f"level_{level + 1}_confidence"] = confidences[:, level]
    return columns


def csv_rows(columns: Mapping[str, np.ndarray], num_levels: int) -> list[list]:
    """`linnet predict`'s CSV rows for `result_columns`: confidences written with 6 decimals, an absent value empty."""
    cells = []
    for name in result_header(num_levels):
        values = columns[name]
        if name.endswith("confidence"):
            values = np.where(np.isnan(values), "", fixed(np.nan_to_num(values), 6))
        elif name == "image_present" and values.dtype == object:
            values = np.where(values == None, "", values)  # elementwise: the cells without a value
        cells.append(values.tolist())
    return [list(row) for row in zip(*cells)]


__all__ = ["INTEGER_COLUMNS", "RESULT_COLUMNS", "as_python_strings", "column_kind", "csv_rows", "fixed", "result_columns",
           "result_header", "rounded", "top_k_cells"]
