"""The release gates: every check a student release must pass before it replaces the old one.

Each gate raises `GateFailure(gate, path, line, message)`; its text names the gate and
the offending `file:line` (paths relative to the release folder, or to the repository
for source files). The gates, cheapest first:

- ``markers``        no marker of any dialect in any text file: nbgrader solution,
                     hidden-test and mark-scheme markers, CS231n's ``~~START DELETE~~``,
                     ``~~END DELETE~~``, ``~~DELETE LINE~~``.
- ``solution-lines`` no non-trivial normalized line of any solution or hidden-test
                     region of the source (package and notebooks) anywhere in the
                     release, unless the same line also occurs outside regions.
- ``solution-fragments`` no distinctive fragment of any solution region (see below)
                     anywhere in any text of the release (code, docstrings, comments,
                     markdown, outputs, every file), unless allowed by name in the
                     manifest's ``[release.allow]``.
- ``outputs``        no notebook outputs or execution counts.
- ``hidden-files``   no ``.ipynb_checkpoints``, ``__pycache__``, ``*.pyc`` or hidden files.
- ``allow-list``     exactly the files the release is made of, nothing more or less.
- ``stubs``          every module compiles and imports (subprocess, release's nnkit
                     first on sys.path, isolated mode), every stub is a
                     ``raise NotImplementedError`` inside its function, and every
                     function whose region is its whole body raises NotImplementedError
                     when called with dummy arguments.
- ``validate``       ``nbgrader validate --invert`` on every release notebook: no test
                     passes on the untouched release.
- ``self-grade``     lives in `autograder.release.selfgrade` (it needs the throwaway course).

Notebooks are scanned line by line in their JSON text: nbformat writes one JSON
string per source line, which is decoded first, so `file:line` is the line of the
``.ipynb`` file an editor shows.

**The fragment rule** (gate ``solution-fragments``). Every text is cut into tokens
(`fragment_tokens`): words, numbers whole (``1e-3``), operators whole (``**``, ``+=``),
single punctuation; whitespace, backticks and ``#`` are dropped and ``'`` is read as
``"``, so layout, quoting, comment and Markdown code marks do not matter. Brackets,
commas, dots, colons and quotes are *filler*; every other token is *content*. The
solution regions give the fingerprints:

- each logical statement of solution code (Python's `tokenize`; its comments are the
  author's notes and left out): every run of tokens from one content token to another
  holding ``MIN_CODE_TOKENS`` (8) content tokens, and the whole statement when it is
  shorter but holds at least ``MIN_STATEMENT_TOKENS`` (7);
- prose (the model answer of a markdown solution cell, a mark scheme), compared
  lower-cased: every run holding ``MIN_PROSE_TOKENS`` (12) content tokens, and each
  line, and the whole answer, of at least 7 content tokens.

A statement with an operator (``+ - * / @ ** < ==`` ...) is whole from 5 content
tokens (``squared = v * v``), and the expression assigned by an assignment counts as a
statement of its own (a copy of ``as_array(a) + as_array(b)`` without ``total =``).
So ``return out``, ``dx = None``, ``pass``, ``N = X.shape[0]`` (5, no operator) and
``affine_forward(x, w, b)`` (4) are never fingerprints, while
``dx = dout * (x > 0)`` (7) and ``x.reshape(x.shape[0], -1) @ w`` (9) are.
Each file of the release is one token stream (a notebook: its decoded JSON lines,
outputs included), so a copy inside a longer line, split over lines, in a comment, a
docstring or a Markdown cell is found, and the failure names the release file and the
line where the copy starts, and the solution line it comes from. Nothing is exempt
because it also occurs outside the regions in the source: that is how a copied line
used to pass. What students must see on purpose (an API call the notebook shows, a
formula the docstring states) is allowed by its text in the manifest, with the reason::

    [release.allow]
    "for p, w in self.model.params.items():" = "the provided Solver code iterates the same way"

An allowed text suppresses the fingerprints that lie wholly inside an occurrence of
it (compared as tokens); an entry that suppresses nothing stops the release, so the
list cannot go stale. The table is never copied into the release's manifest.

Measured on the first assignment of the kit (2026-11): 452 fingerprints; its release holds 8 copies of 4 texts,
all on purpose (provided code sharing a statement with a solution, the L2 gradient and
the reshape idiom the docstrings state): 4 allow entries. Hidden-test regions are not
fingerprinted this way (they restate the visible checks with other inputs: 6 more texts
overlap); the whole-line gate covers them, and they never reach a student's kernel.
"""
from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import textwrap
import tokenize
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from ..files import CACHE_NAMES, is_hidden

