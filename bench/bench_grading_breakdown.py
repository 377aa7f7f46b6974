"""Where the time of grading one fcnets submission goes (issue 12, item 3).

    python bench/bench_grading_breakdown.py          # the reference submission, 5 rounds (medians)
    python bench/bench_grading_breakdown.py --quick  # 1 round

Everything is measured in this run, on this machine, with one BLAS thread, in interleaved
rounds (each runs the sandboxed grading, the plain execution, the compute and nbclient's defaults,
one after the other). The bounds:
- **sandboxed grading**: `grade_submission` in a warm process (nbgrader imported, template
  built), the reference's solved release notebooks, with its own step timings (prepare,
  autograde = the four kernels in bubblewrap, each next one started ahead while a notebook
  runs, trusted checks, feedback rendering);
- **plain execution**: the same four executed-by-nbgrader notebooks (hidden tests cut, as
  the kernel sees them) run by nbclient, unsandboxed, under NBGRADER_EXECUTION like grading,
  with the grader's kernel handling minus the sandbox: its kernel command and readiness
  (`sandbox.lean_kernel`: ipykernel without debugpy, ready on the kernel's first answer) and
  its kill once the last cell replied, each kernel started when its notebook begins, as nbclient
  does — the cost of executing the graded cells at all, so that sandboxed / plain is what the
  sandbox adds, less what the grader wins back by starting kernels ahead. The same notebooks
  run by nbclient with all its defaults (the stock `python3` kernelspec, jupyter_client's wait
  for a ready kernel, a graceful shutdown) are printed beside it;
- **compute**: the same cells' sources run one after the other in one warm IPython shell in
  this process (no kernel, no messaging) — what the cells' own numpy work takes;
- each plain and compute round starts from a fresh copy of the folder the kernel sees (the
  release, the submission on top), as every graded submission does: no round reads a dataset
  or feature cache an earlier round wrote;
- **kernel lifecycle**: a sandboxed kernel (bubblewrap, the copy into its /tmp) against a plain
  one, each started and made ready as the grader does, then killed. Four plain lifecycles plus
  the compute are the floor of the plain execution: no notebook change can take it below that;
- **fixed start-up** of a `grade` run before the first submission starts: a real
  `python -m autograder grade` of the one submission, from its launch to the moment its worker
  began grading (the result's `started_at`); then its parts one by one (the template course,
  the preflight, the worker server's nbgrader import, and the gradebook registration; a run
  builds the template beside the preflight and the import, and registers the assignment
  beside its first submission).
Targets (issue 12): sandboxed <= 1.3x plain; plain <= 2x compute; fixed start-up <= 5 s.
It prints the ratios; it asserts nothing.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from readme_rows import row

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "source")]
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("NNKIT_DATASET", "embedded")


def _reference_zip(work: Path) -> Path:
    from autograder import course_demo
    from autograder.release.plan import plan_release
    from autograder.release.selfgrade import run_reference
    from autograder.manifest import load_manifest

    m = load_manifest("fcnets")
    ref_run = work / "reference_run"
    run_reference(plan_release("fcnets"), ref_run)
    zips = course_demo.make_submissions(work / "subs", m, REPO / "source" / "fcnets", REPO / "assignments" / "fcnets",
                                        ref_run, hostile=False)
    for sid, z in zips.items():
        if sid != "reference":
            z.unlink()
    return zips["reference"]


def _sandboxed(template, settings, zip_path: Path, work: Path, k: int) -> dict:
    from autograder.grading.submission import grade_submission
    from autograder.grading.ingest import ingest

    got = ingest("reference", zip_path, template.submission_files, work / f"ingested{k}")
    info = {"files": got.files, "refused_files": got.refused_files, "ignored": got.ignored}
    t = time.perf_counter()
    result = grade_submission(template, settings, "reference", str(got.workdir), info, str(work / f"courses{k}"))
    result["wall"] = time.perf_counter() - t
    return result


def _kernel_notebooks(result: dict, work: Path) -> list[Path]:
    """The executed notebooks as the kernel saw them, outputs cleared, for the plain and compute runs."""
    import nbformat

    out = []
    for stem, text in sorted(result["executed"].items()):
        nb = nbformat.reads(text, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        path = work / "plain" / f"{stem}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, str(path))
        out.append(path)
    return out


#: Cells that raised in the last plain / compute run (printed: a bound whose cells failed is no bound).
ERRORS = {"plain": 0, "stock": 0, "compute": 0}


def _fresh_folder(zip_path: Path, work: Path) -> Path:
    """What a graded kernel's folder holds at its start: the release's files, the submission on top."""
    folder = Path(tempfile.mkdtemp(prefix="round-", dir=work))
    folder.chmod(0o755)
    shutil.copytree(REPO / "assignments" / "fcnets", folder, dirs_exist_ok=True)
    with zipfile.ZipFile(zip_path) as z:
        z.extractall(folder)
    return folder


def _plain(notebooks: list[Path], workdir: Path, stock: bool = False) -> float:
    """nbclient with the grader's kernel manager, readiness and kill, unsandboxed; or, ``stock``,
    with all nbclient's defaults."""
    import nbformat
    from nbclient import NotebookClient

    from autograder.sandbox.lean_kernel import LeanKernelManager

    kernel = {} if stock else {"kernel_manager_class": LeanKernelManager, "shutdown_kernel": "immediate"}
    t = time.perf_counter()
    key = "stock" if stock else "plain"
    ERRORS[key] = 0
    for path in notebooks:
        nb = nbformat.read(str(path), as_version=4)
        NotebookClient(nb, timeout=600, allow_errors=True, resources={"metadata": {"path": str(workdir)}},
                       **kernel).execute()
        ERRORS[key] += sum(o.get("output_type") == "error" for c in nb.cells for o in c.get("outputs", []))
    return time.perf_counter() - t


