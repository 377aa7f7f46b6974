"""What grading one submission comes to: its status and the typed result of a worker.

A worker builds a :class:`SubmissionResult` stage by stage (``submission.STAGES``) and
sends ``to_dict()``: plain JSON-able data, which is what the coordinator commits
(``commit.py``), the outputs and reports read, and a Dask task returns.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Status(str, enum.Enum):
    """Status of a whole submission (a str: it compares equal to, and serialises as, its value)."""

    GRADED = "graded"
    #: graded, but something could not be: a cell not graded, a kernel that died, a missing
    #: notebook, a trusted verdict that could not be had (fail closed: those points are 0).
    PARTIAL = "partial"
    #: not graded at all: the submission could not be ingested (the reasons say why).
    REJECTED = "rejected"

    def __str__(self) -> str:
        return self.value


GRADED, PARTIAL, REJECTED = Status.GRADED, Status.PARTIAL, Status.REJECTED


@dataclass
class SubmissionResult:
    """One graded submission, as a worker hands it to the coordinator.

    cells : one row per graded cell of the assignment (dicts: notebook, grade_id, kind
        "auto"/"manual", max_score, score, status, message; trusted fields when covered).
    pages : feedback page name -> sanitised HTML. executed : notebook stem -> executed
        notebook JSON text. trusted : the trusted-check report, or None.
    """

    student_id: str
    status: Status = Status.GRADED
    flags: set[str] = field(default_factory=set)
    reasons: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    cells: list[dict] = field(default_factory=list)
    repairs: list[dict] = field(default_factory=list)
    ignored_files: list = field(default_factory=list)
    trusted: dict | None = None
    late: dict | None = None
    pages: dict[str, str] = field(default_factory=dict)
    executed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    #: when the worker began this submission (seconds since the epoch): what a run's start-up
    #: and queueing are measured by (bench/bench_grading_breakdown.py).
    started_at: float = 0.0
    #: the worker's peak RSS over its whole life, this submission included (bytes).
    worker_peak_rss: int = 0

    def to_dict(self) -> dict:
        """The JSON-able form every consumer reads."""
        return {"student_id": self.student_id, "status": self.status.value, "flags": sorted(self.flags),
                "reasons": list(self.reasons), "timings": {k: round(v, 3) for k, v in self.timings.items()},
                "cells": self.cells, "repairs": self.repairs, "ignored_files": self.ignored_files,
                "trusted": self.trusted, "late": self.late, "feedback": sorted(self.pages),
                "seconds": round(self.seconds, 3), "started_at": round(self.started_at, 3), "pages": self.pages, "executed": self.executed,
                "worker_peak_rss": self.worker_peak_rss}
