"""Measure the reference's accuracies over 5 seeds: the basis of [thresholds.<dataset>].

Runs what 03's training cell runs (a ConvNet with LeNet-5's defaults, Adam at 1e-3, minibatches
of 25, 4 epochs) with the reference nnkit, for seeds 0..4: seed s draws the initial weights
(``ConvNet(seed=s)``) and the minibatches (``Solver(seed=s)``); the splits are data_utils's fixed
ones. Prints the validation and test accuracy of every seed, with the minimum and the mean:

    OPENBLAS_NUM_THREADS=1 NNKIT_DATASET=embedded .venv/bin/python source/generalization/authoring/measure_thresholds.py

Keep it equal to 03_cnn's train_cnn cell.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # source/, where the reference nnkit is

from nnkit import data_utils  # noqa: E402
from nnkit.analysis import load_digits, loss_and_accuracy  # noqa: E402
from nnkit.classifiers.cnn import ConvNet  # noqa: E402
from nnkit.solver import Solver  # noqa: E402


def run(data, seed):
    cnn = ConvNet(input_dim=data["X_train"].shape[1:], seed=seed)
    solver = Solver(cnn, data, update_rule="adam", optim_config={"learning_rate": 1e-3}, batch_size=25,
                    num_epochs=4, seed=seed, verbose=False, progress=False)
    solver.train()
    return {f"cnn_{s}": loss_and_accuracy(cnn, data[f"X_{s}"], data[f"y_{s}"])[1] for s in ("val", "test")}


def main():
    name = data_utils.dataset_name()
    data = load_digits(name)
    rows = []
    for seed in range(5):
        start = time.perf_counter()
        rows.append(run(data, seed))
        print(f"seed {seed} ({time.perf_counter() - start:.1f} s): " + ", ".join(f"{k} {v:.3f}" for k, v in rows[-1].items()))
    print(f"\n{name}: min / mean over seeds 0..4")
    for key in rows[0]:
        values = [r[key] for r in rows]
        print(f"  {key}: {min(values):.3f} / {sum(values) / len(values):.3f}")


if __name__ == "__main__":
    main()
