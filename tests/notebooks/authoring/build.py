"""Build the fcnets source notebooks from their plain-text cell files.

The committed notebooks in ``source/fcnets/`` are the source of truth; this
script is how they were written and is the easiest way to change them:
edit ``<notebook>.cells`` here and run

    .venv/bin/python tests/notebooks/authoring/build.py

Every notebook is written clean (no outputs, no execution counts), as
nbformat 4.5 with stable cell ids (the ids below).

Cell file format: a line ``# %% <kind> <id> [points=<p>]`` starts a cell; the
lines up to the next header are its source. Kinds:

- ``md``        instructions, a locked read-only markdown cell
- ``code``      a free code cell (no nbgrader metadata; students may edit it)
- ``locked``    provided code, a locked read-only code cell
- ``solution``  a code cell students complete (nbgrader solution cell)
- ``test``      an autograded test cell (locked, points, tag ``nnkit:test:<id>``)
- ``manual``    a manually graded written answer (markdown, points)

The id is the cell id and the nbgrader ``grade_id``. A line ``{{SETUP}}`` is
replaced by ``setup.py`` (the locked setup cell shared by all notebooks). Every
``test`` cell starts with ``GUARD``: a check run before the setup cell says so,
instead of failing with a bare NameError.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
OUT = REPO / "source" / "fcnets"
NOTEBOOKS = ["01_layers", "02_two_layer_net", "03_features", "04_fully_connected_nets"]
GUARD = ('assert "check_close" in globals(), '
         '"run the first two code cells of this notebook (your settings, then the setup) before the checks"')
HEADER = re.compile(r"^# %% (md|code|locked|solution|test|manual) ([A-Za-z0-9_-]+)(?: points=([0-9.]+))?\s*$")


def _nbgrader(grade_id, *, grade=False, solution=False, locked=False, points=None):
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked,
            "schema_version": 3, "solution": solution, "task": False}
    if points is not None:
        meta["points"] = int(points) if float(points).is_integer() else float(points)
    return dict(sorted(meta.items()))


def parse_cells(text: str, setup: str) -> list[nbformat.NotebookNode]:
    """The cells of one ``.cells`` file, with metadata, in order."""
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


def build(name: str) -> nbformat.NotebookNode:
    setup = (HERE / "setup.py").read_text(encoding="utf-8")
    text = (HERE / f"{name}.cells").read_text(encoding="utf-8")
    nb = nbformat.v4.new_notebook()
    nb.nbformat, nb.nbformat_minor = 4, 5
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    nb.cells = parse_cells(text, setup)
    nbformat.validate(nb)
    return nb


def main(argv: list[str]) -> int:
    names = argv or NOTEBOOKS
    for name in names:
        nb = build(name)
        path = OUT / f"{name}.ipynb"
        path.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
        print(f"wrote {path.relative_to(REPO)} ({len(nb.cells)} cells)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
