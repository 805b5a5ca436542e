"""The house's contracts (docs/architecture.md): rooms import only downwards, no import circles, nothing
imports the command line, and the page's rooms table says what setup.cfg's contracts enforce."""

from __future__ import annotations

import configparser
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
ARCHITECTURE = REPO_ROOT / "docs" / "architecture.md"


def _layers() -> list[list[str]]:
    """The layers contract in setup.cfg, top first; each layer a list of the rooms on that line."""
    config = configparser.ConfigParser()
    config.read(REPO_ROOT / "setup.cfg")
    lines = config["importlinter:contract:layers"]["layers"].split("\n")
    return [[room.strip() for room in re.split(r"[|:]", line)] for line in lines if line.strip()]


def _documented_imports() -> dict[str, set[str]]:
    """Room -> the rooms the architecture page's table says it may import (``linnet/<room>/`` rows)."""
    rows = {}
    for line in ARCHITECTURE.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\|\s*`linnet/(\w+)/?`\s*\|[^|]*\|\s*([^|]*)\|\s*$", line)
        if match:
            named = set(re.findall(r"`(\w+)`", match.group(2)))
            rows[match.group(1)] = {room for room in named if (REPO_ROOT / "linnet" / room).is_dir()}
    return rows


def test_import_contracts_are_kept():
    from importlinter.cli import lint_imports

    assert lint_imports(config_filename=str(REPO_ROOT / "setup.cfg"), no_cache=True) == 0


def test_the_architecture_page_lists_what_each_room_may_import():
    layers = _layers()
    documented = _documented_imports()
    rooms = [room for layer in layers for room in layer if (REPO_ROOT / "linnet" / room).is_dir()]
    assert set(rooms) - set(documented) == set(), "rooms missing from docs/architecture.md's table"
    for position, layer in enumerate(layers):
        below = {room for lower in layers[position + 1:] for room in lower if (REPO_ROOT / "linnet" / room).is_dir()}
        for room in layer:
            if room in documented:
                assert documented[room] == below, f"linnet/{room}/: the table says {sorted(documented[room])}"


@pytest.mark.parametrize("statement", ["import linnet; linnet.Taxonomy", "import linnet.taxonomy",
                                        "import linnet.embeddings", "import linnet.serving, linnet.evaluation"])
def test_light_imports_do_not_import_tensorflow(statement):
    code = f"import sys; {statement}; sys.exit('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT).returncode == 0
