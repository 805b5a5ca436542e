"""The calibration file: per-level thresholds, per-node overrides and the fingerprint of their taxonomy.

Format (``docs/architecture.md``)::

    {"level_thresholds": [t_1, ..., t_L], "node_thresholds": {"<node id>": t, ...},
     "taxonomy_fingerprint": "<sha256 of the taxonomy>", "decoding": "path"}

`linnet calibrate` writes it, `HierarchicalClassifier.load_calibration` and ``linnet export --calibration``
read it. This module is the file's only reader and writer (`read_calibration_file`, `write_calibration_file`;
`linnet.evaluation.calibration.Calibration` saves and loads through them). A file fitted for another taxonomy is refused with an error naming both fingerprints. ``decoding``
(optional; files written before it existed have none) names the descent whose confidences the thresholds were
fitted on: ``"path"`` confidences are whole-path posteriors, ``"greedy"`` ones per-level probabilities, so
thresholds of one do not mean the same on the other and a model decoding the other way refuses the file.

Example:
    >>> import tempfile, os
    >>> from linnet.taxonomy import Taxonomy
    >>> taxonomy = Taxonomy.from_paths(["A > B", "C"])
    >>> path = os.path.join(tempfile.mkdtemp(), "calibration.json")
    >>> _ = save_calibration(path, [0.5, 0.7], {"A": 0.9}, taxonomy)
    >>> load_calibration(path, taxonomy)
    ([0.5, 0.7], {'A': 0.9})
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from linnet.atomic_files import write_text_atomically
from linnet.errors import ConfigError

KEYS = ("level_thresholds", "node_thresholds", "taxonomy_fingerprint", "decoding")
# The descents of `linnet.inference.classifier.HierarchicalClassifier`.
DECODINGS = ("path", "greedy")
# The default descent: on the quality benchmark's catalogs and splits greedy (with its stop rule) scored at or
# above the whole-path descent in every cell (docs/evaluation.md, "Conditional descent").
DEFAULT_DECODING = "greedy"


def check_decoding(decoding, where: str = "decoding") -> str:
    """``decoding`` if it is one of `DECODINGS`, else a :class:`ConfigError` naming ``where``."""
    if decoding not in DECODINGS:
        raise ConfigError(f"{where} must be one of {', '.join(DECODINGS)}, got {decoding!r}")
    return decoding


def validate_calibration(payload, taxonomy=None, source: str = "calibration",
                         decoding: str | None = None) -> tuple[list[float], dict[str, float]]:
    """Check a calibration dict and return ``(level_thresholds, node_thresholds)``.

    ``decoding``: the descent of the model that will use the thresholds; a file fitted on the other one's
    confidences is refused (a file without ``decoding`` is taken as it is).

    Raises:
        ConfigError: a missing or unknown key, a threshold that is not a finite number in [0, 1.01],
            a level count or node id that does not match ``taxonomy``, a fingerprint mismatch, an unknown
            decoding or one that differs from ``decoding``.
    """
    if not isinstance(payload, Mapping) or "level_thresholds" not in payload:
        raise ConfigError(f"{source}: a calibration file is a JSON object with the keys {list(KEYS)}")
    unknown = sorted(set(payload) - set(KEYS))
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {unknown}; expected {list(KEYS)}")
    levels_raw, nodes_raw = payload["level_thresholds"], payload.get("node_thresholds") or {}
    if not isinstance(levels_raw, Sequence) or isinstance(levels_raw, str) or not isinstance(nodes_raw, Mapping):
        raise ConfigError(f"{source}: level_thresholds must be a list and node_thresholds an object")
    levels = [_threshold(value, f"{source}: level_thresholds[{index}]") for index, value in enumerate(levels_raw)]
    nodes = {str(node): _threshold(value, f"{source}: node_thresholds[{node!r}]") for node, value in nodes_raw.items()}
    fitted_on = payload.get("decoding")
    if fitted_on is not None:
        check_decoding(fitted_on, f"{source}: decoding")
    if decoding is not None and fitted_on is not None and fitted_on != decoding:
        raise ConfigError(f"{source}: thresholds fitted on the {fitted_on!r} decoding's confidences, but this model "
                          f"decodes {decoding!r}, whose confidences differ (path: whole-path posteriors; greedy: "
                          f"per-level probabilities); calibrate again with --decoding {decoding}")
    if taxonomy is not None:
        fingerprint = payload.get("taxonomy_fingerprint")
        if fingerprint and fingerprint != taxonomy.fingerprint():
            raise ConfigError(f"{source}: fitted for taxonomy fingerprint {fingerprint}, but the model's taxonomy has "
                              f"fingerprint {taxonomy.fingerprint()}; calibrate again for this model")
        if len(levels) != taxonomy.num_levels:
            raise ConfigError(f"{source}: {len(levels)} level thresholds but the taxonomy has {taxonomy.num_levels} levels")
        missing = [node for node in nodes if node not in taxonomy]
        if missing:
            raise ConfigError(f"{source}: node_thresholds name node(s) not in the taxonomy: {missing[:5]}")
    return levels, nodes


def _threshold(value, where: str) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"{where} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where} must be a number, got {value!r}") from None
    # 1.0 + a little is how calibration writes "withhold everything".
    if math.isnan(number) or not 0.0 <= number <= 1.01:
        raise ConfigError(f"{where} must be in [0, 1], got {value!r}")
    return number


def calibration_payload(level_thresholds, node_thresholds, taxonomy, decoding: str | None = None) -> dict:
    """The JSON-ready dict, validated against ``taxonomy`` (``decoding``: the descent the thresholds are for)."""
    payload = {"level_thresholds": list(level_thresholds), "node_thresholds": dict(node_thresholds or {}),
               "taxonomy_fingerprint": taxonomy.fingerprint()}
    if decoding is not None:
        payload["decoding"] = decoding
    levels, nodes = validate_calibration(payload, taxonomy)
    return {**payload, "level_thresholds": levels, "node_thresholds": nodes}


def write_calibration_file(path, payload: Mapping) -> Path:
    """Write a calibration dict (checked with `validate_calibration` first, so the file is always one the
    inference wrapper and the export accept) as indented UTF-8 JSON, atomically; returns the path."""
    validate_calibration(payload, source=str(path))
    return write_text_atomically(path, json.dumps(dict(payload), indent=2, ensure_ascii=False) + "\n")


def read_calibration_file(path) -> dict:
    """The JSON object of a calibration file, unchecked (see `validate_calibration`).

    Raises:
        ConfigError: unreadable file or bad JSON (naming the path, and the line of a JSON error).
    """
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{path}: cannot read calibration file: {error.strerror or error}") from None
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path}:{error.lineno}: invalid JSON: {error.msg}") from None


def save_calibration(path, level_thresholds, node_thresholds, taxonomy, decoding: str | None = None) -> Path:
    """Write the calibration file atomically (`write_calibration_file`); returns its path."""
    return write_calibration_file(path, calibration_payload(level_thresholds, node_thresholds, taxonomy, decoding))


def load_calibration(path, taxonomy, decoding: str | None = None) -> tuple[list[float], dict[str, float]]:
    """Read and check a calibration file: ``(level_thresholds, node_thresholds)``.

    Raises:
        ConfigError: unreadable file, bad JSON or values, a file fitted for another taxonomy, or (with
            ``decoding``) one fitted on the other decoding's confidences.
    """
    return validate_calibration(read_calibration_file(path), taxonomy, source=str(path), decoding=decoding)
