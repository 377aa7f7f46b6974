"""Drive nbgrader 0.9.6 in-process on a throwaway course folder.

Used by `release` (generate_assignment, validate --invert, the self-grade) and by
`grade` (autograde, feedback, per-cell scores). Everything goes through
`nbgrader.apps.NbGraderAPI` in the calling process (about 1.3 s per autograde
instead of about 5 s per CLI call), with a `traitlets.config.Config` built here in
code. No `nbgrader_config.py` is ever written or read: a config file in the course
folder is code that nbgrader executes, and a student's kernel could append to it.

A course folder looks like nbgrader's default layout::

    <root>/source/<assignment>/...            what generate_assignment reads
    <root>/release/<assignment>/...           what it writes (student version)
    <root>/submitted/<student>/<assignment>/  one submission per student
    <root>/autograded/<student>/<assignment>/ what autograde executed
    <root>/feedback/<student>/<assignment>/   generate_feedback's HTML
    <root>/gradebook.db                       unless `db_url` says otherwise

nbgrader is imported lazily (its import costs about 3 s) so that importing this
module is free.
"""
from __future__ import annotations

import contextlib
import functools
import os
import shutil
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from .files import is_hidden

#: stderr outputs matching this are dropped before grading (nbgrader's IgnorePattern):
#: a grade cell scores 0 on *any* stderr output, so a harmless numpy RuntimeWarning
#: or DeprecationWarning would otherwise cost a correct answer its points.
WARNING_PATTERN = r"\b\w*Warning\b"

#: Per-cell execution timeout in seconds. nbgrader's default is 30 s; expensive cells
#: skip themselves under NBGRADER_EXECUTION, so this bounds runaway student code.
DEFAULT_TIMEOUT = 120


class NbGraderError(RuntimeError):
    """An nbgrader step failed; the message holds nbgrader's error and log tail."""


@dataclass(frozen=True)
class CellScore:
    """The score of one graded cell of one submitted notebook.

    `auto_score` is None when nbgrader could not grade the cell automatically
    (a manually graded answer, or a grade cell the submission lost).
    """

    notebook: str
    grade_id: str
    cell_type: str  # "code" for autograded test cells, "markdown" for written answers
    auto_score: float | None
    max_score: float
    needs_manual_grade: bool

    @property
    def autograded(self) -> bool:
        """True for the test cells nbgrader scores by executing them."""
        return self.cell_type == "code"


def build_config(
    root: str | Path,
    *,
    assignment: str | None = None,
    db_url: str | None = None,
    exclude_overwriting: Iterable[str] = (),
    timeout: int = DEFAULT_TIMEOUT,
    ignore_pattern: str | None = WARNING_PATTERN,
    max_traceback: int = 3,
    course_id: str = "nnkit",
    extra_config: Mapping[str, Mapping[str, Any]] | None = None,
):
    """The kit's nbgrader configuration for a course folder, built in code.

    Parameters
    ----------
    root : the course folder (made absolute).
    assignment : the assignment that `exclude_overwriting` applies to.
    db_url : SQLAlchemy URL of the gradebook; default SQLite `<root>/gradebook.db`.
    exclude_overwriting : paths relative to the assignment folder (the manifest's
        student modules) that autograde must take from the submission. Without them
        nbgrader overwrites the student's `.py` files with the source versions and
        every student is graded on the instructor's code.
    timeout : per-cell execution timeout in seconds (`Execute.timeout`).
    ignore_pattern : regex of stderr outputs to drop before grading; None disables it.
    max_traceback : `LimitOutput.max_traceback`. 3 is the smallest value that
        truncates (1 and 2 are no-ops in nbgrader 0.9.6); the truncation keeps the
        hidden-test line out of feedback.
    course_id : the course id stored in the gradebook.
    extra_config : `{"Section": {"trait": value}}` merged last, for callers that
        need something this function does not expose.

    Returns
    -------
    traitlets.config.Config
    """
    from traitlets.config import Config

    root = Path(root).resolve()
    c = Config()
    c.CourseDirectory.root = str(root)
    c.CourseDirectory.course_id = course_id
    c.CourseDirectory.db_url = db_url or f"sqlite:///{root / 'gradebook.db'}"
    # Never copy caches, checkpoints or hidden files between steps.
    c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".*"]
    # The exchange is never used; point it somewhere harmless and writable.
    c.Exchange.root = str(root / "exchange")
    c.Exchange.path_includes_course = False
    if assignment is not None:
        c.Autograde.exclude_overwriting = {assignment: sorted(str(p) for p in exclude_overwriting)}
    c.Execute.timeout = int(timeout)
    c.Execute.interrupt_on_timeout = True
    if ignore_pattern:
        c.IgnorePattern.enabled = True
        c.IgnorePattern.pattern = ignore_pattern
    c.LimitOutput.max_traceback = int(max_traceback)
    c.GenerateFeedback.preprocessors = [
        "nbgrader.preprocessors.GetGrades",
        "nbgrader.preprocessors.ClearHiddenTests",
        "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
    ]
    c.NbGraderAPI.log_level = "WARN"
    for section, traits in (extra_config or {}).items():
        for name, value in traits.items():
            setattr(getattr(c, section), name, value)
    return c


