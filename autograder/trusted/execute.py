"""Run the calls of a plan on a student's package, in a fresh sandboxed process.

The package's ``.py`` files are copied into a private work folder (so the
runner sees nothing else of the submission and the student's code cannot
change its own sources between runs), next to a copy of ``runner.py``, the
plan and the inputs, all written once before the first launch. Inside the
sandbox that folder is READ-ONLY: the runner's only writable place is the
sandbox's private, size-capped ``/tmp``, and this process never reads back
anything from the folder. Results come over the runner's stdout as frames
(``wire.parse_stream``, every budget checked before allocating).

One runner process executes every call; if it dies (``os._exit``, a
segfault, a memory or wall-time kill) or its stream breaks the format, the
call it was running is marked ``error``/``timeout`` and a fresh runner
continues with the calls after it, at most ``MAX_RESTARTS`` times.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

from .compare import Outcome
from .wire import MAX_STREAM_BYTES, parse_stream

RUNNER = Path(__file__).with_name("runner.py")
MAX_RESTARTS = 2
MAX_PACKAGE_FILES = 200
MAX_PACKAGE_BYTES = 8 << 20


class PackageError(ValueError):
    """The directory given is not a usable nnkit package."""


def read_regular(path, limit):
    """At most ``limit + 1`` bytes of ``path`` if it is a regular file (opened without following a link), else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return None
        return f.read(limit + 1)


def copy_package(package_dir, dest_parent):
    """Copy the ``.py`` files of a package into ``dest_parent/nnkit`` (bounded in number and size).

    Links, devices and FIFOs are skipped; every copy is world-readable (the sandboxed
    runner may run as another user) and nothing in it is executable.
    """
    package_dir = Path(package_dir)
    if not (package_dir / "__init__.py").is_file():
        raise PackageError(f"{package_dir} is not a Python package (no __init__.py); pass the nnkit/ folder itself")
    dest = Path(dest_parent) / "nnkit"
    count = size = 0
    too_big = PackageError(f"{package_dir} holds more than {MAX_PACKAGE_FILES} .py files or "
                           f"{MAX_PACKAGE_BYTES >> 20} MB of them; is it really the nnkit package?")
    for src in sorted(package_dir.rglob("*.py")):
        rel = src.relative_to(package_dir)
        if "__pycache__" in rel.parts:
            continue
        data = read_regular(src, MAX_PACKAGE_BYTES - size)
        if data is None:
            continue
        count += 1
        size += len(data)
        if count > MAX_PACKAGE_FILES or size > MAX_PACKAGE_BYTES:
            raise too_big
        target = dest / rel
        _make_dirs(target.parent, Path(dest_parent))
        _write_readable(target, data)
    return dest


def _make_dirs(path, root):
    """mkdir -p ``path`` below ``root``, every new folder 0755."""
    path.mkdir(parents=True, exist_ok=True)
    while path != root and root in path.parents:
        os.chmod(path, 0o755)
        path = path.parent


def _write_readable(path, data):
    """Write a file that the sandboxed runner (possibly another uid) can read: 0644."""
    path.write_bytes(data)
    os.chmod(path, 0o644)


def _sandbox_module():
    try:
        from ..sandbox import bwrap as sandbox
    except ImportError:
        return None
    return sandbox


def _launch(workdir, first, wall_seconds, use_sandbox):
    """Run the runner once from call ``first``; return (returncode, reason or None, stdout bytes)."""
    argv = [sys.executable, "-I", str(workdir / "runner.py"), str(workdir), str(workdir / "pkg"), str(first)]
    if use_sandbox:
        sandbox = _sandbox_module()
        from ..sandbox.limits import runner_limits

        limits = runner_limits(wall_seconds, MAX_STREAM_BYTES)
        # The work folder is readable only: the runner answers on stdout and nothing it could
        # have written is ever opened here.
        res = sandbox.run(argv, readable=[workdir], writable=[], cwd=workdir, limits=limits)
        return res.returncode, res.reason, res.stdout
    return _run_plain(argv, workdir, wall_seconds)


