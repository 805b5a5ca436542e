"""Batch prediction from a run directory or an export: `load_predictor` and the resumable `predict_catalog` job.

Both paths run the same raw-input graph (`linnet.serving.export.RawInputFunctions`): texts as strings, images as
encoded bytes decoded in TF ops. Reading rows (ids, texts, attributes, image files) is the only Python per
row; the model runs on whole batches. Which path is which is `linnet.serving.artifacts`'s rule. A run's
predictor also scores a prepared catalog through its tf.data pipeline (`Predictor.predict_prepared`, what
`linnet.evaluation.evaluate` uses for a run directory).

Example:
    >>> predictor = load_predictor("exports/fashion/1")  # doctest: +SKIP
    >>> predictor.predict_frame(pandas.DataFrame({"id": ["1"], "title": ["red shirt"]}))["path"]  # doctest: +SKIP
    array(['Apparel > Tops'], dtype=object)
    >>> predict_catalog(predictor, "catalog.csv", predictor.schema, "predictions.csv", "errors.csv")  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from linnet.atomic_files import write_text_atomically
from linnet.data import CatalogReader, make_dataset
from linnet.data.rows import RowProblem, row_id, row_inputs
from linnet.data.schema import check_input_columns
from linnet.errors import CatalogError, ConfigError
from linnet.inference.calibration_file import DEFAULT_DECODING, check_decoding
from linnet.progress import progress_bar
from linnet.serving.artifacts import RUN, RUN_CALIBRATION_FILE, Artifact, load_artifact
from linnet.serving.export import (
    IMAGE_BYTES_INPUT,
    PREDICT_WITH_SCORES,
    TAXONOMY_ASSET,
    RawInputFunctions,
    model_input_names,
)
from linnet.serving.result_columns import (
    as_python_strings,
    csv_rows,
    result_columns,
    result_header,
)

#: ``image_error`` of a row whose image bytes were read but did not decode (corrupt, truncated, too many pixels).
UNDECODABLE_IMAGE = "undecodable"
ERROR_COLUMNS = ("file", "location", "id", "field", "problem")


def columns_of(rows: Sequence[dict], names: Sequence[str]) -> dict[str, np.ndarray]:
    return {name: np.array([row[name] for row in rows], dtype=object) for name in names}


# ----------------------------------------------------------------------------------------- predictor
class Predictor:
    """Raw-input predictions of one model (run directory or export).

    Attributes:
        taxonomy: the model's `linnet.taxonomy.Taxonomy`.
        schema: the `linnet.data.CatalogSchema` the model was trained with (None when unknown).
        text_fields: raw text inputs in order; ``image_size``: decoded image side (None: no image input).
        source: where it was loaded from.
        decoding: the descent (``"path"`` or ``"greedy"``, `linnet.inference.classifier.HierarchicalClassifier`).
        classifier: a run directory's `HierarchicalClassifier` (None for an export), which `predict_prepared`
            runs on a prepared catalog.
    """

    def __init__(self, function, taxonomy, schema, text_fields, image_size, source: str, batch_size: int = 256,
                 owner=None, decoding: str = DEFAULT_DECODING, classifier=None):
        self._function = function
        self.decoding = decoding
        self._owner = owner  # the loaded SavedModel or classifier: its variables must outlive the function
        self.classifier = classifier
        self.taxonomy = taxonomy
        self.schema = schema
        self.text_fields = list(text_fields)
        self.image_size = image_size
        self.source = source
        self.batch_size = int(batch_size)

    @property
    def input_names(self) -> list[str]:
        return self.text_fields + ([IMAGE_BYTES_INPUT] if self.image_size else [])

    def predict_raw(self, inputs: Mapping[str, Sequence]) -> dict[str, np.ndarray]:
        """Outputs (classifier outputs, ``level_k`` scores, ``image_present``) for raw input columns, batched."""
        import tensorflow as tf  # lazy: predict_catalog behind a TF Serving client runs without TensorFlow

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

    def predict_prepared(self, catalog, batch_size: int | None = None, progress: bool = True,
                         decoding: str | None = None) -> dict[str, np.ndarray]:
        """A run's predictions for a prepared catalog, fed by the catalog's own tf.data pipeline.

        Reading the prepared catalog (instead of the raw rows) is how evaluation scores a run directory:
        the descent and thresholds are this predictor's classifier's (``decoding``: another descent, with a
        classifier of its own without thresholds; None: this predictor's). ``batch_size``: products per model
        call (None: the predictor's own, which bounds the memory an image CNN's activations take).

        Returns:
            ``{"full_class_ids", "confidences", "node_ids", "level_1", ...}`` as NumPy arrays, one row per product.

        Raises:
            ConfigError: an export (its SavedModel takes raw inputs only: use `predict_frame`).
        """
        from linnet.model import (
            names,  # lazy: linnet.model loads Keras (see predict_raw)
        )

        if self.classifier is None:
            raise ConfigError(f"{self.source}: an export predicts raw rows (predict_frame), not a prepared catalog")
        classifier = self.classifier
        if decoding is not None and decoding != self.decoding:
            classifier = type(classifier)(classifier.model, self.taxonomy, decoding=decoding)
        batch_size = int(batch_size or self.batch_size)
        dataset = make_dataset(catalog, batch_size=batch_size, shuffle=False, image_size=self.image_size,
                               with_labels=False)
        wanted = [names.level_output(level) for level in range(1, self.taxonomy.num_levels + 1)]
        outputs: dict[str, list] = {}
        total = -(-len(catalog) // batch_size)
        model_inputs = model_input_names(classifier.model)
        for features in progress_bar(dataset, total=total, desc="evaluate", unit="batch", enabled=progress):
            features = features[0] if isinstance(features, tuple) else features
            # the catalog's pipeline yields every schema field; an image-only model takes none of the text ones
            scores = classifier.scores({name: features[name] for name in model_inputs})
            described = classifier.classify(scores)
            for key in ("full_class_ids", "confidences", "node_ids"):
                outputs.setdefault(key, []).append(described[key].numpy())
            for key in wanted:
                outputs.setdefault(key, []).append(scores[key].numpy())
        return {key: np.concatenate(values) for key, values in outputs.items()}


def load_predictor(path, batch_size: int = 256, decoding: str | None = None,
                   run_calibration: bool = True) -> Predictor:
    """A `Predictor` for a run directory (``model.keras``) or an export (``saved_model.pb``).

    Args:
        path: the run or export version directory (`linnet.serving.artifacts.artifact_kind` tells which).
        batch_size: rows per model call of `Predictor.predict_raw`.
        decoding: ``"path"`` or ``"greedy"`` descent; None: the model's own (``"path"`` for a run, the one an
            export was made with). An export's is fixed: asking it for another is an error.
        run_calibration: apply a run directory's ``calibration.json`` (written there by `linnet calibrate`)
            when there is one; without it, a run's thresholds are 0 (the full descent is exposed).

    Raises:
        ConfigError: the path is neither, an unknown decoding, or a decoding an export was not made with.
    """
    artifact = load_artifact(path)
    if artifact.kind == RUN:
        return _predictor_from_run(artifact, batch_size, decoding or DEFAULT_DECODING, run_calibration)
    return _predictor_from_export(artifact, batch_size, decoding)


def _predictor_from_run(artifact: Artifact, batch_size: int, decoding: str, run_calibration: bool) -> Predictor:
    import tensorflow as tf  # lazy: predict_catalog behind a TF Serving client runs without TensorFlow

    from linnet.inference.classifier import (
        HierarchicalClassifier,  # lazy: Keras, as above
    )

    classifier = HierarchicalClassifier(artifact.model, artifact.taxonomy, decoding=check_decoding(decoding))
    calibration = artifact.path / RUN_CALIBRATION_FILE
    if run_calibration and calibration.is_file():  # `linnet calibrate` writes it here by convention
        classifier.load_calibration(calibration)
    functions = RawInputFunctions(classifier, artifact.text_fields, artifact.image_size)
    function = tf.function(functions.predict_with_scores, input_signature=[functions.input_signature], autograph=False)
    return Predictor(function, artifact.taxonomy, artifact.schema, functions.text_fields, functions.image_size,
                     artifact.source, batch_size, owner=functions, decoding=decoding, classifier=classifier)


def _predictor_from_export(artifact: Artifact, batch_size: int, decoding: str | None) -> Predictor:
    if decoding is not None and decoding != artifact.decoding:
        raise ConfigError(f"--decoding {decoding}: the export at {artifact.path} decodes {artifact.decoding!r}, set "
                          f"when it was exported (linnet export --decoding); use a run directory for another decoding")
    if artifact.taxonomy is None:
        raise ConfigError(f"{artifact.path}: not a LinNét export: assets/{TAXONOMY_ASSET} is missing")
    loaded = artifact.saved_model
    function = getattr(loaded, PREDICT_WITH_SCORES, None)
    if function is None:  # an export without the helper function: the classifier outputs only
        signature = loaded.signatures["serving_default"]
        function = lambda batch: signature(**batch)
    return Predictor(function, artifact.taxonomy, artifact.schema, artifact.text_fields, artifact.image_size,
                     artifact.source, batch_size, owner=loaded, decoding=artifact.decoding)


# ------------------------------------------------------------------------------------- catalog job
def image_errors(inputs: Sequence[Mapping], outputs: Mapping[str, np.ndarray]) -> list[str]:
    """Per row: why its image was not used (`linnet.data.images.UNUSABLE_IMAGE_KINDS`, or ``undecodable``
    when its bytes gave ``image_present = 0``), or ``""``."""
    present = outputs.get("image_present")
    problems = []
    for row, raw in enumerate(inputs):
        problem = raw.get("image_error", "")
        if not problem and present is not None and raw.get(IMAGE_BYTES_INPUT) and not present[row]:
            problem = UNDECODABLE_IMAGE
        problems.append(problem)
    return problems


def _completed(path: Path) -> tuple[set[str], int]:
    """Ids already in a partial output file, dropping a torn last line (a crash mid-write)."""
    text = path.read_text(encoding="utf-8")
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
        write_text_atomically(path, text)
    rows = list(csv.reader(text.splitlines()))
    return {row[0] for row in rows[1:] if row}, max(len(rows) - 1, 0)


def _reported_locations(path: Path) -> set[str]:
    with open(path, newline="", encoding="utf-8") as handle:
        return {row[2] for row in list(csv.reader(handle))[1:] if len(row) > 2}


def predict_catalog(model, catalog_path, schema, out_csv, errors_csv, batch_size: int = 256, resume: bool = True,
                    progress: bool = True, format: str | None = None, allow_missing_text: bool = False) -> dict:
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
        allow_missing_text: read text columns the file lacks as empty (by default such a file is refused).

    Returns:
        ``{"rows": predicted, "errors": bad rows, "image_errors": rows whose image was unusable (their
        ``image_error`` column says why), "resumed": rows skipped, "out": path, "errors_file": path}``;
        ``errors_file`` is None when no row was bad (no errors file is written, an older one is removed).
    """
    out_csv, errors_csv = Path(out_csv), Path(errors_csv)
    partial_out, partial_errors = (path.with_name(path.name + ".partial") for path in (out_csv, errors_csv))
    text_fields = list(getattr(model, "text_fields", schema.feature_text_fields))
    with_image = "image_bytes" in model.input_names
    reader = CatalogReader(catalog_path, format=format)
    check_input_columns(schema, reader.columns, reader.path, allow_missing_text=allow_missing_text)
    image_root = schema.image_root or reader.path.parent
    done, reported, resumed = _resume_state(partial_out, partial_errors, resume)
    seen: set[str] = set(done)
    resumed_ids: set[str] = set()  # done ids met again in this run: a second meeting is a repeat
    records = 0
    with _ResultWriter(model, partial_out, partial_errors, reader) as writer, \
            progress_bar(desc="predict", unit="row", enabled=progress) as bar:
        for chunk in reader:
            for bad in chunk.bad_rows:
                if writer.where(bad.location) not in reported:
                    writer.report(bad.location, bad.product_id, bad.field, bad.problem)
            for location, record in zip(chunk.locations, chunk.records):
                product_id = None
                try:
                    product_id = row_id(record, schema.id_column)
                    if product_id in seen:
                        if product_id in done and product_id not in resumed_ids:
                            resumed_ids.add(product_id)
                            continue
                        raise RowProblem(schema.id_column, f"id {product_id!r} repeated")
                    seen.add(product_id)
                    inputs = row_inputs(record, schema, text_fields, with_image, image_root)
                except RowProblem as problem:
                    if writer.where(location) in reported:
                        continue
                    # A repeated id keeps the first row's output: the repeat is reported without an id.
                    repeated = problem.field == schema.id_column and product_id is not None
                    writer.report(location, None if repeated else product_id, problem.field, problem.problem)
                    continue
                writer.add(product_id, inputs)
                if writer.waiting >= batch_size:
                    writer.flush()
            records += len(chunk.records) + len(chunk.bad_rows)
            bar.update(len(chunk.records) + len(chunk.bad_rows))
        writer.flush()
    check_every_row_out(partial_out, partial_errors, records, catalog_path)
    # Two finished files moved in order (errors first), not a write: a reader that sees the predictions
    # also sees their errors. `linnet.atomic_files` writes one file; these were written batch by batch.
    # No bad row (in this run or the one resumed): no errors file, not a header alone.
    any_errors = bool(writer.counts["errors"] or reported)
    if any_errors:
        os.replace(partial_errors, errors_csv)
    else:
        partial_errors.unlink()
        errors_csv.unlink(missing_ok=True)  # an older run's errors do not describe these predictions
    os.replace(partial_out, out_csv)
    return {**writer.counts, "resumed": resumed, "out": str(out_csv),
            "errors_file": str(errors_csv) if any_errors else None}


