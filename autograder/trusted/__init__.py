"""Trusted checks: grade a student's nnkit package outside the student's kernel.

``check_package`` runs every check of an assignment against the package at a
path: the student's code runs in a fresh sandboxed process that imports only
that package (``runner.py``), the expected values are computed here with the
reference package ``source/nnkit``, and only plain arrays cross the boundary.
``check_models`` evaluates saved models with the reference forward pass on the
grader's own data split.

Result format (also printed by ``python -m autograder check-package PATH --assignment A --json``)::

    {"score": S, "max_score": M,
     "checks": [{"id", "grade_id", "status": "passed|failed|error|timeout", "points", "max_points", "message"}],
     "grade_ids": {grade_id: {"points", "max_points", "status"}},
     "covered_grade_ids": [...], "seed_source": "...", "warnings": [...]}

``covered_grade_ids(assignment)`` names, without running any code, the grade ids
whose points the trusted checks score; every one of them has an entry in the
report's ``grade_ids`` (a check that could not run scores 0 with its reason),
so a grader can take those points from the trusted verdict only.
"""
from __future__ import annotations

import hashlib
import json
import sys
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np

from . import runner as _runner
from .compare import Outcome
from .execute import PackageError, run_calls
from .models import check_models
from .reference import reference_module
from .seeds import SecretError, derive_seed, resolve_secret
from .spec import Spec, SpecError, load_spec

__all__ = ["check_package", "check_package_command", "check_models", "covered_grade_ids", "derive_seed",
           "build_report", "has_trusted_checks", "points_for", "reference_outcomes", "PackageError", "SecretError",
           "SpecError"]


def has_trusted_checks(assignment) -> bool:
    """Whether the assignment has a trusted-check spec (``source/<assignment>/trusted_checks.py``)."""
    return load_spec(assignment) is not None


def _spec(assignment) -> Spec:
    spec = load_spec(assignment)
    if spec is None:
        raise ValueError(f"no trusted checks for assignment {assignment!r}: "
                         f"source/{assignment}/trusted_checks.py does not exist")
    return spec


# Reference outcomes of the last few (spec, seed) pairs (a class is graded student after
# student, each with its own seed; the mutation suite reuses one seed).
_reference_cache: OrderedDict[tuple, list[Outcome]] = OrderedDict()
_CACHE_SEEDS = 8


def reference_outcomes(seed, calls, spec: Spec | None = None):
    """The reference's outcome of every call (computed once per spec and seed in this process)."""
    key = (None if spec is None else str(spec.path), seed)
    if key in _reference_cache:
        _reference_cache.move_to_end(key)
        return _reference_cache[key]
    state = np.random.get_state()  # the procedures seed numpy's global generator; give the caller theirs back
    old = np.seterr(all="ignore")
    outcomes = []
    try:
        for call in calls:
            try:
                outputs, mutated = _runner.run_procedure(call.procedure, reference_module, call.arrays, call.params)
                flat, keys = _runner.flatten_outputs(outputs)
                infos, arrays = {}, {}
                for name, value in flat.items():
                    infos[name], array = _runner.describe(value)
                    if array is not None:
                        arrays[name] = array
                outcome = Outcome("ok", None, infos, arrays, keys, mutated)
                if spec is not None and spec.add_variant_references is not None:
                    spec.add_variant_references(call, outcome)
            except Exception as exc:  # a broken reference must show, not crash grading
                outcome = Outcome("raised", f"{type(exc).__name__}: {exc}")
            outcomes.append(outcome)
    finally:
        np.random.set_state(state)
        np.seterr(**old)
    _reference_cache[key] = outcomes
    while len(_reference_cache) > _CACHE_SEEDS:
        _reference_cache.popitem(last=False)
    return outcomes


def points_for(assignment):
    """Points per grade id the code checks score: the manifest's ``[points]``, else 1 each."""
    from ..manifest import load_manifest

    declared = load_manifest(assignment).points
    return {grade_id: float(declared.get(grade_id, 1.0)) for grade_id in covered_grade_ids(assignment, models=False)}


