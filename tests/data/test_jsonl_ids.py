"""`jsonl_ids` + `row_ids_of_array` (Arrow, ids only) give the rows and ids that `CatalogReader` + `row_id` give,
or None where only the record-by-record reader numbers and checks the rows the same way."""

from __future__ import annotations

import json

import numpy as np
import pytest

from linnet.data.readers import CatalogReader, jsonl_ids
from linnet.data.rows import RowProblem, row_id, row_ids_of_array


def _by_records(path):
    lines, ids = [], []
    for chunk in CatalogReader(path, chunk_rows=3):
        for line, record in zip(chunk.locations, chunk.records):
            try:
                ids.append(row_id(record, "id"))
            except RowProblem:
                continue
            lines.append(line)
    return lines, ids


def _by_arrow(path):
    found = jsonl_ids(path, "id")
    if found is None:
        return None
    lines, values = found
    keep, ids = row_ids_of_array(values)
    return lines[keep].tolist(), ids.tolist()


@pytest.mark.parametrize("ids", [
    ["a", "  b ", "\u00a0c\u2003", "", "   ", None, "dé", "a"],   # text: stripped, empty and missing left out
    [1, 22, None, -3, 9007199254740993],                          # integers, one beyond a double's precision
])  # every record also holds NaN, which Python's JSON reads and Arrow skips with the field
def test_arrow_ids_are_the_record_readers(tmp_path, ids):
    path = tmp_path / "c.jsonl"
    records = [({"id": value} if value is not None else {}) | {"title": f"t{n}", "tags": ["x", n], "score": float("nan")}
               for n, value in enumerate(ids)]
    path.write_text("".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records), encoding="utf-8")
    assert _by_arrow(path) == _by_records(path)
    assert len(_by_arrow(path)[1]) >= 3


@pytest.mark.parametrize("content", [
    b'{"id": "a"}\n\n{"id": "b"}\n',                 # an empty line: Arrow would number the rows otherwise
    b'{"id": "a"}\r\n{"id": "b"}\r\n',               # carriage returns
    b'{"id": "a", "title": "\xff"}\n',               # not UTF-8 (the record reader reports a bad row)
    b'{"id": "a", "title": "\\udcff"}\n',            # an escaped surrogate (the same)
    b'{"id": "a"}\n[1, 2]\n',                        # a record that is not an object
    b'{"id": "a"}\n{"id": 2}\n',                     # text and integer ids
    b'{"id": 1.0}\n',                                # a float id (Python reads 1.0, 1e20 otherwise than Arrow)
    b'{"id": "a", "id": "b"}\n',                     # a repeated key
    # two records on one line and a blank line: as many rows as lines for Arrow, none of them the file's lines
    b'{"id": "a"}\n{"id": "b"} {"id": "c"}\n\n{"id": "d"}\n',
    b'{"id": "a",\n"title": "x"}\n{"id": "b"}{"id": "c"}\n',  # a record over two lines, two run together
    b'{"id": "a", "x": ' + b"[" * 30000 + b"]" * 30000 + b'}\n',  # nested deeper than Arrow's parser survives
])
def test_files_only_the_record_reader_reads_alike_give_none(tmp_path, content):
    path = tmp_path / "c.jsonl"
    path.write_bytes(content)
    assert jsonl_ids(path, "id") is None


def test_a_file_without_a_final_newline_and_a_gzip_file(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_bytes(b'{"id": "a"}\n{"id": "b"}')
    assert _by_arrow(path) == _by_records(path) == ([1, 2], ["a", "b"])
    assert jsonl_ids(tmp_path / "c.jsonl.gz", "id") is None


def test_row_ids_of_array_refuses_other_types():
    pyarrow = pytest.importorskip("pyarrow")
    with pytest.raises(TypeError, match="text or integers"):
        row_ids_of_array(pyarrow.array([True, False]))
    keep, ids = row_ids_of_array(pyarrow.array([None, None], pyarrow.string()))
    assert keep.tolist() == [False, False] and ids.size == 0 and isinstance(keep, np.ndarray)


@pytest.mark.parametrize("content, by_arrow", [
    (b'{"b": 1, "a": 2}\n{"a": 1, "c": {"x": 1}, "d": null}\n{"e": [1], "b": 3}\n', True),
    (b'{"b": 1}\n{not json\n{"a": "x", "c": 2}\n', False),                                    # a bad line
    (b'{"b": 1}\n\n{"a": 1}\n{"a": "x", "z": 1}\n', False),                                   # empty line, mixed types
    (b'{"b": 1, "t": "\\udcff"}\n{"a": 1}\n', False),                                          # an undecodable row
])
def test_json_lines_columns_are_the_same_by_arrow_or_record_by_record(tmp_path, monkeypatch, content, by_arrow):
    from linnet.data import readers

    path = tmp_path / "c.jsonl"
    path.write_bytes(content)
    assert (readers._jsonl_columns_by_arrow(path, 3) is not None) == by_arrow  # which reader named the columns
    columns = CatalogReader(path, chunk_rows=3).columns
    monkeypatch.setattr(readers, "_jsonl_columns_by_arrow", lambda *args: None)
    assert columns == CatalogReader(path, chunk_rows=3).columns


def test_json_lines_columns_come_from_arrow_for_a_clean_file(tmp_path):
    from linnet.data.readers import _jsonl_columns_by_arrow

    path = tmp_path / "c.jsonl"
    path.write_bytes(b'{"b": 1, "a": 2}\n{"a": 1, "c": 3}\n{"late": 1}\n')
    assert _jsonl_columns_by_arrow(path, 2) == ["b", "a", "c"]  # the first two lines only, as the record reader
    assert _jsonl_columns_by_arrow(path, 5) == ["b", "a", "c", "late"]