def check_every_row_out(partial_out: Path, partial_errors: Path, records: int, catalog_path) -> None:
    """Refuses to finish unless every record read came out once: a prediction line (good or bad row with an
    id, each id once) or an errors line without an id (a row whose id is missing or repeated).

    Raises:
        CatalogError: naming the counts, before the partial files are moved into place.
    """
    with open(partial_out, newline="", encoding="utf-8") as handle:
        ids = [row[0] for row in list(csv.reader(handle))[1:] if row]
    with open(partial_errors, newline="", encoding="utf-8") as handle:
        without_id = sum(1 for row in list(csv.reader(handle))[1:] if row and not row[0])
    repeated = len(ids) - len(set(ids))
    if len(ids) + without_id != records or repeated:
        raise CatalogError(f"{catalog_path}: {records} records read but {len(ids)} prediction lines and {without_id} "
                           f"id-less error lines written ({repeated} ids twice); the outputs stay in {partial_out} "
                           "and were not moved into place")


def _resume_state(partial_out: Path, partial_errors: Path, resume: bool) -> tuple[set[str], set[str], int]:
    """What an interrupted run already wrote: the ids predicted, the bad rows' locations reported and the
    number of rows skipped; or nothing, after removing the partial files, when not resuming."""
    if resume and partial_out.is_file() and partial_errors.is_file():
        done, resumed = _completed(partial_out)
        _completed(partial_errors)  # drops a torn last line
        return done, _reported_locations(partial_errors), resumed
    for path in (partial_out, partial_errors):
        path.unlink(missing_ok=True)
    return set(), set(), 0


