"""The README's speed table is what `make bench` printed (bench/readme_rows.py), never typed."""
from __future__ import annotations

import sys

import pytest

from autograder import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "bench"))
import readme_rows  # noqa: E402


def test_rows_printed_by_a_benchmark_replace_the_table_and_nothing_else(capsys):
    readme_rows.row("an | epoch", "1.00 s", "1.2x its bound")
    readme_rows.row("features", "2 s", "16x the loop")
    printed = "noise line\n" + capsys.readouterr().out + "more noise\n"
    rows = readme_rows.rows_in(printed)
    assert rows == [["an / epoch", "1.00 s", "1.2x its bound"], ["features", "2 s", "16x the loop"]]
    before = f"# Title\n\nintro\n{readme_rows.BEGIN}\n| old | row | here |\n{readme_rows.END}\n\n## Next\n"
    after = readme_rows.replace_table(before, readme_rows.table(rows, ["--quick"]))
    assert after.startswith("# Title\n\nintro\n" + readme_rows.BEGIN) and after.endswith(readme_rows.END + "\n\n## Next\n")
    assert "| old | row | here |" not in after
    assert "| an / epoch | 1.00 s | 1.2x its bound |" in after and "`make bench --quick`" in after
    with pytest.raises(ValueError, match="no speed table"):
        readme_rows.replace_table("# a README without the markers\n", "x")


def test_the_readme_holds_one_generated_speed_table():
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert text.count(readme_rows.BEGIN) == 1 and text.count(readme_rows.END) == 1
    inside = text[text.index(readme_rows.BEGIN):text.index(readme_rows.END)]
    rows = [line for line in inside.splitlines() if line.startswith("| ") and "---" not in line][1:]
    # Either not measured yet, or rows of three cells as readme_rows.table writes them.
    assert "not measured yet" in inside or (rows and all(line.count(" | ") == 2 for line in rows)), inside


def test_every_benchmark_gives_the_table_a_row():
    for script in sorted((REPO_ROOT / "bench").glob("bench_*.py")):
        assert "row(" in script.read_text(encoding="utf-8"), f"{script.name} prints no README row"
