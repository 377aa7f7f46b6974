"""Speed of nnkit's fast convolution against its GEMM bound and against the naive loops, in one run.

Run from the repository root::

    .venv/bin/python bench/bench_conv.py [--quick] [--batch 128] [--reps 7] [--dtype float64]

The workload is LeNet-5's two convolutions on a minibatch of MNIST shapes (the 28 x 28 digits
padded to 1 x 32 x 32, as LeNet-5 and ``analysis.load_digits`` have them): conv 6 x 1 x 5 x 5 on
32 x 32 (output 28 x 28), then, after the 2 x 2 pool, conv 16 x 6 x 5 x 5 on 14 x 14 (output
10 x 10). For each, and for both together, it prints:

- ``fast``: ``conv_forward_fast`` + ``conv_backward_fast`` (im2col, the products, col2im);
- ``GEMM``: the bound, the three matrix products a convolution by im2col cannot avoid, timed
  alone on the very matrices the fast layer makes (``cols``, K x M with K = C * HH * WW and
  M = N * H_out * W_out; the filters w, F x K; the upstream gradient d, F x M): the forward
  ``w @ cols``, then ``d @ cols.T`` (dw) and ``w.T @ d`` (the windows' gradient), each one
  product of the whole matrices at the rate BLAS reaches on them in this run;
- ``naive``: the loops of ``conv_forward_naive`` + ``conv_backward_naive``, measured on a few
  images (they are linear in N) and scaled to the batch; the fast layers are checked equal to
  them on those images first.

The target is ``fast / GEMM`` within 2x. One BLAS thread; times are this process's CPU time
(``--clock cpu``, the default: with one thread the compute time, not the time other processes
hold the core), the median of ``--reps``. Nothing here is asserted: speed is reported, never tested.
"""
import os
from readme_rows import row

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy is imported

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "source"))

from nnkit.conv_layers import (conv_backward_fast, conv_backward_naive, conv_forward_fast,  # noqa: E402
                               conv_forward_naive, max_pool_backward_fast, max_pool_forward_fast)

clock = time.process_time  # set by --clock

#: LeNet-5's convolutions on 1 x 32 x 32 digits: (C, H, F, k), stride 1, no padding.
LENET = (("conv1 6x1x5x5 on 1x32x32", 1, 32, 6, 5), ("conv2 16x6x5x5 on 6x14x14", 6, 14, 16, 5))


def median_time(fn, reps):
    samples = []
    for _ in range(reps):
        t0 = clock()
        fn()
        samples.append(clock() - t0)
    return statistics.median(samples)


