"""Shared fixtures of the sandbox tests: skip only when bubblewrap genuinely cannot run here."""
import os

import pytest

from autograder.sandbox import bwrap as sandbox


@pytest.fixture(autouse=True)
def _needs_bwrap():
    if not sandbox.available():
        pytest.skip(f"bubblewrap unavailable: {sandbox.unavailable_reason()}")


@pytest.fixture
def course(tmp_path):
    """A fake course folder as the grader lays it out, with one submission to sandbox.

    Returns a dict of paths: ``root``, ``work`` (alice's working copy, the only writable
    place), ``gradebook``, ``source``, ``other`` (bob's submission), ``config``.
    """
    root = tmp_path / "course"
    (root / "source" / "fcnets").mkdir(parents=True)
    (root / "source" / "fcnets" / "01_layers.ipynb").write_text('{"hidden": "SECRET-SOURCE"}')
    (root / "gradebook.db").write_bytes(b"SQLite format 3\x00SECRET-GRADEBOOK")
    (root / "nbgrader_config.py").write_text("c = get_config()\n")
    other = root / "submitted" / "bob" / "fcnets"
    other.mkdir(parents=True)
    (other / "01_layers.ipynb").write_text('{"bob": "SECRET-BOB"}')
    work = root / "autograded" / "alice" / "fcnets"
    work.mkdir(parents=True)
    return {
        "root": root,
        "work": work,
        "gradebook": root / "gradebook.db",
        "source": root / "source",
        "other": other,
        "config": root / "nbgrader_config.py",
    }


@pytest.fixture
def rlimit_processes(monkeypatch):
    """The process cap as it is without a pids cgroup: RLIMIT_NPROC, which counts every process
    and thread of the sandbox's uid on the machine. This test's sandboxes get a uid of their
    own, so sandboxes of other tests running at the same time (make test's other process) do
    not count against its cap, nor its fork bomb against theirs."""
    monkeypatch.setattr(sandbox, "_pids_root_cache", [None])
    if sandbox.SANDBOX_UID == 65534 and os.geteuid() == 0:
        uid = 60000 + os.getpid() % 4000  # unused on a CI machine, distinct per test process
        monkeypatch.setattr(sandbox, "SANDBOX_UID", uid)
        monkeypatch.setattr(sandbox, "SANDBOX_GID", uid)
    assert sandbox.process_limit_mode() == "rlimit"
