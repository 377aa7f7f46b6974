"""Attacks on the trusted checks, each asserting containment.

The student's code runs in the same process as the runner, so it can write
frames on the runner's stdout, try to write into the runner's folder, look for
the grader's secrets, fake its training, or hand in saved models built to
exhaust the grader's memory. Every test here tries one of those the way an
attacker would and asserts the outcome: the right statuses, no points for the
attack, no secret in the report, the grader's memory under a stated figure.

Frames are built here from the documented format (``runner.py``: MAGIC
``NNK1``, uint32 little-endian header length, JSON header, payload), not with
the runner's encoder; ``test_the_tests_frames_speak_the_format`` shows they do.
"""
import json
import os
import struct
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

from autograder import REPO_ROOT
from autograder.trusted import check_models, check_package, covered_grade_ids, reference_outcomes
from autograder.trusted.spec import load_spec
from autograder.trusted.wire import parse_stream

SEED = 777001
#: Peak RSS (MiB) the grading process may reach on any attack here. Measured on this machine
#: (2026-12): check_models on every hostile model file 96 MiB (the same as with no model at all),
#: on the largest model the budget accepts (3,977,080 float64 parameters) 187 MiB; check_package
#: under a 20 MiB output flood 71 MiB (43 MiB without). 300 MiB leaves room for other builds.
PEAK_RSS_MIB = 300


def frame(header, payload=b""):
    data = json.dumps(header).encode()
    return b"NNK1" + struct.pack("<I", len(data)) + data + payload


def array_frame(i, name, array, **override):
    header = {"t": "array", "i": i, "name": name, "dtype": array.dtype.str, "shape": list(array.shape),
              "nbytes": array.nbytes, **override}
    return frame(header, array.tobytes())


def end_frame(i, status="ok", error=None, infos=None, keys=None, mutated=()):
    return frame({"t": "end", "i": i, "status": status, "error": error, "infos": infos or {}, "keys": keys or {},
                  "mutated": list(mutated)})


def calls_and_checks():
    return load_spec("fcnets").build_plan(SEED)


def check_ids_of(call_id):
    return {c.id for c in calls_and_checks()[1] if c.call == call_id}


# ---------------------------------------------------------------------------
# The parser alone: budgets and order, on bytes built here
# ---------------------------------------------------------------------------
def test_the_tests_frames_speak_the_format():
    x = np.arange(6.0).reshape(2, 3)
    data = (frame({"t": "begin", "i": 0}) + array_frame(0, "out", x)
            + end_frame(0, infos={"out": {"kind": "ndarray", "type": "numpy.ndarray"}}) + frame({"t": "done"}))
    parsed = parse_stream(data, 0, 1)
    assert parsed.done and parsed.violation is None
    assert np.array_equal(parsed.outcomes[0].arrays["out"], x)