#: Every marker dialect the kit knows. Case-insensitive, anywhere on a line.
MARKER_PATTERNS = [
    (re.compile(r"BEGIN\s+SOLUTION|END\s+SOLUTION", re.I), "nbgrader solution marker"),
    (re.compile(r"BEGIN\s+HIDDEN\s+TESTS?|END\s+HIDDEN\s+TESTS?", re.I), "nbgrader hidden-test marker"),
    (re.compile(r"BEGIN\s+MARK\s+SCHEME|END\s+MARK\s+SCHEME", re.I), "nbgrader mark-scheme marker"),
    (re.compile(r"~~\s*(START|END)\s+DELETE\s*~~|~~\s*DELETE\s+LINE\s*~~", re.I), "CS231n release marker"),
]

#: A region line with fewer tokens than this is too common to fingerprint a solution
#: (`return out`, `else:`, `pass`, `x = 1`); `out = x @ w` (5 tokens) is not.
MIN_TOKENS = 4
_TOKEN = re.compile(r"\w+|[^\w\s]")


class GateFailure(Exception):
    """A release gate failed. `str()` names the gate, file and line."""

    def __init__(self, gate: str, path: str | Path, line: int, message: str):
        self.gate, self.path, self.line, self.message = gate, str(path), int(line), message
        super().__init__(f"gate {gate} failed: {path}:{line}: {message}")


@dataclass
class SourceLines:
    """Lines of the source, split into those inside solution/hidden-test regions and the rest."""

    #: normalized region line -> (source file, line) where it first occurs
    region: dict[str, tuple[str, int]] = field(default_factory=dict)
    #: normalized lines found outside every region
    outside: set[str] = field(default_factory=set)

    def add_region_line(self, text: str, where: tuple[str, int]) -> None:
        norm = normalize(text)
        if norm:
            self.region.setdefault(norm, where)

    def add_outside_line(self, text: str) -> None:
        norm = normalize(text)
        if norm:
            self.outside.add(norm)

    def fingerprints(self) -> dict[str, tuple[str, int]]:
        """The region lines that identify a solution: non-trivial and never outside regions."""
        return {k: v for k, v in self.region.items()
                if len(_TOKEN.findall(k)) >= MIN_TOKENS and k not in self.outside and not _is_marker(k)}


def normalize(line: str) -> str:
    """Whitespace-insensitive form of a line: stripped, inner runs of whitespace collapsed."""
    return " ".join(line.split())


def _is_marker(text: str) -> bool:
    return any(p.search(text) for p, _ in MARKER_PATTERNS)


# ---------------------------------------------------------------- solution fragments (see the module docstring)

#: One token of the fragment rule: a number whole (``1e-3``, ``0.95``), a multi-character
#: operator whole (``**``, ``+=``, ``==``), a word, or any one other character.
_FRAG_TOKEN = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?[jJ]?|\w+|\*\*=?|//=?|>>=?|<<=?|[=!<>]=|->"
                         r"|[-+*/%@&|^]=|[^\w\s]")
#: Dropped before comparing: Markdown code marks and comment marks.
_DROPPED = frozenset("`#")
#: Tokens without content of their own: a fragment must hold enough of the others.
FILLER = frozenset('()[]{},.:;"')
#: Content tokens of a distinctive window of solution code, ...
MIN_CODE_TOKENS = 8
#: ... of a whole solution statement shorter than a window, ...
MIN_STATEMENT_TOKENS = 7
#: ... or this many when one of them computes (an operator of `OPERATORS`: ``squared = v * v``), ...
MIN_COMPUTING_STATEMENT_TOKENS = 5
OPERATORS = frozenset("+ - * / // % @ ** < > <= >= == != & | ^ ~ << >> += -= *= /= //= %= @= **= &= |= ^=".split())
#: ... and of a window of prose (a written answer, a mark scheme).
MIN_PROSE_TOKENS = 12


