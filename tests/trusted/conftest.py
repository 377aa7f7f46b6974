"""Shared fixtures of the trusted-check tests."""
import importlib.util
import sys
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent


def _load(name):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, _HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def kit():
    """tests/trusted/mutation_kit.py: mutant, stub and submission builders."""
    return _load("mutation_kit")


@pytest.fixture(scope="session")
def use_sandbox():
    """Sandbox the student side when bubblewrap works here (it does in CI); else a plain subprocess."""
    from autograder import sandbox

    return sandbox.available()
