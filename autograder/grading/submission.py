"""Grading one submission, in a worker, as a list of stages over a typed result (``STAGES``):
copy in, repair, scan, a pristine copy of the package, the trusted checks started on it (they
run beside the notebooks), sandboxed autograde (each notebook nbgrader has written goes to the
feedback renderer as the next one starts), a row per graded cell, trusted verdicts (fail
closed), the status, the feedback pages. Returns plain data only.
"""
from __future__ import annotations

import re
import shutil
import threading
import time
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

from .execute import _guard_class
from .result import PARTIAL, SubmissionResult
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


@dataclass
class _Run:
    """The working state of one submission's grading, shared by its stages (never sent anywhere)."""

    template: Template
    settings: Settings
    student_id: str
    src: Path  # the ingested working copy
    ingest_info: dict
    course: Path  # the throwaway nbgrader course, under the worker's scratch
    started: float
    stop_at: float  # time.monotonic() deadline of the whole submission (template.wall_seconds)
    reserve: float = 0.0  # of the budget, kept back from the notebooks for trusted checks and feedback
    # (set by grade_submission: ``_reserve``)
    scores: list = field(default_factory=list)  # nbgrader's CellScore per graded cell
    incidents: list = field(default_factory=list)  # GuardedExecute's per-cell events
    nbgrader_error: str | None = None
    executed: dict = field(default_factory=dict)  # stem -> executed notebook bytes
    parsed: dict = field(default_factory=dict)  # stem -> NotebookNode
    submitted: set = field(default_factory=set)  # stems of the notebooks handed in and kept
    trusted_pending: "Future | None" = None  # the trusted checks, running beside the notebooks
    renderers: dict = field(default_factory=dict)  # kernel saw hidden tests? -> feedback.Renderer, started early
    handed_over: set = field(default_factory=set)  # notebooks given to their renderer while later ones ran

    @property
    def sub(self) -> Path:
        return self.course / "submitted" / self.student_id / self.template.assignment

    @property
    def autograded(self) -> Path:
        return self.course / "autograded" / self.student_id / self.template.assignment

    @property
    def trusted_dir(self) -> Path:
        return self.course / "trusted"


def copy_in(run: _Run, result: SubmissionResult) -> None:
    """The throwaway course: the template's source and gradebook, the submission's files, the
    release stub for each student module not handed in, the hand-in time."""
    t = run.template
    if run.course.exists():
        shutil.rmtree(run.course)
    shutil.copytree(Path(t.root) / "source", run.course / "source")
    shutil.copyfile(Path(t.root) / "gradebook.db", run.course / "gradebook.db")
    run.sub.mkdir(parents=True)
    for rel in run.ingest_info["files"]:
        (run.sub / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run.src / rel, run.sub / rel)
    missing_modules = [m for m in t.student_modules if m not in run.ingest_info["files"]]
    for rel in missing_modules:
        # A module the student did not submit is graded as the release stub (it scores 0),
        # so that the package still imports and the other modules are graded.
        (run.sub / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(t.release) / rel, run.sub / rel)
    if missing_modules:
        result.flags.add("missing_files")
        result.reasons.append("not submitted, graded as the release stub: " + ", ".join(missing_modules))
    late = run.ingest_info.get("late")
    result.late = late
    # nbgrader keeps the hand-in time in the gradebook; unknown without a source (see autograder.grading.deadline).
    stamp = late["submitted_at"].replace("T", " ").replace("+00:00", "") if late else "2000-01-01 00:00:00.000000"
    (run.sub / "timestamp.txt").write_text(stamp + " UTC\n", encoding="utf-8")


def repair(run: _Run, result: SubmissionResult) -> None:
    """Grade cells restored from the release (``repair.py``); edited or renamed ones flag the submission."""
    from .repair import repair_file

    t = run.template
    for nb in t.notebooks:
        if (run.sub / nb).is_file():
            try:
                result.repairs += [asdict(r) for r in repair_file(run.sub / nb, Path(t.release) / nb, nb,
                                                                  Path(t.students_release) / nb)]
            except Exception as exc:  # nbformat could not read it after all
                (run.sub / nb).unlink()
                run.ingest_info["refused_files"][nb] = f"unreadable notebook ({type(exc).__name__})"
    if any(r["kind"] != "updated" for r in result.repairs):
        result.flags.add("repaired")
    if any(r["kind"] in ("edited", "renamed") or (r["kind"] == "metadata" and "changed" in r["detail"])
           for r in result.repairs):
        result.flags.add("suspicious")


