"""`python -m autograder grade`: sandboxed, parallel autograding of a whole class.

The flow, for `grade(assignment, submissions, out)`:

1. **Template.** One throwaway nbgrader course is built from the assignment's
   source notebooks (with hidden tests) and the release's non-notebook files
   (the stubbed student modules, the grader-owned nnkit modules, the datasets);
   nbgrader's generate_assignment fills its gradebook and makes the release
   notebooks that `repair` restores grade cells from. Nothing of the reference
   package is in it, so no misconfiguration can grade a student on it.
2. **Ingest** (`autograder.grading.ingest`) makes a safe working copy of each submission,
   or refuses it with a reason.
3. **Workers.** `workers` processes (multiprocessing, spawn) import nbgrader once
   and then grade one submission at a time, each in its own copy of the template
   course with its own copy of the template gradebook: repair
   (`autograder.grading.repair`), nbgrader's autograde through `NbGraderAPI` with the
   student's kernel in bubblewrap (`autograder.sandbox.kernel`), the per-cell
   scores, the trusted checks (`autograder.trusted`, where the assignment has
   them) and the feedback HTML. A worker returns plain data only.
4. **Coordinator.** This process alone writes the real gradebook (nbgrader's
   `Gradebook`, SQLite in `out` or any SQLAlchemy URL), keeps manual grades,
   and writes `grades.csv`, `grades_by_check.csv`, `results/` (`autograder.grading.outputs`).
   A worker that hangs past the submission's hard deadline, or dies, is killed
   and replaced; that submission is recorded as `partial`, never as a silent 0.

Trust (README, "Security model"): every autograded point of a grade id that the
trusted checks cover comes from the trusted verdict alone, and a missing verdict
is 0 with status `trusted_error` (fail closed); the kernel never sees the hidden
tests of those cells (they are cut from the template course); the kernel writes
only inside its sandbox, so nothing here opens a path student code wrote; the
feedback pages are rendered in a sandbox and sanitised here. One wall budget,
the manifest's `[grading] wall_seconds`, covers a submission's kernels, trusted
checks and feedback.

Execution is guarded cell by cell (`GuardedExecute`): a per-cell timeout bounded
by what is left of the notebook's wall budget; a dead kernel (`os._exit`, a
memory or output limit, a loop that ignores SIGINT) is restarted and the earlier
non-test cells replayed silently, so one bad cell costs that cell, not the
notebook; every such event is recorded with its cell and reason.
"""
from __future__ import annotations

import multiprocessing
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Iterable

from .. import REPO_ROOT
from .ingest import IngestLimits, discover, ingest
from ..manifest import Manifest, load_manifest

COURSE_ID = "nnkit"

#: Status of a whole submission.
GRADED, PARTIAL, REJECTED = "graded", "partial", "rejected"

#: Why a kernel stopped (sandbox_kernel's reasons) -> the cell status we report.
KERNEL_REASONS = {"timeout": "timeout", "cpu": "timeout", "output": "output_limit", "memory": "memory",
                  "died": "kernel_died", None: "kernel_died", "shutdown": "kernel_died"}

#: The executed notebook nbgrader wrote, read back with this budget (kernel output is
#: capped far below it by Settings.output_bytes).
MAX_EXECUTED_NOTEBOOK_BYTES = 64 << 20
#: Slack the coordinator gives a worker past a submission's wall budget before it kills it
#: (nbgrader's own start-up and gradebook work are outside the budgeted steps).
DEADLINE_SLACK_SECONDS = 120.0
#: Of a submission's wall budget, what is kept back from the notebooks for the trusted
#: checks and the feedback pages (a fraction, at most TRUSTED_RESERVE_SECONDS).
TRUSTED_RESERVE_SECONDS = 90.0

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


