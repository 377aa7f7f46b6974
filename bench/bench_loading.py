"""Dataset loading: CIFAR-10 batches and MNIST CSV, cold and from nnkit's cache.

    python bench/bench_loading.py [--keep DIR] [--quick]

Writes full-size synthetic files in the real formats into a temporary folder
(CIFAR-10: five 10,000-image python-2 pickles + test_batch, 31 MB each; MNIST:
mnist_train.csv 60,000 rows and mnist_test.csv 10,000 rows of label + 784
pixels, ~19% ink like the real digits), then times, best of 3:

- load_CIFAR10(root): batches -> float64 (50000, 32, 32, 3)     target < 1 s
- the uint8 cache read (cache/cifar10.npz, CRC-checked)         target 0.1 s
- load_dataset("cifar10") from the cache, float64 channels-first, mean subtracted (info)
- load_mnist_csv(train)                                          target < 1.5 s
- the uint8 cache read (cache/mnist.npz)                         target 0.05 s

--quick writes 10,000 MNIST rows instead of 60,000 (its targets scaled) and times once.
"""
import os
from readme_rows import row

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import shutil  # noqa: E402
import struct  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "source"))
from nnkit import data_utils as du  # noqa: E402


def py2_cifar_batch_bytes(labels, data, batch_label=b"training batch"):
    """Protocol-2 pickle laid out like the real batches (py2 str keys and buffer,
    numpy.core.multiarray._reconstruct)."""
    out = bytearray(b"\x80\x02")

    def s(b):
        out.extend(b"U" + bytes([len(b)]) + b if len(b) < 256 else b"T" + struct.pack("<i", len(b)) + b)

    def k(i):
        out.extend(b"K" + bytes([i]) if 0 <= i < 256 else
                   b"M" + struct.pack("<H", i) if 0 <= i < 65536 else b"J" + struct.pack("<i", i))

    out.extend(b"}(")
    s(b"data")
    out.extend(b"cnumpy.core.multiarray\n_reconstruct\n")
    out.extend(b"cnumpy\nndarray\n"); k(0); out.extend(b"\x85"); s(b"b"); out.extend(b"\x87R")
    out.extend(b"("); k(1); k(data.shape[0]); k(data.shape[1]); out.extend(b"\x86")
    out.extend(b"cnumpy\ndtype\n"); s(b"u1"); k(0); k(1); out.extend(b"\x87R")
    out.extend(b"("); k(3); s(b"|"); out.extend(b"NNN"); out.extend(b"J" + struct.pack("<i", -1))
    out.extend(b"J" + struct.pack("<i", -1)); k(0); out.extend(b"tb")
    out.extend(b"\x89"); s(np.ascontiguousarray(data, np.uint8).tobytes()); out.extend(b"tb")
    s(b"labels"); out.extend(b"]("); [k(int(v)) for v in labels]; out.extend(b"e")
    s(b"batch_label"); s(batch_label)
    s(b"filenames"); out.extend(b"]("); [s(b"img_%06d.png" % i) for i in range(len(labels))]; out.extend(b"e")
    out.extend(b"u.")
    return bytes(out)


def write_cifar(folder: Path):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        blob = py2_cifar_batch_bytes(rng.integers(0, 10, 10000),
                                     rng.integers(0, 256, (10000, 3072), dtype=np.uint8))
        (folder / name).write_bytes(blob)


def write_mnist_csv(path: Path, rows: int, seed: int):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, rows).astype(np.uint8)
    X = np.zeros((rows, 784), np.uint8)
    ink = rng.random((rows, 784)) < 0.19
    vals = np.where(rng.random((rows, 784)) < 0.6, 253, rng.integers(1, 256, (rows, 784))).astype(np.uint8)
    X[ink] = vals[ink]
    table = np.array([str(i).encode() for i in range(256)], dtype=object)
    with open(path, "wb") as f:
        for i0 in range(0, rows, 5000):
            blk = np.concatenate([y[i0:i0 + 5000, None], X[i0:i0 + 5000]], axis=1)
            f.write(b"\n".join(b",".join(table[r]) for r in blk) + b"\n")


