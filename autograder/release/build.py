"""`python -m autograder release <assignment>`: build a student release that provably leaks nothing.

The release of `source/<assignment>/` + `source/nnkit/` (default output
`assignments/<assignment>/`) holds::

    <notebooks>          from nbgrader's generate_assignment (in-process, kit's own config)
    nnkit/               every module of source/nnkit; student modules stripped (autograder.release.strip)
    manifest.toml        the assignment's manifest, regenerated without instructor comments
    datasets/fetch.py    the dataset fetch helper, and datasets/embedded/ so it works offline
    make_submission.py   the submission helper (stdlib only)
    requirements.txt     the student extra
    README.md            how to work on and submit the assignment
    RELEASE_DIGEST       what built it (sha256 of every input and release file): `release_freshness`
                         tells `grade` whether the release is still what source/ would build

Before anything is built, every source notebook is checked as nbgrader will read it
(gate `notebook`: metadata, points, marker typos, unclosed or misplaced regions), each
error naming the notebook, the line of the `.ipynb`, the cell (index and grade_id) and the
fix. It is built in a temporary folder beside the output, then every gate runs
(`autograder.release.gates`, plus the self-grade and the digest check here). Only when all pass does the new
release replace the old one, atomically; otherwise nothing changes and the command
exits 1 naming the gate and `file:line`. The same source gives a byte-identical release.
"""
from __future__ import annotations

import ast
import ctypes
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Callable, Iterator

from .. import REPO_ROOT
from ..manifest import Manifest, ManifestError, list_assignments, load_manifest
from .gates import (
    _cell_line,
    FILLER,
    Allowed,
    GateFailure,
    SolutionFragments,
    SourceLines,
    Stub,
    check_allow_list,
    check_hidden_files,
    check_markers,
    check_outputs,
    check_solution_fragments,
    check_solution_lines,
    check_stubs,
    check_validate,
    line_of,
    fragment_tokens,
    notebook_source_lines,
    raw_line_of,
    release_files,
)
from .strip import CANONICAL_MARKERS, StripError, find_regions, marker_typo, strip_source

RELEASE_FILES = Path(__file__).resolve().parent / "files"
#: Environment of every kernel the release starts: the embedded dataset, no way to import
#: the reference through PYTHONPATH, and no bytecode caches written into copies.
KERNEL_ENV = {"NNKIT_DATASET": "embedded", "PYTHONPATH": None, "PYTHONDONTWRITEBYTECODE": "1",
              "MPLBACKEND": "Agg", "OPENBLAS_NUM_THREADS": "1"}
#: Fixed timestamp of every zip entry (the earliest a zip can hold): deterministic bundles.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
#: Per-cell timeout (s) when executing notebooks for validate and the self-grade.
CELL_TIMEOUT = 600


class ReleaseError(Exception):
    """The release stopped; `str()` names the gate and `file:line`."""

    def __init__(self, gate: str, path: str | Path, line: int, message: str):
        self.gate, self.path, self.line = gate, str(path), int(line)
        super().__init__(f"gate {gate} failed: {path}:{line}: {message}")


def _skip(rel_parts: tuple[str, ...]) -> bool:
    """Caches, checkpoints and hidden files are never part of a source tree's release."""
    return any(p.startswith(".") or p == "__pycache__" for p in rel_parts) or rel_parts[-1].endswith((".pyc", ".pyo"))


def _tree(root: Path) -> list[str]:
    """The files of a source tree as sorted POSIX relative paths, without caches/hidden files."""
    return sorted(
        p.relative_to(root).as_posix() for p in root.rglob("*")
        if p.is_file() and not _skip(p.relative_to(root).parts)
    )


# ---------------------------------------------------------------- planning: read and check the source

@dataclass
class Plan:
    """What a release of one assignment is made of, read and checked from the source."""

    root: Path
    manifest: Manifest
    package_files: list[str]  # relative to source/ ("nnkit/layers.py", ...)
    stripped: dict[str, str]  # module with regions -> its text in the release (students' functions stubbed)
    #: module with regions -> its text with this assignment's solutions in place (what a student who
    #: finished has): the reference notebooks run against it, so provided code that needs a function
    #: another assignment asks for (stubbed here) fails the release instead of a student.
    solved: dict[str, str]
    stubs: list[Stub]
    source_lines: SourceLines
    dataset_files: list[str]  # relative to root ("datasets/fetch.py", ...)
    notebook_points: dict[str, dict[str, float]] = field(default_factory=dict)  # nb -> grade_id -> points
    fragments: SolutionFragments = field(default_factory=SolutionFragments)
    inputs: dict[str, str | None] = field(default_factory=dict)  # RELEASE_DIGEST's inputs, hashed before reading
    allowed: list[Allowed] = field(default_factory=list)  # the manifest's [release.allow]

    @property
    def source_dir(self) -> Path:
        return self.root / "source" / self.manifest.assignment

    def expected_files(self) -> list[str]:
        return sorted(
            list(self.manifest.notebooks) + self.package_files + self.dataset_files + list(self.manifest.files)
            + ["manifest.toml", "README.md", "requirements.txt", "make_submission.py", DIGEST_FILE]
        )


def shipped_modules(manifest: Manifest, root: Path, mpath: str) -> list[str]:
    """The package files the release ships: the manifest's `[package]` modules and the
    `__init__.py` of every folder on their way (relative to source/, sorted)."""
    if manifest.package is None:
        raise ReleaseError("manifest", mpath, 1, "no [package] table (a release's manifest, not a source one?)")
    files = set()
    for rel in manifest.package:
        if not (root / "source" / rel).is_file():
            raise ReleaseError("manifest", mpath, line_of(root / mpath, f'"{rel}"'),
                               f"[package] lists {rel}, but source/{rel} does not exist")
        files.add(rel)
        parts = Path(rel).parts
        for k in range(1, len(parts)):
            init = "/".join(parts[:k]) + "/__init__.py"
            if (root / "source" / init).is_file():
                files.add(init)
    return sorted(files)


def functions_asked_elsewhere(assignment: str, root: Path) -> dict[str, set[str]]:
    """module -> the functions the other assignments of the kit have students write there.

    Their solutions must not ship complete in this release (they are stubbed with a
    message that says so): a student of one assignment could otherwise read another's.
    """
    out: dict[str, set[str]] = {}
    for other in list_assignments(root):
        if other == assignment:
            continue
        try:
            m = load_manifest(other, root)
        except ManifestError as exc:
            raise ReleaseError("manifest", f"source/{other}/manifest.toml", 1,
                               f"another assignment's manifest cannot be read, so this release cannot tell which "
                               f"solutions to keep out: {exc}") from None
        for module, functions in (m.package or {}).items():
            out.setdefault(module, set()).update(functions)
    return out


