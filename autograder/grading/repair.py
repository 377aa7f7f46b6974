"""Repair a submitted notebook's grade cells from the release notebook before nbgrader sees it.

nbgrader 0.9.6 fails a whole submission on a duplicated, renamed or retyped grade
cell or on a flipped `solution` flag, leaves a deleted grade cell or a cell that
lost its `metadata.nbgrader` at "needs manual grade" forever, and its own
`add_missing_cells` crashes (KeyError) when the cell before the missing one is a
read-only cell. So the grader never relies on it: every cell the release marks
for nbgrader (grade cells, read-only cells, written-answer cells) is found in
the submission and given back the release's cell type and nbgrader metadata, and
one the submission lost is re-inserted after its release predecessor.

A submission cell is identified with a release cell, in this order, by
1. its tag `nnkit:test:<grade_id>` (tags survive editors that rewrite nbgrader metadata),
2. its `metadata.nbgrader.grade_id`,
3. for a locked cell only, its source being the release cell's source (metadata lost).
Its content is the student's for solution cells; for locked cells nbgrader restores
the instructor's source from the gradebook anyway, and so does the repair here.
A lost ungraded solution cell is not re-inserted (its stub could shadow the
student's code, and nbgrader grades nothing in it). Every change is recorded as a `Repair`.
"""
from __future__ import annotations

import copy
import os
import uuid
from dataclasses import dataclass
from typing import Any

TAG_PREFIX = "nnkit:test:"


@dataclass(frozen=True)
class Repair:
    """One change made to a submitted notebook.

    kind : "missing" (re-inserted from the release), "duplicate" (extra copy made a
        plain cell), "renamed" (unknown grade_id made a plain cell, or re-identified),
        "retyped" (cell type restored), "metadata" (nbgrader metadata restored),
        "edited" (a locked cell's source put back), "updated" (a locked cell as the
        students' older release had it, brought up to date: the instructor's change).
    """

    notebook: str
    grade_id: str
    kind: str
    detail: str

    @property
    def suspicious(self) -> bool:
        """Edits of locked cells or of their metadata are not what an honest editor does."""
        return self.kind in ("edited", "renamed") or (self.kind == "metadata" and "changed" in self.detail)


def _nbg(cell) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader")
    return meta if isinstance(meta, dict) else {}


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _is_locked(meta: dict) -> bool:
    # nbgrader's utils.is_locked: grade cells are always locked, solution cells never.
    if meta.get("solution"):
        return False
    return bool(meta.get("grade") or meta.get("locked"))


def _tag_id(cell) -> str | None:
    tags = cell.get("metadata", {}).get("tags") or []
    if not isinstance(tags, list):
        return None
    for tag in tags:
        if isinstance(tag, str) and tag.startswith(TAG_PREFIX):
            return tag[len(TAG_PREFIX):]
    return None


def release_cells(release_nb) -> dict[str, dict]:
    """The release's nbgrader cells by grade_id: {"index", "cell", "locked"}."""
    out = {}
    for i, cell in enumerate(release_nb["cells"]):
        meta = _nbg(cell)
        gid = meta.get("grade_id")
        if gid and (meta.get("grade") or meta.get("solution") or meta.get("locked") or meta.get("task")):
            out[gid] = {"index": i, "cell": cell, "locked": _is_locked(meta)}
    return out


