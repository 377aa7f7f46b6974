"""check_package on the reference, the release and hostile packages; the CLI's JSON."""
import json
import subprocess
import sys

import pytest

from autograder import REPO_ROOT
from autograder.trusted import check_package, covered_grade_ids
from autograder.trusted.spec import load_spec

SPEC = load_spec("fcnets")

SEED = 20261123


def edit(pkg, module, old, new):
    path = pkg / module
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} not found once in {module}"
    path.write_text(text.replace(old, new))


def statuses(report, prefix):
    return {c["id"]: c["status"] for c in report["checks"] if c["id"].startswith(prefix)}


@pytest.fixture(scope="module")
def reference_report(kit, use_sandbox):
    return check_package(kit.REFERENCE, "fcnets", seed=SEED, sandbox=use_sandbox)


def test_reference_scores_full_marks_on_every_grade_id(reference_report):
    r = reference_report
    failed = [(c["id"], c["message"]) for c in r["checks"] if c["status"] != "passed"]
    assert failed == []
    assert r["score"] == r["max_score"] > 0
    # Every code grade id of the notebooks' autograded cells, less those of saved models.
    assert set(r["grade_ids"]) == set(r["covered_grade_ids"]) == covered_grade_ids("fcnets", models=False)
    assert len(r["grade_ids"]) == 21
    for row in r["checks"]:
        assert set(row) >= {"id", "grade_id", "status", "points", "max_points", "message"}


def test_reference_passes_for_other_students_seeds(kit, use_sandbox):
    for student in ("alice", "bob"):
        r = check_package(kit.REFERENCE, "fcnets", student_id=student, secret="course", sandbox=use_sandbox)
        assert r["score"] == r["max_score"], [c for c in r["checks"] if c["status"] != "passed"]
        assert r["seed_source"] == "student_id"


def test_students_get_different_inputs():
    calls_a, _ = SPEC.build_plan(1)
    calls_b, _ = SPEC.build_plan(2)
    x_a = next(c for c in calls_a if c.id == "affine.4d").arrays["x"]
    x_b = next(c for c in calls_b if c.id == "affine.4d").arrays["x"]
    assert x_a.shape != x_b.shape or not (x_a == x_b).all()


@pytest.mark.parametrize("assignment", ["fcnets", "mnist_mlp", "cyclical_lr", "generalization"])
def test_the_grade_ids_a_spec_scores_are_those_of_every_seeds_plan(assignment):
    # Spec.grade_ids is built once, from seed 0's plan: that holds only while no seed changes them.
    spec = load_spec(assignment)
    for seed in (1, 12345, 2**31 - 1):
        assert spec.grade_ids == {c.grade_id for c in spec.build_plan(seed)[1]}


def test_untouched_release_scores_zero(kit, tmp_path, use_sandbox):
    r = check_package(kit.make_stub_package(tmp_path), "fcnets", seed=SEED, sandbox=use_sandbox)
    assert r["score"] == 0, [c["id"] for c in r["checks"] if c["status"] == "passed"]
    affine = next(c for c in r["checks"] if c["id"] == "affine_forward.values_2d")
    assert affine["status"] == "failed" and "NotImplementedError" in affine["message"]


def test_monkeypatching_numpy_in_the_module_does_not_fool_the_check(kit, tmp_path, use_sandbox):
    pkg = kit.copy_reference(tmp_path)
    # A wrong affine_forward (no bias) that also sabotages the helpers an in-kernel check would use.
    edit(pkg, "layers.py", "out += b  # in place", "out = out * 1.0")
    edit(pkg, "layers.py", "import numpy as np\n",
         "import numpy as np\nnp.max = lambda *a, **k: 0.0\nnp.allclose = lambda *a, **k: True\n"
         "np.testing.assert_allclose = lambda *a, **k: None\n")
    r = check_package(pkg, "fcnets", seed=SEED, sandbox=use_sandbox)
    assert statuses(r, "affine_forward.") == {"affine_forward.values_2d": "failed", "affine_forward.values_4d": "failed"}


def test_an_ndarray_subclass_that_always_compares_equal_fails(kit, tmp_path, use_sandbox):
    pkg = kit.copy_reference(tmp_path)
    edit(pkg, "layers.py", "    cache = (x, w, b)\n    return out, cache",
         "    cache = (x, w, b)\n    class Yes(np.ndarray):\n        def __eq__(self, o):\n"
         "            return np.ones(self.shape, bool)\n    return np.zeros_like(out).view(Yes), cache")
    r = check_package(pkg, "fcnets", seed=SEED, sandbox=use_sandbox)
    row = next(c for c in r["checks"] if c["id"] == "affine_forward.values_2d")
    assert row["status"] == "failed" and "subclass" in row["message"]


def test_raise_timeout_and_crash_are_contained(kit, tmp_path, use_sandbox):
    pkg = kit.copy_reference(tmp_path)
    edit(pkg, "layers.py", "    out = np.maximum(x, 0)", "    raise RuntimeError('boom in relu')")
    edit(pkg, "layers.py", "    dx = dout * out * (1 - out)", "    while True:\n        pass")
    edit(pkg, "layers.py", "    out = np.where(x > 0, x, alpha * x)", "    import os\n    os._exit(3)")
    r = check_package(pkg, "fcnets", seed=SEED, sandbox=use_sandbox, call_timeout=2.0)
    rows = {c["id"]: c for c in r["checks"]}
    assert rows["relu_forward.values"]["status"] == "failed"
    assert "boom in relu" in rows["relu_forward.values"]["message"]
    assert rows["sigmoid_backward.dx"]["status"] == "timeout"
    assert rows["leaky_relu_forward.values"]["status"] == "error"
    assert "died" in rows["leaky_relu_forward.values"]["message"]
    # Calls after the crash ran in a fresh runner and still earn their points.
    assert rows["softmax_loss.loss_large"]["status"] == "passed"
    assert rows["adam.config_first_step"]["status"] == "passed"