def measure(name, N, C, H, F, k, dtype, reps, naive_images, rng):
    """The times of one convolution: fast forward + backward, its GEMM bound, the naive loops (scaled)."""
    x = rng.standard_normal((N, C, H, H)).astype(dtype)
    w = (rng.standard_normal((F, C, k, k)) / np.sqrt(C * k * k)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    conv_param = {"stride": 1, "pad": 0}
    out, cache = conv_forward_fast(x, w, b, conv_param)
    dout = rng.standard_normal(out.shape).astype(dtype)

    forward = median_time(lambda: conv_forward_fast(x, w, b, conv_param), reps)
    backward = median_time(lambda: conv_backward_fast(dout, cache), reps)

    cols = cache[4]  # (K, M): the im2col matrix the layer made
    w_mat = w.reshape(F, -1)  # (F, K)
    d = np.ascontiguousarray(dout.reshape(N, F, -1).transpose(1, 0, 2)).reshape(F, -1)  # (F, M), as the layer has it
    gemm = {"w @ cols": median_time(lambda: w_mat @ cols, reps),
            "d @ cols.T": median_time(lambda: d @ cols.T, reps),
            "w.T @ d": median_time(lambda: w_mat.T @ d, reps)}

    n = min(naive_images, N)
    xs, douts = x[:n].astype(np.float64), dout[:n].astype(np.float64)
    t0 = clock()
    out_naive, cache_naive = conv_forward_naive(xs, w.astype(np.float64), b.astype(np.float64), conv_param)
    grads_naive = conv_backward_naive(douts, cache_naive)
    naive = (clock() - t0) * N / n
    out_fast, cache_fast = conv_forward_fast(xs, w.astype(np.float64), b.astype(np.float64), conv_param)
    grads_fast = conv_backward_fast(douts, cache_fast)
    err = max(float(np.max(np.abs(a - c))) for a, c in zip((out_fast, *grads_fast), (out_naive, *grads_naive)))
    K, M = cols.shape
    return {"name": name, "forward": forward, "backward": backward, "fast": forward + backward,
            "gemm": sum(gemm.values()), "gemm_parts": gemm, "naive": naive, "naive_images": n,
            "max_abs_diff": err, "flops": 2 * 3 * F * K * M, "K": K, "M": M, "F": F}


def main(argv=None):
    global clock
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a smoke run: batch 32, 3 reps, naive on 2 images")
    ap.add_argument("--batch", type=int, default=128, help="images per minibatch (default 128)")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--naive-images", type=int, default=8, help="images the naive loops are timed on (default 8)")
    ap.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                    help="of the arrays (ConvNet's default is float64)")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    args = ap.parse_args(argv)
    if args.clock == "wall":
        clock = time.perf_counter
    N, reps, naive_images = args.batch, args.reps, args.naive_images
    if args.quick:
        N, reps, naive_images = 32, 3, 2
    dtype = np.dtype(args.dtype)
    rng = np.random.default_rng(0)
    print(f"LeNet-5 convolutions, batch {N}, {dtype}, one BLAS thread, {args.clock} time, median of {reps}")
    rows = [measure(name, N, C, H, F, k, dtype, reps, naive_images, rng) for name, C, H, F, k in LENET]
    for r in rows:
        parts = ", ".join(f"{k} {v * 1e3:.2f}" for k, v in r["gemm_parts"].items())
        print(f"\n{r['name']}: K = {r['K']}, M = {r['M']}, F = {r['F']} ({r['flops'] / 1e6:.0f} MFLOP in the products)")
        print(f"  fast   {r['fast'] * 1e3:8.2f} ms  (forward {r['forward'] * 1e3:.2f}, backward {r['backward'] * 1e3:.2f})")
        print(f"  GEMM   {r['gemm'] * 1e3:8.2f} ms  ({parts}; {r['flops'] / r['gemm'] / 1e9:.1f} GFLOP/s)")
        print(f"  naive  {r['naive'] * 1e3:8.0f} ms  (measured on {r['naive_images']} images, scaled; fast equal to "
              f"it within {r['max_abs_diff']:.1e})")
        print(f"  fast / GEMM = {r['fast'] / r['gemm']:.2f}x    naive / fast = {r['naive'] / r['fast']:.0f}x")
    fast, gemm, naive = (sum(r[k] for r in rows) for k in ("fast", "gemm", "naive"))
    print(f"\nboth convolutions: fast {fast * 1e3:.2f} ms, GEMM bound {gemm * 1e3:.2f} ms, naive {naive:.2f} s")
    print(f"  fast / GEMM = {fast / gemm:.2f}x (target <= 2x)    naive / fast = {naive / fast:.0f}x")
    row(f"LeNet-5 convolutions, forward + backward, batch {N}, {dtype}", f"{fast * 1e3:.1f} ms",
        f"{fast / gemm:.2f}x the GEMM bound of its im2col products; the naive loops are {naive / fast:.0f}x slower")

    # For context: the 2 x 2 max pools between them (not part of the bound).
    x = rng.standard_normal((N, 6, 28, 28)).astype(dtype)
    pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    out, cache = max_pool_forward_fast(x, pool_param)
    dp = np.ones_like(out)
    pool = median_time(lambda: max_pool_forward_fast(x, pool_param), reps) + \
        median_time(lambda: max_pool_backward_fast(dp, cache), reps)
    print(f"(the first 2x2 max pool, forward + backward: {pool * 1e3:.2f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