def _compute(notebooks: list[Path], workdir: Path) -> float:
    """The cells' sources in one warm IPython shell (imports done by a first pass), reading and
    writing the datasets of ``workdir`` as the kernel does."""
    import nbformat
    from IPython.core.interactiveshell import InteractiveShell

    cwd = os.getcwd()
    os.chdir(workdir)
    os.environ["NNKIT_DATA_DIR"] = str(workdir / "datasets")
    sys.path.insert(0, str(workdir))
    try:
        total = 0.0
        ERRORS["compute"] = 0
        for path in notebooks:
            shell = InteractiveShell()
            for cell in nbformat.read(str(path), as_version=4).cells:
                if cell.cell_type != "code":
                    continue
                t = time.perf_counter()
                result = shell.run_cell(cell.source, silent=True)
                total += time.perf_counter() - t
                ERRORS["compute"] += not result.success
            InteractiveShell.clear_instance()
        return total
    finally:
        os.chdir(cwd)
        sys.path.remove(str(workdir))
        del os.environ["NNKIT_DATA_DIR"]


def _unsandboxed(run, *args, **kwargs) -> float:
    """``run(*args, **kwargs)`` under NBGRADER_EXECUTION, as the graded kernels run."""
    os.environ["NBGRADER_EXECUTION"] = "autograde"
    try:
        return run(*args, **kwargs)
    finally:
        del os.environ["NBGRADER_EXECUTION"]


def _kernel_lifecycle(sandboxed: bool, workdir: Path) -> tuple[float, float]:
    """(start to ready, kill) of one kernel, as the grader starts and stops it, sandboxed or not."""
    import asyncio

    from autograder.sandbox.kernel import SandboxedKernelManager
    from autograder.sandbox.lean_kernel import LeanKernelManager

    async def once():
        km = (SandboxedKernelManager if sandboxed else LeanKernelManager)(kernel_name="python3")
        if sandboxed:
            km.workdir = str(workdir)
        t = time.perf_counter()
        await km.start_kernel(cwd=str(workdir))
        kc = km.client()
        kc.start_channels()
        await kc.wait_for_ready(timeout=120)
        started = time.perf_counter() - t
        kc.stop_channels()
        t = time.perf_counter()
        await km.shutdown_kernel(now=True)
        return started, time.perf_counter() - t

    return asyncio.run(once())


