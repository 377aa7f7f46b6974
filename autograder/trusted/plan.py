"""What an assignment's trusted-check spec is made of: calls to run, checks that judge them.

A spec (``source/<assignment>/trusted_checks.py``, see ``spec.py``) fills a
:class:`Plan` from a seed: each :class:`Call` is run once on the reference
package and once, sandboxed, on the student's (a runner procedure of
``runner.PROCEDURES`` with plain parameters and arrays); each :class:`Check`
judges one call's two outcomes with a verifier of ``compare.py`` and belongs to
one nbgrader ``grade_id``. The points of a grade id (the manifest's ``[points]``)
are shared among its checks in proportion to their weights.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .compare import all_of


@dataclass
class Call:
    """One call of a runner procedure (see ``runner.PROCEDURES``)."""

    id: str
    procedure: str
    params: dict
    arrays: dict = field(default_factory=dict)
    timeout: float = 10.0


@dataclass
class Check:
    """One sub-check: judges the outcome of one call."""

    id: str
    grade_id: str
    call: str
    verify: Callable
    weight: float = 1.0


class Plan:
    """The calls and checks of one seed, with the seeded generators a spec draws its inputs from.

    Attributes
    ----------
    rng : numpy.random.Generator
        Every input is drawn from it, so one seed gives one plan.
    np_seed : int
        A 32-bit seed for numpy's legacy global generator (procedures that train seed it).
    """

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        # numpy's legacy global generator takes 32-bit seeds.
        self.np_seed = int(self.rng.integers(0, 2**31 - 1))
        self.calls: list[Call] = []
        self.checks: list[Check] = []

    def call(self, id, procedure, params, timeout=10.0, **arrays):
        """Add a call; returns its id (what checks name)."""
        self.calls.append(Call(id, procedure, params, arrays, timeout))
        return id

    def check(self, id, grade_id, call, *verifiers, weight=1.0):
        """Add a check of `call` under `grade_id`; several verifiers must all pass."""
        verify = verifiers[0] if len(verifiers) == 1 else all_of(*verifiers)
        self.checks.append(Check(id, grade_id, call, verify, weight))

    def randn(self, *shape, scale=1.0):
        return scale * self.rng.standard_normal(shape)

    def dims(self, lo, hi, n):
        return [int(v) for v in self.rng.integers(lo, hi + 1, size=n)]
