"""CI: the committed `assignments/fcnets/` is exactly what `release fcnets` builds now.

The rebuild runs every gate, the self-grade included (the reference notebooks are
executed once on the embedded dataset), so this test also proves on every run that the
release leaks nothing and that the reference earns full marks.
"""
import difflib
import hashlib
import zipfile
from pathlib import Path

import pytest

from autograder import REPO_ROOT
from autograder.cli import main
from autograder.release.gates import release_files
from autograder.manifest import load_manifest
from autograder.release.build import build_release, release_freshness

COMMITTED = REPO_ROOT / "assignments" / "fcnets"


def _notebooks_exist() -> bool:
    m = load_manifest("fcnets")
    return all((REPO_ROOT / "source" / "fcnets" / nb).is_file() for nb in m.notebooks)


@pytest.mark.skipif(not _notebooks_exist(), reason="the fcnets source notebooks are not all written yet")
def test_committed_release_is_fresh_and_passes_every_gate(tmp_path):
    report = build_release("fcnets", output=tmp_path / "fcnets", zip_path=tmp_path / "fcnets.zip")
    fresh = tmp_path / "fcnets"
    assert COMMITTED.is_dir(), "no committed release: run `python -m autograder release fcnets` and commit assignments/fcnets"
    committed_files = release_files(COMMITTED)
    assert committed_files == report.files, (
        "assignments/fcnets/ holds other files than a fresh release; regenerate it with "
        "`python -m autograder release fcnets`:\n"
        + "\n".join(difflib.unified_diff(committed_files, report.files, "committed", "fresh", lineterm="")))
    stale = [f for f in report.files if (COMMITTED / f).read_bytes() != (fresh / f).read_bytes()]
    assert not stale, f"stale files in assignments/fcnets/ (regenerate with `python -m autograder release fcnets`): {stale}"
    # What `grade` asks before grading: the committed release's digest matches source/.
    assert release_freshness("fcnets", COMMITTED) is None
    # The self-grade ran: full marks for the reference, zero for the release, on every autograded cell.
    assert report.scores["reference"] and set(report.scores["reference"]) == set(report.scores["release"])
    assert all(score == top for score, top, _ in report.scores["reference"].values())
    assert all(score == 0 for score, _, _ in report.scores["release"].values())
    # The Colab bundle holds the same files and a MANIFEST of their hashes.
    with zipfile.ZipFile(tmp_path / "fcnets.zip") as zf:
        lines = zf.read("fcnets/MANIFEST").decode().splitlines()
        assert [l.split("  ", 1)[1] for l in lines] == report.files
        for line in lines:
            digest, name = line.split("  ", 1)
            assert hashlib.sha256(zf.read(f"fcnets/{name}")).hexdigest() == digest == \
                hashlib.sha256((COMMITTED / name).read_bytes()).hexdigest()


def test_cli_release_of_an_unknown_assignment_fails_naming_the_gate(capsys):
    assert main(["release", "no_such_assignment"]) == 1
    err = capsys.readouterr().err
    assert "gate manifest failed: source/no_such_assignment/manifest.toml:1:" in err and "nothing changed" in err