def _nnkit_imports(code: str, module: str | None = None) -> Iterator[tuple[int, str]]:
    """(line, dotted module) of every nnkit module `code` imports, at any depth (lazy imports too).

    `module`: the dotted name of the package module holding `code` (resolves relative imports).
    A `from nnkit.x import y` yields both nnkit.x and nnkit.x.y (y may be a submodule).
    """
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return  # not Python (a notebook's shell line): the notebook gates report real errors
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "nnkit" or a.name.startswith("nnkit."):
                    yield node.lineno, a.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level and module:
                parent = module.split(".")[: -node.level]
                base = ".".join(parent + ([base] if base else []))
            if base == "nnkit" or base.startswith("nnkit."):
                yield node.lineno, base
                for a in node.names:
                    yield node.lineno, f"{base}.{a.name}"


def check_imports(root: Path, manifest: Manifest, package_files: list[str], mpath: str) -> None:
    """Gate `imports`: no shipped module or notebook imports an nnkit module the release does not ship."""
    shipped = set(package_files)

    def missing(dotted: str) -> str | None:
        rel = dotted.replace(".", "/")
        for candidate in (f"{rel}.py", f"{rel}/__init__.py"):
            if (root / "source" / candidate).is_file() and candidate not in shipped:
                return candidate
        return None

    def fail(where: str, line: int, dotted: str, rel: str):
        raise ReleaseError("imports", where, line, f"imports {dotted}, which this release does not ship: add "
                                                   f'"{rel}" = [] to [package] in {mpath} (or drop the import)')

    for rel in package_files:
        dotted = rel[:-3].replace("/", ".").removesuffix(".__init__")
        for line, name in _nnkit_imports((root / "source" / rel).read_text(encoding="utf-8"), dotted):
            if (gone := missing(name)) is not None:
                fail(f"source/{rel}", line, name, gone)
    for nb_name in manifest.notebooks:
        path = root / "source" / manifest.assignment / nb_name
        for index, cell in enumerate(json.loads(path.read_text(encoding="utf-8")).get("cells", [])):
            if cell.get("cell_type") != "code":
                continue
            source = cell.get("source", "")
            source = "".join(source) if isinstance(source, list) else source
            # IPython's magics and shell lines are not Python: blank them, keeping line numbers.
            source = "\n".join("" if s.lstrip().startswith(("%", "!")) else s for s in source.split("\n"))
            for line, name in _nnkit_imports(source):
                if (gone := missing(name)) is not None:
                    fail(f"source/{manifest.assignment}/{nb_name}", _cell_line(path, cell, index), name, gone)


def plan_release(assignment: str, root: Path = REPO_ROOT) -> Plan:
    """Read the manifest, the package and the notebooks; strip the package in memory.

    Raises ReleaseError (gates `manifest`, `strip`).
    """
    root = Path(root).resolve()
    try:
        manifest = load_manifest(assignment, root)
    except ManifestError as exc:
        raise ReleaseError("manifest", f"source/{assignment}/manifest.toml", 1, str(exc)) from None
    mpath = f"source/{assignment}/manifest.toml"
    # Hashed before anything is read: a file edited meanwhile makes the digest older, never newer.
    inputs = input_hashes(assignment, root)
    pkg_root = root / "source" / "nnkit"
    if not pkg_root.is_dir():
        raise ReleaseError("manifest", "source/nnkit", 1, "no reference package at source/nnkit")
    package_files = shipped_modules(manifest, root, mpath)
    elsewhere = functions_asked_elsewhere(assignment, root)
    for module, functions in _provided(root / mpath, mpath, elsewhere).items():
        elsewhere[module] -= functions
    lines = SourceLines()
    fragments = SolutionFragments()
    allowed = _allow_list(root / mpath, mpath)
    stripped, solved, stubs = {}, {}, []
    for rel in package_files:
        if not rel.endswith(".py"):
            continue
        text = (root / "source" / rel).read_text(encoding="utf-8")
        shown = f"source/{rel}"
        try:
            regions = find_regions(text, shown)
        except StripError as exc:
            raise ReleaseError("strip", exc.path, exc.line, str(exc).split(": ", 1)[1]) from None
        students = set(manifest.student_functions(rel))
        others = elsewhere.get(rel, set()) - students
        have = {r.function for r in regions}
        for fn in manifest.student_functions(rel):
            if fn not in have:
                raise ReleaseError("manifest", mpath, line_of(root / mpath, f'"{fn}"'),
                                   f"[package] lists {fn} of {rel}, which has no solution region there "
                                   f"(functions with one: {', '.join(sorted(have)) or 'none'})")
        src_lines = text.split("\n")
        inside = set()
        for region in regions:
            if region.function not in students | others:
                continue  # provided code in this assignment: ships complete, so its lines are public
            for n in range(region.begin + 1, region.end):
                inside.add(n)
                lines.add_region_line(src_lines[n - 1], (shown, n))
            fragments.add_code("\n".join(src_lines[region.begin: region.end - 1]), shown,
                               lambda k, b=region.begin: b + k)
        for n, line in enumerate(src_lines, start=1):
            if n not in inside and not any(r.begin == n or r.end == n for r in regions):
                lines.add_outside_line(line)
        if regions:
            try:
                result = strip_source(text, shown, students=students, elsewhere=others)
            except StripError as exc:
                raise ReleaseError("strip", exc.path, exc.line, str(exc).split(": ", 1)[1]) from None
            stripped[rel] = result.text
            stubs.extend(Stub(rel, line, fn, whole) for line, fn, whole in result.stubs)
            solved[rel] = strip_source(text, shown, students=(), elsewhere=others).text

    nb_points: dict[str, dict[str, float]] = {}
    graded: list[GradeCell] = []
    for nb_name in manifest.notebooks:
        path = root / "source" / assignment / nb_name
        if not path.is_file():
            raise ReleaseError("manifest", mpath, line_of(root / mpath, nb_name), f"notebook {nb_name} is listed but "
                                                                                 f"source/{assignment}/{nb_name} does not exist")
        cells = _read_notebook(path, f"source/{assignment}/{nb_name}", lines, fragments, manifest, mpath)
        _check_unique_ids(graded, cells)
        graded += cells
        nb_points[nb_name] = {c.grade_id: c.points for c in cells if c.cell_type == "code"}
    _check_points(manifest, graded, root / mpath, mpath)
    check_imports(root, manifest, package_files, mpath)
    for rel in manifest.files:
        if not (root / "source" / assignment / rel).is_file():
            raise ReleaseError("manifest", mpath, line_of(root / mpath, f'"{rel}"'),
                               f"files lists {rel}, but source/{assignment}/{rel} does not exist")

    datasets = root / "datasets"
    if not (datasets / "fetch.py").is_file():
        raise ReleaseError("manifest", "datasets/fetch.py", 1, "the dataset fetch helper is missing; the release "
                                                              "ships it so students can download the datasets")
    dataset_files = ["datasets/fetch.py"]
    if (datasets / "embedded").is_dir():
        dataset_files += ["datasets/embedded/" + p for p in _tree(datasets / "embedded")]
    return Plan(root=root, manifest=manifest, package_files=package_files, stripped=stripped, solved=solved, stubs=stubs,
                source_lines=lines, dataset_files=sorted(dataset_files), notebook_points=nb_points,
                fragments=fragments, allowed=allowed, inputs=inputs)