def scan(run: _Run, result: SubmissionResult) -> None:
    """Flag code honest solutions never need (``SUSPICIOUS``)."""
    t = run.template
    found = _scan_suspicious(run.sub, t.notebooks, t.student_modules, Path(t.release))
    if found:
        result.flags.add("suspicious")
        result.reasons.append("suspicious code: " + ", ".join(found))


def keep_pristine_package(run: _Run, result: SubmissionResult) -> None:
    """A copy of the package and models for the trusted checks, made before any kernel ran."""
    t = run.template
    for rel in t.support_files:
        if rel.startswith("nnkit/"):
            (run.trusted_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(t.root) / "source" / t.assignment / rel, run.trusted_dir / rel)
    for rel in list(t.student_modules) + [f for f in run.ingest_info["files"] if f.startswith("models/")]:
        if (run.sub / rel).is_file():
            (run.trusted_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(run.sub / rel, run.trusted_dir / rel)


def start_trusted(run: _Run, result: SubmissionResult) -> None:
    """Start the trusted checks on the pristine copy now, beside the notebooks (their own sandbox;
    they read nothing a kernel writes), so that their time hides under the notebooks'.

    Their wall limit is what the submission's budget leaves after the feedback's share
    (at most 120 s); ``trusted_verdicts`` collects the verdict."""
    if not run.template.covered:
        return
    t = run.template
    # What is left of the budget, less the feedback's half of the reserve.
    wall = max(5.0, min(120.0, run.stop_at - time.monotonic() - 0.5 * run.reserve))
    pending: Future = Future()
    started = time.perf_counter()

    def check() -> None:
        try:
            verdict = _trusted_verdicts(t, run.settings, run.student_id, run.trusted_dir, wall)
        except BaseException as exc:  # never a silent thread: no verdict is 0 (fail closed)
            verdict = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        pending.set_result((verdict, time.perf_counter() - started))

    threading.Thread(target=check, name=f"trusted-{run.student_id}", daemon=True).start()
    run.trusted_pending = pending


def start_renderers(run: _Run, result: SubmissionResult) -> None:
    """The feedback renderers, started now (one per kind of page, as ``render_feedback`` groups
    them), so that nbconvert's start-up hides under the notebooks'. Each waits, sandboxed,
    for its pages; ``feedback`` feeds them and ``grade_submission`` closes any left unused."""
    from . import feedback as fb

    t = run.template
    kinds = [nb in t.kernel_sees_hidden for nb in t.notebooks]
    wall = max(2.0, run.stop_at - time.monotonic())
    run.renderers = {hidden: fb.Renderer(wall, sandbox=run.settings.sandbox, pages=kinds.count(hidden))
                     for hidden in sorted(set(kinds))}


def _hand_over_executed(run: _Run, executed: list[str]) -> None:
    """Hand each notebook nbgrader has executed and written (``executed``: its names, in order) to
    its feedback renderer, read as ``autograde`` reads it back, so that its page renders while
    the later notebooks run (called as each notebook starts). Never raises: a notebook not
    handed over here is rendered with the rest."""
    t = run.template
    for stem in executed:
        nb = stem + ".ipynb"
        hidden = nb in t.kernel_sees_hidden
        renderer = run.renderers.get(hidden)
        if nb not in t.notebooks or renderer is None or nb in run.handed_over:
            continue
        run.handed_over.add(nb)
        try:
            raw = _read_executed(run.autograded / nb)
            if raw is not None:
                renderer.feed(t.notebooks.index(nb), raw, show_outputs=not hidden)
        except Exception:
            continue


def _reserve(t: Template) -> float:
    """Seconds of a submission's budget kept back from its notebooks: for the trusted checks and the
    feedback pages (half each) where the checks cover cells, else for the feedback pages."""
    return min(TRUSTED_RESERVE_SECONDS, 0.3 * t.wall_seconds) if t.covered else min(30.0, 0.1 * t.wall_seconds)


def autograde(run: _Run, result: SubmissionResult) -> None:
    """nbgrader's autograde, every kernel in the sandbox, execution guarded cell by cell; the
    executed notebooks read back from what nbgrader wrote."""
    from .. import nbgrader_course as nc

    t, settings, a = run.template, run.settings, run.template.assignment
    guard = _guard_class(settings.sandbox)
    guard.incidents = []
    guard.stop_at = run.stop_at - run.reserve
    guard.executed = []
    guard.notebooks = sum((run.sub / nb).is_file() for nb in t.notebooks)
    guard.before_notebook = lambda: _hand_over_executed(run, guard.executed)
    extra = {"GuardedExecute": {"notebook_timeout": settings.notebook_timeout},
             "NbGraderAPI": {"log_level": "ERROR"}}
    config = nc.build_config(run.course, assignment=a, exclude_overwriting=t.student_modules,
                             timeout=settings.cell_timeout, course_id=COURSE_ID, extra_config=extra)
    from nbgrader.converters import Autograde
    from traitlets.config import Config

    defaults = Autograde.class_traits()["autograde_preprocessors"].default()
    kernel_env = {"NNKIT_DATASET": settings.dataset}
    if settings.sandbox:
        from ..sandbox.kernel import clear_kernel_outcomes, sandbox_kernel_config
        from ..sandbox.limits import kernel_limits

        limits = kernel_limits(settings, min(settings.notebook_timeout, t.wall_seconds) + 10)
        config.merge(sandbox_kernel_config(run.autograded, limits, env=kernel_env))
        clear_kernel_outcomes(run.autograded)
    from nbgrader.preprocessors import Execute

    c = Config()
    c.Autograde.autograde_preprocessors = [guard if (p is Execute) else p for p in defaults]
    config.merge(c)
    api = nc.make_api(config)

    result.timings["prepare"] = time.perf_counter() - run.started
    env = {"NNKIT_DATASET": settings.dataset, "PYTHONPATH": None, "NNKIT_DATA_DIR": None}
    with nc.environ(**env):
        try:
            if not any((run.sub / nb).is_file() for nb in t.notebooks):
                raise _NothingToRun()
            res = api.autograde(a, run.student_id, force=True, create=True)
            if not res.get("success"):
                lines = (res.get("error") or "").strip().splitlines()[-1:] or ["nbgrader failed"]
                run.nbgrader_error = lines[0][:300]
        except _NothingToRun:
            pass  # every cell is reported "missing" below, with the reason
        except Exception as exc:
            run.nbgrader_error = f"{type(exc).__name__}: {exc}"[:300]
        finally:
            if settings.sandbox:
                guard.discard_spare()
    guard.before_notebook = None
    run.incidents = list(guard.incidents)
    result.timings["autograde"] = time.perf_counter() - run.started - result.timings["prepare"]
    try:
        run.scores = nc.cell_scores(f"sqlite:///{run.course / 'gradebook.db'}", a, run.student_id, COURSE_ID)
    except Exception as exc:
        run.scores = []
        run.nbgrader_error = run.nbgrader_error or f"could not read the scores: {exc}"[:300]

    # nbgrader wrote these from what the kernel sent over the Jupyter protocol; the kernel
    # itself could not write here (its files stay in its sandbox).
    run.executed = {nb[: -len(".ipynb")]: raw for nb in t.notebooks
                    if (raw := _read_executed(run.autograded / nb)) is not None}
    import nbformat

    for stem, raw in run.executed.items():
        try:
            run.parsed[stem] = nbformat.reads(raw.decode("utf-8", "replace"), as_version=4)
        except Exception:
            pass
    run.submitted = {nb[: -len(".ipynb")] for nb in t.notebooks if (run.sub / nb).is_file()}


def score_cells(run: _Run, result: SubmissionResult) -> None:
    """One row per graded cell of the assignment, even when nbgrader produced no score for it (a
    notebook missing or refused, nbgrader failing): never a silent gap."""
    from .. import nbgrader_course as nc

    t = run.template
    got = {(s.notebook, s.grade_id): s for s in run.scores}
    scores = [got.get((nb, gid)) or nc.CellScore(notebook=nb, grade_id=gid, cell_type=ctype, auto_score=None,
                                                 max_score=top, needs_manual_grade=True)
              for nb, gid, ctype, top in t.cells]
    for s in scores:
        row = {"notebook": s.notebook, "grade_id": s.grade_id, "kind": "auto" if s.autograded else "manual",
               "max_score": s.max_score, "score": s.auto_score, "status": "", "message": ""}
        cell_incidents = [i for i in run.incidents if i["notebook"] == s.notebook and i["grade_id"] == s.grade_id]
        nb_name = s.notebook + ".ipynb"
        if s.notebook not in run.submitted:
            why = run.ingest_info["refused_files"].get(nb_name)
            row.update(score=0.0 if s.autograded else None, status="missing",
                       message=f"{nb_name} refused: {why}" if why else f"{nb_name} was not submitted")
        elif not s.autograded:
            row["status"] = "needs_manual" if s.needs_manual_grade else ("unanswered" if s.auto_score == 0 else "graded")
        elif run.nbgrader_error and s.auto_score is None:
            row.update(score=0.0, status="not_graded",
                       message=f"nbgrader could not grade the notebook: {run.nbgrader_error}")
        elif cell_incidents:
            row.update(score=s.auto_score or 0.0, status=cell_incidents[-1]["reason"], message=cell_incidents[-1]["detail"])
        elif s.auto_score is None:
            row.update(score=0.0, status="not_graded", message="nbgrader left this cell ungraded")
        else:
            row["status"] = "passed" if s.auto_score >= s.max_score else ("partial_credit" if s.auto_score > 0 else "failed")
            if row["status"] != "passed" and nb_name in t.kernel_sees_hidden:
                # The error text came from a kernel that held hidden tests: it could carry them.
                row["message"] = "this cell's checks did not pass (details withheld: its tests are hidden)"
            elif row["status"] != "passed" and s.notebook in run.parsed:
                cell = next((c for c in run.parsed[s.notebook].cells
                             if c.metadata.get("nbgrader", {}).get("grade_id") == s.grade_id), None)
                row["message"] = _error_message(cell) if cell is not None else ""
        result.cells.append(row)


def trusted_verdicts(run: _Run, result: SubmissionResult) -> None:
    """Where the trusted checks cover a grade id, its points come from their verdict alone (fail closed)."""
    if not run.template.covered:
        return
    t0 = time.perf_counter()
    try:
        # Its sandbox enforces its wall limit (at most 120 s); the slack is for the sandbox's own exit.
        result.trusted, result.timings["trusted"] = run.trusted_pending.result(
            timeout=max(5.0, run.stop_at - time.monotonic()) + 30.0)
    except Exception as exc:  # no verdict in time (or none at all): fail closed
        result.trusted = {"error": f"the trusted checks did not answer ({type(exc).__name__})"}
    apply_trusted(result.cells, run.template.covered, result.trusted, result.flags, result.reasons)
    result.timings["trusted_wait"] = time.perf_counter() - t0


def settle_status(run: _Run, result: SubmissionResult) -> None:
    """`partial` when anything could not be graded; the flags and reasons that say why."""
    t, info = run.template, run.ingest_info
    for i in run.incidents:
        result.flags.add(i["reason"])
        where = f"{i['notebook']}.ipynb cell {i['cell_index']}" + (f" ({i['grade_id']})" if i["grade_id"] else "")
        result.reasons.append(f"{where}: {i['detail']}")
    if run.incidents or run.nbgrader_error or any(r["status"] in ("missing", "not_graded", "trusted_error")
                                                   for r in result.cells):
        result.status = PARTIAL
    if run.nbgrader_error:
        result.flags.add("nbgrader_error")
        result.reasons.append(f"nbgrader: {run.nbgrader_error}")
    for nb, why in info["refused_files"].items():
        result.reasons.append(f"{nb} refused: {why}")
    for nb in t.notebooks:
        if nb[: -len(".ipynb")] not in run.submitted and nb not in info["refused_files"]:
            result.reasons.append(f"{nb} was not submitted")
    result.ignored_files = info["ignored"]
    if info["ignored"]:
        result.flags.add("ignored_files")
    if info["refused_files"]:
        result.flags.add("refused_files")
    if result.late:
        from .deadline import Lateness

        result.reasons.append(Lateness(**result.late).describe())
        if result.late["late_seconds"] > 0:
            result.flags.add("late")


def feedback(run: _Run, result: SubmissionResult) -> None:
    """The feedback pages, rendered in the sandbox and sanitised (``render_feedback``)."""
    t0 = time.perf_counter()
    notices = []
    if result.late:
        from .deadline import Lateness

        notices = [{"kind": "notice", "message": Lateness(**result.late).describe()}]
    result.pages = render_feedback(run.template, run.settings, run.executed, result.cells + notices, run.stop_at,
                                   result.flags, result.reasons, run.renderers)
    result.timings["feedback"] = time.perf_counter() - t0
    result.executed = {stem: raw.decode("utf-8", "replace") for stem, raw in run.executed.items()}


#: The stages of grading one submission, in order (as nbgrader lists its preprocessors).
STAGES = (copy_in, repair, scan, keep_pristine_package, start_trusted, start_renderers, autograde, score_cells,
          trusted_verdicts, settle_status, feedback)


def grade_submission(template: Template, settings: Settings, student_id: str, workdir: str | None,
                     ingest_info: dict, scratch: str) -> dict:
    """Grade one ingested submission in a throwaway course; returns plain, JSON-able data
    (``SubmissionResult.to_dict()``).

    Runs in a worker process and writes nothing outside `scratch`: the feedback pages
    (`pages`: name -> sanitised HTML) and the executed notebooks (`executed`: stem ->
    JSON text) travel in the result, for the coordinator to commit. Never raises for
    anything a submission does. Every stage draws on one wall budget
    (`template.wall_seconds`): the notebooks get what is left after a reserve for the
    trusted checks and the feedback pages.
    """
    import resource

    started = time.perf_counter()
    run = _Run(template=template, settings=settings, student_id=student_id, src=Path(workdir),
               ingest_info=ingest_info, course=Path(scratch) / student_id, started=started,
               stop_at=time.monotonic() + template.wall_seconds, reserve=_reserve(template))
    result = SubmissionResult(student_id, started_at=time.time())
    try:
        for stage in STAGES:
            stage(run, result)
    finally:
        for renderer in run.renderers.values():
            renderer.close()
    shutil.rmtree(run.course, ignore_errors=True)
    result.seconds = time.perf_counter() - started
    # ru_maxrss is KiB on Linux: the worker's peak over its whole life, this submission included.
    result.worker_peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return result.to_dict()


def _read_executed(path: Path) -> bytes | None:
    """The bytes of an executed notebook nbgrader wrote, as a regular file within the budget, else None."""
    from ..trusted.execute import read_regular

    data = read_regular(path, MAX_EXECUTED_NOTEBOOK_BYTES)
    return None if data is None or len(data) > MAX_EXECUTED_NOTEBOOK_BYTES else data


def render_feedback(template: Template, settings: Settings, executed: dict[str, bytes], cells: list[dict],
                    stop_at: float, flags: set, reasons: list, renderers: dict | None = None) -> dict[str, str]:
    """One page per executed notebook (name -> HTML), rendered in the sandbox, sanitised here.

    `renderers` (kernel saw hidden tests? -> ``feedback.Renderer``) are the ones started ahead of
    time; a group without one starts its own.

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
            hidden = group[0] in template.kernel_sees_hidden
            rendered = fb.render_notebooks(items, show_outputs=not hidden,
                                           wall_seconds=max(2.0, min(120.0, left / (len(groups) - k))),
                                           sandbox=settings.sandbox, renderer=(renderers or {}).get(hidden),
                                           keys=[template.notebooks.index(nb) for nb in group])
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
