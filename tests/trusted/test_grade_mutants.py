"""Mutants in a full `grade` run: the bugs the in-notebook checks miss must still lose points.

A sample, not the whole catalog (nbgrader runs four notebooks per submission,
about a minute each on 2 busy cores): two bugs the research found the usual
CS231n checks miss, and a wrong module hidden behind monkeypatched numpy. The
reference submission's full marks are the grading tests' business; here each
sample must score below the maximum. Skipped until the student release
(assignments/fcnets) exists, which `grade` needs.
"""
import pytest

from autograder import REPO_ROOT

RELEASE = REPO_ROOT / "assignments" / "fcnets"
SAMPLE = ["svm_counts_correct_class", "fc_last_layer_unregularised"]

pytestmark = pytest.mark.skipif(not (RELEASE / "nnkit" / "__init__.py").is_file(),
                                reason="the student release assignments/fcnets is not built yet")


def test_sampled_mutants_lose_points_in_grade(kit, tmp_path, use_sandbox):
    from dataclasses import replace

    from autograder.grading.settings import Settings
    from autograder.grading.coordinator import grade

    subs = tmp_path / "submissions"
    by_id = {m.id: m for m in kit.MUTANTS}
    for mid in SAMPLE:
        kit.build_mutant_submission(by_id[mid], subs / f"{mid}.zip")
    kit.build_monkeypatch_submission(subs / "mallory.zip")
    settings = replace(Settings(), sandbox=use_sandbox, dataset="embedded", course_secret="test-secret")
    results = {r["student_id"]: r for r in grade("fcnets", subs, tmp_path / "out", workers=2, settings=settings)}
    for mid in SAMPLE:
        r = results[mid]
        assert r["status"] == "graded", (mid, r.get("reasons"))
        assert r["score"] < r["max_score"], (mid, r["score"], r["max_score"], r.get("reasons"))
    # Monkeypatched numpy fooled the in-kernel cells; the trusted verdict stands and is flagged.
    mallory = results["mallory"]
    assert mallory["score"] < mallory["max_score"]
    assert "trusted_override" in mallory["flags"], mallory.get("reasons")


def test_every_trusted_grade_id_is_an_autograded_cell_with_the_same_points():
    """So a point lost in check-package is a point lost in `grade` (which maps verdicts by grade_id)."""
    import json

    from autograder.trusted import covered_grade_ids, points_for

    cells = {}
    for nb in sorted(RELEASE.glob("*.ipynb")):
        for cell in json.loads(nb.read_text())["cells"]:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if meta.get("grade") and cell["cell_type"] == "code":
                cells[meta["grade_id"]] = float(meta.get("points", 0))
    trusted = covered_grade_ids("fcnets")
    assert trusted == set(cells), (sorted(trusted - set(cells)), sorted(set(cells) - trusted))
    points = points_for("fcnets")
    for grade_id in covered_grade_ids("fcnets", models=False):
        assert points[grade_id] == cells[grade_id], grade_id
