"""Make the reference package and the toolchain importable from the repo root.

`nnkit` is imported from `source/` (never from site-packages) and `autograder`
from the repository root, exactly as the README's commands run them.
"""
import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
for p in (REPO_ROOT / "source", REPO_ROOT):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

# One BLAS thread and a non-interactive matplotlib for every test run.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
