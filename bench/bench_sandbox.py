"""Cost of the grader's sandbox: sandbox.run against a plain subprocess, and a
sandboxed notebook kernel against an ordinary one.

    python bench/bench_sandbox.py            # 20 runs of each, 5 kernel starts of each
    python bench/bench_sandbox.py --quick    # 5 runs, 2 kernel starts

Prints medians and ratios measured in the same run (alternating, so load drifts
hit both sides alike). Nothing is asserted: speed is reported, never tested.
"""
import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from readme_rows import row

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from autograder.sandbox import bwrap as sandbox  # noqa: E402


def time_call(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def kernel_start_stop(workdir, sandboxed):
    """Start a kernel like nbclient does, run one trivial cell, shut it down."""
    from nbclient import NotebookClient
    from nbformat.v4 import new_code_cell, new_notebook

    from autograder.sandbox.kernel import SandboxedKernelManager

    nb = new_notebook(cells=[new_code_cell("1 + 1")],
                      metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    kw = {"kernel_manager_class": SandboxedKernelManager} if sandboxed else {}
    NotebookClient(nb, timeout=60, resources={"metadata": {"path": str(workdir)}}, **kw).execute()


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    runs, kernels = (5, 2) if args.quick else (20, 5)
    if not sandbox.available():
        print(f"bubblewrap unavailable: {sandbox.unavailable_reason()}")
        return 0
    print(f"process cap: {sandbox.process_limit_mode()}   memory cap: {sandbox.memory_limit_mode()}")
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        argv_pass = [sys.executable, "-c", "pass"]
        argv_numpy = [sys.executable, "-c", "import numpy"]
        for label, cmd in (("python -c pass", argv_pass), ("python -c 'import numpy'", argv_numpy)):
            plain, boxed = [], []
            for _ in range(runs):
                plain.append(time_call(lambda: subprocess.run(cmd, cwd=work, capture_output=True, check=True)))
                boxed.append(time_call(lambda: sandbox.run(cmd, writable=[work], cwd=work)))
            mp, mb = statistics.median(plain), statistics.median(boxed)
            print(f"{label:28s} plain {mp * 1000:7.1f} ms   sandbox.run {mb * 1000:7.1f} ms   "
                  f"overhead {1000 * (mb - mp):6.1f} ms   ratio {mb / mp:5.2f}")
        plain, boxed = [], []
        for _ in range(kernels):
            plain.append(time_call(lambda: kernel_start_stop(work, False)))
            boxed.append(time_call(lambda: kernel_start_stop(work, True)))
        mp, mb = statistics.median(plain), statistics.median(boxed)
        print(f"{'kernel start+cell+stop':28s} plain {mp * 1000:7.1f} ms   sandboxed   {mb * 1000:7.1f} ms   "
              f"overhead {1000 * (mb - mp):6.1f} ms   ratio {mb / mp:5.2f}")
        row("a kernel started, one cell run, stopped: in bubblewrap", f"{mb:.2f} s", f"{mb / mp:.2f}x a plain kernel")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
