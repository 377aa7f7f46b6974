"""mnist_mlp's trusted checks on the reference and the untouched release; what they cover; its saved models."""
import json
import os
import shutil
import subprocess
import sys

import nbformat
import numpy as np
import pytest

from autograder import REPO_ROOT
from autograder.manifest import load_manifest
from autograder.trusted import build_report, check_models, check_package, covered_grade_ids, points_for, \
    reference_outcomes
from autograder.trusted.spec import load_spec

ASSIGNMENT = "mnist_mlp"
SOURCE = REPO_ROOT / "source" / ASSIGNMENT
SPEC = load_spec(ASSIGNMENT)
MANIFEST = load_manifest(ASSIGNMENT)
SEED = 20261124


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
    assert set(r["grade_ids"]) == set(r["covered_grade_ids"]) == covered_grade_ids(ASSIGNMENT, models=False) == code_ids
    for g, row in r["grade_ids"].items():
        assert row["max_points"] == MANIFEST.points[g], g


def test_reference_passes_for_other_students_seeds(kit, use_sandbox):
    for student in ("alice", "bob"):
        r = check_package(kit.REFERENCE, ASSIGNMENT, student_id=student, secret="course", sandbox=use_sandbox)
        assert r["score"] == r["max_score"] > 0, [c for c in r["checks"] if c["status"] != "passed"]
        assert r["seed_source"] == "student_id"


def test_reference_meets_every_property_check_for_many_seeds():
    """The checks judged against a definition (epoch properties, init statistics, evaluate's loss) must
    not be flaky: the reference, run in-process exactly as the runner runs it, passes them for every seed."""
    points = points_for(ASSIGNMENT)
    for seed in range(2000, 2040):
        calls, plan_checks = SPEC.build_plan(seed)
        refs = reference_outcomes(seed, calls, SPEC)
        report = build_report(plan_checks, calls, refs, refs, points)
        assert [c["id"] for c in report["checks"] if c["status"] != "passed"] == [], seed


def test_students_get_different_inputs():
    a = {c.id: c for c in SPEC.build_plan(1)[0]}
    b = {c.id: c for c in SPEC.build_plan(2)[0]}
    assert a.keys() == b.keys()
    for call_id, name in (("flatten.uint8", "images"), ("batched.int_seed", "X"), ("evaluate.0", "S")):
        x, z = a[call_id].arrays[name], b[call_id].arrays[name]
        assert x.shape != z.shape or not np.array_equal(x, z), call_id
    assert a["split.rows"].params["kwargs"] != b["split.rows"].params["kwargs"]


def test_untouched_release_scores_zero(kit, tmp_path, use_sandbox):
    pkg = kit.make_stub_package(tmp_path, release=REPO_ROOT / "assignments" / ASSIGNMENT / "nnkit")
    r = check_package(pkg, ASSIGNMENT, seed=SEED, sandbox=use_sandbox)
    assert r["score"] == 0, [c["id"] for c in r["checks"] if c["status"] == "passed"]
    assert set(r["grade_ids"]) == covered_grade_ids(ASSIGNMENT, models=False)
    row = next(c for c in r["checks"] if c["id"] == "flatten_and_scale.values")
    assert row["status"] == "failed" and "NotImplementedError" in row["message"]


def test_covered_grade_ids_are_the_autograded_cells_of_the_notebooks():
    covered = covered_grade_ids(ASSIGNMENT)
    assert covered == set(CELLS)
    assert covered == {g for g in MANIFEST.points if not g.startswith("answer_")}
    assert {m.grade_id for m in SPEC.models.values()} == covered - covered_grade_ids(ASSIGNMENT, models=False)
    assert set(SPEC.models) == set(MANIFEST.saved_models)


def _graded_functions(call, check):
    """(module file, function as the manifest's [package] names it) that a check grades."""
    p = call.params
    module = f"nnkit/{p['module'].replace('.', '/')}.py"
    if call.procedure == "net_init":
        return module, f"{p['cls']}.__init__"
    if call.procedure == "net_loss":
        return module, f"{p['cls']}.loss"
    if call.procedure == "forward_backward" and "backward" in check.id:
        return module, p["backward"]
    return module, p["fn"]


