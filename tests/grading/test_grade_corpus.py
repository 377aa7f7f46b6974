"""`grade` on the adversarial corpus (corpus.py): one class graded once, sandboxed, 2 workers.

Each submission must get the right score, status and flags; no attack may reach
outside its sandbox (the real gradebook, the other submissions, config files,
the network) or change another student's grade.
"""
from __future__ import annotations

import csv
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from autograder import REPO_ROOT
from autograder.sandbox import bwrap as sandbox
from autograder.grading.settings import Settings
from autograder.grading.coordinator import grade

from .conftest import TOY_MANIFEST, TOY_POINTS
from .corpus import CORPUS, FULL

pytestmark = pytest.mark.skipif(not sandbox.available(), reason="bubblewrap is needed: " + sandbox.unavailable_reason())

#: Small limits so that every attack trips its limit in seconds.
SETTINGS = replace(Settings(), cell_timeout=6, notebook_timeout=90, output_bytes=1 << 20, memory_bytes=1 << 30,
                   file_bytes=64 << 20, max_processes=64, cpu_seconds=120)
HIDDEN = ("HIDDEN_ADD_CHECK", "HIDDEN_SCALE_CHECK", "ops.add(-5, 5)", "ops.scale(x, 3.0)")


@pytest.fixture(scope="module")
def graded(tmp_path_factory, toy_release):
    base = tmp_path_factory.mktemp("corpus")
    subs, out = base / "submissions", base / "out"
    subs.mkdir()
    ctx = {"gradebook": out / "gradebook.db", "repo_source": REPO_ROOT / "source", "other": subs,
           "other_ops": subs / "good" / "nnkit" / "ops.py", "out_config": out / "nbgrader_config.py",
           "repo_config": REPO_ROOT / "nbgrader_config.py"}
    for sid, (build, *_rest) in CORPUS.items():
        build(toy_release, subs / sid, ctx)
    good_ops = (subs / "good" / "nnkit" / "ops.py").read_bytes()
    results = grade(TOY_MANIFEST, subs, out, workers=2, settings=SETTINGS)
    return {"results": {r["student_id"]: r for r in results}, "out": out, "subs": subs, "base": base,
            "good_ops": good_ops, "ctx": ctx}


def _auto_score(r) -> float:
    return sum(c["final_score"] or 0.0 for c in r["cells"] if c["kind"] == "auto")


@pytest.mark.parametrize("sid", sorted(CORPUS))
def test_each_submission_gets_its_grade_status_and_flags(graded, sid):
    _, status, score, flags = CORPUS[sid]
    r = graded["results"][sid]
    detail = json.dumps({k: r[k] for k in ("status", "flags", "reasons")}, indent=1)
    assert r["status"] == status, detail
    assert flags <= set(r["flags"]), detail
    if score is None:
        assert r["cells"] == [] and r["reasons"], detail
    else:
        assert _auto_score(r) == pytest.approx(score), json.dumps(r["cells"], indent=1)
    if status == "partial":
        assert r["reasons"], "a partial grade must say which cells and why"


#: The stated ceiling of a grading worker's memory, whatever a submission does (README, "Security model").
WORKER_MEMORY_CEILING = 1536 << 20


def test_no_submission_grows_the_worker_past_its_stated_memory(graded):
    """Memory bombs, huge outputs and disk fillers stay in their sandboxes: the worker that
    graded them (its peak over its whole life) stays under the README's figure."""
    peaks = {sid: r.get("worker_peak_rss") for sid, r in graded["results"].items() if r["status"] != "rejected"}
    assert peaks and all(isinstance(v, int) and v > 0 for v in peaks.values()), peaks
    assert max(peaks.values()) < WORKER_MEMORY_CEILING, {k: v >> 20 for k, v in peaks.items()}


def test_partial_grades_name_the_cell_and_the_reason(graded):
    res = graded["results"]
    by = {sid: {c["grade_id"]: c for c in res[sid]["cells"]} for sid in res}
    # The looping/exiting cell took down the kernel: only test_double (which needs the
    # function defined in that cell) is lost, and the reason names the solution cell.
    for sid, word in (("sigint_loop", "time limit"), ("os_exit", "kernel died")):
        assert by[sid]["test_double"]["final_score"] == 0.0
        assert any("double_impl" in why and word in why for why in res[sid]["reasons"]), res[sid]["reasons"]
    assert any("out of memory" in why for why in res["memory_bomb"]["reasons"])
    assert any("more output" in why for why in res["huge_output"]["reasons"])
    filled = (graded["out"] / "autograded" / "disk_filler" / "toy" / "01_toy.ipynb").read_text()
    assert "disk full" in filled and "No space left on device" in filled  # stopped by the tmpfs's size
    assert any("01_toy.ipynb refused: invalid JSON" in why for why in res["broken_json"]["reasons"])
    assert {c["status"] for c in res["broken_json"]["cells"]} == {"missing"}
    assert any("'..'" in why for why in res["zip_slip"]["reasons"])