def covered_grade_ids(assignment, *, models=True):
    """The grade ids whose points the trusted checks score, computed without running any code.

    Parameters
    ----------
    assignment : str
    models : bool
        Include the saved-model grade ids of the manifest's ``saved_models`` (scored when
        ``check_package`` gets ``dataset`` and ``models_dir``, as the grader passes them).

    Returns
    -------
    frozenset of str
        Empty for an assignment without trusted checks.
    """
    spec = load_spec(assignment)
    if spec is None:
        return frozenset()
    covered = set(spec.grade_ids)
    if models:
        from ..manifest import load_manifest

        saved = load_manifest(assignment).saved_models
        covered |= {m.grade_id for rel, m in spec.models.items() if rel in saved}
    return frozenset(covered)


def _cover_every_grade_id(report, covered, points):
    """Give every covered grade id an entry: one with no check at all scores 0, with the reason."""
    for grade_id in sorted(covered - set(report["grade_ids"])):
        max_points = float(points.get(grade_id, 1.0))
        report["checks"].append({"id": f"{grade_id}.missing", "grade_id": grade_id, "status": "error",
                                 "points": 0.0, "max_points": max_points,
                                 "message": "no trusted check ran for this grade id (a grader bug, not yours)"})
        report["grade_ids"][grade_id] = {"points": 0.0, "max_points": max_points, "status": "error"}
        report["max_score"] = round(report["max_score"] + max_points, 6)
    report["covered_grade_ids"] = sorted(covered)


def _verdict(check, ref, got):
    """(status, message) of one check."""
    if ref.status != "ok":
        return "error", f"the reference failed on this call (a grader bug, not yours): {ref.error}"
    if got.status == "timeout":
        return "timeout", got.error or "timeout"
    if got.status == "error":
        return "error", got.error or "the runner failed"
    if got.status == "raised":
        return "failed", f"raised an exception:\n{got.error}"
    try:
        problem = check.verify(ref, got)
    except Exception as exc:  # malformed student output must never crash the grader
        problem = f"could not compare the result ({type(exc).__name__}: {exc})"
    return ("passed", "") if problem is None else ("failed", problem)


def build_report(checks, calls, ref_outcomes, outcomes, points):
    """Score every check and group the points by grade_id."""
    index = {c.id: i for i, c in enumerate(calls)}
    weights: dict[str, float] = {}
    for c in checks:
        weights[c.grade_id] = weights.get(c.grade_id, 0.0) + c.weight
    rows, by_grade = [], {}
    score = max_score = 0.0
    for c in checks:
        i = index[c.call]
        status, message = _verdict(c, ref_outcomes[i], outcomes[i])
        max_points = points.get(c.grade_id, 1.0) * c.weight / weights[c.grade_id]
        got = max_points if status == "passed" else 0.0
        score, max_score = score + got, max_score + max_points
        rows.append({"id": c.id, "grade_id": c.grade_id, "status": status, "points": round(got, 6),
                     "max_points": round(max_points, 6), "message": message})
        g = by_grade.setdefault(c.grade_id, {"points": 0.0, "max_points": 0.0, "status": "passed"})
        g["points"] += got
        g["max_points"] += max_points
        if status != "passed" and g["status"] == "passed":
            g["status"] = status
    for g in by_grade.values():
        g["points"] = round(g["points"], 6)
        g["max_points"] = round(g["max_points"], 6)
    return {"score": round(score, 6), "max_score": round(max_score, 6),
            "checks": rows, "grade_ids": by_grade}