@dataclass(frozen=True)
class GradeCell:
    """A graded cell of a source notebook, as the manifest's [points] must list it."""

    notebook: str  # shown path, e.g. source/<assignment>/01_layers.ipynb
    index: int  # 0-based cell index
    grade_id: str
    points: float
    cell_type: str
    line: int  # file line of its first source line


#: nbgrader's own delimiters (substrings of a line, as nbgrader 0.9.6 matches them), by kind.
NBGRADER_DELIMITERS = {
    "solution": ("BEGIN SOLUTION", "END SOLUTION"),
    "hidden tests": ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS"),
    "mark scheme": ("BEGIN MARK SCHEME", "END MARK SCHEME"),
}
#: The Create Assignment toolbar's name of each kind of cell, for the fixes.
_CELL_KIND = {"solution": "an 'Autograded answer' or a 'Manually graded answer' (\"solution\": true)",
              "hidden tests": "an 'Autograder tests' cell (\"grade\": true, with points)",
              "mark scheme": "a 'Manually graded task' (\"task\": true, with points)"}


def _read_notebook(path: Path, shown: str, lines: SourceLines, fragments: SolutionFragments,
                   manifest: Manifest, mpath: str) -> list[GradeCell]:
    """Check one source notebook's authoring (metadata, markers) and sort its lines and
    fragments into region / outside; return its graded cells.

    Regions follow nbgrader's rules: lines between BEGIN/END SOLUTION, HIDDEN TESTS or
    MARK SCHEME markers, and the whole of a solution cell without markers (nbgrader
    replaces all of it). Every authoring error is a ReleaseError of gate `notebook` that
    names the notebook, the line of the .ipynb file, the cell (index and grade_id) and
    the fix, before nbgrader sees the notebook.
    """
    raw = path.read_text(encoding="utf-8")
    try:
        nb = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ReleaseError("notebook", shown, exc.lineno, f"not valid JSON ({exc.msg}, column {exc.colno}); fix: "
                                                          "undo the hand edit, or re-save the notebook from Jupyter") from None
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(cells, list):
        raise ReleaseError("notebook", shown, 1, "no list of cells; fix: it must be a Jupyter notebook (nbformat 4)")
    layout = notebook_source_lines(raw, len(cells))
    graded = []
    seen_ids: dict[str, int] = {}
    for i, cell in enumerate(cells):
        source = cell.get("source", "")
        src = "".join(source) if isinstance(source, list) else str(source)
        cell_lines = src.split("\n")
        if layout:
            rows = layout[i]

            def where(k: int, rows=rows) -> int:
                return rows[min(max(k, 1), len(rows)) - 1]
        else:
            first = line_of(path, cell_lines[0]) if src.strip() else 1

            def where(k: int, first=first) -> int:
                return first + max(k, 1) - 1
        meta = cell.get("metadata", {}).get("nbgrader")
        ctype = cell.get("cell_type", "?")
        gid = meta.get("grade_id") if isinstance(meta, dict) else None
        name = f"cell {i} (grade_id {gid!r})" if gid else \
            f"cell {i} ({ctype}" + (f", id {cell['id']!r}" if cell.get("id") else "") + ")"

        def fail(k: int, problem: str, fix: str, name=name, where=where):
            raise ReleaseError("notebook", shown, where(k), f"{name}: {problem}; fix: {fix}")

        if meta is not None:
            _check_cell_metadata(cell, meta, ctype, manifest, mpath, fail)
            if gid:
                if gid in seen_ids:
                    fail(1, f"grade_id {gid!r} is also the grade_id of cell {seen_ids[gid]} of this notebook",
                         "give every nbgrader cell of a notebook its own grade_id")
                seen_ids[gid] = i
        meta = meta or {}
        regions = _cell_regions(cell_lines, meta, fail)
        sol_regions = [r for r in regions if r[0] == "solution"]
        if meta.get("solution") and not sol_regions:
            for k, line in enumerate(cell_lines, start=1):
                lines.add_region_line(line, (shown, where(k)))
            (fragments.add_code if ctype == "code" else fragments.add_prose)(src, shown, where)
        else:
            special = set()
            for kind, b, e in regions:
                special.update(range(b, e + 1))
                for k in range(b + 1, e):
                    lines.add_region_line(cell_lines[k - 1], (shown, where(k)))
                if kind != "hidden tests":  # hidden tests: the whole-line gate (they restate visible checks)
                    text = "\n".join(cell_lines[b: e - 1])
                    (fragments.add_code if ctype == "code" and kind == "solution" else fragments.add_prose)(
                        text, shown, lambda j, b=b, where=where: where(b + j))
            for k, line in enumerate(cell_lines, start=1):
                if k not in special:
                    lines.add_outside_line(line)
        if meta.get("grade"):
            graded.append(GradeCell(shown, i, gid, float(meta["points"]), ctype, where(1)))
    return graded


def _check_cell_metadata(cell: dict, meta, ctype: str, manifest: Manifest, mpath: str, fail) -> None:
    """nbgrader's metadata rules (MetadataValidator, schema 3), each failure with its fix."""
    toolbar = "(View > Cell Toolbar > Create Assignment in Jupyter, or the cell's metadata JSON)"
    if not isinstance(meta, dict):
        fail(1, "its nbgrader metadata is not a JSON object", f"set the cell type again {toolbar}")
    if meta.get("schema_version") != 3:
        fail(1, f"nbgrader metadata schema_version {meta.get('schema_version')!r}; nbgrader 0.9.6 reads 3",
             f'set "schema_version": 3 {toolbar}')
    grade, solution, locked, task = (bool(meta.get(k)) for k in ("grade", "solution", "locked", "task"))
    gid = meta.get("grade_id")
    if (grade or solution or locked or task) and (not isinstance(gid, str) or not gid.strip()):
        fail(1, "an nbgrader cell without a grade_id", f"give it a grade_id, unique in the notebook {toolbar}")
    if grade or task:  # nbgrader's SaveCells reads a task cell's points too
        declared = manifest.points.get(gid)
        if "points" not in meta:
            if declared is not None:
                fail(1, f"a {'grade' if grade else 'task'} cell without points (the manifest gives {gid!r} {declared:g})",
                     f'set its points to {declared:g} ("points": {declared:g} in its nbgrader metadata) {toolbar}')
            fail(1, f"a {'grade' if grade else 'task'} cell without points, and the manifest's [points] gives "
                    "it none either",
                 f'give the cell its points ("points": N in its nbgrader metadata) {toolbar} and add '
                 f"`{gid} = N` under [points] in {mpath}")
        p = meta["points"]
        if isinstance(p, bool) or not isinstance(p, (int, float)) or p < 0:
            fail(1, f"points {p!r} is not a non-negative number", f'write a number, e.g. "points": 2 {toolbar}')
    if task and ctype != "markdown":
        fail(1, f"a task cell must be markdown, this one is {ctype}", "make it a markdown cell or not a task")
    if not task and ctype == "markdown" and grade and not solution:
        fail(1, "a markdown grade cell that is not a solution cell (nbgrader refuses it)",
             f"make it a 'Manually graded answer' (\"solution\": true too) {toolbar}")
    if not task and ctype == "markdown" and solution and not grade:
        fail(1, "a markdown solution cell that is not graded (nbgrader refuses it)",
             f"make it a 'Manually graded answer' with points, or a plain markdown cell {toolbar}")
    import nbformat
    from jsonschema.exceptions import ValidationError
    from nbgrader.nbgraderformat import MetadataValidator

    try:
        MetadataValidator().validate_cell(nbformat.from_dict(cell))
    except ValidationError as exc:
        fail(1, f"nbgrader rejects its metadata: {exc.message}", f"compare it with a cell the toolbar makes {toolbar}")
    except Exception as exc:  # SchemaTooOld/New and the like
        fail(1, f"nbgrader rejects its metadata: {exc}", f"compare it with a cell the toolbar makes {toolbar}")


