"""The template course a class is graded in: the assignment located, its hidden tests kept from the
kernel where trusted checks cover them, one nbgrader course built once per run and copied per submission.
"""
from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .. import REPO_ROOT
from ..files import is_hidden
from ..manifest import Manifest, load_manifest
from ..markers import NBGRADER_DELIMITERS
from .settings import COURSE_ID, Settings


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
    `<repo>/source/<name>/`. Both folders are returned absolute.
    """
    manifest = load_manifest(assignment, root)
    # Absolute: nbgrader's converters chdir into their course folder, and a run builds its courses
    # beside threads (the preflight) that read these paths.
    source_dir = manifest.path.parent.resolve()
    release_dir = (Path(release_dir) if release_dir
                   else source_dir.parent.parent / "assignments" / manifest.assignment).resolve()
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
        if not p.is_file() or is_hidden(rel.parts):
            continue
        if p.suffix in (".ipynb", ".pyc", ".zip"):
            continue
        out.append(rel.as_posix())
    return out


def _cut_hidden_tests(source: str) -> str:
    """`source` without its `### BEGIN HIDDEN TESTS` ... `### END HIDDEN TESTS` regions (markers included)."""
    begin, end = NBGRADER_DELIMITERS["hidden tests"]
    kept, inside = [], False
    for line in source.splitlines(keepends=True):
        if begin in line:
            inside = True
        elif end in line:
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
            if NBGRADER_DELIMITERS["hidden tests"][0] not in cell.source:
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
