"""Strip solution regions from Python source files (the kit's own stripper).

nbgrader copies `.py` files into a release verbatim, solutions included, and its
convert hooks swallow exceptions, so the kit strips the package itself. A region is::

    <indent>### BEGIN SOLUTION
    ...solution code...
    <indent>### END SOLUTION

with both markers alone on their lines (comments found by `tokenize`, never text
inside a string). Each region, markers included, becomes one line at the BEGIN
line's indentation::

    <indent>raise NotImplementedError("<function>: not implemented yet, see the TODO above")

Everything outside the regions (signatures, decorators, docstrings, the TODO comment
just above the region, code after the region such as `return out`) is kept byte for
byte, including tabs, CRLF line endings and non-ASCII text.

An assignment stubs only what its students write (`students`): a region of a function
another assignment of the kit asks for (`elsewhere`) is stubbed too, with a message
saying so, so that no release ships another assignment's solution; any other region
ships complete, its two marker lines removed.

Errors (`StripError`, message starting with `file:line:`): a marker that is not
exactly `### BEGIN SOLUTION` / `### END SOLUTION` on its own line (a comment that looks
like one, ``### BEGIN SOLUTON`` or ``## END SOLUTION``, is a typo: `marker_typo`), a marker inside a
string or docstring, nested or unclosed regions, an END indented differently from
its BEGIN, a region outside any function (its stub would raise on import), a source
that does not compile, and a stubbed result that does not compile.
"""
from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass

from ..markers import CANONICAL_MARKERS, SOLUTION_BEGIN as BEGIN, SOLUTION_END as END

#: Anything that looks like a solution marker, in any spelling: every line matching
#: this must be exactly BEGIN or END as a comment of its own, or stripping stops.
_MARKER_LIKE = re.compile(r"(BEGIN|END)\s+SOLUTION", re.IGNORECASE)

STUB_MESSAGE = "{name}: not implemented yet, see the TODO above"
#: The stub of a function another assignment of the course asks for (not this one).
ELSEWHERE_MESSAGE = "{name}: not part of this assignment (another assignment of the course asks for it)"

# CANONICAL_MARKERS (autograder/markers.py), by kind, is what `marker_typo` compares lines against.
_MARKER_WORDS = {"solution": ("SOLUTION",), "hidden tests": ("HIDDEN", "TESTS"), "mark scheme": ("MARK", "SCHEME")}
#: A line that is nothing but marker-like words and comment/heading punctuation.
_MARKERISH_LINE = re.compile(r"[\s#=*/<>!~_-]*(?:[A-Za-z]+[\s#=*/<>!~_-]*){2,4}")