def fragment_tokens(text: str) -> list[str]:
    """`text` as the fragment rule's tokens (whitespace, backticks and ``#`` dropped, ``'`` read as ``"``)."""
    return ['"' if t == "'" else t for t in _FRAG_TOKEN.findall(text) if t not in _DROPPED]


def show_tokens(tokens: Iterable[str]) -> str:
    """Tokens joined back into readable text (which `fragment_tokens` reads as the same tokens)."""
    out, prev, opened = "", None, False  # opened: the previous token opened a string
    in_string = False
    for t in tokens:
        space = prev is not None
        if t == '"':
            if in_string:
                space = False
            in_string = not in_string
        if prev is not None and (t in ".,:;)]}" or prev in ".([{" or opened
                                 or (t in "([" and (prev[-1].isalnum() or prev[-1] == "_" or prev in ')]"'))):
            space = False
        out += (" " if space else "") + t
        opened = t == '"' and in_string
        prev = t
    return out


@dataclass
class SolutionFragments:
    """The fingerprints of every solution region: token tuple -> (source file, line)."""

    fingerprints: dict[tuple[str, ...], tuple[str, int]] = field(default_factory=dict)
    #: of prose, lower-cased (matched against the lower-cased release): token tuple -> (file, line)
    prose: dict[tuple[str, ...], tuple[str, int]] = field(default_factory=dict)

    def add_code(self, text: str, path: str, line_of: Callable[[int], int]) -> None:
        """Solution code from `path`; `line_of(k)` is the file line of line k (1-based) of `text`."""
        for tokens, line in code_units(text):
            lines = [line_of(line)] * len(tokens)
            self._add(tokens, lines, path, MIN_CODE_TOKENS, MIN_STATEMENT_TOKENS)
            rhs = _assigned(tokens)
            if rhs:  # the expression of `target = expr` (or `+=`...) on its own: `v * v + 1` copied alone
                self._add(tokens[rhs:], lines[rhs:], path, MIN_CODE_TOKENS, MIN_STATEMENT_TOKENS)

    def add_prose(self, text: str, path: str, line_of: Callable[[int], int]) -> None:
        """A written answer (Markdown) from `path`; `line_of` as for `add_code`. Windows of
        MIN_PROSE_TOKENS over the whole text, and each line (and the whole answer) shorter
        than that but of MIN_STATEMENT_TOKENS content tokens whole."""
        tokens, lines = [], []
        for n, line in enumerate(text.split("\n"), start=1):
            more = fragment_tokens(line.lower())
            self._add(more, [line_of(n)] * len(more), path, MIN_PROSE_TOKENS, MIN_STATEMENT_TOKENS, into=self.prose)
            tokens += more
            lines += [line_of(n)] * len(more)
        self._add(tokens, lines, path, MIN_PROSE_TOKENS, MIN_STATEMENT_TOKENS, into=self.prose)

    def _add(self, tokens: list[str], lines: list[int], path: str, window: int, whole: int,
             into: dict | None = None) -> None:
        """Code (into `fingerprints`) or prose (into `prose`: no computing rule)."""
        prints = self.fingerprints if into is None else into
        content = [i for i, t in enumerate(tokens) if t not in FILLER]
        if len(content) >= window:
            for k in range(len(content) - window + 1):
                a, b = content[k], content[k + window - 1]
                prints.setdefault(tuple(tokens[a: b + 1]), (path, lines[a]))
        elif len(content) >= whole or (into is None and len(content) >= MIN_COMPUTING_STATEMENT_TOKENS
                                       and any(tokens[i] in OPERATORS for i in content)):
            prints.setdefault(tuple(tokens[content[0]: content[-1] + 1]), (path, lines[content[0]]))


_ASSIGN = frozenset("= += -= *= /= //= %= @= **= &= |= ^=".split())


def _assigned(tokens: list[str]) -> int | None:
    """Index of the first token of the assigned expression of an assignment statement, if any."""
    depth = 0
    for i, t in enumerate(tokens):
        if t in "([{":
            depth += 1
        elif t in ")]}":
            depth -= 1
        elif depth == 0 and t in _ASSIGN and i > 0 and i + 1 < len(tokens):
            return i + 1
        elif depth == 0 and t in ("lambda", ":"):  # a keyword argument `=` is not an assignment
            return None
    return None


