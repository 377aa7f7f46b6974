"""The student's notebook kernel, run inside the bubblewrap sandbox during autograde.

nbgrader's autograde executes notebooks with its ``Execute`` preprocessor, an
nbclient ``NotebookClient``. nbclient starts the kernel through its
``kernel_manager_class``; here that is :class:`SandboxedKernelManager`, which
wraps the kernel command in ``autograder.sandbox.bwrap``'s bwrap command line, so the
kernel gets exactly the sandbox of ``sandbox.run`` (see that module's docstring
for what is visible and how each limit is enforced):

- the kernel's working folder is ``/tmp/work`` inside the sandbox's private,
  size-capped ``/tmp`` (a tmpfs that dies with the sandbox): a copy, made inside
  the sandbox, of the submission's working copy (``workdir``), which is visible
  read-only. So nothing the kernel writes ever lands in a host folder that the
  grader reads afterwards: the executed notebook comes back over the Jupyter
  protocol only, and nbgrader writes it into ``workdir`` from outside;
- the only host folder the kernel can write is its runtime folder (connection
  file and ZMQ sockets): when the grader is root it is a tmpfs of its own
  (:data:`RUNTIME_BYTES`, :data:`RUNTIME_INODES`), mounted for this kernel
  manager and unmounted with it, so its size is capped by the kernel, not by a
  watcher; a non-root grader cannot mount, and there it is a plain folder whose
  files are capped one by one (``RLIMIT_FSIZE``) only;
- read-only besides: the Python environment and ``readable``; nothing else of the host;
- no network: the kernel talks to the grader over ZMQ ``ipc`` (Unix sockets in
  the runtime folder), because with a fresh network namespace TCP loopback to
  the grader does not exist;
- limits: ``RLIMIT_AS`` and a memory cgroup where writable (memory), ``RLIMIT_CPU``, ``RLIMIT_FSIZE``, pids cgroup /
  ``RLIMIT_NPROC`` (processes), a capped ``/tmp``; the per-cell wall time is
  nbgrader's ``Execute.timeout``; ``Limits.wall_seconds`` is the wall time of one
  kernel, i.e. of the whole notebook unless the grader restarts the kernel (a
  timer SIGKILLs the kernel's sandbox); ``Limits.output_bytes`` caps what one
  kernel may send as outputs, text and images alike (the iopub channel counts
  it; past the cap the text is cut, a notice is put in the output, and the
  kernel is killed); a restart starts both counts afresh (what the dead kernel left queued
  on iopub is dropped uncounted); the kernel's own stdout/stderr file
  descriptors go to a bounded buffer, never to the grader's terminal.
- environment: bwrap itself is started with the minimal sandbox environment
  (``sandbox.sandbox_env`` plus nbgrader's markers and ``extra_env``), never the
  grader's, so no secret is in any process of the sandbox, PID 1 included.
- the whole process tree dies with the kernel: the manager SIGKILLs bwrap,
  ``--die-with-parent`` takes the PID namespace's init and so every process.

Why the kernel ended is recorded: :func:`kernel_outcomes` ``(workdir)`` lists one
dict per kernel started for that working copy, e.g. ``{"reason": "timeout",
"returncode": -9, "stderr_tail": "..."}``, with reason ``None`` (normal
shutdown), ``"timeout"`` (notebook wall time), ``"output"``, ``"memory"`` (died
with a MemoryError on its stderr), ``"cpu"`` (RLIMIT_CPU) or ``"died"`` (it
exited by itself, e.g. ``os._exit``). Past ``max_processes`` a fork just fails
inside (pids cgroup or RLIMIT_NPROC), so that is no reason to stop the kernel.

How the grading code plugs it in: :func:`sandbox_kernel_config` returns a
traitlets ``Config`` to merge into the nbgrader config for one submission. It
replaces nbgrader's ``Execute`` in ``Autograde.autograde_preprocessors`` by
:class:`SandboxedExecute` (needed: ``Execute.__init__`` passes
``kernel_manager_class=AsyncKernelManager`` as a keyword, which beats
``c.Execute.kernel_manager_class`` from config) and configures the manager.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import Any

from jupyter_client.channels import AsyncZMQSocketChannel
from traitlets import Dict, Float, Integer, List, Type, Unicode, default
from traitlets.config import Config

from . import bwrap as sandbox
from .bwrap import Limits
from .lean_kernel import LeanKernelClient, LeanKernelManager

__all__ = [
    "SandboxedKernelManager",
    "SandboxedKernelClient",
    "SandboxedExecute",
    "sandbox_kernel_config",
    "kernel_outcomes",
]

# workdir (real path) -> outcomes of the kernels started for it, in order. Per process:
# each grading worker sees the kernels it started.
_OUTCOMES: dict[str, list[dict]] = {}
_OUTCOMES_LOCK = threading.Lock()

#: Size and file count of a kernel's runtime folder (connection file + five sockets).
RUNTIME_BYTES = 1 << 20
RUNTIME_INODES = 64
#: The kernel's working folder inside the sandbox (in its private /tmp).
KERNEL_CWD = "/tmp/work"
_RUNTIME_PREFIX = "nnkit-k-"

_OUTPUT_NOTICE = "\n[nnkit sandbox: output limit of {limit} bytes reached; the kernel was stopped]\n"


def kernel_outcomes(workdir: os.PathLike | str) -> list[dict]:
    """How each sandboxed kernel started for ``workdir`` ended (see the module docstring)."""
    with _OUTCOMES_LOCK:
        return [dict(o) for o in _OUTCOMES.get(os.path.realpath(os.fspath(workdir)), [])]


def clear_kernel_outcomes(workdir: os.PathLike | str | None = None) -> None:
    """Forget recorded outcomes (of one working copy, or all)."""
    with _OUTCOMES_LOCK:
        if workdir is None:
            _OUTCOMES.clear()
        else:
            _OUTCOMES.pop(os.path.realpath(os.fspath(workdir)), None)


class _CountingIOPubChannel(AsyncZMQSocketChannel):
    """The iopub channel, counting output bytes and stopping the kernel past the cap."""

    manager: "SandboxedKernelManager | None" = None

    async def _recv(self, **kwargs: Any) -> dict:
        msg = await super()._recv(**kwargs)
        km = self.manager
        if km is not None:
            km._count_output(msg)
        return msg

    async def drop_queued(self, quiet: float = 0.05, at_most: float = 2.0) -> int:
        """Read and drop, uncounted, every message waiting on the socket, until it has been
        quiet for ``quiet`` seconds (or for ``at_most`` seconds in all: a sender that never
        stops cannot hold the grader here); returns how many there were."""
        dropped, stop = 0, time.monotonic() + at_most
        while time.monotonic() < stop and await self.socket.poll(int(quiet * 1000)):
            await self.socket.recv_multipart(copy=False)
            dropped += 1
        return dropped


class SandboxedKernelClient(LeanKernelClient):
    """A lean kernel client (ready as soon as the kernel has answered) whose iopub channel
    enforces the sandbox's output cap."""

    iopub_channel_class = Type(_CountingIOPubChannel)

    @property
    def iopub_channel(self):
        channel = super().iopub_channel
        if isinstance(channel, _CountingIOPubChannel) and isinstance(self.parent, SandboxedKernelManager):
            channel.manager = self.parent
            self.parent._iopub_channels.add(channel)
        return channel