def test_the_runner_sees_nothing_of_the_repo(kit, tmp_path, use_sandbox):
    pkg = kit.copy_reference(tmp_path)
    probe = (
        "    import importlib.util, os\n"
        "    if importlib.util.find_spec('autograder') is not None or os.path.exists(%r):\n"
        "        out = out * 0.0\n" % str(REPO_ROOT / "source" / "nnkit" / "layers.py")
    )
    edit(pkg, "layers.py", "    out = np.maximum(x, 0)\n", "    out = np.maximum(x, 0)\n" + probe)
    r = check_package(pkg, "fcnets", seed=SEED, sandbox=use_sandbox)
    if not use_sandbox:
        pytest.skip("without bubblewrap the repo is visible by path; only the import isolation holds")
    assert statuses(r, "relu_forward.") == {"relu_forward.values": "passed"}


def test_not_a_package_is_a_clear_error(tmp_path):
    from autograder.trusted import PackageError

    with pytest.raises(PackageError, match="no __init__.py"):
        check_package(tmp_path, "fcnets", seed=1, sandbox=False)
    with pytest.raises(ValueError, match="no trusted checks"):
        check_package(tmp_path, "nope", seed=1, sandbox=False)


def test_cli_prints_one_json_object():
    proc = subprocess.run(
        [sys.executable, "-m", "autograder", "check-package", "source/nnkit", "--assignment", "fcnets", "--json",
         "--seed", "5"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["score"] == report["max_score"] > 0
    assert {c["status"] for c in report["checks"]} == {"passed"}


def test_strange_return_values_fail_with_messages_never_a_crash(kit, tmp_path, use_sandbox):
    pkg = kit.copy_reference(tmp_path)
    edit(pkg, "layers.py", "    cache = (x, w, b)\n    return out, cache",
         "    cache = (x, w, b)\n    return 'abc', cache")
    edit(pkg, "layers.py", "    cache = x\n    return out, cache", "    cache = x\n    return np.array([object()]), cache")
    edit(pkg, "layers.py", "    return float(loss), dx\n\n\ndef softmax_loss",
         "    return [loss], dx.tolist()\n\n\ndef softmax_loss")
    edit(pkg, "layers.py", "    cache = out\n    return out, cache", "    cache = out\n    return (x for x in [1]), cache")
    r = check_package(pkg, "fcnets", seed=SEED, sandbox=use_sandbox)
    rows = {c["id"]: c for c in r["checks"]}
    for cid, words in (("affine_forward.values_2d", "numpy.ndarray"), ("relu_forward.values", "numpy.ndarray"),
                       ("svm_loss.loss_random", "number"), ("svm_loss.dx_random", "numpy.ndarray"),
                       ("sigmoid_forward.values", "numpy.ndarray")):
        assert rows[cid]["status"] == "failed" and words in rows[cid]["message"], rows[cid]
    assert rows["softmax_loss.loss_random"]["status"] == "passed"
    json.dumps(r)


def test_reference_meets_every_definition_based_check_for_many_seeds():
    """Checks judged against a definition (init statistics, overfitting, training) must not be flaky:
    the reference, run in-process exactly as the runner runs it, passes them for every seed."""
    from autograder.trusted import build_report, points_for, reference_outcomes

    points = points_for("fcnets")
    for seed in range(1000, 1020):
        calls, plan_checks = SPEC.build_plan(seed)
        refs = reference_outcomes(seed, calls, SPEC)
        report = build_report(plan_checks, calls, refs, refs, points)
        assert [c["id"] for c in report["checks"] if c["status"] != "passed"] == [], seed


def test_cli_also_evaluates_saved_models_next_to_the_package(kit, trained, tmp_path):
    """`check-package` with a models/ folder beside the package reports what check_models does."""
    import shutil

    from autograder.trusted import check_models

    sub, _ = trained
    pkg = kit.copy_reference(tmp_path)
    shutil.copytree(sub / "models", tmp_path / "models")
    proc = subprocess.run(
        [sys.executable, "-m", "autograder", "check-package", str(pkg), "--assignment", "fcnets", "--json",
         "--seed", "6"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
        env={**__import__("os").environ, "NNKIT_DATASET": "embedded"})
    assert proc.returncode == 0, proc.stderr
    rows = {c["grade_id"]: c for c in json.loads(proc.stdout)["checks"] if c["id"].startswith("model.")}
    assert set(rows) == {"test_two_layer_accuracy", "test_fc_accuracy", "test_features_accuracy"}
    direct = {c["grade_id"]: c for c in check_models(tmp_path, "fcnets", "embedded")["checks"]}
    for grade_id, row in rows.items():
        assert (row["status"], row["points"]) == (direct[grade_id]["status"], direct[grade_id]["points"]), row


def test_monkeypatch_submission_helper(kit, tmp_path):
    """The helper the grading tests use: a wrong layers.py plus a numpy-patching cell after the setup cell."""
    import zipfile

    path = kit.build_monkeypatch_submission(tmp_path / "mallory.zip")
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        nb = json.loads(z.read("01_layers.ipynb"))
        layers = z.read("nnkit/layers.py").decode()
    assert {"01_layers.ipynb", "nnkit/layers.py", "nnkit/optim.py"} <= names
    sources = ["".join(c["source"]) for c in nb["cells"]]
    i = sources.index(kit.MONKEYPATCH_CELL)
    assert nb["cells"][i - 1]["metadata"]["nbgrader"]["grade_id"] == "setup"
    assert "out = out  # in place" in layers
