"""Each promise of ``autograder.sandbox.bwrap.run`` is a test that tries to break it.

In the spirit of autograder.io's sandbox tests: the hostile code runs inside, the
test checks from outside that nothing escaped. Every hostile loop is bounded by a
small wall limit.
"""
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest

from autograder.sandbox import bwrap as sandbox
from autograder.sandbox.bwrap import Limits


def py(code):
    """argv running ``code`` (dedented) with the grader's interpreter (read-only inside)."""
    return [sys.executable, "-c", textwrap.dedent(code)]


def run_in(course, code, **kw):
    return sandbox.run(py(code), writable=[course["work"]], cwd=course["work"], **kw)


# --- the happy path first: a sandbox that runs nothing would pass every attack test


def test_runs_python_with_numpy_and_writes_only_its_working_copy(course):
    r = run_in(course, """
        import numpy as np, os
        open("out.txt", "w").write(str(int(np.arange(5).sum())))
        print("cwd", os.getcwd())
    """)
    assert r.returncode == 0, r.stderr
    assert r.reason is None and not r.timed_out
    assert r.stdout.decode().strip() == f"cwd {course['work']}"
    assert (course["work"] / "out.txt").read_text() == "10"  # 0+1+2+3+4


def test_stdin_is_passed_and_exit_status_kept(course):
    r = run_in(course, "import sys; d = sys.stdin.read(); print(d[::-1]); sys.exit(3)", stdin=b"abc")
    assert r.returncode == 3
    assert r.stdout == b"cba\n"
    assert r.reason is None


def test_input_that_comes_later_is_fed_and_cancel_stops_the_command(course):
    """A command started before its input exists (the feedback renderer's warm start) gets the
    input once it is known; setting `cancel` stops it at once, as its wall time would."""
    ready = threading.Event()

    def later():
        ready.wait(10)
        return b"late"

    threading.Timer(0.5, ready.set).start()
    r = run_in(course, "import sys; print(sys.stdin.read()[::-1])", stdin=later)
    assert r.returncode == 0 and r.stdout == b"etal\n", r.stderr

    cancel = threading.Event()
    threading.Timer(1.0, cancel.set).start()
    start = time.monotonic()
    r = run_in(course, "import time\nwhile True: time.sleep(0.1)", cancel=cancel,
               limits=Limits(wall_seconds=60))
    assert r.reason == "timeout" and r.timed_out
    assert time.monotonic() - start < 10  # cancelled, not its 60 s wall


def test_grader_environment_is_not_inherited(course, monkeypatch):
    monkeypatch.setenv("NNKIT_COURSE_SECRET", "s3cr3t")
    r = run_in(course, "import os; print(os.environ.get('NNKIT_COURSE_SECRET')); print(os.environ['EXTRA'])",
               env={"EXTRA": "given"})
    assert r.stdout.decode().split() == ["None", "given"], r.stderr


def test_runs_as_an_unprivileged_user_without_capabilities(course):
    """Issue 9: the whole pipeline ran as root. Inside, never root: uid 65534 when the grader is root."""
    r = run_in(course, """
        import os
        caps = {l.split()[0]: int(l.split()[1], 16) for l in open('/proc/self/status') if l.startswith('Cap')}
        print(os.getuid(), os.geteuid(), os.getgid(), os.getegid(), os.getgroups(), caps['CapEff:'], caps['CapBnd:'])
        open('mine.txt', 'w').write('x')
        try:
            os.setuid(0); print('became root')
        except PermissionError:
            print('setuid refused')
    """)
    lines = r.stdout.decode().splitlines()
    assert lines[-1] == "setuid refused", r
    uid, euid, gid, egid, groups, eff, bnd = lines[0].split(" ", 6)[:7]
    assert int(eff) == 0 and int(bnd) == 0
    if os.geteuid() == 0:
        assert {int(uid), int(euid)} == {sandbox.SANDBOX_UID} and {int(gid), int(egid)} == {sandbox.SANDBOX_GID}
        assert (course["work"] / "mine.txt").stat().st_uid == sandbox.SANDBOX_UID
    else:
        assert int(uid) == os.getuid()


