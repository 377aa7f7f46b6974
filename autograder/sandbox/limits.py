"""The limits of every sandboxed run, and the budget of each kind of run in one place.

``Limits`` is what ``bwrap.run`` and the sandboxed kernel enforce (how: ``bwrap``'s
module docstring). The grader runs three kinds of student-controlled code, each with
its budget here (the README's "Security model" table reads from these):

- the notebook kernels of autograde: ``kernel_limits`` (from the run's ``Settings``:
  they are grade-relevant and part of the resume key);
- the trusted-check runner: ``runner_limits``;
- the feedback renderer (nbconvert on a student's executed notebook): ``renderer_limits``.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Limits:
    """Resource limits of one sandboxed run (see the module docstring for how each is enforced)."""

    wall_seconds: float = 60.0
    cpu_seconds: int = 120
    memory_bytes: int = 4 << 30
    max_processes: int = 256
    output_bytes: int = 1 << 20
    file_bytes: int = 256 << 20

    def __post_init__(self):
        for name in ("wall_seconds", "cpu_seconds", "memory_bytes", "max_processes", "output_bytes", "file_bytes"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"Limits.{name} must be a positive number, got {value!r}")


#: The trusted-check runner: memory of the whole sandbox, processes, its private /tmp.
RUNNER_MEMORY_BYTES = 2 << 30
RUNNER_PROCESSES = 64
RUNNER_TMP_BYTES = 16 << 20

#: The feedback renderer: memory (nbconvert, mistune and a large notebook), processes, /tmp.
RENDERER_MEMORY_BYTES = 1536 << 20
RENDERER_PROCESSES = 64
RENDERER_TMP_BYTES = 64 << 20


def kernel_limits(settings, wall_seconds: float) -> Limits:
    """A notebook kernel of autograde: the run's ``Settings`` limits, for `wall_seconds`."""
    return Limits(wall_seconds=wall_seconds, cpu_seconds=settings.cpu_seconds, memory_bytes=settings.memory_bytes,
                  max_processes=settings.max_processes, output_bytes=settings.output_bytes,
                  file_bytes=settings.file_bytes)


def runner_limits(wall_seconds: float, stream_bytes: int) -> Limits:
    """The trusted-check runner: CPU a little past the wall time (the wall time kills first),
    output capped at the framed stream's budget."""
    return Limits(wall_seconds=wall_seconds, cpu_seconds=int(wall_seconds) + 10, memory_bytes=RUNNER_MEMORY_BYTES,
                  max_processes=RUNNER_PROCESSES, output_bytes=stream_bytes, file_bytes=RUNNER_TMP_BYTES)


def renderer_limits(wall_seconds: float, output_bytes: int) -> Limits:
    """The feedback renderer: `output_bytes` of pages at most."""
    return Limits(wall_seconds=wall_seconds, cpu_seconds=int(wall_seconds) + 2, memory_bytes=RENDERER_MEMORY_BYTES,
                  max_processes=RENDERER_PROCESSES, output_bytes=output_bytes, file_bytes=RENDERER_TMP_BYTES)