def _is_marker_line(line: str, kind: str, which: int) -> bool:
    canonical = CANONICAL_MARKERS[kind][which]
    text = line.strip()
    if kind == "mark scheme":  # nbgrader's documentation writes it between === or ###
        return re.fullmatch(r"[#=\s]*" + NBGRADER_DELIMITERS[kind][which] + r"[#=\s]*", text) is not None
    return text == canonical


def _cell_regions(cell_lines: list[str], meta: dict, fail) -> list[tuple[str, int, int]]:
    """(kind, BEGIN line, END line) of each marked region of a cell (1-based lines of the cell);
    a typo, a marker with other text on its line, a nested, unopened or unclosed region, or a
    region in a cell of the wrong kind fails with its fix."""
    open_: dict[str, int] = {}
    regions = []
    for k, line in enumerate(cell_lines, start=1):
        kind = which = None
        for kd, pair in NBGRADER_DELIMITERS.items():
            for w, delimiter in enumerate(pair):
                if delimiter in line and kind is None:
                    kind, which = kd, w
        if kind is None:
            meant = marker_typo(line)
            if meant:
                fail(k, f"line {k} of the cell, {line.strip()!r}, looks like a marker but is not one (nbgrader "
                        "ignores it, so the region would ship or the cell be replaced whole)", f"write exactly {meant!r}")
            continue
        begin, end = CANONICAL_MARKERS[kind]
        canonical = (begin, end)[which]
        if not _is_marker_line(line, kind, which):
            if marker_typo(line) == canonical:
                fail(k, f"line {k} of the cell, {line.strip()!r}, is not exactly a marker (the kit reads one "
                        "spelling)", f"write exactly {canonical!r}")
            fail(k, f"line {k} of the cell, {line.strip()!r}, holds a marker with other text", f"write {canonical!r} "
                                                                                             "alone on its line")
        if which == 0:
            if kind in open_:
                fail(k, f"a second {begin!r} at line {k} of the cell, inside the {kind} region opened at line "
                        f"{open_[kind]}", f"add {end!r} where the first region ends")
            open_[kind] = k
        else:
            if kind not in open_:
                fail(k, f"{end!r} at line {k} of the cell without a {begin!r} above it",
                     f"add {begin!r} where the region starts, or delete the line")
            regions.append((kind, open_.pop(kind), k))
    for kind, k in open_.items():
        begin, end = CANONICAL_MARKERS[kind]
        fail(k, f"unclosed {kind} region: no {end!r} follows the {begin!r} at line {k} of the cell",
             f"add {end!r} on its own line where the region ends")
    for kind, b, _ in regions:
        ok = {"solution": meta.get("solution"), "hidden tests": meta.get("grade"), "mark scheme": meta.get("task")}[kind]
        if not ok:
            fail(b, f"a {kind} region in a cell that is not {_CELL_KIND[kind].split(' (')[0]} (nbgrader refuses it)",
                 f"make the cell {_CELL_KIND[kind]} in the Create Assignment toolbar, or remove the markers")
    return regions


def _check_unique_ids(before: list[GradeCell], cells: list[GradeCell]) -> None:
    """A grade_id names one graded cell of the assignment: [points] and the trusted checks key on it."""
    for c in cells:
        other = next((p for p in before if p.grade_id == c.grade_id), None)
        if other is not None:
            raise ReleaseError("notebook", c.notebook, c.line,
                               f"cell {c.index} (grade_id {c.grade_id!r}): the grade_id of cell {other.index} of "
                               f"{other.notebook} (line {other.line}) too; fix: give every graded cell of the "
                               "assignment its own grade_id")


def _check_points(manifest: Manifest, graded: list[GradeCell], mfile: Path, mpath: str) -> None:
    """The manifest's [points] must list exactly the graded cells, with their points (when it declares any)."""
    if not manifest.points:
        return
    for c in graded:
        where = f"cell {c.index} of {c.notebook}, line {c.line}"
        if c.grade_id not in manifest.points:
            raise ReleaseError("manifest", mpath, line_of(mfile, "[points]"),
                               f"graded cell {c.grade_id!r} ({c.points:g} points, {where}) is missing from [points]; "
                               f"fix: add `{c.grade_id} = {c.points:g}` under [points]")
        if manifest.points[c.grade_id] != c.points:
            raise ReleaseError("manifest", mpath, line_of(mfile, c.grade_id),
                               f"[points] gives {c.grade_id!r} {manifest.points[c.grade_id]:g} points, the notebook "
                               f"{c.points:g} ({where}); fix: make them equal")
    ids = {c.grade_id for c in graded}
    for gid, p in manifest.points.items():
        if gid not in ids:
            raise ReleaseError("manifest", mpath, line_of(mfile, gid),
                               f"[points] gives {gid!r} {p:g} points, but no notebook has a graded cell with that "
                               "grade_id; fix: remove the line, or correct the grade_id to the cell's")


def _allow_list(mfile: Path, mpath: str) -> list[Allowed]:
    """The manifest's `[release.allow]`: `"text students see on purpose" = "why"` (see autograder.release.gates)."""
    import tomllib

    data = tomllib.loads(mfile.read_text(encoding="utf-8"))  # load_manifest has parsed it once already
    table = data.get("release", {})
    allow = table.get("allow", {}) if isinstance(table, dict) else None
    if not isinstance(allow, dict):
        raise ReleaseError("manifest", mpath, line_of(mfile, "release"),
                           '[release.allow] must be a table of `"text students see on purpose" = "why"` entries')
    raw = mfile.read_text(encoding="utf-8").split("\n")
    out = []
    for text, reason in allow.items():
        line = next((n for n, l in enumerate(raw, start=1) if _toml_key(l) == text), line_of(mfile, "[release.allow]"))
        if not isinstance(reason, str) or not reason.strip():
            raise ReleaseError("manifest", mpath, line, f"[release.allow] entry {text!r} needs its reason: "
                                                        f'{json.dumps(text)} = "why students see it"')
        if not any(t not in FILLER for t in fragment_tokens(text)):
            raise ReleaseError("manifest", mpath, line, f"[release.allow] entry {text!r} holds no words or numbers")
        out.append(Allowed(text=text, reason=reason, path=mpath, line=line))
    return out


