"""The marker strings of solution, hidden-test and mark-scheme regions, in one place.

- ``CANONICAL_MARKERS``: the kit's dialect (nbgrader's own spelling, whole lines): what
  authors write, what the stripper accepts and what a marker typo is measured against.
- ``NBGRADER_DELIMITERS``: what nbgrader 0.9.6 itself matches (a substring of a line):
  what the grader cuts and the release gates look for, whatever else the line holds.
"""
from __future__ import annotations

SOLUTION_BEGIN, SOLUTION_END = "### BEGIN SOLUTION", "### END SOLUTION"

CANONICAL_MARKERS = {
    "solution": (SOLUTION_BEGIN, SOLUTION_END),
    "hidden tests": ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"),
    "mark scheme": ("=== BEGIN MARK SCHEME ===", "=== END MARK SCHEME ==="),
}

NBGRADER_DELIMITERS = {
    "solution": ("BEGIN SOLUTION", "END SOLUTION"),
    "hidden tests": ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS"),
    "mark scheme": ("BEGIN MARK SCHEME", "END MARK SCHEME"),
}
