"""The `grade`, `export` and `feedback` verbs of `python -m autograder`: arguments in, exit codes out."""
from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

from .coordinator import GradeRunError, grade
from .ingest import discover
from .settings import Settings
from .submission import _read_executed, render_feedback
from .template import cached_template, locate


def grade_command(assignment: str, submissions: str, out: str, workers: int = 1, db: str | None = None,
                  unsafe_no_sandbox: bool = False, force: bool = False, scheduler: str | None = None,
                  release: str | None = None, timestamps: str | None = None) -> int:
    """`python -m autograder grade <assignment> --submissions DIR --out DIR [--workers N] [--db URL]
    [--force] [--scheduler ADDRESS] [--release DIR]`."""
    from ..sandbox import bwrap as sandbox
    from .outputs import format_table
    from .runlock import RunLocked

    if workers < 1:
        print("grade: --workers must be at least 1", file=sys.stderr)
        return 2
    use_sandbox = True
    if scheduler is None and not sandbox.available():
        if not unsafe_no_sandbox:
            print("grade: refusing to grade without a sandbox: " + sandbox.unavailable_reason() + ".\n"
                  "Student code would run as you, able to read the hidden tests and rewrite the gradebook.\n"
                  "Install bubblewrap, or pass --unsafe-no-sandbox for submissions you trust.", file=sys.stderr)
            return 2
        use_sandbox = False
        print("grade: WARNING: grading WITHOUT a sandbox (--unsafe-no-sandbox)", file=sys.stderr)
    elif unsafe_no_sandbox:
        use_sandbox = False
        print("grade: WARNING: grading WITHOUT a sandbox (--unsafe-no-sandbox)", file=sys.stderr)
    from ..config import course_secret, grading_dataset
    from ..trusted.seeds import SecretError, resolve_secret

    secret = course_secret()
    if isinstance(secret, Path):  # read here, once: remote (Dask) workers have no such file
        try:
            secret = resolve_secret(secret)[0].decode("utf-8")
        except (SecretError, UnicodeDecodeError) as exc:
            print(f"grade: {exc}", file=sys.stderr)
            return 2
    settings = replace(Settings(), sandbox=use_sandbox, dataset=grading_dataset(), course_secret=secret)
    started = time.monotonic()
    tally = {"graded": 0, "partial": 0, "rejected": 0, "skipped": 0}
    bar = _progress_bar(submissions)

    def progress(r: dict) -> None:
        from .outputs import escape_controls, output_id

        kind = "skipped" if r.get("skipped") else r.get("status", "partial")
        tally[kind] = tally.get(kind, 0) + 1
        if bar is not None:
            bar.update(1)
        line = f"  {output_id(r['student_id'])}: {kind}" + (
            "" if r.get("skipped") or r.get("score") is None else f" {r['score']:g}/{r['max_score']:g}")
        if r.get("flags") and not r.get("skipped"):
            line += "  [" + escape_controls(",".join(r["flags"])) + "]"
        (bar.write if bar is not None else print)(line, file=sys.stderr)

    try:
        results = grade(assignment, submissions, out, workers=workers, db=db, settings=settings,
                        progress=progress, force=force, scheduler=scheduler, release_dir=release,
                        timestamps=timestamps)
    except (FileNotFoundError, ValueError, GradeRunError, RunLocked, OSError) as exc:
        if bar is not None:
            bar.close()
        print(f"grade: {exc}", file=sys.stderr)
        return 3 if isinstance(exc, GradeRunError) and str(exc).startswith("stopped") else 2
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        print("grade: interrupted; every submission finished so far is committed. Run the same command "
              "again to go on.", file=sys.stderr)
        return 130
    if bar is not None:
        bar.close()
    graded = tally["graded"] + tally["partial"]
    per = (time.monotonic() - started) / graded if graded else 0.0
    print(format_table(results))
    print(f"\n{tally['graded']} graded, {tally['partial']} partial, {tally['rejected']} rejected, "
          f"{tally['skipped']} skipped (unchanged since their committed grade; --force regrades them)"
          + (f"; {per:.1f} s per graded submission" if graded else ""))
    print(f"wrote {Path(out) / 'grades.csv'} (the whole class), grades_by_check.csv, feedback/, results/, autograded/")
    return 0