def code_units(text: str) -> list[tuple[list[str], int]]:
    """(tokens, line in `text`) of each logical statement of `text`, comments left out (they
    are the author's notes, and often restate the task's public formula). Code that does
    not tokenize (a region that is not whole statements) gives one unit per physical line."""
    src = textwrap.dedent(text.replace("\r\n", "\n"))
    units: list[tuple[list[str], int]] = []
    try:
        current: list[str] = []
        start = 0
        for tok in tokenize.generate_tokens(io.StringIO(src).readline):
            if tok.type == tokenize.NEWLINE:
                if current:
                    units.append((current, start))
                current = []
            elif tok.type not in (tokenize.COMMENT, tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING,
                                  tokenize.ENDMARKER):
                if not current:
                    start = tok.start[0]
                current.extend(fragment_tokens(tok.string))
        if current:
            units.append((current, start))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        units = [(fragment_tokens(line.split("#")[0]), n) for n, line in enumerate(src.split("\n"), start=1)]
    return units


@dataclass(frozen=True)
class Allowed:
    """An entry of ``[release.allow]``: text students see on purpose, why, and where it is written."""

    text: str
    reason: str
    path: str
    line: int

    @property
    def tokens(self) -> tuple[str, ...]:
        return tuple(fragment_tokens(self.text))


@dataclass(frozen=True)
class FragmentHit:
    """A copy of solution fragments in the release: overlapping fingerprints, merged."""

    path: str  # release file
    line: int  # where the copy starts
    end_line: int
    tokens: tuple[str, ...]  # the release's tokens of the copy
    origin: tuple[str, int]  # the solution line of its first fingerprint


def _find_all(tokens: list[str], needle: tuple[str, ...]) -> Iterator[int]:
    n = len(needle)
    if not n:
        return
    first = needle[0]
    for i, t in enumerate(tokens):
        if t == first and tuple(tokens[i: i + n]) == needle:
            yield i


def find_fragments(root: Path, fragments: SolutionFragments, allowed: Iterable[Allowed] = (),
                   files: Iterable[str] | None = None) -> tuple[list[FragmentHit], list[Allowed]]:
    """Every copy of a fingerprint in the release at `root` that no allowed text covers,
    overlapping copies merged (in file order), and the allowed entries that covered nothing."""
    indexes = []  # (index by first two tokens, fingerprints, compare lower-cased)
    for prints, lower in ((fragments.fingerprints, False), (fragments.prose, True)):
        index: dict[tuple[str, str], list[tuple[str, ...]]] = {}
        for fp in prints:
            index.setdefault(fp[:2], []).append(fp)
        indexes.append((index, prints, lower))
    allowed = list(allowed)
    used = [False] * len(allowed)
    hits: list[FragmentHit] = []
    for rel in (release_files(root) if files is None else files):
        tokens, lines = [], []
        for n, text in text_lines(root / rel):
            for t in fragment_tokens(text):
                tokens.append(t)
                lines.append(n)
        if not tokens:
            continue
        lowered = [t.lower() for t in tokens]
        spans = [(i, i + len(a.tokens), k) for k, a in enumerate(allowed) for i in _find_all(tokens, a.tokens)]
        spans += [(i, i + len(a.tokens), k) for k, a in enumerate(allowed)
                  for i in _find_all(lowered, tuple(t.lower() for t in a.tokens))]
        found: list[tuple[int, int, tuple[str, int]]] = []
        for index, prints, lower in indexes:
            stream = lowered if lower else tokens
            for i in range(len(stream) - 1):
                for fp in index.get((stream[i], stream[i + 1]), ()):
                    j = i + len(fp)
                    if tuple(stream[i:j]) != fp:
                        continue
                    cover = [k for a, b, k in spans if a <= i and j <= b]
                    if cover:
                        for k in cover:
                            used[k] = True
                    else:
                        found.append((i, j, prints[fp]))
        found.sort()
        merged: list[list] = []
        for i, j, origin in found:
            if merged and i < merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], j)
            else:
                merged.append([i, j, origin])
        hits += [FragmentHit(rel, lines[i], lines[j - 1], tuple(tokens[i:j]), origin) for i, j, origin in merged]
    return hits, [a for a, u in zip(allowed, used) if not u]


