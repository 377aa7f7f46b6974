"""The plan of a release, read and checked from the source: the manifest, the package it ships
(stripped in memory), the notebooks, the allow and provide lists; gates `manifest`, `strip`, `imports`.
"""
from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from .. import REPO_ROOT
from ..manifest import Manifest, ManifestError, load_manifest
from .digest import DIGEST_FILE, input_hashes
from .gates import Allowed, FILLER, SolutionFragments, SourceLines, Stub, _cell_line, fragment_tokens, line_of
from .notebook_checks import GradeCell, _check_points, _check_unique_ids, _read_notebook
from .shared import ReleaseError, _tree, functions_asked_elsewhere
from .strip import StripError, find_regions, strip_source


@dataclass
class Plan:
    """What a release of one assignment is made of, read and checked from the source."""

    root: Path
    manifest: Manifest
    package_files: list[str]  # relative to source/ ("nnkit/layers.py", ...)
    stripped: dict[str, str]  # module with regions -> its text in the release (students' functions stubbed)
    #: module with regions -> its text with this assignment's solutions in place (what a student who
    #: finished has): the reference notebooks run against it, so provided code that needs a function
    #: another assignment asks for (stubbed here) fails the release instead of a student.
    solved: dict[str, str]
    stubs: list[Stub]
    source_lines: SourceLines
    dataset_files: list[str]  # relative to root ("datasets/fetch.py", ...)
    notebook_points: dict[str, dict[str, float]] = field(default_factory=dict)  # nb -> grade_id -> points
    fragments: SolutionFragments = field(default_factory=SolutionFragments)
    inputs: dict[str, str | None] = field(default_factory=dict)  # RELEASE_DIGEST's inputs, hashed before reading
    allowed: list[Allowed] = field(default_factory=list)  # the manifest's [release.allow]

    @property
    def source_dir(self) -> Path:
        return self.root / "source" / self.manifest.assignment

    def expected_files(self) -> list[str]:
        return sorted(
            list(self.manifest.notebooks) + self.package_files + self.dataset_files + list(self.manifest.files)
            + ["manifest.toml", "README.md", "requirements.txt", "make_submission.py", DIGEST_FILE]
        )


def shipped_modules(manifest: Manifest, root: Path, mpath: str) -> list[str]:
    """The package files the release ships: the manifest's `[package]` modules and the
    `__init__.py` of every folder on their way (relative to source/, sorted)."""
    if manifest.package is None:
        raise ReleaseError("manifest", mpath, 1, "no [package] table (a release's manifest, not a source one?)")
    files = set()
    for rel in manifest.package:
        if not (root / "source" / rel).is_file():
            raise ReleaseError("manifest", mpath, line_of(root / mpath, f'"{rel}"'),
                               f"[package] lists {rel}, but source/{rel} does not exist")
        files.add(rel)
        parts = Path(rel).parts
        for k in range(1, len(parts)):
            init = "/".join(parts[:k]) + "/__init__.py"
            if (root / "source" / init).is_file():
                files.add(init)
    return sorted(files)


def _nnkit_imports(code: str, module: str | None = None) -> Iterator[tuple[int, str]]:
    """(line, dotted module) of every nnkit module `code` imports, at any depth (lazy imports too).

    `module`: the dotted name of the package module holding `code` (resolves relative imports).
    A `from nnkit.x import y` yields both nnkit.x and nnkit.x.y (y may be a submodule).
    """
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return  # not Python (a notebook's shell line): the notebook gates report real errors
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "nnkit" or a.name.startswith("nnkit."):
                    yield node.lineno, a.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level and module:
                parent = module.split(".")[: -node.level]
                base = ".".join(parent + ([base] if base else []))
            if base == "nnkit" or base.startswith("nnkit."):
                yield node.lineno, base
                for a in node.names:
                    yield node.lineno, f"{base}.{a.name}"