def config_for_manifest(root: str | Path, manifest, **kwargs):
    """`build_config` for an assignment's manifest (autograder.manifest.Manifest): its
    student modules are taken from the submission (exclude_overwriting); every other
    file comes from the course's source folder. `kwargs` go to build_config."""
    return build_config(root, assignment=manifest.assignment,
                        exclude_overwriting=manifest.student_modules, **kwargs)


def make_api(config):
    """An `NbGraderAPI` for `config` (from `build_config`)."""
    from nbgrader.apps import NbGraderAPI

    _tools_on_path()
    _cache_alembic_head()
    _one_validator_per_schema()
    # nbgrader checks the exchange folder exists even though the kit never uses it.
    Path(config.Exchange.root).mkdir(parents=True, exist_ok=True)
    return NbGraderAPI(config=config)


def _cache_alembic_head() -> None:
    """nbgrader runs `alembic heads` in a subprocess for every new gradebook (1.5-6 s: a fresh
    interpreter importing SQLAlchemy and alembic and loading every migration); the answer is
    a constant of the installed nbgrader: read it from its migration scripts once per process
    (:func:`alembic_head`), asking alembic only if they do not name one head."""
    import nbgrader.api as nbapi

    if not getattr(nbapi.get_alembic_version, "_nnkit_cached", False):
        ask_alembic = nbapi.get_alembic_version

        @functools.lru_cache(maxsize=None)
        def head() -> str:
            return alembic_head() or ask_alembic()

        head._nnkit_cached = True
        nbapi.get_alembic_version = head


def _one_validator_per_schema() -> None:
    """nbgrader checks each cell's metadata with ``jsonschema.validate``, which checks the schema
    itself again on every call: a fifth of a second of every autograde of four notebooks, and of
    every generate_assignment. Its validator module is given :class:`_SchemaValidators` instead:
    the same validation and the same errors, with one validator per schema."""
    from nbgrader.nbgraderformat import common

    if not isinstance(common.jsonschema, _SchemaValidators):
        common.jsonschema = _SchemaValidators(common.jsonschema)


class _SchemaValidators:
    """``jsonschema`` whose ``validate(instance, schema)`` builds (and checks) a schema's validator
    once, then does what ``jsonschema.validate`` does with it."""

    def __init__(self, jsonschema):
        self._jsonschema = jsonschema
        self._made: dict[int, tuple[object, object]] = {}  # id(schema) -> (schema, its validator)

    def validate(self, instance, schema) -> None:
        made = self._made.get(id(schema))
        if made is None or made[0] is not schema:
            cls = self._jsonschema.validators.validator_for(schema)
            cls.check_schema(schema)
            made = self._made[id(schema)] = (schema, cls(schema))
        error = self._jsonschema.exceptions.best_match(made[1].iter_errors(instance))
        if error is not None:
            raise error

    def __getattr__(self, name):
        return getattr(self._jsonschema, name)


def alembic_head() -> str | None:
    """The head revision of nbgrader's gradebook migrations, read from the literal ``revision`` and
    ``down_revision`` of each script in ``nbgrader/alembic/versions`` (None unless exactly one head)."""
    import ast

    import nbgrader

    revisions, parents = set(), set()
    for script in (Path(nbgrader.__file__).parent / "alembic" / "versions").glob("*.py"):
        found = {}
        for node in ast.parse(script.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                    and node.targets[0].id in ("revision", "down_revision"):
                try:
                    found[node.targets[0].id] = ast.literal_eval(node.value)
                except ValueError:
                    return None
        if not isinstance(found.get("revision"), str):
            return None
        revisions.add(found["revision"])
        down = found.get("down_revision")
        parents.update(down if isinstance(down, (tuple, list)) else [down] if down else [])
    heads = revisions - parents
    return next(iter(heads)) if len(heads) == 1 else None


def _tools_on_path() -> None:
    """Put this interpreter's bin/ on PATH: nbgrader runs the `alembic` command by name
    when it creates a gradebook, and a venv used without activation is not on PATH."""
    bindir = os.path.dirname(sys.executable)
    parts = os.environ.get("PATH", "").split(os.pathsep)
    if bindir not in parts:
        os.environ["PATH"] = os.pathsep.join([bindir] + [p for p in parts if p])


def _check(result: Mapping[str, Any], what: str) -> Mapping[str, Any]:
    if not result.get("success"):
        log = (result.get("log") or "").strip().splitlines()[-20:]
        raise NbGraderError(f"nbgrader {what} failed:\n{result.get('error', '')}\n" + "\n".join(log))
    return result


def course_root(config) -> Path:
    return Path(config.CourseDirectory.root)


def copy_tree(src: str | Path, dest: str | Path, files: Iterable[str] | None = None) -> None:
    """Copy `files` (relative paths; default every file) from `src` into `dest`.

    Caches, checkpoints and hidden files are never copied.
    """
    src, dest = Path(src), Path(dest)
    if files is None:
        files = [
            str(p.relative_to(src)) for p in sorted(src.rglob("*"))
            if p.is_file() and not is_hidden(p.relative_to(src).parts)
        ]
    for rel in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / rel, target)


