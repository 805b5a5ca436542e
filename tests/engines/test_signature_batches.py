"""The engines' core without an engine: a batch whose model call fails on one row, halved until that row stands
alone, gives every other row its prediction columns and that row an empty prediction and an error, in order."""

from __future__ import annotations

import numpy as np

from linnet.engines.signature_batches import (
    LoadedExport,
    RawRow,
    RowError,
    prediction_batch,
    prediction_columns,
    with_nulls,
)


def prediction_records(columns: dict[str, np.ndarray]) -> list[dict]:
    """One dict per row of prediction columns, absent numbers ``None`` (what an engine's JSON output holds)."""
    names = list(columns)
    values = [with_nulls(columns[name]).tolist() for name in names]
    return [dict(zip(names, row)) for row in zip(*values)]


class FailingExport(LoadedExport):
    """`LoadedExport` whose model answers every title but ``"poison"`` (a graph error for the whole call)."""

    def __init__(self, taxonomy):
        self.taxonomy = taxonomy
        self.calls = 0

    def call(self, signature, inputs):
        self.calls += 1
        titles = list(inputs["title"])
        if "poison" in titles:
            raise ValueError("InvalidArgumentError: bad bytes\nmore detail")
        leaf = self.taxonomy.leaves()[0]
        levels = self.taxonomy.num_levels
        path = " > ".join(self.taxonomy.path(leaf))
        count = len(titles)
        node_ids = np.array([[leaf.encode()] + [b""] * (levels - 1)] * count, dtype=object)
        return {"path": np.array([path.encode()] * count, dtype=object), "full_path": np.array([path.encode()] * count,
                dtype=object), "depth": np.array([1 if title else 0 for title in titles], np.int32),
                "node_ids": node_ids, "names": node_ids.copy(),
                "confidences": np.tile(np.float32([0.5, 0.25, 0.125])[:levels], (count, 1)),
                "top_k_node_ids": np.array([[leaf.encode()]] * count, dtype=object),
                "top_k_scores": np.array([[0.5]] * count, np.float32)}


def test_a_failing_row_gets_an_error_and_the_others_their_columns(tiny_taxonomy):
    export = FailingExport(tiny_taxonomy)
    titles = ["shirt", "jeans", "poison", "", "boots"]
    rows = [RawRow(f"p{index}", {"title": title}, "a.jsonl", index + 1, f"line {index + 1}")
            for index, title in enumerate(titles)]
    outcome = export.run("serving_default", rows)
    assert outcome.answered.tolist() == [0, 1, 3, 4] and list(outcome.failed) == [2]
    columns, errors = prediction_batch(rows, outcome, tiny_taxonomy)
    assert list(columns) == prediction_columns(tiny_taxonomy.num_levels)
    assert columns["id"].tolist() == ["p0", "p1", "p2", "p3", "p4"]
    assert [error.id for error in errors] == ["p2"] and errors[0].location == "line 3"
    assert errors[0].problem == "the model failed on this row: ValueError: InvalidArgumentError: bad bytes"
    records = prediction_records(columns)
    assert records[2]["error"] == errors[0].problem and records[2]["path"] == ""
    assert records[2]["depth"] is None and records[2]["confidence"] is None
    assert records[3]["depth"] == 0 and records[3]["confidence"] is None  # no level reached: no confidence
    assert records[0]["depth"] == 1 and records[0]["confidence"] == 0.5
    leaf = tiny_taxonomy.leaves()[0]
    assert records[4]["top_k"] == f"{leaf}:0.5000:{tiny_taxonomy.name(leaf)}"
    assert with_nulls(columns["confidence"]).tolist() == [0.5, 0.5, None, None, 0.5]


def test_a_batch_the_model_answers_keeps_numpy_columns(tiny_taxonomy):
    export = FailingExport(tiny_taxonomy)
    rows = [RawRow(f"p{index}", {"title": "shirt"}) for index in range(4)]
    columns, errors = prediction_batch(rows, export.run("serving_default", rows), tiny_taxonomy)
    assert export.calls == 1 and not errors
    assert columns["depth"].dtype == np.int64 and columns["confidence"].dtype == np.float64


