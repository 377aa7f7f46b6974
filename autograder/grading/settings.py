"""The settings of a grading run that change grades (and so the resume key), and its constants."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from ..manifest import Manifest
from .ingest import IngestLimits


COURSE_ID = "nnkit"


#: Slack the coordinator gives a worker past a submission's wall budget before it kills it
#: (nbgrader's own start-up and gradebook work are outside the budgeted steps).
DEADLINE_SLACK_SECONDS = 120.0


#: Of a submission's wall budget, what is kept back from the notebooks for the trusted
#: checks and the feedback pages (a fraction, at most TRUSTED_RESERVE_SECONDS).
TRUSTED_RESERVE_SECONDS = 90.0


@dataclass(frozen=True)
class Settings:
    """Limits and switches of one grading run.

    cell_timeout : seconds per cell (nbgrader's Execute.timeout).
    notebook_timeout : seconds of wall time for a whole notebook, within the
        submission's budget (the manifest's `[grading] wall_seconds`, or `wall_seconds` here).
    wall_seconds : overrides the manifest's per-submission wall budget (None: the manifest's).
    output_bytes : output a kernel may send over a notebook before it is stopped.
    file_bytes : one file, and all the kernel's files together (its private /tmp tmpfs).
    memory_bytes, cpu_seconds, max_processes : the sandbox's limits.
    dataset : NNKIT_DATASET of every kernel (the grader picks it, never the student).
    sandbox : run kernels in bubblewrap (False only with --unsafe-no-sandbox).
    trusted : use the trusted checks where the assignment has them.
    """

    cell_timeout: int = 120
    notebook_timeout: int = 900
    wall_seconds: float | None = None
    output_bytes: int = 4 << 20
    memory_bytes: int = 4 << 30
    cpu_seconds: int = 1800
    max_processes: int = 256
    file_bytes: int = 256 << 20
    dataset: str = "embedded"
    sandbox: bool = True
    trusted: bool = True
    course_secret: str | None = None
    ingest_limits: IngestLimits = IngestLimits()

    def budget(self, manifest: Manifest) -> float:
        """Wall seconds of one submission, everything included."""
        return float(self.wall_seconds or manifest.wall_seconds)


def _settings_digest(settings: Settings) -> str:
    """What of the settings changes a grade (not the secret itself: only whether one is set)."""
    fields = {k: v for k, v in asdict(settings).items() if k not in ("course_secret",)}
    import hashlib

    secret = hashlib.sha256((settings.course_secret or "").encode()).hexdigest()
    return repr(sorted(fields.items())) + secret
