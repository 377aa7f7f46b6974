"""The guarded execution's kernel restart: a dead kernel is restarted and the notebook goes on;
a restart that fails once is tried again; one that cannot be done says why in every cell left."""
from __future__ import annotations

import pytest
from nbformat.v4 import new_code_cell, new_notebook

from autograder.grading.execute import _guard_class

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def _run(tmp_path, failing_restarts: int):
    """Cells: define x, die (os._exit), print x (after the replay). The first `failing_restarts`
    restarts raise."""
    GuardedExecute = _guard_class(sandboxed=False)
    nb = new_notebook(cells=[new_code_cell("x = 41"), new_code_cell("import os; os._exit(3)"),
                             new_code_cell("print(x + 1)")], metadata={"kernelspec": KERNELSPEC})
    GuardedExecute.incidents = []
    ex = GuardedExecute(timeout=30, notebook_timeout=120, kernel_name="python3")
    calls = []
    real = None

    def start(*args, **kwargs):
        nonlocal real
        real_start(*args, **kwargs)
        if real is None:
            real = ex.km.restart_kernel

            async def restart(**kw):
                calls.append(kw)
                if len(calls) <= failing_restarts:
                    raise RuntimeError(f"restart {len(calls)} failed on purpose")
                return await real(**kw)

            ex.km.restart_kernel = restart

    real_start = ex.start_new_kernel
    ex.start_new_kernel = start
    ex.preprocess(nb, {"metadata": {"path": str(tmp_path)}, "unique_key": "nb"})
    return nb, calls, GuardedExecute.incidents


def _text(cell) -> str:
    return "".join(o.get("text", "") + o.get("evalue", "") for o in cell.outputs)


@pytest.mark.parametrize("failing", [0, 1])
def test_a_dead_kernel_is_restarted_and_the_notebook_goes_on(tmp_path, failing):
    nb, calls, incidents = _run(tmp_path, failing)
    assert len(calls) == failing + 1
    assert "42" in _text(nb.cells[2]), nb.cells[2].outputs  # the replay brought x back
    assert [i["reason"] for i in incidents] == ["kernel_died"]


def test_a_kernel_that_cannot_be_restarted_says_why_in_the_cells_left(tmp_path):
    nb, calls, incidents = _run(tmp_path, 2)
    assert len(calls) == 2
    assert "could not be restarted (RuntimeError: restart 2 failed on purpose)" in _text(nb.cells[2])
    assert [i["reason"] for i in incidents] == ["kernel_died", "kernel_died"]


def test_each_notebook_starts_after_the_hook_with_the_ones_executed_before_it(tmp_path):
    """``before_notebook`` runs as each notebook starts, when ``executed`` names every notebook
    run before it: grading hands those (written by nbgrader by then) to the feedback renderer."""
    GuardedExecute = _guard_class(sandboxed=False)
    GuardedExecute.incidents, GuardedExecute.executed, seen = [], [], []
    GuardedExecute.before_notebook = lambda: seen.append(list(GuardedExecute.executed))
    try:
        for key in ("01_first", "02_second"):
            nb = new_notebook(cells=[new_code_cell("pass")], metadata={"kernelspec": KERNELSPEC})
            GuardedExecute(timeout=30, notebook_timeout=120, kernel_name="python3").preprocess(
                nb, {"metadata": {"path": str(tmp_path)}, "unique_key": key})
    finally:
        GuardedExecute.before_notebook = None
    assert seen == [[], ["01_first"]]
    assert GuardedExecute.executed == ["01_first", "02_second"]