def test_every_graded_function_is_a_student_function_named_in_the_visible_check_cell():
    """Issue 10: what a trusted check grades is asked for ([package] lists it) and visibly checked
    (named above the hidden tests of that grade id's cell)."""
    calls, checks = SPEC.build_plan(0)
    by_id = {c.id: c for c in calls}
    wrong = set()
    for check in checks:
        module, function = _graded_functions(by_id[check.call], check)
        visible = CELLS[check.grade_id].split("### BEGIN HIDDEN TESTS")[0]
        if function not in MANIFEST.student_functions(module):
            wrong.add((check.grade_id, module, function, "not in [package]"))
        if function.split(".")[0] not in visible:
            wrong.add((check.grade_id, module, function, "not named in the visible check cell"))
    assert not wrong, sorted(wrong)
    graded = {_graded_functions(by_id[c.call], c) for c in checks}
    asked = {(m, f) for m, fns in MANIFEST.package.items() for f in fns}
    assert graded == asked  # and every student function is graded


def test_the_held_out_and_expected_values_never_reach_the_runner():
    """The runner gets inputs only: no call carries an expected output or the grader's data."""
    calls, _ = SPEC.build_plan(SEED)
    for c in calls:
        assert all(v.size < 5000 for v in c.arrays.values()), c.id
        assert not any(k.startswith(("expected", "want", "ref")) for k in c.arrays), c.id


# ---------------------------------------------------------------------------
# Saved models
# ---------------------------------------------------------------------------
def _forward_accuracy(params, config, X, y):
    """Accuracy of softmax regression or affine - sigmoid/relu - affine, written out here."""
    if "W" in params:
        scores = X @ params["W"] + params["b"]
    else:
        a = X @ params["W1"] + params["b1"]
        hidden = 1 / (1 + np.exp(-a)) if config.get("activation") == "sigmoid" else np.maximum(a, 0)
        scores = hidden @ params["W2"] + params["b2"]
    return float(np.mean(np.argmax(scores, axis=1) == y))


def test_saved_reference_models_pass_with_an_independent_forward_pass(reference_run):
    from nnkit.data_utils import load_flat_dataset

    data = load_flat_dataset("embedded")
    r = check_models(reference_run, ASSIGNMENT, "embedded")
    rows = {c["grade_id"]: c for c in r["checks"]}
    assert set(rows) == {"test_softmax_accuracy", "test_two_layer_accuracy", "test_grid_accuracy"}
    assert r["score"] == r["max_score"] == sum(MANIFEST.points[g] for g in rows)
    for rel, model_check in SPEC.models.items():
        with np.load(reference_run / rel) as z:
            params = {k: z[k] for k in z.files if k != "__nnkit__"}
            config = json.loads(str(z["__nnkit__"]))["config"]
        row = rows[model_check.grade_id]
        for key, split in model_check.thresholds:
            want = _forward_accuracy(params, config, data[f"X_{split}"], data[f"y_{split}"])
            assert row["accuracy"][split] == pytest.approx(want, abs=1e-12), (rel, split)
            assert want >= MANIFEST.threshold("embedded", key)


def _rewrite(src, dest, change):
    with np.load(src) as z:
        entries = {k: z[k] for k in z.files}
    change(entries)
    dest.parent.mkdir(parents=True, exist_ok=True)
    np.savez(dest, **entries)


def _meta(entries, **edits):
    meta = json.loads(str(entries["__nnkit__"]))
    for k, v in edits.items():
        if k == "config":
            meta["config"] = {**meta["config"], **v}
        else:
            meta[k] = v
    entries["__nnkit__"] = np.array(json.dumps(meta))