@dataclass(frozen=True)
class Settings:
    """Limits and switches of one grading run.

    cell_timeout : seconds per cell (nbgrader's Execute.timeout).
    notebook_timeout : seconds of wall time for a whole notebook, within the
        submission's budget (the manifest's `[grading] wall_seconds`, or `wall_seconds` here).
    wall_seconds : overrides the manifest's per-submission wall budget (None: the manifest's).
    output_bytes : output a kernel may send over a notebook before it is stopped.
    file_bytes : one file, and all the kernel's files together (its private /tmp tmpfs).
    memory_bytes, cpu_seconds, max_processes : the sandbox's limits.
    dataset : NNKIT_DATASET of every kernel (the grader picks it, never the student).
    sandbox : run kernels in bubblewrap (False only with --unsafe-no-sandbox).
    trusted : use the trusted checks where the assignment has them.
    """

    cell_timeout: int = 120
    notebook_timeout: int = 900
    wall_seconds: float | None = None
    output_bytes: int = 4 << 20
    memory_bytes: int = 4 << 30
    cpu_seconds: int = 1800
    max_processes: int = 256
    file_bytes: int = 256 << 20
    dataset: str = "embedded"
    sandbox: bool = True
    trusted: bool = True
    course_secret: str | None = None
    ingest_limits: IngestLimits = IngestLimits()

    def budget(self, manifest: Manifest) -> float:
        """Wall seconds of one submission, everything included."""
        return float(self.wall_seconds or manifest.wall_seconds)


# ------------------------------------------------------------------------------------ assignment


@dataclass(frozen=True)
class Assignment:
    """Where an assignment's parts are: its manifest, source notebooks and release folder."""

    manifest: Manifest
    source_dir: Path
    release_dir: Path

    @property
    def name(self) -> str:
        return self.manifest.assignment


def locate(assignment: str | Path, root: Path = REPO_ROOT, release_dir: str | Path | None = None) -> Assignment:
    """An assignment by name (`source/<name>/manifest.toml` in the repo) or by manifest path.

    The release is `release_dir`, by default `<repo>/assignments/<name>/` beside
    `<repo>/source/<name>/`.
    """
    manifest = load_manifest(assignment, root)
    source_dir = manifest.path.parent
    release_dir = Path(release_dir) if release_dir else source_dir.parent.parent / "assignments" / manifest.assignment
    if not (release_dir / "nnkit").is_dir():
        raise FileNotFoundError(
            f"no release at {release_dir}: build it first with `python -m autograder release {manifest.assignment}`")
    for nb in manifest.notebooks:
        if not (source_dir / nb).is_file():
            raise FileNotFoundError(f"source notebook {source_dir / nb} is missing")
    return Assignment(manifest, source_dir, release_dir)


def _release_support_files(release_dir: Path) -> list[str]:
    """The release's non-notebook files that belong in every graded copy (package, datasets)."""
    out = []
    for p in sorted(release_dir.rglob("*")):
        rel = p.relative_to(release_dir)
        if not p.is_file() or any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
            continue
        if p.suffix in (".ipynb", ".pyc", ".zip"):
            continue
        out.append(rel.as_posix())
    return out


def _cut_hidden_tests(source: str) -> str:
    """`source` without its `### BEGIN HIDDEN TESTS` ... `### END HIDDEN TESTS` regions (markers included)."""
    kept, inside = [], False
    for line in source.splitlines(keepends=True):
        if "BEGIN HIDDEN TESTS" in line:
            inside = True
        elif "END HIDDEN TESTS" in line:
            inside = False
        elif not inside:
            kept.append(line)
    return "".join(kept)


def keep_hidden_tests_from_kernel(src: Path, notebooks: Iterable[str], covered: frozenset[str]) -> tuple[str, ...]:
    """Cut the hidden tests of the grade cells the trusted checks cover from the template's
    source notebooks in `src`, so no kernel ever holds them; returns the notebooks whose
    kernels still see hidden tests (cells no trusted check covers).

    Those cells are scored in the kernel, and nothing that kernel printed may reach the
    student (their feedback is rendered without outputs): a cell can print `In`.
    """
    import nbformat

    still_hidden = []
    for name in notebooks:
        nb = nbformat.read(str(src / name), as_version=4)
        for cell in nb.cells:
            if "BEGIN HIDDEN TESTS" not in cell.source:
                continue
            if cell.metadata.get("nbgrader", {}).get("grade_id") in covered:
                cell.source = _cut_hidden_tests(cell.source)
            elif name not in still_hidden:
                still_hidden.append(name)
        nbformat.write(nb, str(src / name))
    return tuple(still_hidden)