def check_solution_fragments(root: Path, fragments: SolutionFragments, allowed: Iterable[Allowed] = (),
                             allow_file: str = "the manifest") -> None:
    """Gate `solution-fragments` (the fragment rule of the module docstring)."""
    hits, unused = find_fragments(root, fragments, allowed)
    if hits:
        h = hits[0]
        src, src_line = h.origin
        more = f" (and {len(hits) - 1} more: " + ", ".join(f"{x.path}:{x.line}" for x in hits[1:6]) \
            + (", ..." if len(hits) > 6 else "") + ")" if len(hits) > 1 else ""
        text = show_tokens(h.tokens)
        raise GateFailure(
            "solution-fragments", h.path, h.line,
            f"{text!r} is a fragment of the solution at {src}:{src_line}{more}; take it out of the release, or, if "
            f"students must see it, allow it under [release.allow] in {allow_file}: "
            f"{json.dumps(text)} = \"<why students see it>\"")
    if unused:
        a = unused[0]
        raise GateFailure("solution-fragments", a.path, a.line,
                          f"[release.allow] entry {a.text!r} covers no fragment of a solution in the release; "
                          "remove it (an allow entry that allows nothing would hide a later leak)")


# ---------------------------------------------------------------- reading release files

def release_files(root: Path) -> list[str]:
    """Every file under `root`, as sorted POSIX relative paths (hidden ones included)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in filenames:
            out.append(Path(dirpath, name).relative_to(root).as_posix())
    return sorted(out)


def text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of a text file; notebook JSON string lines are decoded.

    Binary files (not UTF-8) yield nothing: the allow-list admits them only under
    `datasets/`.
    """
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return
    is_nb = path.suffix == ".ipynb"
    for n, line in enumerate(text.split("\n"), start=1):
        if is_nb:
            yield n, _decode_json_line(line)
        else:
            yield n, line


def _decode_json_line(line: str) -> str:
    s = line.strip().rstrip(",")
    if s.startswith('"'):
        # `"text\n"` or `"key": "value"`: decode the string parts.
        try:
            return json.loads(s)
        except ValueError:
            pass
        try:
            return " ".join(str(v) for v in json.loads("{" + s + "}").values())
        except ValueError:
            pass
    return line


def notebook_source_lines(raw: str, n_cells: int) -> list[list[int]] | None:
    """For each cell of a notebook's JSON text, the file line of each of its source lines
    (nbformat's layout: one JSON string per source line); None for another layout."""
    lines = raw.split("\n")
    starts = [n for n, line in enumerate(lines) if re.match(r'\s*"source":', line)]
    if len(starts) != n_cells:
        return None
    out = []
    for n in starts:
        head = lines[n].strip().rstrip(",")
        if head.endswith("["):
            rows, k = [], n + 1
            while k < len(lines) and lines[k].strip() not in ("]", "],"):
                rows.append(k + 1)
                k += 1
            out.append(rows or [n + 1])
        else:
            out.append([n + 1])  # "source": "..." or "source": []: all on its line
    return out


def line_of(path: Path, needle: str) -> int:
    """First line of `path` (decoded as `text_lines` does) containing `needle`; 1 if none."""
    for n, text in text_lines(path):
        if needle in text:
            return n
    return 1


# ---------------------------------------------------------------- the static gates

def check_markers(root: Path) -> None:
    """Gate `markers`."""
    for rel in release_files(root):
        for n, text in text_lines(root / rel):
            for pattern, what in MARKER_PATTERNS:
                m = pattern.search(text)
                if m:
                    raise GateFailure("markers", rel, n, f"{what} {m.group(0)!r} in the release")


def check_solution_lines(root: Path, source: SourceLines) -> None:
    """Gate `solution-lines`."""
    prints = source.fingerprints()
    for rel in release_files(root):
        for n, text in text_lines(root / rel):
            norm = normalize(text)
            if norm in prints:
                src, src_line = prints[norm]
                raise GateFailure("solution-lines", rel, n,
                                  f"{norm!r} is a line of the solution region at {src}:{src_line}")


