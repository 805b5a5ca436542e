"""The one rule for "run directory or export?" and the loader of either."""

from __future__ import annotations

import pytest

from linnet.errors import ConfigError
from linnet.serving.artifacts import EXPORT, RUN, artifact_kind, load_artifact

from serving.conftest import IMAGE_SIZE


def test_the_marker_file_decides(tmp_path):
    run, export = tmp_path / "run", tmp_path / "export"
    run.mkdir()
    export.mkdir()
    (run / "model.keras").write_bytes(b"")
    (export / "saved_model.pb").write_bytes(b"")
    assert artifact_kind(run) == RUN == "run"
    assert artifact_kind(export) == EXPORT == "export"


@pytest.mark.parametrize("make", ["empty", "missing", "file"])
def test_neither_is_an_error_naming_the_path_and_what_was_expected(tmp_path, make):
    path = tmp_path / "model"
    if make == "empty":
        path.mkdir()
    elif make == "file":
        path.write_text("not a model")
    with pytest.raises(ConfigError) as error:
        artifact_kind(path)
    message = str(error.value)
    assert str(path) in message
    assert "expected a run directory (with model.keras)" in message and "saved_model.pb" in message
    assert artifact_kind(path, required=False) is None
    with pytest.raises(ConfigError, match="expected a run directory"):
        load_artifact(path)


def test_a_run_directory(run_dir, image_model, tiny_taxonomy, export_schema):
    artifact = load_artifact(run_dir)
    assert artifact.kind == RUN and artifact.path == run_dir and artifact.source == str(run_dir)
    assert artifact.taxonomy == tiny_taxonomy and artifact.schema == export_schema
    assert artifact.text_fields == ["title", "brand"] and artifact.image_size == IMAGE_SIZE
    assert artifact.model is not None and artifact.saved_model is None and artifact.run is not None
    assert artifact.decoding is None, "a run decodes either way"
    assert [tensor.name for tensor in artifact.model.inputs] == [tensor.name for tensor in image_model.inputs]


def test_an_export(exported, tiny_taxonomy, export_schema):
    artifact = load_artifact(exported)
    assert artifact.kind == EXPORT and artifact.path == exported
    assert artifact.taxonomy == tiny_taxonomy and artifact.schema == export_schema
    assert artifact.text_fields == ["title", "brand"] and artifact.image_size == IMAGE_SIZE
    assert artifact.saved_model is not None and artifact.model is None and artifact.run is None
    assert artifact.decoding == "greedy", "exported with the default descent"
    assert "serving_default" in artifact.saved_model.signatures
