"""autograder.grading.outputs: CSV cells a spreadsheet cannot run, ids that cannot make paths, pages written safely."""
from __future__ import annotations

import csv
import json
import os

import pytest

from autograder.grading import feedback, outputs
from autograder.grading.ingest import STUDENT_ID

FORMULA = ("=", "+", "-", "@", "\t", "\r")


@pytest.mark.parametrize("value, expected", [
    ("=1+1", "'=1+1"),
    ("+SUM(A1)", "'+SUM(A1)"),
    ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
    ("@SUM(1)", "'@SUM(1)"),
    ("\t=1", "\\t=1"),  # escaped: a tab never survives as the first character
    ("\r=1", "\\r=1"),
    ("a\nFAKE,graded,77,77", "a\\nFAKE,graded,77,77"),
    ("rtl\u202egpj", "rtl\\u202egpj"),
    ("-1.5", "-1.5"),  # numbers are not formulas
    ("1e-3", "1e-3"),
    ("alice", "alice"),
    (None, ""),
])
def test_csv_cell_neutralises_formulas_and_controls(value, expected):
    assert outputs.csv_cell(value) == expected


def _result(sid, **kw):
    r = {"student_id": sid, "status": "graded", "score": 3.0, "max_score": 5.0, "flags": [], "reasons": [],
         "cells": [{"notebook": "01_toy", "grade_id": "test_add", "score": 2.0, "max_score": 2.0}]}
    r.update(kw)
    return r


def test_every_csv_field_is_neutralised_and_an_invalid_id_never_names_a_file(tmp_path):
    hostile = [
        _result("alice", flags=["=cmd()", "ok"], status="@evil"),
        _result('=HYPERLINK("evil.example","x")'),  # defensive: discover never gives such an id
        _result("x" * 251),
        _result("../../etc/passwd"),
        _result("bob", cells=[{"notebook": "01_toy", "grade_id": "+gid", "score": -1.0, "max_score": 2.0}]),
    ]
    outputs.write_all(tmp_path, "toy", hostile)
    for name in ("grades.csv", "grades_by_check.csv"):
        with open(tmp_path / name, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        assert len(rows) == 1 + len(hostile)
        for row in rows:
            for cell in row:
                assert not cell.startswith(FORMULA) or outputs._NUMBER.match(cell), (name, row)
        assert all(STUDENT_ID.match(row[0]) for row in rows[1:])
    files = sorted(p.name for p in (tmp_path / "results").iterdir())
    assert len(files) == len(hostile) and all(STUDENT_ID.match(f[: -len(".json")]) for f in files)
    assert not (tmp_path.parent / "etc").exists()
    assert json.loads((tmp_path / "results" / "alice.json").read_text())["score"] == 3.0
    table = outputs.format_table([_result("alice", status="rejected", reasons=["esc \x1b[2J here"])])
    assert "\x1b" not in table and "\\x1b[2J" in table


def _page(text="feedback"):
    return feedback.notice_page("01_toy", text)


def test_feedback_pages_are_named_by_the_grader_and_never_written_through_links(tmp_path):
    dest = tmp_path / "feedback" / "alice"
    canary = tmp_path / "canary.txt"
    canary.write_text("CANARY")
    dest.mkdir(parents=True)
    os.symlink(canary, dest / "01_toy.html")  # a link already sitting where the page goes
    assert outputs.write_feedback_pages(dest, {"01_toy.html": _page("one"), "02_toy": _page("two")}) == [
        "01_toy.html", "02_toy.html"]
    assert canary.read_text() == "CANARY"
    assert not (dest / "01_toy.html").is_symlink() and "one" in (dest / "01_toy.html").read_text()
    assert sorted(p.name for p in dest.iterdir()) == ["01_toy.html", "02_toy.html"]  # no temp file left


def test_a_dest_that_is_a_link_bad_names_and_foreign_pages_are_refused(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = tmp_path / "bob"
    os.symlink(elsewhere, link)
    with pytest.raises(ValueError, match="symlink"):
        outputs.write_feedback_pages(link, {"01_toy.html": _page()})
    assert list(elsewhere.iterdir()) == []
    for name in ("../01_toy.html", "sub/01_toy.html", ".hidden.html", "x\n.html", "y" * 300 + ".html"):
        with pytest.raises(ValueError, match="not a notebook stem"):
            outputs.write_feedback_pages(tmp_path / "c", {name: _page()})
    with pytest.raises(ValueError, match="not made by autograder.grading.feedback"):
        outputs.write_feedback_pages(tmp_path / "d", {"01_toy.html": "<html><script>alert(1)</script></html>"})
    assert not (tmp_path / "d" / "01_toy.html").exists()