def check_outputs(root: Path, notebooks: Iterable[str]) -> None:
    """Gate `outputs`: no outputs, no execution counts in any release notebook."""
    for rel in notebooks:
        path = root / rel
        nb = json.loads(path.read_text(encoding="utf-8"))
        for i, cell in enumerate(nb.get("cells", [])):
            if cell.get("cell_type") != "code":
                if cell.get("outputs") or cell.get("attachments"):
                    raise GateFailure("outputs", rel, _cell_line(path, cell, i), f"cell {i} carries outputs or attachments")
                continue
            if cell.get("outputs"):
                raise GateFailure("outputs", rel, _cell_line(path, cell, i), f"code cell {i} has outputs")
            if cell.get("execution_count") is not None:
                raise GateFailure("outputs", rel, _cell_line(path, cell, i),
                                  f"code cell {i} has execution_count {cell['execution_count']}")


def _cell_line(path: Path, cell: dict, index: int) -> int:
    cid = cell.get("id")
    if cid:
        return raw_line_of(path, f'"id": "{cid}"')
    first = "".join(cell.get("source", "")).split("\n")[0]
    return line_of(path, first) if first else 1


def raw_line_of(path: Path, needle: str) -> int:
    """First line of the raw text of `path` containing `needle`; 1 if none."""
    for n, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        if needle in line:
            return n
    return 1


def check_hidden_files(root: Path) -> None:
    """Gate `hidden-files`: checkpoints, caches, compiled files, hidden files or folders (``files.is_hidden``)."""
    for rel in release_files(root):
        parts = rel.split("/")
        if is_hidden(parts):
            bad = next((p for p in parts if p.startswith(".") or p in CACHE_NAMES), None)
            raise GateFailure("hidden-files", rel, 1, f"{bad!r} must never ship in a release" if bad
                              else "compiled Python must never ship in a release")


def check_allow_list(root: Path, expected: Iterable[str]) -> None:
    """Gate `allow-list`: the release holds exactly `expected` (relative POSIX paths)."""
    expected = set(expected)
    actual = set(release_files(root))
    for rel in sorted(actual - expected):
        raise GateFailure("allow-list", rel, 1, "file outside the release's allow-list")
    for rel in sorted(expected - actual):
        raise GateFailure("allow-list", rel, 1, "file missing from the release")


# ---------------------------------------------------------------- stubs: compile + import + raise

#: The stub probe: a script run in a fresh isolated interpreter on the release (see check_stubs).
STUB_PROBE = Path(__file__).resolve().with_name("stub_probe.py")


@dataclass(frozen=True)
class Stub:
    """A stub the stripper wrote: `path` relative to the release, 1-based `line`."""

    path: str
    line: int
    function: str
    whole_body: bool


def check_stubs(root: Path, modules: Iterable[str], stubs: Iterable[Stub], timeout: float = 120) -> None:
    """Gate `stubs`, in a fresh isolated interpreter (`-I`: no PYTHONPATH, no user site,
    no current directory on sys.path), so only the release's nnkit can be imported.

    `modules`: every `.py` of the release's package (relative paths); `stubs`: from the
    stripper. Compile errors surface as import failures with their line.
    """
    payload_stubs = [s.__dict__ for s in stubs]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.setdefault("MPLBACKEND", "Agg")
    proc = subprocess.run(
        [sys.executable, "-I", "-B", str(STUB_PROBE), str(root), json.dumps(sorted(modules)), json.dumps(payload_stubs)],
        capture_output=True, text=True, timeout=timeout, env=env, cwd=str(root),
    )
    if proc.returncode != 0:
        raise GateFailure("stubs", "nnkit", 1, f"the stub probe crashed: {proc.stderr.strip()[-2000:]}")
    problems = json.loads(proc.stdout.strip().splitlines()[-1])
    if problems:
        p = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise GateFailure("stubs", p["path"], p["line"], p["message"] + more)


# ---------------------------------------------------------------- validate --invert

def check_validate(root: Path, notebooks: Iterable[str], config=None) -> None:
    """Gate `validate`: `nbgrader validate --invert` on each notebook (in-process).

    Run it on a scratch copy of the release: executing notebooks writes files
    (models/, caches) that must never land in the release itself.
    """
    from .. import nbgrader_course

    for rel in notebooks:
        report = nbgrader_course.validate_invert(root / rel, config)
        if report:
            needle = report.split(": ", 1)[-1].split(", ")[0].strip("'\"")
            raise GateFailure("validate", rel, line_of(root / rel, needle[:60]) if needle else 1, report)
