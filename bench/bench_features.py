"""HOG + hue features: the per-image loop against the batched path of extract_features.

    python bench/bench_features.py              # 51,000 synthetic 32x32x3 images (CIFAR train+val+test)
    python bench/bench_features.py --n 5000     # quicker
    python bench/bench_features.py --loop-n 51000  # the slow loops on every image (default 5000, scaled)
    python bench/bench_features.py --quick      # smoke run (make bench --quick)

Single BLAS thread (set before numpy loads); times are this process's CPU time
(``--clock cpu``, the default: with one thread it is the compute time and does not
count the time other processes hold the core) or elapsed time (``--clock wall``).
Rounds are interleaved, each timing every variant once; the ratios are taken
within a round, their median is reported.

Variants, all on the same integer-valued float64 images (as
``load_dataset(subtract_mean=False)`` returns them):

- per-image loop: ``extract_features(imgs, [hog_feature, color_histogram_hsv],
  batched=False)``, the package's own definitions called image by image (the bound
  this bench is about: target >= 8x, moonshot 15x);
- batched: the same call with batching (the default);
- the CS231n notebook call ``[hog_feature, lambda img: color_histogram_hsv(img, nbin=10)]``:
  must be as fast as the batched call;
- if scipy is installed, the CS231n starter's own per-image HOG (with its
  uniform_filter) plus our per-image hue histogram, as a second reference.

Also prints the largest absolute difference between the batched features and
the per-image ones (must be <= 1e-12), and the time per image of each step of
the batched path (one 64-image block), to show where the time goes.
"""
import os
from readme_rows import row

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy is imported

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "source"))
from nnkit import features as ft  # noqa: E402
from nnkit.features import color_histogram_hsv, extract_features, hog_feature  # noqa: E402

clock = time.process_time  # set by --clock


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


def timed(fn):
    t = clock()
    out = fn()
    return clock() - t, out


