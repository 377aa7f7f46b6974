"""Fixtures of the mnist_mlp tests: its mutant catalog. The kit (tests/trusted/mutation_kit.py) and
`use_sandbox` come from tests/conftest.py.
"""
import pytest


@pytest.fixture(scope="session")
def catalog(mutant_catalog):
    """(MUTANTS, ACCEPTED) of mnist_mlp (mutants.py here)."""
    return mutant_catalog("mnist_mlp")


@pytest.fixture(scope="session")
def reference_run(reference_run_of):
    """The source notebooks executed once with the reference package (embedded dataset), as the
    release's self-grade does: a folder holding ``models/`` with the reference's saved models.
    (The models are outputs of the notebooks, never committed; the run is shared with
    tests/grading/test_grade_assignments.py.)"""
    return reference_run_of("mnist_mlp")
