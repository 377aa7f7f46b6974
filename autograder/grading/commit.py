"""What a finished submission commits, how it is applied and recovered, and the class export.

`grade` writes every finished submission at once, so that a crash at any instant
(kill -9, a full disk, Ctrl-C) loses nothing that finished and leaves each student
either fully old or fully new. Only the coordinator writes here.

Layout in `--out` (`.nnkit/` is the grader's own):

    .nnkit/records/<sid>.json     the record: the result and the key it was graded under (the commit point)
    .nnkit/records/<sid>.applied  the commit id of the record last applied everywhere
    .nnkit/staging/<sid>-<id>/    feedback pages and executed notebooks, written before the record
    feedback/<sid>/*.html  autograded/<sid>/<assignment>/*.ipynb  results/<sid>.json
    gradebook.db (or --db)        nbgrader's gradebook: auto scores; manual grades are the TAs'
    grades.csv  grades_by_check.csv   the whole class, exported from the records and the gradebook

One commit: (1) stage the files, (2) write the record (temp + fsync + rename: the
commit point), (3) apply it: the gradebook in one transaction, then the staged
folders swapped in, the Gradescope JSON, and the `.applied` mark. A crash before
(2) leaves the old record and a stale staging folder (removed by `recover`); a
crash in (3) leaves a record that is not marked applied, and `recover` (run at the
start of every `grade` and `export`) applies it again: every step is idempotent.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from .deadline import apply_penalty

#: The grader's own folder inside --out.
STATE_DIR = ".nnkit"


class CommitError(OSError):
    """Writing the outputs failed (a full or read-only disk, the gradebook unreachable)."""


@dataclass(frozen=True)
class GradingKey:
    """What a committed grade depends on: the same key means the same grade, so a rerun skips it.

    submission : sha256 of the ingested files (names and bytes).
    release : digest of the template inputs (source notebooks, release files).
    grader : digest of the grader's own code and the settings that change grades.
    """

    submission: str
    release: str
    grader: str

    def as_dict(self) -> dict:
        return {"submission": self.submission, "release": self.release, "grader": self.grader}


def files_digest(files: dict[str, bytes] | None = None, workdir: Path | None = None, names=()) -> str:
    """sha256 over sorted (name, bytes): of `files`, or of `names` read from `workdir`."""
    h = hashlib.sha256()
    items = sorted(files.items()) if files is not None else [(n, (workdir / n).read_bytes()) for n in sorted(names)]
    for name, data in items:
        h.update(name.encode() + b"\0" + len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()


#: The grader's modules a grade depends on (the release and instructor tools are not among them).
GRADING_MODULES = ("grading/result.py", "grading/settings.py", "grading/template.py", "grading/execute.py",
                   "grading/submission.py", "grading/repair.py", "grading/ingest.py", "grading/feedback.py",
                   "nbgrader_course.py", "sandbox", "manifest.py", "trusted")


def grader_digest(extra: str = "") -> str:
    """sha256 of the grading code (GRADING_MODULES) plus `extra` (the settings that change grades)."""
    root = Path(__file__).resolve().parents[1]  # autograder/
    h = hashlib.sha256(extra.encode())
    for name in GRADING_MODULES:
        path = root / name
        for p in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            h.update(p.relative_to(root).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


# ------------------------------------------------------------------------------ small file tools


def _state(out: Path, *parts: str) -> Path:
    return Path(out, STATE_DIR, *parts)


def write_atomic(path: Path, data: bytes) -> None:
    """`outputs.write_atomic` for a path and bytes of UTF-8 text (its folder made first)."""
    from .outputs import write_atomic as write

    path.parent.mkdir(parents=True, exist_ok=True)
    write(path.parent, path.name, data.decode("utf-8"))


def _swap_in(staged: Path, target: Path) -> None:
    """Replace the folder `target` by `staged` (idempotent: nothing to do once `staged` is gone)."""
    if not staged.is_dir():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    trash = target.with_name(f".trash-{target.name}-{uuid.uuid4().hex[:8]}")
    if target.is_symlink() or target.exists():
        os.replace(target, trash)
    os.replace(staged, target)
    shutil.rmtree(trash, ignore_errors=True)


# ------------------------------------------------------------------------------ records


def load_record(out: Path, sid: str) -> dict | None:
    path = _state(out, "records", f"{sid}.json")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def committed_key(out: Path, sid: str) -> dict | None:
    """The key of the committed result of `sid` that may be skipped on a rerun (None: regrade it).

    A result whose grading did not finish (the grader's fault, not the student's) is never skipped.
    """
    rec = load_record(out, sid)
    if rec is None or "grader_error" in rec["result"].get("flags", []):
        return None
    return rec.get("key")


def all_records(out: Path) -> list[dict]:
    folder = _state(out, "records")
    records = []
    for p in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            records.append(json.loads(p.read_text(encoding="utf-8")))
        except ValueError:
            continue  # a record is written by rename: a torn one cannot exist; skip anything else
    return records


def commit(out: Path, db_url: str, assignment: str, result: dict, key: GradingKey | None,
           pages: dict[str, str], executed: dict[str, str]) -> dict:
    """Commit one finished submission (see the module docstring); returns the result as applied.

    pages : feedback page name -> HTML (already sanitised); executed : notebook stem -> JSON text.

    Raises
    ------
    CommitError : the disk or the gradebook refused a write; what was committed before stands.
    """
    from .outputs import write_feedback_pages

    sid = result["student_id"]
    commit_id = uuid.uuid4().hex
    staging = _state(out, "staging", f"{sid}-{commit_id}")
    try:
        if pages:
            write_feedback_pages(staging / "feedback", pages)  # named and checked by the grader
        for stem, text in executed.items():
            write_atomic(staging / "autograded" / f"{stem}.ipynb", text.encode("utf-8"))
        record = {"commit": commit_id, "assignment": assignment, "key": key.as_dict() if key else None,
                  "staging": staging.name, "has_feedback": bool(pages), "has_executed": bool(executed),
                  "result": result}
        write_atomic(_state(out, "records", f"{sid}.json"), json.dumps(record).encode("utf-8"))
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise CommitError(exc.errno, f"could not commit {sid}: {exc.strerror or exc}") from exc
    return apply(out, db_url, record)


def apply(out: Path, db_url: str, record: dict) -> dict:
    """Make the gradebook and the files of --out equal to `record` (idempotent)."""
    from . import outputs
    from .result import REJECTED
    from .gradebook import write_gradebook

    result = dict(record["result"])
    sid, assignment = result["student_id"], record["assignment"]
    try:
        result["score"], result["max_score"] = write_gradebook(db_url, assignment, result)
    except Exception as exc:  # sqlite "database or disk is full", a server gone: stop, lose nothing
        raise CommitError(getattr(exc, "errno", None) or 0, f"the gradebook refused {sid}'s grades: {exc}") from exc
    apply_penalty(result)
    if result["status"] == REJECTED:
        result["score"] = None  # nothing was graded: no number, so it cannot pass for a real 0
    staging = _state(out, "staging", record["staging"])
    try:
        if record.get("has_feedback"):
            _swap_in(staging / "feedback", Path(out, "feedback", sid))
        elif record["result"]["status"] == REJECTED:
            # A rejected resubmission: its earlier pages no longer describe what was handed in.
            shutil.rmtree(Path(out, "feedback", sid), ignore_errors=True)
        if record.get("has_executed"):
            _swap_in(staging / "autograded", Path(out, "autograded", sid, assignment))
        shutil.rmtree(staging, ignore_errors=True)
        outputs.write_result_json(out, result)
        write_atomic(_state(out, "records", f"{sid}.applied"), record["commit"].encode())
    except OSError as exc:
        raise CommitError(exc.errno, f"could not write {sid}'s files: {exc.strerror or exc}") from exc
    return result


def replace_feedback(out: Path, sid: str, pages: dict[str, str]) -> None:
    """Swap in new feedback pages of one committed student (the `feedback` verb), whole or not at all."""
    from .outputs import write_feedback_pages

    staging = _state(out, "staging", f"feedback-{sid}-{uuid.uuid4().hex}")
    try:
        write_feedback_pages(staging, pages)
        _swap_in(staging, Path(out, "feedback", sid))
    except OSError as exc:
        raise CommitError(exc.errno, f"could not write {sid}'s feedback: {exc.strerror or exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def recover(out: Path, db_url: str) -> int:
    """Apply every record not yet applied, and remove stale staging and trash; returns how many were applied."""
    applied = 0
    records = all_records(out)
    live = set()
    for rec in records:
        sid = rec["result"]["student_id"]
        live.add(rec["staging"])
        mark = _state(out, "records", f"{sid}.applied")
        try:
            done = mark.read_text() == rec["commit"]
        except OSError:
            done = False
        if not done:
            apply(out, db_url, rec)
            applied += 1
    staging_root = _state(out, "staging")
    for d in staging_root.iterdir() if staging_root.is_dir() else []:
        if d.name not in live:
            shutil.rmtree(d, ignore_errors=True)
    for parent in (Path(out, "feedback"), Path(out, "autograded")):
        for d in parent.glob(".trash-*") if parent.is_dir() else []:
            shutil.rmtree(d, ignore_errors=True)
    return applied


# ------------------------------------------------------------------------------ export


def class_results(out: Path, db_url: str, assignment: str) -> list[dict]:
    """Every committed result of `assignment`, with the scores that count now (manual grades included)."""
    from .result import REJECTED
    from .gradebook import final_scores

    finals = final_scores(db_url, assignment)
    results = []
    for rec in all_records(out):
        if rec.get("assignment") != assignment:
            continue
        r = dict(rec["result"])
        got = finals.get(r["student_id"])
        if got is not None:
            r["score"], r["max_score"], by_cell = got
            r["cells"] = [_with_final(c, by_cell.get((c["notebook"], c["grade_id"]))) for c in r.get("cells", [])]
        apply_penalty(r)
        if r["status"] == REJECTED:
            r["score"] = None
        results.append(r)
    return sorted(results, key=lambda r: r["student_id"])


def _with_final(cell: dict, final: dict | None) -> dict:
    """A cell row with the score that counts now; a score a TA gave by hand says so."""
    if final is None:
        return cell
    cell = {**cell, **final}
    if final.get("manual_score") is not None:
        cell["status"] = "graded_by_hand"
    return cell


def export(out: Path, db_url: str, assignment: str) -> list[dict]:
    """grades.csv, grades_by_check.csv and results/*.json of the whole class, from the records and the gradebook."""
    from . import outputs

    recover(out, db_url)
    results = class_results(out, db_url, assignment)
    try:
        outputs.write_all(out, assignment, results)
    except OSError as exc:
        raise CommitError(exc.errno, f"could not write the class export: {exc.strerror or exc}") from exc
    return results
