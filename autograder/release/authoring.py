"""Build an assignment's source notebooks from their plain-text cell files.

The committed notebooks ``source/<assignment>/NN_name.ipynb`` are the source of
truth the release reads; their cell files are how they are written and the
easiest way to change them: edit ``source/<assignment>/authoring/NN_name.cells``
and run

    .venv/bin/python -m autograder build-notebooks <assignment> [NN_name ...]

which writes every notebook of the manifest (or the ones named). Every notebook
is written clean (no outputs, no execution counts), as nbformat 4.5 with stable
cell ids (the ids below). ``stale_notebooks`` says which committed notebooks
differ from a fresh build (the test suite checks it for every assignment).

Cell file format: a line ``# %% <kind> <id> [points=<p>]`` starts a cell; the
lines up to the next header are its source. Kinds:

- ``md``        instructions, a locked read-only markdown cell
- ``code``      a free code cell (no nbgrader metadata; students may edit it)
- ``locked``    provided code, a locked read-only code cell
- ``solution``  a code cell students complete (nbgrader solution cell)
- ``test``      an autograded test cell (locked, points, tag ``nnkit:test:<id>``)
- ``manual``    a manually graded written answer (markdown, points)

The id is the cell id and the nbgrader ``grade_id``. A line ``{{SETUP}}`` is
replaced by ``setup_cell.py`` (the locked setup cell every notebook of every
assignment shares), in which ``{{ASSIGNMENT}}`` is the assignment's name and
``{{DATASETS}}`` the manifest's datasets. Every ``test`` cell starts with
``GUARD``: a check run before the setup cell says so, instead of failing with a
bare NameError.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

from .. import REPO_ROOT
from ..manifest import Manifest, ManifestError, load_manifest

SETUP_CELL = Path(__file__).resolve().parent / "setup_cell.py"
GUARD = ('assert "check_close" in globals(), '
         '"run the first two code cells of this notebook (your settings, then the setup) before the checks"')
HEADER = re.compile(r"^# %% (md|code|locked|solution|test|manual) ([A-Za-z0-9_-]+)(?: points=([0-9.]+))?\s*$")


def _nbgrader(grade_id, *, grade=False, solution=False, locked=False, points=None):
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked,
            "schema_version": 3, "solution": solution, "task": False}
    if points is not None:
        meta["points"] = int(points) if float(points).is_integer() else float(points)
    return dict(sorted(meta.items()))


class AuthoringError(ValueError):
    """A cell file is missing or malformed; the message names the file and line."""


def parse_cells(text: str, setup: str) -> list[nbformat.NotebookNode]:
    """The cells of one ``.cells`` file, with metadata, in order (ValueError on a malformed file)."""
    cells, current = [], None
    for line in text.splitlines():
        m = HEADER.match(line)
        if m:
            if current:
                cells.append(current)
            current = {"kind": m.group(1), "id": m.group(2), "points": m.group(3), "lines": []}
        elif current is None:
            if line.strip():
                raise ValueError(f"text before the first cell header: {line!r}")
        elif line.strip() == "{{SETUP}}":
            current["lines"].extend(setup.rstrip("\n").splitlines())
        else:
            current["lines"].append(line)
    if current:
        cells.append(current)

    out, seen = [], set()
    for c in cells:
        kind, cid = c["kind"], c["id"]
        if cid in seen:
            raise ValueError(f"cell id {cid!r} used twice")
        seen.add(cid)
        src = "\n".join(c["lines"]).strip("\n")
        if kind == "test":
            src = GUARD + "\n" + src
        if kind in ("test", "manual") and c["points"] is None:
            raise ValueError(f"{kind} cell {cid!r} needs points=")
        if kind in ("md", "manual"):
            cell = nbformat.v4.new_markdown_cell(src)
        else:
            cell = nbformat.v4.new_code_cell(src)
        cell["id"] = cid
        if kind == "md":
            cell.metadata["nbgrader"] = _nbgrader(cid, locked=True)
        elif kind == "locked":
            cell.metadata["nbgrader"] = _nbgrader(cid, locked=True)
        elif kind == "solution":
            cell.metadata["nbgrader"] = _nbgrader(cid, solution=True)
        elif kind == "test":
            cell.metadata["nbgrader"] = _nbgrader(cid, grade=True, locked=True, points=c["points"])
            cell.metadata["tags"] = [f"nnkit:test:{cid}"]
        elif kind == "manual":
            cell.metadata["nbgrader"] = _nbgrader(cid, grade=True, solution=True, points=c["points"])
            cell.metadata["tags"] = [f"nnkit:answer:{cid}"]
        out.append(cell)
    return out


def setup_source(manifest: Manifest) -> str:
    """The shared setup cell, filled in for one assignment."""
    datasets = " or ".join(f'"{d}"' for d in manifest.datasets)
    return (SETUP_CELL.read_text(encoding="utf-8")
            .replace("{{ASSIGNMENT}}", manifest.assignment).replace("{{DATASETS}}", datasets))


def cells_path(manifest: Manifest, notebook: str) -> Path:
    """``source/<assignment>/authoring/NN_name.cells`` of a notebook named in the manifest."""
    return manifest.path.parent / "authoring" / (Path(notebook).stem + ".cells")


def build(manifest: Manifest, notebook: str) -> nbformat.NotebookNode:
    """The notebook built from its cell file (AuthoringError naming the file when it cannot be)."""
    path = cells_path(manifest, notebook)
    if not path.is_file():
        raise AuthoringError(f"{path}: no cell file for the notebook {notebook} of the manifest; write it "
                             "(format: autograder/release/authoring.py) or remove the notebook from the manifest")
    try:
        cells = parse_cells(path.read_text(encoding="utf-8"), setup_source(manifest))
    except ValueError as exc:
        raise AuthoringError(f"{path}: {exc}") from None
    nb = nbformat.v4.new_notebook()
    nb.nbformat, nb.nbformat_minor = 4, 5
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    nb.cells = cells
    nbformat.validate(nb)
    return nb


def notebook_text(nb: nbformat.NotebookNode) -> str:
    """How a built notebook is written to disk."""
    return nbformat.writes(nb) + "\n"


def authored(assignment: str, root: Path = REPO_ROOT) -> bool:
    """Whether the assignment's notebooks are written as cell files (``source/<a>/authoring/``)."""
    return (Path(root) / "source" / assignment / "authoring").is_dir()


