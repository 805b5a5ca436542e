"""The columnar result builder against the cell-by-cell formatting `linnet predict` has always written."""

from __future__ import annotations

import numpy as np
import pytest

from linnet.serving.result_columns import (
    csv_rows,
    fixed,
    result_columns,
    result_header,
    rounded,
)


def reference_rows(ids, outputs, num_levels, taxonomy=None, image_problems=None):
    """`linnet predict`'s rows built one cell at a time with Python's own formatting (the former ``result_rows``)."""
    text = {name: np.vectorize(lambda v: v.decode() if isinstance(v, bytes) else v, otypes=[object])(value)
            if np.asarray(value).dtype.kind in "SO" else value for name, value in outputs.items()}
    rows = []
    for row, product_id in enumerate(ids):
        depth = int(text["depth"][row])
        node_ids, names, confidences = text["node_ids"][row], text["names"][row], text["confidences"][row]
        top_k = "|".join(f"{node}:{score:.4f}" + (f":{taxonomy.name(node)}" if taxonomy and node else "")
                         for node, score in zip(text["top_k_node_ids"][row], text["top_k_scores"][row]))
        present = str(int(text["image_present"][row])) if "image_present" in text else ""
        cells = [product_id, text["path"][row], str(depth), node_ids[depth - 1] if depth else "",
                 f"{confidences[depth - 1]:.6f}" if depth else "", text["full_path"][row], top_k, present, "",
                 image_problems[row] if image_problems else ""]
        for level in range(num_levels):
            cells += [node_ids[level], names[level], f"{confidences[level]:.6f}"]
        rows.append(cells)
    return rows


@pytest.fixture(scope="module")
def outputs(tiny_taxonomy):
    """Model-like outputs for 64 rows of the tiny tree: bytes strings, float32 scores with exact decimal ties."""
    rng = np.random.default_rng(7)
    leaves = [node for node in tiny_taxonomy.leaves()]
    count, levels = 64, tiny_taxonomy.num_levels
    paths = [tiny_taxonomy.path(leaves[index % len(leaves)]) for index in range(count)]
    depth = np.array([0 if index % 9 == 0 else len(path) for index, path in enumerate(paths)], np.int32)
    node_ids = np.array([[(" > ".join(path[:level + 1]) if level < depth[index] else "").encode()
                          for level in range(levels)] for index, path in enumerate(paths)], dtype=object)
    names = np.array([[(path[level] if level < depth[index] else "").encode() for level in range(levels)]
                      for index, path in enumerate(paths)], dtype=object)
    confidences = rng.random((count, levels)).astype(np.float32)
    confidences[:16] = rng.integers(0, 2**10, (16, levels)) / 2**10  # ties at the 6th decimal (e.g. 1/128)
    scores = rng.random((count, 4)).astype(np.float32)
    scores[:16] = rng.integers(0, 2**8, (16, 4)) / 2**8  # ties at the 4th decimal (1/32 = 0.03125)
    top_k = np.array([[leaves[(index + k) % len(leaves)].encode() if k < 3 else b"" for k in range(4)]
                      for index in range(count)], dtype=object)
    full_path = np.array([" > ".join(path).encode() for path in paths], dtype=object)
    return {"depth": depth, "node_ids": node_ids, "names": names, "confidences": confidences,
            "top_k_node_ids": top_k, "top_k_scores": scores, "path": full_path, "full_path": full_path,
            "image_present": rng.integers(0, 2, count).astype(np.int32)}


@pytest.mark.parametrize("with_taxonomy", [True, False])
@pytest.mark.parametrize("with_image", [True, False])
def test_csv_rows_are_the_cells_python_formats(outputs, tiny_taxonomy, with_taxonomy, with_image):
    given = outputs if with_image else {name: value for name, value in outputs.items() if name != "image_present"}
    taxonomy = tiny_taxonomy if with_taxonomy else None
    ids = [f"p{index}" for index in range(len(outputs["depth"]))]
    problems = ["missing_file" if index % 5 == 0 else "" for index in range(len(ids))]
    columns = result_columns(ids, given, tiny_taxonomy.num_levels, taxonomy, problems)
    assert list(columns) == result_header(tiny_taxonomy.num_levels)
    got = [[str(cell) for cell in row] for row in csv_rows(columns, tiny_taxonomy.num_levels)]
    assert got == reference_rows(ids, given, tiny_taxonomy.num_levels, taxonomy, problems)


