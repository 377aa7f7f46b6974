"""Every assignment of the kit, through `grade` as a class would be: the reference scores every
autograded point, the untouched release none (sandboxed, with the trusted checks).

The reference submission is what the instructor demo builds (autograder/course_demo.py): the
source notebooks' solutions in the release notebooks, the reference student modules, and the
models the reference notebooks save when executed once on the embedded dataset.
"""
from __future__ import annotations

from dataclasses import replace

import nbformat
import pytest

from autograder import REPO_ROOT
from autograder.manifest import list_assignments, load_manifest
from autograder.sandbox import bwrap as sandbox

pytestmark = pytest.mark.skipif(not sandbox.available(), reason="bubblewrap is needed: " + sandbox.unavailable_reason())


@pytest.mark.parametrize("assignment", list_assignments())
def test_reference_gets_every_point_and_the_untouched_release_none(tmp_path, assignment, reference_run_of):
    from autograder import course_demo
    from autograder.grading.coordinator import grade
    from autograder.grading.settings import Settings

    release = REPO_ROOT / "assignments" / assignment
    if not (release / "nnkit" / "__init__.py").is_file():
        pytest.fail(f"assignments/{assignment} is not built: run `python -m autograder release {assignment}`")
    m = load_manifest(assignment)
    run = reference_run_of(assignment)
    zips = course_demo.make_submissions(tmp_path / "submissions", m, REPO_ROOT / "source" / assignment, release,
                                        run, hostile=False)
    for extra in set(zips) - {"reference", "untouched_release"}:
        zips[extra].unlink()
    settings = replace(Settings(), dataset="embedded", course_secret="test-secret")
    results = {r["student_id"]: r for r in grade(assignment, tmp_path / "submissions", tmp_path / "out",
                                                 workers=2, settings=settings)}
    ref, untouched = results["reference"], results["untouched_release"]
    auto = lambda r: [c for c in r["cells"] if c["kind"] == "auto"]  # noqa: E731
    assert ref["status"] == "graded", ref.get("reasons")
    lost = [(c["grade_id"], c.get("final_score"), c["max_score"], c.get("message", "")[:300])
            for c in auto(ref) if c.get("final_score") != c["max_score"]]
    assert not lost, f"{assignment}: the reference loses points: {lost}"
    # Every autograded cell of the notebooks is there.
    auto_ids = {c.metadata["nbgrader"]["grade_id"] for nb in m.notebooks
                for c in nbformat.read(str(REPO_ROOT / "source" / assignment / nb), as_version=4).cells
                if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")}
    assert auto_ids and {c["grade_id"] for c in auto(ref)} == auto_ids
    got = [(c["grade_id"], c.get("final_score")) for c in auto(untouched) if c.get("final_score")]
    assert not got, f"{assignment}: the untouched release scores {got}"
