"""The cyclical_lr mutation suite: every cataloged student bug must lose points in check-package.

Each mutant (tests/cyclical_lr/mutants.py) is applied to a fresh copy of the reference package
and checked with one sandboxed runner process, two at a time. The suite prints every mutant's
score and the kill rate; the accepted variants must keep full marks; a bug costs the points of
its own function (and of the functions that call it), nothing else.
"""
import difflib
from concurrent.futures import ThreadPoolExecutor

import pytest

from autograder.manifest import load_manifest
from autograder.trusted import check_package

ASSIGNMENT = "cyclical_lr"
SEED = 424242


def test_catalog_is_big_applies_cleanly_and_covers_every_student_function(kit, catalog):
    mutants, accepted = catalog
    ids = [m.id for m in mutants + accepted]
    assert len(ids) == len(set(ids))
    assert len(mutants) >= 40
    package = load_manifest(ASSIGNMENT).package
    student_modules = {rel.split("nnkit/", 1)[1] for rel, fns in package.items() if fns}
    assert {m.module for m in mutants} == student_modules
    for m in mutants + accepted:
        text = kit.mutated_text(m)  # raises when an `old` snippet is not found exactly once
        assert text != (kit.REFERENCE / m.module).read_text()
    # Every student function has at least two bugs in the catalog (its region's first line names it).
    prefixes = {"KTHNet.__init__": "init_", "KTHNet.forward": "forward_", "KTHNet.cost": "cost_",
                "KTHNet.gradients": "grad_", "normalization": "normalization_", "normalize": "normalize_",
                "compare_gradients": "compare_", "record": "record_", "minibatch_gd": "gd_",
                "sample_lambdas": "lambdas_", "cyclical_lr": "cyclical_"}
    assert set(prefixes) == {f for fns in package.values() for f in fns}
    for function, prefix in prefixes.items():
        assert sum(m.id.startswith(prefix) for m in mutants) >= 2, function


def test_catalog_mutates_only_student_regions(kit, catalog):
    """A mutant changes what students write (inside a solution region), never provided code."""
    mutants, accepted = catalog
    for m in mutants + accepted:
        before = (kit.REFERENCE / m.module).read_text().splitlines()
        after = kit.mutated_text(m).splitlines()
        inside, depth = [], False
        for line in before:
            if "### BEGIN SOLUTION" in line:
                depth = True
            elif "### END SOLUTION" in line:
                depth = False
            inside.append(depth)
        regions = []
        for tag, i1, i2, _, _ in difflib.SequenceMatcher(a=before, b=after, autojunk=False).get_opcodes():
            if tag != "equal":
                lines = range(i1, i2) if i2 > i1 else [max(i1 - 1, 0)]
                regions.append(all(inside[k] or "### END SOLUTION" in before[k] for k in lines))
        assert regions and all(regions), f"{m.id} edits code outside the solution regions"


def _score(kit, mutant, tmp_path, sandbox):
    pkg = kit.make_mutant_package(mutant, tmp_path / mutant.id)
    return check_package(pkg, ASSIGNMENT, seed=SEED, sandbox=sandbox)


@pytest.fixture(scope="module")
def reports(kit, catalog, tmp_path_factory, use_sandbox):
    """Every mutant's and accepted variant's report (the reference's first: it fills the reference cache)."""
    mutants, accepted = catalog
    ref = check_package(kit.REFERENCE, ASSIGNMENT, seed=SEED, sandbox=use_sandbox)
    assert ref["score"] == ref["max_score"] > 0
    tmp = tmp_path_factory.mktemp("mutants")
    with ThreadPoolExecutor(max_workers=2) as pool:  # the runners are subprocesses: two at a time on 2 cores
        got = list(pool.map(lambda m: _score(kit, m, tmp, use_sandbox), mutants + accepted))
    return {m.id: r for m, r in zip(mutants + accepted, got)}


def test_every_mutant_loses_points_and_accepted_variants_keep_full_marks(catalog, reports, use_sandbox):
    mutants, accepted = catalog
    survivors, accepted_lost = [], []
    for m in mutants + accepted:
        r = reports[m.id]
        lost = [c["id"] for c in r["checks"] if c["status"] != "passed"]
        if m in accepted:
            if lost:
                accepted_lost.append((m.id, lost))
        elif r["score"] >= r["max_score"]:
            survivors.append(m.id)
        grades = sorted({c["grade_id"] for c in r["checks"] if c["status"] != "passed"})
        print(f"{m.id:40s} {r['score']:6.2f}/{r['max_score']:.2f}  lost in: {', '.join(grades)}")
    killed = len(mutants) - len(survivors)
    print(f"\nkill rate: {killed}/{len(mutants)} = {killed / len(mutants):.1%} (sandboxed: {use_sandbox}); "
          f"accepted variants with full marks: {len(accepted) - len(accepted_lost)}/{len(accepted)}")
    assert survivors == []
    assert accepted_lost == []


#: The grade ids of a function, and of the functions that call it (a bug there may cost those too).
OWN = {
    "init_": {"test_init"},
    "forward_": {"test_cost", "test_gradients", "test_overfit"},
    "cost_": {"test_cost"},
    "grad_": {"test_gradients", "test_overfit"},
    "normalization_": {"test_normalize"},
    "normalize_": {"test_normalize"},
    "compare_": {"test_compare_gradients"},
    "record_": {"test_record", "test_overfit"},
    "gd_": {"test_minibatch_gd", "test_overfit"},
    "lambdas_": {"test_sample_lambdas"},
    "cyclical_": {"test_cyclical_lr"},
}


def test_a_bug_costs_the_points_of_its_own_function_and_its_callers_only(catalog, reports):
    """The trusted nets of record and minibatch_gd, and the given params of the net's methods, keep a
    bug in one function from costing the points of another (the overfit check trains the student's
    own net with the student's own loop, so it may fail with either)."""
    mutants, _ = catalog
    wrong = []
    for m in mutants:
        own = next(ids for prefix, ids in OWN.items() if m.id.startswith(prefix))
        lost = {g for g, row in reports[m.id]["grade_ids"].items() if row["points"] < row["max_points"]}
        if not lost & own or lost - own:
            wrong.append((m.id, sorted(lost)))
    assert wrong == []