def trusted_coverage(assignment: str, use_trusted: bool) -> frozenset[str]:
    """The grade ids whose points come from the trusted checks (empty without them)."""
    if not use_trusted:
        return frozenset()
    from .. import trusted

    if assignment not in trusted.SUPPORTED:
        return frozenset()
    return frozenset(trusted.covered_grade_ids(assignment))


@dataclass(frozen=True)
class Template:
    """The prepared template course (plain data: it is sent to the workers)."""

    assignment: str
    root: str  # the template course folder
    release: str  # nbgrader's release of the assignment (repair's reference)
    notebooks: tuple[str, ...]
    student_modules: tuple[str, ...]
    submission_files: tuple[str, ...]
    support_files: tuple[str, ...]
    covered: frozenset[str]  # grade ids scored by the trusted checks alone
    kernel_sees_hidden: tuple[str, ...]  # notebooks whose kernel runs hidden tests (feedback without outputs)
    wall_seconds: float  # one submission's budget
    cells: tuple[tuple[str, str, str, float], ...] = ()  # (notebook, grade_id, cell_type, max_score) per graded cell
    students_release: str = ""  # the release folder students were given (may predate the source)


_TEMPLATES: dict[str, Template] = {}


def _inputs_digest(a: Assignment) -> str:
    import hashlib

    h = hashlib.sha256(a.name.encode())
    files = [a.source_dir / nb for nb in a.manifest.notebooks]
    files += [a.release_dir / rel for rel in _release_support_files(a.release_dir)]
    for f in files:
        h.update(str(f).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def cached_template(a: Assignment, settings: Settings = Settings()) -> Template:
    """The template course for `a`, built once per process and per content of its inputs.

    It lives in its own temporary folder, removed when the process exits; a change to a
    source notebook or a release file builds a fresh one.
    """
    import atexit

    key = (_inputs_digest(a), settings.trusted, settings.budget(a.manifest))
    t = _TEMPLATES.get(key)
    if t is None or not Path(t.root, "gradebook.db").is_file():
        root = Path(tempfile.mkdtemp(prefix="nnkit-template-"))
        atexit.register(shutil.rmtree, root, True)
        t = _TEMPLATES[key] = prepare_template(a, root / "course", settings)
    return t


def prepare_template(a: Assignment, root: Path, settings: Settings = Settings()) -> Template:
    """Build the template course in `root` (see the module docstring, step 1)."""
    from .. import nbgrader_course as nc

    m = a.manifest
    covered = trusted_coverage(m.assignment, settings.trusted)
    config = nc.build_config(root, assignment=m.assignment, exclude_overwriting=m.student_modules,
                             course_id=COURSE_ID)
    api = nc.make_api(config)
    src = nc.put_source(config, m.assignment, a.source_dir, list(m.notebooks))
    support = _release_support_files(a.release_dir)
    nc.copy_tree(a.release_dir, src, support)
    kernel_sees_hidden = keep_hidden_tests_from_kernel(src, m.notebooks, covered)
    release = nc.generate_assignment(api, m.assignment)
    from nbgrader.api import Gradebook

    with Gradebook(config.CourseDirectory.db_url, COURSE_ID) as gb:
        cells = tuple((nb.name, gc.name, gc.cell_type, float(gc.max_score))
                      for nb in gb.find_assignment(m.assignment).notebooks for gc in nb.grade_cells)
    return Template(assignment=m.assignment, root=str(root), release=str(release), notebooks=m.notebooks, cells=cells,
                    students_release=str(a.release_dir),
                    student_modules=m.student_modules, submission_files=m.submission_files,
                    support_files=tuple(support), covered=covered, kernel_sees_hidden=kernel_sees_hidden,
                    wall_seconds=settings.budget(m))


# ------------------------------------------------------------------------------------ execution guard


def _guard_class(sandboxed: bool):
    """GuardedExecute on top of nbgrader's Execute or the sandbox's SandboxedExecute."""
    from jupyter_core.utils import run_sync
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from nbformat import NotebookNode
    from traitlets import Integer

    if sandboxed:
        from ..sandbox.kernel import SandboxedExecute as Base
    else:
        from nbgrader.preprocessors import Execute as Base

    class GuardedExecute(Base):
        """nbgrader's Execute that survives dead and stuck kernels and records why.

        incidents (class attribute, per worker process): one dict per event,
        `{"notebook", "cell_index", "grade_id", "reason", "detail"}`; the worker
        clears it before each submission.
        """

        notebook_timeout = Integer(900, help="wall seconds for the whole notebook").tag(config=True)
        incidents: list = []
        #: time.monotonic() past which no notebook of the submission may run (set per submission).
        stop_at: float = float("inf")

        def preprocess(self, nb, resources=None, km=None):
            self._deadline = min(time.monotonic() + self.notebook_timeout, GuardedExecute.stop_at)
            self._replay: list[str] = []
            self._nb_name = (resources or {}).get("unique_key", "?")
            self._dead = False
            return super().preprocess(nb, resources, km)

        def _get_timeout(self, cell):
            # Each cell gets its own limit, but never more than the notebook has left.
            timeout = super()._get_timeout(cell)
            left = max(1, int(self._deadline - time.monotonic()))
            return left if timeout is None else min(timeout, left)

        def _record(self, cell, index, reason, detail):
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            GuardedExecute.incidents.append({"notebook": self._nb_name, "cell_index": index, "grade_id": gid,
                                             "reason": reason, "detail": detail})
            cell.outputs.append(NotebookNode(output_type="error", ename=f"Grader{reason.title().replace('_', '')}",
                                             evalue=detail, traceback=[f"[grader] {detail}"]))

        def _restart(self) -> bool:
            """A fresh kernel with the earlier non-test cells replayed; False if that fails."""
            try:
                run_sync(self.km.restart_kernel)(now=True)
                run_sync(self.kc.wait_for_ready)(timeout=self.startup_timeout)
                for source in self._replay:
                    if time.monotonic() > self._deadline:
                        return False
                    msg_id = self.kc.execute(source, store_history=False, allow_stdin=False)
                    if self.kc.shell_channel is not None:
                        run_sync(self.async_wait_for_reply)(msg_id)
                return True
            except Exception:  # a kernel that cannot come back: the rest of the notebook is not run
                return False

        def preprocess_cell(self, cell, resources, index):
            if cell.cell_type != "code" or not cell.source.strip():
                return super().preprocess_cell(cell, resources, index)
            if getattr(self, "_dead", False) or time.monotonic() >= self._deadline:
                cell.outputs = []
                why = "not run: the kernel could not be restarted" if getattr(self, "_dead", False) else \
                    "not run: the submission's wall budget was used up"
                self._record(cell, index, "kernel_died" if getattr(self, "_dead", False) else "timeout", why)
                return cell, self.resources
            is_test = bool(cell.metadata.get("nbgrader", {}).get("grade"))
            try:
                cell, resources = super().preprocess_cell(cell, resources, index)
            except DeadKernelError:
                reason = KERNEL_REASONS.get(self._kernel_reason_after_death(), "kernel_died")
                self._record(cell, index, reason, {
                    "kernel_died": "the kernel died while running this cell (os._exit, a crash or a kill)",
                    "memory": "the kernel ran out of memory in this cell",
                    "output_limit": "this cell printed more output than allowed; the kernel was stopped",
                    "timeout": "this cell used up the notebook's wall limit",
                }[reason])
                self._dead = not self._restart()
                return cell, self.resources
            except CellTimeoutError:
                self._record(cell, index, "timeout",
                             "this cell ran past its time limit and ignored the interrupt; the kernel was restarted")
                self._dead = not self._restart()
                return cell, self.resources
            errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
            if any(o.get("ename") == "CellTimeoutError" for o in errors):
                GuardedExecute.incidents.append({"notebook": self._nb_name, "cell_index": index,
                                                 "grade_id": cell.metadata.get("nbgrader", {}).get("grade_id"),
                                                 "reason": "timeout", "detail": "this cell ran past its time limit and was interrupted"})
            elif any(o.get("ename") == "MemoryError" for o in errors):
                GuardedExecute.incidents.append({"notebook": self._nb_name, "cell_index": index,
                                                 "grade_id": cell.metadata.get("nbgrader", {}).get("grade_id"),
                                                 "reason": "memory", "detail": "this cell ran out of memory (MemoryError)"})
            elif not is_test:
                self._replay.append(cell.source)
            return cell, resources

        def _kernel_reason_after_death(self):
            # The sandbox records why it stopped the kernel only once the kernel is shut down,
            # which the restart does; peek at the manager's reason first.
            reason = getattr(self.km, "_reason", None) if sandboxed else None
            if reason is None and sandboxed:
                rc = None
                try:
                    rc = self.km.provisioner.process.poll()
                except Exception:
                    pass
                reason = "died" if rc is not None else None
            return reason

    return GuardedExecute


# ------------------------------------------------------------------------------------ one submission (worker side)


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


# ------------------------------------------------------------------------------------ worker pool


def die_with_parent() -> None:
    """Have the kernel SIGKILL this process when its parent dies (kill -9 of the coordinator included)."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the coordinator's own clean-up still applies
        pass


def _worker_main(conn, template: Template, settings: Settings, scratch: str) -> None:
    """A warm worker: nbgrader imported once, then one submission per message until None."""
    import warnings

    die_with_parent()  # no worker (and so no sandbox: --die-with-parent) outlives the coordinator
    if os.getppid() == 1:
        return  # the coordinator died before the line above took effect
    os.setsid()  # its own process group, so the coordinator can kill it with every child
    os.environ.pop("PYTHONPATH", None)
    # nbgrader 0.9.6 + SQLAlchemy 2: "Object ... not in session" on every submission; harmless.
    warnings.filterwarnings("ignore", message=r".*not in session.*")
    import nbgrader.apps  # noqa: F401  (the 3 s import, once per worker)

    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        conn.send(grade_job(template, settings, job, scratch))


def grade_job(template: Template, settings: Settings, job: dict, scratch: str) -> dict:
    """One job (`student_id`, `workdir`, `ingest`) graded; a grader failure is a result with "crash"."""
    try:
        return grade_submission(template, settings, job["student_id"], job["workdir"], job["ingest"], scratch)
    except Exception:
        return {"student_id": job["student_id"], "crash": traceback.format_exc()[-2000:]}


class WorkerPool:
    """`n` spawn worker processes; a job that overruns its deadline kills and replaces its worker.

    `run` pulls jobs from an iterator only when a worker is free, so a class is ingested
    one submission at a time; `requeue` puts a job back in front (a retry).
    """

    def __init__(self, n: int, args: tuple):
        self.ctx = multiprocessing.get_context("spawn")
        self.args = args
        self.workers = [self._spawn() for _ in range(max(1, n))]
        self._again: list[dict] = []

    def _spawn(self) -> dict:
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(target=_worker_main, args=(child, *self.args), daemon=True)
        proc.start()
        child.close()
        return {"proc": proc, "conn": parent, "job": None, "deadline": None}

    def _kill(self, w: dict) -> None:
        try:
            os.killpg(w["proc"].pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        w["proc"].kill()
        w["proc"].join(10)
        w["conn"].close()

    def requeue(self, job: dict) -> None:
        self._again.append(job)

    def run(self, jobs, deadline: float):
        """Yield `(job, result)` as workers finish; a result holds "crash" when the worker failed."""
        from multiprocessing.connection import wait

        source = iter(jobs)
        exhausted = False

        def next_job():
            nonlocal exhausted
            if self._again:
                return self._again.pop(0)
            if not exhausted:
                job = next(source, None)
                if job is not None:
                    return job
                exhausted = True
            return None

        while True:
            for w in self.workers:
                if w["job"] is None:
                    job = next_job()
                    if job is not None:
                        w["job"] = job
                        w["deadline"] = time.monotonic() + deadline
                        w["conn"].send(job)
            busy = [w for w in self.workers if w["job"] is not None]
            if not busy:
                if exhausted and not self._again:
                    return
                continue
            ready = wait([w["conn"] for w in busy], timeout=1.0)
            for i, w in enumerate(self.workers):
                if w["job"] is None:
                    continue
                result = None
                if w["conn"] in ready:
                    try:
                        result = w["conn"].recv()
                    except (EOFError, OSError):
                        result = {"student_id": w["job"]["student_id"], "died": True,
                                  "crash": f"the grading worker died (exit code {w['proc'].exitcode})"}
                        self._kill(w)
                        self.workers[i] = w = {**self._spawn(), "job": w["job"]}
                elif time.monotonic() > w["deadline"]:
                    result = {"student_id": w["job"]["student_id"], "crash": f"grading took longer than {deadline:.0f} s; stopped",
                              "timeout": True}
                    self._kill(w)
                    self.workers[i] = w = {**self._spawn(), "job": w["job"]}
                if result is not None:
                    job = w["job"]
                    w["job"] = None
                    yield job, result

    def close(self) -> None:
        for w in self.workers:
            try:
                w["conn"].send(None)
            except (OSError, BrokenPipeError):
                pass
        for w in self.workers:
            w["proc"].join(10)
            if w["proc"].is_alive():
                self._kill(w)

    def kill(self) -> None:
        """Stop every worker now (Ctrl-C, a fatal disk error): their submissions are not committed."""
        for w in self.workers:
            self._kill(w)


# ------------------------------------------------------------------------------------ gradebook (coordinator only)


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


# ------------------------------------------------------------------------------------ entry points


class GradeRunError(RuntimeError):
    """The run cannot start or must stop (no space, locked, preflight failed); nothing committed is lost."""


def _rejected(student_id: str, reasons: list[str]) -> dict:
    return {"student_id": student_id, "status": REJECTED, "flags": ["rejected"], "reasons": reasons,
            "cells": [], "repairs": [], "ignored_files": [], "trusted": None, "feedback": [], "seconds": 0.0}


def _crashed(student_id: str, crash: dict, retried: bool) -> dict:
    """A submission whose grading did not finish (the grader's fault): partial, with the reason."""
    last = crash["crash"].strip().splitlines()[-1] if crash["crash"].strip() else "unknown"
    why = f"grading did not finish{' (also on a retry)' if retried else ''}: {last}"
    return {**_rejected(student_id, [why]), "status": PARTIAL,
            "flags": ["grader_error"] + (["timeout"] if crash.get("timeout") else []), "crash": crash["crash"]}


#: Disk space one graded submission needs in --out beyond its own size (pages, notebooks, records).
SPACE_PER_SUBMISSION = 8 << 20
SPACE_RESERVE = 64 << 20


def _raw_size(path: Path) -> int:
    """Bytes of a submission on disk (a zip's size, or its folder's regular files, links not followed)."""
    if not path.is_dir():
        try:
            return os.lstat(path).st_size
        except OSError:
            return 0
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total


def check_output_space(out: Path, found: list[tuple[str, Path]], scratch: Path) -> None:
    """Refuse before grading when --out is not writable or cannot hold the class (GradeRunError)."""
    probe = out / f".nnkit-write-probe-{os.getpid()}"
    try:
        probe.write_bytes(b"x")
        probe.unlink()
    except OSError as exc:
        raise GradeRunError(f"--out {out} is not writable ({exc.strerror or exc}); choose a folder you can write") from None
    need = SPACE_RESERVE + sum(3 * _raw_size(p) + SPACE_PER_SUBMISSION for _, p in found)
    free = shutil.disk_usage(out).free
    if free < need:
        raise GradeRunError(f"--out {out} has {free >> 20} MiB free, and grading {len(found)} submissions needs "
                            f"about {need >> 20} MiB (pages, executed notebooks, records); free some space or "
                            "choose another --out")
    scratch_free = shutil.disk_usage(scratch).free
    if scratch_free < SPACE_RESERVE + 2 * SPACE_PER_SUBMISSION:
        raise GradeRunError(f"the temporary folder {scratch} has only {scratch_free >> 20} MiB free; "
                            "set TMPDIR to a folder with at least 1 GiB")


_TMP_PREFIX = "nnkit-grade-"


def _remove_stale_tmp() -> None:
    """Temporary folders of grading runs whose coordinator died (kill -9): named by its pid."""
    base = Path(tempfile.gettempdir())
    for d in base.glob(f"{_TMP_PREFIX}*"):
        try:
            owner = int(d.name[len(_TMP_PREFIX):].split("-")[0])
        except ValueError:
            continue
        if owner != os.getpid() and not os.path.exists(f"/proc/{owner}"):
            shutil.rmtree(d, ignore_errors=True)


def _settings_digest(settings: Settings) -> str:
    """What of the settings changes a grade (not the secret itself: only whether one is set)."""
    fields = {k: v for k, v in asdict(settings).items() if k not in ("course_secret",)}
    import hashlib

    secret = hashlib.sha256((settings.course_secret or "").encode()).hexdigest()
    return repr(sorted(fields.items())) + secret


def _check_db_driver(db_url: str) -> None:
    if db_url.startswith(("postgresql", "postgres")):
        try:
            import psycopg  # noqa: F401  (SQLAlchemy 2.1's default driver for postgresql://)
        except ImportError:
            raise GradeRunError("--db is a PostgreSQL URL but its driver is missing: pip install "
                                "'.[instructor]' (it carries psycopg)") from None


def grade(assignment: str | Path, submissions: str | Path, out: str | Path, *, workers: int = 1,
          db: str | None = None, settings: Settings = Settings(), root: Path = REPO_ROOT,
          release_dir: str | Path | None = None, progress=None, force: bool = False,
          scheduler: str | None = None, preflight: bool = True, timestamps: str | Path | None = None) -> list[dict]:
    """Grade every submission in `submissions` into `out`; return the whole class's results.

    Each finished submission is committed at once (`autograder.grading.commit`): a crash loses
    nothing that finished. A rerun skips the submissions whose committed grade has the
    same key (submission, release, grader); `force` regrades them all. A submission whose
    worker died is retried once. `scheduler` sends each submission to a Dask cluster
    instead of local workers (`autograder.grading.dask_cluster`). `progress(result)` is called per
    submission as it is committed (`result["skipped"]` is True for one kept from before).

    Each result: `student_id, status, score, max_score, flags, reasons, cells, repairs, ...`
    (see `grade_submission`); `score` and `max_score` are read back from the gradebook,
    so they include manual grades.

    Raises
    ------
    GradeRunError : the run could not start or had to stop (what finished stays committed).
    RunLocked : another run holds `out` or the gradebook.

    `timestamps` : the LMS export of hand-in times (`autograder.grading.deadline`), for the manifest's late policy.
    """
    from . import commit as C
    from .runlock import RunLock

    a = locate(assignment, root, release_dir)
    if release_dir is None:
        _refuse_stale_release(a, root)
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    db_url = db or f"sqlite:///{out / 'gradebook.db'}"
    _check_db_driver(db_url)
    found = discover(submissions)
    from .deadline import read_timestamps

    stamps = read_timestamps(timestamps) if timestamps else {}
    with RunLock(out, db_url):
        _remove_stale_tmp()
        tmp = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{os.getpid()}-"))
        pool = None
        try:
            check_output_space(out, found, tmp)
            C.recover(out, db_url)
            template = cached_template(a, settings)
            register_assignment(a, db_url, tmp / "register")
            release_key = _inputs_digest(a)
            grader_key = C.grader_digest(_settings_digest(settings))
            jobs = _jobs(a, found, out, tmp, settings, release_key, grader_key, force, progress, db_url, stamps)
            if scheduler:
                from .dask_cluster import run_on_cluster

                results = run_on_cluster(scheduler, a, template, settings, jobs, release_key)
            else:
                jobs = _after_preflight(jobs, template, settings, preflight)
                pool = _LazyPool(workers, (template, settings, str(tmp / "courses")))
                results = pool.run(jobs, template.wall_seconds + DEADLINE_SLACK_SECONDS)
            for job, result in results:
                _commit_result(out, db_url, a.name, job, result, progress)
            return C.export(out, db_url, a.name)
        except C.CommitError as exc:
            raise GradeRunError(f"stopped: {exc}. Every submission committed before stays; free the space "
                                "and run again: finished students are skipped") from None
        except BaseException:
            if pool is not None:
                pool.kill()
                pool = None
            raise
        finally:
            if pool is not None:
                pool.close()
            shutil.rmtree(tmp, ignore_errors=True)


def _refuse_stale_release(a: Assignment, root: Path) -> None:
    """The repository's own release must be what its `source/` builds now (a threshold edited
    without a rebuild once took 4 points from 7 students whose feedback said 4/4). An older
    release is graded only when named with `--release`."""
    from ..release.build import release_freshness

    own = Path(root).resolve() / "source" / a.name / "manifest.toml"
    if a.manifest.path is None or Path(a.manifest.path).resolve() != own:
        return  # an assignment given by its manifest path, outside the repository's layout
    stale = release_freshness(a.name, a.release_dir, root)
    if stale:
        raise GradeRunError(f"refusing to grade against a stale release: {stale}")


class _LazyPool:
    """The local WorkerPool, started on the first job only (a fully skipped rerun starts nothing);
    a worker's death is retried once (`run` yields the job back to itself through `requeue`)."""

    def __init__(self, workers: int, args: tuple):
        self.n, self.args, self.pool = workers, args, None

    def run(self, jobs, deadline: float):
        jobs = iter(jobs)
        first = next(jobs, None)
        if first is None:
            return
        self.pool = WorkerPool(self.n, self.args)

        def chained():
            yield first
            yield from jobs

        for job, result in self.pool.run(chained(), deadline):
            if result.get("died") and not job.get("retried"):
                self.pool.requeue({**job, "retried": True})
                continue
            yield job, result

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()

    def kill(self) -> None:
        if self.pool is not None:
            self.pool.kill()


def _jobs(a: Assignment, found, out: Path, tmp: Path, settings: Settings, release_key: str, grader_key: str,
          force: bool, progress, db_url: str, stamps: dict):
    """The submissions to grade, ingested one at a time as workers ask for them.

    Rejected ones (and duplicates) are committed here at once; unchanged ones since a
    committed grade are skipped (reported through `progress` with `skipped`).
    """
    from collections import Counter

    from . import commit as C

    counts, done = Counter(sid for sid, _ in found), set()
    for sid, path in found:
        if counts[sid] > 1:
            if sid not in done:  # once per student
                done.add(sid)
                applied = C.commit(out, db_url, a.name, _rejected(
                    sid, [f"submitted twice ({sid}.zip and {sid}/); keep one"]), None, {}, {})
                if progress:
                    progress(applied)
            continue
        workdir = tmp / "ingested" / sid
        got = ingest(sid, path, a.manifest.submission_files, workdir, settings.ingest_limits)
        if not got.accepted:
            applied = C.commit(out, db_url, a.name, _rejected(sid, got.refused), None, {}, {})
            if progress:
                progress(applied)
            continue
        late = _lateness(a, sid, path, stamps)
        # The hand-in time is part of what was graded: a new time (a later upload) is a new grade.
        key = C.GradingKey(C.files_digest(workdir=got.workdir, names=got.files) + (late or {}).get("submitted_at", ""),
                           release_key, grader_key)
        if not force and C.committed_key(out, sid) == key.as_dict():
            shutil.rmtree(workdir, ignore_errors=True)
            if progress:
                progress({**(C.load_record(out, sid) or {}).get("result", {"student_id": sid}), "skipped": True})
            continue
        yield {"student_id": sid, "workdir": str(got.workdir), "key": key.as_dict(),
               "ingest": {"files": got.files, "refused_files": got.refused_files, "ignored": got.ignored,
                          "late": late}}


def _lateness(a: Assignment, sid: str, path: Path, stamps: dict) -> dict | None:
    """The submission against the manifest's deadline (None without one, or without any time source)."""
    from .deadline import lateness, submission_time

    if a.manifest.deadline is None:
        return None
    got = submission_time(sid, path, stamps)
    return None if got is None else lateness(a.manifest.deadline, *got).as_dict()


def _commit_result(out: Path, db_url: str, assignment: str, job: dict, result: dict, progress) -> None:
    from . import commit as C

    sid = job["student_id"]
    if "crash" in result:
        result = _crashed(sid, result, bool(job.get("retried")))
    pages = result.pop("pages", None) or {}
    executed = result.pop("executed", None) or {}
    key = C.GradingKey(**job["key"]) if job.get("key") else None
    applied = C.commit(out, db_url, assignment, result, key, pages, executed)
    shutil.rmtree(job["workdir"], ignore_errors=True)
    if progress:
        progress(applied)


def _after_preflight(jobs, template: Template, settings: Settings, enabled: bool):
    """The jobs, once a sandboxed kernel and a trusted runner have started on the reference."""
    jobs = iter(jobs)
    first = next(jobs, None)
    if first is None:
        return
    if enabled:
        from .preflight import preflight

        preflight(template, settings)
    yield first
    yield from jobs


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
    settings = replace(Settings(), sandbox=use_sandbox, dataset=os.environ.get("NNKIT_DATASET", "embedded"),
                       course_secret=os.environ.get("NNKIT_COURSE_SECRET"))
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
