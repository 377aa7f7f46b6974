"""cyclical_lr's trusted checks on the reference and the untouched release; what they cover; hostile
loops on the trusted nets; its saved models (the standardisation folded into a TwoLayerNet file)."""
import json

import nbformat
import numpy as np
import pytest

from autograder import REPO_ROOT
from autograder.manifest import load_manifest
from autograder.trusted import build_report, check_models, check_package, covered_grade_ids, points_for, \
    reference_outcomes
from autograder.trusted.spec import load_spec

ASSIGNMENT = "cyclical_lr"
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
    assert set(r["grade_ids"]) == set(r["covered_grade_ids"]) == covered_grade_ids(ASSIGNMENT, models=False) == code_ids
    for g, row in r["grade_ids"].items():
        assert row["max_points"] == MANIFEST.points[g], g


def test_reference_meets_every_property_check_for_many_seeds():
    """The checks judged against a definition (init statistics, the log-uniform spread, the overfit of a
    random set, the loop's batches) must not be flaky: the reference, run in-process exactly as the runner
    runs it, passes them for every seed."""
    points = points_for(ASSIGNMENT)
    for seed in range(5000, 5060):
        calls, plan_checks = SPEC.build_plan(seed)
        refs = reference_outcomes(seed, calls, SPEC)
        report = build_report(plan_checks, calls, refs, refs, points)
        assert [c["id"] for c in report["checks"] if c["status"] != "passed"] == [], seed


def test_students_get_different_inputs():
    a = {c.id: c for c in SPEC.build_plan(1)[0]}
    b = {c.id: c for c in SPEC.build_plan(2)[0]}
    assert a.keys() == b.keys()
    for call_id, name in (("normalization", "X"), ("kth.lam", "X"), ("record", "X_train"), ("overfit", "X")):
        x, z = a[call_id].arrays[name], b[call_id].arrays[name]
        assert x.shape != z.shape or not np.array_equal(x, z), call_id
    assert a["cyclical_lr.a"].params != b["cyclical_lr.a"].params
    assert a["minibatch_gd"].params != b["minibatch_gd"].params


def test_untouched_release_scores_zero(kit, tmp_path, use_sandbox):
    pkg = kit.make_stub_package(tmp_path, release=REPO_ROOT / "assignments" / ASSIGNMENT / "nnkit")
    r = check_package(pkg, ASSIGNMENT, seed=SEED, sandbox=use_sandbox)
    assert r["score"] == 0, [c["id"] for c in r["checks"] if c["status"] == "passed"]
    assert set(r["grade_ids"]) == covered_grade_ids(ASSIGNMENT, models=False)
    row = next(c for c in r["checks"] if c["id"] == "cyclical_lr.a")
    assert row["status"] == "failed" and "NotImplementedError" in row["message"]


def test_covered_grade_ids_are_the_autograded_cells_of_the_notebooks():
    covered = covered_grade_ids(ASSIGNMENT)
    assert covered == set(CELLS)
    assert covered == {g for g in MANIFEST.points if not g.startswith("answer_")}
    assert {m.grade_id for m in SPEC.models.values()} == covered - covered_grade_ids(ASSIGNMENT, models=False)
    assert set(SPEC.models) == set(MANIFEST.saved_models)


def _graded_functions(call):
    """The (module file, function as [package] names it) pairs one call grades."""
    p = call.params
    module = f"nnkit/{p['module'].replace('.', '/')}.py"
    if call.procedure == "net_init":
        return {(module, f"{p['cls']}.__init__")}
    if call.procedure == "model_methods":
        return {(module, f"{p['cls']}.{name}") for name, _, _ in p["methods"]}
    if call.procedure == "overfit":  # the student's own net trained by the student's own loop
        loop = f"nnkit/{p['loop_module'].replace('.', '/')}.py"
        return {(loop, p["loop"]), (module, f"{p['cls']}.gradients"), (module, f"{p['cls']}.forward")}
    return {(module, p["fn"])}


def test_every_graded_function_is_a_student_function_named_in_the_visible_check_cell():
    """What a trusted check grades is asked for ([package] lists it) and visibly checked (named above the
    hidden tests of that grade id's cell); every student function is graded."""
    calls, checks = SPEC.build_plan(0)
    by_id = {c.id: c for c in calls}
    wrong, graded = set(), set()
    for check in checks:
        visible = CELLS[check.grade_id].split("### BEGIN HIDDEN TESTS")[0]
        for module, function in _graded_functions(by_id[check.call]):
            graded.add((module, function))
            if function not in MANIFEST.student_functions(module):
                wrong.add((check.grade_id, module, function, "not in [package]"))
            if function.split(".")[0] not in visible:
                wrong.add((check.grade_id, module, function, "not named in the visible check cell"))
    assert not wrong, sorted(wrong)
    assert graded == {(m, f) for m, fns in MANIFEST.package.items() for f in fns}


def test_the_expected_values_never_reach_the_runner():
    """The runner gets inputs only: no call carries an expected output."""
    calls, _ = SPEC.build_plan(SEED)
    for c in calls:
        assert all(v.size < 20000 for v in c.arrays.values()), c.id
        assert not any(k.startswith(("expected", "want", "ref")) for k in c.arrays), c.id


# ---------------------------------------------------------------------------
# Hostile loops on the trusted nets
# ---------------------------------------------------------------------------
LOOP = "    record(history, net, data, 0)\n    t = 0\n    while t < n_updates:\n"


def _edit(pkg, module, old, new):
    path = pkg / module
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} not found once in {module}"
    path.write_text(text.replace(old, new))


