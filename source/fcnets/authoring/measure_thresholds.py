"""Measure the reference's accuracies over 5 seeds: the basis of [thresholds.<dataset>].

Runs the reference solutions of the notebooks' training cells (the same models,
hyperparameters and searches) with seeds 0..4 and prints every accuracy the
accuracy checks compare with a threshold, with the minimum over seeds:

    OPENBLAS_NUM_THREADS=1 NNKIT_DATASET=embedded .venv/bin/python source/fcnets/authoring/measure_thresholds.py

Keep the settings below equal to the notebooks' solution cells.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "source"))

from nnkit import data_utils  # noqa: E402
from nnkit.classifiers.fc_net import FullyConnectedNet, TwoLayerNet  # noqa: E402
from nnkit.classifiers.linear import LinearSVM  # noqa: E402
from nnkit.features import load_feature_dataset  # noqa: E402
from nnkit.solver import Solver  # noqa: E402
from nnkit.tuning import random_search  # noqa: E402


def accuracy(model, X, y):
    return float(np.mean(np.argmax(model.loss(X), axis=1) == y))


def two_layer(data, seed):
    """02_two_layer_net, cell tune_two_layer."""
    input_dim = int(np.prod(data["X_train"].shape[1:]))
    np.random.seed(seed)
    results = random_search(
        lambda hidden_dim, reg: TwoLayerNet(input_dim=input_dim, hidden_dim=hidden_dim, reg=reg), data,
        {"learning_rate": ("log", 5e-4, 2e-3), "reg": ("log", 1e-4, 3e-2), "hidden_dim": [100, 200]},
        num_trials=4, seed=seed, progress=False,
        solver_kwargs={"update_rule": "sgd_momentum", "lr_decay": 0.95, "batch_size": 200, "num_epochs": 10})
    m = results.best_model
    return {"two_layer_val": accuracy(m, data["X_val"], data["y_val"]),
            "two_layer_test": accuracy(m, data["X_test"], data["y_test"])}


def features(feats, seed):
    """03_features, cells linear_choice/linear_final and features_net."""
    with_bias = {k: np.hstack([feats[k], np.ones((len(feats[k]), 1))]) for k in ("X_train", "X_test")}
    np.random.seed(seed)
    clf = LinearSVM()
    clf.train(with_bias["X_train"], feats["y_train"], learning_rate=3e-3, reg=1e-2, num_iters=1500, batch_size=200)
    np.random.seed(seed)
    net = TwoLayerNet(input_dim=feats["X_train"].shape[1], hidden_dim=500, weight_scale=1e-2, reg=1e-3)
    Solver(net, feats, update_rule="adam", optim_config={"learning_rate": 1e-3}, lr_decay=0.95, num_epochs=20,
           batch_size=200, seed=seed, verbose=False, progress=False).train()
    return {"features_linear_test": float(np.mean(clf.predict(with_bias["X_test"]) == feats["y_test"])),
            "features_net_test": accuracy(net, feats["X_test"], feats["y_test"])}


def fc_net(data, seed):
    """04_fully_connected_nets, cell train_fc."""
    m = FullyConnectedNet([256, 128], weight_scale=2e-2, reg=1e-3, seed=seed,
                          input_dim=int(np.prod(data["X_train"].shape[1:])))
    Solver(m, data, update_rule="adam", optim_config={"learning_rate": 5e-4}, lr_decay=0.9, num_epochs=10,
           batch_size=200, seed=seed, verbose=False, progress=False).train()
    return {"fc_net_val": accuracy(m, data["X_val"], data["y_val"])}


def main() -> int:
    name = data_utils.dataset_name()
    data = data_utils.load_dataset()
    feats = load_feature_dataset()
    rows = {}
    for seed in range(5):
        t = time.time()
        row = {**two_layer(data, seed), **features(feats, seed), **fc_net(data, seed)}
        for k, v in row.items():
            rows.setdefault(k, []).append(v)
        print(f"seed {seed} ({time.time() - t:.0f} s): " + ", ".join(f"{k} {v:.3f}" for k, v in row.items()))
    print(f"\n[thresholds.{name}] measured over seeds 0..4:")
    for k, vs in rows.items():
        print(f"{k:22s} min {min(vs):.3f}  mean {np.mean(vs):.3f}  max {max(vs):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
