"""The sandboxed notebook kernel (autograder.sandbox.kernel), attacked through nbclient.

The kernels run exactly as nbgrader's Execute runs them (nbclient with an async
kernel manager); the last test goes through nbgrader's autograde itself with
``sandbox_kernel_config``. Every hostile loop is bounded by a cell timeout or the
notebook wall limit.
"""
import os
import socket
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.v4 import new_code_cell, new_notebook

from autograder.sandbox import bwrap as sandbox
from autograder.sandbox.bwrap import Limits
from autograder.sandbox.kernel import SandboxedKernelManager, kernel_outcomes, sandbox_kernel_config

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def notebook(*cells):
    return new_notebook(cells=[new_code_cell(textwrap.dedent(c)) for c in cells], metadata={"kernelspec": KERNELSPEC})


def execute(nb, workdir, *, timeout=10, sandboxed=True, **traits):
    """Run ``nb`` with cwd ``workdir`` like nbgrader does; return (manager, exception or None)."""
    client = NotebookClient(
        nb, timeout=timeout, allow_errors=True, interrupt_on_timeout=True,
        resources={"metadata": {"path": str(workdir)}},
        **({"kernel_manager_class": SandboxedKernelManager} if sandboxed else {}),
    )
    km = client.km = client.create_kernel_manager()
    for name, value in traits.items():
        setattr(km, name, value)
    try:
        client.execute()
    except (DeadKernelError, CellTimeoutError) as exc:
        return km, exc
    return km, None


def texts(cell):
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def host_pids_with(token):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if token.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found.append(int(entry))
            except OSError:
                pass
    return found


def test_kernel_sees_only_its_working_copy_and_no_network(course, monkeypatch):
    monkeypatch.setenv("NNKIT_COURSE_SECRET", "s3cr3t")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    probe = f"""
        import os, socket
        hits = []
        for p in {[str(course[k]) for k in ("gradebook", "config")] + [str(course["source"]), str(course["other"])]!r}:
            hits.append(os.path.exists(p))
        try:
            socket.create_connection(("127.0.0.1", {port}), timeout=2).close(); hits.append(True)
        except OSError:
            hits.append(False)
        hits.append("NNKIT_COURSE_SECRET" in os.environ)
        open("written.txt", "w").write("mine")
        print(hits, open("written.txt").read(), open("given.txt").read())
    """
    (course["work"] / "given.txt").write_text("from-the-grader")
    try:
        nb = notebook(probe)
        km, exc = execute(nb, course["work"])
        assert exc is None
        assert texts(nb.cells[0]).strip() == str([False] * 6) + " mine from-the-grader"
        # The kernel wrote into its private copy; the host's working copy is untouched.
        assert sorted(p.name for p in course["work"].iterdir()) == ["given.txt"]
        assert not os.path.exists(km._runtime_dir), "the per-kernel runtime folder was left behind"
        assert kernel_outcomes(course["work"])[-1]["reason"] is None
        # Control: an ordinary kernel running the same cell sees all of it.
        nb = notebook(probe)
        _, exc = execute(nb, course["work"], sandboxed=False)
        assert exc is None and texts(nb.cells[0]).strip().startswith(str([True] * 6))
    finally:
        listener.close()


def test_os_exit_ends_run_with_reason_and_next_run_works(course):
    nb = notebook("import os; os._exit(3)", "print('never')")
    _, exc = execute(nb, course["work"])
    assert isinstance(exc, DeadKernelError)
    assert kernel_outcomes(course["work"])[-1]["reason"] == "died"
    nb = notebook("print(6 * 7)")
    _, exc = execute(nb, course["work"])
    assert exc is None and texts(nb.cells[0]) == "42\n"


def test_interrupt_reaches_kernel_without_killing_it(course):
    nb = notebook("import time; time.sleep(60)", "print('after')")
    _, exc = execute(nb, course["work"], timeout=2)
    assert exc is None
    assert nb.cells[0].outputs[-1].get("ename") == "KeyboardInterrupt"
    assert texts(nb.cells[1]) == "after\n"