def _provided(mfile: Path, mpath: str, elsewhere: dict[str, set[str]]) -> dict[str, set[str]]:
    """The manifest's `[release.provide]`: `"module:function" = "why"`, functions another
    assignment asks for that this release ships complete on purpose (its own provided code
    needs them). An entry that provides nothing stops the release."""
    import tomllib

    table = tomllib.loads(mfile.read_text(encoding="utf-8")).get("release", {})
    provide = table.get("provide", {}) if isinstance(table, dict) else None
    if not isinstance(provide, dict):
        raise ReleaseError("manifest", mpath, line_of(mfile, "release"),
                           '[release.provide] must be a table of `"nnkit/module.py:function" = "why"` entries')
    raw = mfile.read_text(encoding="utf-8").split("\n")
    out: dict[str, set[str]] = {}
    for key, reason in provide.items():
        line = next((n for n, l in enumerate(raw, start=1) if _toml_key(l) == key), line_of(mfile, "[release.provide]"))
        module, _, function = key.partition(":")
        if not isinstance(reason, str) or not reason.strip():
            raise ReleaseError("manifest", mpath, line, f"[release.provide] entry {key!r} needs its reason: "
                                                        f'{json.dumps(key)} = "why this release ships it complete"')
        if function not in elsewhere.get(module, ()):
            raise ReleaseError("manifest", mpath, line, f"[release.provide] entry {key!r} provides nothing: no other "
                                                        "assignment asks for that function (write it as "
                                                        '"nnkit/module.py:Class.method"), so it ships complete anyway')
        out.setdefault(module, set()).add(function)
    return out


def _toml_key(line: str) -> str | None:
    import tomllib

    try:
        entry = tomllib.loads(line)
    except tomllib.TOMLDecodeError:
        return None
    return next(iter(entry)) if len(entry) == 1 and isinstance(next(iter(entry.values())), str) else None

# ---------------------------------------------------------------- staging: write the release

def manifest_toml(m: Manifest) -> str:
    """The release's manifest.toml: the same data as the source manifest, no comments."""
    def key(k):
        return k if k.replace("_", "").replace("-", "").isalnum() and k.isascii() else json.dumps(k)

    def arr(name, values):
        return f"{name} = [\n" + "".join(f"    {json.dumps(v)},\n" for v in values) + "]\n"

    out = [f"# The manifest of the assignment `{m.assignment}`, written by `python -m autograder release`.\n",
           f"assignment = {json.dumps(m.assignment)}\n", f"title = {json.dumps(m.title)}\n",
           arr("notebooks", m.notebooks), arr("student_modules", m.student_modules),
           arr("saved_models", m.saved_models), arr("datasets", m.datasets)]
    for dataset, checks in m.thresholds.items():
        out.append(f"\n[thresholds.{key(dataset)}]\n")
        out.extend(f"{key(k)} = {float(v)!r}\n" for k, v in checks.items())
    out.append("\n[points]\n")
    out.extend(f"{key(k)} = {float(v)!r}\n" for k, v in m.points.items())
    return "".join(out)


def readme(m: Manifest) -> str:
    """The student README from release/files/README.md (placeholders: $title, $assignment, $notebooks, $modules)."""
    template = Template((RELEASE_FILES / "README.md").read_text(encoding="utf-8"))
    return template.substitute(
        title=m.title, assignment=m.assignment,
        notebooks="\n".join(f"{i}. `{nb}`" for i, nb in enumerate(m.notebooks, start=1)),
        modules="\n".join(f"- `{p}`" for p in m.student_modules),
    )


def stage(plan: Plan, dest: Path, generated_notebooks: Path) -> None:
    """Write the (ungated) release into the empty folder `dest`."""
    import nbformat

    m = plan.manifest
    for nb_name in m.notebooks:
        nb = nbformat.read(str(generated_notebooks / nb_name), as_version=4)
        # nbformat writes JSON with sorted keys and cell ids as they are: deterministic.
        _write(dest / nb_name, nbformat.writes(nb) + "\n")
    for rel in plan.package_files:
        if rel in plan.stripped:
            _write(dest / rel, plan.stripped[rel])
        else:
            _copy(plan.root / "source" / rel, dest / rel)
    for rel in plan.dataset_files:
        _copy(plan.root / rel, dest / rel)
    for rel in m.files:
        _copy(plan.source_dir / rel, dest / rel)
    _write(dest / "manifest.toml", manifest_toml(m))
    _write(dest / "README.md", readme(m))
    _copy(RELEASE_FILES / "requirements.txt", dest / "requirements.txt")
    _copy(RELEASE_FILES / "make_submission.py", dest / "make_submission.py")


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))  # bytes: no newline translation, ever
    os.chmod(path, 0o644)


def _copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)  # contents only: no timestamps or modes carried over
    os.chmod(dest, 0o644)


# ---------------------------------------------------------------- the self-grade

@dataclass
class Course:
    """A throwaway nbgrader course for one release: its config, API and folders."""

    root: Path
    config: object
    api: object


def open_course(plan: Plan, workdir: Path, exclude_overwriting: bool = True) -> tuple[Course, Path]:
    """Create a course in `workdir` whose source is the source notebooks + the reference nnkit,
    run generate_assignment, and return it with nbgrader's release folder."""
    from .. import nbgrader_course as nc

    m = plan.manifest
    config = nc.build_config(workdir, assignment=m.assignment,
                             exclude_overwriting=m.student_modules if exclude_overwriting else (),
                             timeout=CELL_TIMEOUT)
    api = nc.make_api(config)
    src = nc.put_source(config, m.assignment, plan.source_dir, list(m.notebooks))
    write_solved_package(plan, src)
    nc.copy_tree(plan.source_dir, src, list(m.files))
    # The notebooks read their thresholds from manifest.toml beside them; autograde restores
    # it (like every non-student file) from here.
    _write(src / "manifest.toml", manifest_toml(m))
    try:
        released = nc.generate_assignment(api, m.assignment)
    except nc.NbGraderError as exc:
        raise _generate_error(plan, Path(workdir), str(exc)) from None
    return Course(Path(workdir), config, api), released


