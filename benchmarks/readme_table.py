"""README's results table, generated from the newest ``benchmarks/results/<date>.json``.

The table sits in README.md between ``<!-- results:start -->`` and ``<!-- results:end -->``; this module
rewrites only that block (atomically), so the numbers in README are always ones a benchmark printed.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from benchmarks.__main__ import RESULTS_DIR, markdown_table

README = Path(__file__).resolve().parents[1] / "README.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"


def latest_results_file(results_dir: Path = RESULTS_DIR) -> Path:
    files = sorted(results_dir.glob("????-??-??.json"))
    if not files:
        raise FileNotFoundError(f"no results in {results_dir}; run `python -m benchmarks` first")
    return files[-1]


def render_results(payload: dict, source_name: str) -> str:
    machine = payload.get("machine", {})
    lines = [
        f"Measured by `python -m benchmarks` on {machine.get('cores', '?')} cores "
        f"({machine.get('cpu_model', 'unknown CPU')}), {payload.get('date', '?')}; "
        f"source: `benchmarks/results/{source_name}`.",
        "",
    ]
    for area, result in payload.get("areas", {}).items():
        if "tables" not in result:
            lines += [f"**{area}**: failed in the last run (see the results file).", ""]
            continue
        for title, rows in result["tables"].items():
            lines += [f"**{title}**", "", markdown_table(rows), ""]
    return "\n".join(lines).rstrip() + "\n"


def replace_block(text: str, block: str) -> str:
    if START not in text or END not in text:
        raise ValueError(f"README.md must hold the markers {START} and {END}")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{block}{END}{tail}"


def update_readme(readme: Path = README, results_dir: Path = RESULTS_DIR) -> Path:
    source = latest_results_file(results_dir)
    payload = json.loads(source.read_text())
    text = replace_block(readme.read_text(), render_results(payload, source.name))
    with tempfile.NamedTemporaryFile("w", dir=readme.parent, suffix=".tmp", delete=False) as handle:
        handle.write(text)
    os.replace(handle.name, readme)
    return source