def test_sigint_ignoring_loop_and_its_orphans_die_at_wall_limit(course):
    token = f"nnkit-korphan-{uuid.uuid4().hex}"
    nb = notebook(f"""
        import os, signal, sys
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execv(sys.executable, [sys.executable, "-c",
                    "import signal, time\\n"
                    "for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP): signal.signal(s, signal.SIG_IGN)\\n"
                    "while True:\\n"
                    "    time.sleep(0.05)\\n",
                    {token!r}])
            os._exit(0)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        while True:
            pass
    """, "print('after')")
    seen = []
    stop = threading.Event()

    def watch():  # the grandchild, seen from the host while the kernel runs
        while not stop.wait(0.1):
            if host_pids_with(token):
                seen.append(True)

    watcher = threading.Thread(target=watch)
    watcher.start()
    t0 = time.monotonic()
    try:
        km, exc = execute(nb, course["work"], timeout=2, wall_seconds=8)
    finally:
        stop.set()
        watcher.join()
    assert exc is not None  # the run ends (DeadKernelError or an IOPub timeout), it does not hang
    assert time.monotonic() - t0 < 40
    assert kernel_outcomes(course["work"])[-1]["reason"] == "timeout"
    assert seen, "the grandchild never ran, so this test proves nothing"
    time.sleep(0.3)
    assert host_pids_with(token) == [], "a grandchild outlived the kernel"
    nb = notebook("print('next')")
    _, exc = execute(nb, course["work"])
    assert exc is None and texts(nb.cells[0]) == "next\n"


def test_output_limit_cuts_and_stops_kernel(course):
    nb = notebook("""
        import sys
        chunk = "y" * (1 << 20)
        for _ in range(100):
            sys.stdout.write(chunk)
            sys.stdout.flush()
    """, "print('after')")
    _, exc = execute(nb, course["work"], timeout=30, output_bytes=1 << 20)
    out = texts(nb.cells[0])
    assert len(out.encode()) <= (1 << 20) + 200
    assert "output limit of 1048576 bytes reached" in out
    assert kernel_outcomes(course["work"])[-1]["reason"] == "output"
    assert isinstance(exc, DeadKernelError)


def test_memory_bomb_fails_in_kernel_which_survives(course):
    nb = notebook("import numpy as np\na = np.ones(8 << 27)", "print('alive')")
    _, exc = execute(nb, course["work"], memory_bytes=2 << 30)
    assert exc is None
    assert "MemoryError" in nb.cells[0].outputs[-1].get("ename", "")
    assert texts(nb.cells[1]) == "alive\n"


def test_the_memory_cap_is_the_students_to_use(course):
    """RLIMIT_AS counts address space: what the kernel reserves before any cell runs (glibc's
    64 MiB malloc arena per thread: 600 MiB of a stock kernel's 641 MiB) comes out of the cap.
    Under a 1 GiB cap, a cell can still have 700 MiB (reserved, not written: instant anywhere)."""
    nb = notebook("block = bytes(700 << 20)\nprint(len(block) >> 20)")
    _, exc = execute(nb, course["work"], memory_bytes=1 << 30)
    assert exc is None
    assert texts(nb.cells[0]) == "700\n", nb.cells[0].outputs


FORK_BOMB_CELL = """
        import os, time
        started = 0
        for i in range(400):
            try:
                pid = os.fork()
            except OSError:
                break
            if pid == 0:
                time.sleep(30); os._exit(0)
            started += 1
        print(started)
    """


def test_fork_bomb_in_kernel_is_contained(course):
    nb = notebook(FORK_BOMB_CELL)
    _, exc = execute(nb, course["work"], timeout=20, max_processes=60)
    assert exc is None
    # The kernel's own threads count too, so fewer than 60 children can start.
    assert 0 < int(texts(nb.cells[0])) < 60