def test_bwrap_itself_gets_no_grader_secret(course, monkeypatch):
    """PID 1 of the sandbox is bwrap: its environment is the minimal one, not the grader's."""
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    monkeypatch.setenv("NNKIT_COURSE_SECRET", secret)
    token = f"nnkit-envprobe-{uuid.uuid4().hex}"
    seen = []

    def look():
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not seen:
            for pid in _host_pids_with(token):
                try:
                    seen.append(Path(f"/proc/{pid}/environ").read_bytes())
                except OSError:
                    pass
            time.sleep(0.05)

    t = threading.Thread(target=look)
    t.start()
    r = run_in(course, f"import time; time.sleep(2)  # {token}")
    t.join()
    assert r.returncode == 0 and seen, "the sandbox's processes were never seen from the host"
    assert not any(secret.encode() in env for env in seen)


# --- networking


def test_networking_disabled_even_to_host_loopback(course):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    port = listener.getsockname()[1]
    accepted = []

    def accept():
        listener.settimeout(8)
        try:
            accepted.append(listener.accept())
        except OSError:
            pass

    t = threading.Thread(target=accept)
    t.start()
    code = f"""
        import socket
        results = []
        for target in [("127.0.0.1", {port}), ("1.1.1.1", 53), ("8.8.8.8", 443)]:
            try:
                socket.create_connection(target, timeout=2).close()
                results.append("CONNECTED")
            except OSError as e:
                results.append("failed")
        try:
            socket.getaddrinfo("pypi.org", 443)
            results.append("RESOLVED")
        except OSError:
            results.append("failed")
        print(" ".join(results))
    """
    try:
        r = run_in(course, code, limits=Limits(wall_seconds=20))
        assert r.returncode == 0, r.stderr
        assert r.stdout.decode().split() == ["failed"] * 4
        # Control: the same listener accepts an ordinary connection from outside, so
        # the failure above is the sandbox's doing, not a broken listener.
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        t.join(10)
        assert len(accepted) == 1
    finally:
        listener.close()
        for conn, _ in accepted:
            conn.close()


# --- time limits and the process tree


def _host_pids_with(token):
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if token.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                    pids.append(int(entry))
            except OSError:
                pass
    return pids


def test_entire_process_tree_killed_on_timeout(course):
    token = f"nnkit-orphan-{uuid.uuid4().hex}"
    beat = course["work"] / "heartbeat"
    # A grandchild (double fork, new session) that ignores SIGTERM/SIGINT/SIGHUP and
    # writes a heartbeat forever; the parent then spins ignoring SIGINT too.
    code = f"""
        import os, signal, sys, time
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execv(sys.executable, [sys.executable, "-c",
                    "import signal, time\\n"
                    "for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP): signal.signal(s, signal.SIG_IGN)\\n"
                    "n = 0\\n"
                    "while True:\\n"
                    "    n += 1; open({str(beat)!r}, 'w').write(str(n)); time.sleep(0.05)\\n",
                    {token!r}])
            os._exit(0)
        print("started", flush=True)
        while True:
            pass
    """
    t0 = time.monotonic()
    r = run_in(course, code, limits=Limits(wall_seconds=3))
    elapsed = time.monotonic() - t0
    assert r.timed_out and r.reason == "timeout"
    assert b"started" in r.stdout
    assert elapsed < 10
    assert beat.exists(), "the grandchild never ran, so this test proves nothing"
    time.sleep(0.3)
    before = beat.read_text()
    time.sleep(0.5)
    assert beat.read_text() == before, "a grandchild is still writing after the run ended"
    assert _host_pids_with(token) == []


def test_cpu_time_limit(course):
    r = run_in(course, "while True: pass", limits=Limits(cpu_seconds=1, wall_seconds=20))
    assert r.reason == "timeout" and r.timed_out
    assert r.returncode == 128 + 24  # SIGXCPU, reported by bwrap as 128 + signal


FORK_BOMB = """
    import os, sys, time
    started = 0
    for i in range(400):
        try:
            pid = os.fork()
        except OSError as e:
            print("fork failed:", e.errno, flush=True)
            break
        if pid == 0:
            os.execv("/bin/sleep", ["sleep", "30", {token!r}])
        started += 1
    print("started", started, flush=True)
    time.sleep(30)
"""


def test_process_spawn_blocked_beyond_limit(course):
    """A bounded fork bomb (400 sleepers) against max_processes=40, with this machine's mechanism."""
    token = f"nnkit-bomb-{uuid.uuid4().hex}"
    mode = sandbox.process_limit_mode()
    r = run_in(course, FORK_BOMB.format(token=token), limits=Limits(max_processes=40, wall_seconds=4))
    lines = r.stdout.decode().splitlines()
    assert r.reason == "timeout"
    started = int(lines[-1].split()[1])
    # The cap counts every task of the run (bwrap's init, python and the sleepers).
    assert 0 < started < 40, f"{started} processes started under max_processes=40 ({mode})"
    assert lines[0].startswith("fork failed: 11")  # EAGAIN
    time.sleep(0.2)
    assert _host_pids_with(token) == []


