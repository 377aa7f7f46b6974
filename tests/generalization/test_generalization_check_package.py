"""generalization's trusted checks on the reference and the untouched release; what they cover; its saved model;
the known values of the notebooks' checks; the mutation suite (every cataloged bug loses points)."""
from __future__ import annotations

import ast
import difflib
import importlib.util
from concurrent.futures import ThreadPoolExecutor

import nbformat
import numpy as np
import pytest

from autograder import REPO_ROOT
from autograder.manifest import load_manifest
from autograder.trusted import build_report, check_models, check_package, covered_grade_ids, points_for, \
    reference_outcomes
from autograder.trusted.spec import load_spec

ASSIGNMENT = "generalization"
SOURCE = REPO_ROOT / "source" / ASSIGNMENT
SPEC = load_spec(ASSIGNMENT)
MANIFEST = load_manifest(ASSIGNMENT)
SEED = 20261201


def _grade_cells():
    """grade id -> source of every autograded (code) grade cell of the assignment's notebooks."""
    cells = {}
    for name in MANIFEST.notebooks:
        for cell in nbformat.read(SOURCE / name, as_version=4).cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("grade") and cell.cell_type == "code":
                cells[meta["grade_id"]] = cell.source
    return cells


CELLS = _grade_cells()


@pytest.fixture(scope="module")
def reference_report(kit, use_sandbox):
    return check_package(kit.REFERENCE, ASSIGNMENT, seed=SEED, sandbox=use_sandbox)


def test_reference_scores_full_marks_on_every_code_grade_id(reference_report):
    r = reference_report
    assert [(c["id"], c["message"]) for c in r["checks"] if c["status"] != "passed"] == []
    assert r["score"] == r["max_score"] == sum(MANIFEST.points[g] for g in r["grade_ids"])
    code_ids = {g for g in CELLS if g not in {m.grade_id for m in SPEC.models.values()}}
    assert set(r["grade_ids"]) == covered_grade_ids(ASSIGNMENT, models=False) == code_ids


def test_reference_meets_every_check_for_many_seeds():
    """No check is flaky: the reference, run in-process as the runner runs it, passes for every seed
    (the PCA's sign-free comparison and the conv shapes drawn from the seed included)."""
    points = points_for(ASSIGNMENT)
    for seed in range(3000, 3030):
        calls, plan_checks = SPEC.build_plan(seed)
        refs = reference_outcomes(seed, calls, SPEC)
        report = build_report(plan_checks, calls, refs, refs, points)
        assert [c["id"] for c in report["checks"] if c["status"] != "passed"] == [], seed


def test_untouched_release_scores_zero(kit, tmp_path, use_sandbox):
    pkg = kit.make_stub_package(tmp_path, release=REPO_ROOT / "assignments" / ASSIGNMENT / "nnkit")
    r = check_package(pkg, ASSIGNMENT, seed=SEED, sandbox=use_sandbox)
    assert r["score"] == 0, [c["id"] for c in r["checks"] if c["status"] == "passed"]
    assert set(r["grade_ids"]) == covered_grade_ids(ASSIGNMENT, models=False)
    row = next(c for c in r["checks"] if c["id"] == "conv_forward.plain")
    assert row["status"] == "failed" and "NotImplementedError" in row["message"]


def test_covered_grade_ids_are_the_autograded_cells_and_every_student_function_is_graded():
    assert covered_grade_ids(ASSIGNMENT) == set(CELLS) == {g for g in MANIFEST.points if not g.startswith("answer_")}
    assert set(SPEC.models) == set(MANIFEST.saved_models)
    calls, checks = SPEC.build_plan(0)
    by_id = {c.id: c for c in calls}
    graded, wrong = set(), set()
    for check in checks:
        p = by_id[check.call].params
        module = f"nnkit/{p['module'].replace('.', '/')}.py"
        if by_id[check.call].procedure == "net_loss":
            function = f"{p['cls']}.loss"
        elif "backward" in check.id:
            function = p["backward"]
        else:
            function = p["fn"]
        graded.add((module, function))
        if function not in MANIFEST.student_functions(module):
            wrong.add((check.grade_id, function, "not in [package]"))
        if function.split(".")[0] not in CELLS[check.grade_id].split("### BEGIN HIDDEN TESTS")[0]:
            wrong.add((check.grade_id, function, "not named in the visible check cell"))
    assert not wrong, sorted(wrong)
    assert graded == {(m, f) for m, fns in MANIFEST.package.items() for f in fns}


def test_students_get_different_inputs_and_no_expected_values():
    a = {c.id: c for c in SPEC.build_plan(1)[0]}
    b = {c.id: c for c in SPEC.build_plan(2)[0]}
    assert a.keys() == b.keys()
    for call_id, name in (("mse.wide", "pred"), ("conv.plain.backward", "x"), ("pca.tall", "X"), ("cnn.two_blocks_reg", "X")):
        x, z = a[call_id].arrays[name], b[call_id].arrays[name]
        assert x.shape != z.shape or not np.array_equal(x, z), call_id
    for c in SPEC.build_plan(SEED)[0]:
        assert all(v.size < 5000 for v in c.arrays.values()), c.id
        assert not any(k.startswith(("expected", "want", "ref")) for k in c.arrays), c.id