def check_imports(root: Path, manifest: Manifest, package_files: list[str], mpath: str) -> None:
    """Gate `imports`: no shipped module or notebook imports an nnkit module the release does not ship."""
    shipped = set(package_files)

    def missing(dotted: str) -> str | None:
        rel = dotted.replace(".", "/")
        for candidate in (f"{rel}.py", f"{rel}/__init__.py"):
            if (root / "source" / candidate).is_file() and candidate not in shipped:
                return candidate
        return None

    def fail(where: str, line: int, dotted: str, rel: str):
        raise ReleaseError("imports", where, line, f"imports {dotted}, which this release does not ship: add "
                                                   f'"{rel}" = [] to [package] in {mpath} (or drop the import)')

    for rel in package_files:
        dotted = rel[:-3].replace("/", ".").removesuffix(".__init__")
        for line, name in _nnkit_imports((root / "source" / rel).read_text(encoding="utf-8"), dotted):
            if (gone := missing(name)) is not None:
                fail(f"source/{rel}", line, name, gone)
    for nb_name in manifest.notebooks:
        path = root / "source" / manifest.assignment / nb_name
        for index, cell in enumerate(json.loads(path.read_text(encoding="utf-8")).get("cells", [])):
            if cell.get("cell_type") != "code":
                continue
            source = cell.get("source", "")
            source = "".join(source) if isinstance(source, list) else source
            # IPython's magics and shell lines are not Python: blank them, keeping line numbers.
            source = "\n".join("" if s.lstrip().startswith(("%", "!")) else s for s in source.split("\n"))
            for line, name in _nnkit_imports(source):
                if (gone := missing(name)) is not None:
                    fail(f"source/{manifest.assignment}/{nb_name}", _cell_line(path, cell, index), name, gone)


def plan_release(assignment: str, root: Path = REPO_ROOT) -> Plan:
    """Read the manifest, the package and the notebooks; strip the package in memory.

    Raises ReleaseError (gates `manifest`, `strip`).
    """
    root = Path(root).resolve()
    try:
        manifest = load_manifest(assignment, root)
    except ManifestError as exc:
        raise ReleaseError("manifest", f"source/{assignment}/manifest.toml", 1, str(exc)) from None
    mpath = f"source/{assignment}/manifest.toml"
    # Hashed before anything is read: a file edited meanwhile makes the digest older, never newer.
    inputs = input_hashes(assignment, root)
    pkg_root = root / "source" / "nnkit"
    if not pkg_root.is_dir():
        raise ReleaseError("manifest", "source/nnkit", 1, "no reference package at source/nnkit")
    package_files = shipped_modules(manifest, root, mpath)
    elsewhere = functions_asked_elsewhere(assignment, root)
    for module, functions in _provided(root / mpath, mpath, elsewhere).items():
        elsewhere[module] -= functions
    lines = SourceLines()
    fragments = SolutionFragments()
    allowed = _allow_list(root / mpath, mpath)
    stripped, solved, stubs = {}, {}, []
    for rel in package_files:
        if not rel.endswith(".py"):
            continue
        text = (root / "source" / rel).read_text(encoding="utf-8")
        shown = f"source/{rel}"
        try:
            regions = find_regions(text, shown)
        except StripError as exc:
            raise ReleaseError("strip", exc.path, exc.line, str(exc).split(": ", 1)[1]) from None
        students = set(manifest.student_functions(rel))
        others = elsewhere.get(rel, set()) - students
        have = {r.function for r in regions}
        for fn in manifest.student_functions(rel):
            if fn not in have:
                raise ReleaseError("manifest", mpath, line_of(root / mpath, f'"{fn}"'),
                                   f"[package] lists {fn} of {rel}, which has no solution region there "
                                   f"(functions with one: {', '.join(sorted(have)) or 'none'})")
        src_lines = text.split("\n")
        inside = set()
        for region in regions:
            if region.function not in students | others:
                continue  # provided code in this assignment: ships complete, so its lines are public
            for n in range(region.begin + 1, region.end):
                inside.add(n)
                lines.add_region_line(src_lines[n - 1], (shown, n))
            fragments.add_code("\n".join(src_lines[region.begin: region.end - 1]), shown,
                               lambda k, b=region.begin: b + k)
        for n, line in enumerate(src_lines, start=1):
            if n not in inside and not any(r.begin == n or r.end == n for r in regions):
                lines.add_outside_line(line)
        if regions:
            try:
                result = strip_source(text, shown, students=students, elsewhere=others)
            except StripError as exc:
                raise ReleaseError("strip", exc.path, exc.line, str(exc).split(": ", 1)[1]) from None
            stripped[rel] = result.text
            stubs.extend(Stub(rel, line, fn, whole) for line, fn, whole in result.stubs)
            solved[rel] = strip_source(text, shown, students=(), elsewhere=others).text

    nb_points: dict[str, dict[str, float]] = {}
    graded: list[GradeCell] = []
    for nb_name in manifest.notebooks:
        path = root / "source" / assignment / nb_name
        if not path.is_file():
            raise ReleaseError("manifest", mpath, line_of(root / mpath, nb_name), f"notebook {nb_name} is listed but "
                                                                                 f"source/{assignment}/{nb_name} does not exist")
        cells = _read_notebook(path, f"source/{assignment}/{nb_name}", lines, fragments, manifest, mpath)
        _check_unique_ids(graded, cells)
        graded += cells
        nb_points[nb_name] = {c.grade_id: c.points for c in cells if c.cell_type == "code"}
    _check_points(manifest, graded, root / mpath, mpath)
    check_imports(root, manifest, package_files, mpath)
    for rel in manifest.files:
        if not (root / "source" / assignment / rel).is_file():
            raise ReleaseError("manifest", mpath, line_of(root / mpath, f'"{rel}"'),
                               f"files lists {rel}, but source/{assignment}/{rel} does not exist")

    datasets = root / "datasets"
    if not (datasets / "fetch.py").is_file():
        raise ReleaseError("manifest", "datasets/fetch.py", 1, "the dataset fetch helper is missing; the release "
                                                              "ships it so students can download the datasets")
    dataset_files = ["datasets/fetch.py"]
    if (datasets / "embedded").is_dir():
        dataset_files += ["datasets/embedded/" + p for p in _tree(datasets / "embedded")]
    return Plan(root=root, manifest=manifest, package_files=package_files, stripped=stripped, solved=solved, stubs=stubs,
                source_lines=lines, dataset_files=sorted(dataset_files), notebook_points=nb_points,
                fragments=fragments, allowed=allowed, inputs=inputs)


