"""The mnist_mlp mutation suite: every cataloged student bug must lose points in check-package.

Each mutant (tests/mnist_mlp/mutants.py) is applied to a fresh copy of the reference package
and checked with one sandboxed runner process, two at a time. The suite prints every
mutant's score and the kill rate; the accepted variants must keep full marks.
"""
from concurrent.futures import ThreadPoolExecutor

import pytest

from autograder.manifest import load_manifest
from autograder.trusted import check_package

SEED = 515151


def test_catalog_is_big_applies_cleanly_and_covers_every_student_module(kit, catalog):
    mutants, accepted = catalog
    ids = [m.id for m in mutants + accepted]
    assert len(ids) == len(set(ids))
    assert len(mutants) >= 25
    student_modules = {rel.split("nnkit/", 1)[1] for rel, fns in load_manifest("mnist_mlp").package.items() if fns}
    assert {m.module for m in mutants} == student_modules
    for m in mutants + accepted:
        text = kit.mutated_text(m)  # raises when an `old` snippet is not found exactly once
        assert text != (kit.REFERENCE / m.module).read_text()


def test_catalog_mutates_only_student_regions(kit, catalog):
    """A mutant changes what students write (inside a solution region), never provided code: a
    bug in provided code is not a student's bug."""
    import difflib

    mutants, accepted = catalog
    for m in mutants + accepted:
        before = (kit.REFERENCE / m.module).read_text().splitlines()
        after = kit.mutated_text(m).splitlines()
        inside, regions = [], []
        depth = False
        for line in before:
            if "### BEGIN SOLUTION" in line:
                depth = True
            elif "### END SOLUTION" in line:
                depth = False
            inside.append(depth)
        for tag, i1, i2, _, _ in difflib.SequenceMatcher(a=before, b=after, autojunk=False).get_opcodes():
            if tag != "equal":
                # a changed block must touch only lines inside a region (an insertion sits between two)
                lines = range(i1, i2) if i2 > i1 else [max(i1 - 1, 0)]
                regions.append(all(inside[k] or "### END SOLUTION" in before[k] for k in lines))
        assert regions and all(regions), f"{m.id} edits code outside the solution regions"


def _score(kit, mutant, tmp_path, sandbox):
    pkg = kit.make_mutant_package(mutant, tmp_path / mutant.id)
    return check_package(pkg, "mnist_mlp", seed=SEED, sandbox=sandbox)


def test_every_mutant_loses_points_and_accepted_variants_keep_full_marks(kit, catalog, tmp_path, use_sandbox):
    mutants, accepted = catalog
    ref = check_package(kit.REFERENCE, "mnist_mlp", seed=SEED, sandbox=use_sandbox)  # also fills the reference cache
    assert ref["score"] == ref["max_score"] > 0
    everything = mutants + accepted
    with ThreadPoolExecutor(max_workers=2) as pool:  # the runners are subprocesses: two at a time on 2 cores
        reports = list(pool.map(lambda m: _score(kit, m, tmp_path, use_sandbox), everything))
    survivors, accepted_lost = [], []
    for m, r in zip(everything, reports):
        lost = [c["id"] for c in r["checks"] if c["status"] != "passed"]
        if m in accepted:
            if lost:
                accepted_lost.append((m.id, lost))
        elif r["score"] >= r["max_score"]:
            survivors.append(m.id)
        grades = sorted({c["grade_id"] for c in r["checks"] if c["status"] != "passed"})
        print(f"{m.id:42s} {r['score']:6.2f}/{r['max_score']:.2f}  lost in: {', '.join(grades)}")
    killed = len(mutants) - len(survivors)
    print(f"\nkill rate: {killed}/{len(mutants)} = {killed / len(mutants):.1%} (sandboxed: {use_sandbox}); "
          f"accepted variants with full marks: {len(accepted) - len(accepted_lost)}/{len(accepted)}")
    assert survivors == []
    assert accepted_lost == []


@pytest.mark.parametrize("mutant_id, grade_id", [
    # Each bug costs the points of the function it is in; the trusted models of evaluate,
    # train_step and train_epoch keep a bug elsewhere from costing those too.
    ("flatten_by_256", "test_flatten_and_scale"),
    ("split_not_seeded", "test_split_train_val"),
    ("softmax_no_max_subtraction", "test_softmax_loss"),
    ("sigmoid_backward_of_the_cache", "test_sigmoid"),
    ("softmax_regression_bias_regularised", "test_softmax_regression_loss"),
    ("two_layer_ignores_activation", "test_two_layer_loss"),
    ("batches_drop_last", "test_batched_data"),
    ("evaluate_mean_of_batch_means", "test_evaluate"),
    ("train_step_drops_returned_config", "test_train_step"),
    ("train_epoch_unshuffled", "test_train_epoch"),
])
def test_a_bug_costs_the_points_of_its_own_grade_id(kit, catalog, tmp_path, use_sandbox, mutant_id, grade_id):
    mutants, _ = catalog
    m = next(m for m in mutants if m.id == mutant_id)
    r = _score(kit, m, tmp_path, use_sandbox)
    lost = {g for g, row in r["grade_ids"].items() if row["points"] < row["max_points"]}
    assert grade_id in lost
    # A bug may cost the other grade ids of its own function and of the functions that call it
    # (the nets call softmax_loss and the activations; so does the notebooks' own check), nothing else.
    same_function = [{"test_softmax_regression_loss", "test_softmax_regression_gradcheck"},
                     {"test_two_layer_loss", "test_two_layer_gradcheck"}]
    callers = {"test_softmax_loss": {"test_softmax_regression_loss", "test_softmax_regression_gradcheck",
                                     "test_two_layer_loss", "test_two_layer_gradcheck", "test_evaluate"},
               "test_sigmoid": {"test_two_layer_gradcheck", "test_two_layer_loss"},
               "test_train_step": {"test_train_epoch"}}
    allowed = {grade_id} | callers.get(grade_id, set()) | set().union(*(s for s in same_function if grade_id in s))
    assert lost <= allowed, lost
