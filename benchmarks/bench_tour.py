"""The README tour, command by command: wall and CPU seconds of each `linnet` command a newcomer types.

The commands are read from README.md's "Tour" section (the runnable `$ linnet ...` lines, not the blocks
marked not-run), so the benchmark times what the README says. Each runs as ``python -m linnet`` in a scratch
directory laid out like the repository (``examples/``, ``training/``, ``serving/`` and a ``../shared`` link
to the public data), one after the other, as the tour does. CPU is the child's user + system time
(`resource.getrusage`); the goal is under 30 s of CPU per command.
"""

from __future__ import annotations

import os
import re
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import SHARED

REPO_ROOT = Path(__file__).resolve().parents[1]
CPU_GOAL_SECONDS = 30.0
_BLOCK = re.compile(r"(<!--\s*not-run[^>]*-->\s*)?```console\n(.*?)```", re.DOTALL)


def tour_commands(readme: str) -> list[str]:
    """The runnable ``linnet`` command lines of README's Tour section, continuation lines joined."""
    section = readme[readme.index("## Tour"):]
    section = section[:section.index("\n## ", 1)]
    commands = []
    for not_run, body in _BLOCK.findall(section):
        if not_run:
            continue
        joined = re.sub(r"\\\n\s*", "", body)
        commands += [line[2:].strip() for line in joined.splitlines() if line.startswith("$ linnet ")]
    return commands


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run() -> list[dict]:
    if not (SHARED / "taxonomy").is_dir():
        return [{"note": f"shared data not found at {SHARED}; skipped"}]
    commands = tour_commands((REPO_ROOT / "README.md").read_text(encoding="utf-8"))
    rows = []
    with tempfile.TemporaryDirectory(prefix="linnet-tour-") as parent:
        (Path(parent) / "shared").symlink_to(SHARED.parent)
        work = Path(parent) / "work"
        work.mkdir()
        for name in ("examples", "training", "serving"):
            (work / name).symlink_to(REPO_ROOT / name)
        environment = dict(os.environ, PYTHONPATH=str(REPO_ROOT), MPLBACKEND="Agg")
        for command in commands:
            load_before = os.getloadavg()[0]
            cpu_before, started = _children_cpu(), time.perf_counter()
            result = subprocess.run([sys.executable, "-m", *shlex.split(command)], cwd=work, env=environment,
                                    capture_output=True, text=True, check=False)
            wall, cpu = time.perf_counter() - started, _children_cpu() - cpu_before
            if result.returncode != 0:
                raise RuntimeError(f"{command} failed ({result.returncode}):\n{result.stderr[-3000:]}")
            rows.append({"command": " ".join(shlex.split(command)[:2]), "wall s": round(wall, 1),
                         "CPU s": round(cpu, 1), "CPU under 30 s": cpu < CPU_GOAL_SECONDS,
                         "load avg before/after": f"{load_before:.2f} / {os.getloadavg()[0]:.2f}"})
    return rows
