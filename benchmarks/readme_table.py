"""README's results table, generated from ``benchmarks/results/<date>.json``.

Each area's tables come from the newest results file that holds that area (a day's run of one area does
not hide the others' latest numbers), and each area names the file and machine it comes from. The table
sits in README.md between ``<!-- results:start -->`` and ``<!-- results:end -->``; this module rewrites
only that block (atomically), so the numbers in README are always ones a benchmark printed.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from benchmarks.__main__ import AREAS, RESULTS_DIR, markdown_table

README = Path(__file__).resolve().parents[1] / "README.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"


def latest_results_file(results_dir: Path = RESULTS_DIR) -> Path:
    files = sorted(results_dir.glob("????-??-??.json"))
    if not files:
        raise FileNotFoundError(f"no results in {results_dir}; run `python -m benchmarks` first")
    return files[-1]


def latest_areas(results_dir: Path = RESULTS_DIR) -> dict[str, tuple[str, dict, dict]]:
    """area -> (results file name, machine, area result) from the newest file where the area succeeded."""
    areas: dict[str, tuple[str, dict, dict]] = {}
    for path in sorted(results_dir.glob("????-??-??.json")):
        payload = json.loads(path.read_text())
        for area, result in payload.get("areas", {}).items():
            if "tables" in result or area not in areas:
                areas[area] = (path.name, payload.get("machine", {}), result)
    return areas


def render_results(areas: dict[str, tuple[str, dict, dict]]) -> str:
    lines = ["Measured by `python -m benchmarks`; each area names its results file (`benchmarks/results/`) and "
             "machine.", ""]
    order = {name: index for index, name in enumerate(AREAS)}
    for area in sorted(areas, key=lambda name: order.get(name, len(order))):
        source, machine, result = areas[area]
        where = f"{machine.get('cores', '?')} cores, {machine.get('cpu_model', 'unknown CPU')}; `{source}`"
        if "tables" not in result:
            lines += [f"**{area}**: failed in its last run ({where}).", ""]
            continue
        for title, rows in result["tables"].items():
            lines += [f"**{title}** ({where})", "", markdown_table(rows), ""]
    return "\n".join(lines).rstrip() + "\n"


def replace_block(text: str, block: str) -> str:
    if START not in text or END not in text:
        raise ValueError(f"README.md must hold the markers {START} and {END}")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{block}{END}{tail}"


def update_readme(readme: Path = README, results_dir: Path = RESULTS_DIR) -> Path:
    source = latest_results_file(results_dir)
    text = replace_block(readme.read_text(), render_results(latest_areas(results_dir)))
    with tempfile.NamedTemporaryFile("w", dir=readme.parent, suffix=".tmp", delete=False) as handle:
        handle.write(text)
    os.replace(handle.name, readme)
    return source
