"""`linnet.training.run_directory.import_custom_layer_modules`: a run saved before the package layout moved
names old modules in its ``model.keras`` config; they are imported under their new names."""

from __future__ import annotations

import importlib
import json
import sys
import zipfile

import pytest

from linnet.errors import ConfigError
from linnet.training import run_directory


def _write_model_archive(path, modules) -> None:
    """A ``.keras`` zip holding only a ``config.json`` whose layers name ``modules``."""
    config = {
        "module": "keras",
        "class_name": "Functional",
        "config": {"layers": [{"module": module, "class_name": "Layer", "config": {}} for module in modules]},
    }
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", json.dumps(config))


@pytest.fixture
def imported(monkeypatch):
    """The module names `import_custom_layer_modules` imports (each still really imported)."""
    names = []
    real_import = importlib.import_module

    def recording(name, *args, **kwargs):
        names.append(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(run_directory.importlib, "import_module", recording)
    return names


def test_a_moved_module_is_imported_under_its_new_name(tmp_path, imported):
    model_path = tmp_path / "model.keras"
    _write_model_archive(model_path, ["linnet.text", "keras.layers", "some_plugin.layers"])
    run_directory.import_custom_layer_modules(model_path)
    assert imported == ["linnet.encoders.text_normalization"]
    assert "linnet.encoders.text_normalization" in sys.modules


def test_a_module_outside_linnet_is_left_to_keras(tmp_path, imported):
    model_path = tmp_path / "model.keras"
    _write_model_archive(model_path, ["not_installed_anywhere.layers", "keras.layers"])
    run_directory.import_custom_layer_modules(model_path)
    assert imported == []


def test_every_moved_module_has_a_home_that_imports():
    for old, new in run_directory.MOVED_MODULES.items():
        assert old.startswith("linnet.") and new.startswith("linnet.")
        importlib.import_module(new)


def test_an_unreadable_model_file_is_a_config_error(tmp_path):
    model_path = tmp_path / "model.keras"
    model_path.write_text("not a zip")
    with pytest.raises(ConfigError, match="not a readable .keras model"):
        run_directory.import_custom_layer_modules(model_path)
