"""`python -m autograder release <assignment>`: build a student release that provably leaks nothing.

The release of `source/<assignment>/` + `source/nnkit/` (default output
`assignments/<assignment>/`) holds::

    <notebooks>          from nbgrader's generate_assignment (in-process, kit's own config)
    nnkit/               every module of source/nnkit; student modules stripped (autograder.strip)
    manifest.toml        the assignment's manifest, regenerated without instructor comments
    datasets/fetch.py    the dataset fetch helper, and datasets/embedded/ so it works offline
    make_submission.py   the submission helper (stdlib only)
    requirements.txt     the student extra
    README.md            how to work on and submit the assignment

It is built in a temporary folder beside the output, then every gate runs
(`autograder.leakgate`, plus the self-grade here). Only when all pass does the new
release replace the old one, atomically; otherwise nothing changes and the command
exits 1 naming the gate and `file:line`. The same source gives a byte-identical release.
"""
from __future__ import annotations

import ctypes
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Callable

from . import REPO_ROOT
from .leakgate import (
    GateFailure, SourceLines, Stub, check_allow_list, check_hidden_files, check_markers,
    check_outputs, check_solution_lines, check_stubs, check_validate, line_of, raw_line_of, release_files,
)
from .manifest import Manifest, ManifestError, load_manifest
from .strip import StripError, find_regions, strip_source

RELEASE_FILES = Path(__file__).resolve().parent / "release_files"
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
    stripped: dict[str, str]  # student module -> stubbed text
    stubs: list[Stub]
    source_lines: SourceLines
    dataset_files: list[str]  # relative to root ("datasets/fetch.py", ...)
    notebook_points: dict[str, dict[str, float]] = field(default_factory=dict)  # nb -> grade_id -> points

    @property
    def source_dir(self) -> Path:
        return self.root / "source" / self.manifest.assignment

    def expected_files(self) -> list[str]:
        return sorted(
            list(self.manifest.notebooks) + self.package_files + self.dataset_files
            + ["manifest.toml", "README.md", "requirements.txt", "make_submission.py"]
        )


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
    pkg_root = root / "source" / "nnkit"
    if not pkg_root.is_dir():
        raise ReleaseError("manifest", "source/nnkit", 1, "no reference package at source/nnkit")
    package_files = ["nnkit/" + p for p in _tree(pkg_root)]
    lines = SourceLines()
    stripped, stubs, with_regions = {}, [], []
    for rel in package_files:
        if not rel.endswith(".py"):
            continue
        text = (root / "source" / rel).read_text(encoding="utf-8")
        shown = f"source/{rel}"
        try:
            regions = find_regions(text, shown)
        except StripError as exc:
            raise ReleaseError("strip", exc.path, exc.line, str(exc).split(": ", 1)[1]) from None
        src_lines = text.split("\n")
        inside = set()
        for region in regions:
            for n in range(region.begin + 1, region.end):
                inside.add(n)
                lines.add_region_line(src_lines[n - 1], (shown, n))
        for n, line in enumerate(src_lines, start=1):
            if n not in inside:
                lines.add_outside_line(line)
        if regions:
            with_regions.append(rel)
            try:
                result = strip_source(text, shown)
            except StripError as exc:
                raise ReleaseError("strip", exc.path, exc.line, str(exc).split(": ", 1)[1]) from None
            stripped[rel] = result.text
            stubs.extend(Stub(rel, line, fn, whole) for line, fn, whole in result.stubs)
    declared = set(manifest.student_modules)
    if set(with_regions) != declared:
        missing = sorted(set(with_regions) - declared)
        extra = sorted(declared - set(with_regions))
        msg = []
        if missing:
            msg.append(f"modules with solution regions not listed in student_modules: {missing}")
        if extra:
            msg.append(f"student_modules without any solution region (or missing): {extra}")
        raise ReleaseError("manifest", mpath, line_of(root / mpath, "student_modules"), "; ".join(msg))

    nb_points: dict[str, dict[str, float]] = {}
    for nb_name in manifest.notebooks:
        path = root / "source" / assignment / nb_name
        if not path.is_file():
            raise ReleaseError("manifest", mpath, line_of(root / mpath, nb_name), f"notebook {nb_name} is listed but "
                                                                                 f"source/{assignment}/{nb_name} does not exist")
        nb_points[nb_name] = _notebook_lines(path, f"source/{assignment}/{nb_name}", lines)
    _check_points(manifest, nb_points, root / mpath, mpath)

    datasets = root / "datasets"
    if not (datasets / "fetch.py").is_file():
        raise ReleaseError("manifest", "datasets/fetch.py", 1, "the dataset fetch helper is missing; the release "
                                                              "ships it so students can download the datasets")
    dataset_files = ["datasets/fetch.py"]
    if (datasets / "embedded").is_dir():
        dataset_files += ["datasets/embedded/" + p for p in _tree(datasets / "embedded")]
    return Plan(root=root, manifest=manifest, package_files=package_files, stripped=stripped, stubs=stubs,
                source_lines=lines, dataset_files=sorted(dataset_files), notebook_points=nb_points)


