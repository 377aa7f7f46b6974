"""Shared helpers of the release tests: copies of the golden mini-source to plant leaks in."""
import json
import shutil
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
MINI = FIXTURES / "mini_repo"
EXPECTED = FIXTURES / "mini_expected"


def mini_repo(tmp_path: Path) -> Path:
    """A fresh copy of the mini repository (source/, datasets/) to modify."""
    dest = tmp_path / "repo"
    shutil.copytree(MINI, dest)
    return dest


def edit_notebook(path: Path, edit) -> None:
    """Apply `edit(nb_dict)` to a notebook file in place."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    edit(nb)
    path.write_text(json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def grade_cell(grade_id: str, source: str, points: float = 1) -> dict:
    return {
        "cell_type": "code", "execution_count": None, "id": grade_id, "outputs": [], "source": source,
        "metadata": {"nbgrader": {"grade": True, "grade_id": grade_id, "locked": True, "points": points,
                                  "schema_version": 3, "solution": False, "task": False}},
    }


def line_containing(path: Path, needle: str) -> int:
    """1-based line of the first line of a file containing `needle` (found by plain search)."""
    for n, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        if needle in line:
            return n
    raise AssertionError(f"{needle!r} not in {path}")
