"""The instructor's loop after autograding: a manual grade, feedback that shows it, the class export.

grade -> a TA's manual score (written into nbgrader's gradebook, as formgrader does;
tests/browser/test_formgrader.py does it through the real page) -> `feedback` ->
`export`: every output tells the same, final grade.
"""
from __future__ import annotations

import csv
import html
import re
from dataclasses import replace

import pytest

from autograder.grading import coordinator as G
from autograder.grading.commands import export_command, feedback_command
from autograder.grading.settings import Settings
from autograder.sandbox import bwrap as sandbox

from .conftest import STUB_OPS, TOY_MANIFEST, make_submission

pytestmark = pytest.mark.skipif(not sandbox.available(), reason="bubblewrap is needed: " + sandbox.unavailable_reason())


def _page_text(path) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", path.read_text()))


def test_manual_grade_then_feedback_and_export_all_tell_the_final_grade(tmp_path, toy_release, capsys):
    from nbgrader.api import Gradebook

    subs, out = tmp_path / "subs", tmp_path / "out"
    make_submission(toy_release, subs / "ann")
    make_submission(toy_release, subs / "ben", ops=STUB_OPS, double=None)
    settings = replace(Settings(), cell_timeout=20, notebook_timeout=90)
    G.grade(TOY_MANIFEST, subs, out, settings=settings)
    page = out / "feedback" / "ann" / "01_toy.html"
    assert re.search(r"answer_why\s*:\s*-\s*/\s*1 points", _page_text(page)), "before: the answer is not graded yet"

    with Gradebook(f"sqlite:///{out / 'gradebook.db'}", "nnkit") as gb:
        gb.find_grade("answer_why", "01_toy", "toy", "ann").manual_score = 0.5
        gb.db.commit()

    assert feedback_command(str(TOY_MANIFEST), str(out)) == 0
    text = _page_text(page)
    assert re.search(r"answer_why\s*:\s*0\.5\s*/\s*1 points, graded by hand", text), text[:2000]
    assert export_command("toy", str(out)) == 0
    rows = {r["student_id"]: r for r in csv.DictReader(open(out / "grades.csv"))}
    assert (rows["ann"]["score"], rows["ben"]["score"]) == ("6.5", "1")
    by_check = {r["student_id"]: r for r in csv.DictReader(open(out / "grades_by_check.csv"))}
    assert by_check["ann"]["answer_why"] == "0.5"
    canvas = (out / "canvas.csv").read_text()
    assert "ann" in canvas and "6.5" in canvas
    assert (out / "class_report.html").read_text().startswith("<!DOCTYPE html>")
    assert "2 students" in capsys.readouterr().out
