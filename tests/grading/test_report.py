"""The class report (one self-contained HTML page) and the Canvas gradebook CSV, from `grade`'s results.

The results are built here in the shape `grade` returns (student_id, status, score,
max_score, flags, reasons, cells with notebook, grade_id, kind, max_score, score,
final_score, status, message), so these tests need no kernel.
"""
from __future__ import annotations

import base64
import csv
import io
import re

import pytest

from autograder.grading import report

MAX = {"test_add": 2.0, "test_double": 1.0, "answer_why": 1.0}


def cell(grade_id, score, status="", message="", final=..., kind=None):
    return {"notebook": "01_toy", "grade_id": grade_id, "kind": kind or ("manual" if grade_id == "answer_why" else "auto"),
            "max_score": MAX[grade_id], "score": score, "final_score": score if final is ... else final,
            "status": status, "message": message}


def result(sid, status, score, cells, flags=()):
    return {"student_id": sid, "status": status, "score": score, "max_score": 4.0, "flags": list(flags),
            "reasons": [], "cells": cells}


HOSTILE = "<script>alert(1)</script> $\\undefinedmacro{x}$ \x1b[31m\u202e"


@pytest.fixture
def results():
    return [
        result("ann", "graded", 4.0, [cell("test_add", 2.0, "passed"), cell("test_double", 1.0, "passed"),
                                       cell("answer_why", None, "needs_manual", final=1.0)]),
        result("ben", "graded", 1 / 3 + 1 / 3 + 1 / 3 + 1 / 6, [
            cell("test_add", 2 / 3, "partial_credit", "add: expected 0.31 got 0.2"),
            cell("test_double", 0.0, "failed", "double: expected 4 got 3"),
            cell("answer_why", None, "needs_manual", final=None)]),
        result("cat", "partial", 1e-05, [
            cell("test_add", 0.0, "failed", "add: expected 0.45   got 0.1\nTraceback ..."),
            cell("test_double", 0.0, "trusted_error", ""),
            cell("answer_why", None, "needs_manual", final=None)], flags=["grader_error"]),
        result("dan", "graded", 3.0, [cell("test_add", 2.0, "passed"), cell("test_double", 0.0, "failed", HOSTILE),
                                       cell("answer_why", None, "needs_manual", final=None)]),
        result("../evil name", "rejected", None, [], flags=["rejected"]),
    ]


# ------------------------------------------------------------------------------- statistics


def test_check_stats_count_the_score_that_counts_and_group_failures_with_digits_folded(results):
    stats = {s["grade_id"]: s for s in report.check_stats(results)}
    assert list(stats) == ["test_add", "test_double", "answer_why"]  # notebook order
    add = stats["test_add"]
    assert (add["scored"], add["passed"], add["failures"]) == (4, 2, 2)
    assert add["pass_rate"] == 0.5 and add["mean_fraction"] == pytest.approx((1 + 1 / 3 + 0 + 1) / 4)
    # "expected 0.31 got 0.2" and "expected 0.45   got 0.1" are one kind of failure (first line only)
    assert add["distinct_failures"] == 1 and add["top_failure_count"] == 2 and add["top_failure_variants"] == 2
    assert add["top_failure"] in ("add: expected 0.31 got 0.2", "add: expected 0.45   got 0.1")
    double = stats["test_double"]
    assert (double["passed"], double["failures"], double["distinct_failures"]) == (1, 3, 3)
    # a failure without a message counts under its status
    assert "trusted_error" in {report._first_line(c.get("message") or "") or c["status"]
                               for r in results for c in r["cells"] if c["grade_id"] == "test_double"}
    why = stats["answer_why"]  # only ann's answer was marked (manual score 1 of 1)
    assert (why["scored"], why["unmarked"], why["pass_rate"]) == (1, 3, 1.0)
    results[1]["cells"][2]["final_score"] = 0.5  # a TA gives ben half marks
    why = {s["grade_id"]: s for s in report.check_stats(results)}["answer_why"]
    assert (why["scored"], why["pass_rate"], why["top_failure"]) == (2, 0.5, "marked below full marks")


def test_class_summary_leaves_rejected_submissions_out_of_the_scores(results):
    s = report.class_summary(results)
    assert s["submissions"] == 5 and s["by_status"] == {"graded": 3, "partial": 1, "rejected": 1}
    assert len(s["scores"]) == 4 and s["max_score"] == 4.0
    assert s["flags"] == {"grader_error": 1, "rejected": 1}


# ------------------------------------------------------------------------------- the page


def test_the_class_report_is_one_self_contained_page_with_three_png_figures(tmp_path, results):
    path = tmp_path / "report" / "class_report.html"
    report.write_class_report(path, results, title="toy: class report")
    page = path.read_text(encoding="utf-8")
    images = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([A-Za-z0-9+/=]+)">', page)
    assert [alt for alt, _ in images] == ["Score distribution", "Pass rate of every check",
                                          "Most common failure of every check"]
    for _, data in images:
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    assert f'content="{report.CSP}"' in page
    without_images = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)
    assert not re.search(r"<script|<iframe|<link|<object|\bon\w+\s*=|https?:|//", without_images, re.I)
    assert "5 submissions: 3 graded, 1 partial, 1 rejected" in page
    assert list(tmp_path.joinpath("report").iterdir()) == [path]  # no temp file left behind


