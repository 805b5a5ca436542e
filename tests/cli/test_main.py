"""The `linnet` command: every command module is registered, `--help` lists them without loading
TensorFlow, and a library error reaches the user as one line and exit code 2."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import subprocess
import sys

import pytest

import linnet.cli
from linnet.cli.main import COMMAND_MODULES, build_parser, main


def _commands(parser: argparse.ArgumentParser) -> set[str]:
    action = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    return set(action.choices)


def test_every_command_module_is_registered():
    with_register = {info.name for info in pkgutil.iter_modules(linnet.cli.__path__)
                     if hasattr(importlib.import_module(f"linnet.cli.{info.name}"), "register")}
    assert with_register == set(COMMAND_MODULES)
    registered = _commands(build_parser())
    for name in COMMAND_MODULES:
        alone = argparse.ArgumentParser()
        importlib.import_module(f"linnet.cli.{name}").register(alone.add_subparsers())
        assert _commands(alone) and _commands(alone) <= registered, name


def test_help_lists_every_command():
    result = subprocess.run([sys.executable, "-m", "linnet", "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    for command in _commands(build_parser()):
        assert command in result.stdout, command


def test_building_the_parser_does_not_import_tensorflow():
    code = ("import sys; import linnet.cli.main as m; m.build_parser(); "
            "sys.exit('tensorflow' in sys.modules or 'keras' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_a_library_error_is_one_line_and_exit_code_2(tmp_path, capsys):
    missing = tmp_path / "missing.json"
    assert main(["taxonomy", "stats", str(missing)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("linnet taxonomy: error: ") and str(missing) in error
    assert error.count("\n") == 1


def test_an_interrupt_exits_130(monkeypatch, tmp_path, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("linnet.taxonomy.load_taxonomy", interrupted)
    assert main(["taxonomy", "stats", str(tmp_path / "any.json")]) == 130
    assert capsys.readouterr().err == "interrupted\n"


def test_bad_flags_exit_through_argparse(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--catalog", "c.csv"])
    assert exit_info.value.code == 2 and "--out" in capsys.readouterr().err