def test_fork_bomb_in_kernel_is_contained_without_a_pids_cgroup(course, rlimit_processes):
    """No pids cgroup (forced): RLIMIT_NPROC holds, also for a root grader, since the kernel is not root."""
    nb = notebook(FORK_BOMB_CELL)
    _, exc = execute(nb, course["work"], timeout=20, max_processes=60)
    assert exc is None
    assert 0 < int(texts(nb.cells[0])) < 60


def test_nbgrader_autograde_uses_the_sandbox(course, monkeypatch):
    from nbgrader.apps import NbGraderAPI
    from traitlets.config import Config

    # nbgrader runs `alembic` from PATH when it creates the gradebook.
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    root = course["root"]

    def cell(src, **nbg):
        c = new_code_cell(src)
        c.metadata["nbgrader"] = {"schema_version": 3, "locked": False, "solution": False, "grade": False, **nbg}
        return c

    nb = new_notebook(cells=[
        cell("def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION", solution=True, grade_id="sol"),
        cell("assert f(2) == 4", grade=True, grade_id="test_f", points=1, locked=True),
    ], metadata={"kernelspec": KERNELSPEC})
    (root / "source" / "ps1").mkdir()
    nbformat.write(nb, root / "source" / "ps1" / "p.ipynb")
    db = root / "gradebook.db"
    db.unlink()  # the fixture's fake; nbgrader makes a real one

    def api(extra=None):
        c = Config()
        c.CourseDirectory.root = str(root)
        c.CourseDirectory.db_url = f"sqlite:///{db}"
        c.Execute.timeout = 10
        if extra is not None:
            c.merge(extra)
        return NbGraderAPI(config=c)

    assert api().generate_assignment("ps1")["success"]
    sub = root / "submitted" / "mallory" / "ps1"
    sub.mkdir(parents=True)
    attack = nbformat.read(root / "release" / "ps1" / "p.ipynb", as_version=4)
    attack.cells[0].source = textwrap.dedent(f"""
        def f(x):
            return 2 * x
        import os
        seen = [os.path.exists(p) for p in ({str(db)!r}, {str(root / 'source')!r}, {str(course['config'])!r})]
        print(seen, os.environ.get("NBGRADER_EXECUTION"))
        try:  # lands, at most, in the sandbox's private /tmp: the host file must not change
            open({str(course['config'])!r}, "a").write("print('PWNED')")
        except OSError:
            pass
    """)
    nbformat.write(attack, sub / "p.ipynb")
    config_before = course["config"].read_text()
    work = root / "autograded" / "mallory" / "ps1"
    result = api(sandbox_kernel_config(work, Limits(wall_seconds=60))).autograde("ps1", "mallory", force=True)
    assert result["success"], result.get("error")
    graded = nbformat.read(work / "p.ipynb", as_version=4)
    assert texts(graded.cells[0]).strip() == "[False, False, False] autograde"
    assert course["config"].read_text() == config_before
    assert kernel_outcomes(work)[-1]["reason"] is None  # proves the sandboxed manager ran it


def test_restart_after_death_gives_a_fresh_sandboxed_kernel(course):
    """The grader restarts a dead kernel and replays cells: that must work and stay sandboxed."""
    import asyncio

    async def scenario():
        km = SandboxedKernelManager(kernel_name="python3")
        await km.start_kernel(cwd=str(course["work"]))
        kc = km.client()
        kc.start_channels()
        try:
            await kc.wait_for_ready(timeout=60)
            kc.execute("import os; os._exit(5)")
            for _ in range(200):
                if not await km.is_alive():
                    break
                await asyncio.sleep(0.05)
            assert not await km.is_alive()
            await km.restart_kernel(now=True)
            await kc.wait_for_ready(timeout=60)
            out = []
            await kc.execute_interactive(
                f"import os; print(os.getpid() < 10, os.path.exists({str(course['gradebook'])!r}))", timeout=30,
                output_hook=lambda m: out.append(m["content"].get("text") or ""))
            return "".join(out), km
        finally:
            kc.stop_channels()
            await km.shutdown_kernel(now=True)

    text, km = asyncio.run(scenario())
    assert text == "True False\n"  # a small pid: still in its own PID namespace; the gradebook unseen
    assert [o["reason"] for o in kernel_outcomes(course["work"])] == ["died", None]
    assert kernel_outcomes(course["work"])[0]["returncode"] == 5
    assert not os.path.exists(km._runtime_dir)


