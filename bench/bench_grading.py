"""Grading throughput: submissions per minute against --workers, and the overhead against nbgrader.

    python bench/bench_grading.py            # 6 toy submissions, workers 1 and 2, nbgrader CLI baseline
    python bench/bench_grading.py --quick    # 2 submissions
    python bench/bench_grading.py -n 8

Everything is measured in this run, on this machine, with one BLAS thread:
- `grade` (sandboxed when bubblewrap works here) on N copies of a correct submission of
  the toy assignment (tests/grading/fixtures), once with 1 worker and once with 2:
  wall time (including the template course and worker start-up), submissions per minute,
  and the median in-worker seconds per submission;
- the same class on a 2-worker dask.distributed LocalCluster (separate worker processes,
  one thread each, as `dask worker --nthreads 1` runs them): submissions per minute;
- plain nbgrader: `nbgrader autograde <assignment> --student <id>` as a CLI call per
  submission in an ordinary course folder (no sandbox, no repair, no feedback), the
  way an instructor runs it without the kit;
- the coordinator's memory per 1,000 queued submissions: a simulated class of
  `--class-size` (default 1,000) toy submissions whose grades are already committed,
  so `grade` ingests, hashes and skips each one lazily: the coordinator's peak RSS
  growth over that scan, and the scan's time per submission (a resumed run's cost).
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
from readme_rows import row

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


def dask_run(subs_dir: Path, work: Path, settings, n: int) -> float | None:
    """Submissions per minute of the class on a 2-worker LocalCluster (None without dask)."""
    try:
        import distributed
    except ImportError:
        print("  2-worker Dask cluster: skipped (pip install distributed)")
        return None
    from autograder.grading.coordinator import grade
    from grading.conftest import TOY_MANIFEST

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=50) as cluster:
        t = time.perf_counter()
        grade(TOY_MANIFEST, subs_dir, work / "out_dask", settings=settings, scheduler=cluster.scheduler_address)
        wall = time.perf_counter() - t
    return n / wall * 60


def coordinator_memory(work: Path, release: Path, settings, class_size: int) -> None:
    """Peak RSS growth of the coordinator over a resumed class of `class_size` committed submissions."""
    import json

    from autograder.grading import commit as C
    from autograder.grading.coordinator import grade
    from grading.conftest import TOY_MANIFEST, make_submission

    subs, out = work / "class", work / "out_class"
    make_submission(release, subs / "s00000")
    grade(TOY_MANIFEST, subs, out, settings=settings)  # one real grade, to copy as everyone's
    record = json.loads((out / C.STATE_DIR / "records" / "s00000.json").read_text())
    for i in range(1, class_size):
        sid = f"s{i:05d}"
        shutil.copytree(subs / "s00000", subs / sid)  # same content: same key, so it is skipped
        rec = {**record, "commit": f"c{i}", "result": {**record["result"], "student_id": sid}}
        C.write_atomic(out / C.STATE_DIR / "records" / f"{sid}.json", json.dumps(rec).encode())
        C.write_atomic(out / C.STATE_DIR / "records" / f"{sid}.applied", f"c{i}".encode())
    # A fresh process, so that its high-water mark is this scan's alone (after imports and the template).
    probe = (
        "import sys, time, json\n"
        f"sys.path[:0] = [{str(REPO)!r}, {str(REPO / 'tests')!r}]\n"
        "from autograder.grading.coordinator import grade\n"
        "from autograder.grading.template import cached_template, locate\n"
        "from autograder.grading.settings import Settings\n"
        "from grading.conftest import TOY_MANIFEST\n"
        "import dataclasses\n"
        "def mem(key):\n"
        "    return int(next(l for l in open('/proc/self/status') if l.startswith(key)).split()[1]) / 1024\n"
        f"settings = dataclasses.replace(Settings(), cell_timeout={settings.cell_timeout}, "
        f"notebook_timeout={settings.notebook_timeout}, sandbox={settings.sandbox})\n"
        "cached_template(locate(TOY_MANIFEST), settings)\n"
        "base = mem('VmRSS:')\n"
        "t = time.perf_counter()\n"
        f"results = grade(TOY_MANIFEST, {str(subs)!r}, {str(out)!r}, settings=settings)\n"
        "print(json.dumps([len(results), time.perf_counter() - t, mem('VmHWM:') - base]))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    if done.returncode:
        print(f"  simulated class: failed: {done.stderr[-500:]}")
        return
    count, wall, grown = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"  simulated class of {count} committed submissions, resumed: {wall:.1f} s "
          f"({wall / class_size * 1000:.1f} ms per submission to ingest, hash, skip and export); "
          f"coordinator peak RSS grew {grown:.1f} MiB = {grown * 1000 / class_size:.1f} MiB per 1,000 queued")
    row(f"a resumed class of {count} committed submissions (ingest, hash, skip, export)", f"{wall:.1f} s",
        f"{grown * 1000 / class_size:.1f} MiB of coordinator memory per 1,000 queued")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=6, help="submissions (default 6)")
    p.add_argument("--quick", action="store_true", help="2 submissions, a class of 200")
    p.add_argument("--class-size", type=int, default=1000, help="the simulated class (default 1000)")
    args = p.parse_args(argv)
    n = 2 if args.quick else args.n
    class_size = 200 if args.quick else args.class_size

    from autograder.sandbox import bwrap as sandbox
    from autograder.grading.settings import Settings
    from autograder.grading.template import cached_template, locate
    from autograder.grading.coordinator import grade
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
        dask_rate = dask_run(subs_dir, work, settings, n)
        if dask_rate:
            print(f"  2-worker Dask cluster: {dask_rate:5.1f} submissions/min = {dask_rate / rows[1][2]:.2f}x "
                  "the 2 local workers")
        row(f"`grade`, {n} toy submissions, 1 / 2 local workers" + (" / 2-worker Dask cluster" if dask_rate else ""),
            " / ".join(f"{r:.1f}" for r in [rows[0][2], rows[1][2]] + ([dask_rate] if dask_rate else []))
            + " submissions per minute",
            f"{ours / med:.2f}x nbgrader CLI's time per submission ({ours:.2f} s vs {med:.2f} s)")
        coordinator_memory(work, Path(tpl.release), settings, class_size)
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
