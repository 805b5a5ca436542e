"""Readers (CSV/TSV/JSONL/Parquet, chunked) and bad input: clear errors, bad rows kept in an errors file."""

import gzip
import json

import numpy as np
import pytest

from linnet.data import CatalogReader, CatalogSchema, prepare_catalog
from linnet.errors import CatalogError

from .conftest import CATALOG_ROWS, write_csv

HEADER = ["id", "title", "colour", "category", "image"]
SCHEMA = CatalogSchema(text_columns=["title"], attribute_columns=["colour"], category_column="category")


def _records():
    return [dict(zip(HEADER, row)) for row in CATALOG_ROWS]


def _write_jsonl(path, records):
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


@pytest.fixture
def same_catalog_four_ways(tmp_path):
    import pandas as pd

    frame = pd.DataFrame(_records())
    paths = {
        "csv": write_csv(tmp_path / "c.csv", HEADER, CATALOG_ROWS),
        "tsv": write_csv(tmp_path / "c.tsv", HEADER, CATALOG_ROWS, delimiter="\t"),
        "jsonl": _write_jsonl(tmp_path / "c.jsonl", _records()),
        "parquet": tmp_path / "c.parquet",
        "csv.gz": tmp_path / "c.csv.gz",
    }
    frame.to_parquet(paths["parquet"], row_group_size=2)
    paths["csv.gz"].write_bytes(gzip.compress(paths["csv"].read_bytes()))
    return paths


def test_every_format_reads_the_same_catalog_in_small_chunks(same_catalog_four_ways):
    prepared = {kind: prepare_catalog(path, SCHEMA, chunk_rows=2) for kind, path in same_catalog_four_ways.items()}
    reference = prepared["csv"]
    assert list(reference.ids) == [row[0] for row in CATALOG_ROWS]
    assert reference.texts["attributes"][0] == "colour: red"
    for kind, catalog in prepared.items():
        assert list(catalog.ids) == list(reference.ids), kind
        assert list(catalog.texts["title"]) == list(reference.texts["title"]), kind
        np.testing.assert_array_equal(catalog.labels, reference.labels, err_msg=kind)
        assert list(catalog.split) == list(reference.split), kind


def test_reader_streams_chunks_of_the_requested_size(same_catalog_four_ways):
    for kind, path in same_catalog_four_ways.items():
        sizes = [len(chunk.records) for chunk in CatalogReader(path, chunk_rows=4)]
        assert sizes == [4, 2], kind
        locations = [loc for chunk in CatalogReader(path, chunk_rows=4) for loc in chunk.locations]
        assert locations == (list(range(1, 7)) if kind in ("parquet", "jsonl") else list(range(2, 8))), kind


def test_wrong_column_name_is_named_with_a_suggestion(tmp_path):
    path = write_csv(tmp_path / "c.csv", HEADER, CATALOG_ROWS)
    with pytest.raises(CatalogError, match=r"c\.csv.*'titel'.*did you mean 'title'"):
        prepare_catalog(path, CatalogSchema(text_columns=["titel"], category_column="category"))


