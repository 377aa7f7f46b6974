"""Per-student input seeds: HMAC-SHA256 of the student id under the course secret.

The secret never leaves the grader, so a student cannot recompute another
student's inputs, and two students' inputs differ (a leaked answer does not
transfer). Without a secret, seeds are still per-student but predictable:
fine for development, not for a real course.
"""
from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

#: Used when no secret is configured; results then say so in their warnings.
DEV_SECRET = b"nnkit-development-secret-not-for-real-courses"


class SecretError(ValueError):
    """The course secret could not be read."""


def resolve_secret(secret=None):
    """The course secret as bytes, and whether it is a real one.

    Parameters
    ----------
    secret : str, bytes, os.PathLike or None
        bytes or str: the secret itself; a Path: a file holding it. None looks at
        the env ``NNKIT_COURSE_SECRET`` (the secret) then ``NNKIT_COURSE_SECRET_FILE``
        (a file holding it).

    Returns
    -------
    secret : bytes
    configured : bool
        False when falling back to the public development secret.
    """
    if secret is None:
        from ..config import course_secret

        secret = course_secret()
        if secret is None:
            return DEV_SECRET, False
    if isinstance(secret, os.PathLike):
        try:
            secret = Path(secret).read_bytes().strip()
        except OSError as exc:
            raise SecretError(f"cannot read the course secret file {secret}: {exc}; "
                              "create it (e.g. `python -c 'import secrets; print(secrets.token_hex(32))' > FILE`) "
                              "or set NNKIT_COURSE_SECRET") from None
    if isinstance(secret, str):
        secret = secret.encode("utf-8")
    if not secret:
        raise SecretError("the course secret is empty; set NNKIT_COURSE_SECRET to a long random string")
    return bytes(secret), True


def derive_seed(student_id, secret=None):
    """A 128-bit seed for one student: HMAC-SHA256(secret, student_id), first 16 bytes.

    Parameters
    ----------
    student_id : str
    secret : see ``resolve_secret``

    Returns
    -------
    int
        Non-negative, below 2**128; feed it to ``numpy.random.default_rng``.
    """
    key, _ = resolve_secret(secret)
    digest = hmac.new(key, str(student_id).encode("utf-8"), hashlib.sha256).digest()
    return int.from_bytes(digest[:16], "big")
