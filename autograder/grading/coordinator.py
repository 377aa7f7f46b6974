"""The coordinator of a grading run: sandboxed, parallel autograding of a whole class.

The flow, for `grade(assignment, submissions, out)`:

1. **Template.** One throwaway nbgrader course is built from the assignment's
   source notebooks (with hidden tests) and the release's non-notebook files
   (the stubbed student modules, the grader-owned nnkit modules, the datasets);
   nbgrader's generate_assignment fills its gradebook and makes the release
   notebooks that `repair` restores grade cells from. Nothing of the reference
   package is in it, so no misconfiguration can grade a student on it.
2. **Ingest** (`autograder.grading.ingest`) makes a safe working copy of each submission,
   or refuses it with a reason.
3. **Workers.** `workers` processes, forked by a worker server that imported nbgrader
   once (``pool.start_worker_server``, started as the run begins), grade one submission
   at a time, each in its own copy of the template course with its own copy of the
   template gradebook: repair
   (`autograder.grading.repair`), nbgrader's autograde through `NbGraderAPI` with the
   student's kernel in bubblewrap (`autograder.sandbox.kernel`), the per-cell
   scores, the trusted checks (`autograder.trusted`, where the assignment has
   them) and the feedback HTML. A worker returns plain data only.
4. **Coordinator.** This process alone writes the real gradebook (nbgrader's
   `Gradebook`, SQLite in `out` or any SQLAlchemy URL), once the assignment is registered
   there (`gradebook.Registration`, beside the first submissions), keeps manual grades,
   and writes `grades.csv`, `grades_by_check.csv`, `results/` (`autograder.grading.outputs`).
   A worker that hangs past the submission's hard deadline, or dies, is killed
   and replaced; that submission is recorded as `partial`, never as a silent 0.

Trust (README, "Security model"): every autograded point of a grade id that the
trusted checks cover comes from the trusted verdict alone, and a missing verdict
is 0 with status `trusted_error` (fail closed); the kernel never sees the hidden
tests of those cells (they are cut from the template course); the kernel writes
only inside its sandbox, so nothing here opens a path student code wrote; the
feedback pages are rendered in a sandbox and sanitised here. One wall budget,
the manifest's `[grading] wall_seconds`, covers a submission's kernels, trusted
checks and feedback.

Execution is guarded cell by cell (`GuardedExecute`): a per-cell timeout bounded
by what is left of the notebook's wall budget; a dead kernel (`os._exit`, a
memory or output limit, a loop that ignores SIGINT) is restarted and the earlier
non-test cells replayed silently, so one bad cell costs that cell, not the
notebook; every such event is recorded with its cell and reason.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from .. import REPO_ROOT
from .gradebook import Registration, RegistrationError
from .ingest import discover, ingest
from .pool import _LazyPool, worker_context
from .result import PARTIAL, REJECTED
from .settings import DEADLINE_SLACK_SECONDS, Settings, _settings_digest
from .template import Assignment, Template, _inputs_digest, cached_template, locate


class GradeRunError(RuntimeError):
    """The run cannot start or must stop (no space, locked, preflight failed); nothing committed is lost."""


def _rejected(student_id: str, reasons: list[str]) -> dict:
    return {"student_id": student_id, "status": REJECTED, "flags": ["rejected"], "reasons": reasons,
            "cells": [], "repairs": [], "ignored_files": [], "trusted": None, "feedback": [], "seconds": 0.0}


def _crashed(student_id: str, crash: dict, retried: bool) -> dict:
    """A submission whose grading did not finish (the grader's fault): partial, with the reason."""
    last = crash["crash"].strip().splitlines()[-1] if crash["crash"].strip() else "unknown"
    why = f"grading did not finish{' (also on a retry)' if retried else ''}: {last}"
    return {**_rejected(student_id, [why]), "status": PARTIAL,
            "flags": ["grader_error"] + (["timeout"] if crash.get("timeout") else []), "crash": crash["crash"]}


#: Disk space one graded submission needs in --out beyond its own size (pages, notebooks, records).
SPACE_PER_SUBMISSION = 8 << 20


SPACE_RESERVE = 64 << 20


def _raw_size(path: Path) -> int:
    """Bytes of a submission on disk (a zip's size, or its folder's regular files, links not followed)."""
    if not path.is_dir():
        try:
            return os.lstat(path).st_size
        except OSError:
            return 0
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total


def check_output_space(out: Path, found: list[tuple[str, Path]], scratch: Path) -> None:
    """Refuse before grading when --out is not writable or cannot hold the class (GradeRunError)."""
    probe = out / f".nnkit-write-probe-{os.getpid()}"
    try:
        probe.write_bytes(b"x")
        probe.unlink()
    except OSError as exc:
        raise GradeRunError(f"--out {out} is not writable ({exc.strerror or exc}); choose a folder you can write") from None
    need = SPACE_RESERVE + sum(3 * _raw_size(p) + SPACE_PER_SUBMISSION for _, p in found)
    free = shutil.disk_usage(out).free
    if free < need:
        raise GradeRunError(f"--out {out} has {free >> 20} MiB free, and grading {len(found)} submissions needs "
                            f"about {need >> 20} MiB (pages, executed notebooks, records); free some space or "
                            "choose another --out")
    scratch_free = shutil.disk_usage(scratch).free
    if scratch_free < SPACE_RESERVE + 2 * SPACE_PER_SUBMISSION:
        raise GradeRunError(f"the temporary folder {scratch} has only {scratch_free >> 20} MiB free; "
                            "set TMPDIR to a folder with at least 1 GiB")


_TMP_PREFIX = "nnkit-grade-"


def _remove_stale_tmp() -> None:
    """Temporary folders of grading runs whose coordinator died (kill -9): named by its pid."""
    base = Path(tempfile.gettempdir())
    for d in base.glob(f"{_TMP_PREFIX}*"):
        try:
            owner = int(d.name[len(_TMP_PREFIX):].split("-")[0])
        except ValueError:
            continue
        if owner != os.getpid() and not os.path.exists(f"/proc/{owner}"):
            shutil.rmtree(d, ignore_errors=True)


def _check_db_driver(db_url: str) -> None:
    if db_url.startswith(("postgresql", "postgres")):
        try:
            import psycopg  # noqa: F401  (SQLAlchemy 2.1's default driver for postgresql://)
        except ImportError:
            raise GradeRunError("--db is a PostgreSQL URL but its driver is missing: pip install "
                                "'.[instructor]' (it carries psycopg)") from None


def grade(assignment: str | Path, submissions: str | Path, out: str | Path, *, workers: int = 1,
          db: str | None = None, settings: Settings = Settings(), root: Path = REPO_ROOT,
          release_dir: str | Path | None = None, progress=None, force: bool = False,
          scheduler: str | None = None, preflight: bool = True, timestamps: str | Path | None = None) -> list[dict]:
    """Grade every submission in `submissions` into `out`; return the whole class's results.

    Each finished submission is committed at once (`autograder.grading.commit`): a crash loses
    nothing that finished. A rerun skips the submissions whose committed grade has the
    same key (submission, release, grader); `force` regrades them all. A submission whose
    worker died is retried once. `scheduler` sends each submission to a Dask cluster
    instead of local workers (`autograder.grading.dask_cluster`). `progress(result)` is called per
    submission as it is committed (`result["skipped"]` is True for one kept from before).

    Each result: `student_id, status, score, max_score, flags, reasons, cells, repairs, ...`
    (see `grade_submission`); `score` and `max_score` are read back from the gradebook,
    so they include manual grades.

    Raises
    ------
    GradeRunError : the run could not start or had to stop (what finished stays committed).
    RunLocked : another run holds `out` or the gradebook.

    `timestamps` : the LMS export of hand-in times (`autograder.grading.deadline`), for the manifest's late policy.
    """
    from . import commit as C
    from .runlock import RunLock

    a = locate(assignment, root, release_dir)
    if release_dir is None:
        _refuse_stale_release(a, root)
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    db_url = db or f"sqlite:///{out / 'gradebook.db'}"
    _check_db_driver(db_url)
    found = discover(submissions)
    from .deadline import read_timestamps

    stamps = read_timestamps(timestamps) if timestamps else {}
    local = bool(found) and not scheduler
    if local:
        from .pool import start_worker_server

        start_worker_server()  # its imports run while this process builds the template and preflights
    with RunLock(out, db_url):
        _remove_stale_tmp()
        tmp = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{os.getpid()}-"))
        pool = registration = None
        checking = _start_preflight(a, settings) if local and preflight else None
        try:
            check_output_space(out, found, tmp)
            C.recover(out, db_url)
            template = cached_template(a, settings)
            # Beside the first submissions, in a worker-server process, when there are local workers.
            registration = Registration(a, db_url, tmp / "register", worker_context() if local else None)
            registered = _registered(registration)
            release_key = _inputs_digest(a)
            grader_key = C.grader_digest(_settings_digest(settings))
            jobs = _jobs(a, found, out, tmp, settings, release_key, grader_key, force, progress, db_url, stamps,
                         registered)
            if scheduler:
                from .dask_cluster import run_on_cluster

                results = run_on_cluster(scheduler, a, template, settings, jobs, release_key)
            else:
                jobs = _after_preflight(jobs, checking)
                pool = _LazyPool(workers, (template, settings, str(tmp / "courses")))
                results = pool.run(jobs, template.wall_seconds + DEADLINE_SLACK_SECONDS)
            for job, result in results:
                registered()
                _commit_result(out, db_url, a.name, job, result, progress)
            registered()
            return C.export(out, db_url, a.name)
        except C.CommitError as exc:
            raise GradeRunError(f"stopped: {exc}. Every submission committed before stays; free the space "
                                "and run again: finished students are skipped") from None
        except BaseException:
            if pool is not None:
                pool.kill()
                pool = None
            if registration is not None:
                registration.stop()
            raise
        finally:
            if pool is not None:
                pool.close()
            if checking is not None:
                checking.exception()  # a preflight nobody awaited (nothing to grade) still ends here
            shutil.rmtree(tmp, ignore_errors=True)


def _registered(registration: Registration):
    """`registration.wait`, as the run's own error: called before every write to the gradebook."""
    def wait() -> None:
        try:
            registration.wait()
        except RegistrationError as exc:
            raise GradeRunError(f"{exc}; fix the gradebook (--db) and run again") from None

    return wait


def _refuse_stale_release(a: Assignment, root: Path) -> None:
    """The repository's own release must be what its `source/` builds now (a threshold edited
    without a rebuild once took 4 points from 7 students whose feedback said 4/4). An older
    release is graded only when named with `--release`."""
    from ..release.digest import release_freshness

    own = Path(root).resolve() / "source" / a.name / "manifest.toml"
    if a.manifest.path is None or Path(a.manifest.path).resolve() != own:
        return  # an assignment given by its manifest path, outside the repository's layout
    stale = release_freshness(a.name, a.release_dir, root)
    if stale:
        raise GradeRunError(f"refusing to grade against a stale release: {stale}")


def _jobs(a: Assignment, found, out: Path, tmp: Path, settings: Settings, release_key: str, grader_key: str,
          force: bool, progress, db_url: str, stamps: dict, registered):
    """The submissions to grade, ingested one at a time as workers ask for them.

    Rejected ones (and duplicates) are committed here at once, once `registered()` returned;
    unchanged ones since a committed grade are skipped (reported through `progress` with `skipped`).
    """
    from collections import Counter

    from . import commit as C

    counts, done = Counter(sid for sid, _ in found), set()
    for sid, path in found:
        if counts[sid] > 1:
            if sid not in done:  # once per student
                done.add(sid)
                registered()
                applied = C.commit(out, db_url, a.name, _rejected(
                    sid, [f"submitted twice ({sid}.zip and {sid}/); keep one"]), None, {}, {})
                if progress:
                    progress(applied)
            continue
        workdir = tmp / "ingested" / sid
        got = ingest(sid, path, a.manifest.submission_files, workdir, settings.ingest_limits)
        if not got.accepted:
            registered()
            applied = C.commit(out, db_url, a.name, _rejected(sid, got.refused), None, {}, {})
            if progress:
                progress(applied)
            continue
        late = _lateness(a, sid, path, stamps)
        # The hand-in time is part of what was graded: a new time (a later upload) is a new grade.
        key = C.GradingKey(C.files_digest(workdir=got.workdir, names=got.files) + (late or {}).get("submitted_at", ""),
                           release_key, grader_key)
        if not force and C.committed_key(out, sid) == key.as_dict():
            shutil.rmtree(workdir, ignore_errors=True)
            if progress:
                progress({**(C.load_record(out, sid) or {}).get("result", {"student_id": sid}), "skipped": True})
            continue
        yield {"student_id": sid, "workdir": str(got.workdir), "key": key.as_dict(),
               "ingest": {"files": got.files, "refused_files": got.refused_files, "ignored": got.ignored,
                          "late": late}}


def _lateness(a: Assignment, sid: str, path: Path, stamps: dict) -> dict | None:
    """The submission against the manifest's deadline (None without one, or without any time source)."""
    from .deadline import lateness, submission_time

    if a.manifest.deadline is None:
        return None
    got = submission_time(sid, path, stamps)
    return None if got is None else lateness(a.manifest.deadline, *got).as_dict()


def _commit_result(out: Path, db_url: str, assignment: str, job: dict, result: dict, progress) -> None:
    from . import commit as C

    sid = job["student_id"]
    if "crash" in result:
        result = _crashed(sid, result, bool(job.get("retried")))
    pages = result.pop("pages", None) or {}
    executed = result.pop("executed", None) or {}
    key = C.GradingKey(**job["key"]) if job.get("key") else None
    applied = C.commit(out, db_url, assignment, result, key, pages, executed)
    shutil.rmtree(job["workdir"], ignore_errors=True)
    if progress:
        progress(applied)


def _start_preflight(a: Assignment, settings: Settings):
    """The preflight (``preflight.preflight``), started in a thread as the run begins: it runs
    beside the template course and the gradebook registration. A Future of None, or of its
    GradeRunError."""
    from concurrent.futures import Future
    import threading

    from .preflight import preflight
    from .template import trusted_coverage

    # Imported here, before the thread starts: two threads importing nbgrader at once (this one
    # for the template) can meet its circular imports half done.
    import nbclient  # noqa: F401
    import nbgrader.apps  # noqa: F401

    from .. import trusted  # noqa: F401
    from ..sandbox import kernel  # noqa: F401

    pending: Future = Future()

    def check() -> None:
        try:
            covered = trusted_coverage(a.name, settings.trusted)
            preflight(a.name, Path(a.source_dir) / a.manifest.notebooks[0], covered, settings)
        except BaseException as exc:
            pending.set_exception(exc)
        else:
            pending.set_result(None)

    threading.Thread(target=check, name="preflight", daemon=True).start()
    return pending


def _after_preflight(jobs, checking):
    """The jobs, once the preflight (a Future, or None when disabled) said a sandboxed kernel and a
    trusted runner start here; a run with nothing to grade never waits for it."""
    jobs = iter(jobs)
    first = next(jobs, None)
    if first is None:
        return
    if checking is not None:
        checking.result()  # raises its GradeRunError
    yield first
    yield from jobs