def _allow_list(mfile: Path, mpath: str) -> list[Allowed]:
    """The manifest's `[release.allow]`: `"text students see on purpose" = "why"` (see autograder.release.gates)."""
    import tomllib

    data = tomllib.loads(mfile.read_text(encoding="utf-8"))  # load_manifest has parsed it once already
    table = data.get("release", {})
    allow = table.get("allow", {}) if isinstance(table, dict) else None
    if not isinstance(allow, dict):
        raise ReleaseError("manifest", mpath, line_of(mfile, "release"),
                           '[release.allow] must be a table of `"text students see on purpose" = "why"` entries')
    raw = mfile.read_text(encoding="utf-8").split("\n")
    out = []
    for text, reason in allow.items():
        line = next((n for n, l in enumerate(raw, start=1) if _toml_key(l) == text), line_of(mfile, "[release.allow]"))
        if not isinstance(reason, str) or not reason.strip():
            raise ReleaseError("manifest", mpath, line, f"[release.allow] entry {text!r} needs its reason: "
                                                        f'{json.dumps(text)} = "why students see it"')
        if not any(t not in FILLER for t in fragment_tokens(text)):
            raise ReleaseError("manifest", mpath, line, f"[release.allow] entry {text!r} holds no words or numbers")
        out.append(Allowed(text=text, reason=reason, path=mpath, line=line))
    return out


def _provided(mfile: Path, mpath: str, elsewhere: dict[str, set[str]]) -> dict[str, set[str]]:
    """The manifest's `[release.provide]`: `"module:function" = "why"`, functions another
    assignment asks for that this release ships complete on purpose (its own provided code
    needs them). An entry that provides nothing stops the release."""
    import tomllib

    table = tomllib.loads(mfile.read_text(encoding="utf-8")).get("release", {})
    provide = table.get("provide", {}) if isinstance(table, dict) else None
    if not isinstance(provide, dict):
        raise ReleaseError("manifest", mpath, line_of(mfile, "release"),
                           '[release.provide] must be a table of `"nnkit/module.py:function" = "why"` entries')
    raw = mfile.read_text(encoding="utf-8").split("\n")
    out: dict[str, set[str]] = {}
    for key, reason in provide.items():
        line = next((n for n, l in enumerate(raw, start=1) if _toml_key(l) == key), line_of(mfile, "[release.provide]"))
        module, _, function = key.partition(":")
        if not isinstance(reason, str) or not reason.strip():
            raise ReleaseError("manifest", mpath, line, f"[release.provide] entry {key!r} needs its reason: "
                                                        f'{json.dumps(key)} = "why this release ships it complete"')
        if function not in elsewhere.get(module, ()):
            raise ReleaseError("manifest", mpath, line, f"[release.provide] entry {key!r} provides nothing: no other "
                                                        "assignment asks for that function (write it as "
                                                        '"nnkit/module.py:Class.method"), so it ships complete anyway')
        out.setdefault(module, set()).add(function)
    return out


def _toml_key(line: str) -> str | None:
    import tomllib

    try:
        entry = tomllib.loads(line)
    except tomllib.TOMLDecodeError:
        return None
    return next(iter(entry)) if len(entry) == 1 and isinstance(next(iter(entry.values())), str) else None
