"""Grading that loses nothing (issue 13): each fault, and what must hold after it.

kill -9 of the coordinator, then a rerun: finished students are not regraded and
nothing is inconsistent; a killed worker is retried once; a full disk stops the run
without losing what was committed; two runs on one --out; Ctrl-C; a kernelspec the
sandbox cannot use is refused at preflight.
"""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from autograder import REPO_ROOT
from autograder.sandbox import bwrap as sandbox
from autograder.grading import commit as C
from autograder.grading import coordinator as G
from autograder.grading.gradebook import final_scores
from autograder.grading import pool as grading_pool
from autograder.grading.pool import _LazyPool
from autograder.grading.settings import Settings
from autograder.grading.runlock import RunLock, RunLocked

from .conftest import STUB_OPS, TOY_MANIFEST, make_submission

pytestmark = pytest.mark.skipif(not sandbox.available(), reason="bubblewrap is needed: " + sandbox.unavailable_reason())

SETTINGS = replace(Settings(), cell_timeout=20, notebook_timeout=90)


def _class(release, subs: Path, n: int) -> list[str]:
    ids = [f"s{i:02d}" for i in range(n)]
    for i, sid in enumerate(ids):
        make_submission(release, subs / sid, **({"ops": STUB_OPS, "double": None} if i % 3 == 2 else {}))
    return ids


def _cli(subs: Path, out: Path, *extra: str, env=None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "autograder", "grade", str(TOY_MANIFEST), "--submissions", str(subs),
         "--out", str(out), *extra],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **(env or {})}, start_new_session=True)


