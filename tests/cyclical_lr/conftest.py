"""Fixtures of the cyclical_lr tests: its mutant catalog. The kit (tests/trusted/mutation_kit.py) and
`use_sandbox` come from tests/conftest.py.
"""
import pytest


@pytest.fixture(scope="session")
def catalog(mutant_catalog):
    """(MUTANTS, ACCEPTED) of cyclical_lr (mutants.py here)."""
    return mutant_catalog("cyclical_lr")
