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


OLD_RELEASE = "an old release that must survive a failed build\n"


def expect_failure(repo: Path, assignment: str = "mini", **kw):
    """Build `assignment` of `repo` expecting a ReleaseError; check the old release is untouched
    and no staging folder is left. Returns the error."""
    import pytest

    from autograder.release.build import build_release
    from autograder.release.shared import ReleaseError

    out = repo / "assignments" / assignment
    out.mkdir(parents=True, exist_ok=True)
    (out / "OLD.txt").write_text(OLD_RELEASE)
    with pytest.raises(ReleaseError) as info:
        build_release(assignment, root=repo, output=out, **kw)
    assert sorted(p.name for p in out.iterdir()) == ["OLD.txt"] and (out / "OLD.txt").read_text() == OLD_RELEASE
    assert sorted(p.name for p in out.parent.iterdir()) == [assignment]
    return info.value


def assert_names(err, gate: str, path: str, line: int, *words: str) -> None:
    """The error names `gate`, `path:line` first, then holds every one of `words`."""
    text = str(err)
    assert err.gate == gate and err.path == path and err.line == line, text
    assert text.startswith(f"gate {gate} failed: {path}:{line}: "), text
    for w in words:
        assert w in text, text
