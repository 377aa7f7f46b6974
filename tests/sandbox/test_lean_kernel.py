"""The graded kernel's lean launcher and its readiness (autograder.sandbox.lean_kernel)."""
import asyncio
import sys
import textwrap
from queue import Empty

import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from autograder.sandbox import bwrap as sandbox
from autograder.sandbox.kernel import SandboxedKernelManager
from autograder.sandbox.lean_kernel import (LEAN_LAUNCHER, LeanKernelClient, LeanKernelManager, lean_kernel_cmd,
                                            wait_until_ready)

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}

PROBE = textwrap.dedent("""
    import sys
    import helper_in_cwd  # the notebook's folder is importable, as with ipykernel_launcher
    try:
        import debugpy
        blocked = False
    except ImportError:
        blocked = True
    print(helper_in_cwd.VALUE, blocked, sys.modules.get("debugpy") is not None, "_pydevd_bundle" in sys.modules)
""")


def test_only_the_ipykernel_launcher_command_is_replaced():
    cmd = ["/x/bin/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    assert lean_kernel_cmd(cmd) == ["/x/bin/python", "-c", LEAN_LAUNCHER, "-f", "{connection_file}"]
    # What `ipykernel install` writes: the debugger's -Xfrozen_modules=off goes, other options stay.
    installed = ["/x/bin/python", "-Xfrozen_modules=off", "-E", "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    assert lean_kernel_cmd(installed) == ["/x/bin/python", "-E", "-c", LEAN_LAUNCHER, "-f", "{connection_file}"]
    other = ["/x/bin/python", "-m", "some_other_kernel", "-f", "{connection_file}"]
    assert lean_kernel_cmd(other) == other
    assert lean_kernel_cmd(["julia", "-i"]) == ["julia", "-i"]


def _run_probe(tmp_path, manager_class):
    (tmp_path / "helper_in_cwd.py").write_text("VALUE = 'cwd-ok'\n")
    tmp_path.chmod(0o755)
    nb = new_notebook(cells=[new_code_cell(PROBE)], metadata={"kernelspec": KERNELSPEC})
    client = NotebookClient(nb, timeout=60, kernel_manager_class=manager_class,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    out = "".join(o.get("text", "") for o in nb.cells[0].outputs if o.output_type == "stream")
    return out.split(), client


def test_a_lean_kernel_runs_cells_without_debugpy(tmp_path):
    words, client = _run_probe(tmp_path, LeanKernelManager)
    assert words == ["cwd-ok", "True", "False", "False"], words
    assert client.nb.metadata.get("language_info", {}).get("name") == "python"  # its kernel_info reached nbclient


@pytest.mark.skipif(not sandbox.available(), reason="bubblewrap not usable here")
def test_the_sandboxed_kernel_is_the_lean_one(tmp_path):
    words, _ = _run_probe(tmp_path, SandboxedKernelManager)
    assert words == ["cwd-ok", "True", "False", "False"], words


def test_ready_means_the_first_cell_is_heard_in_full(tmp_path):
    """After wait_until_ready, iopub is connected: a cell's busy, output and idle all arrive."""
    async def go():
        km = LeanKernelManager(kernel_name="python3")
        await km.start_kernel(cwd=str(tmp_path))
        kc = km.client()
        kc.start_channels()
        try:
            await wait_until_ready(kc, timeout=60)
            msg_id = kc.execute("print('heard')")
            seen = []
            while "idle" not in seen:
                msg = await kc.get_iopub_msg(timeout=30)
                if msg["parent_header"].get("msg_id") == msg_id:
                    content = msg["content"]
                    seen.append(content["execution_state"] if msg["msg_type"] == "status"
                                else content.get("text", msg["msg_type"]).strip())
            return seen
        finally:
            kc.stop_channels()
            await km.shutdown_kernel(now=True)

    assert asyncio.run(go()) == ["busy", "execute_input", "heard", "idle"]


def test_a_lean_kernel_loses_no_output_to_its_quick_replies(tmp_path):
    """The lean launcher skips empty flushes and the nap before each reply: every cell still
    gets all of its own output, and only its own: text printed just before the reply, text with
    no newline, stderr, output still being sent by a timed flush, rich display data."""
    kinds = [
        ("print('p{i}')", "p{i}\n"),
        ("import sys; _ = sys.stdout.write('w{i}')", "w{i}"),
        ("import sys; print('e{i}', file=sys.stderr)", "e{i}\n"),
        ("import time; print('t{i}'); time.sleep(0.21); print('u{i}')", "t{i}\nu{i}\n"),
        ("x = {i}", ""),
        ("from IPython.display import display; display({{'n': {i}}})", "{{'n': {i}}}"),
    ]
    cells, expected = [], []
    for i in range(120):
        code, out = kinds[i % len(kinds)]
        cells.append(new_code_cell(code.format(i=i)))
        expected.append(out.format(i=i))
    nb = new_notebook(cells=cells, metadata={"kernelspec": KERNELSPEC})
    NotebookClient(nb, timeout=60, kernel_manager_class=LeanKernelManager, shutdown_kernel="immediate",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()

    def text(cell):
        return "".join(o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in cell.outputs)

    got = [text(c) for c in nb.cells]
    assert got == expected, [(i, g, e) for i, (g, e) in enumerate(zip(got, expected)) if g != e][:5]


def _wait_for(argv, tmp_path, timeout):
    """wait_until_ready on a lean kernel manager whose kernel command is ``argv``."""
    async def go():
        km = LeanKernelManager(kernel_name="python3")
        km.format_kernel_cmd = lambda extra_arguments=None: argv
        await km.start_kernel(cwd=str(tmp_path))
        kc = km.client()
        kc.start_channels()
        try:
            await wait_until_ready(kc, timeout=timeout)
        finally:
            kc.stop_channels()
            await km.shutdown_kernel(now=True)

    asyncio.run(go())


def test_a_kernel_that_dies_at_start_is_reported(tmp_path):
    with pytest.raises(RuntimeError, match="died before replying"):
        _wait_for([sys.executable, "-c", "import sys; sys.exit(3)"], tmp_path, timeout=30)


def test_a_kernel_that_never_answers_times_out(tmp_path):
    with pytest.raises(RuntimeError, match="didn't respond in 1.5 seconds"):
        _wait_for([sys.executable, "-c", "import time; time.sleep(60)"], tmp_path, timeout=1.5)


class _FakeChannel:
    def __init__(self):
        self.queue, self.timeouts = [], 0

    async def get_msg(self, timeout=None):
        if not self.queue:
            self.timeouts += 1
            await asyncio.sleep(min(timeout, 0.01))
            raise Empty
        return self.queue.pop(0)


def _msg(msg_type, parent="", session="kernel-1", **content):
    return {"msg_type": msg_type, "header": {"session": session, "msg_type": msg_type},
            "parent_header": {"msg_id": parent} if parent else {}, "content": content}


class _FakeClient:
    """Replies to every kernel_info on shell; the first request's busy and idle are lost (they
    went out before iopub was subscribed). Then iopub brings ``welcome`` (messages to queue
    after the first reply) and, from the second request on, a stray idle of the first request
    and the request's own busy and idle."""

    def __init__(self, welcome=()):
        self.shell_channel, self.iopub_channel = _FakeChannel(), _FakeChannel()
        self.asked, self.handled, self.welcome = [], None, list(welcome)

    def kernel_info(self):
        msg_id = f"ki-{len(self.asked)}"
        self.asked.append(msg_id)
        self.shell_channel.queue.append(_msg("kernel_info_reply", msg_id, n=len(self.asked)))
        if len(self.asked) == 1:
            self.iopub_channel.queue += self.welcome
        else:
            self.iopub_channel.queue += [_msg("status", "ki-0", execution_state="idle"),
                                         _msg("status", msg_id, execution_state="busy"),
                                         _msg("status", msg_id, execution_state="idle")]
        return msg_id

    def _handle_kernel_info_reply(self, msg):
        self.handled = msg

    async def _async_is_alive(self):
        return True


def test_a_missed_idle_status_asks_again_and_only_its_own_idle_counts():
    kc = _FakeClient()
    asyncio.run(wait_until_ready(kc, timeout=10))
    assert kc.asked == ["ki-0", "ki-1"]
    assert kc.handled["parent_header"]["msg_id"] == "ki-1"


def test_the_kernels_welcome_proves_iopub_without_asking_again():
    kc = _FakeClient(welcome=[_msg("status", execution_state="starting"), _msg("iopub_welcome", subscription="")])
    asyncio.run(wait_until_ready(kc, timeout=10))
    assert kc.asked == ["ki-0"]
    assert kc.handled["parent_header"]["msg_id"] == "ki-0"
    assert kc.iopub_channel.timeouts == 0  # ready on the welcome, not after a wait for the idle


def test_a_welcome_from_another_kernel_session_proves_nothing():
    # e.g. queued from the kernel before a restart: this kernel's subscription may not be in yet
    kc = _FakeClient(welcome=[_msg("iopub_welcome", session="kernel-0", subscription="")])
    asyncio.run(wait_until_ready(kc, timeout=10))
    assert kc.asked == ["ki-0", "ki-1"]
    assert kc.handled["parent_header"]["msg_id"] == "ki-1"


def test_a_lean_kernel_managers_clients_wait_until_ready():
    # nbclient calls kc.wait_for_ready: without this client it would wait jupyter_client's way
    assert isinstance(LeanKernelManager(kernel_name="python3").client(), LeanKernelClient)