def _generate_error(plan: Plan, workdir: Path, report: str) -> ReleaseError:
    """nbgrader refused the source in a way the kit's own checks (gate `notebook`) do not know:
    name the notebook (found by generating each one alone) and nbgrader's own error line,
    never its traceback."""
    from .. import nbgrader_course as nc

    lines = [l.strip() for l in report.split("\n")]
    found = [n for n, l in enumerate(lines) if re.match(r"[\w.]*(Error|Exception|Exit)\b.*:", l)
             and "NbGraderException" not in l]
    if found:
        n = found[-1]
        parts, k = [lines[n]], n + 1
        while k < len(lines) and lines[k] and not lines[k].startswith("[") and len(parts) < 4:
            parts.append(lines[k])
            k += 1
        error = " ".join(parts)[:400]
    else:
        error = (lines[1] if len(lines) > 1 else report)[:300]
    m = plan.manifest
    culprit = None
    for i, nb_name in enumerate(m.notebooks):
        probe = workdir.parent / f"{workdir.name}-probe-{i}"
        config = nc.build_config(probe, assignment=m.assignment, timeout=CELL_TIMEOUT)
        src = nc.put_source(config, m.assignment, plan.source_dir, [nb_name])
        nc.copy_tree(plan.root / "source", src, plan.package_files)
        try:
            nc.generate_assignment(nc.make_api(config), m.assignment)
        except nc.NbGraderError:
            culprit = nb_name
            break
        finally:
            shutil.rmtree(probe, ignore_errors=True)
    where = f"source/{m.assignment}/{culprit}" if culprit else f"source/{m.assignment}"
    return ReleaseError("generate", where, 1,
                        f"nbgrader's generate_assignment refused {'this notebook' if culprit else 'the assignment'}: "
                        f"{error}. The kit's own checks of the notebooks do not know this case; compare the nbgrader "
                        "metadata of its cells with cells the Create Assignment toolbar makes (View > Cell Toolbar > "
                        "Create Assignment), and fix the cell nbgrader names above")


def _reference_env(plan: Plan) -> dict[str, str]:
    """The environment of the reference kernels: this process's, plus KERNEL_ENV and the
    repository's datasets, minus nbgrader's variables (expensive cells must run)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NBGRADER_")}
    env["NNKIT_DATA_DIR"] = str(plan.root / "datasets")
    for k, v in KERNEL_ENV.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


def write_solved_package(plan: Plan, dest: Path) -> None:
    """The shipped package with this assignment's solutions in place (``Plan.solved``), into `dest`."""
    for rel in plan.package_files:
        if rel in plan.solved:
            _write(dest / rel, plan.solved[rel])
        else:
            _copy(plan.root / "source" / rel, dest / rel)


def run_reference(plan: Plan, workdir: Path, env: dict[str, str] | None = None) -> Path:
    """Execute the source notebooks once (nbclient, embedded dataset) beside the reference
    nnkit; returns the folder holding the notebooks, the package and the saved models.

    The kernels get `env` explicitly (default `_reference_env`), never os.environ at the
    time they start: nbgrader's validate, running meanwhile in another thread, sets
    NBGRADER_EXECUTION in os.environ, which would make the reference skip its training.
    """
    import nbclient
    import nbformat
    from .. import nbgrader_course as nc

    m = plan.manifest
    nc.copy_tree(plan.source_dir, workdir, list(m.notebooks) + list(m.files))
    write_solved_package(plan, workdir)
    _write(workdir / "manifest.toml", manifest_toml(m))
    env = dict(env) if env is not None else _reference_env(plan)
    for nb_name in m.notebooks:
        nb = nbformat.read(str(workdir / nb_name), as_version=4)
        # The kernel's own log level: ipykernel 7 warns on stderr about TCP transport on
        # every start, which is noise in the demo and the release output.
        client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                                         extra_arguments=["--IPKernelApp.log_level=ERROR"],
                                         resources={"metadata": {"path": str(workdir)}})
        try:
            client.execute(env=env)
        except nbclient.exceptions.CellExecutionError as exc:
            first_line, error = _failed_cell(nb)
            line = line_of(plan.source_dir / nb_name, first_line) if first_line else 1
            raise ReleaseError("self-grade", f"source/{m.assignment}/{nb_name}", line,
                               f"the reference notebook fails to execute: {error or exc.ename}") from None
    for model in m.saved_models:
        if not (workdir / model).is_file():
            raise ReleaseError("self-grade", f"source/{m.assignment}", 1,
                               f"executing the reference notebooks did not write {model} (listed in saved_models)")
    return workdir


def _failed_cell(nb) -> tuple[str | None, str | None]:
    """(first source line, "Error: value") of the cell that raised, if any."""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                return cell.source.split("\n")[0], f"{out.get('ename')}: {out.get('evalue')}"
    return None, None


def self_grade(plan: Plan, course: Course, reference: Path, release: Path) -> dict[str, dict[str, tuple]]:
    """Autograde the reference and the untouched release as two students of `course`.

    The reference must score full marks on every autograded cell, the release zero on
    every autograded cell, and neither may crash the grader. Returns
    {"reference": {grade_id: (score, max)}, "release": {...}}.
    """
    from .. import nbgrader_course as nc

    m = plan.manifest
    db = course.config.CourseDirectory.db_url
    results = {}
    with nc.environ(NNKIT_DATA_DIR=str(plan.root / "datasets"), **KERNEL_ENV):
        for student, folder in (("reference", reference), ("release", release)):
            nc.submit(course.config, m.assignment, student, folder, m.submission_files)
            try:
                nc.autograde(course.api, m.assignment, student)
            except nc.NbGraderError as exc:
                raise ReleaseError("self-grade", m.assignment, 1, f"autograding the {student} crashed nbgrader: {exc}") from None
            results[student] = {s.grade_id: (s.auto_score, s.max_score, s.notebook)
                                for s in nc.cell_scores(db, m.assignment, student) if s.autograded}
    if not results["reference"]:
        raise ReleaseError("self-grade", m.assignment, 1, "the notebooks hold no autograded cell")
    for gid, (score, top, nb) in results["reference"].items():
        if score != top:
            raise ReleaseError("self-grade", f"{nb}.ipynb", raw_line_of(release / f"{nb}.ipynb", f'"grade_id": "{gid}"'),
                               f"the reference scores {score}/{top:g} on {gid}; it must score full marks")
    for gid, (score, top, nb) in results["release"].items():
        if score != 0:
            raise ReleaseError("self-grade", f"{nb}.ipynb", raw_line_of(release / f"{nb}.ipynb", f'"grade_id": "{gid}"'),
                               f"the untouched release scores {score}/{top:g} on {gid}; it must score 0")
    return results


# ---------------------------------------------------------------- RELEASE_DIGEST: releases that cannot go stale

#: The file of every release that says what built it (its format: `write_digest`).
DIGEST_FILE = "RELEASE_DIGEST"
#: Bumped when what a release is built from changes meaning (then every older release is stale).
DIGEST_FORMAT = 1


