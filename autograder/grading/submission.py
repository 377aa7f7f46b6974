"""Grading one submission, in a worker: repair, sandboxed autograde, trusted verdicts (fail closed),
feedback pages. Returns plain data only.
"""
from __future__ import annotations

import re
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Iterable

from .execute import _guard_class
from .result import GRADED, PARTIAL
from .settings import COURSE_ID, Settings, TRUSTED_RESERVE_SECONDS
from .template import Template


#: The executed notebook nbgrader wrote, read back with this budget (kernel output is
#: capped far below it by Settings.output_bytes).
MAX_EXECUTED_NOTEBOOK_BYTES = 64 << 20


#: Patterns in a student's own code (solution cells, plain cells, student modules)
#: that honest CS231n code never needs; a hit flags the submission `suspicious`.
SUSPICIOUS = {
    "gradebook": r"gradebook",
    "nbgrader internals": r"nbgrader_config|NBGRADER_|SaveAutoGrades|set_custom_exc|showtraceback",
    "process control": r"os\._exit|os\.fork|os\.kill|signal\.signal|subprocess|os\.system|ctypes|sys\.exit|\bexit\(|\bquit\(",
    "network": r"\bsocket\b|urllib|requests\.|http\.client",
    "monkeypatching": r"^\s*(?:np|numpy|builtins|helpers|gradient_check|nnkit\.\w+)\.\w+\s*=(?!=)",
    "file system escape": r"\.\./\.\.|/etc/|/proc/|submitted/|autograded/",
}


class _NothingToRun(Exception):
    """No notebook of the submission survived ingest: nbgrader has nothing to execute."""


def _scan_suspicious(workdir: Path, notebooks: Iterable[str], modules: Iterable[str], release: Path) -> list[str]:
    """Names of SUSPICIOUS patterns found in the student's own code.

    Locked cells and cells identical to a release cell are the instructor's and skipped.
    """
    import nbformat

    texts = []
    for name in notebooks:
        p = workdir / name
        if p.is_file():
            try:
                nb = nbformat.read(str(p), as_version=4)
                given = {c.source for c in nbformat.read(str(release / name), as_version=4).cells}
            except Exception:
                continue
            for cell in nb.cells:
                meta = cell.metadata.get("nbgrader", {})
                if cell.cell_type == "code" and not (meta.get("locked") or meta.get("grade")) and cell.source not in given:
                    texts.append(cell.source)
    for mod in modules:
        p = workdir / mod
        if p.is_file():
            texts.append(p.read_text(encoding="utf-8", errors="replace"))
    found = []
    for name, pattern in SUSPICIOUS.items():
        if any(re.search(pattern, t, flags=re.MULTILINE) for t in texts):
            found.append(name)
    return found


def _error_message(cell) -> str:
    """A one-line reason from a graded cell's error output (hidden lines are never included)."""
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return f"{out.get('ename', 'Error')}: {str(out.get('evalue', ''))[:300]}".rstrip(": ")
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream" and out.get("name") == "stderr":
            return "wrote to stderr: " + out.get("text", "")[:200]
    return ""


