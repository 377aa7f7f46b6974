"""Run untrusted student code inside bubblewrap (``bwrap``), with limits.

Everything the grader runs on behalf of a student (a fresh Python process for
the trusted checks, the notebook kernel during autograde) goes through here.
:func:`run` runs one command and returns a :class:`SandboxResult`;
:func:`bwrap_argv` builds the command line only (the sandboxed kernel uses it,
see ``autograder.sandbox.kernel``).

What the sandboxed process sees
-------------------------------
- ``/usr`` read-only, with the usual ``/bin``, ``/sbin``, ``/lib``, ``/lib64``
  (symlinks into ``/usr`` on merged-/usr systems, read-only binds otherwise).
- ``/etc``: only ``ld.so.cache``, ``ld.so.conf``, ``localtime``, ``passwd``, ``group``,
  ``nsswitch.conf`` (read-only; ``passwd`` holds no hashes, ``shadow`` is absent).
- The Python environment read-only at its real paths: ``sys.prefix``,
  ``sys.base_prefix``, ``sys.exec_prefix``, ``sys.base_exec_prefix`` and the
  folder of the interpreter's real location. Only those folders: a venv inside
  the repo shows the venv, not the repo.
- ``writable`` paths read-write and ``readable`` paths read-only, each at its own
  path. Nothing else of the host file system: not the repo, the gradebook,
  ``source/``, other submissions, ``nbgrader_config.py`` or ``$HOME``.
- A private ``/tmp`` (tmpfs capped at ``Limits.file_bytes``), a fresh ``/proc``
  showing only the sandbox's processes, a minimal ``/dev``. ``/`` is read-only.
- A fresh network namespace: only the sandbox's own loopback, so no route
  anywhere and nothing listening on the host's 127.0.0.1 is reachable; no DNS.
  Fresh PID, IPC and UTS (hostname ``sandbox``) namespaces.
- Who runs inside: never root. When the grader is root, bwrap sets up the mounts
  as root and then ``setpriv`` switches to the unprivileged uid/gid
  :data:`SANDBOX_UID` (65534, ``nobody``) with every capability, the bounding
  set and new privileges dropped, before anything else runs; files written to a
  ``writable`` folder belong to that uid (the folder is handed to it first). A
  non-root grader runs bwrap in a fresh user namespace, as itself.
- Folders on the way to a bound path are made ``0755`` inside (bwrap copies the
  host's mode otherwise, and e.g. ``/root`` is ``0700``), so bound paths must be
  world-readable to be usable inside.
- The environment is NOT inherited, by bwrap itself either (PID 1 of the sandbox is
  bwrap, and its ``/proc/1/environ`` is what a student would read): a minimal one is built (PATH with the
  interpreter's folder, ``HOME=TMPDIR=/tmp``, ``MPLCONFIGDIR``, ``LANG``,
  ``PYTHONDONTWRITEBYTECODE=1``, one BLAS thread, and ``MPLBACKEND``,
  ``NNKIT_DATASET``, ``NNKIT_DATA_DIR`` copied from the grader if set); ``env``
  entries are added on top. So grader secrets in ``os.environ`` never leak.

Which limits are enforced, and how
----------------------------------
- wall time (``wall_seconds``): the grader kills the outer ``bwrap`` with SIGKILL;
  ``--die-with-parent`` then SIGKILLs the namespace's init (bwrap's reaper), and
  when PID 1 of a PID namespace dies the kernel kills every process in it, so
  double-forked children that ignore SIGTERM/SIGINT die too. When a pids cgroup
  is used (below), every process left in it is SIGKILLed as well.
- CPU time (``cpu_seconds``): ``RLIMIT_CPU`` (per process, via ``prlimit``
  inside the sandbox); SIGXCPU ends the process (reason ``"timeout"``); one
  second later SIGKILL ends one that ignores SIGXCPU (reason ``"killed"``).

bwrap needs user namespaces. As root (this machine) that always works; a
non-root grader on Ubuntu >= 23.10 (GitHub's ubuntu-24.04 runners) needs
``sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`` once, and
:func:`available` is False, with that advice in :func:`unavailable_reason`, until then.
- memory (``memory_bytes``): ``RLIMIT_AS`` per process: a large allocation fails
  with ``MemoryError`` inside (two malloc arenas at most, ``MALLOC_ARENA_MAX``, so that
  reserved address space does not eat the cap). And, when a memory cgroup is writable (root on
  this machine), a per-run cgroup caps the whole tree's memory at
  ``memory_bytes`` too, so many processes each under the cap cannot add up to
  exhaust the machine: past it the kernel OOM-kills a process INSIDE the
  sandbox, never the grader. Reason ``"memory"`` when the process died with a
  ``MemoryError`` or the cgroup OOM-killed something. :func:`memory_limit_mode`
  says which applies (without the cgroup the cap is per process only).
- processes (``max_processes``): a per-run pids cgroup with ``pids.max`` when
  one is writable (cgroup v1 ``/sys/fs/cgroup/pids`` or a delegated v2 cgroup;
  true for root on this machine); otherwise ``RLIMIT_NPROC``, which binds because
  nothing inside runs as root. Without the cgroup the count is per uid: a non-root
  grader's bwrap has its own user namespace, but its processes are the grader's uid on
  the host, so its concurrent sandboxes share one count; as root, sandboxes run as
  :data:`SANDBOX_UID`, and each grading worker takes a uid of its own
  (:func:`use_worker_uid`), so one student's fork bomb cannot use up the processes of a
  classmate graded beside them.
  :func:`process_limit_mode` says which applies (``"cgroup"``, ``"rlimit"``). Both
  count threads too (a Jupyter kernel uses about ten).
- file size (``file_bytes``): ``RLIMIT_FSIZE`` (a write past it fails with
  ``EFBIG``; Python ignores SIGXFSZ) and the size of the private ``/tmp`` tmpfs,
  which caps all files together (``ENOSPC``). Callers give student code no other
  writable place (``writable`` folders have no cap of their own).
- output (``output_bytes``): stdout and stderr are read by the grader; each is
  kept up to ``output_bytes``; when their total exceeds it the run is killed,
  and the result is flagged with reason ``"output"``.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

from .limits import Limits

__all__ = [
    "Limits",
    "SandboxResult",
    "SandboxUnavailableError",
    "available",
    "bwrap_argv",
    "run",
    "limited_argv",
    "python_paths",
    "sandbox_env",
    "process_limit_mode",
    "RunCgroup",
    "memory_limit_mode",
]


@dataclass
class SandboxResult:
    """What came out of one sandboxed run.

    ``returncode`` is the command's exit status (bwrap reports a death by signal N
    as 128 + N). ``reason`` is ``"timeout"`` (wall or CPU time), ``"memory"``,
    ``"output"``, ``"killed"`` (another signal) or None (the command ended by itself).
    """

    returncode: int
    stdout: bytes
    stderr: bytes
    timed_out: bool
    reason: str | None


class SandboxUnavailableError(RuntimeError):
    """bubblewrap is missing or cannot create namespaces on this machine."""


_BWRAP = "bwrap"

#: The host uid and gid of every sandboxed process when the grader runs as root.
SANDBOX_UID = SANDBOX_GID = 65534
#: Without a pids cgroup, grading worker k's sandboxes run as WORKER_UID_BASE + k (see
#: :func:`use_worker_uid`): 65000-65533 is a range Debian never allocates.
WORKER_UID_BASE = 65000
_ETC_FILES = ("ld.so.cache", "ld.so.conf", "localtime", "passwd", "group", "nsswitch.conf")
# Passed through from the grader's environment when set (none of them is secret).
_PASSTHROUGH_ENV = ("MPLBACKEND", "NNKIT_DATASET", "NNKIT_DATA_DIR", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")

# Host folders that are never a submission's own: binding one would undo the sandbox.
_TOO_BROAD = frozenset({"/", "/tmp", "/var/tmp", "/usr", "/etc", "/home", "/root", "/var", "/proc", "/sys", "/dev", "/run"})

_available_cache: tuple[bool, str] | None = None


def _probe() -> tuple[bool, str]:
    global _available_cache
    if _available_cache is None:
        exe = shutil.which(_BWRAP)
        if exe is None:
            _available_cache = (False, "bubblewrap is not installed (install the 'bubblewrap' package, e.g. apt-get install bubblewrap)")
        else:
            try:
                proc = subprocess.run(
                    bwrap_argv(["/bin/true"], cwd="/"), capture_output=True, timeout=20, env=sandbox_env()
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                _available_cache = (False, f"bwrap could not be started: {exc}")
            else:
                if proc.returncode == 0:
                    _available_cache = (True, "")
                else:
                    _available_cache = (
                        False,
                        "bwrap cannot create namespaces here: "
                        + proc.stderr.decode(errors="replace").strip()
                        + " (unprivileged user namespaces may be disabled; on Ubuntu >= 23.10 run "
                        "'sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0', or grade as root)",
                    )
    return _available_cache


def available() -> bool:
    """True when bwrap is installed and can create the sandbox's namespaces here."""
    return _probe()[0]


