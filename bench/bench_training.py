"""Training and gradient-check speed of the reference nnkit, against BLAS bounds measured in the same run.

Run from the repository root::

    .venv/bin/python bench/bench_training.py [--quick] [--reps 3]

Prints, side by side, each workload's time and the time of the matrix
products it cannot avoid, measured in this process (absolute speed on a shared
VM drifts by up to 1.5x over an hour, so only same-run ratios mean anything):

1. one epoch of ``TwoLayerNet(3072, 100, 10)``, batch 200, float64, SGD, driven
   by ``nnkit.solver.Solver`` when it imports (else a plain loop of X[idx]
   gathers, ``loss`` and ``optim.sgd``, and says so), against the GEMM time of
   that epoch's own products: the per-step forward and backward products (no
   dX for the input layer) and the forward products of the Solver's accuracy
   checks, each shape timed alone, median;
2. one epoch of ``FullyConnectedNet([100] * 5)`` + Adam, 4000 samples, batch
   100, float32 (the default dtype), against its GEMM time likewise;
3. ``grad_check_sparse`` on 200 entries of the 3072 x 100 ``W1`` of a
   ``TwoLayerNet`` at N = 50, against 400 forward-only loss evaluations, with
   ``f = model.loss(X, y)[0]`` (the backward pass on every call) and with the
   loss-only path ``f = model.loss(X, y, grads=False)`` (target <= 1.5x).

One BLAS thread: on this 2-core box a second OpenBLAS thread gains nothing
below 128 rows and collapses whenever another process is busy. For the same
reason times are this process's CPU time by default (``--clock cpu``): with one
thread it is the compute time, and it does not count the time other processes
hold the core. ``--clock wall`` measures elapsed time instead.
"""
import os
from readme_rows import row

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy is imported

import argparse  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "source"))

from nnkit import optim  # noqa: E402
from nnkit.classifiers.fc_net import FullyConnectedNet, TwoLayerNet  # noqa: E402
from nnkit.gradient_check import grad_check_sparse  # noqa: E402

try:
    from nnkit.solver import Solver
except Exception as exc:  # the Solver is another module; the bench works without it
    Solver, SOLVER_ERROR = None, f"{type(exc).__name__}: {exc}"
else:
    SOLVER_ERROR = None


# ---------------------------------------------------------------- timing helpers
clock = time.process_time  # set by --clock


def median_time(fn, reps, inner=1):
    """Median over `reps` of the mean time of `inner` calls."""
    samples = []
    for _ in range(reps):
        t0 = clock()
        for _ in range(inner):
            fn()
        samples.append((clock() - t0) / inner)
    return statistics.median(samples)


def gemm_time(m, k, n, dtype, transposed_a=False, transposed_b=False, reps=7):
    """Median time of one (m, k) @ (k, n) product laid out as the models call it.

    transposed_a: A is the transpose of a C-ordered (k, m) array (``x.T @ d``);
    transposed_b: B is the transpose of a C-ordered (n, k) array (``d @ W.T``).
    """
    rng = np.random.default_rng(0)
    A = rng.standard_normal((k, m)).astype(dtype).T if transposed_a else rng.standard_normal((m, k)).astype(dtype)
    B = rng.standard_normal((n, k)).astype(dtype).T if transposed_b else rng.standard_normal((k, n)).astype(dtype)
    flops = 2.0 * m * k * n
    inner = max(1, int(2e8 / flops))  # about 0.005 s per sample at 40 GFLOP/s
    for _ in range(inner):
        A @ B  # warm-up
    return median_time(lambda: A @ B, reps, inner)


def minflt():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


class CountingMixin:
    """Counts loss calls by (batch size, with labels) to know the epoch's GEMMs."""

    def loss(self, X, y=None, **kw):
        self.calls[(X.shape[0], y is not None)] += 1
        return super().loss(X, y, **kw)


class CountingTwoLayerNet(CountingMixin, TwoLayerNet):
    calls = Counter()


class CountingFCNet(CountingMixin, FullyConnectedNet):
    calls = Counter()


# ---------------------------------------------------------------- the GEMMs of each model
def two_layer_gemms(n, D, H, C, train):
    """(m, k, n, transposed_a, transposed_b) of one TwoLayerNet.loss call with batch n."""
    shapes = [(n, D, H, False, False), (n, H, C, False, False)]  # x @ W1, hidden @ W2
    if train:
        shapes += [(H, n, C, True, False),  # dW2 = hidden.T @ dscores
                   (n, C, H, False, True),  # dhidden = dscores @ W2.T
                   (D, n, H, True, False)]  # dW1 = x.T @ dhidden (no dX)
    return shapes


