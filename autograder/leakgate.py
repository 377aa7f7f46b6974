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
- ``self-grade``     lives in `autograder.release` (it needs the throwaway course).

Notebooks are scanned line by line in their JSON text: nbformat writes one JSON
string per source line, which is decoded first, so `file:line` is the line of the
``.ipynb`` file an editor shows.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

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


HIDDEN_NAMES = {"__pycache__", ".ipynb_checkpoints"}


def check_hidden_files(root: Path) -> None:
    """Gate `hidden-files`: checkpoints, caches, compiled files, hidden files or folders."""
    for rel in release_files(root):
        parts = rel.split("/")
        for part in parts:
            if part in HIDDEN_NAMES or part.startswith("."):
                raise GateFailure("hidden-files", rel, 1, f"{part!r} must never ship in a release")
        if rel.endswith((".pyc", ".pyo")):
            raise GateFailure("hidden-files", rel, 1, "compiled Python must never ship in a release")


def check_allow_list(root: Path, expected: Iterable[str]) -> None:
    """Gate `allow-list`: the release holds exactly `expected` (relative POSIX paths)."""
    expected = set(expected)
    actual = set(release_files(root))
    for rel in sorted(actual - expected):
        raise GateFailure("allow-list", rel, 1, "file outside the release's allow-list")
    for rel in sorted(expected - actual):
        raise GateFailure("allow-list", rel, 1, "file missing from the release")


# ---------------------------------------------------------------- stubs: compile + import + raise

_STUB_PROBE = r'''
import ast, importlib, inspect, json, sys, traceback
root, modules, stubs = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
sys.path.insert(0, root)
problems = []
def report(rel, line, msg):
    problems.append({"path": rel, "line": line, "message": msg})
for rel in modules:
    name = rel[:-3].replace("/", ".")
    if name.endswith(".__init__"):
        name = name[: -len(".__init__")]
    try:
        mod = importlib.import_module(name)
    except BaseException as exc:
        tb = traceback.extract_tb(exc.__traceback__)
        # The outermost frame in the module: the module-level line the import died on.
        line = next((f.lineno for f in tb if f.filename.endswith(rel)), 1)
        if isinstance(exc, SyntaxError) and (exc.filename or "").endswith(rel):
            line = exc.lineno or 1
        elif isinstance(exc, SyntaxError) and exc.filename:
            rel = exc.filename[len(root) + 1:] if exc.filename.startswith(root) else exc.filename
            line = exc.lineno or 1
        report(rel, line, f"import {name} failed: {type(exc).__name__}: {exc}")
        continue
    if not (mod.__file__ or "").startswith(root):
        report(rel, 1, f"import {name} resolved to {mod.__file__}, not the release")
def dummy_call(fn, bound_self=None):
    sig = inspect.signature(fn)
    args, kwargs = [], {}
    params = list(sig.parameters.values())
    if bound_self is not None:
        args.append(bound_self)
        params = params[1:]
    for p in params:
        if p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.kind == p.KEYWORD_ONLY:
            kwargs[p.name] = None
        else:
            args.append(None)
    return fn(*args, **kwargs)
for s in stubs:
    rel, line, qualname, whole = s["path"], s["line"], s["function"], s["whole_body"]
    src = open(f"{root}/{rel}", encoding="utf-8").read()
    lines = src.split("\n")
    if "raise NotImplementedError(" not in lines[line - 1]:
        report(rel, line, f"{qualname}: the stub line is not a raise NotImplementedError")
        continue
    # The stub must sit inside the function it names.
    tree = ast.parse(src)
    found = False
    def visit(node, prefix):
        global found
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                q = prefix + child.name
                if q == qualname and child.lineno <= line <= child.end_lineno:
                    found = True
                visit(child, q + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")
            else:
                visit(child, prefix)
    visit(tree, "")
    if not found:
        report(rel, line, f"{qualname}: the stub is not inside that function")
        continue
    if not whole:
        continue  # code runs before the stub; dummy arguments could fail there first
    name = rel[:-3].replace("/", ".")
    try:
        obj = importlib.import_module(name)
    except BaseException:
        continue  # reported above
    owner, target = None, obj
    try:
        for part in qualname.split("."):
            owner, target = target, inspect.getattr_static(target, part)
    except AttributeError:
        continue  # a nested function: only the static check applies
    if inspect.ismodule(owner) or owner is None:
        call, bound = target, None
    elif isinstance(target, staticmethod):
        call, bound = target.__func__, None
    elif isinstance(target, classmethod):
        call, bound = target.__func__, owner
    elif isinstance(target, property):
        call, bound = target.fget, object.__new__(owner) if owner.__new__ is object.__new__ else owner.__new__(owner)
    elif inspect.isclass(owner):
        try:
            inst = owner.__new__(owner)
        except BaseException:
            inst = object.__new__(owner)
        call, bound = target, inst
    else:
        continue
    if not callable(call):
        continue
    try:
        # The decorated object, as students call it: a decorator that swallows the
        # NotImplementedError would hide an unimplemented function, so it must fail here.
        result = dummy_call(call, bound) if bound is not None else dummy_call(call)
    except NotImplementedError:
        continue
    except BaseException as exc:
        report(rel, line, f"{qualname}: called with dummy arguments it raised {type(exc).__name__}: {exc} "
                          "instead of NotImplementedError")
        continue
    report(rel, line, f"{qualname}: called with dummy arguments it returned {result!r} instead of raising "
                      "NotImplementedError")
print(json.dumps(problems))
'''


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
        [sys.executable, "-I", "-B", "-c", _STUB_PROBE, str(root), json.dumps(sorted(modules)), json.dumps(payload_stubs)],
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
    from . import nbgrader_course

    for rel in notebooks:
        report = nbgrader_course.validate_invert(root / rel, config)
        if report:
            needle = report.split(": ", 1)[-1].split(", ")[0].strip("'\"")
            raise GateFailure("validate", rel, line_of(root / rel, needle[:60]) if needle else 1, report)
