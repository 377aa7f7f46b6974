"""The nnkit instructor toolchain: `python -m autograder <verb>`.

It never imports `nnkit` from a submission: student code is run sandboxed and
only what it returns is checked.
"""
import sys
from pathlib import Path

#: The repository root: autograder/ sits directly below it.
REPO_ROOT = Path(__file__).resolve().parent.parent


def skip_slow_optional_imports() -> None:
    """Keep jsonschema (imported by nbformat, so by nbgrader) from importing ``rfc3987_syntax``,
    an optional checker of the "iri" string format that builds a grammar on import: about
    1.6 s of every grader process's start-up (worker, coordinator, release), for a format no
    notebook or nbgrader schema uses. jsonschema then leaves that format unchecked."""
    sys.modules.setdefault("rfc3987_syntax", None)


skip_slow_optional_imports()
