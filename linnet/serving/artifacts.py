"""The one rule for "is this path a run directory or an export?" and the loader of either.

A *run directory* (``linnet train --out``) holds ``model.keras`` with its ``schema.yaml`` and
``taxonomy.json``; an *export* version directory (``linnet export``, ``exports/<name>/<version>``) holds
``saved_model.pb`` with ``assets/taxonomy.json`` and ``assets/inputs.json``. `artifact_kind` tells them
apart (an export first, as a directory cannot be both); `load_artifact` loads either into an `Artifact`
that gives every caller (`linnet.serving.predict`, `linnet.evaluation.evaluate`, `linnet.embeddings.embed`)
the same things: taxonomy, schema, raw text fields, image size, and the Keras model or the SavedModel.

Importing this module does not import TensorFlow; loading a model does.

Example:
    >>> import tempfile
    >>> artifact_kind(tempfile.mkdtemp())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    linnet.errors.ConfigError: ...: expected a run directory (with model.keras) or an export version directory ...
    >>> artifact = load_artifact("runs/fashion")  # doctest: +SKIP
    >>> artifact.kind, artifact.text_fields, artifact.image_size  # doctest: +SKIP
    ('run', ['title', 'attributes'], None)
"""

from __future__ import annotations

import dataclasses
import json
from functools import cached_property
from pathlib import Path
from typing import Any

from linnet.data import CatalogSchema
from linnet.errors import ConfigError
from linnet.serving.export import (
    INPUTS_ASSET,
    TAXONOMY_ASSET,
    load_saved_model,
    model_image_size,
    raw_text_fields,
)
from linnet.taxonomy import Taxonomy

RUN = "run"
EXPORT = "export"
#: The file that marks a finished run directory (`linnet.training.run_directory.MODEL_FILE`; that module is
#: not imported here because it loads Keras, and deciding what a path is needs no TensorFlow).
RUN_MODEL_FILE = "model.keras"
#: The file that marks an export version directory.
SAVED_MODEL_FILE = "saved_model.pb"
#: A run directory's calibration file, where `linnet calibrate` puts it by convention (an export carries its
#: thresholds in ``assets/calibration.json`` and in its variables).
RUN_CALIBRATION_FILE = "calibration.json"
EXPECTED = (f"a run directory (with {RUN_MODEL_FILE}) or an export version directory (with {SAVED_MODEL_FILE}, "
            "e.g. exports/<name>/<version>)")


def artifact_kind(path, required: bool = True) -> str | None:
    """``"export"`` when ``path`` holds ``saved_model.pb``, ``"run"`` when it holds ``model.keras``.

    Args:
        path: a directory.
        required: raise when it is neither (else return None).

    Raises:
        ConfigError: (``required``) the path is neither, naming the path and what was expected.
    """
    path = Path(path)
    if (path / SAVED_MODEL_FILE).is_file():
        return EXPORT
    if (path / RUN_MODEL_FILE).is_file():
        return RUN
    if required:
        raise ConfigError(f"{path}: expected {EXPECTED}")
    return None


@dataclasses.dataclass
class Artifact:
    """A loaded run directory or export: what predicting or embedding with it needs.

    Attributes:
        kind: ``"run"`` or ``"export"``.
        path: the directory.
        taxonomy: the model's `linnet.taxonomy.Taxonomy` (None: an export without ``assets/taxonomy.json``).
        schema: the `linnet.data.CatalogSchema` the model was trained with (None when unknown).
        model: the run's Keras model (None for an export).
        saved_model: the export's loaded SavedModel (None for a run).
        run: the run's `linnet.training.run_directory.LoadedRun` (config, metrics; None for an export).
        inputs: the export's ``assets/inputs.json`` (``{}`` for a run or when missing).
    """

    kind: str
    path: Path
    taxonomy: Any = None
    schema: Any = None
    model: Any = None
    saved_model: Any = None
    run: Any = None
    inputs: dict = dataclasses.field(default_factory=dict)

    @cached_property
    def text_fields(self) -> list[str]:
        """Raw text inputs in order (a run's: its model's text inputs in the schema's order)."""
        if self.kind == RUN:
            return raw_text_fields(self.model, self.schema)
        if "text_fields" not in self.inputs:
            raise ConfigError(f"{self.path}: not a LinNét export: assets/{INPUTS_ASSET} names no text_fields")
        return list(self.inputs["text_fields"])

    @cached_property
    def image_size(self) -> int | None:
        """Side of the decoded image input (None: the model reads no image)."""
        if self.kind == RUN:
            return model_image_size(self.model)
        return self.inputs.get("image_size")

    @property
    def decoding(self) -> str | None:
        """The descent an export was made with (``"path"`` when it does not say); None for a run (any)."""
        return self.inputs.get("decoding", "path") if self.kind == EXPORT else None

    @property
    def source(self) -> str:
        return str(self.path)


def load_artifact(path) -> Artifact:
    """Load a run directory (`linnet.training.run_directory.load_run`) or an export (``tf.saved_model.load``
    with its assets).

    Raises:
        ConfigError: the path is neither (see `artifact_kind`), or a file of the run is missing.
    """
    path = Path(path)
    if artifact_kind(path) == RUN:
        from linnet.training.run_directory import load_run  # lazy: it loads Keras

        run = load_run(path)
        return Artifact(RUN, path, taxonomy=run.taxonomy, schema=run.schema, model=run.model, run=run)
    return _load_export(path)


def _load_export(path: Path) -> Artifact:
    return describe_export(path, saved_model=load_saved_model(path))


def describe_export(path, saved_model=None) -> Artifact:
    """An export's `Artifact` from its assets (taxonomy, schema, inputs) without loading the SavedModel (no
    TensorFlow): what a job launcher needs to build a pipeline its workers will load the model for."""
    path = Path(path)
    inputs_file, taxonomy_file = path / "assets" / INPUTS_ASSET, path / "assets" / TAXONOMY_ASSET
    inputs = json.loads(inputs_file.read_text(encoding="utf-8")) if inputs_file.is_file() else {}
    schema = CatalogSchema.from_dict(inputs["schema"], where=str(inputs_file)) if inputs.get("schema") else None
    taxonomy = Taxonomy.load(taxonomy_file) if taxonomy_file.is_file() else None
    return Artifact(EXPORT, path, taxonomy=taxonomy, schema=schema, saved_model=saved_model, inputs=inputs)
