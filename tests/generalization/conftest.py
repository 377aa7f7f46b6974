"""Shared fixtures of the generalization tests.

The builders are the fcnets kit's (tests/trusted/mutation_kit.py): reference copies,
mutants as textual edits, stubbed packages. This assignment's catalog is ``mutants.py``
here, built with the kit's Mutant class.
"""
import importlib.util
import sys
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
_TRUSTED = _HERE.parent / "trusted"


def _load(name, path):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def kit():
    """tests/trusted/mutation_kit.py: mutant, stub and submission builders (the same module object
    the fcnets tests use)."""
    return _load("mutation_kit", _TRUSTED / "mutation_kit.py")


@pytest.fixture(scope="session")
def catalog(kit):
    """(MUTANTS, ACCEPTED) of generalization."""
    return _load("generalization_mutants", _HERE / "mutants.py").catalog(kit.Mutant)


@pytest.fixture(scope="session")
def use_sandbox():
    """Sandbox the student side when bubblewrap works here (it does in CI); else a plain subprocess."""
    from autograder.sandbox import bwrap as sandbox

    return sandbox.available()


@pytest.fixture(scope="session")
def reference_run(tmp_path_factory):
    """The source notebooks executed once with the reference package (embedded dataset), as the
    release's self-grade does: a folder holding ``models/`` with the reference's saved models.
    (The models are outputs of the notebooks, never committed.)"""
    from autograder.release.plan import plan_release
    from autograder.release.selfgrade import run_reference

    return run_reference(plan_release("mnist_mlp"), tmp_path_factory.mktemp("mnist_mlp_reference"))