def release_inputs(assignment: str, root: Path = REPO_ROOT) -> dict[str, Path]:
    """What a release of `assignment` is built from, by the name RELEASE_DIGEST gives it.

    - ``source/<assignment>/manifest.toml``, the notebooks and the files it lists;
    - the package modules it ships (``[package]``, with their folders' ``__init__.py``),
      stripped or copied;
    - ``datasets/fetch.py`` and ``datasets/embedded/``, shipped as they are;
    - ``release_files/*`` (the kit's ``autograder/release/files/``: the student README
      template, ``requirements.txt``, ``make_submission.py``).

    Plus, as a line of its own, the nbgrader version (its generate_assignment writes the
    notebooks). The kit's own code (the stripper, this module) is not an input: a change
    there that changes the release is caught by CI's rebuild of the committed release.
    Raises ManifestError when the manifest cannot be read.
    """
    root = Path(root).resolve()
    m = load_manifest(assignment, root)
    src = f"source/{assignment}"
    names = [f"{src}/manifest.toml"] + [f"{src}/{nb}" for nb in m.notebooks] + [f"{src}/{f}" for f in m.files]
    for rel in m.package or {}:
        parts = Path(rel).parts
        names += ["source/" + "/".join(parts[:k]) + "/__init__.py" for k in range(1, len(parts))
                  if (root / "source" / "/".join(parts[:k]) / "__init__.py").is_file()]
        names.append(f"source/{rel}")
    names = sorted(set(names), key=names.index)
    names.append("datasets/fetch.py")
    if (root / "datasets" / "embedded").is_dir():
        names += ["datasets/embedded/" + p for p in _tree(root / "datasets" / "embedded")]
    out = {name: root / name for name in names}
    out.update({f"release_files/{p}": RELEASE_FILES / p for p in _tree(RELEASE_FILES)})
    return out


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def _builder() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"nbgrader {version('nbgrader')}"
    except PackageNotFoundError:
        return "nbgrader none"


#: The input that is not a file: what the other assignments have students write (stubbed here too).
ELSEWHERE_INPUT = "source/*/manifest.toml [package] of the other assignments"