def unavailable_reason() -> str:
    """Why :func:`available` is False ("" when it is True), in words an instructor can act on."""
    return _probe()[1]


def python_paths() -> list[str]:
    """The folders of the running Python environment that a sandboxed Python needs (read-only)."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    real = os.path.realpath(sys.executable)
    paths.add(os.path.dirname(os.path.dirname(real)) if os.path.basename(os.path.dirname(real)) == "bin" else os.path.dirname(real))
    out = []
    for p in sorted(paths, key=len):
        p = os.path.realpath(p)
        # /usr is bound anyway; never bind "/" or a parent of what we already have.
        if p in ("/", "/usr") or p.startswith("/usr/") or any(p == q or p.startswith(q + "/") for q in out):
            continue
        out.append(p)
    return out


def sandbox_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a sandboxed process: a clean minimal one, plus ``env`` on top."""
    bindir = os.path.dirname(sys.executable)
    base = {
        "PATH": f"{bindir}:/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp",
        "TMPDIR": "/tmp",
        "MPLCONFIGDIR": "/tmp/.matplotlib",
        "IPYTHONDIR": "/tmp/.ipython",
        "JUPYTER_RUNTIME_DIR": "/tmp/.jupyter-runtime",
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        # glibc reserves 64 MiB of address space for each thread's malloc arena: a kernel's seven
        # threads took 600 MiB of its RLIMIT_AS before the student's first array (641 MiB at
        # start; 193 MiB with two arenas), so a 1 GiB cap left 320 MiB to use.
        "MALLOC_ARENA_MAX": "2",
    }
    for key in _PASSTHROUGH_ENV:
        if key in os.environ:
            base[key] = os.environ[key]
    if env:
        base.update(env)
    return base


