"""Before the first submission: can a sandboxed kernel and a trusted runner start here at all?

A kernelspec whose interpreter the sandbox cannot see (a moved venv), a broken
bubblewrap or a missing package used to make every kernel die: `grade` exited 0
with every student `partial` and no traceback anywhere. :func:`preflight` starts
one kernel exactly as grading does (same kernelspec, same sandbox) and runs the
trusted checks on the reference package; if either fails it raises
`GradeRunError` with what the kernel printed and the fix, and nothing is graded.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

#: Seconds the preflight kernel may take to answer (a cold start under load is ~5 s).
KERNEL_START_SECONDS = 90


def _kernel_name(notebook: Path) -> str:
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    return nb.metadata.get("kernelspec", {}).get("name", "python3")


def _start_kernel(notebook: Path, settings, workdir: Path) -> str | None:
    """Run one cell in a kernel started as grading starts `notebook`'s; None, or what went wrong."""
    from jupyter_client.kernelspec import NoSuchKernel
    from nbclient import NotebookClient
    from nbformat.v4 import new_code_cell, new_notebook

    name = _kernel_name(notebook)
    nb = new_notebook(cells=[new_code_cell("import numpy\nprint('nnkit-preflight', 6 * 7)")],
                      metadata={"kernelspec": {"name": name, "display_name": name, "language": "python"}})
    extra = {}
    if settings.sandbox:
        from ..sandbox.kernel import SandboxedKernelManager

        extra["kernel_manager_class"] = SandboxedKernelManager
    # Killed once its cell replied, as grading kills its kernels: a graceful exit is time for nothing.
    client = NotebookClient(nb, timeout=KERNEL_START_SECONDS, startup_timeout=KERNEL_START_SECONDS,
                            kernel_name=name, resources={"metadata": {"path": str(workdir)}},
                            shutdown_kernel="immediate", **extra)
    try:
        client.execute()
    except NoSuchKernel:
        return f"there is no Jupyter kernel named {name!r} (the notebooks' kernelspec)"
    except Exception as exc:  # a kernel that died, could not start, timed out
        detail = f"{type(exc).__name__}: {exc}".strip()
        if settings.sandbox:
            from ..sandbox.kernel import kernel_outcomes

            tails = [o.get("stderr_tail", "") for o in kernel_outcomes(workdir)]
            if any(tails):
                detail += "\nthe kernel printed:\n" + tails[-1].strip()[-1500:]
        return detail
    text = "".join(o.get("text", "") for o in nb.cells[0].outputs if o.get("output_type") == "stream")
    if "nnkit-preflight 42" not in text:
        return "the kernel started but did not run a cell: " + repr(nb.cells[0].outputs)[:500]
    return None


def _trusted_runner(assignment: str, covered, settings) -> str | None:
    """The trusted checks on the reference package: must run and pass (else the grader is broken)."""
    from .. import REPO_ROOT, trusted

    if not covered:
        return None
    try:
        report = trusted.check_package(REPO_ROOT / "source" / "nnkit", assignment, seed=12345,
                                       sandbox=settings.sandbox, wall_seconds=120.0)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    bad = [c for c in report["checks"] if c["status"] != "passed"]
    if bad:
        return f"the reference failed {len(bad)} trusted checks, e.g. {bad[0]['id']}: {bad[0]['message'][:300]}"
    return None


def preflight(assignment: str, notebook: Path, covered, settings) -> None:
    """Raise GradeRunError, with the real error and the fix, unless kernel and runner both work here.

    `notebook`: one of the assignment's source notebooks (its kernelspec is the one grading starts);
    `covered`: the grade ids the trusted checks score (none: no runner to try). It needs
    nothing of the template course, so a run starts it beside the template's making.
    """
    from concurrent.futures import ThreadPoolExecutor

    from .coordinator import GradeRunError

    workdir = Path(tempfile.mkdtemp(prefix="nnkit-preflight-"))
    workdir.chmod(0o755)  # read-only inside the sandbox, whose uid is not ours when we are root
    # The two are separate sandboxes, so they start side by side; the kernel's problem is told first.
    with ThreadPoolExecutor(1, thread_name_prefix="preflight-runner") as pool:
        runner = pool.submit(_trusted_runner, assignment, covered, settings)
        try:
            problem = _start_kernel(notebook, settings, workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        runner_problem = runner.result()
    if problem:
        raise GradeRunError(
            "preflight: a sandboxed kernel could not run one cell, so every submission would fail:\n"
            f"{problem}\nFix: check the kernelspec (`jupyter kernelspec list`; its interpreter must exist and be "
            "readable, e.g. reinstall it with `python -m ipykernel install --sys-prefix --name python3` from "
            "the grader's venv) and that bubblewrap works (`python -m pytest tests/sandbox`). Nothing was graded.")
    if runner_problem:
        raise GradeRunError(f"preflight: the trusted checks do not run on the reference package: {runner_problem}\n"
                            "Fix: run `python -m autograder check-package source/nnkit --assignment "
                            f"{assignment}` to see why. Nothing was graded.")
