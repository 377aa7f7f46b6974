"""Measure the reference's accuracies over 5 seeds: the basis of [thresholds.<dataset>].

Runs what the notebooks' training cells run, with the reference nnkit, for seeds 0..4 (seed s is
the initial weights' and the batches' seed of every net, and the search's): notebook 02's one
cycle on the first batch (``models/cyclical_net.npz``: test accuracy), notebook 03's coarse and
fine search and the final net (``models/final_net.npz``: validation and test accuracy). Every
net is evaluated as the grader does: saved with the standardisation folded in, on the images as
``load_dataset`` gives them. Prints each accuracy with the minimum and the mean over the seeds:

    OPENBLAS_NUM_THREADS=1 NNKIT_DATASET=embedded .venv/bin/python source/cyclical_lr/authoring/measure_thresholds.py

Keep it equal to the notebooks: 02 train_one_cycle, 03 load_data, coarse, fine, final.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # source/, where the reference nnkit is

from nnkit import cyclical as cy  # noqa: E402
from nnkit import data_utils  # noqa: E402
from nnkit.classifiers.kth_net import KTHNet, load_model, save_model  # noqa: E402
from nnkit.optim import cyclical_lr  # noqa: E402


def standardised(stage, name):
    raw = cy.load_splits(stage, name)
    mean, std = cy.normalization(raw["X_train"])
    return raw, {k: (cy.normalize(v, mean, std) if k.startswith("X_") else v) for k, v in raw.items()}, mean, std


def accuracy(path, X, y):
    _, P = load_model(path).forward(X)
    return float(np.mean(np.argmax(P, axis=1) == y))


def run(name, seed, folder):
    out = {}
    # 02: one cycle on one batch, n_s = 5 epochs, lam = 0.01, 10 records per cycle.
    raw, data, mean, std = standardised("batch", name)
    N, D = data["X_train"].shape
    C = len(raw["class_names"])
    n_s = 5 * N // 100
    net = KTHNet(D, 50, C, lam=0.01, seed=seed)
    cy.minibatch_gd(net, data, lambda t: cyclical_lr(t, 1e-5, 1e-1, n_s), 2 * n_s, batch_size=100,
                    record_every=n_s // 5, seed=seed)
    save_model(net, folder / "cyclical_net.npz", mean, std)
    out["cyclical_test"] = accuracy(folder / "cyclical_net.npz", raw["X_test"], raw["y_test"])
    # 03: coarse and fine search (2 cycles, n_s = 2 epochs), then 3 cycles with the best lam.
    raw, data, mean, std = standardised("all", name)
    N = len(data["X_train"])
    n_values = 8 if name != "embedded" else 4
    n_s = 2 * (N // 100)
    coarse = cy.search_lambda(data, -5, -1, n_values, n_s=n_s, cycles=2, seed=seed, progress=False)
    results = cy.search_lambda(data, *cy.fine_range(coarse), n_values, n_s=n_s, cycles=2, seed=seed,
                               previous=coarse, progress=False)
    lam = results.best()["params"]["lam"]
    net = KTHNet(D, 50, C, lam=lam, seed=seed)
    cy.minibatch_gd(net, data, lambda t: cyclical_lr(t, 1e-5, 1e-1, n_s), 6 * n_s, batch_size=100,
                    record_every=n_s // 5, seed=seed)
    save_model(net, folder / "final_net.npz", mean, std)
    out["final_val"] = accuracy(folder / "final_net.npz", raw["X_val"], raw["y_val"])
    out["final_test"] = accuracy(folder / "final_net.npz", raw["X_test"], raw["y_test"])
    out["best_lam"] = lam
    return out


def main():
    name = data_utils.dataset_name()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(5):
            start = time.perf_counter()
            rows.append(run(name, seed, Path(tmp)))
            print(f"seed {seed} ({time.perf_counter() - start:.1f} s): "
                  + ", ".join(f"{k} {v:.3g}" for k, v in rows[-1].items()))
    print(f"\n{name}: min / mean over seeds 0..4")
    for key in rows[0]:
        if key == "best_lam":
            continue
        values = [r[key] for r in rows]
        print(f"  {key}: {min(values):.3f} / {np.mean(values):.3f}")


if __name__ == "__main__":
    main()