@pytest.mark.parametrize("bad, words", [
    (b"garbage" * 10, "not a frame"),
    (b"NNK1" + struct.pack("<I", 2**31), "header of"),
    (b"NNK1" + struct.pack("<I", 9) + b"{not json", "not JSON"),
    (frame([1, 2]), "not a JSON object"),
    (b"NNK1" + struct.pack("<I", 40000) + b"[" * 20000 + b"]" * 20000, "not JSON"),
    (array_frame(1, "out", np.zeros(2), dtype="|O"), "dtype"),
    (array_frame(1, "out", np.zeros(2), dtype=">f8"), "dtype"),
    (array_frame(1, "out", np.zeros(2), shape=[-2]), "shape"),
    (array_frame(1, "out", np.zeros(2), shape=[2.0]), "shape"),
    (array_frame(1, "out", np.zeros(2), nbytes=8), "nbytes"),
    (frame({"t": "array", "i": 1, "name": "out", "dtype": "<f8", "shape": [10**6, 10**6], "nbytes": 8 * 10**12}),
     "budget"),
    (array_frame(1, "out", np.zeros(2)) + array_frame(1, "out", np.zeros(2)), "twice"),
    (array_frame(0, "out", np.zeros(2)), "outside"),
    (frame({"t": "begin", "i": 5}), "out of order"),
    (end_frame(3), "outside"),
    (frame({"t": "end", "i": 1, "status": "passed"}), "status"),
    (frame({"t": "end", "i": 1, "status": "ok", "infos": {"out": "ndarray"}}), "description"),
    (frame({"t": "end", "i": 1, "status": "ok", "keys": {"grads": ["W1"] * 300}}), "short list"),
    (frame({"t": "done"}), "before the last call"),
    (frame({"t": "nope"}), "unknown type"),
])
def test_a_malformed_frame_is_a_violation_and_nothing_of_the_launch_is_believed(bad, words):
    x = np.ones(3)
    good = frame({"t": "begin", "i": 0}) + array_frame(0, "out", x) + end_frame(0) + frame({"t": "begin", "i": 1})
    parsed = parse_stream(good + bad + end_frame(1) + frame({"t": "done"}), 0, 2)
    assert parsed.violation is not None and words in parsed.violation, parsed.violation
    assert parsed.outcomes == {} and not parsed.done  # call 0 looked fine, but the stream is not the runner's
    assert parsed.affected == 1


def test_frames_after_done_undo_the_whole_launch():
    stream = frame({"t": "begin", "i": 0}) + end_frame(0) + frame({"t": "done"})
    parsed = parse_stream(stream + frame({"t": "begin", "i": 0}), 0, 1)
    assert parsed.violation and parsed.outcomes == {} and parsed.affected == 0


def test_a_truncated_stream_blames_the_call_that_was_running_or_not_yet_confirmed():
    x = np.ones(1000)
    begin = frame({"t": "begin", "i": 0})
    whole = begin + array_frame(0, "out", x)
    parsed = parse_stream(whole[:-100], 0, 3)
    assert parsed.violation is None and parsed.outcomes == {} and parsed.affected == 0
    # Ended but not confirmed by the next begin: that call is the one that died.
    parsed = parse_stream(whole + end_frame(0), 0, 3)
    assert parsed.outcomes == {} and parsed.affected == 0
    parsed = parse_stream(whole + end_frame(0) + frame({"t": "begin", "i": 1}), 0, 3)
    assert list(parsed.outcomes) == [0] and parsed.affected == 1


def test_a_stream_over_the_budget_is_refused_before_reading_it():
    parsed = parse_stream(b"\0" * 1001, 0, 1, budget=1000)
    assert parsed.violation and "more than 1000 bytes" in parsed.violation


def test_an_array_bigger_than_what_is_left_of_the_budget_is_refused_before_its_bytes_arrive():
    a = np.zeros(100)  # 800 bytes; the second array's header claims 800 more, of which no byte follows
    second = array_frame(0, "b", a)[:-a.nbytes]
    stream = frame({"t": "begin", "i": 0}) + array_frame(0, "a", a) + second
    parsed = parse_stream(stream, 0, 1, budget=len(stream))
    assert parsed.violation and "budget" in parsed.violation
    # Within the budget, the same missing bytes are only a truncated stream.
    parsed = parse_stream(stream, 0, 1, budget=len(stream) + a.nbytes)
    assert parsed.violation is None and parsed.affected == 0


