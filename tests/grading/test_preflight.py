"""The preflight's own logic (autograder.grading.preflight): its two checks stood in for.

The real kernel refusal is tested end to end in test_grade_faults.py.
"""
from __future__ import annotations

import threading
from pathlib import Path

import pytest

from autograder.grading import preflight as P
from autograder.grading.coordinator import GradeRunError
from autograder.grading.settings import Settings


def _stand_in(monkeypatch, kernel, runner):
    monkeypatch.setattr(P, "_start_kernel", lambda notebook, settings, workdir: kernel())
    monkeypatch.setattr(P, "_trusted_runner", lambda assignment, covered, settings: runner())


def _preflight():
    P.preflight("fcnets", Path("unused.ipynb"), frozenset({"g"}), Settings())


def test_the_kernel_and_the_runner_start_side_by_side(monkeypatch):
    started = {"kernel": threading.Event(), "runner": threading.Event()}

    def meet(me, other):
        # Each waits for the other to have started: run one after the other, the first one waits in vain.
        started[me].set()
        return None if started[other].wait(timeout=10) else f"the {other} did not start beside the {me}"

    _stand_in(monkeypatch, lambda: meet("kernel", "runner"), lambda: meet("runner", "kernel"))
    _preflight()  # raises with the first one's message when they ran in turn


def test_a_runner_that_fails_stops_the_run_with_its_reason(monkeypatch):
    _stand_in(monkeypatch, lambda: None, lambda: "the reference failed 3 trusted checks")
    with pytest.raises(GradeRunError, match="trusted checks do not run.*the reference failed 3 trusted checks"):
        _preflight()


def test_when_both_fail_the_kernel_is_told_first(monkeypatch):
    _stand_in(monkeypatch, lambda: "no kernel here", lambda: "no runner either")
    with pytest.raises(GradeRunError, match="sandboxed kernel could not run one cell") as err:
        _preflight()
    assert "no kernel here" in str(err.value)
