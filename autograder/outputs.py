"""What `grade` writes into `--out`: grade tables, Gradescope results, cleaned feedback.

- `grades.csv`: `student_id,status,score,max_score,flags` (flags joined with `;`).
- `grades_by_check.csv`: `student_id,status` and one column per grade_id (empty when
  the cell was not graded, e.g. a rejected submission or an unmarked written answer).
- `results/<student_id>.json`: Gradescope's autograder results format (`score`,
  `output`, `tests` with `name, score, max_score, status, output, visibility`), plus
  `extra_data` with the nnkit status, flags, reasons and repairs.
- `feedback/<student_id>/*.html`: nbgrader's feedback HTML only (never a `.py`,
  model or any other file nbgrader copies alongside, which could be a reference
  file), with every hidden-test line and any output holding one removed.
"""
from __future__ import annotations

import csv
import html as _html
import json
import re
from pathlib import Path
from typing import Iterable

#: Hidden lines shorter than this are too generic to redact on their own (e.g. `pass`).
MIN_HIDDEN_LINE = 8

_PRE = re.compile(r"(<pre[^>]*>)(.*?)(</pre>)", re.DOTALL | re.IGNORECASE)
_TAG = re.compile(r"<[^>]+>")


def _text(fragment: str) -> str:
    return _html.unescape(_TAG.sub("", fragment))


def sanitize_feedback_html(text: str, hidden_lines: Iterable[str]) -> tuple[str, int]:
    """Remove hidden-test code from a feedback page; returns (html, number of redactions).

    nbgrader's ClearHiddenTests removes the hidden region from the cell source and
    LimitOutput truncates tracebacks, but an output can still show a hidden line
    (a student who printed the cell history). Every `<pre>` block whose visible
    text holds a hidden line is replaced by a notice.
    """
    lines = [l for l in hidden_lines if len(l) >= MIN_HIDDEN_LINE]
    count = 0
    for line in lines:
        for variant in {_html.escape(line, quote=False), _html.escape(line, quote=True)}:
            if variant in text:
                count += text.count(variant)
                text = text.replace(variant, "[hidden test]")

    def scrub(m: re.Match) -> str:
        nonlocal count
        visible = _text(m.group(2))
        if any(line in visible for line in lines):
            count += 1
            return m.group(1) + "[withheld by the grader: this output contained hidden test code]" + m.group(3)
        return m.group(0)

    text = _PRE.sub(scrub, text)
    return text, count


def write_feedback(src: Path, dest: Path, hidden_lines: Iterable[str]) -> list[str]:
    """Copy the feedback HTML pages of one student from `src` to `dest`, cleaned. Returns the file names."""
    hidden_lines = list(hidden_lines)
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for page in sorted(Path(src).rglob("*.html")):
        text, _ = sanitize_feedback_html(page.read_text(encoding="utf-8", errors="replace"), hidden_lines)
        visible = _text(text)
        if any(l in visible for l in hidden_lines if len(l) >= MIN_HIDDEN_LINE):
            # Belt and braces: a page that still shows a hidden line is not published.
            text = "<html><body><p>Feedback withheld: it could not be cleaned of hidden tests. Ask your instructor.</p></body></html>"
        (dest / page.name).write_text(text, encoding="utf-8")
        written.append(page.name)
    return written


def grade_ids(results: list[dict]) -> list[str]:
    """Every grade_id seen, in notebook order (first appearance)."""
    seen: list[str] = []
    for r in results:
        for c in r.get("cells", []):
            if c["grade_id"] not in seen:
                seen.append(c["grade_id"])
    return seen


def _fmt(x) -> str:
    return "" if x is None else f"{float(x):g}"


def write_grades_csv(path: Path, results: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["student_id", "status", "score", "max_score", "flags"])
        for r in results:
            w.writerow([r["student_id"], r["status"], _fmt(r.get("score")), _fmt(r.get("max_score")), ";".join(r.get("flags", []))])


def write_by_check_csv(path: Path, results: list[dict]) -> None:
    ids = grade_ids(results)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["student_id", "status", *ids])
        for r in results:
            by = {c["grade_id"]: c.get("final_score", c.get("score")) for c in r.get("cells", [])}
            w.writerow([r["student_id"], r["status"], *(_fmt(by.get(g)) for g in ids)])


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
    summary = [f"status: {r['status']}"] + list(r.get("reasons", []))
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
    """grades.csv, grades_by_check.csv and results/<student_id>.json in `out`."""
    out = Path(out)
    write_grades_csv(out / "grades.csv", results)
    write_by_check_csv(out / "grades_by_check.csv", results)
    (out / "results").mkdir(exist_ok=True)
    for r in results:
        (out / "results" / f"{r['student_id']}.json").write_text(json.dumps(gradescope_results(r), indent=1) + "\n",
                                                                  encoding="utf-8")


def format_table(results: list[dict]) -> str:
    """The grade table printed at the end of a run."""
    rows = [("student", "status", "score", "flags")]
    for r in results:
        score = "-" if r.get("score") is None else f"{r['score']:g}/{r['max_score']:g}"
        rows.append((r["student_id"], r["status"], score, ",".join(r.get("flags", []))))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for r in results:
        if r["status"] != "graded" and r.get("reasons"):
            lines.append(f"{r['student_id']}: " + "; ".join(r["reasons"])[:400])
    return "\n".join(lines)
