"""The grading workers: processes that grade one submission at a time; a worker that hangs or dies
is killed and replaced.

Workers are forked by multiprocessing's *forkserver*, a fresh interpreter (nothing of the
coordinator's state, threads or database connections) started at the beginning of a run
(:func:`start_worker_server`) that imports nbgrader and the grading stages once
(:data:`PRELOAD`) while the coordinator builds the template course and runs the preflight. A
worker is then a fork of it, ready at once, instead of a spawned interpreter that spends
seconds importing nbgrader; a replaced worker, and every later run of the same process
(a test session), costs a fork too.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import time
import traceback

from .settings import Settings
from .submission import grade_submission
from .template import Template

#: What the worker server imports before it forks any worker. ``autograder`` comes first (its
#: ``__init__`` keeps jsonschema's slow optional import out); then nbgrader and what grading
#: one submission imports, so that a forked worker starts grading at once.
PRELOAD = ["autograder", "autograder.grading.pool", "nbgrader.apps", "nbgrader.converters",
           "nbgrader.preprocessors", "nbclient", "jupyter_client.manager", "autograder.nbgrader_course",
           "autograder.grading.repair", "autograder.grading.feedback", "autograder.sandbox.kernel",
           "autograder.trusted"]


def worker_context():
    """The multiprocessing context workers are made with: the forkserver, preloading PRELOAD."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


def start_worker_server() -> None:
    """Start the worker server now (it imports PRELOAD in the background), or keep the running one.

    Called when a run begins, so that its imports overlap the coordinator's own start-up.
    """
    from multiprocessing import forkserver

    worker_context()
    forkserver.ensure_running()


def die_with_parent() -> None:
    """Have the kernel SIGKILL this process when its parent dies (kill -9 of the coordinator included)."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the coordinator's own clean-up still applies
        pass


def _worker_main(conn, slot: int, template: Template, settings: Settings, scratch: str, environ: dict) -> None:
    """A warm worker: nbgrader imported (by the server it was forked from), then one submission
    per message until None. `slot` is its place in the pool (a replacement takes the place of
    the worker it replaces); `environ` is the coordinator's environment when it made the pool
    (the server's own is the one it had when the server started)."""
    import tempfile
    import warnings

    # The parent is the worker server, which exits when the coordinator does (its "alive" pipe
    # closes): so no worker, and no sandbox (--die-with-parent), outlives the coordinator.
    die_with_parent()
    if os.getppid() == 1:
        return  # the server died before the line above took effect
    os.setsid()  # its own process group, so the coordinator can kill it with every child
    os.environ.clear()
    os.environ.update(environ)
    os.environ.pop("PYTHONPATH", None)
    tempfile.tempdir = None  # TMPDIR as the coordinator has it, not as the server found it
    # nbgrader 0.9.6 + SQLAlchemy 2: "Object ... not in session" on every submission; harmless.
    warnings.filterwarnings("ignore", message=r".*not in session.*")
    import nbgrader.apps  # noqa: F401  (preloaded by the server: already imported)

    from ..sandbox import bwrap

    bwrap.use_worker_uid(slot)  # without a pids cgroup, a process count of its own

    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        conn.send(grade_job(template, settings, job, scratch))


def grade_job(template: Template, settings: Settings, job: dict, scratch: str) -> dict:
    """One job (`student_id`, `workdir`, `ingest`) graded; a grader failure is a result with "crash"."""
    try:
        return grade_submission(template, settings, job["student_id"], job["workdir"], job["ingest"], scratch)
    except Exception:
        return {"student_id": job["student_id"], "crash": traceback.format_exc()[-2000:]}


class WorkerPool:
    """`n` worker processes (forked by the worker server); a job that overruns its deadline kills
    and replaces its worker.

    `run` pulls jobs from an iterator only when a worker is free, so a class is ingested
    one submission at a time; `requeue` puts a job back in front (a retry).
    """

    def __init__(self, n: int, args: tuple):
        self.ctx = worker_context()
        self.args = (*args, dict(os.environ))
        self.workers = [self._spawn(slot) for slot in range(max(1, n))]
        self._again: list[dict] = []

    def _spawn(self, slot: int) -> dict:
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(target=_worker_main, args=(child, slot, *self.args), daemon=True)
        proc.start()
        child.close()
        return {"proc": proc, "conn": parent, "job": None, "deadline": None, "slot": slot}

    def _kill(self, w: dict) -> None:
        try:
            os.killpg(w["proc"].pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        w["proc"].kill()
        w["proc"].join(10)
        w["conn"].close()

    def requeue(self, job: dict) -> None:
        self._again.append(job)

    def run(self, jobs, deadline: float):
        """Yield `(job, result)` as workers finish; a result holds "crash" when the worker failed."""
        from multiprocessing.connection import wait

        source = iter(jobs)
        exhausted = False

        def next_job():
            nonlocal exhausted
            if self._again:
                return self._again.pop(0)
            if not exhausted:
                job = next(source, None)
                if job is not None:
                    return job
                exhausted = True
            return None

        while True:
            for w in self.workers:
                if w["job"] is None:
                    job = next_job()
                    if job is not None:
                        w["job"] = job
                        w["deadline"] = time.monotonic() + deadline
                        w["conn"].send(job)
            busy = [w for w in self.workers if w["job"] is not None]
            if not busy:
                if exhausted and not self._again:
                    return
                continue
            ready = wait([w["conn"] for w in busy], timeout=1.0)
            for i, w in enumerate(self.workers):
                if w["job"] is None:
                    continue
                result = None
                if w["conn"] in ready:
                    try:
                        result = w["conn"].recv()
                    except (EOFError, OSError):
                        result = {"student_id": w["job"]["student_id"], "died": True,
                                  "crash": f"the grading worker died (exit code {w['proc'].exitcode})"}
                        self._kill(w)
                        self.workers[i] = w = {**self._spawn(w["slot"]), "job": w["job"]}
                elif time.monotonic() > w["deadline"]:
                    result = {"student_id": w["job"]["student_id"], "crash": f"grading took longer than {deadline:.0f} s; stopped",
                              "timeout": True}
                    self._kill(w)
                    self.workers[i] = w = {**self._spawn(w["slot"]), "job": w["job"]}
                if result is not None:
                    job = w["job"]
                    w["job"] = None
                    yield job, result

    def close(self) -> None:
        for w in self.workers:
            try:
                w["conn"].send(None)
            except (OSError, BrokenPipeError):
                pass
        for w in self.workers:
            w["proc"].join(10)
            if w["proc"].is_alive():
                self._kill(w)

    def kill(self) -> None:
        """Stop every worker now (Ctrl-C, a fatal disk error): their submissions are not committed."""
        for w in self.workers:
            self._kill(w)


class _LazyPool:
    """The local WorkerPool, started on the first job only (a fully skipped rerun starts nothing);
    a worker's death is retried once (`run` yields the job back to itself through `requeue`)."""

    def __init__(self, workers: int, args: tuple):
        self.n, self.args, self.pool = workers, args, None

    def run(self, jobs, deadline: float):
        jobs = iter(jobs)
        first = next(jobs, None)
        if first is None:
            return
        self.pool = WorkerPool(self.n, self.args)

        def chained():
            yield first
            yield from jobs

        for job, result in self.pool.run(chained(), deadline):
            if result.get("died") and not job.get("retried"):
                self.pool.requeue({**job, "retried": True})
                continue
            yield job, result

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()

    def kill(self) -> None:
        if self.pool is not None:
            self.pool.kill()
