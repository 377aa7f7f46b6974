"""An assignment's trusted-check spec: ``source/<assignment>/trusted_checks.py``.

The engine (this package) knows how to run calls in a sandbox, compare outcomes
and evaluate saved models; the spec says what to check. A spec module defines

- ``build_plan(plan: Plan) -> None``: add the calls and checks of one seed to
  ``plan`` (inputs drawn from ``plan.rng``), see ``plan.py``;
- ``MODELS`` (optional): saved model path (as the manifest's ``saved_models``
  lists it) -> :class:`ModelCheck`;
- ``add_variant_references(call, outcome)`` (optional): add accepted-variant
  reference arrays to the reference's outcome of a call.

The spec is the instructor's code (it runs in the grader, never with student
code); an assignment without the file has no trusted checks, and its grade cells
score in the kernel alone.
"""
from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable

from .. import REPO_ROOT
from .plan import Call, Check, Plan

SPEC_FILE = "trusted_checks.py"


@dataclass(frozen=True)
class ModelCheck:
    """How one saved model is graded: loaded with the budgets of ``models.py``, scored on the grader's split.

    grade_id : the grade cell whose points it earns.
    classes : the nnkit model classes the file may hold (anything else scores 0).
    inputs : ``"images"`` (``data_utils.load_dataset``), ``"flat"`` (``data_utils.load_flat_dataset``),
        ``"gray"`` (``analysis.load_digits``: 1x32x32 digits) or ``"features"``
        (``features.load_feature_dataset``).
    thresholds : (threshold key of the manifest's ``[thresholds.<dataset>]``, split) pairs.
    """

    grade_id: str
    classes: tuple[str, ...]
    inputs: str
    thresholds: tuple[tuple[str, str], ...]


class SpecError(RuntimeError):
    """The spec file cannot be loaded or is malformed (a grader bug: the message names the file)."""


@dataclass(frozen=True)
class Spec:
    assignment: str
    path: Path
    build: Callable[[Plan], None]
    models: dict[str, ModelCheck]
    add_variant_references: Callable | None = None

    def build_plan(self, seed: int) -> tuple[list[Call], list[Check]]:
        """All calls and checks for one seed (non-negative; see ``derive_seed``)."""
        plan = Plan(seed)
        self.build(plan)
        ids = [c.id for c in plan.calls]
        if len(ids) != len(set(ids)):
            raise SpecError(f"{self.path}: two calls share an id")
        known = set(ids)
        for check in plan.checks:
            if check.call not in known:
                raise SpecError(f"{self.path}: check {check.id!r} judges an unknown call {check.call!r}")
        return plan.calls, plan.checks

    @cached_property
    def grade_ids(self) -> frozenset[str]:
        """The grade ids its checks score: the same for every seed, so built once, for seed 0
        (a plan takes 65 ms, and every trusted check of a submission asked for these twice)."""
        _, checks = self.build_plan(0)
        return frozenset(c.grade_id for c in checks)


_loaded: dict[tuple[str, float], Spec] = {}


def spec_path(assignment: str, root: Path = REPO_ROOT) -> Path:
    return Path(root) / "source" / assignment / SPEC_FILE


def load_spec(assignment: str, root: Path = REPO_ROOT) -> Spec | None:
    """The assignment's spec, or None when it has none (loaded once per file version)."""
    path = spec_path(assignment, root)
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return None
    key = (str(path), mtime)
    if key in _loaded:
        return _loaded[key]
    name = f"nnkit_trusted_spec_{assignment}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up by name
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        raise SpecError(f"{path}: cannot be loaded ({type(exc).__name__}: {exc})") from exc
    build = getattr(module, "build_plan", None)
    if not callable(build):
        raise SpecError(f"{path}: defines no build_plan(plan) function")
    models = dict(getattr(module, "MODELS", {}))
    for rel, check in models.items():
        if not isinstance(check, ModelCheck):
            raise SpecError(f"{path}: MODELS[{rel!r}] must be a ModelCheck")
    spec = Spec(assignment, path, build, models, getattr(module, "add_variant_references", None))
    _loaded[key] = spec
    return spec
