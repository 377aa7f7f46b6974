"""The nnkit instructor toolchain: `python -m autograder <verb>`.

It never imports `nnkit` from a submission: student code is run sandboxed and
only what it returns is checked.
"""
from pathlib import Path

#: The repository root: autograder/ sits directly below it.
REPO_ROOT = Path(__file__).resolve().parent.parent