def fcnet_gemms(n, sizes, train):
    """The products of one FullyConnectedNet.loss call with batch n; sizes = [D, H1, ..., C]."""
    shapes = [(n, a, b, False, False) for a, b in zip(sizes[:-1], sizes[1:])]
    if train:
        for i in range(len(sizes) - 1, 0, -1):
            a, b = sizes[i - 1], sizes[i]
            shapes.append((a, n, b, True, False))  # dW = inputs.T @ d
            if i > 1:
                shapes.append((n, b, a, False, True))  # d @ W.T (none for the input layer)
    return shapes


def bound_seconds(calls, gemms_of, dtype, cache):
    """Sum over the counted loss calls of the median GEMM time of their products."""
    total = 0.0
    for (n, train), count in calls.items():
        for m, k, nn, ta, tb in gemms_of(n, train):
            key = (m, k, nn, ta, tb, np.dtype(dtype).name)
            if key not in cache:
                cache[key] = gemm_time(m, k, nn, dtype, ta, tb)
            total += count * cache[key]
    return total


# ---------------------------------------------------------------- workloads
def make_data(n_train, n_val, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "X_train": rng.standard_normal((n_train, 3, 32, 32)),
        "y_train": rng.integers(0, 10, n_train),
        "X_val": rng.standard_normal((n_val, 3, 32, 32)),
        "y_val": rng.integers(0, 10, n_val),
    }


def make_solver(model, data, **kw):
    kw.update(print_every=10**9, verbose=False)
    try:
        return Solver(model, data, progress=False, **kw)
    except ValueError:  # a Solver without the progress option
        return Solver(model, data, **kw)