def check_package(package_dir, assignment, seed=None, student_id=None, secret=None, sandbox=True, *,
                  dataset=None, models_dir=None, call_timeout=None, wall_seconds=120.0):
    """Run the trusted checks of ``assignment`` on the nnkit package at ``package_dir``.

    Parameters
    ----------
    package_dir : path
        The student's ``nnkit`` folder itself.
    assignment : str
        One with a trusted-check spec (``has_trusted_checks``).
    seed : int or None
        Input seed. None derives it from ``student_id`` (or, without one, from
        the package's path) with ``derive_seed`` and the course secret.
    student_id : str or None
    secret : str, bytes, Path or None
        The course secret (see ``seeds.resolve_secret``); None reads the environment.
    sandbox : bool
        False runs the student's code in a plain subprocess (development only).
    dataset : str or None
        With ``models_dir``: also evaluate the saved models on this dataset (``check_models``).
    models_dir : path or None
        The submission's ``models/`` folder.
    call_timeout : float or None
        Seconds allowed per call (default: each call's own, 10 to 30 s).
    wall_seconds : float
        Wall-time limit of one runner process.

    Returns
    -------
    dict
        See the module docstring. ``grade_ids`` has an entry for every grade id of
        ``covered_grade_ids(assignment, models=...)`` (with models when ``dataset`` and
        ``models_dir`` are given); one whose checks could not run scores 0 with the reason.
    """
    spec = _spec(assignment)
    warnings = []
    if seed is None:
        key, configured = resolve_secret(secret)
        if not configured:
            warnings.append("no course secret (NNKIT_COURSE_SECRET): inputs are predictable; set it for a real course")
        seed = derive_seed(student_id if student_id is not None else str(Path(package_dir).resolve()), key)
        seed_source = "student_id" if student_id is not None else "path"
    else:
        seed = int(seed)
        seed_source = "seed"
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    started = time.perf_counter()
    calls, checks = spec.build_plan(seed)
    refs = reference_outcomes(seed, calls, spec)
    outcomes = run_calls(package_dir, calls, sandbox=sandbox, call_timeout=call_timeout, wall_seconds=wall_seconds)
    points = points_for(assignment)
    report = build_report(checks, calls, refs, outcomes, points)
    with_models = models_dir is not None and dataset is not None
    if with_models:
        models = check_models(Path(models_dir).parent, assignment, dataset)
        report["checks"].extend(models["checks"])
        report["grade_ids"].update(models["grade_ids"])
        report["score"] = round(report["score"] + models["score"], 6)
        report["max_score"] = round(report["max_score"] + models["max_score"], 6)
        from ..manifest import load_manifest

        points = {**points, **{g: float(v) for g, v in load_manifest(assignment).points.items()}}
    _cover_every_grade_id(report, covered_grade_ids(assignment, models=with_models), points)
    report["seed_source"] = seed_source
    report["seed_digest"] = hashlib.sha256(str(seed).encode()).hexdigest()[:12]
    report["sandboxed"] = bool(sandbox)
    report["seconds"] = round(time.perf_counter() - started, 3)
    report["warnings"] = warnings
    return report


def check_package_command(path, assignment, json=False, seed=None):
    """``python -m autograder check-package PATH --assignment A [--json] [--seed S]``.

    When a ``models/`` folder sits next to the package (a release or submission
    folder), the saved models are evaluated too, on ``NNKIT_DATASET`` (default
    ``embedded``).
    """
    import json as _json

    from ..config import grading_dataset
    from ..sandbox import bwrap as _sandbox

    use_sandbox = _sandbox.available()
    models_dir = Path(path).resolve().parent / "models"
    try:
        if seed is not None and not str(seed).isdigit():
            raise ValueError(f"--seed must be a non-negative integer, got {seed!r}")
        report = check_package(path, assignment, seed=None if seed is None else int(seed), sandbox=use_sandbox,
                               dataset=grading_dataset() if models_dir.is_dir() else None,
                               models_dir=models_dir if models_dir.is_dir() else None)
    except (PackageError, SecretError, SpecError, ValueError) as exc:
        print(f"check-package: {exc}", file=sys.stderr)
        return 2
    if not use_sandbox:
        report["warnings"].append(f"not sandboxed: {_sandbox.unavailable_reason()}")
    if json:
        print(_json.dumps(report))
    else:
        for row in report["checks"]:
            mark = {"passed": "ok  ", "failed": "FAIL", "error": "ERR ", "timeout": "TIME"}[row["status"]]
            print(f"{mark} {row['points']:5.2f}/{row['max_points']:4.2f}  {row['grade_id']:26s} {row['id']}")
            if row["message"]:
                print("         " + row["message"].replace("\n", "\n         ")[:600])
        print(f"score {report['score']:.2f} / {report['max_score']:.2f}")
        for w in report["warnings"]:
            print(f"warning: {w}", file=sys.stderr)
    return 0
