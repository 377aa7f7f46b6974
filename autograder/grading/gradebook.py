"""The real gradebook (nbgrader's `Gradebook`, SQLite or any SQLAlchemy URL), written by the coordinator only."""
from __future__ import annotations

import shutil
from pathlib import Path

from .result import REJECTED
from .settings import COURSE_ID
from .template import Assignment


def register_assignment(a: Assignment, db_url: str, scratch: Path) -> None:
    """Create or update the assignment, its notebooks and cells in the real gradebook."""
    from .. import nbgrader_course as nc

    config = nc.build_config(scratch, assignment=a.name, db_url=db_url, course_id=COURSE_ID)
    api = nc.make_api(config)
    src = nc.put_source(config, a.name, a.source_dir, list(a.manifest.notebooks))
    nc.generate_assignment(api, a.name)
    shutil.rmtree(src, ignore_errors=True)


def write_gradebook(db_url: str, assignment: str, result: dict) -> tuple[float, float]:
    """Write one result's auto scores into the gradebook; returns (score, max_score) from it.

    Manual scores and comments are never touched, so regrading keeps them and a
    manual score still beats the auto score (nbgrader's rule). Cells that could
    not be graded are left at "needs manual grade", never 0.
    """
    import warnings

    from nbgrader.api import Gradebook, MissingEntry

    sid = result["student_id"]
    # nbgrader 0.9.6 with SQLAlchemy 2 warns "Object ... not in session" on every new
    # submission; harmless (research notes), and it would bury the grade table.
    with warnings.catch_warnings(), Gradebook(db_url, COURSE_ID) as gb:
        warnings.simplefilter("ignore")
        gb.update_or_create_student(sid)
        try:
            submission = gb.find_submission(assignment, sid)
        except MissingEntry:
            submission = gb.add_submission(assignment, sid)
        by_cell = {(c["notebook"], c["grade_id"]): c for c in result.get("cells", [])}
        for nb in submission.notebooks:
            for grade in nb.grades:
                row = by_cell.get((nb.name, grade.name))
                if result["status"] == REJECTED or row is None:
                    grade.auto_score = None
                    grade.needs_manual_grade = True
                elif row["kind"] == "auto":
                    grade.auto_score = float(row["score"] or 0.0)
                    grade.needs_manual_grade = row["status"] in ("not_graded",)
                else:
                    grade.auto_score = row["score"]
                    grade.needs_manual_grade = row["status"] == "needs_manual"
        gb.db.commit()
        submission = gb.find_submission(assignment, sid)
        for nb in submission.notebooks:
            for grade in nb.grades:
                row = by_cell.get((nb.name, grade.name))
                if row is not None:
                    # What counts: the manual score when an instructor gave one, else the auto score.
                    row["final_score"] = (None if grade.manual_score is None and grade.auto_score is None
                                          else float(grade.score))
                    row["manual_score"] = None if grade.manual_score is None else float(grade.manual_score)
        return float(submission.score), float(submission.max_score)


def final_scores(db_url: str, assignment: str) -> dict[str, tuple[float, float, dict]]:
    """Per student of `assignment` in the gradebook: (score, max_score, {(notebook, grade_id): scores})
    with the scores that count now (a manual grade beats the auto score, nbgrader's rule)."""
    import warnings

    from nbgrader.api import Gradebook, MissingEntry

    out = {}
    with warnings.catch_warnings(), Gradebook(db_url, COURSE_ID) as gb:
        warnings.simplefilter("ignore")
        try:
            subs = gb.find_assignment(assignment).submissions
        except MissingEntry:
            return out
        for sub in subs:
            by_cell = {}
            for nb in sub.notebooks:
                for g in nb.grades:
                    by_cell[(nb.name, g.name)] = {
                        "final_score": None if g.manual_score is None and g.auto_score is None else float(g.score),
                        "manual_score": None if g.manual_score is None else float(g.manual_score)}
            out[sub.student.id] = (float(sub.score), float(sub.max_score), by_cell)
    return out
