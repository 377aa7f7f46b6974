"""Run every benchmark in bench/ one after the other: `make bench` (add --quick for a smoke run).

Each script prints its own ratios (against the GEMM bound, a plain per-image loop,
nbgrader's own per-submission time, a plain notebook execution) measured in the same run
with one BLAS thread, and the rows it gives the README's speed table (``readme_rows.row``);
this writes those rows into README.md, in the order the scripts ran (``--no-readme``: print
only). Nothing here asserts a time: speed is reported, never tested.
"""
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import readme_rows  # noqa: E402


def main(argv: list[str]) -> int:
    write_readme = "--no-readme" not in argv
    argv = [a for a in argv if a != "--no-readme"]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    failed, rows = [], []
    for script in sorted(HERE.glob("bench_*.py")):
        print(f"\n=== {script.name} {' '.join(argv)}", flush=True)
        proc = subprocess.Popen([sys.executable, str(script), *argv], env=env, cwd=HERE.parent,
                                stdout=subprocess.PIPE, text=True)
        lines = []
        for line in proc.stdout:  # shown as it comes, kept for the table
            sys.stdout.write(line)
            lines.append(line)
        if proc.wait():
            failed.append(script.name)
        rows += readme_rows.rows_in("".join(lines))
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    if write_readme and rows:
        readme = HERE.parent / "README.md"
        readme.write_text(readme_rows.replace_table(readme.read_text(encoding="utf-8"),
                                                    readme_rows.table(rows, argv)), encoding="utf-8")
        print(f"\nREADME.md: the speed table now holds these {len(rows)} rows")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
