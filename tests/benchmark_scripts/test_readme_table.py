"""README's results block: newest successful result per area, each naming its source file."""

from __future__ import annotations

import json

from benchmarks.readme_table import latest_areas, render_results, replace_block, update_readme


def _write(directory, day, areas):
    payload = {"date": day, "machine": {"cores": 2, "cpu_model": f"cpu-{day}"}, "areas": areas}
    (directory / f"{day}.json").write_text(json.dumps(payload))


def test_each_area_comes_from_its_newest_successful_run(tmp_path):
    _write(tmp_path, "2026-01-01", {"quality": {"tables": {"quality": [{"f1": 0.5}]}},
                                    "memory": {"tables": {"memory": [{"MB": 100.0}]}}})
    _write(tmp_path, "2026-01-02", {"quality": {"tables": {"quality": [{"f1": 0.9}]}},
                                    "memory": {"error": "Traceback"}})
    areas = latest_areas(tmp_path)
    assert areas["quality"][0] == "2026-01-02.json" and areas["quality"][2]["tables"]["quality"] == [{"f1": 0.9}]
    assert areas["memory"][0] == "2026-01-01.json", "a failed run must not hide the last good numbers"
    block = render_results(areas)
    assert "| 0.9 |" in block and "| 0.5 |" not in block and "`2026-01-01.json`" in block


def test_update_rewrites_only_the_marked_block(tmp_path):
    _write(tmp_path, "2026-01-01", {"pipeline": {"tables": {"pipeline": [{"examples/s": 855.0}]}}})
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- results:start -->\nold\n<!-- results:end -->\noutro\n")
    update_readme(readme, tmp_path)
    text = readme.read_text()
    assert text.startswith("intro\n<!-- results:start -->\n") and text.endswith("<!-- results:end -->\noutro\n")
    assert "old" not in text and "| 855 |" in text
    assert replace_block(text, "new\n").count("new") == 1