def test_empty_file_and_header_only(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(CatalogError, match="empty.csv: the file is empty"):
        prepare_catalog(tmp_path / "empty.csv", SCHEMA)
    write_csv(tmp_path / "header.csv", HEADER, [])
    with pytest.raises(CatalogError, match="header.csv: no usable rows"):
        prepare_catalog(tmp_path / "header.csv", SCHEMA)


def _messy_csv(tmp_path):
    lines = [
        ",".join(HEADER),
        '1,Red boots,red,Shoes > Boots,',
        '2,"Broken quote,blue,Shoes > Boots,',           # swallows the next line
        '3,Black boots,black,Shoes > Boots,',
        '4,Too,many,fields,here,x',
        '1,Repeated id,red,Shoes > Boots,',
        ',No id,red,Shoes > Boots,',
        '7,Good bag,brown,Bags > Totes,',
    ]
    data = ("\n".join(lines) + "\n").encode("utf-8")
    data += "8,Caf\xe9 latin-1,red,Bags > Totes,\n".encode("latin-1")
    data += b"9,Last good,red,Bags > Totes,\n"
    path = tmp_path / "messy.csv"
    path.write_bytes(data)
    return path


def test_bad_rows_raise_naming_file_line_and_field(tmp_path):
    path = _messy_csv(tmp_path)
    with pytest.raises(CatalogError, match=r"messy\.csv: line 3: .*unbalanced quote"):
        prepare_catalog(path, SCHEMA)


def test_bad_rows_are_skipped_and_written_to_the_errors_file(tmp_path):
    path = _messy_csv(tmp_path)
    errors = tmp_path / "out" / "errors.jsonl"
    catalog = prepare_catalog(path, SCHEMA, errors_path=errors)
    assert list(catalog.ids) == ["1", "3", "7", "9"]  # line 4, swallowed by the stray quote, is read again
    written = [json.loads(line) for line in errors.read_text().splitlines()]
    problems = {(row["line"], row["field"]): row["problem"] for row in written}
    assert "unbalanced quote" in problems[(3, None)]
    assert "has 6 fields" in problems[(5, None)]
    assert "repeated (first at line 2)" in problems[(6, "id")]
    assert "id is empty" in problems[(7, "id")]
    assert "not valid UTF-8" in problems[(9, "title")]
    assert {row["file"] for row in written} == {str(path)}
    assert written[2]["id"] == "1" and written[2]["record"]["title"] == "Repeated id"  # nothing lost
    assert written[0]["record"] == '2,"Broken quote,blue,Shoes > Boots,'
    assert catalog.report.rows_read == 9 and catalog.report.rows_kept == 4
    assert len(catalog.report.bad_rows) == 5 and "5 bad rows" in catalog.report.summary()


def test_jsonl_non_string_title_and_invalid_json(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"id": 1, "title": "ok", "category": "A > B"}\n'
                    '{"id": 2, "title": 42, "category": "A > B"}\n'
                    '{"id": 3, "title": "broken", \n'
                    '[1, 2]\n'
                    '{"id": 5, "title": null, "category": ["A", "C"]}\n')
    schema = CatalogSchema(text_columns=["title"], category_column="category")
    with pytest.raises(CatalogError, match=r"line 2 \(id '2'\): field 'title': must be text, got int 42"):
        prepare_catalog(path, schema)
    catalog = prepare_catalog(path, schema, bad_rows="skip")
    assert list(catalog.ids) == ["1", "5"] and catalog.texts["title"][1] == ""
    assert catalog.taxonomy.classes(2) == ["A > B", "A > C"]
    messages = [row.message() for row in catalog.report.bad_rows]
    assert any("line 3" in message and "not valid JSON" in message for message in messages)
    assert any("line 4" in message and "JSON object" in message for message in messages)


def test_parquet_bad_value_names_row(tmp_path):
    import pandas as pd

    frame = pd.DataFrame({"id": [10, 11], "title": ["a", "b"], "category": ["X > Y", "X > Z"], "price": ["1.5", "cheap"]})
    frame.to_parquet(tmp_path / "c.parquet")
    schema = CatalogSchema(text_columns=["title"], category_column="category", value_column="price")
    with pytest.raises(CatalogError, match=r"c\.parquet: row 2 \(id '11'\): field 'price': must be a number"):
        prepare_catalog(tmp_path / "c.parquet", schema)


def test_json_array_file_is_named_as_such(tmp_path):
    (tmp_path / "c.json").write_text('[{"id": 1, "title": "a"}]')
    with pytest.raises(CatalogError, match=r"c\.json: a JSON array, not JSON Lines"):
        prepare_catalog(tmp_path / "c.json", CatalogSchema())


def test_max_rows_reads_only_the_start(tmp_path):
    path = write_csv(tmp_path / "c.csv", HEADER, CATALOG_ROWS)
    assert len(prepare_catalog(path, SCHEMA, max_rows=3)) == 3


def test_attributes_from_columns_json_and_key_value_text(tmp_path):
    rows = [["1", "Boots", "red", '{"size": 42, "material": "leather"}', "fit: slim; care: wipe"],
            ["2", "Bag", "", "", "not pairs"]]
    path = write_csv(tmp_path / "a.csv", ["id", "title", "colour", "specs", "notes"], rows)
    catalog = prepare_catalog(path, CatalogSchema(attribute_columns=["colour", "specs", "notes"]))
    assert list(catalog.texts["attributes"]) == [
        "colour: red; size: 42; material: leather; fit: slim; care: wipe", "notes: not pairs"]
    jsonl = _write_jsonl(tmp_path / "a.jsonl", [{"id": 1, "title": "Boots", "specs": {"size": 42, "tags": ["a", "b"]}}])
    catalog = prepare_catalog(jsonl, CatalogSchema(attribute_columns=["specs"]))
    assert catalog.texts["attributes"][0] == "size: 42; tags: a, b"


