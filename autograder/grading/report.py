"""The class report and the Canvas gradebook CSV, from the results `grade` returns.

`write_class_report(path, results)` writes one self-contained HTML page for the
instructor (no script, no remote resource; figures are inline `data:` PNGs made
with matplotlib's object API, so no pyplot state or GUI backend is touched):

- the score distribution (graded and partial submissions; rejected ones have no
  score and are only counted);
- the pass rate of every check (grade id): the share of the submissions where
  the cell was scored that got full marks with the score that counts (a manual
  score when a TA gave one, else the auto score); written answers nobody has
  marked yet are shown as "not marked yet";
- the most common failure of every check: cells below full marks are grouped by
  their message with digits and whitespace folded (seeded inputs make every
  student's "got 0.31" differ) and the most frequent variant is shown; an
  autograded cell without a message counts under its status (`failed`,
  `trusted_error`, `missing`, ...), a written answer as "marked below full marks".

Every message is student-influenced text: in the page it is HTML-escaped with
controls written as escapes, in a figure it is drawn with mathtext off.

`write_canvas_csv(path, results, assignment)` writes a CSV that Canvas's
gradebook import (Grades > Import) accepts. Its header is what Canvas's
importer (`app/models/gradebook_importer.rb`) requires: `Student`, `ID`, then
`SIS User ID` *and* `SIS Login ID` (Canvas rejects `SIS User ID` without
`SIS Login ID` after it as an invalid header row), `Section`, then one
assignment column; a second row `    Points Possible` gives the assignment's
points (Canvas reads it and sets the assignment's points possible to it). Each
student row carries the kit's student id in the `Student` column (shown in
Canvas's import preview, and Canvas's last resort: a name match) and in the
identifier column the course's submissions are named by (`id_column`, default
`SIS User ID`; `ID` for Canvas's numeric user ids, `SIS Login ID` for logins);
the other identifier columns stay empty. The assignment column is named by
`column` (default: the assignment name; `Title (1234)` with the Canvas
assignment id matches that assignment exactly, a bare title matches by title
or makes a new assignment). A rejected submission's cell is left empty (Canvas
then leaves that grade unchanged) rather than a 0 no one graded; a partial one
carries the score it got. Scores are written unrounded (the shortest decimal
that reads back as the same float, never in exponent form), and every cell goes
through `outputs.csv_cell`.
"""
from __future__ import annotations

import base64
import csv
import html
import io
import math
import os
import re
import statistics
import tempfile
import warnings
from collections import Counter
from decimal import Decimal
from pathlib import Path

from .outputs import csv_cell, escape_controls, grade_ids, output_id

#: The page's Content-Security-Policy: nothing but inline styles and data: images.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
CANVAS_ID_COLUMNS = ("ID", "SIS User ID", "SIS Login ID")
MESSAGE_CHARS = 500
LABEL_CHARS = 70


# ------------------------------------------------------------------------------- numbers


def counted(cell: dict):
    """The score that counts for a cell (manual beats auto), or None when nobody scored it."""
    if "final_score" in cell:
        return cell["final_score"]
    return cell.get("score")


def is_full(score, max_score) -> bool:
    return score is not None and float(score) >= float(max_score) - 1e-9


