"""Time of a `check-package` run, broken down, and its share of grading one submission.

    python bench/bench_trusted.py [--quick] [--repeat N]

Prints, measured in this run with one BLAS thread:
- building the plan (all inputs from the seed) and the reference outcomes (first and cached);
- the runner on the reference package, sandboxed (bubblewrap) and as a plain subprocess;
- the floor: an empty sandboxed `python -I -c "import numpy"`;
- a whole `check_package` call (cached reference), i.e. the per-submission cost in `grade`;
- a whole `grade` run on one reference submission, and the
  share of it spent in the trusted checks.
Nothing here asserts a time.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from readme_rows import row

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "source")]

from autograder.sandbox import bwrap as sandbox  # noqa: E402
from autograder.trusted import check_package, execute, reference_outcomes
from autograder.trusted.spec import load_spec# noqa: E402
from autograder.trusted.reference import REFERENCE_DIR# noqa: E402


def timed(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), min(times)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one repetition of each measurement")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    repeat = 1 if args.quick else args.repeat
    boxed = sandbox.available()
    seed = 12345

    t = time.perf_counter()
    spec = load_spec("fcnets")
    calls, plan_checks = spec.build_plan(seed)
    t_plan = time.perf_counter() - t
    t = time.perf_counter()
    reference_outcomes(seed, calls, spec)
    t_ref = time.perf_counter() - t
    print(f"plan: {len(calls)} calls, {len(plan_checks)} checks, built in {t_plan * 1e3:.1f} ms; "
          f"reference outcomes {t_ref * 1e3:.0f} ms (then cached per seed)")

    rows = []
    if boxed:
        with tempfile.TemporaryDirectory() as d:
            floor = timed(lambda: sandbox.run([sys.executable, "-I", "-c", "import numpy"], writable=[d], cwd=d,
                                              limits=sandbox.Limits(wall_seconds=60)), repeat)
        rows.append(("sandboxed `python -I -c 'import numpy'` (floor)", floor))
        rows.append(("runner, sandboxed", timed(lambda: execute.run_calls(REFERENCE_DIR, calls, sandbox=True),
                                                repeat)))
    else:
        print(f"bubblewrap unavailable ({sandbox.unavailable_reason()}): sandboxed rows skipped")
    floor_plain = timed(lambda: subprocess.run([sys.executable, "-I", "-c", "import numpy"], check=True), repeat)
    rows.append(("plain `python -I -c 'import numpy'`", floor_plain))
    rows.append(("runner, plain subprocess", timed(lambda: execute.run_calls(REFERENCE_DIR, calls, sandbox=False),
                                                   repeat)))
    whole = timed(lambda: check_package(REFERENCE_DIR, "fcnets", seed=seed, sandbox=boxed), repeat)
    rows.append((f"check_package (sandboxed={boxed}, reference cached)", whole))
    for label, (med, best) in rows:
        print(f"{label:58s} median {med:6.3f} s   best {best:6.3f} s")
    runner_box = dict(rows).get("runner, sandboxed")
    if runner_box:
        print(f"sandbox overhead: runner sandboxed / plain = {runner_box[0] / dict(rows)['runner, plain subprocess'][0]:.2f}x")

    from autograder.grading.commands import grade_command
    import importlib.util

    spec = importlib.util.spec_from_file_location("mutation_kit", ROOT / "tests" / "trusted" / "mutation_kit.py")
    kit = importlib.util.module_from_spec(spec)
    sys.modules["mutation_kit"] = kit
    spec.loader.exec_module(kit)
    with tempfile.TemporaryDirectory() as d:
        subs = Path(d) / "submissions"
        kit.build_mutant_submission(None, subs / "ref_student.zip")
        t = time.perf_counter()
        code = grade_command(assignment="fcnets", submissions=str(subs), out=str(Path(d) / "out"), workers=1,
                             db=None, unsafe_no_sandbox=not boxed)
        t_grade = time.perf_counter() - t
    if code != 0:
        print(f"grade: exited with {code} after {t_grade:.2f} s (see above); share of grading time not measured")
        return 0
    print(f"grade of one reference submission: {t_grade:.2f} s (exit {code}); trusted checks "
          f"{whole[0]:.2f} s = {whole[0] / t_grade:.0%} of it")
    row(f"`check-package` fcnets ({len(plan_checks)} trusted checks, {'sandboxed' if boxed else 'unsandboxed'})",
        f"{whole[0]:.2f} s", f"{whole[0] / t_grade:.0%} of a whole `grade` of one fcnets submission ({t_grade:.1f} s), "
        "which runs them beside the notebooks")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