def plain_epoch(model, data, batch_size, update, optim_config):
    """Solver semantics without the Solver: random batches with replacement, 1 epoch."""
    X, y = data["X_train"], data["y_train"]
    configs = {p: dict(optim_config) for p in model.params}
    for _ in range(max(X.shape[0] // batch_size, 1)):
        idx = np.random.randint(0, X.shape[0], batch_size)
        _, grads = model.loss(X[idx], y[idx])
        for p, w in model.params.items():
            model.params[p], configs[p] = update(w, grads[p], configs[p])


def run_epochs(make_model, data, batch_size, rule, optim_config, reps, use_solver):
    """Median epoch time and page faults per iteration; the first (counting) run warms up."""
    times, faults = [], []
    iters = max(data["X_train"].shape[0] // batch_size, 1)
    for rep in range(reps + 1):
        np.random.seed(rep)
        model = make_model(counting=rep == 0)
        if use_solver:
            solver = make_solver(model, data, update_rule=rule, optim_config=dict(optim_config),
                                 lr_decay=0.95, num_epochs=1, batch_size=batch_size)
            run = solver.train
        else:
            def run():
                plain_epoch(model, data, batch_size, getattr(optim, rule), optim_config)
        f0, t0 = minflt(), clock()
        run()
        t, f = clock() - t0, minflt() - f0
        if rep:
            times.append(t)
            faults.append(f / iters)
    return statistics.median(times), statistics.median(faults)


def bench_two_layer(args, gemm_cache):
    n_train = 4900 if args.quick else 49000
    data = make_data(n_train, 1000)
    D, H, C, bs = 3072, 100, 10, 200
    CountingTwoLayerNet.calls = Counter()

    def make_model(counting):
        cls = CountingTwoLayerNet if counting else TwoLayerNet
        return cls(input_dim=D, hidden_dim=H, num_classes=C, weight_scale=1e-3, reg=0.0)

    rows = []
    drivers = ([True] if Solver is not None else []) + [False]
    for use_solver in drivers:
        CountingTwoLayerNet.calls = Counter()
        t, faults = run_epochs(make_model, data, bs, "sgd", {"learning_rate": 1e-3}, args.reps, use_solver)
        bound = bound_seconds(CountingTwoLayerNet.calls, lambda n, tr: two_layer_gemms(n, D, H, C, tr),
                              np.float64, gemm_cache)
        label = "Solver" if use_solver else "plain loop (X[idx], loss, optim.sgd)"
        rows.append((f"TwoLayerNet epoch, {n_train} x 3072 f64, bs {bs}, sgd: {label}", t, bound,
                     f"{faults:.0f} minor faults/iter"))
    return rows


def bench_fcnet(args, gemm_cache):
    n_train, bs, dims = 4000, 100, [100] * 5
    data = make_data(n_train, 1000, seed=1)
    sizes = [3072, *dims, 10]

    def make_model(counting):
        cls = CountingFCNet if counting else FullyConnectedNet
        return cls(dims, input_dim=3072, num_classes=10, weight_scale=5e-2)  # float32 default

    rows = []
    drivers = ([True] if Solver is not None else []) + [False]
    for use_solver in drivers:
        CountingFCNet.calls = Counter()
        t, faults = run_epochs(make_model, data, bs, "adam", {"learning_rate": 1e-3}, args.reps, use_solver)
        bound = bound_seconds(CountingFCNet.calls, lambda n, tr: fcnet_gemms(n, sizes, tr),
                              np.float32, gemm_cache)
        label = "Solver" if use_solver else "plain loop (X[idx], loss, optim.adam)"
        rows.append((f"FullyConnectedNet [100]x5 epoch, {n_train} f32, bs {bs}, adam: {label}", t, bound,
                     f"{faults:.0f} minor faults/iter"))
    return rows


def bench_grad_check(args):
    n, D, H, C, k = 50, 3072, 100, 10, 200
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((n, D)), rng.integers(0, C, n)
    np.random.seed(0)
    model = TwoLayerNet(input_dim=D, hidden_dim=H, num_classes=C, weight_scale=1e-3, reg=0.05)
    _, grads = model.loss(X, y)
    W1, W2 = model.params["W1"], model.params["W2"]
    rows_ = np.arange(n)

    def forward_only():  # the least a black-box check must compute per call
        s = np.maximum(X @ W1, 0) @ W2
        s -= s.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(s).sum(axis=1)) - s[rows_, y]))

    variants = {  # the function grad_check_sparse calls: with the backward pass, and without
        "f = model.loss(X, y)[0]": lambda _: model.loss(X, y)[0],
        "f = model.loss(X, y, grads=False)": lambda _: model.loss(X, y, grads=False),
    }
    assert abs(variants["f = model.loss(X, y, grads=False)"](W1) - model.loss(X, y)[0]) == 0
    reps = 3 if args.quick else 7
    for f in variants.values():
        for _ in range(5):
            f(W1)
    # Interleaved: every round times each variant and the bound once; medians over rounds.
    samples = {name: [] for name in variants}
    per_call, t_fwd, faults = {name: [] for name in variants}, [], {}
    for _ in range(reps):
        t_fwd.append(median_time(forward_only, 1, 40))
        for name, f in variants.items():
            samples[name].append(median_time(
                lambda: grad_check_sparse(f, W1, grads["W1"], num_checks=k, seed=1, verbose=False), 1))
            f0 = minflt()
            per_call[name].append(median_time(lambda: f(W1), 1, 40))
            faults[name] = (minflt() - f0) / 40
    t_fwd = statistics.median(t_fwd)
    # What a loss call's own products cost (forward and dW1), for the full call's note.
    t_gemm = sum(gemm_time(m, kk, nn, np.float64, ta, tb) for m, kk, nn, ta, tb in two_layer_gemms(n, D, H, C, True))
    rows = []
    for name in variants:
        t = statistics.median(samples[name])
        note = (f"bound = {2 * k} forward-only losses ({t_fwd * 1e3:.2f} ms each); {name} takes "
                f"{statistics.median(per_call[name]) * 1e3:.2f} ms, {faults[name]:.0f} minor faults/call")
        if "grads=False" not in name:
            note += f"; its own GEMMs {t_gemm * 1e3:.2f} ms -> x{t / (2 * k * t_gemm):.2f} of {2 * k} GEMM sets"
        rows.append((f"grad_check_sparse, {k} x W1 {D}x{H}, N={n}, reg 0.05: {name}", t, 2 * k * t_fwd, note))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the TwoLayerNet epoch; fewer repeats")
    parser.add_argument("--reps", type=int, default=None, help="timed epochs per driver (default 3, quick 1)")
    parser.add_argument("--only", choices=("all", "epochs", "gradcheck"), default="all",
                        help="run only the training epochs or only the gradient check")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                        help="cpu: this process's CPU time (default; robust when the box is busy); wall: elapsed")
    args = parser.parse_args()
    global clock
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    if args.reps is None:
        args.reps = 1 if args.quick else 3

    print(f"numpy {np.__version__}; OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}; "
          f"clock: {'process CPU time' if args.clock == 'cpu' else 'wall'}; load average {os.getloadavg()[0]:.1f}")
    if Solver is None:
        print(f"nnkit.solver did not import ({SOLVER_ERROR}): epochs use the plain loop only.")
    gemm_cache = {}
    rows = []
    if args.only in ("all", "epochs"):
        rows += bench_two_layer(args, gemm_cache) + bench_fcnet(args, gemm_cache)
    if args.only in ("all", "gradcheck"):
        rows += bench_grad_check(args)

    print()
    print(f"{'workload':<88} {'time s':>8} {'bound s':>8} {'ratio':>6}  note")
    for name, t, bound, note in rows:
        print(f"{name:<88} {t:8.3f} {bound:8.3f} {t / bound:6.2f}  {note}")
        row(name, f"{t:.2f} s", f"{t / bound:.2f}x its bound ({note})" if note else f"{t / bound:.2f}x its bound")
    print()
    print("bound: the workload's own matrix products (epochs: every loss call the run made,")
    print("including the Solver's accuracy checks; no dX for the input layer), each shape")
    print("timed alone in this run, median; grad check: 400 forward-only loss evaluations.")


if __name__ == "__main__":
    main()
