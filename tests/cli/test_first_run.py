"""A newcomer's first run, through the real entry point (``python -m linnet``): `train` reports a wrong
column, an empty catalog or a missing config in about a second, before TensorFlow is imported; every
command speaks one grammar (``--model``, ``--quiet``, a help line on every flag, ``--version``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from linnet.cli.main import _leaf_parsers, build_parser

REPO_ROOT = Path(__file__).resolve().parents[2]
FAST = 5.0  # seconds: Python start, argparse and a CSV header (TensorFlow's import alone takes longer)


def _linnet(*arguments, cwd):
    """Runs ``python -X importtime -m linnet ...``; returns (result, seconds, modules imported)."""
    environment = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "linnet", *map(str, arguments)], cwd=cwd,
                            env=environment, capture_output=True, text=True, timeout=120, check=False)
    seconds = time.perf_counter() - started
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    result.stderr = "\n".join(line for line in result.stderr.splitlines() if not line.startswith("import time:"))
    return result, seconds, imported


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    path = tmp_path_factory.mktemp("first-run") / "products.csv"
    path.write_text("id,title,category\n1,red boots,Shoes > Boots\n2,blue jeans,Clothing > Jeans\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("problem", ["wrong column", "empty catalog", "missing config"])
def test_train_fails_fast_before_importing_tensorflow(problem, catalog, tmp_path):
    flags = ["--catalog", catalog, "--out", tmp_path / "run", "--category-column", "category"]
    expected = {"wrong column": "['titel'] not found", "empty catalog": "the file is empty",
                "missing config": "cannot read config"}[problem]
    if problem == "wrong column":
        flags += ["--text-columns", "titel"]
    elif problem == "empty catalog":
        (tmp_path / "empty.csv").write_text("", encoding="utf-8")
        flags[1] = tmp_path / "empty.csv"
    else:
        flags += ["--config", tmp_path / "missing.yaml"]
    result, seconds, imported = _linnet("train", *flags, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("linnet train: error: ") and expected in result.stderr, result.stderr
    assert "tensorflow" not in imported and "keras" not in imported
    assert seconds < FAST, f"{problem} reported after {seconds:.1f} s"
    assert not (tmp_path / "run").exists()


def test_version_prints_the_package_version(tmp_path):
    from linnet import __version__

    result, seconds, imported = _linnet("--version", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == f"linnet {__version__}"
    assert "tensorflow" not in imported and seconds < FAST


def test_every_flag_has_a_help_line_and_every_command_a_description():
    for command in _leaf_parsers(build_parser()):
        assert command.description, command.prog
        for action in command._actions:
            assert action.help, f"{command.prog} {action.option_strings or action.dest}"


def test_every_command_takes_verbose_and_progress_is_turned_off_by_quiet():
    for command in _leaf_parsers(build_parser()):
        flags = {flag for action in command._actions for flag in action.option_strings}
        assert "--verbose" in flags, command.prog
        assert not ({"--no-progress", "--no-progress-bar"} & flags) or "--quiet" in flags, command.prog


def test_export_takes_model_like_every_other_command_and_keeps_the_old_positional():
    parser = build_parser()
    assert parser.parse_args(["export", "--model", "runs/a", "--out", "x"]).model == "runs/a"
    assert parser.parse_args(["export", "runs/a", "--out", "x"]).run_dir == "runs/a"
    for command in ("predict", "evaluate", "calibrate", "embed", "export"):
        flags = {flag for action in next(p for p in _leaf_parsers(parser) if p.prog == f"linnet {command}")._actions
                 for flag in action.option_strings}
        assert {"--model", "--quiet"} <= flags, command


def test_the_old_export_positional_says_it_is_deprecated(tmp_path):
    result, _, _ = _linnet("export", tmp_path / "no-run", "--out", tmp_path / "exports", cwd=tmp_path)
    assert result.returncode == 2
    assert f"deprecated; use --model {tmp_path / 'no-run'}" in result.stderr, result.stderr
    assert "not a finished run directory" in result.stderr


def test_the_readme_tour_writes_only_under_the_ignored_runs_directory():
    import shlex

    from test_readme import SNIPPETS

    outputs = []
    for snippet in SNIPPETS:
        if snippet.kind != "shell" or snippet.marker == "ci:install" or not snippet.text.startswith("linnet "):
            continue
        words = shlex.split(snippet.text)
        outputs += [words[index + 1] for index, word in enumerate(words) if word == "--out"]
    assert len(outputs) >= 8, outputs
    assert all(output.startswith("runs/") for output in outputs), outputs
    ignored = (REPO_ROOT / ".gitignore").read_text(encoding="utf-8").split()
    assert "runs/" in ignored