# ---------------------------------------------------------------------------
# Attacks from student code inside the sandboxed runner
# ---------------------------------------------------------------------------
#: Appended to the package's layers.py: runs at import, i.e. during call 0 (affine.2d) of the
#: first launch (argv[3] is the index the launch starts from); writes to every pipe it holds
#: above fd 2, which is where the runner keeps its copy of stdout.
PRELUDE = '''
import json as _json, os as _os, struct as _struct, sys as _sys


def _wire_fds():
    fds = []
    for _name in _os.listdir("/proc/self/fd"):
        try:
            if int(_name) > 2 and _os.readlink("/proc/self/fd/" + _name).startswith("pipe:"):
                fds.append(int(_name))
        except OSError:
            pass
    return fds


def _send(data):
    for _fd in _wire_fds():
        try:
            _view = memoryview(data)
            while _view:
                _view = _view[_os.write(_fd, _view):]
        except OSError:
            pass


def _frame(header, payload=b""):
    _h = _json.dumps(header).encode()
    return b"NNK1" + _struct.pack("<I", len(_h)) + _h + payload


_FIRST_LAUNCH = len(_sys.argv) > 3 and _sys.argv[3] == "0"
'''


def with_attack(pkg, code, **values):
    """Append the prelude and ``code`` (with ``{NAME}`` placeholders filled by repr of ``values``) to layers.py."""
    code = textwrap.dedent(code)
    for key, value in values.items():
        code = code.replace("{" + key + "}", repr(value))
    path = pkg / "layers.py"
    path.write_text(path.read_text() + "\n" + PRELUDE + code)
    return pkg


def rows_by_id(report):
    return {c["id"]: c for c in report["checks"]}


def assert_only_call_lost(report, call_id, words):
    """The checks of ``call_id`` are errors saying ``words``; every other check passed."""
    lost = check_ids_of(call_id)
    for cid, row in rows_by_id(report).items():
        if cid in lost:
            assert row["status"] == "error" and row["points"] == 0 and words in row["message"], row
        else:
            assert row["status"] == "passed", row
    json.dumps(report)


def reference_layout():
    """Per call: output name -> shape, and the dict outputs' keys, of the reference (what a forger would claim)."""
    calls, _ = calls_and_checks()
    shapes, keys = [], []
    for o in reference_outcomes(SEED, calls, load_spec("fcnets")):
        shapes.append({n: list(a.shape) for n, a in o.arrays.items() if not n.startswith("alt.")})
        keys.append(o.keys)
    return shapes, keys


def test_forged_descriptions_of_full_results_without_arrays_score_nothing(kit, tmp_path, use_sandbox):
    """The old runner trusted descriptions: a stub that described right-shaped arrays got points."""
    shapes, keys = reference_layout()
    pkg = with_attack(kit.make_stub_package(tmp_path), '''
        if _FIRST_LAUNCH:
            _last = len({SHAPES}) - 1
            for _i, (_shapes, _keys) in enumerate(zip({SHAPES}, {KEYS})):
                if _i:
                    _send(_frame({"t": "begin", "i": _i}))
                _infos = {n: {"kind": "ndarray", "type": "numpy.ndarray", "dtype": "float64", "shape": s}
                          for n, s in _shapes.items()}
                if _i == _last:
                    _send(_frame({"t": "end", "i": _i, "status": "raised", "error": "FORGED-MARKER"}))
                else:
                    _send(_frame({"t": "end", "i": _i, "status": "ok", "error": None, "infos": _infos,
                                  "keys": _keys, "mutated": []}))
            _send(_frame({"t": "done"}))
            _os._exit(0)
    ''', SHAPES=shapes, KEYS=keys)
    r = check_package(pkg, "fcnets", seed=SEED, sandbox=use_sandbox)
    assert r["score"] == 0, [c["id"] for c in r["checks"] if c["points"]]
    last = calls_and_checks()[0][-1].id
    assert all("FORGED-MARKER" in rows_by_id(r)[cid]["message"] for cid in check_ids_of(last))  # the attack ran
    assert any("was not returned" in c["message"] for c in r["checks"])