def number(x) -> str:
    """`x` unrounded: the shortest decimal that reads back as the same float, positional
    (never `1e-05`), without a trailing `.0`; empty for None, NaN and infinities."""
    if x is None:
        return ""
    x = float(x)
    if not math.isfinite(x):
        return ""
    text = format(Decimal(repr(x)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


# ------------------------------------------------------------------------------- statistics


def _message_key(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"\d+", "#", text)).strip().lower()


def _first_line(text: str) -> str:
    lines = [ln.strip() for ln in str(text).strip().splitlines() if ln.strip()]
    return lines[0] if lines else ""


def check_stats(results: list[dict]) -> list[dict]:
    """One row per grade id, in notebook order:
    `grade_id, notebook, kind, max_score, cells, scored, unmarked, passed, pass_rate, mean_fraction,
    failures, distinct_failures, top_failure, top_failure_count, top_failure_variants`
    (`top_failure` is the most frequent text of the most frequent kind; `top_failure_variants`
    how many texts that kind has, i.e. numbers that differ)."""
    rows = []
    scored_results = [r for r in results if r.get("status") != "rejected"]
    for gid in grade_ids(scored_results):
        cells = [c for r in scored_results for c in r.get("cells", []) if c["grade_id"] == gid]
        if not cells:
            continue
        scored = [c for c in cells if counted(c) is not None]
        passed = [c for c in scored if is_full(counted(c), c["max_score"])]
        failed = [c for c in scored if not is_full(counted(c), c["max_score"])]
        groups: dict[str, Counter] = {}
        for c in failed:
            text = _first_line(c.get("message") or "") or (
                "marked below full marks" if c.get("kind") == "manual" else (c.get("status") or "below full marks"))
            groups.setdefault(_message_key(text), Counter())[text] += 1
        top, top_count, top_variants = "", 0, 0
        if groups:
            key = max(groups, key=lambda k: (sum(groups[k].values()), k))
            top, top_count = groups[key].most_common(1)[0][0], sum(groups[key].values())
            top_variants = len(groups[key])
        fractions = [float(counted(c)) / float(c["max_score"]) for c in scored if float(c["max_score"]) > 0]
        rows.append({
            "grade_id": gid, "notebook": cells[0]["notebook"], "kind": cells[0].get("kind", "auto"),
            "max_score": float(cells[0]["max_score"]), "cells": len(cells), "scored": len(scored),
            "unmarked": len(cells) - len(scored), "passed": len(passed),
            "pass_rate": len(passed) / len(scored) if scored else None,
            "mean_fraction": statistics.fmean(fractions) if fractions else None,
            "failures": len(failed), "distinct_failures": len(groups),
            "top_failure": top, "top_failure_count": top_count, "top_failure_variants": top_variants,
        })
    return rows


def class_summary(results: list[dict]) -> dict:
    """Counts by status, and the statistics of the scores that exist."""
    by_status = Counter(r.get("status", "?") for r in results)
    scores = [float(r["score"]) for r in results if r.get("status") != "rejected" and r.get("score") is not None]
    maxes = Counter(float(r["max_score"]) for r in results if r.get("max_score"))
    return {
        "submissions": len(results), "by_status": dict(sorted(by_status.items())), "scores": scores,
        "max_score": maxes.most_common(1)[0][0] if maxes else None,
        "mean": statistics.fmean(scores) if scores else None,
        "median": statistics.median(scores) if scores else None,
        "flags": dict(Counter(f for r in results for f in r.get("flags", [])).most_common()),
    }


# ------------------------------------------------------------------------------- figures


def _label(text: str, limit: int = LABEL_CHARS) -> str:
    text = escape_controls(str(text))
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _png(fig) -> str:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. a glyph missing from the font of a student's message
        fig.savefig(buf, format="png", dpi=100)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def score_figure(summary: dict) -> str | None:
    scores, top = summary["scores"], summary["max_score"]
    if not scores:
        return None
    fig = _figure(7, 3.2)
    ax = fig.add_subplot()
    hi = max([top or 0.0] + scores) or 1.0
    width = next((w for w in (0.5, 1, 2, 5, 10, 20, 50, 100) if hi / w <= 20), hi / 20)
    edges = [k * width for k in range(int(math.ceil(hi / width - 1e-9)) + 1)]
    if len(edges) < 2:
        edges = [0.0, width]
    ax.hist(scores, bins=edges, color="#4c72b0", edgecolor="white")
    for value, style, name in ((summary["mean"], "--", "mean"), (summary["median"], ":", "median")):
        ax.axvline(value, color="#c44e52", linestyle=style, label=f"{name} {value:.3g}")
    ax.set_xlabel(f"score (out of {top:g})" if top else "score")
    ax.set_ylabel("submissions")
    ax.set_title(f"Score distribution ({len(scores)} scored submissions)")
    ax.legend(loc="upper left")
    return _png(fig)


def pass_rate_figure(stats: list[dict]) -> str | None:
    if not stats:
        return None
    fig = _figure(8, 0.9 + 0.32 * len(stats))
    ax = fig.add_subplot()
    ys = list(range(len(stats)))[::-1]
    rates = [0.0 if s["pass_rate"] is None else 100 * s["pass_rate"] for s in stats]
    colors = ["#bbbbbb" if s["pass_rate"] is None else ("#55a868" if s["pass_rate"] >= 0.8 else
              "#dd8452" if s["pass_rate"] >= 0.5 else "#c44e52") for s in stats]
    ax.barh(ys, rates, color=colors)
    for y, s, rate in zip(ys, stats, rates):
        text = "not marked yet" if s["pass_rate"] is None else f"{rate:.0f}% of {s['scored']}"
        ax.text(min(rate, 100) + 1, y, text, va="center", fontsize=8, parse_math=False)
    ax.set_yticks(ys, labels=[_label(f"{s['grade_id']} ({s['notebook']})", 45) for s in stats],
                  fontsize=8, parse_math=False)
    ax.set_xlim(0, 118)
    ax.set_xlabel("submissions with full marks (%)")
    ax.set_title("Pass rate of every check")
    return _png(fig)


def failure_figure(stats: list[dict]) -> str | None:
    failing = [s for s in stats if s["failures"]]
    if not failing:
        return None
    fig = _figure(10, 0.9 + 0.42 * len(failing))
    ax = fig.add_subplot()
    ys = list(range(len(failing)))[::-1]
    shares = [100 * s["top_failure_count"] / s["scored"] for s in failing]
    ax.barh(ys, shares, color="#c44e52")
    for y, s, share in zip(ys, failing, shares):
        vary = " (numbers vary)" if s["top_failure_variants"] > 1 else ""
        ax.text(1, y, _label(f"{s['top_failure_count']}x  {s['top_failure']}", LABEL_CHARS - len(vary)) + vary,
                va="center", fontsize=8,
                color="black", parse_math=False,
                bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none", "pad": 1})
    ax.set_yticks(ys, labels=[_label(s["grade_id"], 30) for s in failing], fontsize=8, parse_math=False)
    ax.set_xlim(0, 100)
    ax.set_xlabel("scored submissions failing with this message (%)")
    ax.set_title("Most common failure of every check")
    return _png(fig)


# ------------------------------------------------------------------------------- the page


def _e(text) -> str:
    return html.escape(escape_controls("" if text is None else str(text)), quote=True)


def _pct(x) -> str:
    return "" if x is None else f"{100 * x:.1f}%"


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
td.msg { font-family: ui-monospace, monospace; white-space: pre-wrap; word-break: break-word; max-width: 40em; }
img { max-width: 100%; display: block; margin: 1em 0; }
.note { color: #666; font-size: 0.9em; }
"""


def render_class_report(results: list[dict], title: str = "Class report") -> str:
    """The report's HTML (see the module docstring)."""
    summary, stats = class_summary(results), check_stats(results)
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
    ]
    status = ", ".join(f"{n} {_e(s)}" for s, n in summary["by_status"].items()) or "none"
    parts.append(f"<p>{summary['submissions']} submissions: {status}.")
    if summary["scores"]:
        parts.append(f" Mean score {summary['mean']:.4g}, median {summary['median']:.4g}"
                     + (f" out of {summary['max_score']:g}" if summary["max_score"] else "") + ".")
    parts.append("</p>")
    if summary["flags"]:
        parts.append("<p>Flags: " + ", ".join(f"{_e(f)} ({n})" for f, n in summary["flags"].items()) + ".</p>")
    for heading, image, note in (
        ("Score distribution", score_figure(summary), "Rejected submissions have no score and are not shown."),
        ("Pass rate of every check", pass_rate_figure(stats),
         "Full marks with the score that counts (a TA's manual score, else the auto score); grey: written "
         "answers nobody has marked yet."),
        ("Most common failure of every check", failure_figure(stats),
         "Messages are grouped with digits folded; the full text is in the table below."),
    ):
        parts.append(f"<h2>{heading}</h2>")
        parts.append(f'<img alt="{_e(heading)}" src="{image}">' if image else "<p>Nothing to show yet.</p>")
        parts.append(f'<p class="note">{note}</p>')
    parts.append("<h2>Every check</h2><table><tr><th>check</th><th>notebook</th><th>kind</th><th>points</th>"
                 "<th>scored</th><th>not marked</th><th>full marks</th><th>mean</th><th>failures</th>"
                 "<th>most common failure</th></tr>")
    for s in stats:
        message = s["top_failure"]
        if len(message) > MESSAGE_CHARS:
            message = message[:MESSAGE_CHARS] + "\u2026"
        more = (" (numbers vary)" if s["top_failure_variants"] > 1 else "") + (
            f"; {s['distinct_failures'] - 1} other kind" + ("s" if s["distinct_failures"] > 2 else "")
            if s["distinct_failures"] > 1 else "")
        parts.append(
            f"<tr><td>{_e(s['grade_id'])}</td><td>{_e(s['notebook'])}</td><td>{_e(s['kind'])}</td>"
            f'<td class="n">{s["max_score"]:g}</td><td class="n">{s["scored"]}</td><td class="n">{s["unmarked"]}</td>'
            f'<td class="n">{_pct(s["pass_rate"])}</td><td class="n">{_pct(s["mean_fraction"])}</td>'
            f'<td class="n">{s["failures"]}</td>'
            f'<td class="msg">{(str(s["top_failure_count"]) + "x " + _e(message) + _e(more)) if message else ""}</td></tr>')
    parts.append("</table></body></html>")
    return "\n".join(parts)


def _write_text(path: Path, text: str) -> None:
    """Write `text` to `path` whole or not at all (temp file + rename; a link at `path` is replaced)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_class_report(path: Path, results: list[dict], *, title: str = "Class report") -> None:
    """One self-contained HTML page for the instructor (see the module docstring)."""
    _write_text(Path(path), render_class_report(results, title))


# ------------------------------------------------------------------------------- Canvas


def write_canvas_csv(path: Path, results: list[dict], assignment: str, *, column: str | None = None,
                     id_column: str = "SIS User ID", section: str = "", points_possible: float | None = None) -> None:
    """A gradebook CSV for Canvas's Grades > Import (see the module docstring for the format).

    column : the assignment column's header (default `assignment`; `Title (1234)` names a
        Canvas assignment by id).
    id_column : which Canvas identifier the student ids are: `SIS User ID` (default),
        `SIS Login ID` or `ID` (Canvas's numeric user id).
    section : written in every row's Section (Canvas ignores it on import).
    points_possible : the `Points Possible` row (default: the results' max score).
    """
    if id_column not in CANVAS_ID_COLUMNS:
        raise ValueError(f"id_column must be one of {', '.join(CANVAS_ID_COLUMNS)}, not {id_column!r}")
    if points_possible is None:
        points_possible = class_summary(results)["max_score"]
    header = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", column or assignment]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([csv_cell(v) for v in header])
    w.writerow([csv_cell(v) for v in ["    Points Possible", "", "", "", "", number(points_possible)]])
    where = header.index(id_column)
    for r in sorted(results, key=lambda r: output_id(r["student_id"])):
        sid = output_id(r["student_id"])
        row = [sid, "", "", "", section, "" if r.get("status") == "rejected" else number(r.get("score"))]
        row[where] = sid
        w.writerow([csv_cell(v) for v in row])
    _write_text(Path(path), buf.getvalue())
