"""What `grade` writes into `--out`: grade tables, Gradescope results, feedback pages.

- `grades.csv`: `student_id,status,score,max_score,late_penalty,flags` (flags joined with `;`;
  `score` is the gradebook's score less the late penalty, `autograder.grading.deadline`).
- `grades_by_check.csv`: `student_id,status` and one column per grade_id (empty when
  the cell was not graded, e.g. a rejected submission or an unmarked written answer).
- `results/<student_id>.json`: Gradescope's autograder results format (`score`,
  `output`, `tests` with `name, score, max_score, status, output, visibility`), plus
  `extra_data` with the nnkit status, flags, reasons and repairs.
- `feedback/<student_id>/<notebook>.html`: one page per notebook, rendered and
  sanitised by `autograder.grading.feedback` and named by the grader
  (:func:`write_feedback_pages`).

No student-chosen text is trusted here either. Every CSV cell is neutralised
(:func:`csv_cell`): a cell that a spreadsheet would run as a formula (starting
with `=`, `+`, `-`, `@`, a tab or a carriage return, numbers excepted) gets a
leading `'`, and control and bidirectional characters are written as escapes, so
no value can forge a row or reorder what a reader sees. A student id that is not
valid (`ingest.STUDENT_ID`) never names a file or fills a cell: its surrogate
(`ingest.surrogate_id`) does.
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
import stat
from pathlib import Path

from .ingest import STUDENT_ID, surrogate_id

def grade_ids(results: list[dict]) -> list[str]:
    """Every grade_id seen, in notebook order (first appearance)."""
    seen: list[str] = []
    for r in results:
        for c in r.get("cells", []):
            if c["grade_id"] not in seen:
                seen.append(c["grade_id"])
    return seen


# ------------------------------------------------------------------------------- safe values

#: Characters a spreadsheet reads as the start of a formula (OWASP's CSV injection list).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def escape_controls(text: str) -> str:
    """`text` with control (Cc), format (Cf: bidi overrides, zero-width) and separator (Zl, Zp)
    characters written as `\\xNN` / `\\uNNNN`, so that it cannot start a line, move the
    cursor or reorder what a terminal or spreadsheet shows."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch == " " else ascii(ch)[1:-1] for ch in text)


def csv_cell(value) -> str:
    """One CSV field, safe to open in a spreadsheet: controls escaped, formulas neutralised."""
    text = escape_controls("" if value is None else str(value))
    if text.startswith(FORMULA_START) and not _NUMBER.match(text):
        return "'" + text
    return text


def output_id(student_id: str) -> str:
    """The id that names a result in every output: `student_id` when valid, else its surrogate."""
    return student_id if isinstance(student_id, str) and STUDENT_ID.match(student_id) else surrogate_id(str(student_id))


def _fmt(x) -> str:
    return "" if x is None else f"{float(x):g}"


def _writerow(w, values) -> None:
    w.writerow([csv_cell(v) for v in values])


def write_grades_csv(path: Path, results: list[dict]) -> None:
    """`grades.csv`: one row per result, every cell neutralised (written whole or not at all)."""
    f = io.StringIO(newline="")
    w = csv.writer(f)
    _writerow(w, ["student_id", "status", "score", "max_score", "late_penalty", "flags"])
    for r in results:
        _writerow(w, [output_id(r["student_id"]), r["status"], _fmt(r.get("score")), _fmt(r.get("max_score")),
                      _fmt(r.get("late_penalty") or 0.0), ";".join(r.get("flags", []))])
    write_atomic(Path(path).parent, Path(path).name, f.getvalue())


def write_by_check_csv(path: Path, results: list[dict]) -> None:
    """`grades_by_check.csv`: one row per result, one column per grade_id, every cell neutralised."""
    ids = grade_ids(results)
    f = io.StringIO(newline="")
    w = csv.writer(f)
    _writerow(w, ["student_id", "status", *ids])
    for r in results:
        by = {c["grade_id"]: c.get("final_score", c.get("score")) for c in r.get("cells", [])}
        _writerow(w, [output_id(r["student_id"]), r["status"], *(_fmt(by.get(g)) for g in ids)])
    write_atomic(Path(path).parent, Path(path).name, f.getvalue())