def test_table_batch_gives_what_catalog_rows_give(tmp_path):
    """The column-wise rules (`table_batch`, on a JSON Lines chunk Arrow read) give the rows and errors the record-wise
    ones (`catalog_rows`, on the records the line reader read) give: ids stripped or empty, empty and whitespace
    texts, a title that is not text, attributes, and every kind of image cell (good, not an image, missing, outside
    the image root, none)."""
    import json

    from linnet.data import CatalogReader, CatalogSchema
    from linnet.engines.signature_batches import (
        RowBatch,
        catalog_rows,
        split_rows,
        table_batch,
    )

    images = tmp_path / "images"
    images.mkdir()
    (images / "good.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(32))
    (images / "text.jpg").write_bytes(b"not an image at all")
    (tmp_path / "outside.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(32))
    cells = [" p1 ", "", "   ", None, "p\u00e92", "\u3000", "p3\t", "p4"]
    titles = ["Red shirt", "", "  ", None, "caf\u00e9", "\u2003", "  padded  "]
    image_cells = ["good.png", "text.jpg", "gone.png", "../outside.png", "", None, " "]
    records = [{"id": cells[n % 8], "title": titles[(n + 1) % 7], "brand": titles[(n + 3) % 7],
                "colour": ["navy", "", None, "size: M; fit: slim"][n % 4], "image": image_cells[(n + 2) % 7]}
               for n in range(49)]
    for record in records[::5]:
        del record["brand"]
    schema = CatalogSchema(text_columns=["title", "brand"], attribute_columns=["colour"], image_column="image",
                           image_root=str(images))
    text_fields = ["title", "brand", "attributes"]
    seen = {}
    for name, lines in (("text.jsonl", records), ("numbers.jsonl", [
            {"id": n, "title": n if n % 3 else None, "brand": "acme"} for n in range(-2, 9)])):
        path = tmp_path / name
        path.write_text("".join(json.dumps(record) + "\n" for record in lines), encoding="utf-8")
        columns = ["id", "title", "brand", "colour", "image"]
        (chunk,) = CatalogReader(path, table_columns=columns)
        assert chunk.table is not None, name
        (line_chunk,) = CatalogReader(path)
        for with_image in (True, False):
            expected = list(catalog_rows(zip(line_chunk.locations, line_chunk.records), schema, text_fields,
                                         with_image, file=str(path)))
            rows, errors = table_batch(chunk.table, chunk.locations, schema, text_fields, with_image, file=str(path))
            expected_rows, expected_errors = split_rows(expected)
            assert errors == expected_errors, (name, with_image)
            assert_same_batch(rows, RowBatch.of(expected_rows))
            seen[name, with_image] = expected
    # the cases were there: rows without an id, texts that are not text, and each kind of image problem
    assert {item.problem for item in seen["text.jsonl", True] if isinstance(item, RowError)} == {"the id is empty"}
    assert {item.image_problem for item in seen["text.jsonl", True] if isinstance(item, RawRow)} == {
        None, "not an image (its first bytes are no JPEG, PNG, GIF, BMP or WebP)", "image file not found or unreadable",
        "image path outside the image root (--allow-images-outside-root to allow)"}
    assert any(item.inputs["image_bytes"] for item in seen["text.jsonl", True] if isinstance(item, RawRow))
    assert {item.problem for item in seen["numbers.jsonl", False] if isinstance(item, RowError)} == {
        f"must be text, got int {n}" for n in range(-2, 9) if n % 3}


def assert_same_batch(got, expected):
    assert list(got.inputs) == list(expected.inputs)
    for name in ("ids", "files", "lines", "locations", "image_problems"):
        assert getattr(got, name).tolist() == getattr(expected, name).tolist(), name
    for name in got.inputs:
        assert got.inputs[name].tolist() == expected.inputs[name].tolist(), name