def _norm_paths(paths: Iterable[os.PathLike | str], what: str) -> list[str]:
    out = []
    for p in paths:
        path = os.path.realpath(os.fspath(p))
        if not os.path.exists(path):
            raise FileNotFoundError(f"sandbox: the {what} path {path} does not exist; create it before sandboxing")
        if path in _TOO_BROAD or path == os.path.realpath(os.path.expanduser("~")):
            raise ValueError(
                f"sandbox: refusing to expose {path} as a {what} path (it holds far more than one "
                "submission); pass a folder of its own, e.g. one made with tempfile.mkdtemp()"
            )
        out.append(path)
    return out


def bwrap_argv(
    argv: Sequence[str],
    *,
    writable: Iterable[os.PathLike | str] = (),
    readable: Iterable[os.PathLike | str] = (),
    cwd: os.PathLike | str,
    network: bool = False,
    tmp_bytes: int | None = None,
) -> list[str]:
    """The ``bwrap`` command line that runs ``argv`` in the sandbox (no limits applied).

    Parameters
    ----------
    argv : the command to run inside.
    writable, readable : host paths bound read-write / read-only at the same path.
    cwd : working directory inside; must be, or be inside, a bound path (or ``/``).
    network : share the host network (never for student code).
    tmp_bytes : size cap of the private ``/tmp`` tmpfs (None: no cap).
    """
    if not argv:
        raise ValueError("sandbox: empty command")
    writable = _norm_paths(writable, "writable")
    readable = _norm_paths(readable, "readable")
    cwd = os.path.realpath(os.fspath(cwd))
    privileged = drops_privileges()
    if privileged:
        # No user namespace: bwrap mounts as root, then setpriv (inside) becomes SANDBOX_UID.
        args = [_BWRAP, "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
                "--unshare-cgroup-try", "--die-with-parent", "--hostname", "sandbox"]
        for path in writable:
            _hand_over(path)
    else:
        args = [_BWRAP, "--unshare-all", "--die-with-parent", "--hostname", "sandbox"]
    if network:
        args.append("--share-net")
    args += ["--ro-bind", "/usr", "/usr"]
    for d in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        host = "/" + d
        if os.path.islink(host):
            args += ["--symlink", os.readlink(host), host]
        elif os.path.isdir(host):
            args += ["--ro-bind", host, host]
    for name in _ETC_FILES:
        host = "/etc/" + name
        if os.path.exists(host):
            args += ["--ro-bind", host, host]
    args += ["--proc", "/proc", "--dev", "/dev"]
    if tmp_bytes:
        args += ["--size", str(int(tmp_bytes))]
    args += ["--perms", "1777", "--tmpfs", "/tmp"]
    # Shorter paths first so that a writable folder inside a readable one stays writable.
    binds = [(p, "--ro-bind") for p in python_paths()]
    binds += sorted([(p, "--ro-bind") for p in readable] + [(p, "--bind") for p in writable], key=lambda t: len(t[0]))
    for parent in _ancestors([p for p, _ in binds]):
        args += ["--perms", "0755", "--dir", parent]
    for path, flag in binds:
        args += [flag, path, path]
    visible = [p for p, _ in binds] + ["/usr"]
    if cwd not in ("/", "/tmp") and not any(cwd == p or cwd.startswith(p + "/") for p in visible):
        raise ValueError(f"sandbox: cwd {cwd} is not visible inside; add it (or a parent) to writable or readable")
    # Without this the root tmpfs (and the mount points bwrap made in it) stays writable.
    args += ["--remount-ro", "/", "--chdir", cwd, "--"]
    if privileged:
        args += [_setpriv(), f"--reuid={SANDBOX_UID}", f"--regid={SANDBOX_GID}", "--clear-groups",
                 "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
    return args + [os.fspath(a) for a in argv]


def use_worker_uid(slot: int) -> int:
    """Called by grading worker ``slot`` (0, 1, ...) before it sandboxes anything: when the
    process cap is RLIMIT_NPROC, which counts every process of a uid on the machine, this
    process's sandboxes run as a uid of their own, ``WORKER_UID_BASE + slot``, so concurrent
    workers' sandboxes never share a count. Returns the uid they run as."""
    global SANDBOX_UID, SANDBOX_GID
    if not 0 <= slot < 65534 - WORKER_UID_BASE:
        raise ValueError(f"worker slot {slot} is out of range")
    if drops_privileges() and process_limit_mode() == "rlimit":
        SANDBOX_UID = SANDBOX_GID = WORKER_UID_BASE + slot
    return SANDBOX_UID


def drops_privileges() -> bool:
    """True when the grader is root: sandboxed processes then run as :data:`SANDBOX_UID`."""
    return os.geteuid() == 0


def _setpriv() -> str:
    exe = shutil.which("setpriv", path="/usr/bin:/bin:/usr/sbin:/sbin")
    if exe is None:
        raise SandboxUnavailableError("setpriv (util-linux) is missing: it drops root inside the sandbox; "
                                      "install util-linux")
    return exe


def _ancestors(paths: Iterable[str]) -> list[str]:
    """Every folder on the way to ``paths`` (outside /usr), shortest first, each once."""
    out: set[str] = set()
    for p in paths:
        parent = os.path.dirname(p)
        while parent not in ("/", "") and parent != "/usr" and not parent.startswith("/usr/"):
            out.add(parent)
            parent = os.path.dirname(parent)
    return sorted(out, key=lambda p: (p.count("/"), p))


def _hand_over(path: str) -> None:
    """Give a writable folder (and what the grader put in it) to the sandbox's uid.

    It is the grader's own fresh folder at this point; links are not followed
    (``lchown``), so nothing outside it changes owner.
    """
    os.lchown(path, SANDBOX_UID, SANDBOX_GID)
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            os.lchown(os.path.join(dirpath, name), SANDBOX_UID, SANDBOX_GID)


# ---------------------------------------------------------------------------
# Per-run cgroups: pids (process cap) and memory (the whole tree's memory), when writable.

# controller -> the file that takes its limit, cgroup v1 / v2.
_LIMIT_FILES = {"pids": ("pids.max", "pids.max"), "memory": ("memory.limit_in_bytes", "memory.max")}


def _is_v2() -> bool:
    return not Path("/sys/fs/cgroup/pids/cgroup.procs").exists() and Path("/sys/fs/cgroup/cgroup.controllers").exists()


def _cgroup_root(controller: str) -> Path | None:
    """A cgroup folder where we may make children limited by ``controller``, or None."""
    candidates = []
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    if not _is_v2():
        v1 = Path("/sys/fs/cgroup") / controller
        rel = next((l.split(":", 2)[2] for l in lines if l.count(":") >= 2 and controller in l.split(":")[1].split(",")), None)
        if rel is not None and (v1 / "cgroup.procs").exists():
            candidates.append(v1 / rel.lstrip("/"))
    else:
        rel = next((l[3:] for l in lines if l.startswith("0::")), None)
        if rel is not None:
            root = Path("/sys/fs/cgroup") / rel.lstrip("/")
            try:
                if controller in (root / "cgroup.subtree_control").read_text().split():
                    candidates.append(root)
            except OSError:
                pass
    limit_file = _LIMIT_FILES[controller][1 if _is_v2() else 0]
    for c in candidates:
        _remove_stale_cgroups(c)
        probe = c / f"nnkit-probe-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        try:
            probe.mkdir()
        except OSError:
            continue
        try:
            (probe / limit_file).write_text(f"{64 << 20 if controller == 'memory' else 10}\n")
            # Moving a process in can need more rights than creating the folder (cgroup v2
            # wants write access to the common ancestor): try it with a throwaway shell.
            moved = subprocess.run(["/bin/sh", "-c", 'echo $$ > "$0"', str(probe / "cgroup.procs")],
                                   capture_output=True, timeout=10).returncode == 0
        except (OSError, subprocess.SubprocessError):
            moved = False
        finally:
            for _ in range(50):
                try:
                    probe.rmdir()
                    break
                except OSError:
                    time.sleep(0.01)
        if moved:
            return c
    return None


def _remove_stale_cgroups(root: Path) -> None:
    """Remove empty per-run cgroups left by grader processes that died (their pid is gone)."""
    try:
        entries = list(root.glob("nnkit-sandbox-*"))
    except OSError:
        return
    for d in entries:
        try:
            owner = int(d.name.split("-")[2])
        except (IndexError, ValueError):
            continue
        if owner != os.getpid() and not os.path.exists(f"/proc/{owner}"):
            try:
                d.rmdir()  # fails harmlessly if processes are still in it
            except OSError:
                pass


# One-element lists so that tests can force a mode with monkeypatch.setattr(..., [None]).
_pids_root_cache: list = []
_memory_root_cache: list = []


def _pids_root() -> Path | None:
    if not _pids_root_cache:
        _pids_root_cache.append(_cgroup_root("pids"))
    return _pids_root_cache[0]


def _memory_root() -> Path | None:
    if not _memory_root_cache:
        _memory_root_cache.append(_cgroup_root("memory"))
    return _memory_root_cache[0]


def process_limit_mode() -> str:
    """How ``max_processes`` is enforced here: ``"cgroup"`` (per run) or ``"rlimit"`` (RLIMIT_NPROC)."""
    return "cgroup" if _pids_root() is not None else "rlimit"


def memory_limit_mode() -> str:
    """How ``memory_bytes`` is enforced: ``"cgroup+rlimit"`` (whole tree and per process) or ``"rlimit"`` (per process)."""
    return "cgroup+rlimit" if _memory_root() is not None else "rlimit"


def cgroups_available() -> bool:
    return _pids_root() is not None or _memory_root() is not None


class RunCgroup:
    """The per-run cgroups of one sandbox: ``pids.max`` and the memory limit, as available.

    :meth:`kill` SIGKILLs whatever is left in them; :meth:`oom_kills` says whether
    the memory limit made the kernel kill something inside.
    """

    def __init__(self, limits: Limits):
        name = f"nnkit-sandbox-{os.getpid()}-{uuid.uuid4().hex[:10]}"
        v2 = _is_v2()
        self.dirs: list[Path] = []
        self.has_pids = self.has_memory = False
        self.memory_dir: Path | None = None
        try:
            root = _pids_root()
            if root is not None:
                self._make(root / name)
                (root / name / _LIMIT_FILES["pids"][v2]).write_text(f"{int(limits.max_processes)}\n")
                self.has_pids = True
            root = _memory_root()
            if root is not None:
                path = root / name
                self._make(path)
                (path / _LIMIT_FILES["memory"][v2]).write_text(f"{int(limits.memory_bytes)}\n")
                # No swapping around the limit where swap is accounted.
                swap = path / ("memory.swap.max" if v2 else "memory.memsw.limit_in_bytes")
                if swap.exists():
                    try:
                        swap.write_text("0\n" if v2 else f"{int(limits.memory_bytes)}\n")
                    except OSError:
                        pass
                self.memory_dir = path
                self.has_memory = True
        except OSError:
            self.remove()
            raise

    def _make(self, path: Path) -> None:
        if path not in self.dirs:
            path.mkdir()
            self.dirs.append(path)

    @property
    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs]

    def pids(self) -> list[int]:
        found = set()
        for d in self.dirs:
            try:
                found.update(int(x) for x in (d / "cgroup.procs").read_text().split())
            except OSError:
                pass
        return sorted(found)

    def oom_kills(self) -> int:
        """How many processes the memory limit killed (0 without a memory cgroup)."""
        if self.memory_dir is None:
            return 0
        for name in ("memory.events", "memory.oom_control"):
            try:
                for line in (self.memory_dir / name).read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
            except (OSError, ValueError):
                continue
        return 0

    def kill(self) -> None:
        # Several rounds: a process may fork between reading the list and the kill.
        for _ in range(50):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.01)

    def remove(self) -> None:
        self.kill()
        for d in self.dirs:
            for _ in range(100):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)  # zombies not yet reaped