@pytest.mark.parametrize("file, change, words", [
    ("two_layer_net", lambda e: _meta(e, config={"activation": "tanh"}), "activation must be one of"),
    ("two_layer_net", lambda e: _meta(e, config={"activation": ["sigmoid"]}), "activation must be one of"),
    ("two_layer_net", lambda e: _meta(e, **{"class": "SoftmaxRegression"}), "expects TwoLayerNet"),
    ("softmax", lambda e: _meta(e, **{"class": "TwoLayerNet"}), "expects SoftmaxRegression"),
    ("softmax", lambda e: _meta(e, config={"input_dim": 3072}), "input_dim=3072"),
    ("softmax", lambda e: _meta(e, config={"hidden_dim": 10}), "unexpected config entries"),
    ("softmax", lambda e: e.update(W=e["W"][:, :5]), "expected float64(784, 10)"),
    ("best_net", lambda e: _meta(e, config={"hidden_dim": 5000}), "hidden_dim must be an integer in [1, 4096]"),
    ("best_net", lambda e: e.update(W1=np.zeros_like(e["W1"]), W2=np.zeros_like(e["W2"])), "below the threshold"),
])
def test_tampered_saved_models_fail_with_a_reason(reference_run, tmp_path, file, change, words):
    _rewrite(reference_run / "models" / f"{file}.npz", tmp_path / "models" / f"{file}.npz", change)
    grade_id = next(m.grade_id for rel, m in SPEC.models.items() if rel == f"models/{file}.npz")
    row = next(c for c in check_models(tmp_path, ASSIGNMENT, "embedded")["checks"] if c["grade_id"] == grade_id)
    assert row["status"] == "failed" and words in row["message"], row["message"]


def test_the_activation_in_the_file_is_the_one_the_grader_uses(reference_run, tmp_path):
    """The same weights as a ReLU net: scored with a ReLU, which gives other accuracies than the sigmoid."""
    from nnkit.data_utils import load_flat_dataset

    data = load_flat_dataset("embedded")
    src = reference_run / "models" / "two_layer_net.npz"
    _rewrite(src, tmp_path / "models" / "two_layer_net.npz", lambda e: _meta(e, config={"activation": "relu"}))
    with np.load(src) as z:
        params = {k: z[k] for k in z.files if k != "__nnkit__"}
    row = next(c for c in check_models(tmp_path, ASSIGNMENT, "embedded")["checks"]
               if c["grade_id"] == "test_two_layer_accuracy")
    relu = {s: _forward_accuracy(params, {"activation": "relu"}, data[f"X_{s}"], data[f"y_{s}"]) for s in row["accuracy"]}
    sigmoid = {s: _forward_accuracy(params, {"activation": "sigmoid"}, data[f"X_{s}"], data[f"y_{s}"])
               for s in row["accuracy"]}
    assert relu != sigmoid
    assert row["accuracy"] == pytest.approx(relu, abs=1e-12)


def test_the_grid_model_may_be_softmax_regression(reference_run, tmp_path):
    (tmp_path / "models").mkdir()
    shutil.copy(reference_run / "models" / "softmax.npz", tmp_path / "models" / "best_net.npz")
    row = next(c for c in check_models(tmp_path, ASSIGNMENT, "embedded")["checks"]
               if c["grade_id"] == "test_grid_accuracy")
    assert row["status"] in ("passed", "failed") and "accuracy" in row["message"], row["message"]
    assert set(row["accuracy"]) == {"val", "test"}


def test_cli_scores_the_package_and_the_models_beside_it(reference_run, kit, tmp_path):
    pkg = kit.copy_reference(tmp_path)
    shutil.copytree(reference_run / "models", tmp_path / "models")
    proc = subprocess.run(
        [sys.executable, "-m", "autograder", "check-package", str(pkg), "--assignment", ASSIGNMENT, "--json",
         "--seed", "8"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "NNKIT_DATASET": "embedded"})
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["score"] == report["max_score"] == sum(MANIFEST.points[g] for g in covered_grade_ids(ASSIGNMENT))
    assert set(report["grade_ids"]) == covered_grade_ids(ASSIGNMENT)