def _progress_bar(submissions: str):
    """A class-level progress bar with ETA on stderr (tqdm), or None when the folder is unreadable."""
    try:
        total = len(discover(submissions))
    except (FileNotFoundError, OSError):
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="submission", desc="grading", file=sys.stderr, dynamic_ncols=True)


def export_command(assignment: str, out: str, db: str | None = None) -> int:
    """`python -m autograder export <assignment> --out DIR [--db URL]`: the whole class from the gradebook."""
    from . import commit as C
    from .runlock import RunLock, RunLocked

    folder = Path(out).resolve()
    if not C.all_records(folder):
        print(f"export: {folder} holds no graded submission of {assignment}; run `grade` first", file=sys.stderr)
        return 2
    db_url = db or f"sqlite:///{folder / 'gradebook.db'}"
    try:
        with RunLock(folder, db_url):
            results = C.export(folder, db_url, assignment)
            try:
                from . import report

                report.write_class_report(folder / "class_report.html", results)
                report.write_canvas_csv(folder / "canvas.csv", results, assignment)
                extra = ", canvas.csv, class_report.html"
            except ImportError:
                extra = ""
    except (RunLocked, GradeRunError, C.CommitError) as exc:
        print(f"export: {exc}", file=sys.stderr)
        return 2
    print(f"export: {len(results)} students -> {folder / 'grades.csv'}, grades_by_check.csv, results/{extra}")
    return 0


def feedback_command(assignment: str, out: str, db: str | None = None, unsafe_no_sandbox: bool = False) -> int:
    """`python -m autograder feedback <assignment> --out DIR [--db URL]`: every page again, with the scores
    that count now (manual grades and comments from formgrader included), from the executed notebooks."""
    from . import commit as C
    from ..sandbox import bwrap as sandbox
    from .runlock import RunLock, RunLocked

    folder = Path(out).resolve()
    db_url = db or f"sqlite:///{folder / 'gradebook.db'}"
    use_sandbox = sandbox.available() and not unsafe_no_sandbox
    if not use_sandbox and not unsafe_no_sandbox:
        print("feedback: refusing to render student notebooks without a sandbox: " + sandbox.unavailable_reason(),
              file=sys.stderr)
        return 2
    try:
        a = locate(assignment)
        with RunLock(folder, db_url):
            settings = replace(Settings(), sandbox=use_sandbox)
            template = cached_template(a, settings)
            results = C.class_results(folder, db_url, a.name)
            if not results:
                print(f"feedback: {folder} holds no graded submission of {a.name}; run `grade` first", file=sys.stderr)
                return 2
            written = 0
            for r in results:
                nb_dir = folder / "autograded" / r["student_id"] / a.name
                executed = {nb[: -len(".ipynb")]: raw for nb in template.notebooks
                            if (raw := _read_executed(nb_dir / nb)) is not None}
                if not executed:
                    continue
                flags, reasons = set(), []
                stop_at = time.monotonic() + 120.0
                notices = []
                if r.get("late"):
                    from .deadline import Lateness

                    notices = [{"kind": "notice", "message": Lateness(**r["late"]).describe()
                                + (f"; late penalty -{r['late_penalty']:g} points" if r.get("late_penalty") else "")}]
                pages = render_feedback(template, settings, executed, r["cells"] + notices, stop_at, flags, reasons)
                C.replace_feedback(folder, r["student_id"], pages)
                written += 1
                for why in reasons:
                    print(f"  {r['student_id']}: {why}", file=sys.stderr)
    except (FileNotFoundError, ValueError, RunLocked, C.CommitError) as exc:
        print(f"feedback: {exc}", file=sys.stderr)
        return 2
    print(f"feedback: {written} students' pages rewritten in {folder / 'feedback'} with the scores that count now")
    return 0