def _distance(a: str, b: str, limit: int) -> int:
    """Levenshtein distance of a and b, or limit + 1 once it exceeds limit."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        cur = [i]
        for j, cb in enumerate(b, start=1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        if min(cur) > limit:
            return limit + 1
        prev = cur
    return prev[-1]


def marker_typo(line: str) -> str | None:
    """The marker `line` was probably meant to be, when it looks like one but is not exactly one.

    ``### BEGIN SOLUTON``, ``## BEGIN SOLUTION``, ``### begin solution``, ``###BEGIN SOLUTION``,
    ``### END HIDDEN TEST`` and ``=== BEGIN MARKING SCHEME ===`` are typos; the exact markers
    (`CANONICAL_MARKERS`) and ordinary lines are not. Only lines made of two to four words
    and comment or heading punctuation are considered, so prose never matches.
    """
    text = line.strip()
    if len(text) > 60 or not _MARKERISH_LINE.fullmatch(text):
        return None
    words = [w.upper() for w in re.findall(r"[A-Za-z]+", text)]
    if len(words) < 2:
        return None
    first = words[0]
    if _distance(first, "BEGIN", 1) <= 1 or first in ("START", "OPEN"):
        which = 0
    elif _distance(first, "END", 1) <= 1 and first not in ("AND", "EN") or first in ("STOP", "CLOSE"):
        which = 1
    else:
        return None
    for kind, wanted in _MARKER_WORDS.items():
        rest = words[1:]
        if len(rest) < len(wanted):
            continue
        if all(_distance(w, want, 2 if len(want) > 5 else 1) <= (2 if len(want) > 5 else 1)
               for w, want in zip(rest, wanted)) and len(rest) <= len(wanted) + 1:
            canonical = CANONICAL_MARKERS[kind][which]
            return None if text == canonical else canonical
    return None


class StripError(ValueError):
    """A source file cannot be stripped safely; the message starts with `file:line:`."""

    def __init__(self, path: str, line: int, message: str):
        self.path, self.line = str(path), int(line)
        super().__init__(f"{path}:{line}: {message}")


@dataclass(frozen=True)
class Region:
    """One solution region of a source file (1-based line numbers, markers included)."""

    begin: int
    end: int
    indent: str
    function: str  # qualified name, e.g. "affine_forward", "TwoLayerNet.loss", "outer.inner"
    whole_body: bool  # nothing executable precedes the region in its function

    def lines(self, source_lines: list[str]) -> list[str]:
        """The solution lines between the markers (markers excluded)."""
        return source_lines[self.begin: self.end - 1]


@dataclass(frozen=True)
class StrippedFile:
    """The result of stripping one file."""

    text: str
    regions: tuple[Region, ...]
    #: (stub line number in `text`, function qualified name, whole_body) for each region
    stubs: tuple[tuple[int, str, bool], ...]


def _lines(text: str) -> list[str]:
    """Split on \n only (as Python's tokenizer counts lines), each line keeping its own
    ending (\n or \r\n), so the output preserves them exactly. str.splitlines would also
    split on characters like U+2028 inside strings and shift every line number."""
    parts = text.split("\n")
    out = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        out.append(parts[-1])
    return out


def _string_spans(text: str, path: str) -> tuple[list[tuple[int, int]], dict[int, str]]:
    """(start_row, end_row) of every string token, and {row: comment} of comments alone on their line."""
    spans, comments = [], {}
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError) as exc:
        line = getattr(exc, "lineno", None) or (exc.args[1][0] if len(exc.args) > 1 else 1)
        raise StripError(path, line, f"cannot tokenize the source: {exc.args[0]}") from None
    last_code_row = 0
    for tok in tokens:
        if tok.type == tokenize.STRING or tok.type == getattr(tokenize, "FSTRING_START", -1):
            spans.append((tok.start[0], tok.end[0]))
        if tok.type == tokenize.COMMENT:
            if last_code_row != tok.start[0]:
                comments[tok.start[0]] = tok.string
        elif tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                              tokenize.ENCODING, tokenize.ENDMARKER):
            last_code_row = tok.end[0]
    return spans, comments


def find_regions(text: str, path: str = "<string>") -> list[Region]:
    """Locate and check every solution region of a Python source.

    Raises StripError (with file:line) for anything that would make stripping unsafe.
    """
    lines = _lines(text)
    try:
        tree = ast.parse(text, filename=path)
    except SyntaxError as exc:
        raise StripError(path, exc.lineno or 1, f"the source does not compile: {exc.msg}") from None
    spans, comments = _string_spans(text, path)

    markers: list[tuple[int, str, str]] = []  # (row, BEGIN|END, indent)
    for row, line in enumerate(lines, start=1):
        if not _MARKER_LIKE.search(line):
            meant = marker_typo(line) if row in comments else None
            if meant in (BEGIN, END):
                raise StripError(path, row, f"{line.strip()!r} looks like a solution marker but is not one; "
                                            f"write exactly {meant!r}")
            continue
        if any(a <= row <= b for a, b in spans):
            raise StripError(path, row, "a solution marker inside a string or docstring; markers must be "
                                        "comments on lines of their own")
        stripped = line.strip()
        if row not in comments or comments[row].strip() != stripped:
            raise StripError(path, row, f"a solution marker must be alone on its line, found {stripped!r}")
        if stripped not in (BEGIN, END):
            raise StripError(path, row, f"malformed solution marker {stripped!r}; write exactly "
                                        f"{BEGIN!r} or {END!r}")
        indent = line[: len(line) - len(line.lstrip())]
        markers.append((row, "BEGIN" if stripped == BEGIN else "END", indent))

    functions = _function_spans(tree)
    regions: list[Region] = []
    open_row = None
    open_indent = ""
    for row, kind, indent in markers:
        if kind == "BEGIN":
            if open_row is not None:
                raise StripError(path, row, f"nested solution region: the region opened at line {open_row} "
                                            "is not closed yet")
            open_row, open_indent = row, indent
            continue
        if open_row is None:
            raise StripError(path, row, "an END marker without a BEGIN marker")
        if indent != open_indent:
            raise StripError(path, row, f"the END marker is indented differently from its BEGIN at line {open_row}")
        regions.append(_region(path, open_row, row, indent, functions))
        open_row = None
    if open_row is not None:
        raise StripError(path, open_row, "unclosed solution region: no END marker follows this BEGIN")
    return regions


def _function_spans(tree: ast.AST) -> list[tuple[int, int, str, ast.AST]]:
    """(line after `def`, last line, qualified name, node) of every function, outermost first."""
    out = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = prefix + child.name
                # From the line after `def` (a region may open before the first statement)
                # to the last statement (the END marker, a comment, may come after it).
                out.append((child.lineno + 1, child.end_lineno, name, child))
                visit(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return out


def _region(path, begin, end, indent, functions) -> Region:
    inside = [f for f in functions if f[0] <= begin <= f[1]]
    if not inside:
        raise StripError(path, begin, "a solution region outside any function: its stub would raise when "
                                      "the module is imported; move the code into a function")
    body_start, _, name, node = max(inside, key=lambda f: f[0])  # the innermost function
    body = node.body
    # Skip the docstring: the region is the "whole body" if no other statement precedes it.
    first = 1 if (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                  and isinstance(body[0].value.value, str)) else 0
    whole_body = len(body) <= first or body[first].lineno > begin
    return Region(begin=begin, end=end, indent=indent, function=name, whole_body=whole_body)


def strip_source(text: str, path: str = "<string>", *, students=None, elsewhere=()) -> StrippedFile:
    """Replace regions of `text` by NotImplementedError stubs; see the module docstring.

    students : collection of qualified function names, or None
        The functions whose regions become stubs; None: every region.
    elsewhere : collection of qualified function names
        Functions other assignments ask for: stubbed too, with ELSEWHERE_MESSAGE.
        Every other region is kept, without its markers.
    """
    regions = find_regions(text, path)
    lines = _lines(text)
    out: list[str] = []
    stubs = []
    source_row_of = []  # output line -> source line, for error messages
    row = 1
    for region in regions:
        for r in range(row, region.begin):
            out.append(lines[r - 1])
            source_row_of.append(r)
        if students is None or region.function in students:
            message = STUB_MESSAGE.format(name=region.function)
        elif region.function in elsewhere:
            message = ELSEWHERE_MESSAGE.format(name=region.function)
        else:  # provided code in this assignment: the solution ships, the markers do not
            for r in range(region.begin + 1, region.end):
                out.append(lines[r - 1])
                source_row_of.append(r)
            row = region.end + 1
            continue
        begin_line = lines[region.begin - 1]
        newline = begin_line[len(begin_line.rstrip("\r\n")):] or "\n"
        out.append(f'{region.indent}raise NotImplementedError("{message}"){newline}')
        source_row_of.append(region.begin)
        stubs.append((len(out), region.function, region.whole_body))
        row = region.end + 1
    for r in range(row, len(lines) + 1):
        out.append(lines[r - 1])
        source_row_of.append(r)
    result = "".join(out)
    try:
        compile(result, path, "exec", dont_inherit=True)
    except SyntaxError as exc:
        src_row = source_row_of[(exc.lineno or 1) - 1] if exc.lineno and exc.lineno <= len(source_row_of) else 1
        raise StripError(path, src_row, f"the stubbed module does not compile (stubbed line {exc.lineno}: "
                                        f"{exc.msg}); a region must hold whole statements") from None
    return StrippedFile(text=result, regions=tuple(regions), stubs=tuple(stubs))