class SandboxedKernelManager(LeanKernelManager):
    """An ``AsyncKernelManager`` that launches the kernel inside bubblewrap (with
    ``lean_kernel``'s launcher: no debugpy).

    Configure ``workdir`` (the submission's working copy; default: the kernel's
    ``cwd``), ``readable`` and the limit traits; ``transport`` is forced to ``ipc``.
    """

    workdir = Unicode("", help="The submission's working copy, writable inside (default: the kernel cwd).").tag(config=True)
    readable = List(Unicode(), help="Extra host paths visible read-only inside.").tag(config=True)
    extra_env = Dict(help="Extra environment variables for the kernel.").tag(config=True)
    wall_seconds = Float(Limits.wall_seconds, help="Wall time of the whole notebook; then the kernel is killed.").tag(config=True)
    cpu_seconds = Integer(Limits.cpu_seconds).tag(config=True)
    memory_bytes = Integer(Limits.memory_bytes).tag(config=True)
    max_processes = Integer(Limits.max_processes).tag(config=True)
    output_bytes = Integer(Limits.output_bytes).tag(config=True)
    file_bytes = Integer(Limits.file_bytes).tag(config=True)

    client_class = Unicode("autograder.sandbox.kernel.SandboxedKernelClient").tag(config=True)
    client_factory = Type(klass="jupyter_client.asynchronous.AsyncKernelClient", config=True)

    @default("client_factory")
    def _client_factory_default(self):
        return SandboxedKernelClient

    @default("transport")
    def _transport_default(self):
        return "ipc"

    # ------------------------------------------------------------------ set-up

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.transport = "ipc"  # TCP cannot cross the network namespace
        self._runtime_dir, self._runtime_mounted = _make_runtime_dir()
        self.connection_file = os.path.join(self._runtime_dir, "kernel.json")
        self.ip = os.path.join(self._runtime_dir, "k")
        self._cgroup: sandbox.RunCgroup | None = None
        self._timer: threading.Timer | None = None
        self._reason: str | None = None
        self._output_seen = 0
        self._output_noticed = False
        self._stdio: list[sandbox._Capture] = []
        self._recorded = False
        self._workdir_real = ""
        self._proc = None
        self._iopub_channels: weakref.WeakSet[_CountingIOPubChannel] = weakref.WeakSet()

    @property
    def stop_reason(self) -> str | None:
        """Why the sandbox stopped the current kernel ("timeout", "output",
        "memory" when the memory cgroup OOM-killed something inside), else None.

        Known as soon as the sandbox kills the kernel, before any shutdown; a kernel
        that died by itself shows up only in :func:`kernel_outcomes` (reason "died").
        """
        if self._reason is None and self._cgroup is not None and self._cgroup.oom_kills() > 0:
            return "memory"
        return self._reason

    @property
    def limits(self) -> Limits:
        return Limits(
            wall_seconds=self.wall_seconds, cpu_seconds=self.cpu_seconds, memory_bytes=self.memory_bytes,
            max_processes=self.max_processes, output_bytes=self.output_bytes, file_bytes=self.file_bytes,
        )

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = super().format_kernel_cmd(extra_arguments)
        if not sandbox.available():
            raise sandbox.SandboxUnavailableError(sandbox.unavailable_reason())
        cwd = os.path.realpath(self._launch_args.get("cwd") or self.workdir or os.getcwd())
        workdir = os.path.realpath(self.workdir or cwd)
        if not (cwd == workdir or cwd.startswith(workdir + os.sep)):
            raise ValueError(f"sandboxed kernel: cwd {cwd} is outside the working copy {workdir}")
        self._workdir_real = workdir
        # A SIGINT to the process group would reach the outer bwrap too, which dies of it
        # and takes the whole sandbox along: interrupt by message instead (ipykernel then
        # sends SIGINT to itself, inside the sandbox).
        self.kernel_spec.interrupt_mode = "message"
        if self._cgroup is None and sandbox.cgroups_available():
            self._cgroup = sandbox.RunCgroup(self.limits)
        readable = [workdir, *self.readable]
        # A kernelspec may name another Python environment than the grader's: show that
        # environment (read-only) too, never more than its prefix.
        exe = os.path.realpath(cmd[0]) if os.path.isabs(cmd[0]) else ""
        if exe and os.path.basename(os.path.dirname(exe)) == "bin":
            prefix = os.path.dirname(os.path.dirname(exe))
            covered = sandbox.python_paths() + ["/usr"]
            if prefix not in ("/", os.path.expanduser("~")) and not any(
                prefix == p or prefix.startswith(p + "/") for p in covered
            ):
                readable.append(prefix)
        # Inside: copy the working copy into the private /tmp, then become the kernel there.
        # JPY_PARENT_PID (set by jupyter_client's launcher) names a host pid that the PID
        # namespace hides; with it ipykernel's parent poller would end the kernel at once.
        rel = os.path.relpath(cwd, workdir)
        target = KERNEL_CWD if rel == "." else os.path.join(KERNEL_CWD, rel)
        start = ["/bin/sh", "-c", 'unset JPY_PARENT_PID; mkdir -p "$1" && cp -R "$0"/. "$1"/ && cd "$2" && shift 2 && exec "$@"',
                 workdir, KERNEL_CWD, target, *cmd]
        return sandbox.limited_bwrap_argv(
            start, writable=[self._runtime_dir], readable=readable, cwd="/tmp",
            limits=self.limits, cgroup=self._cgroup,
        )

    def _kernel_env(self) -> dict[str, str]:
        env = {}
        # nbgrader's markers (set in os.environ around execution) are what notebooks check.
        for key in ("NBGRADER_EXECUTION", "NBGRADER_VALIDATING"):
            if key in os.environ:
                env[key] = os.environ[key]
        env.update(self.extra_env)
        return env

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        # A restart: the kernel before this one is dead and reaped, so what waits on the iopub
        # sockets is its output, e.g. the flood it was killed for. Counted, it would use up the
        # new kernel's budget and have it killed before its first reply; shown, it would belong
        # to a cell that is over (nbclient ignores it too). Drop it, uncounted.
        for channel in list(self._iopub_channels):
            if channel.socket is not None and not channel.socket.closed:
                await channel.drop_queued()
        # The kernel's raw stdout/stderr (C code, os.write) go to bounded buffers.
        kw["stdout"] = subprocess.PIPE
        kw["stderr"] = subprocess.PIPE
        kw["stdin"] = subprocess.DEVNULL
        # bwrap (PID 1 inside) and so every process of the sandbox get the minimal
        # environment, never the grader's (nbclient would pass os.environ).
        kw["env"] = sandbox.sandbox_env(self._kernel_env())
        self._reason = None
        self._output_seen = 0
        self._output_noticed = False
        self._recorded = False
        await super()._async_launch_kernel(kernel_cmd, **kw)
        proc = self._proc = self.provisioner.process  # the provisioner forgets it on wait()
        self._stdio = [sandbox._Capture(p, 64 << 10, lambda n: None) for p in (proc.stdout, proc.stderr)]
        for t in self._stdio:
            t.start()
        self.arm_wall_timer()

    def arm_wall_timer(self) -> None:
        """(Re)start the kernel's wall time: ``wall_seconds`` from now, then its sandbox is killed.

        At the launch; and again when a kernel started ahead (a spare) is handed its notebook,
        so that the time it waited is not taken from the notebook's."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer = threading.Timer(self.wall_seconds, self._kill_for, args=("timeout",))
        self._timer.daemon = True
        self._timer.start()

    @property
    def is_running(self) -> bool:
        """Its sandbox is up and nothing has stopped it (a cheap, synchronous check)."""
        proc = self._proc
        return proc is not None and proc.poll() is None and self._reason is None

    # ---------------------------------------------------------------- stopping

    def _kill_for(self, reason: str) -> None:
        """SIGKILL the kernel's whole sandbox (thread-safe: only signals)."""
        if self._reason is None:
            self._reason = reason
        proc = self._proc
        if proc is not None and proc.poll() is None:
            sandbox.kill_tree(proc, self._cgroup)
        elif self._cgroup is not None:
            self._cgroup.kill()

    def _count_output(self, msg: dict) -> None:
        """Count one iopub message's output text; past the cap cut it and kill the kernel."""
        if msg.get("msg_type") not in ("stream", "display_data", "execute_result", "update_display_data", "error"):
            return
        content = msg.get("content", {})
        limit = self.output_bytes
        if msg["msg_type"] == "stream":
            text = content.get("text", "")
            size = len(text.encode("utf-8", "replace"))
            room = max(limit - self._output_seen, 0)
            self._output_seen += size
            if self._output_seen > limit:
                notice = "" if self._output_noticed else _OUTPUT_NOTICE.format(limit=limit)
                self._output_noticed = True
                content["text"] = text[:room] + notice
                self._kill_for("output")
        else:
            size = sum(len(str(v)) for v in content.get("data", {}).values()) + len(str(content.get("traceback", "")))
            self._output_seen += size
            if self._output_seen > limit:
                if "data" in content:
                    content["data"] = {"text/plain": "" if self._output_noticed else _OUTPUT_NOTICE.format(limit=limit)}
                self._output_noticed = True
                self._kill_for("output")

    def _record_outcome(self) -> None:
        if self._recorded or not self._workdir_real:
            return
        proc = self._proc
        rc = proc.poll() if proc is not None else None
        for t in self._stdio:
            t.join(2)
        stderr = self._stdio[1].value() if len(self._stdio) > 1 else b""
        reason = self._reason
        # Dead before the grader asked it to stop (os._exit, a crash, a signal): "died".
        if reason is None and rc is not None and not self._shutting_down:
            if b"MemoryError" in stderr[-4096:] or (self._cgroup is not None and self._cgroup.oom_kills() > 0):
                reason = "memory"
            elif rc == 128 + signal.SIGXCPU:
                reason = "cpu"
            else:
                reason = "died"
        outcome = {"reason": reason, "returncode": rc, "stderr_tail": stderr[-2000:].decode("utf-8", "replace")}
        with _OUTCOMES_LOCK:
            _OUTCOMES.setdefault(self._workdir_real, []).append(outcome)
        self._recorded = True

    _shutting_down = False

    async def _async_shutdown_kernel(self, now: bool = False, restart: bool = False) -> None:
        # A kernel that is still alive here is being shut down by the grader: not a death.
        proc = self._proc
        self._shutting_down = proc is not None and proc.poll() is None
        try:
            await super()._async_shutdown_kernel(now=now, restart=restart)
        finally:
            self._stop_everything()

    def _stop_everything(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            self._shutting_down = True  # the grader is stopping a live kernel
            reason = self._reason
            self._kill_for("shutdown")
            self._reason = reason
            proc.wait()
        if self._cgroup is not None:
            self._cgroup.kill()
        self._record_outcome()

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        self._stop_everything()
        await super()._async_cleanup_resources(restart=restart)
        if not restart:
            self.cleanup_runtime()

    # AsyncKernelManager binds these names to KernelManager's functions; rebind to ours.
    cleanup_resources = _async_cleanup_resources
    shutdown_kernel = _async_shutdown_kernel

    def cleanup_runtime(self) -> None:
        """Remove the cgroup and the runtime folder of a manager whose kernel never started
        (or is dead and cleaned up): what ``__init__`` and the launch made, nothing else."""
        if self._cgroup is not None:
            self._cgroup.remove()
            self._cgroup = None
        if self._runtime_dir:
            _remove_runtime_dir(self._runtime_dir, self._runtime_mounted)
            self._runtime_dir = ""

    def __del__(self):
        # Last resort: never leave a sandbox, a cgroup or a runtime folder behind.
        try:
            if self._timer is not None:
                self._timer.cancel()
            self.cleanup_runtime()
        except Exception:
            pass


def _make_runtime_dir() -> tuple[str, bool]:
    """A fresh runtime folder for one kernel manager; (path, whether it is a tmpfs of its own).

    Short path: Unix socket names are limited to ~107 bytes. As root it is a tmpfs
    mount capped at RUNTIME_BYTES / RUNTIME_INODES and owned by the sandbox's uid;
    mounts left by grader processes that died are removed first.
    """
    _remove_stale_runtime_dirs()
    path = tempfile.mkdtemp(prefix=f"{_RUNTIME_PREFIX}{os.getpid()}-", dir="/tmp")
    if not sandbox.drops_privileges():
        return path, False
    opts = (f"size={RUNTIME_BYTES},nr_inodes={RUNTIME_INODES},mode=0700,uid={sandbox.SANDBOX_UID},"
            f"gid={sandbox.SANDBOX_GID},nosuid,nodev,noexec")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "nnkit-kernel-runtime", path],
                          capture_output=True, timeout=20)
    if done.returncode != 0:
        os.rmdir(path)
        raise sandbox.SandboxUnavailableError(
            "could not mount the kernel's runtime tmpfs: " + done.stderr.decode(errors="replace").strip())
    return path, True


