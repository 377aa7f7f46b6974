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

import ctypes
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .. import REPO_ROOT
from .bundle import write_zip
from .digest import DIGEST_FILE, check_digest, digest_text
from .gates import GateFailure, check_allow_list, check_hidden_files, check_markers, check_outputs, check_solution_fragments, check_solution_lines, check_stubs, check_validate, release_files
from .plan import plan_release
from .selfgrade import _reference_env, open_course, run_reference, self_grade
from .shared import KERNEL_ENV, ReleaseError
from .stage import _write, stage


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
