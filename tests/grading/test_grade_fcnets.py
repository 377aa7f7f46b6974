"""End to end on the real fcnets release: the untouched release and a hostile submission.

The hostile one (autograder/course_demo.py) has an affine layer that forgets its
bias, and a cell that tries to read and rewrite the gradebook, reach the network,
and monkeypatches numpy so the wrong layer passes its in-kernel check. The trusted
checks must score it, the sandbox must contain it. Skipped until the release
`assignments/fcnets` is built.
"""
from __future__ import annotations

import html
import re
from dataclasses import replace

import pytest

from autograder import REPO_ROOT, sandbox

RELEASE = REPO_ROOT / "assignments" / "fcnets"
pytestmark = [
    pytest.mark.skipif(not (RELEASE / "nnkit" / "__init__.py").is_file(), reason="assignments/fcnets is not built yet"),
    pytest.mark.skipif(not sandbox.available(), reason="bubblewrap is needed: " + sandbox.unavailable_reason()),
]


def test_fcnets_untouched_release_scores_zero_and_hostile_is_contained_and_scored_by_trusted_checks(tmp_path):
    from nbgrader.api import Gradebook

    from autograder import course_demo
    from autograder.grade import Settings, cached_template, grade, locate
    from autograder.manifest import load_manifest

    m = load_manifest("fcnets")
    subs, out = tmp_path / "submissions", tmp_path / "out"
    zips = course_demo.make_submissions(subs, m, REPO_ROOT / "source" / "fcnets", RELEASE, tmp_path / "no_models")
    for sid in ("reference", "typical_bugs"):
        zips[sid].unlink()
    settings = replace(Settings(), dataset="embedded", course_secret="test-secret")
    results = {r["student_id"]: r for r in grade("fcnets", subs, out, workers=2, settings=settings)}

    untouched = results["untouched_release"]
    assert untouched["status"] == "graded", untouched["reasons"]
    auto = [c for c in untouched["cells"] if c["kind"] == "auto"]
    assert auto and all(c["final_score"] == 0.0 for c in auto)
    assert not {"repaired", "suspicious"} & set(untouched["flags"])

    hostile = results["hostile"]
    assert {"suspicious", "trusted_override"} <= set(hostile["flags"]), hostile["reasons"]
    affine = next(c for c in hostile["cells"] if c["grade_id"] == "test_affine_forward")
    # Fooled in the kernel (numpy patched), failed by the trusted check: the trusted verdict stands.
    assert affine["in_kernel_score"] == affine["max_score"] and affine["final_score"] == 0.0

    page = html.unescape(re.sub(r"<[^>]+>", "", (out / "feedback" / "hostile" / "01_layers.html").read_text()))
    assert "cannot see ../../../gradebook.db" in page
    assert re.search(r"^gradebook write failed: \w+$", page, re.M) and re.search(r"^network blocked: \w+$", page, re.M)
    # The source holds the words too (inside print calls); an output line would be alone.
    assert not re.search(r"^\s*(rewrote the gradebook|network reached)\s*$", page, re.M)
    with Gradebook(f"sqlite:///{out / 'gradebook.db'}", "nnkit") as gb:
        grades = [g for nb in gb.find_submission("fcnets", "untouched_release").notebooks for g in nb.grades]
        assert all(g.auto_score in (0.0, None) for g in grades)

    secret = cached_template(locate("fcnets")).hidden_lines
    assert secret, "the fcnets notebooks hold hidden tests"
    for page in (out / "feedback").rglob("*"):
        assert page.is_dir() or page.suffix == ".html", page
        if page.suffix == ".html":
            text = re.sub(r"<[^>]+>", "", page.read_text())
            assert not [line for line in secret if len(line) >= 8 and line in text], page