def _wait_for_records(out: Path, n: int, proc, timeout=240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(list((out / ".nnkit" / "records").glob("*.applied"))) >= n:
            return
        if proc.poll() is not None:
            raise AssertionError(f"grade ended early: {proc.communicate()}")
        time.sleep(0.1)
    raise AssertionError(f"fewer than {n} students committed in {timeout} s")


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def _descendants_of(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        children = _children_of(todo.pop())
        found += children
        todo += children
    return found


def _workers_of(pid: int) -> list[int]:
    """The grading workers of the coordinator `pid`: the children of its worker server."""
    servers = [c for c in _children_of(pid) if b"forkserver" in Path(f"/proc/{c}/cmdline").read_bytes()]
    return [w for s in servers for w in _children_of(s)]


def _consistent(out: Path) -> dict[str, float]:
    """Every committed student agrees across the gradebook, results/<sid>.json and grades.csv."""
    finals = final_scores(f"sqlite:///{out / 'gradebook.db'}", "toy")
    rows = {r["student_id"]: r for r in csv.DictReader(open(out / "grades.csv"))}
    for sid, (score, _top, _cells) in finals.items():
        gs = json.loads((out / "results" / f"{sid}.json").read_text())
        assert gs["score"] == pytest.approx(score), sid
        assert float(rows[sid]["score"]) == pytest.approx(score), sid
        assert (out / "feedback" / sid / "01_toy.html").is_file(), sid
    return {sid: s for sid, (s, _t, _c) in finals.items()}


def test_kill9_of_the_coordinator_loses_nothing_and_the_rerun_resumes(tmp_path, toy_release):
    subs, out = tmp_path / "subs", tmp_path / "out"
    ids = _class(toy_release, subs, 6)
    proc = _cli(subs, out)
    _wait_for_records(out, 2, proc)
    workers = _descendants_of(proc.pid)  # the worker server, the workers, their kernels
    assert _workers_of(proc.pid), "no grading worker found: the test proves nothing"
    os.kill(proc.pid, signal.SIGKILL)  # the coordinator only: everything it started must follow it
    proc.communicate()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(Path(f"/proc/{w}").exists() and
                                              "zombie" not in Path(f"/proc/{w}/status").read_text().lower()
                                              for w in workers):
        time.sleep(0.2)
    assert not [w for w in workers if Path(f"/proc/{w}").exists()
                and "(zombie)" not in Path(f"/proc/{w}/status").read_text()], "a process outlived its coordinator"
    before = {p.stem: json.loads(p.read_text())["commit"] for p in (out / ".nnkit" / "records").glob("*.json")}
    assert len(before) >= 2

    proc = _cli(subs, out)
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    after = {p.stem: json.loads(p.read_text())["commit"] for p in (out / ".nnkit" / "records").glob("*.json")}
    assert sorted(after) == ids
    # Finished students were not graded again (their commit ids did not change), and the rerun said so.
    assert all(after[sid] == commit for sid, commit in before.items())
    assert f"{len(before)} skipped" in stdout, stdout
    scores = _consistent(out)
    assert {sid: scores[sid] for sid in ids} == {sid: (1.0 if i % 3 == 2 else 6.0) for i, sid in enumerate(ids)}
    assert not list(Path("/tmp").glob(f"nnkit-grade-{proc.pid}-*")), "temporary files were left behind"


def test_ctrl_c_stops_cleanly_keeps_what_finished_and_a_rerun_goes_on(tmp_path, toy_release):
    subs, out = tmp_path / "subs", tmp_path / "out"
    ids = _class(toy_release, subs, 4)
    proc = _cli(subs, out)
    _wait_for_records(out, 1, proc)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends to the whole foreground group
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "interrupted" in stderr, stderr
    kept = sorted(p.stem for p in (out / ".nnkit" / "records").glob("*.json"))
    assert kept and all((out / "feedback" / sid / "01_toy.html").is_file() for sid in kept)
    assert not list(Path("/tmp").glob(f"nnkit-grade-{proc.pid}-*"))
    proc = _cli(subs, out)
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    assert sorted(_consistent(out)) == ids


def test_a_killed_worker_is_retried_once(tmp_path, toy_release, monkeypatch):
    subs, out = tmp_path / "subs", tmp_path / "out"
    ids = _class(toy_release, subs, 3)
    killed = []

    def kill_the_busy_worker(result):
        # After the first commit the single worker is grading the next student: kill it once.
        if not killed:
            for pid in _workers_of(os.getpid()):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

    results = {r["student_id"]: r for r in G.grade(TOY_MANIFEST, subs, out, settings=SETTINGS, workers=1,
                                                   progress=kill_the_busy_worker)}
    assert killed, "no worker was killed: the test proves nothing"
    assert sorted(results) == ids
    assert all(r["status"] == "graded" and "grader_error" not in r["flags"] for r in results.values()), results


def test_a_worker_that_dies_twice_is_recorded_with_the_reason(monkeypatch):
    """The retry is once: a second death is a `partial` result saying so (unit level, no worker needed)."""
    deaths = []

    class DyingPool:
        def __init__(self, n, args):
            self.again = []

        def requeue(self, job):
            self.again.append(job)

        def run(self, jobs, deadline):
            for job in list(jobs):
                while True:
                    deaths.append(job["student_id"])
                    yield job, {"student_id": job["student_id"], "died": True, "crash": "the grading worker died"}
                    if not self.again:
                        break
                    job = self.again.pop()

    monkeypatch.setattr(grading_pool, "WorkerPool", DyingPool)
    pool = _LazyPool(1, ())
    (job, result), = list(pool.run([{"student_id": "ann", "workdir": "/nonexistent", "key": None}], 10))
    assert deaths == ["ann", "ann"] and job["retried"]
    crashed = G._crashed("ann", result, job["retried"])
    assert crashed["status"] == "partial" and "grader_error" in crashed["flags"]
    assert "also on a retry" in crashed["reasons"][0]


def test_two_runs_on_one_out_the_second_refuses_naming_the_holder(tmp_path, toy_release):
    subs, out = tmp_path / "subs", tmp_path / "out"
    _class(toy_release, subs, 1)
    out.mkdir()
    with RunLock(out, f"sqlite:///{out / 'gradebook.db'}"):
        with pytest.raises(RunLocked, match=f"pid {os.getpid()}"):
            G.grade(TOY_MANIFEST, subs, out, settings=SETTINGS)
    # A gradebook elsewhere is locked too, whichever --out the second run names.
    db = f"sqlite:///{tmp_path / 'shared.db'}"
    with RunLock(tmp_path / "out_a", db):
        with pytest.raises(RunLocked, match="gradebook"):
            G.grade(TOY_MANIFEST, subs, tmp_path / "out_b", db=db, settings=SETTINGS)
    assert not (tmp_path / "out_b" / "grades.csv").exists()


@pytest.fixture
def small_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=100m", "tmpfs", str(mnt)], check=True)
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_disk_too_small_for_the_class_is_refused_before_grading(tmp_path, toy_release, small_disk):
    subs = tmp_path / "subs"
    _class(toy_release, subs, 6)
    (small_disk / "filler").write_bytes(b"\0" * (60 << 20))
    with pytest.raises(G.GradeRunError, match="MiB free"):
        G.grade(TOY_MANIFEST, subs, small_disk / "out", settings=SETTINGS)
    assert not list((small_disk / "out").glob("*.csv"))


def test_a_disk_that_fills_during_the_run_stops_it_and_loses_nothing_committed(tmp_path, toy_release, small_disk):
    subs, out = tmp_path / "subs", small_disk / "out"
    _class(toy_release, subs, 3)
    first = []

    def fill_after_the_first(result):
        if not first:
            first.append(result["student_id"])
            with open(small_disk / "filler", "wb") as f:
                try:
                    while True:
                        f.write(b"\0" * (1 << 20))
                except OSError:
                    pass

    with pytest.raises(G.GradeRunError, match="stopped"):
        G.grade(TOY_MANIFEST, subs, out, settings=SETTINGS, workers=1, progress=fill_after_the_first)
    (small_disk / "filler").unlink()
    sid = first[0]
    record = C.load_record(out, sid)
    assert record and (out / ".nnkit" / "records" / f"{sid}.applied").read_text() == record["commit"]
    assert (out / "feedback" / sid / "01_toy.html").is_file()
    assert final_scores(f"sqlite:///{out / 'gradebook.db'}", "toy")[sid][0] == 6.0
    # With the space back, a rerun finishes the class and keeps the first student's commit.
    results = G.grade(TOY_MANIFEST, subs, out, settings=SETTINGS, workers=1)
    assert [r["student_id"] for r in results] == ["s00", "s01", "s02"]
    assert C.load_record(out, sid)["commit"] == record["commit"]


def test_a_kernelspec_the_sandbox_cannot_use_is_refused_at_preflight(tmp_path, toy_release, monkeypatch):
    """A moved venv: the kernelspec names an interpreter that is not there. Nothing is graded."""
    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": ["/nonexistent/venv/bin/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    subs, out = tmp_path / "subs", tmp_path / "out"
    _class(toy_release, subs, 2)
    with pytest.raises(G.GradeRunError, match="preflight") as err:
        G.grade(TOY_MANIFEST, subs, out, settings=SETTINGS)
    assert "/nonexistent/venv" in str(err.value) and "kernelspec" in str(err.value)
    assert not list((out / ".nnkit" / "records").glob("*.json")) if (out / ".nnkit").exists() else True


def _report_sandbox_uid(template, settings, job, scratch):
    """A worker's job that says which uid its sandboxes would run as (and dies when asked to)."""
    if job.get("die"):
        os._exit(3)
    return {"student_id": job["student_id"], "uid": sandbox.SANDBOX_UID}


@pytest.mark.skipif(not sandbox.drops_privileges(), reason="a uid per worker needs a root grader")
def test_without_a_pids_cgroup_each_worker_and_its_replacement_sandbox_as_their_slots_uid(monkeypatch):
    """The pool gives worker k the uid WORKER_UID_BASE + k, and a replacement its predecessor's.
    (Fork context: the forced rlimit mode and the stand-in job reach the workers.)"""
    import multiprocessing

    monkeypatch.setattr(sandbox, "_pids_root_cache", [None])  # as on a machine without a pids cgroup
    monkeypatch.setattr(sandbox, "WORKER_UID_BASE", 61000)
    monkeypatch.setattr(grading_pool, "grade_job", _report_sandbox_uid)
    monkeypatch.setattr(grading_pool, "worker_context", lambda: multiprocessing.get_context("fork"))
    pool = grading_pool.WorkerPool(2, (None, None, ""))
    try:
        jobs = [{"student_id": "a"}, {"student_id": "b"}, {"student_id": "c", "die": True}, {"student_id": "d"}]
        results = {job["student_id"]: result for job, result in pool.run(jobs, 60)}
        slots = sorted(w["slot"] for w in pool.workers)
    finally:
        pool.kill()
    assert {results["a"]["uid"], results["b"]["uid"]} == {61000, 61001}, results
    assert "died" in results["c"] and results["d"]["uid"] in (61000, 61001)
    assert slots == [0, 1]  # the dead worker's replacement took its slot