def limited_argv(argv: Sequence[str], limits: Limits, *, nproc: bool) -> list[str]:
    """``argv`` prefixed with ``prlimit`` setting the per-process rlimits (runs inside the sandbox)."""
    prlimit = shutil.which("prlimit", path="/usr/bin:/bin")
    opts = [
        f"--as={int(limits.memory_bytes)}",
        # soft < hard: SIGXCPU at the soft limit (reported as "timeout"), SIGKILL 1 s later
        # if the process ignores it.
        f"--cpu={int(limits.cpu_seconds)}:{int(limits.cpu_seconds) + 1}",
        f"--fsize={int(limits.file_bytes)}",
        "--core=0",
    ]
    if nproc:
        opts.append(f"--nproc={int(limits.max_processes)}")
    if prlimit:
        return [prlimit, *opts, "--", *argv]
    # No util-linux prlimit: a tiny Python launcher does the same before exec.
    import resource  # noqa: F401  (only to be sure the launcher's import works here)

    code = (
        "import os,resource as r,sys;"
        f"[r.setrlimit(k,v if isinstance(v,tuple) else (v,v)) for k,v in ((r.RLIMIT_AS,{int(limits.memory_bytes)}),(r.RLIMIT_CPU,({int(limits.cpu_seconds)},{int(limits.cpu_seconds) + 1})),"
        f"(r.RLIMIT_FSIZE,{int(limits.file_bytes)}),(r.RLIMIT_CORE,0)"
        + (f",(r.RLIMIT_NPROC,{int(limits.max_processes)})" if nproc else "")
        + ")];os.execvp(sys.argv[1],sys.argv[1:])"
    )
    return [sys.executable, "-S", "-c", code, *argv]


