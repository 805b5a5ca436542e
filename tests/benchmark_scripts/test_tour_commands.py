"""`python -m benchmarks tour` times the README tour's own commands, read from README.md."""

from __future__ import annotations

from pathlib import Path

from benchmarks.__main__ import AREAS
from benchmarks.bench_tour import tour_commands

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_tour_benchmark_reads_every_runnable_tour_command_from_the_readme():
    commands = tour_commands(README.read_text(encoding="utf-8"))
    assert "tour" in AREAS
    assert commands[0].startswith("linnet taxonomy stats ")
    assert any(command.startswith("linnet neighbours query ") for command in commands)
    assert commands[-1].startswith("linnet beam predict "), "the scale-out section's runnable command comes last"
    assert any(command.startswith("linnet train ") and "--config training/configs/small_catalog.yaml" in command
               for command in commands)
    assert not any("serve-client" in command or "runs/gpus" in command for command in commands), "not-run blocks"
    assert all("\\" not in command for command in commands), "continuation lines are joined"