def _remove_runtime_dir(path: str, mounted: bool) -> None:
    if mounted:
        # Lazy: a socket still held open by a dying kernel must not keep the mount.
        subprocess.run(["umount", "-l", path], capture_output=True, timeout=20)
    shutil.rmtree(path, ignore_errors=True)


def _remove_stale_runtime_dirs() -> None:
    """Unmount and remove runtime tmpfs mounts whose grader process is gone (e.g. kill -9)."""
    try:
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return
    for line in mounts:
        fields = line.split()
        point = fields[4] if len(fields) > 4 else ""
        name = os.path.basename(point)
        if os.path.dirname(point) != "/tmp" or not name.startswith(_RUNTIME_PREFIX):
            continue
        try:
            owner = int(name[len(_RUNTIME_PREFIX):].split("-")[0])
        except ValueError:
            continue
        if owner != os.getpid() and not os.path.exists(f"/proc/{owner}"):
            _remove_runtime_dir(point, True)


try:  # nbgrader is an instructor-only dependency; the manager above works without it.
    from nbgrader.preprocessors import Execute as _NbgraderExecute
except ImportError:  # pragma: no cover
    _NbgraderExecute = None

if _NbgraderExecute is not None:
    from jupyter_core.utils import run_sync as _run_sync

    class SandboxedExecute(_NbgraderExecute):
        """nbgrader's ``Execute`` with the kernel in the sandbox (config section ``Execute`` still applies).

        Kernels started ahead: when ``warm_next`` is set for a notebook (the grader knows another
        notebook of the submission follows), the next notebook's kernel is started as soon as
        this one's is ready, in a sandbox of its own, and waits there idle; the next notebook takes
        it instead of starting one (0.3-0.4 s a notebook, hidden under the one running), where
        each sandbox has a pids cgroup of its own (not under RLIMIT_NPROC). It is
        the kernel that notebook would have started: the same manager class, config, kernel
        name, arguments and working folder (else it is thrown away and a fresh one started),
        its working folder copied when it started (nbgrader writes only the executed notebooks
        there in between, and kernels cannot write there at all); its wall time starts when its
        notebook takes it. No student code runs in it before then. A spare that no notebook
        takes is killed by the next spare, by :meth:`discard_spare` (the grader calls it after
        each submission), or at the latest by its own wall timer.
        """

        #: Start the next notebook's kernel once this one's is ready (set before each notebook).
        warm_next = False
        #: The kernel started ahead, waiting: (manager, the cwd it started in); per grading class.
        _spare: "tuple[SandboxedKernelManager, str | None] | None" = None

        def __init__(self, *args, **kwargs):
            kwargs.setdefault("kernel_manager_class", SandboxedKernelManager)
            super().__init__(*args, **kwargs)

        def _cwd(self) -> str | None:
            return self.resources.get("metadata", {}).get("path") or None

        def create_kernel_manager(self):
            spare, type(self)._spare = type(self)._spare, None
            if spare is not None:
                ready, cwd = spare
                if (ready.kernel_name == self._kernel_name() and cwd == self._cwd()
                        and type(ready) is self.kernel_manager_class and ready.is_running):
                    ready.arm_wall_timer()
                    self.km = ready
                    return ready
                _discard(ready)
            return super().create_kernel_manager()

        def _kernel_name(self) -> str:
            """The kernel name ``create_kernel_manager`` gives the manager it creates."""
            if not self.kernel_name:
                kn = self.nb.metadata.get("kernelspec", {}).get("name")
                if kn is not None:
                    self.kernel_name = kn
            return self.kernel_name or self.kernel_manager_class.class_traits()["kernel_name"].default()

        async def async_start_new_kernel_client(self):
            kc = await super().async_start_new_kernel_client()
            if self.warm_next:
                await self._start_spare()
            return kc

        # NotebookClient binds this name to its own coroutine; rebind to ours.
        start_new_kernel_client = _run_sync(async_start_new_kernel_client)

        async def _start_spare(self) -> None:
            old, type(self)._spare = type(self)._spare, None
            if old is not None:
                await _async_discard(old[0])
            if sandbox.process_limit_mode() != "cgroup":
                # RLIMIT_NPROC counts per uid: the spare's threads would come out of the running
                # kernel's processes. Kernels start one after the other there.
                return
            km = None
            try:
                km = self.kernel_manager_class(kernel_name=self.km.kernel_name, config=self.config)
                await km.start_kernel(extra_arguments=list(self.extra_arguments), cwd=self._cwd())
            except Exception:  # no spare: the next notebook starts its kernel as usual
                if km is not None:
                    await _async_discard(km)
                return
            type(self)._spare = (km, self._cwd())

        @classmethod
        def discard_spare(cls) -> None:
            """Kill the kernel started ahead that no notebook took (synchronous; never raises)."""
            spare, cls._spare = cls._spare, None
            if spare is not None:
                _discard(spare[0])

    async def _async_discard(km: SandboxedKernelManager) -> None:
        km._recorded = True  # it ran no notebook: no outcome to report
        try:
            await km.shutdown_kernel(now=True)
        except Exception:
            km._stop_everything()
            km.cleanup_runtime()

    def _discard(km: SandboxedKernelManager) -> None:
        try:
            _run_sync(_async_discard)(km)
        except Exception:
            pass