def test_process_cap_holds_without_a_pids_cgroup(course, rlimit_processes):
    """No pids cgroup (forced): RLIMIT_NPROC must still stop the bomb, also when the grader is root
    (root ignores RLIMIT_NPROC, so this holds only because nothing inside runs as root)."""
    token = f"nnkit-bomb-{uuid.uuid4().hex}"
    r = run_in(course, FORK_BOMB.format(token=token), limits=Limits(max_processes=40, wall_seconds=4))
    lines = r.stdout.decode().splitlines()
    assert lines and lines[0].startswith("fork failed: 11"), r  # EAGAIN
    assert int(lines[-1].split()[1]) < 40, lines[-1]
    time.sleep(0.2)
    assert _host_pids_with(token) == []


def test_grader_survives_fork_bomb_and_next_run_works(course):
    code = """
        import os
        while True:
            try:
                os.fork()
            except OSError:
                pass
    """
    r = run_in(course, code, limits=Limits(max_processes=64, wall_seconds=2))
    assert r.reason in ("timeout", "killed")
    ok = run_in(course, "print('alive')")
    assert ok.stdout == b"alive\n" and ok.returncode == 0


# --- memory, output, disk


def test_memory_limit_fails_inside_and_grader_lives(course):
    r = run_in(course, """
        import numpy as np
        a = np.ones(8 << 27)  # 8 GiB of float64
        print("ALLOCATED", a.nbytes)
    """, limits=Limits(memory_bytes=1 << 30))
    assert b"ALLOCATED" not in r.stdout
    assert r.reason == "memory"
    assert r.returncode != 0
    assert b"MemoryError" in r.stderr
    # A small allocation under the same limit works: the limit is not just "always fail".
    ok = run_in(course, "import numpy as np; print(np.ones(1 << 24).sum())", limits=Limits(memory_bytes=1 << 30))
    assert ok.stdout.strip() == str(float(1 << 24)).encode()


def test_memory_of_many_processes_is_capped_together(course):
    """Six children each under the per-process cap, 2.4 GiB together against a 1 GiB cap."""
    if sandbox.memory_limit_mode() != "cgroup+rlimit":
        pytest.skip("no writable memory cgroup here: memory is capped per process only (RLIMIT_AS)")
    code = """
        import os, time
        kids = []
        for i in range(6):
            pid = os.fork()
            if pid == 0:
                block = b"\\1" * (400 << 20)  # touched, so really resident
                open(f"held{i}", "w").write("1")
                time.sleep(3)
                os._exit(0)
            kids.append(pid)
        statuses = [os.waitpid(p, 0)[1] for p in kids]
        print(sum(1 for st in statuses if os.WIFSIGNALED(st) and os.WTERMSIG(st) == 9))
    """
    r = run_in(course, code, limits=Limits(memory_bytes=1 << 30, wall_seconds=30))
    assert r.reason == "memory", r
    held = len(list(course["work"].glob("held*")))
    assert held < 6, "all six held 400 MiB at once under a 1 GiB cap"
    assert r.stdout.strip() and int(r.stdout) >= 1, r  # the kernel OOM-killed children inside
    ok = run_in(course, "print(len(b'x' * (300 << 20)))", limits=Limits(memory_bytes=1 << 30))
    assert ok.stdout.strip() == str(300 << 20).encode() and ok.reason is None


def test_output_limit_truncates_and_flags(course):
    t0 = time.monotonic()
    r = run_in(course, """
        import sys
        chunk = "x" * (1 << 20)
        for _ in range(100):
            sys.stdout.write(chunk)
        sys.stdout.flush()
        print("DONE", file=sys.stderr)
    """, limits=Limits(output_bytes=1 << 20, wall_seconds=30))
    assert r.reason == "output"
    assert not r.timed_out
    assert len(r.stdout) <= 1 << 20
    assert r.stdout == b"x" * len(r.stdout)
    assert time.monotonic() - t0 < 20


