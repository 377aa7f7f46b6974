"""The grader's environment, read in one place.

- ``NNKIT_DATASET``: the dataset grading runs on (``grading_dataset``; default ``embedded``).
  Students' notebooks read the same variable through ``nnkit.data_utils.dataset_name``;
  the grader sets it for every kernel, so the student never picks it.
- ``NNKIT_COURSE_SECRET`` or ``NNKIT_COURSE_SECRET_FILE``: the course secret the trusted
  checks derive each student's inputs from (``course_secret``). It never enters a
  sandbox (``sandbox/bwrap.py`` builds a minimal environment).
- ``NNKIT_FORMGRADER_TOKEN``: formgrader's login token (``formgrader_token``).
"""
from __future__ import annotations

import os
from pathlib import Path

DATASET_VAR = "NNKIT_DATASET"
SECRET_VAR, SECRET_FILE_VAR = "NNKIT_COURSE_SECRET", "NNKIT_COURSE_SECRET_FILE"
DEFAULT_GRADING_DATASET = "embedded"


def grading_dataset() -> str:
    """The dataset a grading run uses: ``NNKIT_DATASET``, else ``embedded``."""
    return os.environ.get(DATASET_VAR) or DEFAULT_GRADING_DATASET


def course_secret() -> str | Path | None:
    """The course secret as configured: the value of ``NNKIT_COURSE_SECRET``, else the path
    in ``NNKIT_COURSE_SECRET_FILE``, else None (``trusted.seeds.resolve_secret`` reads a path
    and falls back, with a warning, to the public development secret)."""
    if os.environ.get(SECRET_VAR):
        return os.environ[SECRET_VAR]
    if os.environ.get(SECRET_FILE_VAR):
        return Path(os.environ[SECRET_FILE_VAR])
    return None


def formgrader_token() -> str | None:
    return os.environ.get("NNKIT_FORMGRADER_TOKEN") or None