def put_source(config, assignment: str, src: str | Path, files: Iterable[str] | None = None) -> Path:
    """Fill `<root>/source/<assignment>/` from `src` (a fresh copy each time)."""
    dest = course_root(config) / "source" / assignment
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    copy_tree(src, dest, files)
    return dest


def generate_assignment(api, assignment: str) -> Path:
    """Run generate_assignment; returns `<root>/release/<assignment>`. Raises NbGraderError."""
    _check(api.generate_assignment(assignment, force=True, create=True), f"generate_assignment {assignment}")
    return Path(api.coursedir.root) / "release" / assignment


def submit(config, assignment: str, student: str, src: str | Path, files: Iterable[str] | None = None,
           timestamp: str = "2000-01-01 00:00:00.000000 UTC") -> Path:
    """Place a submission at `<root>/submitted/<student>/<assignment>/` from `src`.

    `files` limits what is copied (relative paths, e.g. the manifest's submission
    files); missing ones are skipped, as nbgrader scores a missing notebook 0.
    A fixed `timestamp.txt` keeps the gradebook free of wall-clock times.
    """
    dest = course_root(config) / "submitted" / student / assignment
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    src = Path(src)
    if files is not None:
        files = [f for f in files if (src / f).is_file()]
    copy_tree(src, dest, files)
    (dest / "timestamp.txt").write_text(timestamp + "\n", encoding="utf-8")
    return dest


def autograde(api, assignment: str, student: str) -> Mapping[str, Any]:
    """Autograde one submission in-process. Raises NbGraderError if nbgrader fails."""
    with warnings.catch_warnings():
        # nbgrader 0.9.6 with SQLAlchemy 2 warns "Object of type ... not in session" three
        # times per autograde; it is harmless noise (measured, see the research notes).
        warnings.filterwarnings("ignore", message=".*not in session.*")
        return _check(api.autograde(assignment, student, force=True, create=True), f"autograde {assignment}/{student}")


def generate_feedback(api, assignment: str, student: str | None = None) -> Mapping[str, Any]:
    """Generate feedback HTML (hidden tests cleared). Raises NbGraderError if nbgrader fails."""
    return _check(api.generate_feedback(assignment, student, force=True), f"generate_feedback {assignment}")


def cell_scores(db_url: str, assignment: str, student: str, course_id: str = "nnkit") -> list[CellScore]:
    """Every graded cell of a submission, read from the gradebook, in notebook order."""
    from nbgrader.api import Gradebook

    out = []
    with Gradebook(db_url, course_id) as gb:
        submission = gb.find_submission(assignment, student)
        for nb in submission.notebooks:
            for grade in nb.grades:
                out.append(CellScore(
                    notebook=nb.name, grade_id=grade.name, cell_type=grade.cell_type,
                    auto_score=None if grade.auto_score is None else float(grade.auto_score),
                    max_score=float(grade.max_score), needs_manual_grade=bool(grade.needs_manual_grade),
                ))
    return out


def validate_invert(path: str | Path, config=None) -> str | None:
    """`nbgrader validate --invert` on one notebook, in-process.

    Returns None when the notebook passes no test (what an untouched release must
    do), otherwise nbgrader's report naming the tests that passed.
    """
    from nbgrader.validator import Validator
    from traitlets.config import Config

    c = Config(config) if config is not None else Config()
    c.Validator.invert = True
    validator = Validator(config=c)
    result = validator.validate(str(path))
    if result.get("type_changed"):
        return "cells changed type: " + ", ".join(_first_line(cell) for cell in result["type_changed"])
    if result.get("changed"):
        return "locked cells differ from their checksums: " + ", ".join(_first_line(cell) for cell in result["changed"])
    if result.get("passed"):
        return "tests pass on the release: " + ", ".join(_first_line(cell) for cell in result["passed"])
    return None


def _first_line(cell: Mapping[str, Any]) -> str:
    lines = str(cell.get("source", "")).strip().splitlines()
    return repr(lines[0][:80]) if lines else "<empty cell>"


@contextlib.contextmanager
def environ(**values: str | None) -> Iterator[None]:
    """Set (or, with None, remove) environment variables for the kernels nbgrader starts.

    nbgrader's kernels inherit this process's environment; e.g. NNKIT_DATASET=embedded
    for CI, and PYTHONPATH removed so no kernel can import the reference package.
    """
    old = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