def repair_notebook(submitted_nb, release_nb, notebook_name: str, students_release_nb=None) -> tuple[Any, list[Repair]]:
    """Return a repaired copy of `submitted_nb` (an nbformat NotebookNode or dict) and the repairs made.

    Parameters
    ----------
    submitted_nb : the student's notebook, read with nbformat (as_version=4); not modified.
    release_nb : the release notebook produced by nbgrader's generate_assignment now.
    notebook_name : used in the repair records, e.g. "01_layers.ipynb".
    students_release_nb : the release notebook students were given, if it may be older
        than `release_nb`. A locked cell that still holds that version's text is brought
        up to date as an "updated" repair (not suspicious: the instructor changed it).
    """
    nb = copy.deepcopy(submitted_nb)
    rel = release_cells(release_nb)
    given = {gid: _source(info["cell"]) for gid, info in release_cells(students_release_nb).items()} \
        if students_release_nb is not None else {}
    locked_by_source = {}
    for gid, info in rel.items():
        if info["locked"] and _source(info["cell"]).strip():
            locked_by_source.setdefault(_source(info["cell"]).strip(), gid)
            if given.get(gid, "").strip():
                locked_by_source.setdefault(given[gid].strip(), gid)
    repairs: list[Repair] = []
    cells = nb["cells"]

    # 1. identify each submitted cell with a release cell (or none).
    ident: list[str | None] = []
    for cell in cells:
        meta = _nbg(cell)
        gid = _tag_id(cell)
        if gid not in rel:
            gid = meta.get("grade_id") if meta.get("grade_id") in rel else None
        if gid is None and _source(cell).strip() and _source(cell).strip() in locked_by_source:
            gid = locked_by_source[_source(cell).strip()]
        if gid is None and meta:
            old = meta.get("grade_id")
            if old:
                repairs.append(Repair(notebook_name, str(old), "renamed",
                                      f"cell with unknown grade_id {old!r} made a plain cell"))
            cell["metadata"].pop("nbgrader", None)
        elif gid is not None and meta.get("grade_id") not in (None, gid):
            repairs.append(Repair(notebook_name, gid, "renamed",
                                  f"grade_id {meta.get('grade_id')!r} renamed back to {gid!r}"))
        ident.append(gid)

    # 2. duplicates: nbgrader fails the submission on them. A locked cell keeps its first
    #    copy (its content comes from the gradebook anyway); a solution cell keeps its last,
    #    which is the copy nbgrader's own DeduplicateIds would keep.
    positions: dict[str, list[int]] = {}
    for i, gid in enumerate(ident):
        if gid is not None:
            positions.setdefault(gid, []).append(i)
    for gid, where in positions.items():
        if len(where) < 2:
            continue
        keep = where[0] if rel[gid]["locked"] else where[-1]
        for i in where:
            if i != keep:
                cells[i]["metadata"].pop("nbgrader", None)
                tags = cells[i]["metadata"].get("tags")
                if isinstance(tags, list):
                    cells[i]["metadata"]["tags"] = [t for t in tags if t != TAG_PREFIX + gid]
                ident[i] = None
        repairs.append(Repair(notebook_name, gid, "duplicate",
                              f"{len(where)} cells carried grade_id {gid!r}; extra copies made plain cells"))

    # 3. restore type, metadata and (locked cells) source of each identified cell.
    for cell, gid in zip(cells, ident):
        if gid is None:
            continue
        ref = rel[gid]["cell"]
        if cell.get("cell_type") != ref["cell_type"]:
            repairs.append(Repair(notebook_name, gid, "retyped",
                                  f"cell type {cell.get('cell_type')!r} restored to {ref['cell_type']!r}"))
            cell["cell_type"] = ref["cell_type"]
            if ref["cell_type"] == "code":
                cell.setdefault("outputs", [])
                cell.setdefault("execution_count", None)
            else:
                cell.pop("outputs", None)
                cell.pop("execution_count", None)
        meta = _nbg(cell)
        want = ref["metadata"]["nbgrader"]
        if not meta:
            repairs.append(Repair(notebook_name, gid, "metadata", "nbgrader metadata was missing; restored"))
        elif any(meta.get(k) != want.get(k) for k in ("grade", "solution", "locked", "task", "points", "grade_id")):
            repairs.append(Repair(notebook_name, gid, "metadata", "nbgrader metadata changed; restored"))
        cell["metadata"]["nbgrader"] = copy.deepcopy(want)
        if rel[gid]["locked"] and _source(cell) != _source(ref):
            if given.get(gid) is not None and _source(cell) == given[gid]:
                repairs.append(Repair(notebook_name, gid, "updated", "locked cell from the students' release; "
                                                                      "replaced by the current version"))
            else:
                repairs.append(Repair(notebook_name, gid, "edited", "locked cell was edited; the release source restored"))
            cell["source"] = _source(ref)

    # 4. re-insert what is missing, after the submitted copy of its nearest release predecessor.
    present = {gid for gid in ident if gid is not None}
    order = sorted(rel, key=lambda g: rel[g]["index"])
    with_ids = nb.get("nbformat", 4) > 4 or nb.get("nbformat_minor", 0) >= 5
    taken = {c.get("id") for c in cells}
    for k, gid in enumerate(order):
        if gid in present:
            continue
        meta = rel[gid]["cell"]["metadata"]["nbgrader"]
        if meta.get("solution") and not meta.get("grade"):
            # An ungraded solution cell is not re-inserted: its stub could overwrite what the
            # student wrote in a cell that lost its metadata, and nbgrader grades nothing in it.
            continue
        new = copy.deepcopy(rel[gid]["cell"])
        if new["cell_type"] == "code":
            new["outputs"], new["execution_count"] = [], None
        if with_ids:
            if not new.get("id") or new.get("id") in taken:
                new["id"] = uuid.uuid4().hex[:12]
            taken.add(new["id"])
        else:
            new.pop("id", None)
        at = 0
        for prev in reversed(order[:k]):
            if prev in present:
                at = ident.index(prev) + 1
                break
        cells.insert(at, new)
        ident.insert(at, gid)
        present.add(gid)
        repairs.append(Repair(notebook_name, gid, "missing", "cell was missing; re-inserted from the release"))
    return nb, repairs


def repair_file(submitted_path, release_path, notebook_name: str | None = None,
                students_release_path=None) -> list[Repair]:
    """Repair a notebook file in place (a working copy; never the student's submission).

    Returns the repairs made; the file is rewritten only if there were any.
    """
    import nbformat

    name = notebook_name or str(submitted_path).rsplit("/", 1)[-1]
    submitted = nbformat.read(str(submitted_path), as_version=4)
    release = nbformat.read(str(release_path), as_version=4)
    older = None
    if students_release_path is not None and os.path.isfile(students_release_path):
        older = nbformat.read(str(students_release_path), as_version=4)
    fixed, repairs = repair_notebook(submitted, release, name, older)
    if repairs:
        nbformat.write(fixed, str(submitted_path))
    return repairs