def test_the_saved_reference_model_passes_with_an_independent_forward_pass():
    """The grader's accuracy of models/cnn.npz equals a LeNet forward pass written here (einsum convolutions)."""
    from nnkit.analysis import load_digits

    data = load_digits("embedded")
    row = check_models(SOURCE, ASSIGNMENT, "embedded")["checks"][0]
    assert row["status"] == "passed", row["message"]
    with np.load(SOURCE / "models" / "cnn.npz") as z:
        p = {k: z[k] for k in z.files if k != "__nnkit__"}

    def conv_relu_pool(h, W, b):
        N, C, H, _ = h.shape
        F, _, k, _ = W.shape
        Ho = H - k + 1
        windows = np.lib.stride_tricks.sliding_window_view(h, (k, k), axis=(2, 3))  # (N, C, Ho, Ho, k, k)
        a = np.maximum(np.einsum("ncijkl,fckl->nfij", windows, W) + b[None, :, None, None], 0)
        return a[:, :, :Ho // 2 * 2, :Ho // 2 * 2].reshape(N, F, Ho // 2, 2, Ho // 2, 2).max(axis=(3, 5))

    for split in ("val", "test"):
        h = conv_relu_pool(conv_relu_pool(data[f"X_{split}"], p["W1"], p["b1"]), p["W2"], p["b2"]).reshape(
            len(data[f"X_{split}"]), -1)
        h = np.maximum(np.maximum(h @ p["W3"] + p["b3"], 0) @ p["W4"] + p["b4"], 0)
        acc = float(np.mean(np.argmax(h @ p["W5"] + p["b5"], axis=1) == data[f"y_{split}"]))
        assert row["accuracy"][split] == pytest.approx(acc, abs=1e-12)
        assert acc >= MANIFEST.threshold("embedded", f"cnn_{split}")


# ---------------------------------------------------------------------------
# The known values of the check cells, by the definitions (authoring/known_values.py, no nnkit)
# ---------------------------------------------------------------------------
# Loaded under a name of its own: every assignment's authoring/ has a known_values.py.
_spec = importlib.util.spec_from_file_location("generalization_known_values", SOURCE / "authoring" / "known_values.py")
known_values = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(known_values)
VALUES = known_values.values()
#: (grade id, the literal in the cell) -> the known value's name
LITERALS = {
    ("test_mse_loss", "1.25"): "mse_loss",
    ("test_mse_loss", "[[0.5], [0.0], [-1.0], [0.0]]"): "mse_grad",
    ("test_mse_loss", "14 / 6"): "mse_loss_k3",
    ("test_mse_loss", "[[-1 / 3, -2 / 3, -1.0], [0.0, 0.0, 0.0]]"): "mse_grad_k3",
    ("test_count_params", "51"): "count_fc",
    ("test_count_params", "141"): "count_regression",
    ("test_grad_norm", "5.0"): "grad_norm",
    ("test_pca", "[[-np.sqrt(2)], [0.0], [np.sqrt(2)]]"): "pca_line_Z",
    ("test_pca", "[0.8, 0.2]"): "pca_axes_explained",
    ("test_pca", "[[2.0, 0.0], [-2.0, 0.0], [0.0, 1.0], [0.0, -1.0]]"): "pca_axes_Z",
    ("test_interpolate", "[[1.0, 2.0]]"): "interpolate_quarter",
    ("test_interpolate", "[[-4.0, 2.0]]"): "interpolate_minus_one",
    ("test_sensitivity", "np.sqrt(20) / 8"): "sensitivity",
    ("test_conv_forward", "[[[[13.0, 17.0], [25.0, 29.0]]]]"): "conv_ones",
    ("test_conv_forward", "[[[[1.0, 5.0], [11.0, 28.0]]]]"): "conv_pad_stride",
    ("test_conv_forward", "[[[[10.0]], [[13.0]]]]"): "conv_channels",
    ("test_conv_backward", "[[[[12.0, 16.0], [24.0, 28.0]]]]"): "conv_dw",
    ("test_conv_backward", "[[[[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]]]"): "conv_dx",
    ("test_pool_forward", "[[[[5.0, 7.0], [13.0, 15.0]]]]"): "pool_2x2",
    ("test_pool_forward", "[[[[10.0, 11.0], [14.0, 15.0]]]]"): "pool_3x3",
    ("test_pool_forward", "[[[[0.0, -1.0, -2.0], [-3.0, -4.0, -5.0]]]]"): "pool_2x1",
}


@pytest.mark.parametrize("where", sorted(LITERALS), ids=lambda w: f"{w[0]}:{w[1][:30]}")
def test_the_cells_literals_are_the_definitions_values(where):
    grade_id, literal = where
    visible = CELLS[grade_id].split("### BEGIN HIDDEN TESTS")[0]
    assert literal in visible, f"{literal} no longer in {grade_id}: update LITERALS"
    value = eval(compile(ast.parse(literal, mode="eval"), "<literal>", "eval"), {"np": np})
    np.testing.assert_allclose(np.asarray(value, dtype=float), VALUES[LITERALS[where]], rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------
# The mutation suite
# ---------------------------------------------------------------------------
def test_catalog_applies_cleanly_to_student_regions_only(kit, catalog):
    mutants, accepted = catalog
    ids = [m.id for m in mutants + accepted]
    assert len(ids) == len(set(ids)) and len(mutants) >= 40
    student_modules = {rel.split("nnkit/", 1)[1] for rel, fns in MANIFEST.package.items() if fns}
    assert {m.module for m in mutants} == student_modules
    for m in mutants + accepted:
        before = (kit.REFERENCE / m.module).read_text().splitlines()
        after = kit.mutated_text(m).splitlines()  # raises when an `old` snippet is not found exactly once
        assert after != before
        inside, depth = [], False
        for line in before:
            depth = True if "### BEGIN SOLUTION" in line else False if "### END SOLUTION" in line else depth
            inside.append(depth)
        for tag, i1, i2, _, _ in difflib.SequenceMatcher(a=before, b=after, autojunk=False).get_opcodes():
            if tag != "equal":
                lines = range(i1, i2) if i2 > i1 else [max(i1 - 1, 0)]
                assert all(inside[k] for k in lines), f"{m.id} edits code outside the solution regions"


@pytest.fixture(scope="module")
def mutant_reports(kit, catalog, tmp_path_factory, use_sandbox, reference_report):
    """mutant id -> check-package report, every mutant and accepted variant checked once (the reference's
    outcomes are cached by reference_report's run of the same seed)."""
    mutants, accepted = catalog
    tmp = tmp_path_factory.mktemp("mutants")

    def score(m):
        return check_package(kit.make_mutant_package(m, tmp / m.id), ASSIGNMENT, seed=SEED, sandbox=use_sandbox)

    with ThreadPoolExecutor(max_workers=2) as pool:  # the runners are subprocesses: two at a time on 2 cores
        return dict(zip([m.id for m in mutants + accepted], pool.map(score, mutants + accepted)))


def test_every_mutant_loses_points_and_accepted_variants_keep_full_marks(catalog, mutant_reports, use_sandbox):
    mutants, accepted = catalog
    survivors, accepted_lost, outside = [], [], []
    own = {"regression.py": {"test_mse_loss"}, "classifiers/cnn.py": {"test_cnn_loss", "test_cnn_gradcheck"}}
    for m in mutants + accepted:
        r = mutant_reports[m.id]
        lost = sorted({c["grade_id"] for c in r["checks"] if c["status"] != "passed"})
        print(f"{m.id:34s} {r['score']:6.2f}/{r['max_score']:.2f}  lost in: {', '.join(lost)}")
        if m in accepted:
            if lost:
                accepted_lost.append((m.id, lost))
        elif r["score"] >= r["max_score"]:
            survivors.append(m.id)
        elif m.module in own and not set(lost) <= own[m.module]:
            outside.append((m.id, lost))
    killed = len(mutants) - len(survivors)
    print(f"\nkill rate: {killed}/{len(mutants)} = {killed / len(mutants):.1%} (sandboxed: {use_sandbox}); "
          f"accepted variants with full marks: {len(accepted) - len(accepted_lost)}/{len(accepted)}")
    assert survivors == [] and accepted_lost == []
    assert outside == []  # a bug in the MSE or the CNN costs those grade ids only


@pytest.mark.parametrize("mutant_id, grade_ids", [
    ("count_len", {"test_count_params"}),
    ("grad_norm_sum_of_norms", {"test_grad_norm"}),
    ("pca_not_centred", {"test_pca"}),
    ("interpolate_swapped", {"test_interpolate"}),
    ("sensitivity_squared", {"test_sensitivity"}),
    ("conv_no_bias", {"test_conv_forward"}),
    ("conv_dx_assigned", {"test_conv_backward"}),
    ("pool_mean", {"test_pool_forward"}),
    ("pool_back_row_col_swapped", {"test_pool_backward"}),
])
def test_a_bug_costs_the_points_of_its_own_grade_id(mutant_reports, mutant_id, grade_ids):
    """The analysis and conv functions are graded on trusted models and inputs: a bug costs its own cell only."""
    r = mutant_reports[mutant_id]
    assert {g for g, row in r["grade_ids"].items() if row["points"] < row["max_points"]} == grade_ids