def test_failure_messages_are_escaped_in_the_page_and_drawn_without_mathtext(tmp_path, results):
    # dan's message is the most common failure of nothing, so make it the only one of a check
    results[3]["cells"].append({**cell("answer_why", 0.0, "failed", HOSTILE), "grade_id": "test_hostile"})
    page = report.render_class_report(results)
    assert "<script>alert" not in page and "\x1b" not in page and "\u202e" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; $\\undefinedmacro{x}$ \\x1b[31m\\u202e" in page
    # with mathtext on, matplotlib would raise on "\undefinedmacro": the figure was drawn anyway
    assert page.count("data:image/png;base64,") == 3


def test_a_report_of_nothing_is_still_a_page(tmp_path):
    report.write_class_report(tmp_path / "r.html", [])
    page = (tmp_path / "r.html").read_text()
    assert "0 submissions: none." in page and page.count("Nothing to show yet.") == 3


# ------------------------------------------------------------------------------- Canvas


def canvas_accepts_header(row: list[str]) -> bool:
    """The header check of Canvas's GradebookImporter (`header?` and `update_column_count` in
    instructure/canvas-lms app/models/gradebook_importer.rb), for the Student/ID layout."""
    if not (len(row) > 3 and "Student" in row[0] and "ID" in row[1]):
        return False
    columns = 3
    if re.search(r"SIS\s+Login\s+ID", row[2]):
        columns += 1
    elif re.search(r"SIS\s+User\s+ID", row[2]) and re.search(r"SIS\s+Login\s+ID", row[3]):
        columns += 2 + (1 if re.search(r"Integration\s+ID", row[4]) else 0)
    return "Section" in row[columns - 1]


def read_csv(path):
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))


def test_the_canvas_csv_has_the_header_canvas_requires_and_unrounded_scores(tmp_path, results):
    path = tmp_path / "canvas.csv"
    report.write_canvas_csv(path, results, "toy")
    rows = read_csv(path)
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "toy"]
    assert canvas_accepts_header(rows[0])
    assert not canvas_accepts_header(["Student", "ID", "SIS User ID", "Section", "toy"])  # why SIS Login ID is there
    assert rows[1] == ["    Points Possible", "", "", "", "", "4"]
    by = {r[0]: r for r in rows[2:]}
    assert by["ann"] == ["ann", "", "ann", "", "", "4"]
    assert by["ben"][5] == repr(1 / 3 + 1 / 3 + 1 / 3 + 1 / 6) and float(by["ben"][5]) == 1 / 3 + 1 / 3 + 1 / 3 + 1 / 6
    assert by["cat"][5] == "0.00001"  # positional, never 1e-05
    evil = [r for r in rows[2:] if r[0].startswith("invalid-")]
    assert len(evil) == 1 and evil[0][5] == ""  # rejected: no grade, under its surrogate id
    assert path.read_bytes().count(b"\r\n") == len(rows)


@pytest.mark.parametrize("id_column, where", [("ID", 1), ("SIS User ID", 2), ("SIS Login ID", 3)])
def test_the_student_id_goes_in_the_chosen_canvas_identifier(tmp_path, results, id_column, where):
    report.write_canvas_csv(tmp_path / "c.csv", results[:1], "fcnets", id_column=id_column,
                            column="Assignment 2 (1234)", section="S1", points_possible=100)
    rows = read_csv(tmp_path / "c.csv")
    assert rows[0][5] == "Assignment 2 (1234)" and rows[1][5] == "100"
    expected = ["ann", "", "", "", "S1", "4"]
    expected[where] = "ann"
    assert rows[2] == expected


def test_canvas_csv_cells_are_neutralised_and_bad_options_refused(tmp_path, results):
    report.write_canvas_csv(tmp_path / "c.csv", results[:1], "toy", column="=HYPERLINK(1)", section="@SUM(A1)")
    rows = read_csv(tmp_path / "c.csv")
    assert rows[0][5] == "'=HYPERLINK(1)" and rows[2][4] == "'@SUM(A1)"
    with pytest.raises(ValueError, match="id_column"):
        report.write_canvas_csv(tmp_path / "d.csv", results, "toy", id_column="Email")


@pytest.mark.parametrize("x, text", [(None, ""), (7.0, "7"), (0.1 + 0.2, "0.30000000000000004"), (-0.0, "0"),
                                     (1e-05, "0.00001"), (2.5e16, "25000000000000000"), (float("nan"), "")])
def test_numbers_are_unrounded_and_positional(x, text):
    assert report.number(x) == text
