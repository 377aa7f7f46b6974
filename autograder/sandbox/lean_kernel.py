"""The graded kernel's command and its readiness, without the fixed costs a graded kernel never uses.

Measured on the CI machine (issue 12; `bench/bench_grading_breakdown.py` prints it), a stock
``python -m ipykernel_launcher`` kernel takes about 0.6 s from launch to nbclient's "ready"
and 0.2 s to shut down gracefully; a submission of four notebooks starts four. Three parts
of that are no use to a graded kernel:

- **debugpy.** ipykernel imports debugpy (about 0.12 s) to offer a debugger that nobody
  attaches to a graded kernel, and debugpy's threads hold up the kernel's exit by one of
  jupyter_client's 0.1 s polls. :data:`LEAN_LAUNCHER` is ipykernel_launcher's own two steps
  with ``debugpy`` made unimportable (ipykernel then reports no debugger), and without the
  ``-Xfrozen_modules=off`` that the debugger asks for. :class:`LeanKernelManager` runs it in
  place of ``-m ipykernel_launcher``; the sandboxed kernel manager is one.
- **Polls of 0.1 s.** jupyter_client checks whether a stopping kernel has exited every 0.1 s;
  :class:`LeanKernelManager` checks every 5 ms.
- **The 0.2 s of silence.** jupyter_client's ``wait_for_ready`` ends by reading iopub until
  it has been quiet for 0.2 s. :func:`wait_until_ready` instead waits for the two messages
  that prove readiness: the ``kernel_info_reply`` of its own request on shell, and on iopub
  either that request's ``idle`` status (iopub is connected, and the kernel sent everything
  before it) or the kernel's ``iopub_welcome`` (ipykernel >= 7 sends it once our
  subscription has reached it: from then on nothing it publishes is lost to us). The
  welcome matters: the client's iopub socket connects before the kernel binds, its
  subscription follows on zmq's next reconnect, and measured on the CI machine the first
  request's ``idle`` went out before that in three kernel starts of four; waiting for an
  ``idle`` alone then cost 0.2 s more and a second request. It asks again, like
  jupyter_client, when neither comes.
  :class:`LeanKernelClient` is jupyter_client's async client with this readiness.
- **Per cell, about 2 ms of handshakes.** Before each reply ipykernel flushes stdout and
  stderr, and each flush waits for a round trip through its iopub thread even when nothing
  was written; then it sleeps 0.5 ms (``_execute_sleep``, a mitigation for clients that stop
  reading at the reply; the sleep took 1.3 ms here). The lean launcher skips a flush that has
  nothing to send (nothing buffered, none scheduled) and sets the sleep to 0. Nothing is lost
  to nbclient: what an earlier flush is still sending goes out on iopub before the cell's
  ``idle`` status (one iopub thread, in order), and nbclient reads a cell's outputs until that
  status, whatever came first on shell. Measured here, 200 one-line cells, three runs:
  3.1-3.4 ms a cell in the kernel -> 0.9-1.1 ms; 7.7-8.5 ms a cell through nbclient -> 5.6-6.2 ms.
"""
from __future__ import annotations

import time
from queue import Empty

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from traitlets import Unicode, default

__all__ = ["LEAN_LAUNCHER", "lean_kernel_cmd", "LeanKernelClient", "LeanKernelManager", "wait_until_ready"]

#: ``python -c`` body: what ``ipykernel_launcher`` does (drop the cwd from ``sys.path`` while
#: ipykernel imports; IPython adds it back), with ``import debugpy`` failing.
LEAN_LAUNCHER = "\n".join([
    "import sys",
    "sys.modules['debugpy'] = None",
    "if sys.path and sys.path[0] == '':",
    "    del sys.path[0]",
    "from ipykernel import kernelapp",
    # A flush with nothing written since the last one returns at once (see the module docstring);
    # where ipykernel names its state otherwise, every flush is the full one.
    "from ipykernel.iostream import OutStream",
    "def _flush(self, _full=OutStream.flush):",
    "    if (getattr(self, '_buffers', True) or getattr(self, '_flush_pending', True)",
    "            or getattr(self, '_subprocess_flush_pending', True)):",
    "        _full(self)",
    "OutStream.flush = _flush",
    # No 0.5 ms nap before each execute_reply (see the module docstring).
    "kernelapp.launch_new_instance(argv=[*sys.argv[1:], '--IPythonKernel._execute_sleep=0'])",
])

