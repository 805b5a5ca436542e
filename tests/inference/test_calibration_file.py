"""The calibration file: round trip, atomic write, and clear errors for every kind of bad file."""

from __future__ import annotations

import json

import pytest

from linnet.errors import ConfigError
from linnet.inference.calibration_file import load_calibration, save_calibration
from linnet.taxonomy import Taxonomy


def test_round_trip_and_format(tiny_taxonomy, tmp_path):
    path = save_calibration(tmp_path / "sub" / "calibration.json", [0.5, 0.6, 0.7], {"Shoes > Boots": 0.8}, tiny_taxonomy)
    payload = json.loads(path.read_text())
    assert payload == {"level_thresholds": [0.5, 0.6, 0.7], "node_thresholds": {"Shoes > Boots": 0.8},
                       "taxonomy_fingerprint": tiny_taxonomy.fingerprint()}
    assert load_calibration(path, tiny_taxonomy) == ([0.5, 0.6, 0.7], {"Shoes > Boots": 0.8})
    assert [entry.name for entry in path.parent.iterdir()] == ["calibration.json"], "no temporary file left"


def test_fingerprint_mismatch_is_refused(tiny_taxonomy, tmp_path):
    other = Taxonomy.from_paths(["Clothing > Tops > T-Shirts", "Shoes > Boots", "Hats > Caps"])
    path = save_calibration(tmp_path / "c.json", [0.5, 0.5, 0.5], {}, other)
    with pytest.raises(ConfigError, match="fingerprint"):
        load_calibration(path, tiny_taxonomy)


@pytest.mark.parametrize("payload, message", [
    ({"level_thresholds": [0.5, 0.5]}, "2 level thresholds"),
    ({"level_thresholds": [0.5, "high", 0.5]}, r"level_thresholds\[1\]"),
    ({"level_thresholds": [0.5, 0.5, 2.0]}, r"in \[0, 1\]"),
    ({"level_thresholds": [0.5] * 3, "node_thresholds": {"Hats": 0.5}}, "not in the taxonomy"),
    ({"level_thresholds": [0.5] * 3, "extra": 1}, "unknown key"),
    ({"node_thresholds": {}}, "keys"),
])
def test_bad_files_name_the_problem(tiny_taxonomy, tmp_path, payload, message):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(payload))
    with pytest.raises(ConfigError, match=message):
        load_calibration(path, tiny_taxonomy)


def test_unreadable_files(tiny_taxonomy, tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_calibration(tmp_path / "missing.json", tiny_taxonomy)
    broken = tmp_path / "broken.json"
    broken.write_text('{"level_thresholds": [0.5,')
    with pytest.raises(ConfigError, match="invalid JSON"):
        load_calibration(broken, tiny_taxonomy)


def test_the_decoding_a_file_was_fitted_on_must_match(tiny_taxonomy, tmp_path):
    path = save_calibration(tmp_path / "c.json", [0.5, 0.6, 0.7], {}, tiny_taxonomy, decoding="greedy")
    assert json.loads(path.read_text())["decoding"] == "greedy"
    assert load_calibration(path, tiny_taxonomy, decoding="greedy") == ([0.5, 0.6, 0.7], {})
    assert load_calibration(path, tiny_taxonomy) == ([0.5, 0.6, 0.7], {}), "no decoding asked: not checked"
    with pytest.raises(ConfigError, match="fitted on the 'greedy' decoding.*decodes 'path'.*--decoding path"):
        load_calibration(path, tiny_taxonomy, decoding="path")
    older = save_calibration(tmp_path / "older.json", [0.5, 0.6, 0.7], {}, tiny_taxonomy)
    assert "decoding" not in json.loads(older.read_text())
    assert load_calibration(older, tiny_taxonomy, decoding="greedy") == ([0.5, 0.6, 0.7], {}), "files from before"
    path.write_text(json.dumps({"level_thresholds": [0.5] * 3, "decoding": "beam"}))
    with pytest.raises(ConfigError, match="decoding must be one of path, greedy"):
        load_calibration(path, tiny_taxonomy)