def test_large_file_write_fails_at_limit(course):
    r = run_in(course, """
        import errno
        try:
            with open("huge.bin", "wb") as f:
                for _ in range(64):
                    f.write(b"\\0" * (1 << 20))
            print("WROTE ALL")
        except OSError as e:
            print("errno", e.errno)
    """, limits=Limits(file_bytes=4 << 20))
    assert r.stdout.decode().split() == ["errno", "27"]  # EFBIG
    assert (course["work"] / "huge.bin").stat().st_size <= 4 << 20


def test_tmp_is_private_and_capped(course, tmp_path):
    r = run_in(course, """
        import os
        written = 0
        try:
            for i in range(16):
                with open(f"/tmp/fill{i}", "wb") as f:
                    f.write(b"\\0" * (1 << 20))
                written += 1
        except OSError as e:
            print("errno", e.errno)
        print("files", written)
    """, limits=Limits(file_bytes=4 << 20))
    out = r.stdout.decode().split()
    assert out[:2] == ["errno", "28"]  # ENOSPC: the tmpfs is full
    assert int(out[-1]) <= 4
    assert not any(Path("/tmp").glob("fill*"))


# --- what is visible


def test_course_files_and_other_submissions_invisible(course):
    targets = [course["gradebook"], course["source"] / "fcnets" / "01_layers.ipynb",
               course["other"] / "01_layers.ipynb", course["config"], Path(__file__),
               Path(sandbox.__file__)]
    code = f"""
        import os
        for p in {[str(t) for t in targets]!r}:
            try:
                open(p).read()
                print("READ", p)
            except OSError as e:
                print("hidden", e.errno)
        print("listing", sorted(os.listdir({str(course['root'])!r})))
    """
    r = run_in(course, code)
    lines = r.stdout.decode().splitlines()
    assert lines[:-1] == ["hidden 2"] * len(targets), r.stdout  # ENOENT: not even there
    # Only the path down to the working copy exists in the course folder.
    assert lines[-1] == "listing ['autograded']"


def test_reference_solution_and_grader_not_importable(course):
    """The repo's nnkit (with solutions) and the grader's own code must not be reachable."""
    code = """
        import importlib, sys
        for name in ("nnkit", "autograder", "autograder.trusted"):
            try:
                importlib.import_module(name)
                print("IMPORTED", name)
            except ImportError:
                print("absent")
    """
    r = run_in(course, code)
    assert r.stdout.decode().split() == ["absent"] * 3, r.stdout
    # Control: the same interpreter outside, run from the repo, does import them.
    repo = Path(sandbox.__file__).resolve().parents[2]
    out = subprocess.run(py(code), capture_output=True, cwd=repo, env={**os.environ, "PYTHONPATH": f"{repo / 'source'}"})
    assert "IMPORTED nnkit" in out.stdout.decode() and "IMPORTED autograder" in out.stdout.decode(), out.stdout


def test_python_environment_read_only(course):
    import numpy

    site = os.path.dirname(os.path.dirname(numpy.__file__))
    code = f"""
        import os
        for p in [{site!r} + "/evil.pth", {numpy.__file__!r}, {sys.executable!r}]:
            try:
                open(p, "a").write("import os")
                print("WROTE", p)
            except OSError as e:
                print("errno", e.errno)
    """
    r = run_in(course, code)
    # EROFS, EACCES (the sandbox's uid owns nothing there) or ETXTBSY for the running interpreter.
    errnos = r.stdout.decode().split()[1::2]
    assert r.stdout.decode().split()[::2] == ["errno"] * 3, r.stdout
    assert errnos[0] in ("13", "30") and errnos[1] in ("13", "30") and errnos[2] in ("13", "26", "30")
    assert not os.path.exists(site + "/evil.pth")
    with open(numpy.__file__) as f:
        assert not f.read().endswith("import os")


def test_config_files_outside_not_writable(course):
    code = """
        import os
        for p in ["/etc/passwd", "/etc/jupyter/nbgrader_config.py", "/root/.jupyter/nbgrader_config.py",
                  "/usr/local/etc/jupyter/x.py", "/nbgrader_config.py"]:
            try:
                os.makedirs(os.path.dirname(p), exist_ok=True)
                open(p, "a").write("print('PWNED')")
                print("WROTE", p)
            except OSError as e:
                print("refused")
    """
    r = run_in(course, code)
    assert r.stdout.decode().split() == ["refused"] * 5, r.stdout
    with open("/etc/passwd") as f:
        assert "PWNED" not in f.read()