def _run_plain(argv, workdir, wall_seconds):
    """Development only: the runner in a plain subprocess, its stdout read up to the budget."""
    env = {"PATH": os.path.dirname(sys.executable) + ":/usr/bin:/bin", "HOME": str(workdir),
           "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg",
           "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8"}
    proc = subprocess.Popen(argv, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    chunks, total, over = [], [0], threading.Event()

    def read():
        while True:
            data = os.read(proc.stdout.fileno(), 1 << 16)
            if not data:
                return
            if total[0] + len(data) > MAX_STREAM_BYTES:
                over.set()
                _kill_group(proc)
                return
            chunks.append(data)
            total[0] += len(data)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reason = None
    try:
        proc.wait(timeout=wall_seconds)
    except subprocess.TimeoutExpired:
        reason = "timeout"
        _kill_group(proc)
        proc.wait()
    reader.join(5)
    proc.stdout.close()
    if over.is_set():
        reason = "output"
    return proc.returncode, reason, b"".join(chunks)


def _kill_group(proc):
    try:
        os.killpg(proc.pid, 9)
    except (ProcessLookupError, PermissionError):
        pass


def _prepare(workdir, package_dir, calls, call_timeout):
    """Write everything the runner reads, once: the package copy, runner.py, plan.json, inputs.npz."""
    os.chmod(workdir, 0o755)  # mkdtemp makes it 0700; the runner may run as another uid
    copy_package(package_dir, workdir / "pkg")
    os.chmod(workdir / "pkg", 0o755)
    _write_readable(workdir / "runner.py", RUNNER.read_bytes())
    arrays, plan_calls = {}, []
    for i, call in enumerate(calls):
        keys = {}
        for name, value in call.arrays.items():
            keys[name] = f"{i}:{name}"
            arrays[keys[name]] = np.asarray(value)
        params = {k: v for k, v in call.params.items() if not k.startswith("_")}
        plan_calls.append({"id": call.id, "procedure": call.procedure, "params": params, "arrays": keys,
                           "timeout": call_timeout or call.timeout})
    _write_readable(workdir / "plan.json", json.dumps({"calls": plan_calls}).encode())
    np.savez(workdir / "inputs.npz", **arrays)
    os.chmod(workdir / "inputs.npz", 0o644)


_DEATH = {"timeout": "timeout: the runner ran out of time", "memory": "the runner ran out of memory",
          "output": "the runner printed too much"}


def run_calls(package_dir, calls, *, sandbox=True, wall_seconds=120.0, call_timeout=None):
    """Run every call on the package; one Outcome per call, in order.

    Parameters
    ----------
    package_dir : path of the student's ``nnkit`` folder
    calls : list of ``checks.Call``
    sandbox : bool
        Run inside ``autograder.sandbox.bwrap`` (bubblewrap). False runs a plain
        subprocess (development only: the student's code then sees the machine).
    wall_seconds : float
        Wall-time limit of one runner process.
    call_timeout : float or None
        Overrides every call's own timeout.

    Returns
    -------
    list of Outcome
        A call whose result could not be read is an ``error`` (or ``timeout``) with the reason.
    """
    if sandbox:
        mod = _sandbox_module()
        if mod is None or not mod.available():
            why = mod.unavailable_reason() if mod is not None else "autograder.sandbox.bwrap is missing"
            raise RuntimeError(f"cannot sandbox the trusted checks: {why}. "
                               "Install bubblewrap, or pass sandbox=False on a development machine only.")
    workdir = Path(tempfile.mkdtemp(prefix="nnkit-trusted-"))
    try:
        _prepare(workdir, package_dir, calls, call_timeout)
        outcomes: list[Outcome | None] = [None] * len(calls)
        first, why_not_run = 0, "not run: the runner died before reaching this call"
        for _ in range(MAX_RESTARTS + 1):
            returncode, reason, stdout = _launch(workdir, first, wall_seconds, sandbox)
            first, why_not_run = _take(outcomes, first, stdout, returncode, reason)
            if first is None:
                break
        for i, o in enumerate(outcomes):
            if o is None:
                outcomes[i] = Outcome("error", why_not_run)
        return outcomes
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _take(outcomes, first, stdout, returncode, reason):
    """Record one launch's outcomes; return (the call to restart from or None, why later calls did not run)."""
    try:
        parsed = parse_stream(stdout, first, len(outcomes))
    except Exception as exc:  # noqa: BLE001 - a parser bug must cost this submission points, not the run
        parsed = None
        violation, affected = f"{type(exc).__name__}: {exc}", None
    else:
        violation, affected = parsed.violation, parsed.affected
    if parsed is not None and parsed.done:
        outcomes[first:] = [parsed.outcomes[i] for i in range(first, len(outcomes))]
        return None, ""
    if violation is not None:
        # Frames the runner did not write: nothing of this launch is believed.
        last = len(outcomes) - 1 if affected is None else affected
        for i in range(first, last + 1):
            outcomes[i] = Outcome("error", f"the runner's output was malformed during this call ({violation})"
                                  if i == last else "not believed: frames that the runner did not write appeared "
                                  f"in its output later, during call {last} ({violation})")
        why = f"not run: the runner's output was malformed before this call ({violation})"
        return (None, why) if affected is None or last + 1 >= len(outcomes) else (last + 1, why)
    for i, o in parsed.outcomes.items():
        outcomes[i] = o
    died = _DEATH.get(reason, f"the runner died (exit status {returncode})")
    if affected is None:
        return None, f"not run: {died} before reaching this call"  # a restart would only repeat it
    outcomes[affected] = Outcome("timeout" if reason == "timeout" else "error", f"{died} during this call")
    if reason == "timeout" or affected + 1 >= len(outcomes):
        return None, f"not run: {died}"
    return affected + 1, f"not run: {died}"