def stale_notebooks(assignment: str, root: Path = REPO_ROOT) -> list[str]:
    """The notebooks of the manifest whose committed file differs from a fresh build of its cell file."""
    manifest = load_manifest(assignment, root)
    stale = []
    for notebook in manifest.notebooks:
        path = manifest.path.parent / notebook
        if not path.is_file() or path.read_text(encoding="utf-8") != notebook_text(build(manifest, notebook)):
            stale.append(notebook)
    return stale


def build_notebooks_command(assignment: str, notebooks: list[str] | None = None) -> int:
    """``python -m autograder build-notebooks ASSIGNMENT [NN_name ...]``: write the source notebooks."""
    try:
        manifest = load_manifest(assignment)
        wanted = list(manifest.notebooks)
        if notebooks:
            by_stem = {Path(n).stem: n for n in manifest.notebooks}
            unknown = [n for n in notebooks if Path(n).stem not in by_stem]
            if unknown:
                raise AuthoringError(f"not notebooks of {assignment}: {', '.join(unknown)} "
                                     f"(its manifest lists {', '.join(manifest.notebooks)})")
            wanted = [by_stem[Path(n).stem] for n in notebooks]
        built = [(n, build(manifest, n)) for n in wanted]  # all or nothing: nothing is written on an error
    except (ManifestError, AuthoringError) as exc:
        print(f"build-notebooks: {exc}", file=sys.stderr)
        return 2
    for notebook, nb in built:
        path = manifest.path.parent / notebook
        path.write_text(notebook_text(nb), encoding="utf-8")
        print(f"wrote {path.relative_to(manifest.path.parents[2])} ({len(nb.cells)} cells)")
    return 0