def _cli_startup(zip_path: Path, work: Path) -> tuple[float, float]:
    """(fixed start-up, wall) of a real `python -m autograder grade` run of one submission: from
    the command's launch to the moment its worker began the submission (the result's
    `started_at`), and to the command's end."""
    import json

    subs, out = work / "cli_subs", work / "cli_out"
    subs.mkdir()
    shutil.copyfile(zip_path, subs / zip_path.name)
    env = dict(os.environ, NNKIT_COURSE_SECRET="bench", NNKIT_DATASET="embedded")
    t0 = time.time()
    subprocess.run([sys.executable, "-m", "autograder", "grade", "fcnets", "--submissions", str(subs),
                    "--out", str(out)], cwd=REPO, env=env, check=True, capture_output=True)
    wall = time.time() - t0
    record = json.loads((out / ".nnkit" / "records" / f"{zip_path.stem}.json").read_text())
    return record["result"]["started_at"] - t0, wall


def _fixed_startup(work: Path) -> dict:
    """The coordinator's own parts of a `grade` run's start-up, one after the other in this warm
    process (a fresh template each); the worker server imports nbgrader meanwhile."""
    from autograder.grading.settings import Settings
    from autograder.grading.template import locate, prepare_template
    from autograder.grading.gradebook import register_assignment
    from autograder.grading.preflight import preflight

    a = locate("fcnets")
    out = {}
    t = time.perf_counter()
    template = prepare_template(a, work / "tpl" / "course", Settings())
    out["template course"] = time.perf_counter() - t
    t = time.perf_counter()
    preflight(a.name, Path(a.source_dir) / a.manifest.notebooks[0], template.covered, Settings())
    out["preflight (kernel + trusted runner)"] = time.perf_counter() - t
    t = time.perf_counter()
    # What the worker server does meanwhile, in parallel: a fresh interpreter importing nbgrader
    # (with the kit's skip of jsonschema's slow optional import, as the server has it).
    subprocess.run([sys.executable, "-c", "import autograder, nbgrader.apps"], check=True, cwd=REPO)
    out["worker server's nbgrader import (in parallel)"] = time.perf_counter() - t
    t = time.perf_counter()
    register_assignment(a, f"sqlite:///{work / 'startup.db'}", work / "register")
    out["gradebook registration (beside the first submission)"] = time.perf_counter() - t
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="one round")
    args = p.parse_args(argv)
    # A median of 5: on this shared machine one round in a run can take 10-30% longer than the rest.
    rounds = 1 if args.quick else 5

    from autograder.sandbox import bwrap as sandbox
    from autograder.grading.settings import Settings
    from autograder.grading.template import cached_template, locate

    if not sandbox.available():
        print(f"skipped: no sandbox here ({sandbox.unavailable_reason()})")
        return 0
    work = Path(tempfile.mkdtemp(prefix="nnkit-bench-breakdown-"))
    work.chmod(0o755)
    try:
        zip_path = _reference_zip(work)
        settings = Settings(dataset="embedded", course_secret="bench")
        template = cached_template(locate("fcnets"), settings)
        # warm-up: imports, caches, the reference's outcomes, and the notebooks as its kernels saw them
        notebooks = _kernel_notebooks(_sandboxed(template, settings, zip_path, work, 0), work)
        _unsandboxed(_compute, notebooks, _fresh_folder(zip_path, work))
        # Interleaved rounds: a machine that slows down mid-run slows every kind of run alike.
        runs, plains, computes, stocks = [], [], [], []
        for k in range(rounds):
            runs.append(_sandboxed(template, settings, zip_path, work, k + 1))
            plains.append(_unsandboxed(_plain, notebooks, _fresh_folder(zip_path, work)))
            computes.append(_unsandboxed(_compute, notebooks, _fresh_folder(zip_path, work)))
            stocks.append(_unsandboxed(_plain, notebooks, _fresh_folder(zip_path, work), stock=True))
        sandboxed = statistics.median(r["wall"] for r in runs)
        steps = {k: statistics.median(r["timings"].get(k, 0.0) for r in runs) for k in runs[0]["timings"]}
        plain, compute, stock = map(statistics.median, (plains, computes, stocks))
        plain_dir = _fresh_folder(zip_path, work)
        k_sand, stop_sand = map(statistics.median, zip(*(_kernel_lifecycle(True, plain_dir)
                                                         for _ in range(rounds + 1))))
        k_plain, stop_plain = map(statistics.median, zip(*(_kernel_lifecycle(False, plain_dir)
                                                           for _ in range(rounds + 1))))
        n_kernels = len(notebooks)
        # No plain execution can beat its kernels' own lifecycles plus the cells' compute.
        floor = (n_kernels * (k_plain + stop_plain) + compute) / compute
        fixed = _fixed_startup(work)
        startup, cli_wall = _cli_startup(zip_path, work)

        print(f"one fcnets reference submission, median of {rounds} round(s), status {runs[-1]['status']}:")
        print(f"  sandboxed grading in a warm worker: {sandboxed:6.2f} s  = "
              + ", ".join(f"{k} {v:.2f} s" for k, v in steps.items()))
        print(f"  plain nbclient execution (4 notebooks, unsandboxed): {plain:6.2f} s  ({ERRORS['plain']} cells raised); "
              f"with all nbclient's defaults and the stock python3 kernelspec {stock:.2f} s ({ERRORS['stock']} raised)")
        print(f"  the cells' own compute in a warm IPython shell:       {compute:6.2f} s  "
              f"({ERRORS['compute']} cells raised: a cell that raised early is not a bound)")
        print(f"  kernel start to ready: sandboxed {k_sand:.2f} s, plain {k_plain:.2f} s "
              f"({k_sand / k_plain:.2f}x), {n_kernels} per submission; kill: sandboxed "
              f"{stop_sand:.2f} s, plain {stop_plain:.2f} s")
        print(f"  ratio sandboxed grading / plain execution: {sandboxed / plain:.2f}x  (target <= 1.3x)")
        print(f"  ratio autograde step alone / plain execution: {steps.get('autograde', 0) / plain:.2f}x")
        print(f"  ratio plain execution / compute: {plain / compute:.2f}x  (target <= 2x; its floor, "
              f"{n_kernels} plain kernel lifecycles + compute over compute: {floor:.2f}x; "
              f"nbclient's defaults / compute: {stock / compute:.2f}x)")
        row("sandboxed grading of one fcnets reference submission (autograde, trusted checks, feedback)",
            f"{sandboxed:.1f} s", f"{sandboxed / plain:.2f}x a plain nbclient run of its notebooks with the grader's "
            f"kernel handling unsandboxed ({plain:.1f} s; {stock:.1f} s with all nbclient's defaults; target 1.3x); that run is {plain / compute:.2f}x the cells' own compute ({compute:.1f} s; target 2x; "
            f"floor {floor:.2f}x: {n_kernels} kernels started and stopped, {k_plain + stop_plain:.2f} s each)")
        row("fixed start-up of `python -m autograder grade` (launch to the first submission starting)",
            f"{startup:.1f} s", "target 5 s; " + ", ".join(f"{k} {v:.1f} s" for k, v in fixed.items()))
        print(f"  fixed start-up of a grade run: {startup:.1f} s  (target <= 5 s): `python -m autograder grade` "
              f"launched to its worker beginning the submission (whole run {cli_wall:.1f} s); its parts, "
              "measured one by one here: " + ", ".join(f"{k} {v:.1f} s" for k, v in fixed.items()))
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