def test_typed_columns_hold_the_numbers_the_cells_say(outputs, tiny_taxonomy):
    ids = [f"p{index}" for index in range(len(outputs["depth"]))]
    columns = result_columns(ids, outputs, tiny_taxonomy.num_levels, tiny_taxonomy)
    rows = reference_rows(ids, outputs, tiny_taxonomy.num_levels, tiny_taxonomy)
    header = result_header(tiny_taxonomy.num_levels)
    for name in ("confidence", "level_1_confidence", "level_3_confidence"):
        cells = [row[header.index(name)] for row in rows]
        want = np.array([float(cell) if cell else np.nan for cell in cells])
        np.testing.assert_array_equal(columns[name], want)  # exactly: the same doubles as parsing the cells
    assert columns["depth"].dtype == np.int64 and np.isnan(columns["confidence"][columns["depth"] == 0]).all()


def test_rounding_and_fixed_match_format_on_float32_ties_and_odd_values():
    values = np.concatenate([np.arange(0, 2**12) / 2**12, np.random.default_rng(1).random(5000)]).astype(np.float32)
    np.testing.assert_array_equal(rounded(values, 6), [float(f"{value:.6f}") for value in values])
    assert fixed(values, 4).tolist() == [f"{value:.4f}" for value in values]
    odd = np.array([-0.0, -1e-9, 1.5, np.nan, np.inf, 123456.7], np.float64)  # the fallback path
    assert fixed(odd, 6).tolist() == [f"{value:.6f}" for value in odd]


def test_outputs_given_as_rows_of_lists_give_the_same_cells(outputs, tiny_taxonomy):
    """A stand-in model or a serving client may give per-row outputs as a 1-D object array of lists."""
    as_lists = dict(outputs)
    for name in ("node_ids", "names", "confidences", "top_k_node_ids", "top_k_scores"):
        column = np.empty(len(outputs[name]), dtype=object)
        column[:] = [list(row) for row in outputs[name]]
        as_lists[name] = column
    ids = [f"p{index}" for index in range(len(outputs["depth"]))]
    levels = tiny_taxonomy.num_levels
    got = csv_rows(result_columns(ids, as_lists, levels, tiny_taxonomy), levels)
    assert got == csv_rows(result_columns(ids, outputs, levels, tiny_taxonomy), levels)
    assert [[str(cell) for cell in row] for row in got] == reference_rows(ids, outputs, levels, tiny_taxonomy)


def test_fixed_looks_up_probabilities_and_formats_other_numbers():
    """Numbers from 0 to 1 with up to 4 decimals come from the looked-up table; others (above 1, 6 decimals) are
    formatted: the same text either way."""
    values = np.array([0.0, 0.99995, 0.999949, 1.0, 1.00004, 1.5, 2.25, 12.34565], np.float64)
    for places in (1, 2, 4, 6):
        assert fixed(values, places).tolist() == [f"{value:.{places}f}" for value in values], places


def test_top_k_names_an_unknown_node_as_the_taxonomy_does(tiny_taxonomy):
    from linnet.errors import TaxonomyError
    from linnet.serving.result_columns import top_k_cells

    leaf = tiny_taxonomy.leaves()[0]
    cells = top_k_cells(np.array([[leaf, ""]], dtype=object), np.array([[0.25, 0.0]]), tiny_taxonomy)
    assert cells.tolist() == [f"{leaf}:0.2500:{tiny_taxonomy.name(leaf)}|:0.0000"]
    with pytest.raises(TaxonomyError, match="no-such-node"):
        top_k_cells(np.array([[leaf, "no-such-node"]], dtype=object), np.array([[0.5, 0.5]]), tiny_taxonomy)