def test_prepare_in_chunks_matches_the_whole_catalog(tmp_path):
    from linnet.data.prepare import prepare_catalog_chunks

    rows = [*CATALOG_ROWS, ("3", "Repeated across chunks", "red", "Shoes > Boots", ""),
            ("8", "Unknown", "red", "Garden > Hoses", "")]
    path = write_csv(tmp_path / "c.csv", HEADER, rows)
    whole = prepare_catalog(path, SCHEMA, errors_path=tmp_path / "whole.jsonl")
    chunks = list(prepare_catalog_chunks(path, SCHEMA, chunk_rows=3, errors_path=tmp_path / "chunks.jsonl"))
    assert [len(chunk) for chunk in chunks] == [3, 3, 1]
    assert all(chunk.taxonomy == whole.taxonomy for chunk in chunks)
    assert [i for chunk in chunks for i in chunk.ids] == list(whole.ids)
    np.testing.assert_array_equal(np.concatenate([chunk.labels for chunk in chunks]), whole.labels)
    assert [s for chunk in chunks for s in chunk.split] == list(whole.split)
    report = chunks[0].report
    assert report.rows_read == 8 and report.rows_kept == 7 and report.splits == whole.report.splits
    assert (tmp_path / "chunks.jsonl").read_text() == (tmp_path / "whole.jsonl").read_text().replace("whole", "chunks")
    assert "repeated (first at line 4)" in (tmp_path / "chunks.jsonl").read_text()


