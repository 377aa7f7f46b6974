"""Grading throughput: submissions per minute against --workers, and the overhead against nbgrader.

    python bench/bench_grading.py            # 6 toy submissions, workers 1 and 2, nbgrader CLI baseline
    python bench/bench_grading.py --quick    # 2 submissions
    python bench/bench_grading.py -n 8

Everything is measured in this run, on this machine, with one BLAS thread:
- `grade` (sandboxed when bubblewrap works here) on N copies of a correct submission of
  the toy assignment (tests/grading/fixtures), once with 1 worker and once with 2:
  wall time (including the template course and worker start-up), submissions per minute,
  and the median in-worker seconds per submission;
- plain nbgrader: `nbgrader autograde <assignment> --student <id>` as a CLI call per
  submission in an ordinary course folder (no sandbox, no repair, no feedback), the
  way an instructor runs it without the kit.
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
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def plain_nbgrader(tpl_release: Path, support: Path, subs: list[Path], work: Path) -> list[float]:
    """Seconds per `nbgrader autograde` CLI call, one submission each, in a plain course."""
    from grading.conftest import TOY_REPO

    course = work / "plain"
    (course / "source" / "toy").mkdir(parents=True)
    shutil.copy(TOY_REPO / "source" / "toy" / "01_toy.ipynb", course / "source" / "toy")
    shutil.copytree(support / "nnkit", course / "source" / "toy" / "nnkit")
    (course / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"c.CourseDirectory.root = {str(course)!r}\n"
        "c.CourseDirectory.course_id = 'nnkit'\n"
        f"c.Exchange.root = {str(course / 'exchange')!r}\n"
        "c.Autograde.exclude_overwriting = {'toy': ['nnkit/ops.py']}\n"
        "c.IgnorePattern.enabled = True\nc.IgnorePattern.pattern = r'Warning'\n")
    nbg = [sys.executable, "-m", "nbgrader"]
    subprocess.run(nbg + ["generate_assignment", "toy", "--force"], cwd=course, check=True, capture_output=True)
    times = []
    for sub in subs:
        dest = course / "submitted" / sub.name / "toy"
        shutil.copytree(sub, dest)
        (dest / "timestamp.txt").write_text("2000-01-01 00:00:00.000000 UTC\n")
        t = time.perf_counter()
        proc = subprocess.run(nbg + ["autograde", "toy", "--student", sub.name, "--force"], cwd=course, capture_output=True)
        times.append(time.perf_counter() - t)
        if proc.returncode:
            print(f"  nbgrader autograde failed for {sub.name}: {proc.stderr.decode()[-300:]}")
    return times


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=6, help="submissions (default 6)")
    p.add_argument("--quick", action="store_true", help="2 submissions")
    args = p.parse_args(argv)
    n = 2 if args.quick else args.n

    from autograder import sandbox
    from autograder.grade import Settings, cached_template, grade, locate
    from grading.conftest import TOY_MANIFEST, TOY_REPO, make_submission

    work = Path(tempfile.mkdtemp(prefix="nnkit-bench-grading-"))
    try:
        a = locate(TOY_MANIFEST)
        t = time.perf_counter()
        tpl = cached_template(a)
        print(f"template course (generate_assignment): {time.perf_counter() - t:.1f} s")
        subs_dir = work / "submissions"
        subs = [make_submission(Path(tpl.release), subs_dir / f"s{i:03d}") for i in range(n)]
        use_sandbox = sandbox.available()
        settings = replace(Settings(), sandbox=use_sandbox, cell_timeout=60, notebook_timeout=300)
        print(f"{n} submissions of the toy assignment; sandbox: {'bubblewrap' if use_sandbox else 'NONE (' + sandbox.unavailable_reason() + ')'}")
        rows = []
        for workers in (1, 2):
            t = time.perf_counter()
            results = grade(TOY_MANIFEST, subs_dir, work / f"out{workers}", workers=workers, settings=settings)
            wall = time.perf_counter() - t
            bad = [r["student_id"] for r in results if r["status"] != "graded"]
            per = statistics.median(r["seconds"] for r in results)
            rows.append((workers, wall, n / wall * 60, per))
            print(f"  workers={workers}: {wall:6.1f} s wall, {n / wall * 60:5.1f} submissions/min, "
                  f"median {per:.2f} s per submission in a worker" + (f"  (not graded: {bad})" if bad else ""))
        print(f"  speed-up with 2 workers: {rows[0][1] / rows[1][1]:.2f}x ({os.cpu_count()} cores)")
        plain = plain_nbgrader(Path(tpl.release), Path(tpl.root) / "source" / "toy", subs, work)
        med = statistics.median(plain)
        print(f"  plain `nbgrader autograde --student` CLI: median {med:.2f} s per submission "
              f"({n / sum(plain) * 60:.1f} submissions/min)")
        ours = rows[0][3]
        print(f"  overhead of the kit per submission (1 worker, in-worker median) vs plain CLI: "
              f"{ours:.2f} s vs {med:.2f} s = {ours / med:.2f}x")
        print(f"  whole-run throughput, kit with 1 worker vs plain CLI: {rows[0][2] / (n / sum(plain) * 60):.2f}x; "
              f"with 2 workers: {rows[1][2] / (n / sum(plain) * 60):.2f}x")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