def limited_bwrap_argv(
    argv: Sequence[str],
    *,
    writable: Iterable[os.PathLike | str] = (),
    readable: Iterable[os.PathLike | str] = (),
    cwd: os.PathLike | str,
    limits: Limits,
    cgroup: RunCgroup | None = None,
) -> list[str]:
    """The full command: [cgroup entry] + bwrap + prlimit + ``argv``. Used by :func:`run` and the kernel."""
    has_pids = cgroup is not None and cgroup.has_pids
    # Nothing inside runs as root (see bwrap_argv), so RLIMIT_NPROC binds whenever no pids cgroup does.
    inner = limited_argv(argv, limits, nproc=not has_pids)
    cmd = bwrap_argv(inner, writable=writable, readable=readable, cwd=cwd, tmp_bytes=limits.file_bytes)
    if cgroup is not None and cgroup.dirs:
        # Join the cgroups before bwrap forks anything, so no process escapes the count.
        files = cgroup.procs_files
        script = " && ".join(f'echo $$ > "${i + 1}"' for i in range(len(files))) + f' && shift {len(files)} && exec "$@"'
        cmd = ["/bin/sh", "-c", script, "sh", *files, *cmd]
    return cmd


# ---------------------------------------------------------------------------


class _Capture(threading.Thread):
    """Read one pipe, keep at most ``keep`` bytes, report every byte to ``on_bytes``."""

    def __init__(self, pipe, keep: int, on_bytes):
        super().__init__(daemon=True)
        self.pipe, self.keep, self.on_bytes = pipe, keep, on_bytes
        self.chunks: list[bytes] = []
        self.kept = 0

    def run(self):
        while True:
            try:
                data = os.read(self.pipe.fileno(), 65536)
            except OSError:
                break
            if not data:
                break
            if self.kept < self.keep:
                part = data[: self.keep - self.kept]
                self.chunks.append(part)
                self.kept += len(part)
            self.on_bytes(len(data))

    def value(self) -> bytes:
        return b"".join(self.chunks)


