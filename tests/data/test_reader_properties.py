"""Property tests of the catalog readers and the batch job (issue 23): nothing is lost, nothing comes out twice.

For any records a CSV writer produces (quotes, delimiters, line breaks inside fields, bad bytes), rows read
plus bad rows equals the records written; for any lines at all (stray quotes included), the records and bad
rows of the reader cover every non-blank line exactly once; and `predict_catalog` writes every id once.
Examples per test: ``LINNET_PROPERTY_EXAMPLES`` (default 40, bounded for CI).
"""

from __future__ import annotations

import csv
import io
import json
import os

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linnet.data import CatalogSchema
from linnet.data.readers import CatalogReader

EXAMPLES = int(os.environ.get("LINNET_PROPERTY_EXAMPLES", "40"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HEADER = ["id", "title", "category"]
BAD_BYTES = "\udcff"  # surrogate escape: written as the byte 0xFF, which is not UTF-8

# text with the characters that break CSV: quotes, both delimiters, every kind of line break, NUL, non-ASCII
cell = st.text(alphabet=st.sampled_from(list('ab ,;\t"\'\r\n\x00é🙂') + [BAD_BYTES]), max_size=12)
records = st.lists(st.tuples(cell, cell), min_size=0, max_size=12)


def _write(path, rows, delimiter=","):
    with open(path, "w", newline="", encoding="utf-8", errors="surrogateescape") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(HEADER)
        for number, (title, category) in enumerate(rows):
            writer.writerow([f"r{number}", title, category])
    return path


def _read(path, **options):
    records, bad = [], []
    for chunk in CatalogReader(path, **options):
        last_lines = chunk.last_lines or chunk.locations
        records += [(record, first, last) for record, first, last in zip(chunk.records, chunk.locations, last_lines)]
        bad += chunk.bad_rows
    return records, bad


@SETTINGS
@given(rows=records, delimiter=st.sampled_from([",", "\t"]), chunk_rows=st.integers(1, 5))
def test_rows_read_plus_bad_rows_equals_records_written(tmp_path_factory, rows, delimiter, chunk_rows):
    path = _write(tmp_path_factory.mktemp("csv") / ("c.csv" if delimiter == "," else "c.tsv"), rows, delimiter)
    read, bad = _read(path, chunk_rows=chunk_rows)
    assert len(read) + len(bad) == len(rows)
    undecodable = {f"r{n}" for n, fields in enumerate(rows) if any(BAD_BYTES in value for value in fields)}
    assert {record["id"] for record, _, _ in read} == {f"r{n}" for n in range(len(rows))} - undecodable
    assert len(bad) == len(undecodable)
    for record, _, _ in read:  # the values come back as written
        title, category = rows[int(record["id"][1:])]
        assert (record["title"], record["category"]) == (title, category)


def _physical_lines(data: bytes) -> list[str]:
    """Lines as the reader sees them: split at \\n, \\r\\n and a lone \\r (universal newlines, untranslated)."""
    return list(io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", errors="surrogateescape", newline=""))


line = st.text(alphabet=st.sampled_from(list('ab ,"\t\x00é') + [BAD_BYTES]), max_size=16)


@SETTINGS
@given(lines=st.lists(st.one_of(line, line.map(lambda text: f"{text}\r")), max_size=15), chunk_rows=st.integers(1, 4))
def test_every_non_blank_line_is_one_record_or_one_bad_row(tmp_path_factory, lines, chunk_rows):
    # hand-made lines: stray quotes anywhere, wrong field counts, bad bytes, \r and \n line ends
    data = ("id,title,category\n" + "".join(text + "\n" for text in lines)).encode("utf-8", "surrogateescape")
    path = tmp_path_factory.mktemp("lines") / "c.csv"
    path.write_bytes(data)
    read, bad = _read(path, chunk_rows=chunk_rows)
    covered: list[int] = []
    for _, first, last in read:
        covered += range(first, last + 1)
    for row in bad:
        covered += range(row.location, (row.last_line or row.location) + 1)
    assert len(covered) == len(set(covered)), "a line was read twice"
    physical = _physical_lines(data)
    non_blank = {number for number, text in enumerate(physical, start=1) if number > 1 and text.strip()}
    assert non_blank <= set(covered), f"lines {sorted(non_blank - set(covered))} were lost"
    assert set(covered) <= set(range(2, len(physical) + 1))


@SETTINGS
@given(values=st.lists(st.one_of(st.text(max_size=8), st.integers(), st.none(), st.lists(st.integers(), max_size=2)),
                       max_size=10), broken=st.lists(st.text(max_size=10), max_size=3))
def test_jsonl_rows_read_plus_bad_rows_equals_lines_written(tmp_path_factory, values, broken):
    lines = [json.dumps({"id": f"r{n}", "title": value}) for n, value in enumerate(values)]
    lines += [text.replace("\n", " ").replace("\r", " ") for text in broken]  # not JSON objects, mostly
    lines = [text for text in lines if text.strip()]
    path = tmp_path_factory.mktemp("jsonl") / "c.jsonl"
    path.write_text("".join(text + "\n" for text in lines), encoding="utf-8")
    if not any(text.lstrip().startswith("{") for text in lines):
        return  # no object at all: the reader refuses the file (tested in test_readers)
    try:
        read, bad = _read(path)
    except Exception as error:  # noqa: BLE001  only the documented refusal is allowed
        from linnet.errors import CatalogError

        assert isinstance(error, CatalogError)
        return
    assert len(read) + len(bad) == len(lines)


# ------------------------------------------------------------------------------ the batch job: every id once
class EchoModel:
    """A stand-in for a model (no TensorFlow): one level, every product predicted as the root."""

    def __init__(self):
        from linnet.taxonomy import Taxonomy

        self.taxonomy = Taxonomy.from_paths(["A > B"])
        self.text_fields = ["title"]
        self.input_names = ["title"]

    def predict_raw(self, inputs):
        count = len(inputs["title"])
        column = np.empty(count, dtype=object)
        column[:] = [["A", "A > B"]] * count
        return {"depth": np.full(count, 1), "node_ids": column, "names": column,
                "confidences": np.full((count, 2), 0.5), "top_k_node_ids": np.full((count, 1), "A", dtype=object),
                "top_k_scores": np.full((count, 1), 0.5), "path": np.full(count, "A", dtype=object),
                "full_path": np.full(count, "A > B", dtype=object)}


def _predict(path, tmp, batch_size=3):
    from linnet.serving.predict import predict_catalog

    schema = CatalogSchema(text_columns=["title"], category_column="category")
    summary = predict_catalog(EchoModel(), path, schema, tmp / "out.csv", tmp / "errors.csv", batch_size=batch_size,
                              progress=False)
    with open(tmp / "out.csv", newline="", encoding="utf-8") as handle:
        out_ids = [row["id"] for row in csv.DictReader(handle)]
    errors = []
    if summary["errors_file"] is not None:  # no bad row, no errors file (issue 26)
        with open(summary["errors_file"], newline="", encoding="utf-8") as handle:
            errors = list(csv.DictReader(handle))
    else:
        assert not (tmp / "errors.csv").exists() and summary["errors"] == 0
    return summary, out_ids, errors


@SETTINGS
@given(rows=records, repeat=st.booleans(), batch_size=st.integers(1, 4))
def test_every_id_of_a_batch_job_comes_out_once(tmp_path_factory, rows, repeat, batch_size):
    tmp = tmp_path_factory.mktemp("predict")
    path = _write(tmp / "c.csv", rows + ([rows[0]] if repeat and rows else []))
    read, bad = _read(path)
    _, out_ids, errors = _predict(path, tmp, batch_size)
    assert len(out_ids) == len(set(out_ids)), "an id came out twice"
    assert set(out_ids) == {record["id"] for record, _, _ in read}
    id_less = [row for row in errors if not row["id"]]
    assert len(out_ids) + len(id_less) == len(read) + len(bad)


@SETTINGS
@given(lines=st.lists(line, max_size=12))
def test_a_batch_job_over_broken_lines_accounts_for_every_record(tmp_path_factory, lines):
    tmp = tmp_path_factory.mktemp("predict_lines")
    path = tmp / "c.csv"
    path.write_bytes(("id,title,category\n" + "".join(f"{text}\n" for text in lines)).encode("utf-8", "surrogateescape"))
    read, bad = _read(path)
    _, out_ids, errors = _predict(path, tmp)  # predict_catalog itself refuses to finish when a record is missing
    assert len(out_ids) == len(set(out_ids))
    assert len(out_ids) + sum(1 for row in errors if not row["id"]) == len(read) + len(bad)
