"""Gate `notebook`: every source notebook checked as nbgrader will read it, before nbgrader runs
(metadata, points, marker typos, unclosed or misplaced regions), each error naming the
notebook, the line of the `.ipynb`, the cell (index and grade_id) and the fix.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..manifest import Manifest
from ..markers import CANONICAL_MARKERS, NBGRADER_DELIMITERS
from .gates import SolutionFragments, SourceLines, line_of, notebook_source_lines
from .shared import ReleaseError
from .strip import marker_typo


@dataclass(frozen=True)
class GradeCell:
    """A graded cell of a source notebook, as the manifest's [points] must list it."""

    notebook: str  # shown path, e.g. source/<assignment>/01_layers.ipynb
    index: int  # 0-based cell index
    grade_id: str
    points: float
    cell_type: str
    line: int  # file line of its first source line




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