def _notebook_lines(path: Path, shown: str, lines: SourceLines) -> dict[str, float]:
    """Sort a source notebook's lines into region / outside lines; return its grade cells' points.

    Regions follow nbgrader's rules: lines between BEGIN/END SOLUTION, HIDDEN TESTS or
    MARK SCHEME markers (substring match, as nbgrader does), and the whole of a
    solution cell without markers (nbgrader replaces all of it).
    """
    raw = path.read_text(encoding="utf-8")
    nb = json.loads(raw)
    points = {}
    for cell in nb.get("cells", []):
        src = "".join(cell.get("source", ""))
        meta = cell.get("metadata", {}).get("nbgrader", {})
        where_line = line_of(path, src.split("\n")[0]) if src else 1
        cell_lines = src.split("\n")
        has_marker = any(k in src for k in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "BEGIN MARK SCHEME"))
        if meta.get("solution") and "BEGIN SOLUTION" not in src:
            for i, line in enumerate(cell_lines):
                lines.add_region_line(line, (shown, where_line + i))
        elif has_marker:
            depth = 0
            for i, line in enumerate(cell_lines):
                if any(k in line for k in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "BEGIN MARK SCHEME")):
                    depth += 1
                elif any(k in line for k in ("END SOLUTION", "END HIDDEN TESTS", "END MARK SCHEME")):
                    depth = max(0, depth - 1)
                elif depth:
                    lines.add_region_line(line, (shown, where_line + i))
                else:
                    lines.add_outside_line(line)
        else:
            for line in cell_lines:
                lines.add_outside_line(line)
        if meta.get("grade") and cell.get("cell_type") == "code":
            points[meta.get("grade_id", "?")] = float(meta.get("points", 0))
    return points


def _check_points(manifest: Manifest, nb_points: dict[str, dict[str, float]], mfile: Path, mpath: str) -> None:
    """The manifest's [points] must equal the autograded cells' points (when it declares any)."""
    if not manifest.points:
        return
    actual = {gid: p for pts in nb_points.values() for gid, p in pts.items()}
    for gid, p in sorted(actual.items()):
        if gid not in manifest.points:
            raise ReleaseError("manifest", mpath, line_of(mfile, "[points]"), f"autograded cell {gid!r} ({p:g} points) "
                                                                            "is missing from [points]")
        if manifest.points[gid] != p:
            raise ReleaseError("manifest", mpath, line_of(mfile, gid), f"[points] gives {gid!r} {manifest.points[gid]:g} "
                                                                       f"points, the notebook {p:g}")


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
    """The student README from release_files/README.md (placeholders: $title, $assignment, $notebooks, $modules)."""
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
    from . import nbgrader_course as nc

    m = plan.manifest
    config = nc.build_config(workdir, assignment=m.assignment,
                             exclude_overwriting=m.student_modules if exclude_overwriting else (),
                             timeout=CELL_TIMEOUT)
    api = nc.make_api(config)
    src = nc.put_source(config, m.assignment, plan.source_dir, list(m.notebooks))
    nc.copy_tree(plan.root / "source", src, plan.package_files)
    # The notebooks read their thresholds from manifest.toml beside them; autograde restores
    # it (like every non-student file) from here.
    _write(src / "manifest.toml", manifest_toml(m))
    try:
        released = nc.generate_assignment(api, m.assignment)
    except nc.NbGraderError as exc:
        raise ReleaseError("generate", f"source/{m.assignment}", 1, str(exc)) from None
    return Course(Path(workdir), config, api), released


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


def run_reference(plan: Plan, workdir: Path, env: dict[str, str] | None = None) -> Path:
    """Execute the source notebooks once (nbclient, embedded dataset) beside the reference
    nnkit; returns the folder holding the notebooks, the package and the saved models.

    The kernels get `env` explicitly (default `_reference_env`), never os.environ at the
    time they start: nbgrader's validate, running meanwhile in another thread, sets
    NBGRADER_EXECUTION in os.environ, which would make the reference skip its training.
    """
    import nbclient
    import nbformat
    from . import nbgrader_course as nc

    m = plan.manifest
    nc.copy_tree(plan.source_dir, workdir, list(m.notebooks))
    nc.copy_tree(plan.root / "source", workdir, plan.package_files)
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
    from . import nbgrader_course as nc

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
        lap("generate + stage")
        if tamper is not None:
            tamper(staging)
        _gate(lambda: check_hidden_files(staging))
        _gate(lambda: check_allow_list(staging, plan.expected_files()))
        _gate(lambda: check_markers(staging))
        _gate(lambda: check_solution_lines(staging, plan.source_lines))
        _gate(lambda: check_outputs(staging, plan.manifest.notebooks))
        lap("static gates")
        _gate(lambda: check_stubs(staging, [p for p in plan.package_files if p.endswith(".py")], plan.stubs))
        lap("stubs gate")
        # validate and the self-grade execute notebooks: on copies, never in the release.
        validate_copy = scratch / "validate"
        shutil.copytree(staging, validate_copy)
        from . import nbgrader_course as nc

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
