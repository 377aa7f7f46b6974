"""Run the calls of a plan on a student's package, in a fresh sandboxed process.

The package's ``.py`` files are copied into a private work folder (so the
runner sees nothing else of the submission and the student's code cannot
change its own sources between runs), next to a copy of ``runner.py``, the
plan and the inputs. One runner process executes every call; if it dies
(``os._exit``, a segfault, a memory or wall-time kill) the call it was running
is marked ``error``/``timeout`` and a fresh runner continues with the calls
after it, at most ``MAX_RESTARTS`` times.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from .compare import Outcome

RUNNER = Path(__file__).with_name("runner.py")
MAX_RESTARTS = 2
MAX_PACKAGE_FILES = 200
MAX_PACKAGE_BYTES = 8 << 20
MAX_OUTPUT_BYTES = 64 << 20


class PackageError(ValueError):
    """The directory given is not a usable nnkit package."""


def copy_package(package_dir, dest_parent):
    """Copy the ``.py`` files of a package into ``dest_parent/nnkit`` (bounded in number and size)."""
    package_dir = Path(package_dir)
    if not (package_dir / "__init__.py").is_file():
        raise PackageError(f"{package_dir} is not a Python package (no __init__.py); pass the nnkit/ folder itself")
    dest = Path(dest_parent) / "nnkit"
    count = size = 0
    for src in sorted(package_dir.rglob("*.py")):
        rel = src.relative_to(package_dir)
        if "__pycache__" in rel.parts or src.is_symlink() or not src.is_file():
            continue
        count += 1
        size += src.stat().st_size
        if count > MAX_PACKAGE_FILES or size > MAX_PACKAGE_BYTES:
            raise PackageError(f"{package_dir} holds more than {MAX_PACKAGE_FILES} .py files or "
                               f"{MAX_PACKAGE_BYTES >> 20} MB of them; is it really the nnkit package?")
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
    return dest


def _sandbox_module():
    try:
        from .. import sandbox
    except ImportError:
        return None
    return sandbox


def _launch(workdir, wall_seconds, use_sandbox):
    """Run the runner once; return (returncode, reason or None)."""
    argv = [sys.executable, "-I", str(workdir / "runner.py"), str(workdir), str(workdir / "pkg")]
    if use_sandbox:
        sandbox = _sandbox_module()
        limits = sandbox.Limits(wall_seconds=wall_seconds, cpu_seconds=int(wall_seconds) + 10,
                                memory_bytes=2 << 30, max_processes=64, output_bytes=1 << 16,
                                file_bytes=MAX_OUTPUT_BYTES)
        res = sandbox.run(argv, writable=[workdir], cwd=workdir, limits=limits)
        return res.returncode, res.reason
    env = {"PATH": os.path.dirname(sys.executable) + ":/usr/bin:/bin", "HOME": str(workdir),
           "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg",
           "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8"}
    try:
        proc = subprocess.run(argv, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=wall_seconds, start_new_session=True)
    except subprocess.TimeoutExpired:
        return -9, "timeout"
    return proc.returncode, None


def _read_outcome(outdir, index):
    meta_path, npz_path = outdir / f"{index}.json", outdir / f"{index}.npz"
    if not meta_path.is_file():
        return None
    try:
        if meta_path.stat().st_size > 1 << 20 or not npz_path.is_file() or npz_path.stat().st_size > MAX_OUTPUT_BYTES:
            return Outcome("error", "the runner's output for this call is missing or too large")
        record = json.loads(meta_path.read_text(encoding="utf-8"))
        with np.load(npz_path, allow_pickle=False) as z:
            arrays = {k: np.asarray(z[k]) for k in z.files}
        return Outcome(str(record["status"]), record.get("error"), dict(record.get("outputs", {})), arrays,
                       dict(record.get("keys", {})), list(record.get("mutated", [])))
    except Exception as exc:  # a corrupted file (the student's process wrote there) is an error, not a crash
        return Outcome("error", f"unreadable runner output for this call: {exc}")


def run_calls(package_dir, calls, *, sandbox=True, wall_seconds=120.0, call_timeout=None):
    """Run every call on the package; one Outcome per call, in order.

    Parameters
    ----------
    package_dir : path of the student's ``nnkit`` folder
    calls : list of ``checks.Call``
    sandbox : bool
        Run inside ``autograder.sandbox`` (bubblewrap). False runs a plain
        subprocess (development only: the student's code then sees the machine).
    wall_seconds : float
        Wall-time limit of one runner process.
    call_timeout : float or None
        Overrides every call's own timeout.

    Returns
    -------
    list of Outcome
    """
    if sandbox:
        mod = _sandbox_module()
        if mod is None or not mod.available():
            why = mod.unavailable_reason() if mod is not None else "autograder.sandbox is missing"
            raise RuntimeError(f"cannot sandbox the trusted checks: {why}. "
                               "Install bubblewrap, or pass sandbox=False on a development machine only.")
    base = tempfile.mkdtemp(prefix="nnkit-trusted-")
    workdir = Path(base)
    try:
        copy_package(package_dir, workdir / "pkg")
        shutil.copyfile(RUNNER, workdir / "runner.py")
        arrays = {}
        plan_calls = []
        for i, call in enumerate(calls):
            keys = {}
            for name, value in call.arrays.items():
                keys[name] = f"{i}:{name}"
                arrays[keys[name]] = np.asarray(value)
            params = {k: v for k, v in call.params.items() if not k.startswith("_")}
            plan_calls.append({"id": call.id, "procedure": call.procedure, "params": params, "arrays": keys,
                               "timeout": call_timeout or call.timeout})
        np.savez(workdir / "inputs.npz", **arrays)
        outcomes: list[Outcome | None] = [None] * len(calls)
        skip: set[int] = set()
        for attempt in range(MAX_RESTARTS + 1):
            (workdir / "plan.json").write_text(json.dumps({"calls": plan_calls, "skip": sorted(skip)}))
            progress = workdir / "progress"
            if progress.exists():
                progress.unlink()
            returncode, reason = _launch(workdir, wall_seconds, sandbox)
            outdir = workdir / "out"
            for i in range(len(calls)):
                if outcomes[i] is None and i not in skip:
                    outcomes[i] = _read_outcome(outdir, i)
            if (workdir / "done").exists():
                break
            started = [int(s) for s in progress.read_text().split()] if progress.exists() else []
            crashed = started[-1] if started else None
            why = {"timeout": "timeout: the runner ran out of time",
                   "memory": "the runner ran out of memory", "output": "the runner printed too much"}.get(
                reason, f"the runner died (exit status {returncode})")
            if crashed is not None and outcomes[crashed] is None:
                outcomes[crashed] = Outcome("timeout" if reason == "timeout" else "error",
                                            f"{why} during this call")
            skip = {i for i, o in enumerate(outcomes) if o is not None}
            if crashed is None or reason == "timeout":
                break  # dies before any call, or out of wall time: restarting would only repeat it
        for i, o in enumerate(outcomes):
            if o is None:
                outcomes[i] = Outcome("error", "not run: the runner died before reaching this call")
        return outcomes
    finally:
        shutil.rmtree(base, ignore_errors=True)