class _ResultWriter:
    """The two partial files of `predict_catalog`, appended batch by batch.

    Rows wait in ``pending`` until the next `flush`, which predicts the good ones in one model call and
    writes every waiting line, so both files always hold the same rows, in catalog order.
    """

    def __init__(self, model, partial_out: Path, partial_errors: Path, reader):
        self.model = model
        self.num_levels = model.taxonomy.num_levels
        self.reader = reader
        self.paths = (partial_out, partial_errors)
        self.counts = {"rows": 0, "errors": 0, "image_errors": 0}
        self.pending: list[tuple[str, dict | None, str]] = []  # (id, raw inputs or None, error)
        self.pending_errors: list[list] = []

    def __enter__(self) -> _ResultWriter:
        partial_out, partial_errors = self.paths
        new_out, new_errors = not partial_out.exists(), not partial_errors.exists()
        for path in self.paths:
            path.parent.mkdir(parents=True, exist_ok=True)
        self.out_handle = open(partial_out, "a", newline="", encoding="utf-8")
        self.error_handle = open(partial_errors, "a", newline="", encoding="utf-8")
        self.results = csv.writer(self.out_handle, lineterminator="\n")
        self.errors = csv.writer(self.error_handle, lineterminator="\n")
        if new_out:
            self.results.writerow(result_header(self.num_levels))
        if new_errors:
            self.errors.writerow(["id", *[name for name in ERROR_COLUMNS if name != "id"]])
        return self

    def __exit__(self, *exc_info) -> None:
        self.out_handle.close()
        self.error_handle.close()

    @property
    def waiting(self) -> int:
        return len(self.pending)

    def where(self, location) -> str:
        """A row's location as the errors file writes it (``line 12``, ``row 3``)."""
        return f"{self.reader.location_kind} {location}"

    def add(self, product_id: str, inputs: dict) -> None:
        self.pending.append((product_id, inputs, ""))

    def report(self, location, product_id: str | None, field: str | None, problem: str) -> None:
        """A bad row: a line in the errors file and, when it has an id, an empty prediction with the problem."""
        self.pending_errors.append([product_id or "", str(self.reader.path), self.where(location), field or "",
                                    problem])
        if product_id is not None:
            self.pending.append((product_id, None, problem))
        self.counts["errors"] += 1

    def flush(self) -> None:
        good = [inputs for _, inputs, _ in self.pending if inputs is not None]
        outputs = self.model.predict_raw(columns_of(good, self.model.input_names)) if good else {}  # strings decoded
        problems = image_errors(good, outputs) if good else []
        self.counts["image_errors"] += sum(1 for problem in problems if problem)
        ids = [product_id for product_id, inputs, _ in self.pending if inputs is not None]
        predicted = iter(csv_rows(result_columns(ids, outputs, self.num_levels, self.model.taxonomy, problems),
                                  self.num_levels) if good else [])
        for product_id, inputs, problem in self.pending:
            self.results.writerow(next(predicted) if inputs is not None else
                                  [product_id, "", "", "", "", "", "", "", problem, ""] + [""] * (3 * self.num_levels))
        self.errors.writerows(self.pending_errors)
        self.out_handle.flush()
        self.error_handle.flush()
        self.counts["rows"] += len(good)
        self.pending.clear()
        self.pending_errors.clear()
