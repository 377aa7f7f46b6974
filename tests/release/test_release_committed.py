"""CI: each committed `assignments/<assignment>/` is exactly what `release <assignment>` builds now.

The rebuild runs every gate but the self-grade (validate --invert executes the notebooks),
so this test proves on every run that the release leaks nothing. That the reference earns
full marks and the untouched release none is proved more strongly, through `grade` with
the sandbox and the trusted checks, by tests/grading/test_grade_assignments.py; the
self-grade gate itself is tested on the mini assignment (tests/release/test_release_gates.py).
"""
import difflib
import hashlib
import zipfile

import pytest

from autograder import REPO_ROOT
from autograder.cli import main
from autograder.manifest import list_assignments
from autograder.release.build import build_release
from autograder.release.digest import release_freshness
from autograder.release.gates import release_files


@pytest.mark.parametrize("assignment", list_assignments())
def test_committed_release_is_fresh_and_passes_every_gate(tmp_path, assignment):
    COMMITTED = REPO_ROOT / "assignments" / assignment
    report = build_release(assignment, output=tmp_path / assignment, zip_path=tmp_path / f"{assignment}.zip",
                           self_grade_gate=False)
    fresh = tmp_path / assignment
    assert COMMITTED.is_dir(), (f"no committed release: run `python -m autograder release {assignment}` and commit "
                                f"assignments/{assignment}")
    committed_files = release_files(COMMITTED)
    assert committed_files == report.files, (
        f"assignments/{assignment}/ holds other files than a fresh release; regenerate it with "
        f"`python -m autograder release {assignment}`:\n"
        + "\n".join(difflib.unified_diff(committed_files, report.files, "committed", "fresh", lineterm="")))
    stale = [f for f in report.files if (COMMITTED / f).read_bytes() != (fresh / f).read_bytes()]
    assert not stale, (f"stale files in assignments/{assignment}/ (regenerate with `python -m autograder release "
                       f"{assignment}`): {stale}")
    # What `grade` asks before grading: the committed release's digest matches source/.
    assert release_freshness(assignment, COMMITTED) is None
    # The Colab bundle holds the same files and a MANIFEST of their hashes.
    with zipfile.ZipFile(tmp_path / f"{assignment}.zip") as zf:
        lines = zf.read(f"{assignment}/MANIFEST").decode().splitlines()
        assert [l.split("  ", 1)[1] for l in lines] == report.files
        for line in lines:
            digest, name = line.split("  ", 1)
            assert hashlib.sha256(zf.read(f"{assignment}/{name}")).hexdigest() == digest == \
                hashlib.sha256((COMMITTED / name).read_bytes()).hexdigest()


def test_cli_release_of_an_unknown_assignment_fails_naming_the_gate(capsys):
    assert main(["release", "no_such_assignment"]) == 1
    err = capsys.readouterr().err
    assert "gate manifest failed: source/no_such_assignment/manifest.toml:1:" in err and "nothing changed" in err
