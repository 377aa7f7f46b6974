"""Accuracy of a submission's saved models, computed by the grader.

A saved model (``nnkit.solver.save_model``) is an ``.npz`` of plain arrays plus
``__nnkit__``, a JSON string ``{"format": 1, "class": ..., "config": {...}}``.
Here it is read with ``allow_pickle=False``, its class and configuration are
checked against what the assignment expects, the reference model is rebuilt
from the configuration, the student's weights are put in, and the accuracy
is computed with the REFERENCE forward pass on the grader's own data split.
No code from the submission runs.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from .reference import reference_module

MAX_MODEL_BYTES = 256 << 20

#: saved model -> (grade_id, allowed classes, input kind, [(threshold key, split)])
MODELS = {
    "models/two_layer_net.npz": ("test_two_layer_accuracy", ("TwoLayerNet",), "images",
                                 [("two_layer_val", "val"), ("two_layer_test", "test")]),
    "models/features_net.npz": ("test_features_accuracy", ("TwoLayerNet", "FullyConnectedNet"), "features",
                                [("features_net_test", "test")]),
    "models/fc_net.npz": ("test_fc_accuracy", ("FullyConnectedNet",), "images", [("fc_net_val", "val")]),
}

#: Config keys each class accepts (anything else is refused before the reference sees it).
_CONFIG_KEYS = {
    "TwoLayerNet": {"input_dim", "hidden_dim", "num_classes", "weight_scale", "reg"},
    "FullyConnectedNet": {"hidden_dims", "input_dim", "num_classes", "dropout_keep_ratio", "reg",
                          "weight_scale", "dtype", "seed", "normalization"},
}
MAX_UNITS = 1 << 16
MAX_LAYERS = 32


class ModelFileError(ValueError):
    """The saved model is malformed or not what the assignment asks for."""


@lru_cache(maxsize=4)
def _data(dataset, kind):
    if kind == "features":
        return reference_module("features").load_feature_dataset(dataset)
    return reference_module("data_utils").load_dataset(dataset)


def _positive_int(value, what):
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_UNITS:
        raise ModelFileError(f"config {what} must be an integer in [1, {MAX_UNITS}], got {value!r}")
    return value


def load_saved_model(path, allowed, input_dim, num_classes):
    """Rebuild a reference model from a saved file after checking everything in it.

    Returns
    -------
    model : reference TwoLayerNet or FullyConnectedNet with the saved params
    """
    path = Path(path)
    if path.is_symlink() or not path.is_file():
        raise ModelFileError(f"{path.name} is missing: the notebook saves it with nnkit.solver.save_model")
    if path.stat().st_size > MAX_MODEL_BYTES:
        raise ModelFileError(f"{path.name} is larger than {MAX_MODEL_BYTES >> 20} MB")
    try:
        with np.load(path, allow_pickle=False) as z:
            entries = {k: z[k] for k in z.files}
    except Exception as exc:
        raise ModelFileError(f"{path.name} is not a readable .npz of plain arrays ({exc})") from None
    meta = entries.pop("__nnkit__", None)
    if meta is None or meta.shape != () or meta.dtype.kind != "U":
        raise ModelFileError(f"{path.name} has no __nnkit__ entry: save it with nnkit.solver.save_model")
    try:
        meta = json.loads(str(meta))
    except ValueError:
        raise ModelFileError(f"{path.name}: __nnkit__ is not JSON") from None
    if not isinstance(meta, dict) or meta.get("format") != 1:
        raise ModelFileError(f"{path.name}: unknown format {meta.get('format') if isinstance(meta, dict) else meta!r}")
    cls, config = meta.get("class"), meta.get("config")
    if cls not in allowed:
        raise ModelFileError(f"{path.name} holds a {cls!r}; this check expects {' or '.join(allowed)}")
    if not isinstance(config, dict) or not set(config) <= _CONFIG_KEYS[cls]:
        extra = sorted(set(config) - _CONFIG_KEYS[cls]) if isinstance(config, dict) else config
        raise ModelFileError(f"{path.name}: unexpected config entries {extra}")
    config = dict(config)
    if config.get("input_dim") != input_dim or config.get("num_classes") != num_classes:
        raise ModelFileError(f"{path.name}: the model takes input_dim={config.get('input_dim')} and has "
                             f"num_classes={config.get('num_classes')}; the data here needs {input_dim} and {num_classes}")
    if cls == "TwoLayerNet":
        _positive_int(config.get("hidden_dim", 100), "hidden_dim")
    else:
        hidden = config.get("hidden_dims")
        if not isinstance(hidden, list) or not 1 <= len(hidden) <= MAX_LAYERS:
            raise ModelFileError(f"{path.name}: hidden_dims must be a list of 1 to {MAX_LAYERS} sizes")
        for h in hidden:
            _positive_int(h, "hidden_dims entry")
        if config.get("dtype", "float32") not in ("float32", "float64"):
            raise ModelFileError(f"{path.name}: dtype must be float32 or float64")
        if config.get("normalization") is not None:
            raise ModelFileError(f"{path.name}: normalization is not supported")
    for key in ("weight_scale", "reg", "dropout_keep_ratio"):
        if key in config and (isinstance(config[key], bool) or not isinstance(config[key], (int, float))):
            raise ModelFileError(f"{path.name}: config {key} must be a number")
    fc_net = reference_module("classifiers.fc_net")
    state = np.random.get_state()
    try:
        model = getattr(fc_net, cls)(**config)
    except Exception as exc:
        raise ModelFileError(f"{path.name}: the reference {cls} refused this config ({exc})") from None
    finally:
        np.random.set_state(state)
    if set(entries) != set(model.params):
        raise ModelFileError(f"{path.name} holds {sorted(entries)}; a {cls} with this config has "
                             f"{sorted(model.params)}")
    for name, value in entries.items():
        want = model.params[name]
        if value.shape != want.shape or value.dtype != want.dtype:
            raise ModelFileError(f"{path.name}: {name} is {value.dtype}{value.shape}, expected {want.dtype}{want.shape}")
        if not np.all(np.isfinite(value)):
            raise ModelFileError(f"{path.name}: {name} holds nan or inf")
        model.params[name] = value
    return model


def accuracy(model, X, y, batch_size=500):
    """Fraction of correct argmax predictions of the (reference) model."""
    correct = 0
    for start in range(0, len(X), batch_size):
        scores = model.loss(X[start:start + batch_size])
        correct += int(np.count_nonzero(np.argmax(scores, axis=1) == y[start:start + batch_size]))
    return correct / len(X)


def check_models(submission_dir, assignment, dataset, points=None, manifest=None):
    """Evaluate every saved model of the submission on the grader's split of ``dataset``.

    Parameters
    ----------
    submission_dir : path
        The folder holding ``models/``.
    assignment : str
    dataset : str
        ``"embedded"``, ``"cifar10"``, ... (the grading run's dataset, never the student's choice).
    points : dict or None
        grade_id -> points (default: the manifest's, else 1 each).
    manifest : autograder.manifest.Manifest or None
        Default: ``load_manifest(assignment)``; its thresholds and saved models are used.

    Returns
    -------
    dict
        ``score``, ``max_score``, ``checks`` (one per saved model) and ``grade_ids``, as ``check_package``.
    """
    from ..manifest import load_manifest

    if manifest is None:
        manifest = load_manifest(assignment)
    if points is None:
        points = {g: float(manifest.points.get(g, 1.0)) for g, *_ in MODELS.values()}
    rows, by_grade = [], {}
    for rel, (grade_id, allowed, kind, thresholds) in MODELS.items():
        if rel not in manifest.saved_models:
            continue
        max_points = float(points.get(grade_id, 1.0))
        status, message, accs = "failed", "", {}
        try:
            data = _data(dataset, kind)
            input_dim = int(np.prod(data["X_train"].shape[1:]))
            num_classes = int(max(data["y_train"].max(), data["y_val"].max(), data["y_test"].max()) + 1)
            model = load_saved_model(Path(submission_dir) / rel, allowed, input_dim, num_classes)
            short = []
            for key, split in thresholds:
                acc = accuracy(model, data[f"X_{split}"], data[f"y_{split}"])
                accs[split] = acc
                need = manifest.threshold(dataset, key)
                if acc < need:
                    short.append(f"{split} accuracy {acc:.4f} is below the threshold {need:.4f} ({key})")
            if short:
                message = "; ".join(short)
            else:
                status = "passed"
                message = ", ".join(f"{s} accuracy {a:.4f}" for s, a in accs.items())
        except ModelFileError as exc:
            message = str(exc)
        except Exception as exc:  # data missing etc.: the grader's problem, reported as an error
            status, message = "error", f"{type(exc).__name__}: {exc}"
        got = max_points if status == "passed" else 0.0
        rows.append({"id": f"model.{Path(rel).stem}", "grade_id": grade_id, "status": status, "points": got,
                     "max_points": max_points, "message": message, "accuracy": accs})
        by_grade[grade_id] = {"points": got, "max_points": max_points, "status": status}
    return {"score": sum(r["points"] for r in rows), "max_score": sum(r["max_points"] for r in rows),
            "checks": rows, "grade_ids": by_grade}