def run(
    argv: Sequence[str],
    *,
    writable: Iterable[os.PathLike | str] = (),
    readable: Iterable[os.PathLike | str] = (),
    cwd: os.PathLike | str,
    limits: Limits = Limits(),
    env: Mapping[str, str] | None = None,
    stdin: bytes | Callable[[], bytes] | None = None,
    cancel: threading.Event | None = None,
) -> SandboxResult:
    """Run ``argv`` in the sandbox under ``limits`` and return what happened.

    Parameters
    ----------
    argv : command; use ``sys.executable`` for Python (the environment is visible read-only).
    writable, readable : host paths visible read-write / read-only at the same path.
    cwd : working directory (inside a writable or readable path).
    limits : see :class:`Limits`.
    env : extra environment variables on top of :func:`sandbox_env`'s minimal one.
    stdin : bytes fed to the command's stdin (default: empty), or a callable that returns them
        or an iterable of chunks of them: called by a feeder thread once the command has
        started, so a command can start (and import what it needs) before its input exists,
        and read each chunk as it comes; stdin closes after the last one.
    cancel : set it to stop the command now, as if its wall time were up (reason "timeout").

    Raises
    ------
    SandboxUnavailableError : bwrap missing or unusable (say so; never fall back silently).
    """
    ok, why = _probe()
    if not ok:
        raise SandboxUnavailableError(why)
    cgroup = RunCgroup(limits) if cgroups_available() else None
    try:
        cmd = limited_bwrap_argv(argv, writable=writable, readable=readable, cwd=cwd, limits=limits, cgroup=cgroup)
        return _run_cmd(cmd, limits, sandbox_env(env), stdin, cgroup, cancel)
    finally:
        if cgroup is not None:
            cgroup.remove()


