"""Make the reference package and the toolchain importable from the repo root.

`nnkit` is imported from `source/` (never from site-packages) and `autograder`
from the repository root, exactly as the README's commands run them.
"""
import importlib.util
import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
for p in (REPO_ROOT / "source", REPO_ROOT):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

# One BLAS thread and a non-interactive matplotlib for every test run.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


def load_file_module(name: str, path: Path):
    """The module at `path`, imported once under `name` (test helpers that are not packages)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def kit():
    """tests/trusted/mutation_kit.py: reference copies, mutants as textual edits, stubbed packages
    and submissions, for every assignment's trusted-check tests."""
    return load_file_module("mutation_kit", REPO_ROOT / "tests" / "trusted" / "mutation_kit.py")


@pytest.fixture(scope="session")
def use_sandbox():
    """Sandbox the student side when bubblewrap works here (it does in CI); else a plain subprocess."""
    from autograder.sandbox import bwrap as sandbox

    return sandbox.available()


@pytest.fixture(scope="session")
def reference_run_of(tmp_path_factory):
    """`reference_run_of(assignment)` -> the folder where the assignment's source notebooks were
    executed once with the reference package on the embedded dataset, as the release's
    self-grade does (its ``models/`` hold the reference's saved models). Made once per session
    and shared: read it, never write into it."""
    from autograder.release.plan import plan_release
    from autograder.release.selfgrade import run_reference

    runs: dict[str, Path] = {}

    def run(assignment: str) -> Path:
        if assignment not in runs:
            runs[assignment] = run_reference(plan_release(assignment),
                                             tmp_path_factory.mktemp(f"{assignment}_reference_run"))
        return runs[assignment]

    return run


@pytest.fixture(scope="session")
def mutant_catalog(kit):
    """`mutant_catalog(assignment)` -> (MUTANTS, ACCEPTED) of tests/<assignment>/mutants.py, built
    with the kit's Mutant."""
    def catalog(assignment: str):
        path = REPO_ROOT / "tests" / assignment / "mutants.py"
        return load_file_module(f"{assignment}_mutants", path).catalog(kit.Mutant)
    return catalog