# --- nothing the kernel does reaches a host path; it is not root; no secret is in reach


def test_kernel_writes_links_and_files_never_reach_the_host_working_copy(course, tmp_path):
    """The attacks of issue 9: swap the notebook for a link to a host file, plant links and
    pages for the grader to follow or publish, chmod files. The host copy must stay as it was."""
    canary = tmp_path / "canary.txt"
    canary.write_text("canary")
    os.chmod(canary, 0o600)
    work = course["work"]
    nbfile = work / "01_layers.ipynb"
    nbfile.write_text("{}")
    before = {p.name: (p.read_bytes(), p.stat().st_mode) for p in work.iterdir()}
    cell = f"""
        import os
        results = []
        for action in (
            lambda: (os.remove("01_layers.ipynb"), os.symlink({str(canary)!r}, "01_layers.ipynb")),
            lambda: os.symlink("/dev/zero", "model.npz"),
            lambda: open("feedback.html", "w").write("<script>alert(1)</script>"),
            lambda: os.makedirs("sub") or open("sub/01_layers.html", "w").write("forged"),
            lambda: os.chmod("given.txt", 0o777),
            lambda: open({str(work / "direct.txt")!r}, "w").write("x"),
        ):
            try:
                action(); results.append("ok")
            except OSError as e:
                results.append(e.errno)
        print(results)
    """
    (work / "given.txt").write_text("g")
    before["given.txt"] = ((work / "given.txt").read_bytes(), (work / "given.txt").stat().st_mode)
    nb = notebook(cell)
    _, exc = execute(nb, work)
    assert exc is None
    out = texts(nb.cells[0]).strip()
    # Inside its private copy everything works, except writing the read-only host folder.
    assert out.startswith("['ok', 'ok', 'ok', 'ok', 'ok', ") and not out.endswith("'ok']"), out
    after = {p.name: (p.read_bytes(), p.stat().st_mode) for p in work.iterdir()}
    assert after == before
    assert canary.read_text() == "canary" and (canary.stat().st_mode & 0o777) == 0o600


def test_kernel_runs_as_an_unprivileged_user(course):
    nb = notebook("""
        import os
        caps = [l.split()[1] for l in open('/proc/self/status') if l.startswith('CapEff')][0]
        print(os.getuid(), os.geteuid(), os.getgid(), caps)
    """)
    _, exc = execute(nb, course["work"])
    assert exc is None
    uid, euid, gid, caps = texts(nb.cells[0]).split()
    assert int(caps, 16) == 0, caps
    if os.geteuid() == 0:
        assert (int(uid), int(euid), int(gid)) == (sandbox.SANDBOX_UID, sandbox.SANDBOX_UID, sandbox.SANDBOX_GID)
    else:
        assert int(uid) == os.getuid()


