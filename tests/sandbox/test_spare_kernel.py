"""Kernels started ahead (``SandboxedExecute.warm_next``): while one notebook runs, the next
one's kernel waits in a sandbox of its own. Each test runs notebooks through one
``SandboxedExecute``, as nbgrader's autograde runs a submission's notebooks one after another.
"""
import os
import textwrap

import pytest
from nbformat.v4 import new_code_cell, new_notebook

from autograder.sandbox.bwrap import Limits
from autograder.sandbox.kernel import SandboxedExecute, kernel_outcomes, sandbox_kernel_config

pytestmark = pytest.mark.skipif(SandboxedExecute is None, reason="nbgrader is needed (the instructor extra)")

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def notebook(*cells):
    return new_notebook(cells=[new_code_cell(textwrap.dedent(c)) for c in cells], metadata={"kernelspec": KERNELSPEC})


def executor(work, **limits):
    """A fresh grading class per test (the spare is a class attribute, as per submission)."""
    class Execute(SandboxedExecute):
        managers = []  # each notebook's kernel manager, in order

        def create_kernel_manager(self):
            self.managers.append(super().create_kernel_manager())
            return self.managers[-1]

    return Execute(config=sandbox_kernel_config(work, Limits(**{"wall_seconds": 60, **limits})), timeout=30)


def run(ex, nb, path, warm_next):
    ex.warm_next = warm_next
    ex.preprocess(nb, {"metadata": {"path": str(path)}})
    return "".join(o.get("text", "") for c in nb.cells for o in c.outputs if o.output_type == "stream")


def test_the_next_notebook_takes_the_kernel_started_ahead_and_none_is_left(course):
    ex = executor(course["work"])
    assert run(ex, notebook("print(1 + 1)"), course["work"], warm_next=True) == "2\n"
    spare = type(ex)._spare[0]
    runtime = spare._runtime_dir
    assert spare.is_running and os.path.isdir(runtime), "no kernel was started ahead"
    # Written between the notebooks: a kernel started for the second would copy it in; the spare
    # copied the folder as it was when it started.
    (course["work"] / "late.txt").write_text("late")
    second = "import os; print('second', os.path.exists('late.txt'))"
    assert run(ex, notebook(second), course["work"], warm_next=False) == "second False\n"
    assert ex.managers[-1] is spare, "the second notebook started a kernel of its own"
    assert type(ex)._spare is None, "a kernel was started ahead of a notebook that does not follow"
    assert not spare.is_running and not os.path.exists(runtime)
    # One outcome per notebook: the spare counts once, as the second notebook's kernel.
    assert [o["reason"] for o in kernel_outcomes(course["work"])] == [None, None]


def test_a_notebook_cannot_see_or_reach_the_kernel_waiting_for_the_next(course):
    """The spare is up while the first notebook's cells run (checked from the host); from inside,
    its processes, its runtime folder (connection file, sockets) and its key stay out of sight."""
    ex = executor(course["work"])
    probe = """
        import glob, os
        cmdlines = []
        for pid in filter(str.isdigit, os.listdir('/proc')):
            try:
                cmdlines.append(open(f'/proc/{pid}/cmdline', 'rb').read())
            except OSError:
                pass
        # Each kernel's command line names its connection file: how many kernels are in sight.
        files = {a for c in cmdlines for a in c.split(b'\\0') if a.endswith(b'kernel.json')}
        print(len(cmdlines) > 0, len(files), len(glob.glob('/tmp/nnkit-k-*')),
              len(glob.glob('/tmp/**/kernel.json', recursive=True)))
    """
    out = run(ex, notebook(probe), course["work"], warm_next=True)
    spare = type(ex)._spare[0]
    assert spare.is_running and os.path.exists(spare.connection_file)
    assert out == "True 1 1 1\n", out  # only its own kernel, runtime folder and connection file
    type(ex).discard_spare()


def test_the_kernel_started_ahead_gets_its_whole_wall_time_from_its_notebook(course):
    """Wall limit 8 s a kernel; the first notebook runs 5 s while the spare waits. Counted from
    the spare's start, the second notebook's 5 s would end past it and be killed."""
    ex = executor(course["work"], wall_seconds=8)
    assert run(ex, notebook("import time; time.sleep(5); print('a')"), course["work"], warm_next=True) == "a\n"
    assert run(ex, notebook("import time; time.sleep(5); print('b')"), course["work"], warm_next=False) == "b\n"
    assert [o["reason"] for o in kernel_outcomes(course["work"])] == [None, None]


def test_a_kernel_started_ahead_for_another_folder_is_not_used(course):
    """A notebook in a subfolder runs with that folder as its cwd: the spare started for the
    top folder is thrown away and a kernel started for it."""
    sub = course["work"] / "part2"
    sub.mkdir()
    (sub / "here.txt").write_text("part2")
    ex = executor(course["work"])
    run(ex, notebook("print('top')"), course["work"], warm_next=True)
    spare = type(ex)._spare[0]
    runtime = spare._runtime_dir
    assert run(ex, notebook("print(open('here.txt').read())"), sub, warm_next=False) == "part2\n"
    assert ex.managers[-1] is not spare and not spare.is_running
    assert not os.path.exists(runtime)


def test_a_spare_no_notebook_takes_is_killed_and_leaves_nothing(course):
    ex = executor(course["work"])
    run(ex, notebook("print('only')"), course["work"], warm_next=True)
    spare = type(ex)._spare[0]
    runtime, proc = spare._runtime_dir, spare._proc
    assert proc.poll() is None
    type(ex).discard_spare()
    assert proc.poll() is not None, "the spare's sandbox is still running"
    assert not os.path.exists(runtime)
    assert type(ex)._spare is None
    assert [o["reason"] for o in kernel_outcomes(course["work"])] == [None]  # the spare ran nothing


def test_no_kernel_is_started_ahead_where_processes_are_counted_per_uid(course, rlimit_processes):
    """Without a pids cgroup, RLIMIT_NPROC counts every process of the sandbox uid: a spare's
    threads would come out of the running notebook's process cap, so none is started."""
    ex = executor(course["work"])
    assert run(ex, notebook("print('alone')"), course["work"], warm_next=True) == "alone\n"
    assert type(ex)._spare is None