def grade_submission(template: Template, settings: Settings, student_id: str, workdir: str | None,
                     ingest_info: dict, scratch: str) -> dict:
    """Grade one ingested submission in a throwaway course; returns plain, JSON-able data.

    Runs in a worker process and writes nothing outside `scratch`: the feedback pages
    (`pages`: name -> sanitised HTML) and the executed notebooks (`executed`: stem ->
    JSON text) travel in the result, for the coordinator to commit. Never raises for
    anything a submission does. Every step draws on one wall budget
    (`template.wall_seconds`): the notebooks get what is left after a reserve for the
    trusted checks and the feedback pages.
    """
    from .. import nbgrader_course as nc
    from .repair import repair_file

    started = time.perf_counter()
    stop_at = time.monotonic() + template.wall_seconds
    a = template.assignment
    course = Path(scratch) / student_id
    if course.exists():
        shutil.rmtree(course)
    shutil.copytree(Path(template.root) / "source", course / "source")
    shutil.copyfile(Path(template.root) / "gradebook.db", course / "gradebook.db")
    sub = course / "submitted" / student_id / a
    sub.mkdir(parents=True)
    src = Path(workdir)
    flags: set[str] = set()
    reasons: list[str] = []
    for rel in ingest_info["files"]:
        (sub / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / rel, sub / rel)
    missing_modules = [m for m in template.student_modules if m not in ingest_info["files"]]
    for rel in missing_modules:
        # A module the student did not submit is graded as the release stub (it scores 0),
        # so that the package still imports and the other modules are graded.
        (sub / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(template.release) / rel, sub / rel)
    if missing_modules:
        flags.add("missing_files")
        reasons.append("not submitted, graded as the release stub: " + ", ".join(missing_modules))
    late = ingest_info.get("late")
    # nbgrader keeps the hand-in time in the gradebook; unknown without a source (see autograder.grading.deadline).
    stamp = late["submitted_at"].replace("T", " ").replace("+00:00", "") if late else "2000-01-01 00:00:00.000000"
    (sub / "timestamp.txt").write_text(stamp + " UTC\n", encoding="utf-8")

    repairs = []
    for nb in template.notebooks:
        if (sub / nb).is_file():
            try:
                repairs += [asdict(r) for r in repair_file(sub / nb, Path(template.release) / nb, nb,
                                                           Path(template.students_release) / nb)]
            except Exception as exc:  # nbformat could not read it after all
                (sub / nb).unlink()
                ingest_info["refused_files"][nb] = f"unreadable notebook ({type(exc).__name__})"
    if any(r["kind"] != "updated" for r in repairs):
        flags.add("repaired")
    if any(r["kind"] in ("edited", "renamed") or (r["kind"] == "metadata" and "changed" in r["detail"]) for r in repairs):
        flags.add("suspicious")
    scan = _scan_suspicious(sub, template.notebooks, template.student_modules, Path(template.release))
    if scan:
        flags.add("suspicious")
        reasons.append("suspicious code: " + ", ".join(scan))

    # A pristine copy of the package for the trusted checks, made before any kernel ran.
    trusted_dir = course / "trusted"
    for rel in template.support_files:
        if rel.startswith("nnkit/"):
            (trusted_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(template.root) / "source" / a / rel, trusted_dir / rel)
    for rel in list(template.student_modules) + [f for f in ingest_info["files"] if f.startswith("models/")]:
        if (sub / rel).is_file():
            (trusted_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(sub / rel, trusted_dir / rel)

    autograded = course / "autograded" / student_id / a
    guard = _guard_class(settings.sandbox)
    guard.incidents = []
    reserve = min(TRUSTED_RESERVE_SECONDS, 0.3 * template.wall_seconds) if template.covered else \
        min(30.0, 0.1 * template.wall_seconds)
    guard.stop_at = stop_at - reserve
    extra = {"GuardedExecute": {"notebook_timeout": settings.notebook_timeout},
             "NbGraderAPI": {"log_level": "ERROR"}}
    config = nc.build_config(course, assignment=a, exclude_overwriting=template.student_modules,
                             timeout=settings.cell_timeout, course_id=COURSE_ID, extra_config=extra)
    from nbgrader.converters import Autograde
    from traitlets.config import Config

    defaults = Autograde.class_traits()["autograde_preprocessors"].default()
    kernel_env = {"NNKIT_DATASET": settings.dataset}
    if settings.sandbox:
        from ..sandbox.bwrap import Limits
        from ..sandbox.kernel import clear_kernel_outcomes, sandbox_kernel_config

        limits = Limits(wall_seconds=min(settings.notebook_timeout, template.wall_seconds) + 10,
                        cpu_seconds=settings.cpu_seconds, memory_bytes=settings.memory_bytes,
                        max_processes=settings.max_processes, output_bytes=settings.output_bytes,
                        file_bytes=settings.file_bytes)
        config.merge(sandbox_kernel_config(autograded, limits, env=kernel_env))
        clear_kernel_outcomes(autograded)
    from nbgrader.preprocessors import Execute

    c = Config()
    c.Autograde.autograde_preprocessors = [guard if (p is Execute) else p for p in defaults]
    config.merge(c)
    api = nc.make_api(config)

    timings = {"prepare": time.perf_counter() - started}
    nbgrader_error = None
    env = {"NNKIT_DATASET": settings.dataset, "PYTHONPATH": None, "NNKIT_DATA_DIR": None}
    with nc.environ(**env):
        try:
            if not any((sub / nb).is_file() for nb in template.notebooks):
                raise _NothingToRun()
            res = api.autograde(a, student_id, force=True, create=True)
            if not res.get("success"):
                nbgrader_error = (res.get("error") or "").strip().splitlines()[-1:] or ["nbgrader failed"]
                nbgrader_error = nbgrader_error[0][:300]
        except _NothingToRun:
            pass  # every cell is reported "missing" below, with the reason
        except Exception as exc:
            nbgrader_error = f"{type(exc).__name__}: {exc}"[:300]
    incidents = list(guard.incidents)
    timings["autograde"] = time.perf_counter() - started - timings["prepare"]
    try:
        scores = nc.cell_scores(f"sqlite:///{course / 'gradebook.db'}", a, student_id, COURSE_ID)
    except Exception as exc:
        scores = []
        nbgrader_error = nbgrader_error or f"could not read the scores: {exc}"[:300]

    # nbgrader wrote these from what the kernel sent over the Jupyter protocol; the kernel
    # itself could not write here (its files stay in its sandbox).
    executed = {nb[: -len(".ipynb")]: raw for nb in template.notebooks
                if (raw := _read_executed(autograded / nb)) is not None}
    parsed = {}
    import nbformat

    for stem, raw in executed.items():
        try:
            parsed[stem] = nbformat.reads(raw.decode("utf-8", "replace"), as_version=4)
        except Exception:
            pass

    submitted_nbs = {nb[: -len(".ipynb")] for nb in template.notebooks if (sub / nb).is_file()}
    # Every graded cell of the assignment gets a row, even when nbgrader produced no score
    # for it (a notebook missing or refused, nbgrader failing): never a silent gap.
    got = {(s.notebook, s.grade_id): s for s in scores}
    scores = [got.get((nb, gid)) or nc.CellScore(notebook=nb, grade_id=gid, cell_type=ctype, auto_score=None,
                                                 max_score=top, needs_manual_grade=True)
              for nb, gid, ctype, top in template.cells]
    cells = []
    for s in scores:
        row = {"notebook": s.notebook, "grade_id": s.grade_id, "kind": "auto" if s.autograded else "manual",
               "max_score": s.max_score, "score": s.auto_score, "status": "", "message": ""}
        cell_incidents = [i for i in incidents if i["notebook"] == s.notebook and i["grade_id"] == s.grade_id]
        nb_name = s.notebook + ".ipynb"
        if s.notebook not in submitted_nbs:
            why = ingest_info["refused_files"].get(nb_name)
            row.update(score=0.0 if s.autograded else None, status="missing",
                       message=f"{nb_name} refused: {why}" if why else f"{nb_name} was not submitted")
        elif not s.autograded:
            row["status"] = "needs_manual" if s.needs_manual_grade else ("unanswered" if s.auto_score == 0 else "graded")
        elif nbgrader_error and s.auto_score is None:
            row.update(score=0.0, status="not_graded", message=f"nbgrader could not grade the notebook: {nbgrader_error}")
        elif cell_incidents:
            row.update(score=s.auto_score or 0.0, status=cell_incidents[-1]["reason"], message=cell_incidents[-1]["detail"])
        elif s.auto_score is None:
            row.update(score=0.0, status="not_graded", message="nbgrader left this cell ungraded")
        else:
            row["status"] = "passed" if s.auto_score >= s.max_score else ("partial_credit" if s.auto_score > 0 else "failed")
            if row["status"] != "passed" and nb_name in template.kernel_sees_hidden:
                # The error text came from a kernel that held hidden tests: it could carry them.
                row["message"] = "this cell's checks did not pass (details withheld: its tests are hidden)"
            elif row["status"] != "passed" and s.notebook in parsed:
                cell = next((c for c in parsed[s.notebook].cells
                             if c.metadata.get("nbgrader", {}).get("grade_id") == s.grade_id), None)
                row["message"] = _error_message(cell) if cell is not None else ""
        cells.append(row)

    trusted = None
    if template.covered:
        t0 = time.perf_counter()
        # What is left of the budget, less a little for the feedback pages.
        wall = max(5.0, min(120.0, stop_at - time.monotonic() - 0.5 * reserve))
        trusted = _trusted_verdicts(template, settings, student_id, trusted_dir, wall)
        apply_trusted(cells, template.covered, trusted, flags, reasons)
        timings["trusted"] = time.perf_counter() - t0

    status = GRADED
    for i in incidents:
        flags.add(i["reason"])
        where = f"{i['notebook']}.ipynb cell {i['cell_index']}" + (f" ({i['grade_id']})" if i["grade_id"] else "")
        reasons.append(f"{where}: {i['detail']}")
    if incidents or nbgrader_error or any(r["status"] in ("missing", "not_graded", "trusted_error") for r in cells):
        status = PARTIAL
    if nbgrader_error:
        flags.add("nbgrader_error")
        reasons.append(f"nbgrader: {nbgrader_error}")
    for nb, why in ingest_info["refused_files"].items():
        reasons.append(f"{nb} refused: {why}")
    for nb in template.notebooks:
        if nb[: -len(".ipynb")] not in submitted_nbs and nb not in ingest_info["refused_files"]:
            reasons.append(f"{nb} was not submitted")
    if ingest_info["ignored"]:
        flags.add("ignored_files")
    if ingest_info["refused_files"]:
        flags.add("refused_files")

    if late:
        from .deadline import Lateness

        late_text = Lateness(**late).describe()
        reasons.append(late_text)
        if late["late_seconds"] > 0:
            flags.add("late")
    t0 = time.perf_counter()
    notices = [{"kind": "notice", "message": late_text}] if late else []
    pages = render_feedback(template, settings, executed, cells + notices, stop_at, flags, reasons)
    timings["feedback"] = time.perf_counter() - t0
    shutil.rmtree(course, ignore_errors=True)
    import resource

    return {"student_id": student_id, "status": status, "flags": sorted(flags), "reasons": reasons,
            "timings": {k: round(v, 3) for k, v in timings.items()},
            "cells": cells, "repairs": repairs, "ignored_files": ingest_info["ignored"], "trusted": trusted,
            "late": late,
            "feedback": sorted(pages), "seconds": round(time.perf_counter() - started, 3),
            "pages": pages, "executed": {stem: raw.decode("utf-8", "replace") for stem, raw in executed.items()},
            # ru_maxrss is KiB on Linux: the worker's peak over its whole life, this submission included.
            "worker_peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def _read_executed(path: Path) -> bytes | None:
    """The bytes of an executed notebook nbgrader wrote, as a regular file within the budget, else None."""
    from ..trusted.execute import read_regular

    data = read_regular(path, MAX_EXECUTED_NOTEBOOK_BYTES)
    return None if data is None or len(data) > MAX_EXECUTED_NOTEBOOK_BYTES else data


def render_feedback(template: Template, settings: Settings, executed: dict[str, bytes], cells: list[dict],
                    stop_at: float, flags: set, reasons: list) -> dict[str, str]:
    """One page per executed notebook (name -> HTML), rendered in the sandbox, sanitised here.

    A notebook whose kernel ran hidden tests is shown without any output (a cell can print
    `In`). Past the wall budget, or when rendering fails, the page is a notice and the
    submission is flagged `feedback_error`; the grades stand either way.
    """
    from . import feedback as fb

    pages = {}
    todo = [nb for nb in template.notebooks if nb[: -len(".ipynb")] in executed]
    # One sandbox run per kind of page (with outputs, without): one nbconvert start-up each.
    groups = [[nb for nb in todo if (nb in template.kernel_sees_hidden) == hidden] for hidden in (False, True)]
    groups = [g for g in groups if g]
    for k, group in enumerate(groups):
        left = stop_at - time.monotonic()
        # A notice (the late penalty) is about the submission: every page says it.
        items = [(executed[nb[: -len(".ipynb")]],
                  [c for c in cells if c.get("kind") == "notice" or c["notebook"] == nb[: -len(".ipynb")]],
                  nb[: -len(".ipynb")]) for nb in group]
        if left < 2:
            rendered = [fb.FeedbackError("the submission's wall budget was used up before this page")] * len(group)
        else:
            rendered = fb.render_notebooks(items, show_outputs=group[0] not in template.kernel_sees_hidden,
                                           wall_seconds=max(2.0, min(120.0, left / (len(groups) - k))),
                                           sandbox=settings.sandbox)
        for nb, page in zip(group, rendered):
            stem = nb[: -len(".ipynb")]
            if isinstance(page, fb.FeedbackError):
                flags.add("feedback_error")
                reasons.append(f"feedback for {nb} could not be rendered: {page}")
                page = fb.notice_page(stem, f"Feedback for this notebook could not be rendered ({page}). "
                                            "Your grade is not affected; ask your instructor.")
            pages[stem + ".html"] = page
    return pages


def _trusted_verdicts(template: Template, settings: Settings, student_id: str, trusted_dir: Path,
                      wall_seconds: float) -> dict:
    """The trusted checks' report, or `{"error": why}`: any failure is the grader's, never a pass."""
    from .. import trusted

    try:
        report = trusted.check_package(trusted_dir / "nnkit", template.assignment, student_id=student_id,
                                       secret=settings.course_secret, sandbox=settings.sandbox,
                                       dataset=settings.dataset, models_dir=trusted_dir / "models",
                                       wall_seconds=wall_seconds)
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"[:500]}
    return {"grade_ids": report.get("grade_ids", {}), "score": report.get("score"), "max_score": report.get("max_score"),
            "checks": [{k: c.get(k) for k in ("id", "grade_id", "status", "points", "max_points", "message")}
                       for c in report.get("checks", [])]}


def apply_trusted(cells: list[dict], covered: frozenset[str], trusted: dict, flags: set, reasons: list) -> None:
    """Fail closed: each autograded cell of a covered grade id gets the trusted verdict's points, or 0.

    The in-kernel score is kept as `in_kernel_score` for the record and never substitutes:
    no verdict (the checks crashed, timed out, or left the grade id out) is 0 with status
    `trusted_error` and the reason. A notebook that was not submitted keeps its 0 (`missing`).
    """
    verdicts = {} if "error" in trusted else trusted.get("grade_ids", {})
    if "error" in trusted:
        flags.add("trusted_error")
        reasons.append(f"the trusted checks could not run, so their cells score 0: {trusted['error']}")
    for row in cells:
        if row["kind"] != "auto" or row["grade_id"] not in covered or row["status"] == "missing":
            continue
        in_kernel = float(row["score"] or 0.0)
        row["in_kernel_score"] = in_kernel
        v = verdicts.get(row["grade_id"])
        top = float(v.get("max_points") or 0.0) if isinstance(v, dict) else 0.0
        if top <= 0:
            flags.add("trusted_error")
            why = trusted.get("error") or "the trusted checks returned no verdict for this cell"
            row.update(score=0.0, trusted_score=None, status="trusted_error",
                       message=f"not graded: {why}"[:400])
            continue
        points = round(float(v.get("points") or 0.0) * row["max_score"] / top, 6)
        row["trusted_score"] = points
        row["score"] = points
        failing = [c["message"] for c in trusted.get("checks", [])
                   if c["grade_id"] == row["grade_id"] and c["status"] != "passed"]
        row["status"] = "passed" if points >= row["max_score"] - 1e-9 else ("partial_credit" if points > 0 else "failed")
        row["message"] = ("trusted check: " + failing[0][:300]) if failing else ""
        if abs(points - in_kernel) > 1e-6:
            flags.add("trusted_override")
            reasons.append(f"{row['grade_id']}: in-kernel {in_kernel:g}, trusted checks {points:g}; the trusted verdict stands")