def _mnist_root(root: Path, mnist: Path) -> Path:
    """A datasets folder whose mnist/ is ``mnist`` (the quick files kept beside the full ones)."""
    alt = root / "quick-root"
    alt.mkdir(exist_ok=True)
    link = alt / du.MNIST_DIR
    if not link.exists():
        link.symlink_to(mnist.resolve(), target_is_directory=True)
    return alt


def best(fn, repeat=3):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", default=None, help="write the files here and keep them (reused if present)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 10,000 MNIST rows, one timing each")
    args = ap.parse_args()
    repeat = 1 if args.quick else 3
    mnist_rows = 10000 if args.quick else 60000
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="nnkit-bench-load-"))
    try:
        cifar = root / du.CIFAR_DIR
        if not (cifar / "test_batch").is_file():
            print(f"writing synthetic CIFAR-10 batches to {cifar} ...", flush=True)
            write_cifar(cifar)
        mnist = root / du.MNIST_DIR
        if args.quick and args.keep:
            mnist = root / "mnist-quick"
        if not (mnist / "mnist_test.csv").is_file():
            print(f"writing synthetic MNIST CSV to {mnist} ...", flush=True)
            mnist.mkdir(parents=True, exist_ok=True)
            write_mnist_csv(mnist / "mnist_train.csv", mnist_rows, 3)
            write_mnist_csv(mnist / "mnist_test.csv", 10000, 4)
        shutil.rmtree(root / du.CACHE_DIR, ignore_errors=True)

        # Each row: (operation, seconds, target, floor seconds measured in the same run).
        # The floor is the least work the operation must do; on a busy machine the ratio to
        # it says more than the seconds.
        import pickle
        batches = [cifar / n for n in du.CIFAR_TRAIN_FILES + (du.CIFAR_TEST_FILE,)]

        def cifar_floor():
            rows8 = [pickle.load(open(p, "rb"), encoding="bytes")[b"data"] for p in batches]
            return np.concatenate(rows8).astype(np.float64)

        rows = []
        t = best(lambda: du.load_CIFAR10(cifar), repeat)
        rows.append(("load_CIFAR10 (batches -> float64 NHWC)", t, 1.0,
                     best(cifar_floor, repeat), "unpickle + contiguous astype"))
        du.build_cache("cifar10", root=root)
        cache = root / du.CACHE_DIR / "cifar10.npz"
        t = best(lambda: du._raw_uint8("cifar10", root), repeat)
        rows.append(("cifar10 uint8 cache read (CRC-checked)", t, 0.1,
                     best(cache.read_bytes, repeat), "read the file's bytes"))
        t = best(lambda: du.load_dataset("cifar10", root=root), repeat)
        rows.append(("load_dataset('cifar10') from cache, f64 CHW, mean", t, None, None, ""))
        scale = mnist_rows / 60000
        csv = mnist / "mnist_train.csv"
        t = best(lambda: du.load_mnist_csv(csv), repeat)
        rows.append((f"load_mnist_csv ({mnist_rows} rows)", t, 1.5 * scale,
                     best(lambda: np.loadtxt(csv, delimiter=",", dtype=np.uint8), repeat),
                     "bare np.loadtxt"))
        mroot = root if mnist.name == du.MNIST_DIR else _mnist_root(root, mnist)
        du.build_cache("mnist", root=mroot)
        mcache = mroot / du.CACHE_DIR / "mnist.npz"
        t = best(lambda: du._raw_uint8("mnist", mroot), repeat)
        rows.append(("mnist uint8 cache read (CRC-checked)", t, 0.05 * max(scale, 0.4),
                     best(mcache.read_bytes, repeat), "read the file's bytes"))
        print(f"{'operation':52s} {'seconds':>8s} {'target':>7s}        {'floor':>7s} {'x floor':>7s}")
        for name, t, target, floor, what in rows:
            verdict = "" if target is None else ("ok  " if t <= target else "OVER")
            tgt = "" if target is None else f"{target:g}"
            fl = "" if floor is None else f"{floor:7.3f} {t / floor:7.2f}  ({what})"
            print(f"{name:52s} {t:8.3f} {tgt:>7s} {verdict:4s}  {fl}")
            row(name, f"{t:.3f} s", "" if floor is None else f"{t / floor:.2f}x the floor ({what})")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
