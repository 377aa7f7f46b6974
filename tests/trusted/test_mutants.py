"""The mutation suite: every cataloged student bug must lose points in check-package.

Each mutant is applied to a fresh copy of the reference package and checked
with one sandboxed runner process. The suite prints the kill rate; accepted
variants (epsilon inside the square root, x >= 0 in the ReLU mask) must keep
full marks, the reference must score full marks and the untouched release zero.
"""
from concurrent.futures import ThreadPoolExecutor

import pytest

from autograder.trusted import check_package

SEED = 424242
MODULES = {"layers.py", "layer_utils.py", "classifiers/fc_net.py", "classifiers/linear.py", "optim.py", "solver.py"}


def test_catalog_is_big_applies_cleanly_and_covers_every_student_module(kit):
    ids = [m.id for m in kit.MUTANTS + kit.ACCEPTED]
    assert len(ids) == len(set(ids))
    assert len(kit.MUTANTS) >= 40
    assert {m.module for m in kit.MUTANTS} == MODULES
    for m in kit.MUTANTS + kit.ACCEPTED:
        text = kit.mutated_text(m)  # raises when an `old` snippet is not found exactly once
        assert text != (kit.REFERENCE / m.module).read_text()


def test_catalog_error_when_the_reference_changes(kit):
    broken = kit.Mutant("x", "layers.py", (("this text is not in layers.py", "y"),), "none")
    with pytest.raises(kit.CatalogError, match="occurs 0 times"):
        kit.mutated_text(broken)


def _score(kit, mutant, tmp_path, sandbox):
    pkg = kit.make_mutant_package(mutant, tmp_path / mutant.id)
    return check_package(pkg, "fcnets", seed=SEED, sandbox=sandbox)


def test_every_mutant_loses_points(kit, tmp_path, use_sandbox):
    ref = check_package(kit.REFERENCE, "fcnets", seed=SEED, sandbox=use_sandbox)  # also fills the reference cache
    assert ref["score"] == ref["max_score"]
    with ThreadPoolExecutor(max_workers=2) as pool:  # the runners are subprocesses: two at a time on 2 cores
        reports = list(pool.map(lambda m: _score(kit, m, tmp_path, use_sandbox), kit.MUTANTS + kit.ACCEPTED))
    survivors, accepted_lost = [], []
    for m, r in zip(kit.MUTANTS + kit.ACCEPTED, reports):
        lost = [c["id"] for c in r["checks"] if c["status"] != "passed"]
        if m in kit.ACCEPTED:
            if lost:
                accepted_lost.append((m.id, lost))
        elif r["score"] >= r["max_score"]:
            survivors.append(m.id)
        print(f"{m.id:42s} {r['score']:6.2f}/{r['max_score']:.2f}  lost: {', '.join(lost[:3])}")
    killed = len(kit.MUTANTS) - len(survivors)
    print(f"\nkill rate: {killed}/{len(kit.MUTANTS)} = {killed / len(kit.MUTANTS):.1%}"
          f" (sandboxed: {use_sandbox})")
    assert survivors == []
    assert accepted_lost == []
