"""Deadlines and late policy: when a submission was handed in, and what lateness costs.

The manifest states them (`[deadline]`, all optional)::

    [deadline]
    due = 2026-12-15T23:59:00Z      # a TOML datetime; without an offset it is UTC
    policy = "per_day"              # "none", "per_day" or "cutoff"
    penalty_per_day = 0.10          # per_day: a fraction of the assignment's points per started day late
    grace_minutes = 15              # lateness below this is forgiven

A submission's time comes from, in this order: the `--timestamps` file (the
LMS export: a CSV with columns `student_id,submitted_at`, ISO 8601; a time
without an offset is UTC), else the newest entry of the submitted zip, else
the newest modification time of a submitted folder's files (both documented
fallbacks: a student's clock or unzip tool sets them). `late_penalty` turns
that into points; the grade tables subtract it from the gradebook's score and
say so (`late_penalty` column, flag `late`), the feedback pages show it.
"""
from __future__ import annotations

import csv
import math
import os
import zipfile
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

POLICIES = ("none", "per_day", "cutoff")


class DeadlineError(ValueError):
    """The manifest's [deadline] or a timestamps file is malformed; the message says where."""


@dataclass(frozen=True)
class Deadline:
    due: datetime
    policy: str = "none"
    penalty_per_day: float = 0.0
    grace_minutes: float = 0.0


@dataclass(frozen=True)
class Lateness:
    """One submission against the deadline: what a result records as `late`."""

    submitted_at: str  # ISO 8601, UTC
    source: str  # "timestamps file", "zip entries", "folder files"
    late_seconds: float  # after the grace period; 0 when on time
    penalty_fraction: float  # of the assignment's points
    policy: str

    def as_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        if self.late_seconds <= 0:
            return f"submitted {self.submitted_at} ({self.source}): on time"
        hours = self.late_seconds / 3600
        cost = ("all points (the deadline is a cut-off)" if self.policy == "cutoff"
                else f"{self.penalty_fraction:.0%} of the points ({self.policy} policy)")
        return f"submitted {self.submitted_at} ({self.source}): {hours:.1f} h late, costs {cost}"


def _utc(value) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if not isinstance(value, datetime):
        raise DeadlineError(f"expected a date and time, got {value!r}")
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def parse_deadline(section: dict | None, where: str) -> Deadline | None:
    """The manifest's `[deadline]` table, checked; None when there is none."""
    if not section:
        return None
    unknown = set(section) - {"due", "policy", "penalty_per_day", "grace_minutes"}
    if unknown:
        raise DeadlineError(f"{where}: unknown [deadline] keys {sorted(unknown)}")
    try:
        due = _utc(section["due"])
    except (KeyError, ValueError, DeadlineError) as exc:
        raise DeadlineError(f"{where}: [deadline] due must be a date and time, e.g. 2026-12-15T23:59:00Z ({exc})") from None
    policy = section.get("policy", "none")
    if policy not in POLICIES:
        raise DeadlineError(f"{where}: [deadline] policy = {policy!r}; use one of {', '.join(POLICIES)}")
    per_day = section.get("penalty_per_day", 0.0)
    grace = section.get("grace_minutes", 0.0)
    for name, v, top in (("penalty_per_day", per_day, 1.0), ("grace_minutes", grace, 7 * 24 * 60)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= top:
            raise DeadlineError(f"{where}: [deadline] {name} = {v!r} must be a number in [0, {top:g}]")
    if policy == "per_day" and per_day == 0:
        raise DeadlineError(f"{where}: [deadline] policy 'per_day' needs penalty_per_day > 0")
    return Deadline(due, policy, float(per_day), float(grace))


def read_timestamps(path: str | Path) -> dict[str, datetime]:
    """`student_id,submitted_at` rows of an LMS export (UTF-8 CSV with a header)."""
    out = {}
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = csv.DictReader(f)
        if not rows.fieldnames or {"student_id", "submitted_at"} - set(rows.fieldnames):
            raise DeadlineError(f"{path}: needs a header with the columns student_id,submitted_at")
        for n, row in enumerate(rows, start=2):
            try:
                out[row["student_id"].strip()] = _utc(row["submitted_at"].strip())
            except (ValueError, DeadlineError, AttributeError):
                raise DeadlineError(f"{path}:{n}: submitted_at {row.get('submitted_at')!r} is not an "
                                    "ISO 8601 date and time (e.g. 2026-12-15T21:04:00+01:00)") from None
    return out


def submission_time(sid: str, path: Path, stamps: dict[str, datetime]) -> tuple[datetime, str] | None:
    """When `sid` handed in (and where that came from), or None when nothing says."""
    if sid in stamps:
        return stamps[sid], "timestamps file"
    try:
        if path.is_file() and not path.is_symlink() and zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                times = [datetime(*i.date_time, tzinfo=timezone.utc) for i in z.infolist() if not i.is_dir()]
            return (max(times), "zip entries") if times else None
        if path.is_dir() and not path.is_symlink():
            newest = max((os.lstat(os.path.join(d, f)).st_mtime for d, _, fs in os.walk(path) for f in fs),
                         default=None)
            return (datetime.fromtimestamp(newest, timezone.utc), "folder files") if newest else None
    except (OSError, ValueError, zipfile.BadZipFile):
        return None
    return None


def lateness(deadline: Deadline, submitted: datetime, source: str) -> Lateness:
    late = (submitted - deadline.due - timedelta(minutes=deadline.grace_minutes)).total_seconds()
    late = max(0.0, late)
    if late <= 0 or deadline.policy == "none":
        fraction = 0.0
    elif deadline.policy == "cutoff":
        fraction = 1.0
    else:
        fraction = min(1.0, math.ceil(late / 86400) * deadline.penalty_per_day)
    return Lateness(submitted.isoformat(), source, late, fraction, deadline.policy)


def late_penalty(result: dict) -> float:
    """Points a result loses for lateness (0 without a deadline), from its `late` record."""
    late = result.get("late")
    if not late or result.get("max_score") is None:
        return 0.0
    return round(float(late["penalty_fraction"]) * float(result["max_score"]), 6)


def apply_penalty(result: dict) -> dict:
    """The result with `late_penalty` set and `score` lowered by it (never below 0)."""
    penalty = late_penalty(result)
    result["late_penalty"] = penalty
    if penalty and result.get("score") is not None:
        result["score"] = round(max(0.0, float(result["score"]) - penalty), 6)
    return result
