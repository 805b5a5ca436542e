"""Batch prediction from a run directory or an export: `load_predictor` and the resumable `predict_catalog` job.

Both paths run the same raw-input graph (`linnet.serving.export.RawInputFunctions`): texts as strings, images as
encoded bytes decoded in TF ops. Reading rows (ids, texts, attributes, image files) is the only Python per
row; the model runs on whole batches.

Example:
    >>> predictor = load_predictor("exports/fashion/1")  # doctest: +SKIP
    >>> predictor.predict_frame(pandas.DataFrame({"id": ["1"], "title": ["red shirt"]}))["path"]  # doctest: +SKIP
    array(['Apparel > Tops'], dtype=object)
    >>> predict_catalog(predictor, "catalog.csv", predictor.schema, "predictions.csv", "errors.csv")  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from linnet.data.rows import RowProblem, row_id, row_inputs
from linnet.errors import CatalogError, ConfigError

#: Per-row outputs written by `predict_catalog`, before the per-level columns.
RESULT_COLUMNS = ("id", "path", "depth", "node_id", "confidence", "full_path", "top_k", "image_present", "error")
ERROR_COLUMNS = ("file", "location", "id", "field", "problem")


def columns_of(rows: Sequence[dict], names: Sequence[str]) -> dict[str, np.ndarray]:
    return {name: np.array([row[name] for row in rows], dtype=object) for name in names}


def _text(value):
    return value.decode("utf-8") if isinstance(value, bytes) else value


def as_python_strings(outputs: Mapping) -> dict[str, np.ndarray]:
    """NumPy outputs with ``bytes`` cells decoded to ``str`` (object arrays)."""
    result = {}
    for name, value in outputs.items():
        array = np.asarray(value)
        if array.dtype.kind in "SO":
            array = np.vectorize(_text, otypes=[object])(array) if array.size else array.astype(object)
        result[name] = array
    return result


# ----------------------------------------------------------------------------------------- predictor
class Predictor:
    """Raw-input predictions of one model (run directory or export).

    Attributes:
        taxonomy: the model's `linnet.taxonomy.Taxonomy`.
        schema: the `linnet.data.CatalogSchema` the model was trained with (None when unknown).
        text_fields: raw text inputs in order; ``image_size``: decoded image side (None: no image input).
        source: where it was loaded from.
        decoding: the descent (``"path"`` or ``"greedy"``, `linnet.inference.classifier.HierarchicalClassifier`).
    """

    def __init__(self, function, taxonomy, schema, text_fields, image_size, source: str, batch_size: int = 256,
                 owner=None, decoding: str = "path"):
        self._function = function
        self.decoding = decoding
        self._owner = owner  # the loaded SavedModel or classifier: its variables must outlive the function
        self.taxonomy = taxonomy
        self.schema = schema
        self.text_fields = list(text_fields)
        self.image_size = image_size
        self.source = source
        self.batch_size = int(batch_size)

    @property
    def input_names(self) -> list[str]:
        return self.text_fields + (["image_bytes"] if self.image_size else [])

    def predict_raw(self, inputs: Mapping[str, Sequence]) -> dict[str, np.ndarray]:
        """Outputs (classifier outputs, ``level_k`` scores, ``image_present``) for raw input columns, batched."""
        import tensorflow as tf

        count = len(next(iter(inputs.values())))
        parts: dict[str, list] = {}
        for start in range(0, count, self.batch_size):
            batch = {name: tf.constant([value if isinstance(value, bytes) else str(value).encode("utf-8")
                                        for value in inputs[name][start:start + self.batch_size]], tf.string)
                     for name in self.input_names}
            for name, value in self._function(batch).items():
                parts.setdefault(name, []).append(value.numpy())
        return as_python_strings({name: np.concatenate(values) for name, values in parts.items()})

    def predict_frame(self, frame, schema=None) -> dict[str, np.ndarray]:
        """Predict the rows of a pandas DataFrame of raw catalog columns (as the catalog file holds them).

        Raises:
            CatalogError: a row with a text cell that is not text (naming the row and field).
        """
        schema = schema or self.schema
        if schema is None:
            raise ConfigError(f"{self.source}: no schema saved with the model; pass schema=")
        image_root = schema.image_root or "."
        rows = []
        for position, record in enumerate(frame.to_dict("records")):
            try:
                rows.append(row_inputs(record, schema, self.text_fields, bool(self.image_size), image_root))
            except RowProblem as problem:
                raise CatalogError(f"row {position} field {problem.field!r}: {problem.problem}") from None
        if not rows:
            return {}
        return self.predict_raw(columns_of(rows, self.input_names))


def load_predictor(path, batch_size: int = 256) -> Predictor:
    """A `Predictor` for a run directory (``model.keras``) or an export (``saved_model.pb``).

    Raises:
        ConfigError: the path is neither.
    """
    path = Path(path)
    if (path / "saved_model.pb").is_file():
        return _predictor_from_export(path, batch_size)
    if (path / "model.keras").is_file():
        return _predictor_from_run(path, batch_size)
    raise ConfigError(f"{path}: expected a run directory (with model.keras) or an export version directory "
                      "(with saved_model.pb, e.g. exports/<name>/<version>)")


def _predictor_from_run(path: Path, batch_size: int) -> Predictor:
    import tensorflow as tf

    from linnet.serving.export import RawInputFunctions, model_image_size, raw_text_fields
    from linnet.inference.classifier import HierarchicalClassifier
    from linnet.training.run_directory import load_run

    run = load_run(path)
    classifier = HierarchicalClassifier(run.model, run.taxonomy)
    calibration = path / "calibration.json"
    if calibration.is_file():  # `linnet calibrate` writes it here by convention
        classifier.load_calibration(calibration)
    functions = RawInputFunctions(classifier, raw_text_fields(run.model, run.schema), model_image_size(run.model))
    function = tf.function(functions.predict_with_scores, input_signature=[functions.input_signature], autograph=False)
    return Predictor(function, run.taxonomy, run.schema, functions.text_fields, functions.image_size, str(path),
                     batch_size, owner=functions)


def _predictor_from_export(path: Path, batch_size: int) -> Predictor:

    from linnet.data import CatalogSchema
    from linnet.serving.export import (
        INPUTS_ASSET,
        PREDICT_WITH_SCORES,
        TAXONOMY_ASSET,
        load_saved_model,
    )
    from linnet.taxonomy import Taxonomy

    loaded = load_saved_model(path)
    taxonomy = Taxonomy.load(path / "assets" / TAXONOMY_ASSET)
    inputs = json.loads((path / "assets" / INPUTS_ASSET).read_text(encoding="utf-8"))
    schema = CatalogSchema.from_dict(inputs["schema"]) if inputs.get("schema") else None
    function = getattr(loaded, PREDICT_WITH_SCORES, None)
    if function is None:  # an export without the helper function: the classifier outputs only
        signature = loaded.signatures["serving_default"]
        function = lambda batch: signature(**batch)
    return Predictor(function, taxonomy, schema, inputs["text_fields"], inputs.get("image_size"), str(path),
                     batch_size, owner=loaded, decoding=inputs.get("decoding", "path"))


# ------------------------------------------------------------------------------------- catalog job
def result_header(num_levels: int) -> list[str]:
    return list(RESULT_COLUMNS) + [f"level_{level}_{part}" for level in range(1, num_levels + 1)
                                   for part in ("node_id", "name", "confidence")]


def result_rows(ids: Sequence[str], outputs: Mapping[str, np.ndarray], num_levels: int) -> list[list]:
    rows = []
    for row, product_id in enumerate(ids):
        depth = int(outputs["depth"][row])
        node_ids, names, confidences = outputs["node_ids"][row], outputs["names"][row], outputs["confidences"][row]
        top_k = "|".join(f"{node}:{score:.4f}" for node, score in zip(outputs["top_k_node_ids"][row],
                                                                      outputs["top_k_scores"][row]))
        present = outputs["image_present"][row] if "image_present" in outputs else ""
        cells = [product_id, outputs["path"][row], depth, node_ids[depth - 1] if depth else "",
                 f"{confidences[depth - 1]:.6f}" if depth else "", outputs["full_path"][row], top_k,
                 "" if present == "" else int(present), ""]
        for level in range(num_levels):
            cells += [node_ids[level], names[level], f"{confidences[level]:.6f}"]
        rows.append(cells)
    return rows


def _completed(path: Path) -> tuple[set[str], int]:
    """Ids already in a partial output file, dropping a torn last line (a crash mid-write)."""
    text = path.read_text(encoding="utf-8")
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
        path.write_text(text, encoding="utf-8")
    rows = list(csv.reader(text.splitlines()))
    return {row[0] for row in rows[1:] if row}, max(len(rows) - 1, 0)


def _reported_locations(path: Path) -> set[str]:
    with open(path, newline="", encoding="utf-8") as handle:
        return {row[2] for row in list(csv.reader(handle))[1:] if len(row) > 2}


def predict_catalog(model, catalog_path, schema, out_csv, errors_csv, batch_size: int = 256, resume: bool = True,
                    progress: bool = True, format: str | None = None) -> dict:
    """Predict every row of a catalog file into a CSV, keeping going past bad rows.

    Every input row with a readable id gets one output line: the prediction, or an empty prediction with
    the problem in the ``error`` column; ``errors_csv`` lists each bad row with file, line, id, field and
    problem (rows without a readable id appear only there). Work goes to ``<out>.partial`` and
    ``<errors>.partial`` batch by batch and both are renamed into place at the end, so a finished file is
    always complete; rerunning after an interruption skips the ids already in the partial file.

    Args:
        model: a `Predictor` (or anything with ``predict_raw``, ``input_names``, ``taxonomy``, e.g. a
            `linnet.serving.client.ServingClient` with a ``taxonomy`` attribute).
        catalog_path: CSV/TSV/JSONL/Parquet catalog.
        schema: the catalog's `linnet.data.CatalogSchema`.
        out_csv, errors_csv: output files.
        batch_size: rows per model call.
        resume: continue from ``<out>.partial`` when it exists (else start over).
        progress: show a tqdm bar.
        format: override the catalog format sniffed from the file name.

    Returns:
        ``{"rows": predicted, "errors": bad rows, "resumed": rows skipped, "out": path, "errors_file": path}``.
    """
    from tqdm.auto import tqdm

    from linnet.data import CatalogReader

    out_csv, errors_csv = Path(out_csv), Path(errors_csv)
    partial_out, partial_errors = out_csv.with_name(out_csv.name + ".partial"), errors_csv.with_name(
        errors_csv.name + ".partial")
    num_levels = model.taxonomy.num_levels
    text_fields = list(getattr(model, "text_fields", schema.feature_text_fields))
    with_image = "image_bytes" in model.input_names
    reader = CatalogReader(catalog_path, format=format)
    reader.require([schema.id_column])
    image_root = schema.image_root or reader.path.parent

    done: set[str] = set()
    reported: set[str] = set()
    resumed = 0
    if resume and partial_out.is_file() and partial_errors.is_file():
        done, resumed = _completed(partial_out)
        _completed(partial_errors)  # drops a torn last line
        reported = _reported_locations(partial_errors)
    else:
        for path in (partial_out, partial_errors):
            path.unlink(missing_ok=True)
    new_out, new_errors = not partial_out.exists(), not partial_errors.exists()
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    errors_csv.parent.mkdir(parents=True, exist_ok=True)
    counts = {"rows": 0, "errors": 0}
    with open(partial_out, "a", newline="", encoding="utf-8") as out_handle, \
            open(partial_errors, "a", newline="", encoding="utf-8") as error_handle:
        results = csv.writer(out_handle, lineterminator="\n")
        errors = csv.writer(error_handle, lineterminator="\n")
        if new_out:
            results.writerow(result_header(num_levels))
        if new_errors:
            errors.writerow(["id", *[name for name in ERROR_COLUMNS if name != "id"]])
        seen: set[str] = set(done)
        # Lines wait here until the next flush so both files always hold the same rows, in catalog order.
        pending: list[tuple[str, dict | None, str]] = []  # (id, raw inputs or None, error)
        pending_errors: list[list] = []

        def report(location, product_id, field, problem):
            pending_errors.append([product_id or "", str(reader.path), f"{reader.location_kind} {location}",
                                   field or "", problem])
            if product_id is not None:
                pending.append((product_id, None, problem))
            counts["errors"] += 1

        def flush():
            good = [inputs for _, inputs, _ in pending if inputs is not None]
            outputs = as_python_strings(model.predict_raw(columns_of(good, model.input_names))) if good else {}
            predicted = iter(result_rows([product_id for product_id, inputs, _ in pending if inputs is not None],
                                         outputs, num_levels) if good else [])
            for product_id, inputs, problem in pending:
                results.writerow(next(predicted) if inputs is not None else
                                 [product_id, "", "", "", "", "", "", "", problem] + [""] * (3 * num_levels))
            errors.writerows(pending_errors)
            out_handle.flush()
            error_handle.flush()
            counts["rows"] += len(good)
            pending.clear()
            pending_errors.clear()

        bar = tqdm(desc="predict", unit="row", disable=not progress)
        try:
            for chunk in reader:
                for bad in chunk.bad_rows:
                    if f"{reader.location_kind} {bad.location}" not in reported:
                        report(bad.location, bad.product_id, bad.field, bad.problem)
                for location, record in zip(chunk.locations, chunk.records):
                    product_id = None
                    try:
                        product_id = row_id(record, schema.id_column)
                        if product_id in seen:
                            if product_id in done:
                                continue
                            raise RowProblem(schema.id_column, f"id {product_id!r} repeated")
                        seen.add(product_id)
                        inputs = row_inputs(record, schema, text_fields, with_image, image_root)
                    except RowProblem as problem:
                        if f"{reader.location_kind} {location}" in reported:
                            continue
                        if problem.field == schema.id_column and product_id is not None:
                            report(location, None, problem.field, problem.problem)  # keep the first row's output
                        else:
                            report(location, product_id, problem.field, problem.problem)
                        continue
                    pending.append((product_id, inputs, ""))
                    if len(pending) >= batch_size:
                        flush()
                bar.update(len(chunk.records) + len(chunk.bad_rows))
            flush()
        finally:
            bar.close()
    os.replace(partial_errors, errors_csv)
    os.replace(partial_out, out_csv)
    return {**counts, "resumed": resumed, "out": str(out_csv), "errors_file": str(errors_csv)}
