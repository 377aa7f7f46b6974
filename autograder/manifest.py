"""Read an assignment's manifest, `source/<assignment>/manifest.toml`.

The manifest is the single statement of what an assignment is made of; see the
commented example in `source/fcnets/manifest.toml`.
"""
from __future__ import annotations

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
    student_modules: tuple[str, ...]
    saved_models: tuple[str, ...]
    datasets: tuple[str, ...]
    thresholds: dict[str, dict[str, float]] = field(default_factory=dict)
    points: dict[str, float] = field(default_factory=dict)
    #: Wall seconds one submission may take in a grading worker, everything included
    #: (kernels, trusted checks, feedback): `[grading] wall_seconds`.
    wall_seconds: float = DEFAULT_WALL_SECONDS
    #: `[deadline]`: the due date and the late policy (autograder.grading.deadline), or None.
    deadline: "Deadline | None" = None
    path: Path | None = None

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
    unknown = set(thresholds) - set(datasets)
    if unknown:
        raise ManifestError(f"{path}: thresholds for undeclared datasets {sorted(unknown)}; add them to `datasets`")
    return Manifest(
        assignment=data["assignment"],
        title=data["title"],
        notebooks=_strings(data, "notebooks", path),
        student_modules=_strings(data, "student_modules", path),
        saved_models=_strings(data, "saved_models", path),
        datasets=datasets,
        thresholds={d: {k: float(v) for k, v in c.items()} for d, c in thresholds.items()},
        points={k: float(v) for k, v in points.items()},
        wall_seconds=float(wall),
        deadline=deadline,
        path=path,
    )
