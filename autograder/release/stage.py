"""Staging: write the (ungated) release into an empty folder; and the package with this
assignment's solutions in place, for the reference runs.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from string import Template

from ..manifest import Manifest
from .plan import Plan
from .shared import RELEASE_FILES


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


def write_solved_package(plan: Plan, dest: Path) -> None:
    """The shipped package with this assignment's solutions in place (``Plan.solved``), into `dest`."""
    for rel in plan.package_files:
        if rel in plan.solved:
            _write(dest / rel, plan.solved[rel])
        else:
            _copy(plan.root / "source" / rel, dest / rel)