def test_readable_paths_are_read_only(course, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "x.txt").write_text("hello")
    r = sandbox.run(py(f"""
        print(open({str(data / 'x.txt')!r}).read())
        try:
            open({str(data / 'y.txt')!r}, "w")
        except OSError as e:
            print("errno", e.errno)
    """), writable=[course["work"]], readable=[data], cwd=course["work"])
    assert r.stdout.decode().split() == ["hello", "errno", "30"]
    assert not (data / "y.txt").exists()


# --- bad input gets a clear error


def test_cwd_must_be_visible(course, tmp_path):
    with pytest.raises(ValueError, match="not visible inside"):
        sandbox.run(py("pass"), writable=[course["work"]], cwd=tmp_path)


def test_missing_path_is_refused(course, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        sandbox.run(py("pass"), writable=[tmp_path / "nope"], cwd=course["work"])


@pytest.mark.parametrize("path", ["/", "/tmp", "/etc", "/root"])
def test_broad_host_folders_refused(course, path):
    with pytest.raises(ValueError, match="refusing to expose"):
        sandbox.run(py("pass"), writable=[course["work"], path], cwd=course["work"])


def test_bad_limits_refused():
    with pytest.raises(ValueError, match="wall_seconds"):
        Limits(wall_seconds=0)


def test_plain_subprocess_control_sees_what_the_sandbox_hides(course):
    """Control for the visibility tests: outside the sandbox the same read works."""
    out = subprocess.run(py(f"print(open({str(course['gradebook'])!r}, 'rb').read()[-16:])"),
                         capture_output=True)
    assert b"SECRET-GRADEBOOK" in out.stdout


def test_missing_bwrap_is_reported_not_bypassed(course, monkeypatch):
    """Without bwrap, run() refuses with the fix in the message; it never runs unsandboxed."""
    monkeypatch.setattr(sandbox, "_available_cache", None)
    monkeypatch.setattr(sandbox.shutil, "which", lambda name, *a, **k: None if name == "bwrap" else "/usr/bin/" + name)
    assert sandbox.available() is False
    assert "bubblewrap" in sandbox.unavailable_reason()
    with pytest.raises(sandbox.SandboxUnavailableError, match="install the 'bubblewrap' package"):
        run_in(course, "open('ran.txt', 'w')")
    assert not (course["work"] / "ran.txt").exists()


SPAWN_A_FEW = """
    import subprocess
    for i in range(5):
        subprocess.run(["/bin/true"], check=True)
    print("spawned")
"""


@pytest.mark.skipif(not sandbox.drops_privileges(), reason="a uid per worker needs a root grader")
def test_without_a_pids_cgroup_a_workers_fork_bomb_leaves_the_next_worker_its_processes(course, rlimit_processes,
                                                                                        monkeypatch):
    """Two grading workers side by side, no pids cgroup: worker 0's sandbox holds every process
    its cap allows; worker 1's sandbox (its own uid) still starts processes. The same uid, as
    before workers had one each, does not: the control that shows the test can fail."""

    base = 60000 + (os.getpid() % 2000) * 2  # distinct per test process (make test runs two)
    monkeypatch.setattr(sandbox, "WORKER_UID_BASE", base)
    token = f"nnkit-bomb-{uuid.uuid4().hex}"
    limits = Limits(max_processes=30, wall_seconds=8)

    def outcome_beside_a_bomb(slot_of_second):
        assert sandbox.use_worker_uid(0) == base
        bomb = threading.Thread(target=run_in, args=(course, FORK_BOMB.format(token=token)),
                                kwargs={"limits": limits})
        bomb.start()
        deadline = time.monotonic() + 5
        while len(_host_pids_with(token)) < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sandbox.use_worker_uid(slot_of_second) == base + slot_of_second
        try:
            return run_in(course, SPAWN_A_FEW, limits=limits)
        finally:
            bomb.join()

    other = outcome_beside_a_bomb(1)
    assert other.returncode == 0 and other.stdout.decode().strip() == "spawned", other
    same = outcome_beside_a_bomb(0)
    assert same.returncode != 0, same


def test_with_a_pids_cgroup_workers_keep_the_one_sandbox_uid(monkeypatch):
    monkeypatch.setattr(sandbox, "_pids_root_cache", [Path("/sys/fs/cgroup/pids")])
    monkeypatch.setattr(sandbox, "SANDBOX_UID", 65534)
    assert sandbox.use_worker_uid(3) == 65534
    with pytest.raises(ValueError, match="out of range"):
        sandbox.use_worker_uid(-1)
