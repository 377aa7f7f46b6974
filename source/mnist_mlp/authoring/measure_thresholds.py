"""Measure the reference's accuracies over 5 seeds: the basis of [thresholds.<dataset>].

Runs what the notebooks' training cells run (the same configs, the same grid) with the
reference nnkit, for seeds 0..4: seed s draws the validation split
(``load_flat_dataset(seed=s)``) and the run (``config.seed = s``: the initial weights and
the order of the minibatches). Prints every accuracy an accuracy check compares with a
threshold, with the minimum and the mean over the seeds:

    OPENBLAS_NUM_THREADS=1 NNKIT_DATASET=embedded .venv/bin/python source/mnist_mlp/authoring/measure_thresholds.py

Keep it equal to the notebooks: 01 train_softmax, 02 train_sigmoid, 03 grid.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # source/, where the reference nnkit is

from nnkit import data_utils  # noqa: E402
from nnkit.training import build_model, grid_search, load_config, load_grid, train  # noqa: E402

CONFIGS = HERE.parent / "configs"


def accuracy(model, X, y):
    return float(np.mean(np.argmax(model.loss(X), axis=1) == y))


def run(data, seed):
    dims = (data["X_train"].shape[1], len(data["class_names"]))
    out = {}
    for prefix, name in (("softmax", "softmax.yaml"), ("two_layer", "default.yaml")):
        config = load_config(CONFIGS / name).replace(seed=seed)
        model = build_model(config, *dims)
        train(model, data, config, verbose=False)
        out[f"{prefix}_val"] = accuracy(model, data["X_val"], data["y_val"])
        out[f"{prefix}_test"] = accuracy(model, data["X_test"], data["y_test"])
    base = load_config(CONFIGS / "default.yaml").replace(seed=seed)
    best = grid_search(data, base, load_grid(CONFIGS / "grid.yaml"), verbose=False).best_model
    out["best_val"] = accuracy(best, data["X_val"], data["y_val"])
    out["best_test"] = accuracy(best, data["X_test"], data["y_test"])
    return out


def main():
    name = data_utils.dataset_name()
    rows = []
    for seed in range(5):
        start = time.perf_counter()
        rows.append(run(data_utils.load_flat_dataset(name, seed=seed), seed))
        print(f"seed {seed} ({time.perf_counter() - start:.1f} s): "
              + ", ".join(f"{k} {v:.3f}" for k, v in rows[-1].items()))
    print(f"\n{name}: min / mean over seeds 0..4")
    for key in rows[0]:
        values = [r[key] for r in rows]
        print(f"  {key:15s} {min(values):.3f} / {np.mean(values):.3f}")


if __name__ == "__main__":
    main()