@pytest.mark.parametrize("loop", [
    # updates forever (the StepNet stops it after n_updates + 2)
    "    record(history, net, data, 0)\n    t = 0\n    while True:\n",
    # ... and swallows every Exception on the way (BudgetExceeded is not one)
    "    record(history, net, data, 0)\n    t = 0\n    while True:\n      try:\n",
])
def test_a_loop_that_never_stops_is_stopped_by_the_trusted_net(kit, tmp_path, use_sandbox, loop):
    pkg = kit.copy_reference(tmp_path)
    if "try" in loop:
        text = (pkg / "cyclical.py").read_text()
        start = text.index(LOOP) + len(LOOP)
        end = text.index("    ### END SOLUTION", start)
        body = "".join("  " + line + "\n" for line in text[start:end].splitlines())
        text = text[:start - len(LOOP)] + loop + body + "      except Exception:\n        pass\n" + text[end:]
        (pkg / "cyclical.py").write_text(text)
    else:
        _edit(pkg, "cyclical.py", LOOP, loop)
    r = check_package(pkg, ASSIGNMENT, seed=SEED, sandbox=use_sandbox)
    gd = {c["id"]: c for c in r["checks"] if c["grade_id"] == "test_minibatch_gd"}
    assert gd and all(c["status"] == "failed" for c in gd.values())
    assert all("stopped there" in c["message"] for c in gd.values()), [c["message"][:300] for c in gd.values()]
    overfit = next(c for c in r["checks"] if c["grade_id"] == "test_overfit")  # the student's own net: budgeted too
    assert overfit["status"] == "failed" and "stopped there" in overfit["message"], overfit["message"][:300]
    spoiled = {g for g, row in r["grade_ids"].items() if row["points"] < row["max_points"]}
    assert spoiled == {"test_minibatch_gd", "test_overfit"}


def test_a_record_that_trains_the_net_is_refused(kit, tmp_path, use_sandbox):
    pkg = kit.copy_reference(tmp_path)
    _edit(pkg, "cyclical.py", "        cost, loss = net.cost(X, y)\n",
          "        net.gradients(X, y)\n        cost, loss = net.cost(X, y)\n")
    r = check_package(pkg, ASSIGNMENT, seed=SEED, sandbox=use_sandbox)
    rows = [c for c in r["checks"] if c["grade_id"] == "test_record"]
    assert rows and all(c["status"] == "failed" and "must not compute gradients" in c["message"] for c in rows)


# ---------------------------------------------------------------------------
# Saved models
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One cycle of notebook 02's training (on the embedded digits) saved as the notebook saves it, its
    statistics, and the raw test images."""
    from nnkit import cyclical as cy
    from nnkit.classifiers.kth_net import KTHNet, save_model
    from nnkit.optim import cyclical_lr

    raw = cy.load_splits("batch", "embedded")
    mean, std = cy.normalization(raw["X_train"])
    data = {k: (cy.normalize(v, mean, std) if k.startswith("X_") else v) for k, v in raw.items()}
    n_s = 5 * len(data["X_train"]) // 100
    net = KTHNet(3072, 50, 10, lam=0.01, seed=0)
    cy.minibatch_gd(net, data, lambda t: cyclical_lr(t, 1e-5, 1e-1, n_s), 2 * n_s, batch_size=100, seed=0)
    folder = tmp_path_factory.mktemp("submission")
    for rel in MANIFEST.saved_models:
        save_model(net, folder / rel, mean, std)
    return folder, net, data, raw


def _forward_accuracy(path, X, y):
    """Accuracy of the saved file's affine - ReLU - affine, written out here."""
    with np.load(path) as z:
        p = {k: z[k] for k in z.files if k != "__nnkit__"}
    scores = np.maximum(X @ p["W1"] + p["b1"], 0) @ p["W2"] + p["b2"]
    return float(np.mean(np.argmax(scores, axis=1) == y))


def test_saved_models_are_scored_on_the_images_as_loaded(trained):
    folder, net, data, raw = trained
    r = check_models(folder, ASSIGNMENT, "embedded")
    rows = {c["grade_id"]: c for c in r["checks"]}
    assert set(rows) == {"test_cyclical_accuracy", "test_final_accuracy"}
    assert all(c["status"] == "passed" for c in rows.values()), [c["message"] for c in rows.values()]
    assert set(rows["test_cyclical_accuracy"]["accuracy"]) == {"test"}
    want = float(np.mean(np.argmax(net.forward(data["X_test"])[1], axis=1) == raw["y_test"]))
    assert rows["test_cyclical_accuracy"]["accuracy"]["test"] == pytest.approx(want, abs=1e-12)
    assert _forward_accuracy(folder / "models/cyclical_net.npz", raw["X_test"], raw["y_test"]) == \
        pytest.approx(want, abs=1e-12)
    assert want >= MANIFEST.threshold("embedded", "cyclical_test")


@pytest.mark.parametrize("change, words", [
    (lambda meta: meta.update({"class": "SoftmaxRegression"}), "expects TwoLayerNet"),
    (lambda meta: meta["config"].update(activation="sigmoid"), "below the threshold"),
    (lambda meta: meta["config"].update(input_dim=784), "input_dim=784"),
])
def test_tampered_saved_models_fail_with_a_reason(trained, tmp_path, change, words):
    folder, _, _, _ = trained
    with np.load(folder / "models/final_net.npz") as z:
        entries = {k: z[k] for k in z.files}
    meta = json.loads(str(entries["__nnkit__"]))
    change(meta)
    entries["__nnkit__"] = np.array(json.dumps(meta))
    (tmp_path / "models").mkdir()
    np.savez(tmp_path / "models" / "final_net.npz", **entries)
    row = next(c for c in check_models(tmp_path, ASSIGNMENT, "embedded")["checks"]
               if c["grade_id"] == "test_final_accuracy")
    assert row["status"] == "failed" and words in row["message"], row["message"]
