"""Mutants in a full `grade` run: the bugs the in-notebook checks miss must still lose points.

A sample, not the whole catalog (nbgrader runs four notebooks per submission):
the bugs the research found the usual CS231n checks miss, graded next to the
reference submission. Skipped until the student release (assignments/fcnets)
exists, which `grade` needs.
"""
import pytest

from autograder import REPO_ROOT

RELEASE = REPO_ROOT / "assignments" / "fcnets"
SAMPLE = ["svm_counts_correct_class", "fc_last_layer_unregularised", "softmax_no_max_subtraction",
          "two_layer_b2_grad_keepdims"]

pytestmark = pytest.mark.skipif(not (RELEASE / "nnkit" / "__init__.py").is_file(),
                                reason="the student release assignments/fcnets is not built yet")


def test_sampled_mutants_lose_points_in_grade(kit, tmp_path, use_sandbox):
    from dataclasses import replace

    from autograder.grade import Settings, grade

    subs = tmp_path / "submissions"
    kit.build_mutant_submission(None, subs / "reference.zip")
    by_id = {m.id: m for m in kit.MUTANTS}
    for mid in SAMPLE:
        kit.build_mutant_submission(by_id[mid], subs / f"{mid}.zip")
    kit.build_monkeypatch_submission(subs / "mallory.zip")
    settings = replace(Settings(), sandbox=use_sandbox, dataset="embedded", course_secret="test-secret")
    results = {r["student_id"]: r for r in grade("fcnets", subs, tmp_path / "out", workers=2, settings=settings)}
    ref = results["reference"]
    assert ref["status"] == "graded", ref.get("reasons")
    for mid in SAMPLE:
        r = results[mid]
        assert r["score"] < ref["score"], (mid, r["score"], ref["score"], r.get("reasons"))
    # Monkeypatched numpy fooled the in-kernel cells; the trusted verdict stands and is flagged.
    mallory = results["mallory"]
    assert mallory["score"] < ref["score"]
    assert "trusted_override" in mallory["flags"], mallory.get("reasons")