def test_no_process_of_the_sandbox_holds_the_grader_secret(course, monkeypatch):
    """Issue 9: the kernel read NNKIT_COURSE_SECRET from /proc/1/environ (bwrap's own environment)."""
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    monkeypatch.setenv("NNKIT_COURSE_SECRET", secret)
    monkeypatch.setenv("NNKIT_DB_URL", f"postgresql://grader:{secret}@localhost/db")
    token = f"nnkit-env-{uuid.uuid4().hex}"
    nb = notebook(f"""
        import os, time
        seen = []
        for pid in os.listdir('/proc'):
            if pid.isdigit():
                try:
                    seen.append(open(f'/proc/{{pid}}/environ', 'rb').read())
                except OSError:
                    pass
        print({secret!r}.encode() in b''.join(seen), len(seen) > 0)
        import subprocess
        subprocess.Popen(['/bin/sh', '-c', 'sleep 3', {token!r}])
        time.sleep(1)
    """)
    found = []

    def inspect_from_the_host():
        # While the kernel sleeps, read the environment of every process of the sandbox from outside.
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and not found:
            pids = host_pids_with(token)
            if pids:
                for entry in os.listdir("/proc"):
                    if entry.isdigit():
                        try:
                            cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
                            if b"bwrap" in cmd or b"ipykernel" in cmd or token.encode() in cmd:
                                found.append(Path(f"/proc/{entry}/environ").read_bytes())
                        except OSError:
                            pass
            time.sleep(0.05)

    t = threading.Thread(target=inspect_from_the_host)
    t.start()
    _, exc = execute(nb, course["work"])
    t.join()
    assert exc is None
    assert texts(nb.cells[0]).split() == ["False", "True"]
    assert found, "no sandbox process was seen from the host"
    assert not any(secret.encode() in env for env in found)


def test_runtime_folder_and_scratch_are_capped_by_the_kernel(course):
    """The kernel can write its runtime folder (ZMQ sockets) and its private /tmp: both are
    tmpfs with a size, so filling them ends in ENOSPC, not in a full host disk."""
    if os.geteuid() != 0:
        pytest.skip("the runtime folder is a tmpfs of its own only when the grader is root")
    from autograder.sandbox.kernel import RUNTIME_BYTES

    nb = notebook("""
        import os, errno
        from ipykernel import get_connection_file
        def fill(folder, chunk):
            n = 0
            try:
                for i in range(100000):
                    with open(os.path.join(folder, f"fill{i}"), "wb") as f:
                        f.write(b"x" * chunk)
                    n += chunk
            except OSError as e:
                return n, e.errno
            return n, None
        print(*fill(os.path.dirname(get_connection_file()), 64 << 10), *fill(".", 8 << 20))
    """)
    _, exc = execute(nb, course["work"], timeout=60, file_bytes=64 << 20)
    assert exc is None
    runtime, e1, scratch, e2 = texts(nb.cells[0]).split()
    assert int(runtime) <= RUNTIME_BYTES and e1 in ("28", "27"), (runtime, e1)  # ENOSPC (or EFBIG)
    assert int(scratch) <= 64 << 20 and e2 in ("28", "27"), (scratch, e2)


def test_output_a_killed_kernel_left_queued_never_counts_against_the_next(course):
    """A kernel killed for flooding output leaves messages in the client's iopub queue; the
    restarted kernel's output budget starts at zero all the same (else the restart itself would
    be killed for output, and the rest of the notebook lost)."""
    import asyncio

    cap = 64 << 10

    async def scenario():
        km = SandboxedKernelManager(kernel_name="python3", output_bytes=cap)
        await km.start_kernel(cwd=str(course["work"]))
        kc = km.client()
        kc.start_channels()
        try:
            await kc.wait_for_ready(timeout=60)
            kc.execute("import sys\nwhile True:\n    sys.stdout.write('z' * 4000); sys.stdout.flush()")
            while km.stop_reason != "output":  # nbclient reads until the cap kills the kernel
                await kc.get_iopub_msg(timeout=30)
            await km.restart_kernel(now=True)
            await kc.wait_for_ready(timeout=60)
            seen_after_ready = km._output_seen
            out = []
            await kc.execute_interactive("print('fresh')", timeout=30,
                                         output_hook=lambda m: out.append(m["content"].get("text") or ""))
            return seen_after_ready, "".join(out), km.stop_reason
        finally:
            kc.stop_channels()
            await km.shutdown_kernel(now=True)

    seen, text, reason = asyncio.run(scenario())
    assert (seen, reason) == (0, None)
    assert "fresh" in text
    assert [o["reason"] for o in kernel_outcomes(course["work"])][:1] == ["output"]
