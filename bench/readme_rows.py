"""The rows a benchmark contributes to the README's speed table.

A benchmark prints each with :func:`row`; ``bench/run_all.py`` (``make bench``) collects them,
in the order the scripts ran, and writes them into README.md between :data:`BEGIN` and
:data:`END`, so the table is always the output of one run, never typed by hand.
"""
from __future__ import annotations

import datetime
import os
import platform

PREFIX = "README-ROW\t"
BEGIN = "<!-- speed table: written by `make bench` (bench/run_all.py); do not edit by hand -->"
END = "<!-- end of the speed table -->"


def row(workload: str, measured: str, ratio: str) -> None:
    """Print one row of the README's speed table (`ratio`: the ratio and the bound it is against)."""
    cells = [" ".join(str(c).replace("|", "/").split()) for c in (workload, measured, ratio)]
    print(PREFIX + "\t".join(cells), flush=True)


def rows_in(output: str) -> list[list[str]]:
    """The rows printed in a benchmark's `output`."""
    return [line[len(PREFIX):].split("\t") for line in output.splitlines() if line.startswith(PREFIX)]


def table(rows: list[list[str]], argv: list[str]) -> str:
    """The Markdown table, with a line that says when, where and how it was measured."""
    when = datetime.date.today().isoformat()
    how = " ".join(["make bench", *argv]).strip()
    lines = [BEGIN,
             f"Measured by `{how}` on {when}: Python {platform.python_version()}, {os.cpu_count()} cores, "
             f"one BLAS thread, load average {os.getloadavg()[0]:.1f} at the end; each script's header "
             "defines its bound.",
             "",
             "| workload | measured | ratio |",
             "| --- | --- | --- |"]
    lines += [f"| {w} | {m} | {r} |" for w, m, r in rows]
    return "\n".join(lines + [END])


def replace_table(readme: str, new_table: str) -> str:
    """`readme` with the text between BEGIN and END (inclusive) replaced by `new_table`."""
    start, stop = readme.find(BEGIN), readme.find(END)
    if start < 0 or stop < start:
        raise ValueError(f"README.md has no speed table between {BEGIN!r} and {END!r}")
    return readme[:start] + new_table + readme[stop + len(END):]
