"""`linnet.progress.progress_bar`: a bar only where a person watches (a terminal), never in a log file."""

from __future__ import annotations

import io

from linnet.progress import PROGRESS_ENV, progress_bar


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def _drawn(stream, **options) -> str:
    for _ in progress_bar(range(3), file=stream, mininterval=0, desc="work", **options):
        pass
    return stream.getvalue()


def test_no_bar_into_a_file_or_pipe(monkeypatch):
    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    assert _drawn(io.StringIO()) == ""


def test_a_bar_on_a_terminal_unless_quiet(monkeypatch):
    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    assert "work" in _drawn(_Terminal())
    assert _drawn(_Terminal(), enabled=False) == ""


def test_the_environment_forces_bars_on_or_off(monkeypatch):
    monkeypatch.setenv(PROGRESS_ENV, "1")
    assert "work" in _drawn(io.StringIO())
    monkeypatch.setenv(PROGRESS_ENV, "0")
    assert _drawn(_Terminal()) == ""