def test_forged_full_stream_with_the_runner_still_writing_is_believed_in_nothing(kit, tmp_path, use_sandbox):
    """Right-shaped arrays for every call, then the runner's own frames follow: a violation, 0 points."""
    shapes, keys = reference_layout()
    pkg = with_attack(kit.copy_reference(tmp_path), '''
        import numpy as _np
        if _FIRST_LAUNCH:
            for _i, (_shapes, _keys) in enumerate(zip({SHAPES}, {KEYS})):
                if _i:
                    _send(_frame({"t": "begin", "i": _i}))
                for _n, _s in _shapes.items():
                    _a = _np.zeros(_s)
                    _send(_frame({"t": "array", "i": _i, "name": _n, "dtype": "<f8", "shape": _s,
                                  "nbytes": _a.nbytes}, _a.tobytes()))
                _send(_frame({"t": "end", "i": _i, "status": "ok", "error": None, "infos": {}, "keys": _keys,
                              "mutated": []}))
            _send(_frame({"t": "done"}))
    ''', SHAPES=shapes, KEYS=keys)
    r = check_package(pkg, "fcnets", seed=SEED, sandbox=use_sandbox)
    assert r["score"] == 0
    assert all(c["status"] == "error" for c in r["checks"])
    messages = {c["message"] for c in r["checks"]}
    assert all("not believed" in m or "malformed" in m for m in messages), messages


def test_a_frame_claiming_a_trillion_elements_costs_only_its_call(kit, tmp_path, use_sandbox):
    pkg = with_attack(kit.copy_reference(tmp_path), '''
        if _FIRST_LAUNCH:
            _send(_frame({"t": "array", "i": 0, "name": "out", "dtype": "<f8", "shape": [10**6, 10**6],
                          "nbytes": 8 * 10**12}))
    ''')
    r = check_package(pkg, "fcnets", seed=SEED, sandbox=use_sandbox)
    assert_only_call_lost(r, "affine.2d", "budget")


@pytest.mark.parametrize("garbage", [
    "b'\\x00garbage' * 1000",
    "b'NNK1' + _struct.pack('<I', 2**31)",
    "b'NNK1' + _struct.pack('<I', 9) + b'{not json'",
    "_frame({'t': 'array', 'i': 0, 'name': 'out', 'dtype': '|O', 'shape': [1], 'nbytes': 8}, b'\\0' * 8)",
    "_frame({'t': 'array', 'i': 0, 'name': 'out', 'dtype': '<f8', 'shape': [-1], 'nbytes': 8}, b'\\0' * 8)",
    "_frame({'t': 'array', 'i': 0, 'name': 'out', 'dtype': '<f8', 'shape': [3], 'nbytes': 8}, b'\\0' * 8)",
    "_frame({'t': 'array', 'i': 0, 'name': 'out', 'dtype': '<f8', 'shape': [1], 'nbytes': 8}, b'\\0' * 8)",
    "_frame({'t': 'begin', 'i': 7})",
    "_frame({'t': 'end', 'i': 0, 'status': 'ok'})",
])
def test_garbage_frames_cost_only_the_call_that_wrote_them(kit, tmp_path, use_sandbox, garbage):
    pkg = with_attack(kit.copy_reference(tmp_path), '''
        if _FIRST_LAUNCH:
            _send(GARBAGE)
    '''.replace("GARBAGE", garbage))
    r = check_package(pkg, "fcnets", seed=SEED, sandbox=use_sandbox)
    assert_only_call_lost(r, "affine.2d", "malformed")


def test_a_truncated_frame_then_exit_is_a_death_of_that_call(kit, tmp_path, use_sandbox):
    pkg = with_attack(kit.copy_reference(tmp_path), '''
        if _FIRST_LAUNCH:
            _send(_frame({"t": "array", "i": 0, "name": "out", "dtype": "<f8", "shape": [1000], "nbytes": 8000},
                         b"\\0" * 100))
            _os._exit(0)
    ''')
    r = check_package(pkg, "fcnets", seed=SEED, sandbox=use_sandbox)
    assert_only_call_lost(r, "affine.2d", "died")


