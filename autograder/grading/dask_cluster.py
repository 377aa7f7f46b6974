"""Grading on a `dask.distributed` cluster: `grade ... --scheduler ADDRESS`.

Each submission is one task. The coordinator (the `grade` process) ingests it,
sends its files (at most the ingest limits, base64 in JSON) and receives one JSON
string back; it alone commits results to the gradebook and `--out`, as they
arrive. What Dask's issues taught (see the README, "Grading on several machines"):

- no per-task kill: every limit is enforced inside the task (the sandbox, the
  submission's wall budget); the coordinator also gives up on a task past the
  budget plus slack and records it `partial`;
- a worker that dies (out of memory) loses its task: it is retried once
  (`Client.retry`), then recorded with the reason, never abandoned silently;
- a finished task may run again when a worker dies (dask #7870): grading is
  idempotent, and a second result for a committed student is ignored;
- task keys deduplicate: each key is explicit, from the student, the
  submission's content hash and the release digest;
- nothing a student produced is unpickled: a task returns a `str` of JSON.

Every worker machine needs this kit's repository and environment and bubblewrap;
the run starts by asking every worker to check both (`worker_check`), and refuses
when one fails. Start workers with one thread each (`dask worker ADDRESS
--nthreads 1`): nbgrader changes `os.environ` while it grades.
"""
from __future__ import annotations

import base64
import json
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

#: Tasks in flight per worker thread (so a class is ingested only a little ahead of grading).
IN_FLIGHT_PER_WORKER = 2


def _where(a) -> tuple[str, str]:
    """The assignment's manifest and release as paths inside the kit's repository (the same on every machine)."""
    from .. import REPO_ROOT

    def rel(p: Path) -> str:
        p = Path(p).resolve()
        return str(p.relative_to(REPO_ROOT)) if p.is_relative_to(REPO_ROOT) else str(p)

    return rel(a.manifest.path), rel(a.release_dir)


def _locate(where: tuple[str, str]):
    from .. import REPO_ROOT
    from .template import locate

    manifest, release = where
    return locate(REPO_ROOT / manifest, release_dir=REPO_ROOT / release)


def worker_check(sandboxed: bool, where: tuple[str, str], release_key: str) -> str:
    """Run on every worker before grading: its sandbox works and its kit matches the coordinator's."""
    import socket

    from ..sandbox import bwrap as sandbox
    from .template import _inputs_digest

    if sandboxed and not sandbox.available():
        raise RuntimeError(f"worker {socket.gethostname()}: no sandbox: {sandbox.unavailable_reason()}")
    assignment = where[0]
    if _inputs_digest(_locate(where)) != release_key:
        raise RuntimeError(f"worker {socket.gethostname()}: its copy of the kit builds a different {assignment} "
                           "(source notebooks or release differ from the coordinator's); update it")
    return "ok"


def _settings_from(d: dict):
    from .settings import Settings
    from .ingest import IngestLimits

    return Settings(**{**d, "ingest_limits": IngestLimits(**d["ingest_limits"])})


def grade_task(payload: str) -> str:
    """One submission, graded on a worker; JSON in, JSON out (see the module docstring)."""
    import warnings

    from .template import cached_template
    from .pool import grade_job

    # nbgrader 0.9.6 + SQLAlchemy 2: "Object ... not in session" on every submission; harmless.
    warnings.filterwarnings("ignore", message=r".*not in session.*")
    p = json.loads(payload)
    settings = _settings_from(p["settings"])
    a = _locate(p["where"])
    template = cached_template(a, settings)
    scratch = Path(tempfile.mkdtemp(prefix="nnkit-dask-"))
    try:
        workdir = scratch / "submission"
        for rel, data in p["files"].items():
            # Names come from the coordinator's ingest (manifest paths only); never absolute, never `..`.
            target = (workdir / rel).resolve()
            if not str(target).startswith(str(workdir.resolve()) + "/"):
                raise ValueError(f"bad path in a grading task: {rel!r}")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(base64.b64decode(data))
        job = {"student_id": p["student_id"], "workdir": str(workdir), "ingest": p["ingest"]}
        return json.dumps(grade_job(template, settings, job, str(scratch / "courses")))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _payload(a, settings, job: dict) -> str:
    workdir = Path(job["workdir"])
    files = {rel: base64.b64encode((workdir / rel).read_bytes()).decode() for rel in job["ingest"]["files"]}
    return json.dumps({"where": _where(a), "settings": asdict(settings), "student_id": job["student_id"],
                       "ingest": job["ingest"], "files": files})


#: How long `grade --scheduler` tries to reach the scheduler before it says it cannot.
SCHEDULER_CONNECT_SECONDS = 30


def run_on_cluster(scheduler: str, a, template, settings, jobs, release_key: str):
    """Yield `(job, result)` as the cluster finishes submissions (results as `grade` expects them)."""
    from distributed import Client, wait

    from .settings import DEADLINE_SLACK_SECONDS
    from .coordinator import GradeRunError

    try:
        client = Client(scheduler, timeout=SCHEDULER_CONNECT_SECONDS)
    except OSError as exc:
        raise GradeRunError(f"--scheduler {scheduler}: cannot reach the Dask scheduler ({exc}); start it with "
                            "`dask scheduler` and give its address (tcp://HOST:8786)") from None
    try:
        try:
            client.run(worker_check, settings.sandbox, _where(a), release_key)
        except Exception as exc:
            raise GradeRunError(f"a Dask worker refused: {exc}") from None
        threads = sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values()) or 1
        limit = IN_FLIGHT_PER_WORKER * threads
        deadline = template.wall_seconds + DEADLINE_SLACK_SECONDS
        source = iter(jobs)
        running: dict = {}  # future -> (job, started, retried)
        exhausted = False
        while True:
            while not exhausted and len(running) < limit:
                job = next(source, None)
                if job is None:
                    exhausted = True
                    break
                key = f"nnkit-grade-{job['student_id']}-{job['key']['submission'][:16]}-{release_key[:12]}"
                future = client.submit(grade_task, _payload(a, settings, job), key=key, pure=False)
                running[future] = (job, time.monotonic(), False)
            if not running:
                return
            try:
                done, _ = wait(list(running), timeout=1.0, return_when="FIRST_COMPLETED")
            except TimeoutError:  # none finished within the second: check the deadlines
                done = set()
            for future in list(running):
                job, started, retried = running[future]
                if future in done:
                    del running[future]
                    if future.status == "finished":
                        yield job, json.loads(future.result())
                    elif not retried:  # the worker died (KilledWorker) or the task failed: once more
                        future.retry()
                        running[future] = (job, time.monotonic(), True)
                    else:
                        yield {**job, "retried": True}, {"student_id": job["student_id"], "died": True,
                                                         "crash": f"the Dask task failed: {future.exception()!r}"}
                elif time.monotonic() - started > deadline:
                    del running[future]
                    future.cancel()
                    yield job, {"student_id": job["student_id"], "timeout": True,
                                "crash": f"grading took longer than {deadline:.0f} s on the cluster; stopped"}
    finally:
        client.close()
