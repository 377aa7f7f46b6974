"""The throwaway nbgrader course of a release: generate_assignment, the reference notebooks
executed once, and the self-grade (the reference full marks, the untouched release zero).
"""
from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from .gates import line_of, raw_line_of
from .plan import Plan
from .shared import CELL_TIMEOUT, KERNEL_ENV, ReleaseError
from .stage import _write, manifest_toml, write_solved_package


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