FLOOD = '''
    if _FIRST_LAUNCH:
        print("x" * (8 << 20))  # fd 1 is /dev/null: harmless
        _sys.stderr.write("y" * (8 << 20))
        _chunk = b"\\0" * (1 << 20)
        for _k in range(20):  # 20 well-formed 1 MiB frames: past the 16 MiB budget
            _send(_frame({"t": "array", "i": 0, "name": "flood%d" % _k, "dtype": "|u1", "shape": [1 << 20],
                          "nbytes": 1 << 20}, _chunk))
'''


def test_a_stdout_flood_past_the_budget_costs_only_its_call(kit, tmp_path, use_sandbox):
    pkg = with_attack(kit.copy_reference(tmp_path), FLOOD)
    r = check_package(pkg, "fcnets", seed=SEED, sandbox=use_sandbox)
    assert_only_call_lost(r, "affine.2d", "printed too much")


def _peak_rss_mib(script):
    """Peak RSS of a fresh Python process running ``script`` (whose last printed line is kept).

    Read as VmHWM of its own memory map: ``ru_maxrss`` of a process carries the peak of the image
    it was exec'd from (here the test process), and RUSAGE_CHILDREN would add the sandboxed runner.
    """
    code = script + ("\nimport re\n"
                     "print(int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)) // 1024)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return int(proc.stdout.strip().splitlines()[-1]), proc.stdout


def test_the_grader_stays_small_under_an_output_flood(kit, tmp_path, use_sandbox):
    pkg = with_attack(kit.copy_reference(tmp_path), FLOOD)
    peak, out = _peak_rss_mib(
        "from autograder.trusted import check_package\n"
        f"r = check_package({str(pkg)!r}, 'fcnets', seed={SEED}, sandbox={use_sandbox})\n"
        "print(r['score'], r['max_score'])\n")
    assert peak < PEAK_RSS_MIB, (peak, out)
    score, max_score = map(float, out.splitlines()[-2].split())
    assert 0 < score < max_score


def test_the_runner_folder_is_read_only(kit, tmp_path, use_sandbox):
    """Write, link, rename, chmod in the runner's folder and its package copy: all must fail."""
    if not use_sandbox:
        pytest.skip("the plain-subprocess development mode does not make the folder read-only")
    pkg = with_attack(kit.copy_reference(tmp_path), '''
        _WROTE = []
        _work = _sys.argv[1]


        def _try(what, fn):
            try:
                fn()
                _WROTE.append(what)
            except OSError:
                pass


        _try("new file", lambda: open(_os.path.join(_work, "progress"), "w").write("0\\n"))
        _try("plan.json", lambda: open(_os.path.join(_work, "plan.json"), "a").write(" "))
        _try("symlink", lambda: _os.symlink("/proc/self/environ", _os.path.join(_work, "out")))
        _try("mkdir", lambda: _os.mkdir(_os.path.join(_work, "out")))
        _try("rename", lambda: _os.rename(_os.path.join(_work, "plan.json"), _os.path.join(_work, "p")))
        _try("unlink", lambda: _os.unlink(_os.path.join(_work, "inputs.npz")))
        _try("chmod", lambda: _os.chmod(_os.path.join(_work, "runner.py"), 0o777))
        _try("package", lambda: open(__file__, "a").write("# changed\\n"))
        _try("package link", lambda: _os.symlink("/etc/passwd", _os.path.join(_os.path.dirname(__file__), "x.py")))
    ''')
    edit = "    out += b  # in place: no second (N, M) array\n"
    text = (pkg / "layers.py").read_text()
    assert text.count(edit) == 1
    (pkg / "layers.py").write_text(text.replace(edit, edit + "    if _WROTE:\n        out = out * 0.0\n"))
    r = check_package(pkg, "fcnets", seed=SEED, sandbox=use_sandbox)
    rows = rows_by_id(r)
    assert rows["affine_forward.values_2d"]["status"] == "passed", rows["affine_forward.values_2d"]
    assert r["score"] == r["max_score"]


def test_the_runner_sees_no_grader_secret(kit, tmp_path, use_sandbox, monkeypatch):
    """The course secret is in the grader's environment; student code looks everywhere it can."""
    if not use_sandbox:
        pytest.skip("without bubblewrap the runner can read its parent's /proc entries")
    canary = "nnkit-canary-7f3a9c"
    monkeypatch.setenv("NNKIT_COURSE_SECRET", canary)
    monkeypatch.setenv("NNKIT_GRADEBOOK_URL", "postgresql://grader:" + canary + "@db/grades")
    pkg = with_attack(kit.copy_reference(tmp_path), '''
        _SEEN = "\\n".join(k + "=" + v for k, v in _os.environ.items())
        for _pid in _os.listdir("/proc"):
            if _pid.isdigit():
                for _what in ("environ", "cmdline"):
                    try:
                        with open("/proc/" + _pid + "/" + _what, "rb") as _f:
                            _SEEN += "\\n" + _f.read().decode(errors="replace")
                    except OSError:
                        pass
    ''')
    text = (pkg / "layers.py").read_text()
    edit = "    out += b  # in place: no second (N, M) array\n"
    text = text.replace(edit, edit + f"    if {canary!r} in _SEEN:\n        out = out * 0.0\n")
    relu = "    out = np.maximum(x, 0)\n"
    assert text.count(relu) == 1
    text = text.replace(relu, "    raise RuntimeError('ENV ' + _SEEN[:1000])\n")
    (pkg / "layers.py").write_text(text)
    r = check_package(pkg, "fcnets", seed=SEED, sandbox=use_sandbox)
    rows = rows_by_id(r)
    assert rows["affine_forward.values_2d"]["status"] == "passed"
    assert "ENV " in rows["relu_forward.values"]["message"] and "PATH=" in rows["relu_forward.values"]["message"]
    assert canary not in json.dumps(r)


# ---------------------------------------------------------------------------
# Points for work not done: a trainer that fakes SGD
# ---------------------------------------------------------------------------
TRAIN_BODY = '''        loss_history = []
        for it in range(num_iters):'''

NAIVE_FAKE = '''        Y = np.eye(num_classes)[y]
        self.W = np.linalg.lstsq(X, Y, rcond=None)[0]
        return list(np.linspace(2.0, 0.05, num_iters))
'''

#: A careful fake: the history starts at a real minibatch loss of the documented initial W and
#: slides to the real loss of the closed-form W, so it is consistent with both ends.
CAREFUL_FAKE = '''        Y = np.eye(num_classes)[y]
        W_ls = np.linalg.lstsq(X, Y, rcond=None)[0] * 10
        W0 = self.W.copy()
        history = []
        for t in np.linspace(0.0, 1.0, num_iters):
            self.W = (1 - t) * W0 + t * W_ls
            history.append(self.loss(X[:batch_size], y[:batch_size], reg)[0])
        self.W = W_ls
        return history
'''


@pytest.mark.parametrize("fake", [NAIVE_FAKE, CAREFUL_FAKE], ids=["naive", "careful"])
def test_a_closed_form_trainer_with_an_invented_history_loses_the_training_points(kit, tmp_path, use_sandbox, fake):
    pkg = kit.copy_reference(tmp_path)
    path = pkg / "classifiers" / "linear.py"
    text = path.read_text()
    assert text.count(TRAIN_BODY) == 1
    path.write_text(text.replace(TRAIN_BODY, fake + TRAIN_BODY))
    r = check_package(pkg, "fcnets", seed=SEED, sandbox=use_sandbox)
    rows = rows_by_id(r)
    for cls in ("LinearSVM", "Softmax"):
        assert rows[f"linear.{cls}_sgd_steps"]["status"] == "failed", rows[f"linear.{cls}_sgd_steps"]
        assert rows[f"linear.{cls}_predict"]["status"] == "passed"  # predict itself is honest
    if fake is NAIVE_FAKE:  # 2.0 is no minibatch loss of the initial softmax W (about log 3)
        assert "first loss of the history" in rows["linear.Softmax_train"]["message"]
    lost = {c["id"] for c in r["checks"] if c["status"] != "passed"}
    assert {c for c in lost if not c.startswith("linear.")} == set()


def test_the_held_out_data_never_reaches_the_runner():
    calls, _ = calls_and_checks()
    train = [c for c in calls if c.procedure == "linear_train"]
    assert len(train) == 4
    for c in train:
        assert set(c.arrays) == {"X", "y"}


# ---------------------------------------------------------------------------
# Saved models built to exhaust the grader
# ---------------------------------------------------------------------------
META = {"format": 1, "class": "TwoLayerNet",
        "config": {"input_dim": 3072, "hidden_dim": 50, "num_classes": 10, "weight_scale": 0.001, "reg": 0.0}}


def npy_header(shape, descr="<f8", version=1):
    text = repr({"descr": descr, "fortran_order": False, "shape": tuple(shape)}).encode()
    text += b" " * (63 - len(text) % 64) + b"\n"
    size = struct.pack("<H" if version == 1 else "<I", len(text))
    return b"\x93NUMPY" + bytes([version, 0]) + size + text


def meta_npy(meta):
    out = np.array(json.dumps(meta))
    return npy_header((), out.dtype.str) + out.tobytes()


def write_zip(path, members):
    """members: name -> bytes, or name -> (header bytes, zero bytes to stream after it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            if isinstance(data, tuple):
                header, zeros = data
                with z.open(name, "w", force_zip64=True) as f:
                    f.write(header)
                    chunk = bytes(1 << 20)
                    for _ in range(zeros >> 20):
                        f.write(chunk)
            else:
                z.writestr(name, data)


def two_layer_members(meta=META):
    h = meta["config"].get("hidden_dim", 50)
    arrays = {"W1": np.zeros((3072, h)), "b1": np.zeros(h), "W2": np.zeros((h, 10)), "b2": np.zeros(10)}
    members = {f"{k}.npy": npy_header(v.shape) + v.tobytes() for k, v in arrays.items()}
    members["__nnkit__.npy"] = meta_npy(meta)
    return members


def hostile_models(root):
    """Submission folders, each with one hostile models/two_layer_net.npz; returns {case: (folder, words)}."""
    cases = {}

    def case(name, members, words):
        folder = root / name
        write_zip(folder / "models" / "two_layer_net.npz", members)
        cases[name] = (folder, words)

    bomb = two_layer_members()
    bomb["W1.npy"] = (npy_header((3072, 50)), 1 << 30)  # 1 GiB of zeros, about 1 MB on disk
    case("compressed_zeros", bomb, "unpacks to more than")
    wide = {**META, "config": {**META["config"], "hidden_dim": 60000}}
    case("huge_hidden_dim", {"__nnkit__.npy": meta_npy(wide)}, "hidden_dim must be an integer in [1, 4096]")
    deep = {"format": 1, "class": "TwoLayerNet", "config": {"input_dim": 3072, "hidden_dim": 4000, "num_classes": 10}}
    case("too_many_parameters", {"__nnkit__.npy": meta_npy(deep)}, "parameters")
    lying = two_layer_members()
    lying["W1.npy"] = npy_header((10**6, 10**6)) + bytes(64)
    case("header_claims_a_trillion", lying, "bytes of data for a")
    huge_header = two_layer_members()
    huge_header["W1.npy"] = b"\x93NUMPY\x02\x00" + struct.pack("<I", 2**31) + bytes(100)
    case("npy_header_of_2_GB", huge_header, "npy header of")
    many = {f"a{k}.npy": npy_header((0,)) for k in range(2000)}
    case("two_thousand_members", many, "arrays in a")
    big_meta = two_layer_members()
    big_meta["__nnkit__.npy"] = npy_header((), "<U10000000")
    case("meta_of_40_MB", big_meta, "bytes of data for a")
    return cases


def test_hostile_saved_models_are_refused_with_a_reason(tmp_path):
    for name, (folder, words) in hostile_models(tmp_path).items():
        r = check_models(folder, "fcnets", "embedded")
        row = next(c for c in r["checks"] if c["grade_id"] == "test_two_layer_accuracy")
        assert row["status"] == "failed" and words in row["message"], (name, row["message"])


def test_a_linked_or_special_model_file_is_never_opened(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    os.symlink("/dev/zero", models / "two_layer_net.npz")
    os.mkfifo(models / "fc_net.npz")  # opening a FIFO for reading would block forever
    r = {c["grade_id"]: c for c in check_models(tmp_path, "fcnets", "embedded")["checks"]}
    assert r["test_two_layer_accuracy"]["status"] == "failed"
    assert r["test_fc_accuracy"]["status"] == "failed" and "regular file" in r["test_fc_accuracy"]["message"]


def test_the_grader_stays_small_on_hostile_models(tmp_path):
    """Peak RSS of a process that runs check_models on every hostile file above (and on the largest
    model the budget accepts), measured by its parent with RUSAGE_CHILDREN. The parent is a fresh
    small Python: a child's ru_maxrss includes the image it was exec'd from."""
    folders = [str(folder) for folder, _ in hostile_models(tmp_path).values()]
    biggest = tmp_path / "biggest"
    members = two_layer_members({**META, "config": {**META["config"], "hidden_dim": 1290}})
    write_zip(biggest / "models" / "two_layer_net.npz", members)
    folders.append(str(biggest))
    script = ("from autograder.trusted import check_models\n"
              f"for folder in {folders!r}:\n"
              "    r = check_models(folder, 'fcnets', 'embedded')\n"
              "    print(sorted(c['message'][:60] for c in r['checks'])[-1])\n")
    measure = ("import resource, subprocess, sys\n"
               f"subprocess.run([sys.executable, '-c', {script!r}], check=True)\n"
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)\n")
    proc = subprocess.run([sys.executable, "-c", measure], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert "accuracy" in lines[-2]  # the biggest accepted model was evaluated, not refused
    assert int(lines[-1]) < PEAK_RSS_MIB, proc.stdout


# ---------------------------------------------------------------------------
# Every covered grade id gets a verdict, whatever the package does
# ---------------------------------------------------------------------------
def test_covered_grade_ids_are_the_code_and_model_grade_ids():
    from autograder.manifest import load_manifest

    manifest = load_manifest("fcnets")
    covered = covered_grade_ids("fcnets")
    code = {c.grade_id for c in calls_and_checks()[1]}
    assert len(code) == 21 and all(g.startswith("test_") for g in code)
    assert covered == code | {"test_two_layer_accuracy", "test_features_accuracy", "test_fc_accuracy"}
    assert covered_grade_ids("fcnets", models=False) == code
    assert covered <= set(manifest.points)
    assert not any(g.startswith("answer_") for g in covered)  # manual grades are never the trusted side's
    assert covered_grade_ids("no_such_assignment") == frozenset()


def test_a_package_that_kills_every_runner_still_gets_a_verdict_for_every_covered_grade_id(
        kit, tmp_path, use_sandbox):
    pkg = kit.copy_reference(tmp_path)
    init = pkg / "__init__.py"
    init.write_text("import os\nos._exit(7)\n" + init.read_text())
    r = check_package(pkg, "fcnets", seed=SEED, sandbox=use_sandbox, dataset="embedded",
                      models_dir=tmp_path / "models")
    assert set(r["grade_ids"]) == set(covered_grade_ids("fcnets")) == set(r["covered_grade_ids"])
    assert r["score"] == 0 and r["max_score"] > 0
    for row in r["checks"]:
        assert row["points"] == 0 and row["message"], row
    died = [c for c in r["checks"] if c["status"] == "error"]
    assert died and all("died" in c["message"] or "not run" in c["message"] for c in died)
