"""Deadlines and the late policy (autograder.grading.deadline), on their own and through `grade`."""
from __future__ import annotations

import csv
import shutil
import zipfile
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from autograder.grading import coordinator as G
from autograder.grading.settings import Settings
from autograder.sandbox import bwrap as sandbox
from autograder.grading.deadline import (
    Deadline,
    DeadlineError,
    apply_penalty,
    lateness,
    parse_deadline,
    read_timestamps,
    submission_time,
)
from autograder.manifest import ManifestError, load_manifest

from .conftest import TOY_MANIFEST, make_submission

DUE = datetime(2026, 12, 15, 23, 59, tzinfo=timezone.utc)


def at(text):
    return datetime.fromisoformat(text).astimezone(timezone.utc)


@pytest.mark.parametrize("submitted, policy, fraction", [
    ("2026-12-15T23:59:00+00:00", "per_day", 0.0),      # exactly at the deadline
    ("2026-12-16T00:10:00+00:00", "per_day", 0.0),      # inside the 15-minute grace
    ("2026-12-16T00:30:00+00:00", "per_day", 0.1),      # a started day late
    ("2026-12-17T06:00:00+00:00", "per_day", 0.2),      # 30 h late: two started days
    ("2027-02-01T00:00:00+00:00", "per_day", 1.0),      # capped at everything
    ("2026-12-16T00:30:00+01:00", "per_day", 0.0),      # 23:30 UTC: offsets count
    ("2026-12-16T00:30:00+00:00", "cutoff", 1.0),
    ("2026-12-16T00:30:00+00:00", "none", 0.0),
])
def test_the_penalty_follows_the_policy(submitted, policy, fraction):
    d = Deadline(DUE, policy, 0.1 if policy == "per_day" else 0.0, 15)
    assert lateness(d, at(submitted), "timestamps file").penalty_fraction == pytest.approx(fraction)


def test_a_penalty_lowers_the_score_and_never_below_zero():
    r = apply_penalty({"score": 6.0, "max_score": 7.0, "late": {"penalty_fraction": 0.2}})
    assert (r["score"], r["late_penalty"]) == (pytest.approx(4.6), pytest.approx(1.4))
    assert apply_penalty({"score": 1.0, "max_score": 7.0, "late": {"penalty_fraction": 1.0}})["score"] == 0.0
    assert apply_penalty({"score": 5.0, "max_score": 7.0})["late_penalty"] == 0.0


def test_bad_deadlines_and_timestamp_files_name_the_problem(tmp_path):
    with pytest.raises(DeadlineError, match="policy"):
        parse_deadline({"due": DUE, "policy": "weekly"}, "m.toml")
    with pytest.raises(DeadlineError, match="penalty_per_day > 0"):
        parse_deadline({"due": DUE, "policy": "per_day"}, "m.toml")
    with pytest.raises(DeadlineError, match="unknown"):
        parse_deadline({"due": DUE, "deu": 1}, "m.toml")
    with pytest.raises(DeadlineError, match="date and time"):
        parse_deadline({"due": "tomorrow"}, "m.toml")
    bad = tmp_path / "t.csv"
    bad.write_text("student_id,submitted_at\nann,yesterday\n")
    with pytest.raises(DeadlineError, match=r"t.csv:2"):
        read_timestamps(bad)
    bad.write_text("who,when\n")
    with pytest.raises(DeadlineError, match="header"):
        read_timestamps(bad)
    m = tmp_path / "manifest.toml"
    m.write_text(TOY_MANIFEST.read_text() + '\n[deadline]\ndue = 2026-12-15T23:59:00Z\npolicy = "sometimes"\n')
    with pytest.raises(ManifestError, match="policy"):
        load_manifest(m)


def test_the_time_falls_back_to_the_zip_entries_then_the_folder_files(tmp_path):
    z = tmp_path / "ann.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr(zipfile.ZipInfo("a.txt", (2026, 12, 16, 8, 0, 0)), "x")
        zf.writestr(zipfile.ZipInfo("b.txt", (2026, 12, 14, 8, 0, 0)), "y")
    assert submission_time("ann", z, {}) == (datetime(2026, 12, 16, 8, 0, tzinfo=timezone.utc), "zip entries")
    stamps = {"ann": DUE}
    assert submission_time("ann", z, stamps) == (DUE, "timestamps file")
    folder = tmp_path / "ben"
    folder.mkdir()
    (folder / "x").write_text("x")
    assert submission_time("ben", folder, {})[1] == "folder files"


@pytest.mark.skipif(not sandbox.available(), reason="bubblewrap is needed: " + sandbox.unavailable_reason())
def test_grade_applies_the_late_policy_in_every_output(tmp_path, toy_release):
    # A copy of the toy assignment with a deadline (its release and source next to it, as locate expects).
    from .conftest import TOY_REPO

    repo = tmp_path / "repo"
    shutil.copytree(TOY_REPO, repo)
    manifest = repo / "source" / "toy" / "manifest.toml"
    manifest.write_text(manifest.read_text() + "\n[deadline]\ndue = 2026-12-15T23:59:00Z\n"
                        'policy = "per_day"\npenalty_per_day = 0.1\n')
    subs, out = tmp_path / "subs", tmp_path / "out"
    make_submission(toy_release, subs / "ann")
    make_submission(toy_release, subs / "ben")
    stamps = tmp_path / "lms.csv"
    stamps.write_text("student_id,submitted_at\nann,2026-12-15T20:00:00Z\nben,2026-12-17T06:00:00Z\n")
    settings = replace(Settings(), cell_timeout=20, notebook_timeout=90)
    res = {r["student_id"]: r for r in G.grade(manifest, subs, out, settings=settings, timestamps=stamps)}
    assert res["ann"]["score"] == 6.0 and "late" not in res["ann"]["flags"]
    assert res["ben"]["score"] == pytest.approx(6.0 - 0.2 * 7) and "late" in res["ben"]["flags"]
    assert any("30.0 h late" in why for why in res["ben"]["reasons"]), res["ben"]["reasons"]
    rows = {r["student_id"]: r for r in csv.DictReader(open(out / "grades.csv"))}
    assert (rows["ben"]["score"], rows["ben"]["late_penalty"]) == ("4.6", "1.4")
    assert "30.0 h late" in (out / "feedback" / "ben" / "01_toy.html").read_text()
    assert "late penalty: -1.4 points" in (out / "results" / "ben.json").read_text()
