"""Run the benchmarks, print one Markdown table per area, write ``benchmarks/results/<date>.json``.

Usage::

    python -m benchmarks                 # every area
    python -m benchmarks quality memory  # some areas
    python -m benchmarks --list
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"
# Order matters only for reading: cheap areas first.
AREAS = ["pipeline", "encoders", "training", "training_cache", "inference", "quality", "images", "embeddings", "memory",
         "crosslingual", "sessions", "scale", "tour"]


def machine_description() -> dict:
    cpu_model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu_model": cpu_model,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def markdown_table(rows: list[dict]) -> str:
    if not rows:
        return "(no rows)"
    columns: list[str] = []
    for row in rows:
        columns.extend(key for key in row if key not in columns)

    def cell(value) -> str:
        if isinstance(value, float):
            return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
        return "" if value is None else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(column)) for column in columns) + " |" for row in rows]
    return "\n".join(lines)


def as_tables(area: str, result) -> dict[str, list[dict]]:
    if isinstance(result, dict):
        return {f"{area}: {name}": rows for name, rows in result.items()}
    return {area: list(result)}


def write_results_atomically(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as handle:
        json.dump(payload, handle, indent=2, default=str)
        temporary = handle.name
    os.replace(temporary, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("areas", nargs="*", help=f"areas to run (default: all of {', '.join(AREAS)})")
    parser.add_argument("--list", action="store_true", help="list the areas and exit")
    parser.add_argument("--update-readme", action="store_true",
                        help="only rewrite README.md's results table from the latest results file, then exit")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(AREAS))
        return 0
    if args.update_readme:
        from benchmarks.readme_table import update_readme

        print(f"README results table updated from {update_readme()}")
        return 0
    unknown = [area for area in args.areas if area not in AREAS]
    if unknown:
        parser.error(f"unknown area(s) {unknown}; choose from {AREAS}")

    machine = machine_description()
    print(f"Machine: {machine['cores']} cores, {machine['cpu_model']}, Python {machine['python']}\n")
    payload = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "machine": machine, "areas": {}}
    failures = 0
    for area in args.areas or AREAS:
        started = time.perf_counter()
        try:
            module = importlib.import_module(f"benchmarks.bench_{area}")
            tables = as_tables(area, module.run())
        except ModuleNotFoundError as error:
            if error.name != f"benchmarks.bench_{area}":
                raise
            print(f"## {area}\n\n(not written yet)\n")
            continue
        except Exception:  # one broken area must not hide the others' numbers
            failures += 1
            print(f"## {area}\n\nFAILED:\n```\n{traceback.format_exc()}```\n")
            payload["areas"][area] = {"error": traceback.format_exc()}
            continue
        seconds = time.perf_counter() - started
        payload["areas"][area] = {"tables": tables, "seconds": round(seconds, 1)}
        for title, rows in tables.items():
            print(f"## {title}\n\n{markdown_table(rows)}\n")
        print(f"({area}: {seconds:.0f} s)\n")
    day = dt.date.today().isoformat()
    path = RESULTS_DIR / f"{day}.json"
    if path.exists():  # merge with earlier areas of the same day, newest wins
        earlier = json.loads(path.read_text())
        earlier["areas"].update(payload["areas"])
        earlier.update(date=payload["date"], machine=machine)
        payload = earlier
    write_results_atomically(path, payload)
    print(f"Results written to {path}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
