"""Grading beyond one process: a real dask.distributed cluster, and a real PostgreSQL gradebook.

The Dask run uses a `LocalCluster` of separate worker processes (what `dask worker`
gives on each machine) and must give the grades of the local run. The PostgreSQL
tests start a throwaway server (Debian's PostgreSQL, as the `postgres` user) on a
Unix socket, and skip with the reason where it cannot be started.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest

from autograder.grading import coordinator as G
from autograder.grading.settings import Settings
from autograder.sandbox import bwrap as sandbox
from autograder.grading.runlock import RunLock, RunLocked

from .conftest import REFERENCE_OPS, STUB_OPS, TOY_MANIFEST, make_submission

pytestmark = pytest.mark.skipif(not sandbox.available(), reason="bubblewrap is needed: " + sandbox.unavailable_reason())

SETTINGS = replace(Settings(), cell_timeout=20, notebook_timeout=90)


def _three(release, subs: Path) -> None:
    make_submission(release, subs / "ann")
    make_submission(release, subs / "ben", ops=STUB_OPS, double=None)
    make_submission(release, subs / "cid", ops=REFERENCE_OPS.replace("return x * factor", "return x * 3"))


def _by_cell(results):
    return {r["student_id"]: (r["status"], r["score"], {c["grade_id"]: c["final_score"] for c in r["cells"]})
            for r in results}


def test_a_dask_cluster_grades_like_the_local_workers(tmp_path, toy_release):
    distributed = pytest.importorskip("distributed")
    subs = tmp_path / "subs"
    _three(toy_release, subs)
    local = G.grade(TOY_MANIFEST, subs, tmp_path / "local", settings=SETTINGS, workers=2)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster:
        remote = G.grade(TOY_MANIFEST, subs, tmp_path / "dask", settings=SETTINGS,
                         scheduler=cluster.scheduler_address)
        # The workers graded it: the coordinator started no local worker pool (each task's
        # result came back as JSON text; the records say so through their timings).
        assert all(r.get("timings") for r in remote if r["status"] != "rejected")
    assert _by_cell(remote) == _by_cell(local)
    assert (tmp_path / "dask" / "feedback" / "ann" / "01_toy.html").is_file()
    assert (tmp_path / "dask" / "grades.csv").read_text() == (tmp_path / "local" / "grades.csv").read_text()


def test_an_unreachable_scheduler_is_a_clear_error(tmp_path, toy_release, monkeypatch):
    pytest.importorskip("distributed")
    from autograder.grading import dask_cluster

    monkeypatch.setattr(dask_cluster, "SCHEDULER_CONNECT_SECONDS", 3)  # not the 30 s a real run waits
    subs = tmp_path / "subs"
    make_submission(toy_release, subs / "ann")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(G.GradeRunError, match="cannot reach the Dask scheduler"):
        G.grade(TOY_MANIFEST, subs, tmp_path / "out", settings=SETTINGS, scheduler=f"tcp://127.0.0.1:{port}")


# ------------------------------------------------------------------------------------------ PostgreSQL


def _pg_bin() -> Path | None:
    for root in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (root / "initdb").is_file() and (root / "pg_ctl").is_file():
            return root
    return None


@pytest.fixture(scope="module")
def postgres():
    """A throwaway PostgreSQL server on a Unix socket; yields a SQLAlchemy URL prefix (append a db name)."""
    pytest.importorskip("psycopg")
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (Debian package 'postgresql'; `make test` installs it as root)")
    if os.geteuid() != 0:
        pytest.skip("the test server is run as the 'postgres' user, which needs root to switch to")
    try:
        import pwd

        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no 'postgres' user (the Debian package creates it)")
    import tempfile

    # Not under pytest's folder: that is 0700 root, and the server runs as `postgres`.
    base = Path(tempfile.mkdtemp(prefix="nnkit-pg-", dir="/tmp"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    base.chmod(0o755)
    shutil.chown(base, "postgres")
    shutil.chown(sock, "postgres")

    def as_postgres(*argv):
        return subprocess.run(["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", *argv],
                              capture_output=True, text=True, timeout=120, cwd="/")

    r = as_postgres(str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
    if r.returncode != 0:
        pytest.skip(f"initdb failed: {r.stderr.strip()[-300:]}")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = as_postgres(str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-l", str(base / "log"), "-o",
                    f"-k {sock} -p {port} -c listen_addresses=''", "start")
    if r.returncode != 0:
        pytest.skip(f"PostgreSQL did not start: {r.stderr.strip()[-300:]} {(base / 'log').read_text()[-300:]}")
    try:
        yield {"url": lambda db: f"postgresql://postgres@/{db}?host={sock}&port={port}",
               "createdb": lambda db: as_postgres(str(bin_dir / "createdb"), "-h", str(sock), "-p", str(port),
                                                  "-U", "postgres", db)}
    finally:
        as_postgres(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(base, ignore_errors=True)


def test_a_postgresql_gradebook_keeps_manual_grades_and_resumes(tmp_path, toy_release, postgres):
    from nbgrader.api import Gradebook

    assert postgres["createdb"]("course").returncode == 0
    db = postgres["url"]("course")
    subs, out = tmp_path / "subs", tmp_path / "out"
    _three(toy_release, subs)
    first = {r["student_id"]: r for r in G.grade(TOY_MANIFEST, subs, out, db=db, settings=SETTINGS, workers=2)}
    assert (first["ann"]["score"], first["ben"]["score"]) == (6.0, 1.0)
    assert not (out / "gradebook.db").exists()
    with Gradebook(db, "nnkit") as gb:
        gb.find_grade("answer_why", "01_toy", "toy", "ann").manual_score = 1.0
        gb.db.commit()
    # ben resubmits a fixed package: only ben is graded again; ann keeps her manual point.
    shutil.rmtree(subs / "ben")
    make_submission(toy_release, subs / "ben")
    again = {r["student_id"]: r for r in G.grade(TOY_MANIFEST, subs, out, db=db, settings=SETTINGS)}
    assert (again["ann"]["score"], again["ben"]["score"]) == (7.0, 6.0)
    with Gradebook(db, "nnkit") as gb:
        assert gb.find_submission("toy", "ann").score == 7.0


def test_two_runs_on_one_postgresql_gradebook_the_second_refuses(tmp_path, toy_release, postgres):
    assert postgres["createdb"]("shared").returncode == 0
    db = postgres["url"]("shared")
    subs = tmp_path / "subs"
    make_submission(toy_release, subs / "ann")
    with RunLock(tmp_path / "a", db):
        t0 = time.monotonic()
        with pytest.raises(RunLocked, match="gradebook"):
            G.grade(TOY_MANIFEST, subs, tmp_path / "b", db=db, settings=SETTINGS)
        assert time.monotonic() - t0 < 30  # refused at once, not after a wait
