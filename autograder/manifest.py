"""Read an assignment's manifest, `source/<assignment>/manifest.toml`.

The manifest is the single statement of what an assignment is made of; see the
commented example of the first assignment, `source/*/manifest.toml`, and the README's
"Adding an assignment".

Two forms are read. The source manifest says what the release ships of nnkit
in its `[package]` table: module -> the functions students write there (a
`name`, or `Class.method`; `[]` ships the module complete); every other module
is not shipped. The release's own manifest.toml (written by the release, read
by students' make_submission.py) lists only the result, `student_modules`.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from . import REPO_ROOT
from .grading.deadline import Deadline, DeadlineError, parse_deadline


#: A submission's grading budget when the manifest states none.
DEFAULT_WALL_SECONDS = 300.0


class ManifestError(ValueError):
    """The manifest is missing, malformed or contradicts itself."""


@dataclass(frozen=True)
class Manifest:
    assignment: str
    title: str
    notebooks: tuple[str, ...]
    #: The nnkit modules students edit and are graded from their own copy: those with
    #: student functions in `package` (a release manifest lists them directly).
    student_modules: tuple[str, ...]
    saved_models: tuple[str, ...]
    datasets: tuple[str, ...]
    #: `[package]`: module ("nnkit/layers.py") -> the functions students write in it, in the
    #: order given; () ships the module complete. None in a release's manifest.
    package: "dict[str, tuple[str, ...]] | None" = None
    #: `files`: files of source/<assignment>/ the release ships as they are (configs, ...).
    files: tuple[str, ...] = ()
    #: `[demo] bugs`: (module, text of the reference, replacement) edits the instructor demo's
    #: `typical_bugs` submission makes; None when the assignment has no `[demo]` table.
    demo_bugs: "tuple[tuple[str, str, str], ...] | None" = None
    thresholds: dict[str, dict[str, float]] = field(default_factory=dict)
    points: dict[str, float] = field(default_factory=dict)
    #: Wall seconds one submission may take in a grading worker, everything included
    #: (kernels, trusted checks, feedback): `[grading] wall_seconds`.
    wall_seconds: float = DEFAULT_WALL_SECONDS
    #: `[deadline]`: the due date and the late policy (autograder.grading.deadline), or None.
    deadline: "Deadline | None" = None
    path: Path | None = None

    def student_functions(self, module: str) -> tuple[str, ...]:
        """The functions students write in `module` (empty when it ships complete or is not shipped)."""
        return tuple((self.package or {}).get(module, ()))

    @property
    def submission_files(self) -> tuple[str, ...]:
        """Every file a submission may contain, relative to the assignment folder."""
        return self.notebooks + self.student_modules + self.saved_models

    def threshold(self, dataset: str, check: str) -> float:
        """The accuracy a check must reach on `dataset`; a clear error if none is declared."""
        try:
            return float(self.thresholds[dataset][check])
        except KeyError:
            raise ManifestError(
                f"{self.path}: no threshold {check!r} for dataset {dataset!r}; "
                f"declare it under [thresholds.{dataset}]"
            ) from None


def _strings(data: dict, key: str, path: Path) -> tuple[str, ...]:
    value = data.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ManifestError(f"{path}: `{key}` must be a list of strings")
    if len(set(value)) != len(value):
        raise ManifestError(f"{path}: `{key}` lists a name twice")
    for v in value:
        if v.startswith("/") or ".." in Path(v).parts:
            raise ManifestError(f"{path}: `{key}` entry {v!r} must be a relative path inside the assignment")
    return tuple(value)


_FUNCTION = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)?")


def _package(data: dict, path: Path) -> dict[str, tuple[str, ...]]:
    """The `[package]` table: module path -> student functions, checked."""
    table = data["package"]
    if not isinstance(table, dict) or not table:
        raise ManifestError(f"{path}: [package] must map nnkit modules to the functions students write there, "
                            'e.g. "nnkit/layers.py" = ["affine_forward"]')
    out = {}
    for module, functions in table.items():
        parts = Path(module).parts
        if not (module.startswith("nnkit/") and module.endswith(".py")) or ".." in parts or module.startswith("/"):
            raise ManifestError(f"{path}: [package] key {module!r} must be a module of the package, "
                                'e.g. "nnkit/layers.py"')
        if not isinstance(functions, list) or not all(isinstance(f, str) for f in functions):
            raise ManifestError(f"{path}: [package] {module!r} must be a list of function names "
                                "([] ships the module complete)")
        bad = [f for f in functions if not _FUNCTION.fullmatch(f)]
        if bad:
            raise ManifestError(f"{path}: [package] {module!r}: {bad[0]!r} is not a function name "
                                '("name" or "Class.method")')
        if len(set(functions)) != len(functions):
            raise ManifestError(f"{path}: [package] {module!r} lists a function twice")
        out[module] = tuple(functions)
    return out


def list_assignments(root: Path = REPO_ROOT) -> list[str]:
    """Every assignment of the kit: the folders of ``root/source/`` that hold a ``manifest.toml``."""
    return sorted(p.parent.name for p in (Path(root) / "source").glob("*/manifest.toml"))


def load_manifest(assignment: str | Path, root: Path = REPO_ROOT) -> Manifest:
    """Load the manifest of an assignment name (looked up in `root/source/`) or of a manifest path."""
    path = Path(assignment)
    if path.suffix != ".toml":
        path = root / "source" / str(assignment) / "manifest.toml"
    if not path.is_file():
        known = ", ".join(list_assignments(root)) or "none"
        raise ManifestError(f"no manifest at {path}: every assignment needs source/<assignment>/manifest.toml "
                            f"(assignments here: {known})")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"{path}: not valid TOML: {exc}") from None
    for key in ("assignment", "title"):
        if not isinstance(data.get(key), str):
            raise ManifestError(f"{path}: `{key}` must be a string")
    thresholds = data.get("thresholds", {})
    for dataset, checks in thresholds.items():
        for check, value in checks.items():
            if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ManifestError(f"{path}: threshold {dataset}.{check} = {value!r} must be a fraction in [0, 1]")
    points = data.get("points", {})
    for grade_id, value in points.items():
        if not isinstance(value, (int, float)) or value < 0:
            raise ManifestError(f"{path}: points for {grade_id!r} must be a non-negative number")
    wall = data.get("grading", {}).get("wall_seconds", DEFAULT_WALL_SECONDS)
    if isinstance(wall, bool) or not isinstance(wall, (int, float)) or not 10 <= wall <= 24 * 3600:
        raise ManifestError(f"{path}: [grading] wall_seconds = {wall!r} must be a number of seconds in [10, 86400]")
    try:
        deadline = parse_deadline(data.get("deadline"), str(path))
    except DeadlineError as exc:
        raise ManifestError(str(exc)) from None
    datasets = _strings(data, "datasets", path)
    if "package" in data and "student_modules" in data:
        raise ManifestError(f"{path}: give either [package] (a source manifest) or student_modules (a release's), "
                            "not both: the student modules are the [package] modules with functions listed")
    if "package" in data:
        package = _package(data, path)
        student_modules = tuple(m for m, fns in package.items() if fns)
    elif "student_modules" in data:
        package, student_modules = None, _strings(data, "student_modules", path)
    else:
        raise ManifestError(f"{path}: no [package] table: say which nnkit modules the release ships and which "
                            'functions students write there, e.g. "nnkit/layers.py" = ["affine_forward"]')
    files = _strings(data, "files", path) if "files" in data else ()
    demo_bugs = None
    if "demo" in data:
        bugs = data["demo"].get("bugs") if isinstance(data["demo"], dict) else None
        if (not isinstance(bugs, list) or not bugs
                or not all(isinstance(b, list) and len(b) == 3 and all(isinstance(s, str) for s in b) for b in bugs)):
            raise ManifestError(f"{path}: [demo] bugs must be a non-empty list of [module, reference text, "
                                "replacement] triples of strings")
        demo_bugs = tuple(tuple(b) for b in bugs)
    unknown = set(thresholds) - set(datasets)
    if unknown:
        raise ManifestError(f"{path}: thresholds for undeclared datasets {sorted(unknown)}; add them to `datasets`")
    return Manifest(
        assignment=data["assignment"],
        title=data["title"],
        notebooks=_strings(data, "notebooks", path),
        student_modules=student_modules,
        saved_models=_strings(data, "saved_models", path),
        datasets=datasets,
        thresholds={d: {k: float(v) for k, v in c.items()} for d, c in thresholds.items()},
        points={k: float(v) for k, v in points.items()},
        wall_seconds=float(wall),
        deadline=deadline,
        package=package,
        files=files,
        demo_bugs=demo_bugs,
        path=path,
    )