def _run_cmd(cmd, limits: Limits, env, stdin, cgroup: RunCgroup | None,
             cancel: threading.Event | None = None) -> SandboxResult:
    lock = threading.Lock()
    total = [0]
    over = threading.Event()

    def count(n):
        with lock:
            total[0] += n
            if total[0] > limits.output_bytes:
                over.set()

    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    out = _Capture(proc.stdout, limits.output_bytes, count)
    err = _Capture(proc.stderr, limits.output_bytes, count)
    out.start()
    err.start()
    if stdin:
        threading.Thread(target=feed_pipe, args=(proc.stdin, stdin), daemon=True).start()
    else:
        proc.stdin.close()

    deadline = time.monotonic() + limits.wall_seconds
    reason = None
    while True:
        try:
            proc.wait(timeout=0.02)
            break
        except subprocess.TimeoutExpired:
            pass
        if over.is_set():
            reason = "output"
        elif time.monotonic() > deadline or (cancel is not None and cancel.is_set()):
            reason = "timeout"
        if reason:
            kill_tree(proc, cgroup)
            break
    proc.wait()
    # The namespace is gone with bwrap; the pipes close once every holder died.
    out.join(5)
    err.join(5)
    for pipe in (proc.stdout, proc.stderr):
        pipe.close()
    if over.is_set() and reason is None:
        reason = "output"  # the command ended by itself but printed too much
    rc = proc.returncode
    stderr = err.value()
    if reason is None and rc > 128:
        sig = rc - 128
        reason = "timeout" if sig == signal.SIGXCPU else "killed"
    if reason in (None, "killed") and cgroup is not None and cgroup.oom_kills() > 0:
        reason = "memory"  # the memory cgroup killed something inside, even if the main process lived
    if reason is None and rc != 0 and b"MemoryError" in stderr[-4096:]:
        reason = "memory"
    return SandboxResult(
        returncode=rc, stdout=out.value(), stderr=stderr, timed_out=reason == "timeout", reason=reason
    )


def feed_pipe(pipe, data) -> None:
    """Write ``data`` (``run``'s ``stdin``: bytes, or a callable returning bytes or an iterable
    of chunks) to ``pipe``, each chunk as soon as it exists, then close it; a reader that went
    away ends it quietly."""
    try:
        data = data() if callable(data) else data
        # bytes, or an iterable of them: each chunk goes out as soon as it exists.
        for chunk in ([data] if isinstance(data, (bytes, bytearray)) else data):
            pipe.write(chunk)
            pipe.flush()
    except (BrokenPipeError, OSError):
        pass
    finally:
        try:
            pipe.close()
        except OSError:
            pass


def kill_tree(proc: subprocess.Popen, cgroup: RunCgroup | None) -> None:
    """SIGKILL the outer bwrap; --die-with-parent takes the namespace's init and so every process."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.kill()
    except ProcessLookupError:
        pass
    if cgroup is not None:
        cgroup.kill()