def step_times(imgs, reps=20):
    """Seconds per image of each step of the batched path, on one block of images."""
    n, H, W = imgs.shape[:3]
    block = imgs[:ft._BLOCK]
    n = len(block)
    work = np.empty((4, n, H, W))
    gray, gx, gy, mag = work
    method = ft._gray_method((H, W))
    hue_work = np.empty((7, n, H, W))
    hue = ft._hue_of_block(block, 255, np.dtype(np.float64), hue_work).copy() * 255
    cuts = np.linspace(0, 255, 11)[1:10]

    def hog_rest():
        ft._gray_batch(block, gray, mag, method)
        ft._hog_of_gray(gray, gx, gy, mag)

    gray_name, hog_name = f"gray ({method})", "HOG after the gray (gradients, bins, bincount)"
    steps = {
        gray_name: lambda: ft._gray_batch(block, gray, mag, method),
        hog_name: hog_rest,  # gray included: subtracted below
        "hue (rgb_to_hsv's hue channel)": lambda: ft._hue_of_block(block, 255, np.dtype(np.float64),
                                                                    hue_work),
        "hue histogram counts": lambda: ft._count_at_least(hue.reshape(n, -1), cuts),
    }
    best = {}
    for _ in range(reps):
        for name, fn in steps.items():
            best[name] = min(best.get(name, 1e9), timed(fn)[0])
    best[hog_name] -= best[gray_name]
    return {k: v / n for k, v in best.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=51000, help="images (default 51000)")
    ap.add_argument("--loop-n", type=int, default=5000,
                    help="images for the per-image loops, scaled up to --n (default 5000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                    help="cpu: this process's CPU time (default); wall: elapsed")
    ap.add_argument("--quick", action="store_true", help="smoke run: --n 5000 --loop-n 1000, 1 round")
    args = ap.parse_args()
    global clock
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    if args.quick:
        args.n, args.loop_n, args.rounds = min(args.n, 5000), 1000, 1
    n = args.n
    loop_n = min(args.loop_n or n, n)
    rng = np.random.default_rng(args.seed)
    # Integer pixel values stored as float64, as load_dataset(subtract_mean=False) returns them.
    imgs = rng.integers(0, 256, (n, 32, 32, 3)).astype(np.float64)
    fns = [hog_feature, color_histogram_hsv]
    cs231n_fns = [hog_feature, lambda img: color_histogram_hsv(img, nbin=10)]
    extract_features(imgs[:200], fns)                      # warm-up (imports, probes)
    extract_features(imgs[:20], fns, batched=False)
    starter = importlib.util.find_spec("scipy") is not None
    starter_n = min(loop_n, 2000)

    # Interleaved rounds: this VM's speed drifts, so only ratios from one round are fair.
    rounds, diff, diff_starter = [], 0.0, 0.0
    for _ in range(args.rounds):
        r = {}
        r["loop"], loop = timed(lambda: extract_features(imgs[:loop_n], fns, batched=False))
        r["loop"] *= n / loop_n
        r["batched"], batched = timed(lambda: extract_features(imgs, fns))
        r["cs231n call"], called = timed(lambda: extract_features(imgs, cs231n_fns))
        diff = max(diff, np.abs(batched[:loop_n] - loop).max(), np.abs(called - batched).max())
        if starter:
            r["starter"], ref = timed(lambda: np.array(
                [np.concatenate([starter_hog(im), color_histogram_hsv(im)]) for im in imgs[:starter_n]]))
            r["starter"] *= n / starter_n
            diff_starter = max(diff_starter, np.abs(ref - batched[:starter_n]).max())
        rounds.append(r)

    def best(key):
        return min(r[key] for r in rounds)

    def ratio(num, den):
        per_round = [r[num] / r[den] for r in rounds]
        return statistics.median(per_round), per_round

    print(f"images: {n} x 32x32x3 float64 (integer values), OPENBLAS_NUM_THREADS="
          f"{os.environ['OPENBLAS_NUM_THREADS']}, clock: {'process CPU' if args.clock == 'cpu' else 'wall'}, "
          f"features {batched.shape[1]}, {args.rounds} interleaved rounds (times: best round), "
          f"load average {os.getloadavg()[0]:.1f}")
    scaled = "" if loop_n == n else f"  (timed on {loop_n}, scaled to {n})"
    print(f"per-image loop      : {best('loop'):8.2f} s  ({1e6 * best('loop') / n:6.1f} us/image){scaled}")
    print(f"batched             : {best('batched'):8.2f} s  ({1e6 * best('batched') / n:6.1f} us/image)")
    t_call = best("cs231n call")
    print(f"CS231n call (lambda): {t_call:8.2f} s  ({1e6 * t_call / n:6.1f} us/image)")
    med, per = ratio("loop", "batched")
    print(f"speedup over the per-image loop: {med:6.2f} x  (target >= 8 x, moonshot 15 x); per round: "
          + ", ".join(f"{x:.1f}" for x in per))
    med, per = ratio("loop", "cs231n call")
    print(f"  with the CS231n lambda call  : {med:6.2f} x; per round: " + ", ".join(f"{x:.1f}" for x in per))
    med, per = ratio("cs231n call", "batched")
    print(f"  lambda call / batched call   : {med:6.2f}   (must be ~1)")
    print(f"max |batched - per-image| = {diff:.3g}  (must be <= 1e-12)")
    lam, _ = ratio("loop", "cs231n call")
    row(f"HOG + hue features, {n} images", f"{best('batched'):.2f} s",
        f"{ratio('loop', 'batched')[0]:.1f}x our per-image loop ({lam:.1f}x called the CS231n way, with a lambda); "
        f"equal to {diff:.0e}")
    if starter:
        med, per = ratio("starter", "batched")
        print(f"CS231n starter loop (scipy), scaled from {starter_n}: {best('starter'):8.2f} s -> batched is "
              f"{med:.2f} x faster; max |diff| = {diff_starter:.3g}")

    steps = step_times(imgs)
    total = sum(steps.values())
    print(f"\nwhere the batched time goes (one {ft._BLOCK}-image block, best of 20, us/image; "
          f"the rest of the batched time is the loop's own overhead):")
    for name, t in steps.items():
        print(f"  {name:<48} {1e6 * t:6.2f}  ({100 * t / total:4.1f}%)")
    print(f"  {'sum':<48} {1e6 * total:6.2f}   vs {1e6 * best('batched') / n:6.2f} us/image batched")


if __name__ == "__main__":
    main()
