"""The real gradebook (nbgrader's `Gradebook`, SQLite or any SQLAlchemy URL), written by the coordinator
only (and, before its first write, by the process that registers the assignment: `Registration`)."""
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


class RegistrationError(RuntimeError):
    """The assignment could not be registered in the real gradebook (nbgrader's error in the message)."""


class Registration:
    """`register_assignment`, run beside the first submissions instead of before them.

    nbgrader's generate_assignment takes one to two seconds that the first submission need not
    wait for: with a worker context (the worker server's, nbgrader already imported there) it
    runs in a forked process of its own, which keeps nbgrader's chdir into its course folder out
    of the coordinator; without one it runs here at once. Every write to the gradebook calls
    :meth:`wait` first.
    """

    def __init__(self, a: Assignment, db_url: str, scratch: Path, ctx=None):
        self._proc = self._conn = None
        self._error: str | None = None
        if ctx is None:
            self._error = _register(a, db_url, scratch)
            return
        self._conn, child = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(target=_register_main, args=(child, a, db_url, str(scratch)),
                                 name="nnkit-register", daemon=True)
        self._proc.start()
        child.close()

    def wait(self) -> None:
        """Return once the assignment is registered; raise RegistrationError if it could not be."""
        if self._proc is not None:
            try:
                self._error = self._conn.recv()  # None on success
            except EOFError:
                self._proc.join()
                self._error = f"the registering process died (exit code {self._proc.exitcode})"
            self._proc.join()
            self._conn.close()
            self._proc = None
        if self._error is not None:
            raise RegistrationError(f"the assignment could not be registered in the gradebook: {self._error}")

    def stop(self) -> None:
        """Kill an unfinished registration (the run is stopping); a rerun registers again."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.join()
            self._conn.close()
            self._proc, self._error = None, "stopped"


def _register_main(conn, a: Assignment, db_url: str, scratch: str) -> None:
    from .pool import die_with_parent

    die_with_parent()
    conn.send(_register(a, db_url, Path(scratch)))
    conn.close()


def _register(a: Assignment, db_url: str, scratch: Path) -> str | None:
    """`register_assignment`; None, or what went wrong."""
    try:
        register_assignment(a, db_url, scratch)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"[-4000:]
    return None


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