def test_no_attack_reached_outside_its_sandbox(graded):
    out, base = graded["out"], graded["base"]
    # What the hostile printed, from its executed notebook (its feedback shows no output:
    # the toy's kernel runs hidden tests).
    page = (out / "autograded" / "hostile" / "toy" / "01_toy.ipynb").read_text()
    for what in ("GRADEBOOK", "SOURCE", "OTHERS", "GRADEBOOK-WRITE", "CONFIG", "OTHER-WRITE", "NETWORK"):
        assert f"BLOCKED-{what}" in page, what
    # A write the hostile believes succeeded is acceptable only where it landed in the
    # sandbox's private /tmp (a repo cloned under /tmp has its venv bound there, so the
    # folders above it exist inside the sandbox): the host file must not exist.
    leaks = [line.strip() for line in page.splitlines() if "LEAKED-" in line]
    contained = [line for line in leaks
                 if (m := re.fullmatch(r"LEAKED-CONFIG (/tmp/\S+)", line)) and not Path(m.group(1)).exists()]
    assert leaks == contained, leaks
    for cfg in ("out_config", "repo_config"):
        assert not graded["ctx"][cfg].exists()
    assert (graded["subs"] / "good" / "nnkit" / "ops.py").read_bytes() == graded["good_ops"]
    # The zip's ../ member was never written anywhere.
    assert not list(base.parent.rglob("zip_slip_escaped.py"))


def test_other_students_are_unaffected_and_the_gradebook_holds_the_coordinator_scores(graded):
    from nbgrader.api import Gradebook

    res = graded["results"]
    with Gradebook(f"sqlite:///{graded['out'] / 'gradebook.db'}", "nnkit") as gb:
        for sid in ("good", "hostile", "warner", "stub"):
            sub = gb.find_submission("toy", sid)
            auto = {g.name: g.auto_score for nb in sub.notebooks for g in nb.grades if g.cell_type == "code"}
            expected = TOY_POINTS if sid != "stub" else {k: 0.0 for k in TOY_POINTS}
            assert auto == expected, sid
            assert all((g.extra_credit or 0) == 0 and g.manual_score is None for nb in sub.notebooks for g in nb.grades)
            assert sub.score == pytest.approx(res[sid]["score"])


def test_grades_csv_by_check_and_gradescope_results(graded):
    out, res = graded["out"], graded["results"]
    rows = list(csv.DictReader(open(out / "grades.csv")))
    assert [r["student_id"] for r in rows] == sorted(CORPUS)
    assert set(rows[0]) == {"student_id", "status", "score", "max_score", "late_penalty", "flags"}
    by_sid = {r["student_id"]: r for r in rows}
    assert by_sid["good"]["score"] == "6" and by_sid["good"]["max_score"] == "7" and by_sid["good"]["status"] == "graded"
    # A rejected submission is never a silent 0: no score, status and flag say why.
    assert by_sid["zip_slip"]["status"] == "rejected" and "rejected" in by_sid["zip_slip"]["flags"]
    assert by_sid["zip_slip"]["score"] == ""
    checks = list(csv.DictReader(open(out / "grades_by_check.csv")))
    assert list(checks[0]) == ["student_id", "status", "test_add", "test_double", "test_scale", "answer_why",
                               "test_model", "test_noisy"]
    row = next(r for r in checks if r["student_id"] == "sigint_loop")
    assert (row["test_add"], row["test_double"], row["answer_why"]) == ("2", "0", "")
    gs = json.loads((out / "results" / "good.json").read_text())
    assert gs["score"] == 6.0 and {t["name"] for t in gs["tests"]} == {f"01_toy: {g}" for g in [*TOY_POINTS, "answer_why"]}
    assert all(set(t) >= {"name", "score", "max_score", "status", "output", "visibility"} for t in gs["tests"])
    assert res["good"]["max_score"] == 7.0


def test_feedback_holds_no_hidden_test_and_no_other_file(graded):
    fb = graded["out"] / "feedback"
    pages = list(fb.rglob("*"))
    assert pages and all(p.is_dir() or p.suffix == ".html" for p in pages)
    stub_page = (fb / "stub" / "01_toy.html").read_text()
    assert "NotImplementedError" in stub_page  # the visible failure is explained...
    for page in fb.rglob("*.html"):
        text = re.sub(r"<[^>]+>", "", page.read_text())
        for marker in HIDDEN:
            assert marker not in text, (page, marker)  # ...but no hidden line shows
    assert not (fb / "zip_slip").exists()
