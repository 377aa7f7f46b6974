"""`grade` as a command: regrading is idempotent and keeps manual grades; no sandbox, no grading."""
from __future__ import annotations

import csv
from dataclasses import replace

import pytest

from autograder.grading import coordinator as G
from autograder.grading.commands import grade_command
from autograder.grading.settings import Settings
from autograder.sandbox import bwrap as sandbox

from .conftest import STUB_OPS, TOY_MANIFEST, make_submission

SETTINGS = replace(Settings(), cell_timeout=20, notebook_timeout=90)


def test_without_bubblewrap_grading_is_refused_and_says_why(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sandbox, "available", lambda: False)
    monkeypatch.setattr(sandbox, "unavailable_reason", lambda: "bubblewrap is not installed (install the 'bubblewrap' package)")
    (tmp_path / "subs").mkdir()
    code = grade_command(str(TOY_MANIFEST), str(tmp_path / "subs"), str(tmp_path / "out"))
    err = capsys.readouterr().err
    assert code == 2 and "bubblewrap is not installed" in err and "--unsafe-no-sandbox" in err
    assert not (tmp_path / "out").exists()


def test_bad_worker_count_and_missing_folders_are_clear_errors(tmp_path, capsys):
    assert grade_command(str(TOY_MANIFEST), str(tmp_path), str(tmp_path / "out"), workers=0) == 2
    assert "--workers" in capsys.readouterr().err
    if sandbox.available():
        assert grade_command(str(TOY_MANIFEST), str(tmp_path / "nope"), str(tmp_path / "out")) == 2
        assert "--submissions" in capsys.readouterr().err


@pytest.mark.skipif(not sandbox.available(), reason="bubblewrap is needed: " + sandbox.unavailable_reason())
def test_regrading_is_idempotent_and_keeps_manual_grades_in_any_gradebook_url(tmp_path, toy_release):
    from nbgrader.api import Gradebook

    subs, out = tmp_path / "subs", tmp_path / "out"
    make_submission(toy_release, subs / "ann")
    make_submission(toy_release, subs / "ben", ops=STUB_OPS, double=None)
    db = f"sqlite:///{tmp_path / 'elsewhere' / 'course.db'}"
    (tmp_path / "elsewhere").mkdir()
    first = {r["student_id"]: r for r in G.grade(TOY_MANIFEST, subs, out, db=db, settings=SETTINGS, workers=1)}
    assert not (out / "gradebook.db").exists()  # --db was honoured
    assert (first["ann"]["score"], first["ben"]["score"]) == (6.0, 1.0)  # ben: only his saved model passes

    # An instructor grades ann's written answer and takes a point off ben's test_model by hand.
    with Gradebook(db, "nnkit") as gb:
        gb.find_grade("answer_why", "01_toy", "toy", "ann").manual_score = 1.0
        gb.find_grade("test_model", "01_toy", "toy", "ben").manual_score = 0.0
        gb.db.commit()

    second = {r["student_id"]: r for r in G.grade(TOY_MANIFEST, subs, out, db=db, settings=SETTINGS, workers=1)}
    assert (second["ann"]["score"], second["ben"]["score"]) == (7.0, 0.0)
    for sid in ("ann", "ben"):
        auto1 = {c["grade_id"]: c["score"] for c in first[sid]["cells"]}
        auto2 = {c["grade_id"]: c["score"] for c in second[sid]["cells"]}
        assert auto1 == auto2
    with Gradebook(db, "nnkit") as gb:
        assert len(gb.students) == 2 and len(gb.find_assignment("toy").submissions) == 2
        assert gb.find_grade("answer_why", "01_toy", "toy", "ann").manual_score == 1.0
    rows = {r["student_id"]: r for r in csv.DictReader(open(out / "grades.csv"))}
    assert rows["ann"]["score"] == "7" and rows["ben"]["score"] == "0"
    by_check = {r["student_id"]: r for r in csv.DictReader(open(out / "grades_by_check.csv"))}
    assert by_check["ann"]["answer_why"] == "1" and by_check["ben"]["test_model"] == "0"


def test_unsafe_no_sandbox_grades_with_the_same_guards(tmp_path, toy_release, capsys):
    # Same flow without bubblewrap (only for trusted code): the kernel-death guard still
    # turns an os._exit into a partial grade instead of failing the submission.
    subs = tmp_path / "subs"
    make_submission(toy_release, subs / "cal", double="def double(x):\n    return 2 * x\nimport os\nos._exit(1)\n")
    code = grade_command(str(TOY_MANIFEST), str(subs), str(tmp_path / "out"), unsafe_no_sandbox=True)
    captured = capsys.readouterr()
    assert code == 0 and "WITHOUT a sandbox" in captured.err
    row = next(csv.DictReader(open(tmp_path / "out" / "grades.csv")))
    # test_double needs the function from the cell that killed the kernel: 6 - 1 points.
    assert (row["student_id"], row["status"], row["score"]) == ("cal", "partial", "5")
    assert "kernel_died" in row["flags"]


@pytest.mark.skipif(not sandbox.available(), reason="bubblewrap is needed: " + sandbox.unavailable_reason())
def test_a_submission_past_its_wall_budget_is_partial_and_the_class_goes_on(tmp_path, toy_release):
    """Issue 9 (time): one wall budget per submission covers every notebook and the feedback."""
    import time

    from .conftest import cell_by_id

    subs, out = tmp_path / "subs", tmp_path / "out"

    def sleeper(nb):
        # Each cell alone is under the cell timeout; together they are far over the budget.
        cell = cell_by_id(nb, "double_impl")
        cell.source += "\nimport time\nfor _ in range(6):\n    time.sleep(8)\n"

    make_submission(toy_release, subs / "sleepy", edit=sleeper)
    make_submission(toy_release, subs / "honest")
    settings = replace(SETTINGS, wall_seconds=25.0, cell_timeout=60)
    t0 = time.monotonic()
    res = {r["student_id"]: r for r in G.grade(TOY_MANIFEST, subs, out, settings=settings, workers=1)}
    elapsed = time.monotonic() - t0
    sleepy, honest = res["sleepy"], res["honest"]
    assert sleepy["status"] == "partial" and "timeout" in sleepy["flags"], sleepy["reasons"]
    assert any("wall budget" in why or "time limit" in why for why in sleepy["reasons"]), sleepy["reasons"]
    assert sleepy["seconds"] < 25.0 + 15, sleepy["seconds"]  # the budget, plus grader work outside it
    assert honest["status"] == "graded" and honest["score"] == 6.0
    assert elapsed < 2 * 25.0 + 60


def test_a_stale_release_is_refused_unless_named_on_purpose(tmp_path, monkeypatch):
    """`grade` checks the repository's release against its source first (autograder.release.digest.release_freshness)."""
    from autograder.release import digest as release

    calls = []

    def stale(assignment, release_dir, root=None):
        calls.append(assignment)
        return "source/fcnets/manifest.toml changed since the release was built. Rebuild it."

    monkeypatch.setattr(release, "release_freshness", stale)
    (tmp_path / "subs").mkdir()
    with pytest.raises(G.GradeRunError, match="stale release: source/fcnets/manifest.toml changed"):
        G.grade("fcnets", tmp_path / "subs", tmp_path / "out", settings=SETTINGS)
    assert calls == ["fcnets"] and not (tmp_path / "out").exists()
    # Named with --release (an older release students started from): no freshness check.
    G.grade("fcnets", tmp_path / "subs", tmp_path / "out", settings=SETTINGS,
            release_dir=G.REPO_ROOT / "assignments" / "fcnets")
    assert calls == ["fcnets"]
