"""HOG + hue features: the per-image loop against the batched path of extract_features.

    python bench/bench_features.py              # 51,000 synthetic 32x32x3 images (CIFAR train+val+test)
    python bench/bench_features.py --n 5000     # quicker
    python bench/bench_features.py --loop-n 5000  # time the slow loop on 5000 and scale it up
    python bench/bench_features.py --quick      # smoke run (make bench --quick)

Single BLAS thread (set before numpy loads). Prints seconds, the speedup and the
largest absolute difference between the two paths (they must agree to ~1e-13).
If scipy is installed, the CS231n starter's own per-image HOG (with its
uniform_filter) is timed on the same images as a second reference.
"""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "source"))
from nnkit.features import color_histogram_hsv, extract_features, hog_feature  # noqa: E402


def starter_hog(im):
    """The CS231n starter's hog_feature (scipy uniform_filter), gray weights corrected."""
    from scipy.ndimage import uniform_filter
    image = np.dot(im[..., :3], [0.299, 0.587, 0.114])
    sx, sy = image.shape
    gx = np.zeros(image.shape)
    gy = np.zeros(image.shape)
    gx[:, :-1] = np.diff(image, n=1, axis=1)
    gy[:-1, :] = np.diff(image, n=1, axis=0)
    grad_mag = np.sqrt(gx ** 2 + gy ** 2)
    grad_ori = np.arctan2(gy, (gx + 1e-15)) * (180 / np.pi) + 90
    hist = np.zeros((sx // 8, sy // 8, 9))
    for i in range(9):
        t = np.where(grad_ori < 180 / 9 * (i + 1), grad_ori, 0)
        t = np.where(grad_ori >= 180 / 9 * i, t, 0)
        m = np.where(t > 0, grad_mag, 0)
        hist[:, :, i] = uniform_filter(m, size=(8, 8))[4::8, 4::8].T
    return hist.ravel()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=51000, help="images (default 51000)")
    ap.add_argument("--loop-n", type=int, default=None,
                    help="images for the per-image loop, scaled up to --n (default: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    ap.add_argument("--quick", action="store_true", help="smoke run: --n 5000 --loop-n 1000")
    args = ap.parse_args()
    if args.quick:
        args.n, args.loop_n, args.rounds = min(args.n, 5000), 1000, 1
    n = args.n
    loop_n = min(args.loop_n or n, n)
    rng = np.random.default_rng(args.seed)
    # Integer pixel values stored as float64, as load_dataset(subtract_mean=False) returns them.
    imgs = rng.integers(0, 256, (n, 32, 32, 3)).astype(np.float64)
    fns = [hog_feature, color_histogram_hsv]
    extract_features(imgs[:200], fns)                      # warm-up (imports, probes)
    extract_features(imgs[:20], fns, batched=False)

    # Interleaved rounds: this VM's speed drifts, so only ratios from one round are fair.
    t_loops, t_batches, diff = [], [], 0.0
    for _ in range(args.rounds):
        t = time.perf_counter()
        loop = extract_features(imgs[:loop_n], fns, batched=False)
        t_loops.append((time.perf_counter() - t) * n / loop_n)
        t = time.perf_counter()
        batched = extract_features(imgs, fns)
        t_batches.append(time.perf_counter() - t)
        diff = max(diff, np.abs(batched[:loop_n] - loop).max())
    ratios = [a / b for a, b in zip(t_loops, t_batches)]
    t_loop, t_batch = min(t_loops), min(t_batches)

    print(f"images: {n} x 32x32x3, OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}, "
          f"features {batched.shape[1]}, best of {args.rounds} interleaved rounds")
    scaled = "" if loop_n == n else f"  (timed on {loop_n}, scaled to {n})"
    print(f"per-image loop : {t_loop:8.2f} s  ({1e6 * t_loop / n:6.1f} us/image){scaled}")
    print(f"batched        : {t_batch:8.2f} s  ({1e6 * t_batch / n:6.1f} us/image)")
    print(f"speedup        : {t_loop / t_batch:8.2f} x   (target >= 8 x); per round: "
          + ", ".join(f"{r:.1f}" for r in ratios))
    print(f"max |batched - loop| = {diff:.3g}  (must be <= 1e-12)")
    try:
        import scipy  # noqa: F401
    except ImportError:
        return
    m = min(loop_n, 2000)
    t = time.perf_counter()
    ref = np.array([np.concatenate([starter_hog(im), color_histogram_hsv(im)]) for im in imgs[:m]])
    t_start = (time.perf_counter() - t) * n / m
    print(f"CS231n starter loop (scipy), scaled from {m}: {t_start:8.2f} s -> batched is "
          f"{t_start / t_batch:.2f} x faster; max |diff| = {np.abs(ref - batched[:m]).max():.3g}")


if __name__ == "__main__":
    main()