def _elsewhere_hash(assignment: str, root: Path) -> str:
    try:
        asked = functions_asked_elsewhere(assignment, root)
    except ReleaseError as exc:  # an unreadable manifest: stale until it reads (the release says why)
        return hashlib.sha256(f"unreadable: {exc}".encode()).hexdigest()
    text = json.dumps({m: sorted(f) for m, f in sorted(asked.items())}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def input_hashes(assignment: str, root: Path = REPO_ROOT) -> dict[str, str | None]:
    """sha256 of every input (`release_inputs`, None for a listed file that is missing), and of
    what the other assignments ask for (`ELSEWHERE_INPUT`): editing another assignment's
    notebooks or thresholds leaves this release fresh; changing what it stubs does not."""
    out = {name: _sha256(path) for name, path in sorted(release_inputs(assignment, root).items())}
    out[ELSEWHERE_INPUT] = _elsewhere_hash(assignment, Path(root).resolve())
    return dict(sorted(out.items()))


def digest_text(assignment: str, inputs: dict[str, str | None], release: Path) -> str:
    """The RELEASE_DIGEST of the staged release `release` built from `inputs`."""
    out = [f"# What built this release; written by `python -m autograder release {assignment}`.\n",
           "# `grade` checks it (autograder.release.build.release_freshness): the release is stale when an\n",
           "# input below changed since, or a file of the release was edited. sha256, two spaces, path.\n",
           f"format {DIGEST_FORMAT}\n", f"builder {_builder()}\n"]
    out += [f"input {h or '-'}  {name}\n" for name, h in sorted(inputs.items())]
    out += [f"file {_sha256(release / rel)}  {rel}\n" for rel in release_files(release) if rel != DIGEST_FILE]
    return "".join(out)


@dataclass
class Digest:
    format: int
    builder: str
    inputs: dict[str, str]
    files: dict[str, str]


def read_digest(path: Path) -> Digest:
    """Parse a RELEASE_DIGEST; ValueError naming the line when it is not one."""
    fmt, builder, inputs, files = None, None, {}, {}
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").split("\n"), start=1):
        if not line or line.startswith("#"):
            continue
        kind, _, rest = line.partition(" ")
        if kind == "format" and rest.isdigit():
            fmt = int(rest)
        elif kind == "builder":
            builder = rest
        elif kind in ("input", "file") and "  " in rest:
            h, name = rest.split("  ", 1)
            (inputs if kind == "input" else files)[name] = h
        else:
            raise ValueError(f"{path}:{n}: not a line of a release digest: {line[:80]!r}")
    if fmt is None or builder is None:
        raise ValueError(f"{path}: no `format` or `builder` line")
    return Digest(fmt, builder, inputs, files)


def _names(paths: list[str], limit: int = 6) -> str:
    shown = ", ".join(paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


def release_freshness(assignment: str, release_dir: Path, root: Path = REPO_ROOT) -> str | None:
    """None when the release at `release_dir` is what the current `source/` would build;
    else one paragraph saying what differs and the fix.

    Nothing is built: the inputs (`release_inputs`) and the release's files are hashed
    and compared with the release's RELEASE_DIGEST (a few milliseconds for an assignment of four notebooks).
    """
    root = Path(root).resolve()
    release_dir = Path(release_dir)
    try:
        shown = release_dir.resolve().relative_to(root).as_posix()
    except ValueError:
        shown = str(release_dir)
    default = (root / "assignments" / assignment).resolve() == release_dir.resolve()
    command = f"python -m autograder release {assignment}" + ("" if default else f" --output {shown}")
    fix = (f"Rebuild it with `{command}` (and commit it, if students get it from the repository); to grade "
           "against this release on purpose, name it with `--release`.")
    digest_path = release_dir / DIGEST_FILE
    if not digest_path.is_file():
        return (f"The release at {shown} has no {DIGEST_FILE}, so nothing says it matches source/{assignment}/: it "
                f"was not built by `python -m autograder release` (or by a kit older than release digests). {fix}")
    try:
        recorded = read_digest(digest_path)
    except (ValueError, UnicodeDecodeError) as exc:
        return f"The release at {shown} has an unreadable {DIGEST_FILE} ({exc}). {fix}"
    try:
        current = input_hashes(assignment, root)
    except ManifestError as exc:
        return f"The release at {shown} cannot be checked against source/{assignment}/: {exc}. {fix}"
    problems = []
    if recorded.format != DIGEST_FORMAT:
        problems.append(f"it was built by another release format ({recorded.format}, this kit writes {DIGEST_FORMAT})")
    if recorded.builder != _builder():
        problems.append(f"it was built with {recorded.builder}, this grader has {_builder()}")
    changed = sorted(n for n in recorded.inputs.keys() & current.keys() if recorded.inputs[n] != (current[n] or "-"))
    added = sorted(n for n in current.keys() - recorded.inputs.keys())
    removed = sorted(n for n in recorded.inputs.keys() - current.keys())
    if changed:
        problems.append(f"{_names(changed)} changed since it was built")
    if added:
        problems.append(f"{_names(added)} {'is' if len(added) == 1 else 'are'} new")
    if removed:
        problems.append(f"{_names(removed)} {'is' if len(removed) == 1 else 'are'} gone")
    if release_dir.is_dir():
        present = [f for f in release_files(release_dir) if f != DIGEST_FILE and not _skip(tuple(f.split("/")))]
    else:
        present = []
    edited = sorted(f for f in recorded.files if _sha256(release_dir / f) != recorded.files[f])
    extra = sorted(set(present) - set(recorded.files))
    if edited:
        problems.append(f"{_names(edited)} of the release {'was' if len(edited) == 1 else 'were'} edited or "
                        "removed after the build")
    if extra:
        problems.append(f"{_names(extra)} {'is' if len(extra) == 1 else 'are'} in the release but not from the build")
    if not problems:
        return None
    return (f"The release at {shown} is stale: " + "; ".join(problems) + ". Grading with it would score students "
            f"against other notebooks, thresholds or points than source/{assignment}/ says now. {fix}")


def check_digest(release: Path) -> None:
    """Gate `digest`: the staged release's files are exactly those its RELEASE_DIGEST lists."""
    recorded = read_digest(release / DIGEST_FILE)
    present = [f for f in release_files(release) if f != DIGEST_FILE]
    for rel in present:
        if recorded.files.get(rel) != _sha256(release / rel):
            raise GateFailure("digest", rel, 1, f"changed after {DIGEST_FILE} was written (something wrote into the "
                                                "staged release)")
    for rel in sorted(set(recorded.files) - set(present)):
        raise GateFailure("digest", rel, 1, f"listed in {DIGEST_FILE} but gone from the staged release")


# ---------------------------------------------------------------- zip bundle and atomic swap

def write_zip(release: Path, zip_path: Path, assignment: str) -> None:
    """The Colab-ready bundle: every release file under `<assignment>/`, plus `<assignment>/MANIFEST`
    (one `sha256  path` line per file). Sorted entries, fixed timestamps and modes: deterministic."""
    files = release_files(release)
    manifest = "".join(f"{hashlib.sha256((release / f).read_bytes()).hexdigest()}  {f}\n" for f in files)
    entries = [(f, (release / f).read_bytes()) for f in files] + [("MANIFEST", manifest.encode())]
    zip_path = Path(zip_path)
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = zip_path.with_name(f".{zip_path.name}.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in sorted(entries):
            info = zipfile.ZipInfo(f"{assignment}/{name}", date_time=ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, whatever the host
            zf.writestr(info, data)
    os.replace(tmp, zip_path)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with renameat2(RENAME_EXCHANGE) (Linux); False if unavailable."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    AT_FDCWD, RENAME_EXCHANGE = -100, 2
    return renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0


def swap_in(staging: Path, output: Path) -> None:
    """Make `staging` the release at `output`: an atomic exchange when the OS allows it."""
    if output.exists():
        if not _exchange(staging, output):
            old = output.with_name(f".{output.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.rename(output, old)
            os.rename(staging, output)
            staging = old
        shutil.rmtree(staging)
    else:
        os.rename(staging, output)


# ---------------------------------------------------------------- the verb

@dataclass
class ReleaseReport:
    output: Path
    files: list[str]
    timings: dict[str, float]
    scores: dict[str, dict[str, tuple]] = field(default_factory=dict)


def build_release(assignment: str, *, root: Path = REPO_ROOT, output: str | Path | None = None,
                  zip_path: str | Path | None = None, self_grade_gate: bool = True,
                  log: Callable[[str], None] = lambda s: None,
                  tamper: Callable[[Path], None] | None = None) -> ReleaseReport:
    """Build, gate and (only if every gate passes) install the release of `assignment`.

    `root` is the repository (holding source/, datasets/); `output` defaults to
    `root/assignments/<assignment>`. `tamper`, for tests only, edits the staged release
    before the gates run (to plant a leak the builder itself would never write).
    Raises ReleaseError naming the gate and file:line; the old release is then untouched.
    """
    root = Path(root).resolve()
    output = Path(output).resolve() if output else root / "assignments" / assignment
    timings: dict[str, float] = {}
    t = time.perf_counter()

    def lap(name):
        nonlocal t
        now = time.perf_counter()
        timings[name] = round(now - t, 2)
        t = now
        log(f"  {name}: {timings[name]:.1f} s")

    plan = plan_release(assignment, root)
    lap("plan (manifest, strip)")
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.new-", dir=output.parent))
    os.chmod(staging, 0o755)  # mkdtemp makes it 0700; the release is a normal folder
    scratch = Path(tempfile.mkdtemp(prefix="nnkit-release-"))
    try:
        course, generated = open_course(plan, scratch / "course")
        stage(plan, staging, generated)
        _write(staging / DIGEST_FILE, digest_text(assignment, plan.inputs, staging))
        lap("generate + stage")
        if tamper is not None:
            tamper(staging)
        _gate(lambda: check_hidden_files(staging))
        _gate(lambda: check_allow_list(staging, plan.expected_files()))
        _gate(lambda: check_markers(staging))
        _gate(lambda: check_solution_lines(staging, plan.source_lines))
        _gate(lambda: check_solution_fragments(staging, plan.fragments, plan.allowed,
                                               f"source/{assignment}/manifest.toml"))
        _gate(lambda: check_outputs(staging, plan.manifest.notebooks))
        lap("static gates")
        _gate(lambda: check_stubs(staging, [p for p in plan.package_files if p.endswith(".py")], plan.stubs))
        lap("stubs gate")
        # validate and the self-grade execute notebooks: on copies, never in the release.
        validate_copy = scratch / "validate"
        shutil.copytree(staging, validate_copy)
        from .. import nbgrader_course as nc

        scores = {}
        with nc.environ(NNKIT_DATA_DIR=str(plan.root / "datasets"), **KERNEL_ENV), \
                ThreadPoolExecutor(max_workers=1) as pool:
            # The reference notebooks (training on the embedded dataset: the slowest step)
            # execute in a second kernel while validate runs: two cores, two kernels.
            reference = (pool.submit(run_reference, plan, scratch / "reference", _reference_env(plan))
                         if self_grade_gate else None)
            try:
                _gate(lambda: check_validate(validate_copy, plan.manifest.notebooks, course.config))
            finally:
                if reference is not None and not reference.done():
                    reference.cancel()
            lap("validate --invert")
            if reference is not None:
                reference_dir = reference.result()
                lap("execute reference notebooks (beyond validate)")
                scores = self_grade(plan, course, reference_dir, staging)
                lap("self-grade (autograde reference + release)")
        # Nothing may have written into the staged release meanwhile.
        _gate(lambda: check_hidden_files(staging))
        _gate(lambda: check_allow_list(staging, plan.expected_files()))
        _gate(lambda: check_digest(staging))
        if zip_path:
            write_zip(staging, Path(zip_path), assignment)
            lap("zip")
        files = release_files(staging)
        swap_in(staging, output)
        return ReleaseReport(output=output, files=files, timings=timings, scores=scores)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _gate(check: Callable[[], None]) -> None:
    try:
        check()
    except GateFailure as exc:
        raise ReleaseError(exc.gate, exc.path, exc.line, exc.message) from None


def release_command(assignment: str, output: str | None = None, zip_path: str | None = None) -> int:
    """The CLI verb: build the release; exit 0 when it was installed, 1 naming the failed gate."""
    print(f"release {assignment}: building and gating")
    try:
        report = build_release(assignment, output=output, zip_path=zip_path, log=print)
    except ReleaseError as exc:
        print(f"release {assignment}: FAILED, nothing changed\n  {exc}", file=sys.stderr)
        return 1
    print(f"release {assignment}: every gate passed; {len(report.files)} files in {report.output}")
    if zip_path:
        print(f"  bundle: {zip_path}")
    return 0
