"""The student's notebook kernel, run inside the bubblewrap sandbox during autograde.

nbgrader's autograde executes notebooks with its ``Execute`` preprocessor, an
nbclient ``NotebookClient``. nbclient starts the kernel through its
``kernel_manager_class``; here that is :class:`SandboxedKernelManager`, which
wraps the kernel command in ``autograder.sandbox``'s bwrap command line, so the
kernel gets exactly the sandbox of ``sandbox.run`` (see that module's docstring
for what is visible and how each limit is enforced):

- visible read-write: the submission's working copy (``workdir``) and a private
  per-kernel runtime folder holding the connection file and the ZMQ sockets;
  read-only: the Python environment and ``readable``; nothing else of the host;
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
  kernel is killed); a restart starts both counts afresh; the kernel's own stdout/stderr file
  descriptors go to a bounded buffer, never to the grader's terminal.
- the whole process tree dies with the kernel: the manager SIGKILLs bwrap,
  ``--die-with-parent`` takes the PID namespace's init and so every process.

Why the kernel ended is recorded: :func:`kernel_outcomes` ``(workdir)`` lists one
dict per kernel started for that working copy, e.g. ``{"reason": "timeout",
"returncode": -9, "stderr_tail": "..."}``, with reason ``None`` (normal
shutdown), ``"timeout"`` (notebook wall time), ``"output"``, ``"memory"`` (died
with a MemoryError on its stderr), ``"cpu"`` (RLIMIT_CPU), ``"processes"`` (over
``max_processes`` where only the watcher enforces it, i.e. root without a pids
cgroup; with a cgroup or RLIMIT_NPROC a fork just fails inside) or ``"died"``
(it exited by itself, e.g. ``os._exit``).

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
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.channels import AsyncZMQSocketChannel
from jupyter_client.manager import AsyncKernelManager
from traitlets import Dict, Float, Integer, List, Type, Unicode, default
from traitlets.config import Config

from autograder import sandbox
from autograder.sandbox import Limits

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


class SandboxedKernelClient(AsyncKernelClient):
    """An async kernel client whose iopub channel enforces the sandbox's output cap."""

    iopub_channel_class = Type(_CountingIOPubChannel)

    @property
    def iopub_channel(self):
        channel = super().iopub_channel
        if isinstance(channel, _CountingIOPubChannel) and isinstance(self.parent, SandboxedKernelManager):
            channel.manager = self.parent
        return channel


class SandboxedKernelManager(AsyncKernelManager):
    """An ``AsyncKernelManager`` that launches the kernel inside bubblewrap.

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

    client_class = Unicode("autograder.sandbox_kernel.SandboxedKernelClient").tag(config=True)
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
        # Short path: Unix socket names are limited to ~107 bytes.
        self._runtime_dir = tempfile.mkdtemp(prefix="nnkit-k-", dir="/tmp")
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
        self._watch: sandbox.ProcessCountWatch | None = None

    @property
    def stop_reason(self) -> str | None:
        """Why the sandbox stopped the current kernel ("timeout", "output", "processes",
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
        # The grader's environment (which nbclient passes to bwrap) never reaches the
        # kernel: `env -i` inside starts from the clean sandbox environment.
        env = sandbox.sandbox_env(self._kernel_env())
        inner = ["/usr/bin/env", "-i", *[f"{k}={v}" for k, v in sorted(env.items())], *cmd]
        readable = list(self.readable)
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
        return sandbox.limited_bwrap_argv(
            inner, writable=[workdir, self._runtime_dir], readable=readable, cwd=cwd,
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
        # The kernel's raw stdout/stderr (C code, os.write) go to bounded buffers.
        import subprocess

        kw["stdout"] = subprocess.PIPE
        kw["stderr"] = subprocess.PIPE
        kw["stdin"] = subprocess.DEVNULL
        self._reason = None
        self._output_seen = 0
        self._output_noticed = False
        self._recorded = False
        await super()._async_launch_kernel(kernel_cmd, **kw)
        proc = self._proc = self.provisioner.process  # the provisioner forgets it on wait()
        self._stdio = [sandbox._Capture(p, 64 << 10, lambda n: None) for p in (proc.stdout, proc.stderr)]
        for t in self._stdio:
            t.start()
        if (self._cgroup is None or not self._cgroup.has_pids) and os.geteuid() == 0:
            # root ignores RLIMIT_NPROC: poll instead
            self._watch = sandbox.ProcessCountWatch(proc.pid, self.max_processes, lambda: self._kill_for("processes"))
            self._watch.start()
        self._timer = threading.Timer(self.wall_seconds, self._kill_for, args=("timeout",))
        self._timer.daemon = True
        self._timer.start()

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
        if self._watch is not None:
            self._watch.stop()
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
            if self._cgroup is not None:
                self._cgroup.remove()
                self._cgroup = None
            shutil.rmtree(self._runtime_dir, ignore_errors=True)

    # AsyncKernelManager binds these names to KernelManager's functions; rebind to ours.
    cleanup_resources = _async_cleanup_resources
    shutdown_kernel = _async_shutdown_kernel

    def __del__(self):
        # Last resort: never leave a sandbox, a cgroup or a runtime folder behind.
        try:
            if self._timer is not None:
                self._timer.cancel()
            if self._cgroup is not None:
                self._cgroup.remove()
            shutil.rmtree(self._runtime_dir, ignore_errors=True)
        except Exception:
            pass


try:  # nbgrader is an instructor-only dependency; the manager above works without it.
    from nbgrader.preprocessors import Execute as _NbgraderExecute
except ImportError:  # pragma: no cover
    _NbgraderExecute = None

if _NbgraderExecute is not None:

    class SandboxedExecute(_NbgraderExecute):
        """nbgrader's ``Execute`` with the kernel in the sandbox (config section ``Execute`` still applies)."""

        def __init__(self, *args, **kwargs):
            kwargs.setdefault("kernel_manager_class", SandboxedKernelManager)
            super().__init__(*args, **kwargs)

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
        (``autograded/<student>/<assignment>``); the only writable host folder inside.
        It need not exist yet: nbgrader creates it before starting the kernel.
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