def test_a_line_range_reads_a_json_lines_part_without_parsing_the_other_lines(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"id": "a"}\n{not json\n\n{"id": "b"}\n{"id": "c"}\n{also not json\n', encoding="utf-8")
    chunks = list(CatalogReader(path, known_columns=["id"], line_range=(3, 5)))
    assert [chunk.locations for chunk in chunks] == [[4]]  # lines 3-4: a blank one and b; both broken lines unread
    assert [record["id"] for chunk in chunks for record in chunk.records] == ["b"]
    assert not any(chunk.bad_rows for chunk in chunks)
    whole = list(CatalogReader(path, known_columns=["id"]))
    assert sum(len(chunk.bad_rows) for chunk in whole) == 2


def _lines_read(path, **options) -> tuple[list, list]:
    """``(location, id, title)`` of each record and ``(location, field, problem)`` of each bad row a reader gives."""
    records, bad = [], []
    for chunk in CatalogReader(path, **options):
        rows = chunk.table.to_pylist() if chunk.table is not None else chunk.records
        records += [(line, row.get("id"), row.get("title")) for line, row in zip(chunk.locations, rows)]
        bad += [(row.location, row.field, row.problem) for row in chunk.bad_rows]
    return records, bad


def test_json_lines_chunks_arrow_reads_hold_what_the_line_reader_reads(tmp_path):
    """A JSON Lines file read a chunk at a time by Arrow (``table_columns``) gives the records and bad rows the line
    reader gives, at the same lines, for every chunk size and line range: a chunk Arrow declines (a bad line, a blank
    line, a title of mixed types, an escaped surrogate, a repeated key) is read line by line."""
    lines = [json.dumps({"id": 1, "title": "Red shirt", "price": 1.5}),
             json.dumps({"id": 2, "title": "  ", "price": 2}),
             json.dumps({"id": 3}),
             json.dumps({"id": 4, "title": None, "extra": [1, 2]}),
             json.dumps({"id": 5, "title": "caf\u00e9 \u2003 \U0001f600"}),
             "{not json",
             json.dumps({"id": 7, "title": "Boots"}),
             "",
             json.dumps({"id": 9, "title": 12}),
             json.dumps({"id": 10, "title": "Sandals"}),
             '{"id": 11, "title": "\\ud800 broken"}',
             '{"id": 12, "title": "a", "title": "b"}',
             json.dumps({"id": 13, "title": "Tote bag"}),
             json.dumps({"id": 14, "title": "Jeans"})]
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8")  # the last line without a newline
    arrow_chunks = 0
    for chunk_rows in (2, 3, 100):
        for line_range in (None, (3, 9), (5, None), (13, 15)):
            expected = _lines_read(path, chunk_rows=chunk_rows, line_range=line_range)
            got = _lines_read(path, chunk_rows=chunk_rows, line_range=line_range, table_columns=["id", "title"])
            assert got == expected, (chunk_rows, line_range)
            arrow_chunks += sum(chunk.table is not None for chunk in CatalogReader(
                path, chunk_rows=chunk_rows, line_range=line_range, table_columns=["id", "title"]))
    assert arrow_chunks >= 6  # Arrow read the chunks it could (and the line reader the others)
    assert [line for line, _, _ in _lines_read(path)[0]] == [1, 2, 3, 4, 5, 7, 9, 10, 12, 13, 14]


def test_a_json_lines_file_arrow_numbers_otherwise_is_read_line_by_line(tmp_path):
    """A carriage return (a line break for the text reader) or a byte-order mark: no chunk goes to Arrow."""
    for name, data in (("crlf.jsonl", b'{"id": 1, "title": "a"}\r\n{"id": 2, "title": "b"}\r\n'),
                       ("bom.jsonl", b'\xef\xbb\xbf{"id": 1, "title": "a"}\n{"id": 2, "title": "b"}\n')):
        path = tmp_path / name
        path.write_bytes(data)
        chunks = list(CatalogReader(path, table_columns=["id", "title"]))
        assert all(chunk.table is None for chunk in chunks)
        assert _lines_read(path, table_columns=["id", "title"])[0] == [(1, 1, "a"), (2, 2, "b")]


def test_json_lines_lines_longer_than_a_read_are_read_by_arrow_whole(tmp_path, monkeypatch):
    """A line longer than one read of the file (an inline image, a long description) is carried into the next read."""
    from linnet.data import readers

    monkeypatch.setattr(readers, "_BLOCK_BYTES", 64)
    path = tmp_path / "long.jsonl"
    lines = [json.dumps({"id": 1, "title": "x" * 300}), json.dumps({"id": 2, "title": "short"}),
             json.dumps({"id": 3, "title": "y" * 200})]
    path.write_text("\n".join(lines), encoding="utf-8")
    for line_range in (None, (2, None), (1, 3)):
        got = _lines_read(path, line_range=line_range, table_columns=["id", "title"])
        assert got == _lines_read(path, line_range=line_range), line_range
    assert [line for line, _, _ in _lines_read(path, table_columns=["id", "title"])[0]] == [1, 2, 3]
    assert all(chunk.table is not None for chunk in CatalogReader(path, table_columns=["id", "title"]))


@pytest.mark.parametrize("data", [
    b'{"id": "a", "title": "x"}\n{"id": "b", "title": "y"} {"id": "c", "title": "z"}\n\n{"id": "d", "title": "w"}\n',
    b'{"id": "a",\n"title": "x"}\n{"id": "b"}{"id": "c"}\n{"id": "d", "title": "w"}\n',
])
def test_json_lines_rows_arrow_would_number_otherwise_are_the_line_readers_bad_rows(tmp_path, data):
    """Two records on one line with a blank line elsewhere, or a record over two lines: Arrow reads as many rows as
    the chunk has lines, but not the lines' records, so the chunk goes to the line reader and its bad rows stay bad."""
    path = tmp_path / "c.jsonl"
    path.write_bytes(data)
    expected = _lines_read(path)
    assert expected[1]  # the line reader's bad rows
    assert _lines_read(path, table_columns=["id", "title"]) == expected


def test_a_json_lines_line_python_cannot_read_is_one_bad_row(tmp_path):
    """An integer of more digits than Python converts, or lists nested deeper than its recursion limit (and deeper
    than Arrow's JSON parser survives: it is not given the line): that line is a bad row naming its line, the other
    records are read (not the whole file an error), with and without Arrow's chunks."""
    path = tmp_path / "c.jsonl"
    path.write_text('{"id": "a", "title": "x"}\n{"id": "b", "n": ' + "9" * 5000 + '}\n'
                    '{"id": "c", "x": ' + "[" * 30000 + "]" * 30000 + '}\n{"id": "d", "title": "y"}\n')
    records, bad = _lines_read(path)
    assert [(line, record_id) for line, record_id, _ in records] == [(1, "a"), (4, "d")]
    assert [line for line, _, _ in bad] == [2, 3]
    assert all("not readable JSON" in problem for _, _, problem in bad)
    assert _lines_read(path, table_columns=["id", "title"]) == (records, bad)