else:  # pragma: no cover
    SandboxedExecute = None


def sandbox_kernel_config(
    workdir: os.PathLike | str,
    limits: Limits = Limits(),
    *,
    readable: list[os.PathLike | str] = (),
    env: dict[str, str] | None = None,
) -> Config:
    """nbgrader config that runs the student's kernel sandboxed, for one submission.

    Parameters
    ----------
    workdir : the submission's working copy as nbgrader executes it
        (``autograded/<student>/<assignment>``); visible read-only inside and copied
        into the kernel's private working folder. It need not exist yet: nbgrader
        creates it before starting the kernel.
    limits : ``wall_seconds`` is for the whole notebook; set the per-cell timeout
        with ``c.Execute.timeout``.
    readable : extra host paths visible read-only (e.g. a dataset folder).
    env : extra environment variables for the kernel (e.g. ``NNKIT_DATASET``).

    Returns
    -------
    Config : merge it into the nbgrader config (``config.merge(...)``).
    """
    if SandboxedExecute is None:  # pragma: no cover
        raise ImportError("sandbox_kernel_config needs nbgrader (pip install '.[instructor]')")
    from nbgrader.converters import Autograde

    c = Config()
    defaults = Autograde.class_traits()["autograde_preprocessors"].default()
    execute = _NbgraderExecute
    c.Autograde.autograde_preprocessors = [SandboxedExecute if p is execute else p for p in defaults]
    km = c.SandboxedKernelManager
    km.workdir = os.path.realpath(os.fspath(workdir))
    km.readable = [os.path.realpath(os.fspath(p)) for p in readable]
    km.extra_env = dict(env or {})
    km.wall_seconds = float(limits.wall_seconds)
    km.cpu_seconds = int(limits.cpu_seconds)
    km.memory_bytes = int(limits.memory_bytes)
    km.max_processes = int(limits.max_processes)
    km.output_bytes = int(limits.output_bytes)
    km.file_bytes = int(limits.file_bytes)
    return c
