"""README cannot rot: every command and Python example in it is run here, in order.

Rules the README follows (see the comments in README.md):
- a line ``$ command`` inside a fenced block is a shell command;
- the two commands after ``<!-- ci:install -->`` and ``<!-- ci:test -->`` are what `.ci/run` runs, so they are
  not run again here (the install command is checked to install the package and to run a `linnet` job);
- a fenced ``python`` block is a Python example, run with the same working directory;
- a block preceded by ``<!-- not-run: reason -->`` needs something CI does not have (Docker, a GPU, a second
  machine, a browser); its commands are still parsed by `linnet`'s argument parser, and the files it
  names must exist.
Commands run in a scratch directory laid out like the repository (``examples/``, ``training/``,
``serving/``) next to a ``shared`` link, so README's relative paths (``../shared/data``) work unchanged.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
README = REPO_ROOT / "README.md"
FENCE = re.compile(r"^```(\w*)\s*$")
MARKER = re.compile(r"^<!--\s*(ci:install|ci:test|not-run:[^>]*?)\s*-->\s*$")


@dataclass
class Snippet:
    kind: str  # "shell" or "python"
    text: str
    line: int
    marker: str | None  # "ci:install", "ci:test", "not-run: ..." or None


def readme_snippets(text: str) -> list[Snippet]:
    """Shell commands and Python blocks of README, in order, with the marker that precedes their block."""
    snippets: list[Snippet] = []
    lines = text.splitlines()
    marker = None
    index = 0
    while index < len(lines):
        line = lines[index]
        found = MARKER.match(line.strip())
        if found:
            marker = found.group(1)
            index += 1
            continue
        fence = FENCE.match(line.strip())
        if not fence:
            if line.strip():
                marker = None  # a marker applies to the block right below it only
            index += 1
            continue
        language, start = fence.group(1), index + 1
        body = []
        index += 1
        while index < len(lines) and not lines[index].strip().startswith("```"):
            body.append(lines[index])
            index += 1
        index += 1
        if language == "python":
            snippets.append(Snippet("python", "\n".join(body), start + 1, marker))
        else:
            command = ""
            for offset, body_line in enumerate(body):
                if body_line.startswith("$ ") or command:
                    piece = body_line[2:] if body_line.startswith("$ ") else body_line
                    command = f"{command} {piece.strip()}" if command else piece.strip()
                    if command.endswith("\\"):
                        command = command[:-1].rstrip()
                        continue
                    snippets.append(Snippet("shell", command, start + offset + 1, marker))
                    command = ""
        marker = None
    return snippets


def test_parser_reads_markers_blocks_and_continuations():
    text = "\n".join([
        "<!-- ci:install -->", "```", "$ pip install -e .", "```",
        "```console", "$ linnet a \\", "    --flag x", "output line", "$ linnet b", "```",
        "<!-- not-run: needs Docker -->", "```", "$ docker compose up", "```",
        "```python", "print(1)", "```",
    ])
    snippets = readme_snippets(text)
    assert [(s.kind, s.text, s.marker) for s in snippets] == [
        ("shell", "pip install -e .", "ci:install"),
        ("shell", "linnet a --flag x", None),
        ("shell", "linnet b", None),
        ("shell", "docker compose up", "not-run: needs Docker"),
        ("python", "print(1)", None),
    ]


SNIPPETS = readme_snippets(README.read_text(encoding="utf-8"))


def test_readme_opens_with_the_two_ci_commands():
    markers = [s.marker for s in SNIPPETS[:2]]
    assert markers == ["ci:install", "ci:test"], "README must start with the install+main-job and test commands"
    install, test = SNIPPETS[0].text, SNIPPETS[1].text
    assert 'pip install -e ".[dev]"' in install and "linnet " in install
    assert test.startswith("pytest")


def test_not_run_commands_parse_and_name_existing_files():
    from linnet.cli.main import build_parser

    parser = build_parser()
    checked = 0
    for snippet in SNIPPETS:
        if not (snippet.marker or "").startswith("not-run") or snippet.kind != "shell":
            continue
        words = shlex.split(snippet.text)
        if words[0] == "linnet":
            parser.parse_args(words[1:])  # exits (SystemExit) on an unknown flag or command
        for word in words:
            if word.startswith(("serving/", "training/", "examples/")):
                assert (REPO_ROOT / word.split("=")[-1]).exists(), f"README line {snippet.line}: {word} missing"
        checked += 1
    assert checked >= 1


@pytest.fixture(scope="module")
def scratch(tmp_path_factory, shared_data):
    """A directory laid out like the repository, next to a ``shared`` link to the real data."""
    parent = tmp_path_factory.mktemp("readme")
    (parent / "shared").symlink_to(shared_data.parent)
    work = parent / "work"
    work.mkdir()
    for name in ("examples", "training", "serving"):
        if (REPO_ROOT / name).exists():
            (work / name).symlink_to(REPO_ROOT / name)
    return work


def test_every_readme_command_and_example_runs(scratch):
    """Runs the tour top to bottom; a failure names README's line."""
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", MPLBACKEND="Agg")
    environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment.get('PATH', '')}"
    ran = 0
    for snippet in SNIPPETS:
        if snippet.marker in ("ci:install", "ci:test") or (snippet.marker or "").startswith("not-run"):
            continue
        if snippet.kind == "python":
            command = [sys.executable, "-c", snippet.text]
        else:
            command = ["bash", "-euo", "pipefail", "-c", snippet.text]
        result = subprocess.run(command, cwd=scratch, env=environment, capture_output=True, text=True,
                                timeout=900)
        assert result.returncode == 0, (
            f"README line {snippet.line} failed ({result.returncode}): {snippet.text}\n"
            f"--- stdout ---\n{result.stdout[-3000:]}\n--- stderr ---\n{result.stderr[-5000:]}"
        )
        ran += 1
    assert ran >= 1, "README holds no runnable tour"
