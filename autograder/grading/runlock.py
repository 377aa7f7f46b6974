"""One grading run at a time per `--out` and per gradebook.

Two `grade` runs on the same `--out` used to both "succeed", the second
overwriting the first's class table. :class:`RunLock` is taken before anything
is written and held to the end:

- `--out/.nnkit/lock`: an exclusive `flock` (released by the kernel when the
  process dies, even by kill -9), with who holds it written inside;
- the gradebook: for PostgreSQL a session advisory lock (`pg_try_advisory_lock`)
  on a connection held open for the run; for SQLite elsewhere than `--out`, a
  `flock` on `<database>.nnkit-lock` beside it.

A second run refuses at once with :class:`RunLocked`, naming the holder.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
import time
from pathlib import Path


class RunLocked(RuntimeError):
    """Another grading run holds the output folder or the gradebook."""


def _flock(path: Path, what: str) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        try:
            holder = json.loads(os.pread(fd, 4096, 0) or b"{}")
        except ValueError:
            holder = {}
        os.close(fd)
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("since", 0))) if holder else "?"
        raise RunLocked(f"another grading run holds {what} (pid {holder.get('pid', '?')} on "
                        f"{holder.get('host', '?')}, since {since}); wait for it to finish, or stop it, "
                        "then run again (finished students are kept and skipped)") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}).encode(), 0)
    return fd


class RunLock:
    """Hold `out` (and the gradebook at `db_url`) for one run; use as a context manager."""

    def __init__(self, out: Path, db_url: str):
        self.out, self.db_url = Path(out), db_url
        self._fds: list[int] = []
        self._pg = None

    def __enter__(self) -> "RunLock":
        try:
            self._fds.append(_flock(self.out / ".nnkit" / "lock", f"the output folder {self.out}"))
            if self.db_url.startswith("sqlite:///"):
                db = Path(self.db_url[len("sqlite:///"):]).resolve()
                if db.parent != self.out.resolve():
                    self._fds.append(_flock(db.with_name(db.name + ".nnkit-lock"), f"the gradebook {db}"))
            elif self.db_url.startswith(("postgresql", "postgres")):
                self._pg = _pg_lock(self.db_url)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        for fd in self._fds:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
        self._fds = []
        if self._pg is not None:
            self._pg.close()  # the session lock ends with the session
            self._pg = None


def _pg_lock(db_url: str):
    """A connection holding the gradebook's advisory lock, or RunLocked."""
    import sqlalchemy as sa

    key = int.from_bytes(hashlib.sha256(b"nnkit-grade").digest()[:8], "big", signed=True)
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    conn = engine.connect()
    got = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
    conn.commit()
    if not got:
        conn.close()
        raise RunLocked(f"another grading run holds the gradebook {engine.url.render_as_string(hide_password=True)}; "
                        "wait for it to finish, then run again")
    return conn