#: How long one kernel_info request waits for its reply, then for its idle status or the
#: kernel's welcome, before asking again (jupyter_client waits 1 s and 0.2 s).
_REPLY_WAIT = 1.0
_IDLE_WAIT = 0.2
#: How often a stopping kernel is checked for having exited.
_EXIT_POLL = 0.005


def lean_kernel_cmd(cmd: list[str]) -> list[str]:
    """``[python, *options, "-m", "ipykernel_launcher", *args]`` -> ``[python, *options, "-c",
    LEAN_LAUNCHER, *args]``, without ``-Xfrozen_modules=off`` (which ``ipykernel install`` puts
    in the kernelspec for the debugger's sake, and which makes every standard module load from
    its file). Any other command (another kernel, another launcher) is returned unchanged.
    """
    for i in range(1, len(cmd) - 1):
        if cmd[i] == "-m":
            if cmd[i + 1] != "ipykernel_launcher":
                break
            options = [o for o in cmd[1:i] if o != "-Xfrozen_modules=off"]
            return [cmd[0], *options, "-c", LEAN_LAUNCHER, *cmd[i + 2:]]
    return list(cmd)


class LeanKernelClient(AsyncKernelClient):
    """jupyter_client's async kernel client, ready as soon as the kernel has answered
    (:func:`wait_until_ready`)."""

    async def wait_for_ready(self, timeout: float | None = None) -> None:
        await wait_until_ready(self, timeout)


class LeanKernelManager(AsyncKernelManager):
    """An ``AsyncKernelManager`` that starts an ipykernel kernelspec with :data:`LEAN_LAUNCHER`,
    and whose clients are :class:`LeanKernelClient`."""

    client_class = Unicode("autograder.sandbox.lean_kernel.LeanKernelClient").tag(config=True)

    @default("client_factory")
    def _client_factory_default(self):
        # AsyncKernelManager redeclares client_factory with a fixed default, so client_class
        # alone does not reach it.
        return LeanKernelClient

    def format_kernel_cmd(self, extra_arguments=None):
        return lean_kernel_cmd(super().format_kernel_cmd(extra_arguments))

    async def _async_wait(self, pollinterval: float = 0.1) -> None:
        # jupyter_client looks every 0.1 s whether the kernel has exited, so a kill or a graceful
        # shutdown costs a whole 0.1 s even when the kernel is gone at once: look every 5 ms.
        await super()._async_wait(pollinterval=min(pollinterval, _EXIT_POLL))


async def wait_until_ready(kc, timeout: float | None = None) -> None:
    """Wait until the kernel of the async client ``kc`` answers (see the module docstring).

    Raises
    ------
    RuntimeError : the kernel died first, or did not answer within ``timeout`` seconds
        (the messages of jupyter_client's own ``wait_for_ready``).
    """
    deadline = time.monotonic() + (float("inf") if timeout is None else timeout)

    async def next_msg(channel, until: float):
        """The channel's next message before ``until``, or None."""
        left = min(until, deadline) - time.monotonic()
        if left <= 0:
            return None
        try:
            return await channel.get_msg(timeout=left)
        except Empty:
            return None

    while True:
        msg_id = kc.kernel_info()
        reply = None
        until = time.monotonic() + _REPLY_WAIT
        while reply is None and (msg := await next_msg(kc.shell_channel, until)) is not None:
            if msg["msg_type"] == "kernel_info_reply" and msg["parent_header"].get("msg_id") == msg_id:
                reply = msg
        if reply is not None:
            until = time.monotonic() + _IDLE_WAIT
            while (msg := await next_msg(kc.iopub_channel, until)) is not None:
                if _proves_iopub(msg, msg_id, reply):
                    kc._handle_kernel_info_reply(reply)
                    return
        if not await kc._async_is_alive():
            raise RuntimeError("Kernel died before replying to kernel_info")
        if time.monotonic() > deadline:
            raise RuntimeError(f"Kernel didn't respond in {timeout:g} seconds")


def _proves_iopub(msg: dict, msg_id: str, reply: dict) -> bool:
    """Whether iopub message ``msg`` proves that iopub reaches us from the kernel that sent
    ``reply`` (to request ``msg_id``): that request's ``idle`` status, or that kernel's
    ``iopub_welcome`` (the same kernel session as the reply's: a welcome left queued by a
    kernel before a restart proves nothing about the new one)."""
    if msg["msg_type"] == "iopub_welcome":
        session = msg["header"].get("session")
        return session is not None and session == reply["header"].get("session")
    return (msg["msg_type"] == "status" and msg["content"].get("execution_state") == "idle"
            and msg["parent_header"].get("msg_id") == msg_id)
