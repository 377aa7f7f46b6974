"""check_models: saved models evaluated with the reference forward pass on the grader's split."""
import dataclasses
import json

import numpy as np
import pytest

from autograder.manifest import load_manifest
from autograder.trusted import check_models

DATASET = "embedded"


def forward_accuracy(params, X, y):
    """Accuracy of affine-ReLU-...-affine written out here, independently of the code under test."""
    a = X.reshape(len(X), -1)
    L = len(params) // 2
    for i in range(1, L + 1):
        a = a @ params[f"W{i}"] + params[f"b{i}"]
        if i < L:
            a = np.maximum(a, 0)
    return float(np.mean(np.argmax(a, axis=1) == y))


def row(report, grade_id):
    return next(c for c in report["checks"] if c["grade_id"] == grade_id)


def test_accuracy_is_that_of_an_independent_forward_pass_and_judged_by_the_manifest(trained):
    sub, data = trained
    manifest = load_manifest("fcnets")
    r = check_models(sub, "fcnets", DATASET)
    for grade_id, file, kind, keys in (
            ("test_two_layer_accuracy", "two_layer_net", "images", {"val": "two_layer_val", "test": "two_layer_test"}),
            ("test_fc_accuracy", "fc_net", "images", {"val": "fc_net_val"}),
            ("test_features_accuracy", "features_net", "features", {"test": "features_net_test"})):
        with np.load(sub / "models" / f"{file}.npz") as z:
            params = {k: z[k].astype(np.float64) for k in z.files if k != "__nnkit__"}
        d, got = data[kind], row(r, grade_id)
        want = {split: forward_accuracy(params, d[f"X_{split}"], d[f"y_{split}"]) for split in keys}
        assert got["accuracy"] == pytest.approx(want, abs=1e-9)
        above = all(want[s] >= manifest.threshold(DATASET, k) for s, k in keys.items())
        assert got["status"] == ("passed" if above else "failed"), got["message"]
        assert got["max_points"] == manifest.points[grade_id]


def test_models_above_the_thresholds_get_full_points(trained):
    sub, _ = trained
    manifest = load_manifest("fcnets")
    low = dataclasses.replace(manifest, thresholds={DATASET: {k: 0.5 for k in manifest.thresholds[DATASET]}})
    r = check_models(sub, "fcnets", DATASET, manifest=low)
    assert r["score"] == r["max_score"] > 0, [c["message"] for c in r["checks"]]


def _rewrite(src, dest, change):
    with np.load(src) as z:
        entries = {k: z[k] for k in z.files}
    change(entries)
    dest.parent.mkdir(parents=True, exist_ok=True)
    np.savez(dest, **entries)


def _meta(entries, **edits):
    meta = json.loads(str(entries["__nnkit__"]))
    meta.update(edits)
    entries["__nnkit__"] = np.array(json.dumps(meta))


@pytest.mark.parametrize("change, message", [
    (lambda e: e.update(W1=e["W1"][:, :10]), "expected float64"),
    (lambda e: _meta(e, **{"class": "SoftmaxRegression"}), "expects TwoLayerNet"),
    (lambda e: e.pop("__nnkit__"), "no __nnkit__"),
    (lambda e: _meta(e, config={"input_dim": 3072, "hidden_dim": 10**9, "num_classes": 10}), "hidden_dim"),
    (lambda e: _meta(e, config={"input_dim": 3072, "hidden_dim": 50, "num_classes": 10, "evil": 1}),
     "unexpected config"),
    (lambda e: e.update(W2=np.full_like(e["W2"], np.nan)), "nan"),
    (lambda e: e.update(W1=np.zeros_like(e["W1"]), W2=np.zeros_like(e["W2"])), "is below the threshold"),
])
def test_tampered_or_weak_models_fail_with_a_reason(trained, tmp_path, change, message):
    sub, _ = trained
    _rewrite(sub / "models" / "two_layer_net.npz", tmp_path / "models" / "two_layer_net.npz", change)
    r = row(check_models(tmp_path, "fcnets", DATASET), "test_two_layer_accuracy")
    assert r["status"] == "failed" and message in r["message"], r["message"]


def test_pickled_entries_are_refused_without_unpickling(tmp_path):
    path = tmp_path / "models" / "two_layer_net.npz"
    path.parent.mkdir()
    np.savez(path, W1=np.array([{"x": 1}], dtype=object))
    r = row(check_models(tmp_path, "fcnets", DATASET), "test_two_layer_accuracy")
    assert r["status"] == "failed" and "plain arrays" in r["message"]


def test_missing_models_fail_and_thresholds_come_from_the_manifest(tmp_path):
    r = check_models(tmp_path, "fcnets", DATASET)
    assert r["score"] == 0
    assert {c["grade_id"] for c in r["checks"]} == {"test_two_layer_accuracy", "test_features_accuracy",
                                                      "test_fc_accuracy"}
    assert all("missing" in c["message"] for c in r["checks"])
    assert load_manifest("fcnets").threshold(DATASET, "two_layer_val") > 0