def gradescope_results(r: dict) -> dict:
    """One result in Gradescope's results.json format."""
    tests = []
    for c in r.get("cells", []):
        score = c.get("final_score", c.get("score"))
        passed = score is not None and score >= c["max_score"] - 1e-9
        tests.append({
            "name": f"{c['notebook']}: {c['grade_id']}",
            "score": 0.0 if score is None else float(score),
            "max_score": float(c["max_score"]),
            "status": "passed" if passed else "failed",
            "output": (c.get("status", "") + (": " + c["message"] if c.get("message") else "")).strip(),
            "visibility": "visible",
        })
    summary = [f"status: {r['status']}"] + (
        [f"late penalty: -{r['late_penalty']:g} points"] if r.get("late_penalty") else []) + list(r.get("reasons", []))
    return {
        "score": float(r.get("score") or 0.0),
        "output": "\n".join(summary),
        "tests": tests,
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "extra_data": {"status": r["status"], "flags": r.get("flags", []), "reasons": r.get("reasons", []),
                       "seconds": r.get("seconds"), "timings": r.get("timings"),
                       "repairs": r.get("repairs", [])},
    }


def write_all(out: Path, assignment: str, results: list[dict]) -> None:
    """grades.csv, grades_by_check.csv and results/<student_id>.json in `out`.

    A result's JSON is named by :func:`output_id` only, so an invalid id can never
    make a path (no `/`, no `..`, no 251-character name).
    """
    out = Path(out)
    write_grades_csv(out / "grades.csv", results)
    write_by_check_csv(out / "grades_by_check.csv", results)
    for r in results:
        write_result_json(out, r)


def write_result_json(out: Path, r: dict) -> None:
    """`results/<id>.json` of one result (Gradescope's format), written whole or not at all."""
    name = output_id(r["student_id"])
    assert STUDENT_ID.match(name)  # output_id guarantees it; a path is never built from anything else
    write_atomic(Path(out) / "results", f"{name}.json", json.dumps(gradescope_results(r), indent=1) + "\n")


def format_table(results: list[dict]) -> str:
    """The grade table printed at the end of a run (controls escaped: it goes to a terminal)."""
    rows = [("student", "status", "score", "flags")]
    for r in results:
        score = "-" if r.get("score") is None else f"{r['score']:g}/{r['max_score']:g}"
        rows.append((output_id(r["student_id"]), escape_controls(str(r["status"])), score,
                     escape_controls(",".join(r.get("flags", [])))))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for r in results:
        if r["status"] != "graded" and r.get("reasons"):
            lines.append(f"{output_id(r['student_id'])}: " + escape_controls("; ".join(r["reasons"]))[:400])
    return "\n".join(lines)


# ------------------------------------------------------------------------------- feedback pages

#: A feedback file name: a notebook stem from the manifest, `.html`.
_PAGE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,100}\.html\Z")


def _open_dir_nofollow(path: Path) -> int:
    """An fd of the real folder `path` (created if missing); ValueError if it is a symlink or not a folder."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        path.mkdir(parents=True)
        st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise ValueError(f"{path} is a symlink or not a folder; feedback is never written through one")
    # O_NOFOLLOW: the folder cannot be swapped for a link between the check and the open.
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)


def write_atomic(folder: Path, name: str, text: str, dir_fd: int | None = None) -> None:
    """Write `folder/name` as a whole or not at all: a fresh temp file, fsync, a rename.

    A link already at `name` is replaced, never followed; a crash leaves the old file.
    """
    own = dir_fd is None
    fd_dir = _open_dir_nofollow(folder) if own else dir_fd
    tmp = f".{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=fd_dir)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, name, src_dir_fd=fd_dir, dst_dir_fd=fd_dir)
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=fd_dir)
            except OSError:
                pass
            raise
    finally:
        if own:
            os.close(fd_dir)


def write_feedback_pages(dest_dir: Path, pages: dict[str, str]) -> list[str]:
    """Write one student's feedback pages into `dest_dir`; returns the file names written.

    Parameters
    ----------
    dest_dir : `feedback/<student_id>`; created if missing; refused (ValueError) when
        it is a symlink or not a folder.
    pages : {file name: page}, names chosen by the grader (`<notebook stem>.html`, the
        `.html` added when missing), pages from `feedback.render_notebook` or
        `feedback.notice_page`; a page that does not start with the grader's own head
        (its Content-Security-Policy first) is refused.
    """
    from .feedback import is_grader_page

    named = {}
    for name, page in pages.items():
        name = name if name.endswith(".html") else name + ".html"
        if not _PAGE_NAME.match(name):
            raise ValueError(f"feedback page name {ascii(name)} is not a notebook stem from the manifest")
        if not is_grader_page(page):
            raise ValueError(f"feedback page {name} was not made by autograder.grading.feedback; not written")
        named[name] = page
    dest_dir = Path(dest_dir)
    fd = _open_dir_nofollow(dest_dir)
    try:
        for name, page in named.items():
            write_atomic(dest_dir, name, page, dir_fd=fd)
    finally:
        os.close(fd)
    return list(named)
