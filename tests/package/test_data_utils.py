"""nnkit.data_utils: the loaders on tiny files written in the real on-disk formats,
the caches, the embedded dataset and load_dataset's contract.

Expected values come from the formats' definitions written out here (a CIFAR
batch is a Python-2 pickle of a dict with b'data' (N, 3072) uint8 R,G,B planes
and b'labels'; IDX is a big-endian header then raw bytes; MNIST CSV is
label,784 pixels), never from the loader's own output.
"""
import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from nnkit import data_utils as du

REPO = Path(__file__).resolve().parents[2]
EMBEDDED = REPO / "datasets" / "embedded" / "digits8x8.npz"


# ---------------------------------------------------------------------------
# writers of the real formats
# ---------------------------------------------------------------------------
def py2_cifar_batch_bytes(labels, data, batch_label=b"training batch 1 of 5"):
    """A protocol-2 pickle laid out like the real CIFAR-10 python batches (written by
    Python 2 cPickle): keys and the array buffer are py2 str (SHORT_BINSTRING /
    BINSTRING), the array is built by numpy.core.multiarray._reconstruct.
    (Same layout as shared/tools/peer_bench.py's synthesizer.)"""
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
    s(b"filenames"); out.extend(b"]("); [s(b"img_%d.png" % i) for i in range(len(labels))]; out.extend(b"e")
    out.extend(b"u.")
    return bytes(out)


def write_cifar(folder, n_per_batch=4, seed=0):
    """Six tiny batches; returns the rows and labels written, per file name."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        rows = rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, n_per_batch)
        (folder / name).write_bytes(py2_cifar_batch_bytes(labels, rows))
        written[name] = (rows, labels)
    return written


def cifar_row_to_hwc(row):
    """The format's definition: 1024 R values, then 1024 G, then 1024 B, each row-major."""
    img = np.zeros((32, 32, 3))
    for c in range(3):
        for i in range(32):
            for j in range(32):
                img[i, j, c] = row[c * 1024 + i * 32 + j]
    return img


def write_idx(folder, prefix, images, labels, gz):
    folder.mkdir(parents=True, exist_ok=True)
    img = struct.pack(">IIII", 2051, len(images), 28, 28) + images.astype(np.uint8).tobytes()
    lab = struct.pack(">II", 2049, len(labels)) + labels.astype(np.uint8).tobytes()
    for base, blob in ((f"{prefix}-images-idx3-ubyte", img), (f"{prefix}-labels-idx1-ubyte", lab)):
        if gz:
            with gzip.open(folder / (base + ".gz"), "wb") as f:
                f.write(blob)
        else:
            (folder / base).write_bytes(blob)


def write_csv(path, images, labels, header=False):
    lines = ["label," + ",".join(f"{r}x{c}" for r in range(1, 29) for c in range(1, 29))] if header else []
    for im, lab in zip(images, labels):
        lines.append(",".join([str(int(lab))] + [str(int(v)) for v in im.ravel()]))
    path.write_text("\n".join(lines) + "\n")


def mnist_arrays(n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n)


# ---------------------------------------------------------------------------
# names and folders
# ---------------------------------------------------------------------------
def test_dataset_name_reads_env(monkeypatch):
    monkeypatch.delenv("NNKIT_DATASET", raising=False)
    assert du.dataset_name() == "cifar10"
    monkeypatch.setenv("NNKIT_DATASET", "Embedded ")
    assert du.dataset_name() == "embedded"
    monkeypatch.setenv("NNKIT_DATASET", "imagenet")
    with pytest.raises(ValueError, match="embedded, cifar10, mnist"):
        du.dataset_name()


def test_dataset_dir_default_env_and_root(monkeypatch, tmp_path):
    monkeypatch.delenv("NNKIT_DATA_DIR", raising=False)
    assert du.dataset_dir() == REPO / "datasets"
    monkeypatch.setenv("NNKIT_DATA_DIR", str(tmp_path))
    assert du.dataset_dir() == tmp_path
    assert du.dataset_dir(tmp_path / "x") == tmp_path / "x"


def test_missing_datasets_name_the_fix(tmp_path):
    for name in ("cifar10", "mnist"):
        with pytest.raises(du.DatasetNotFoundError) as e:
            du.load_dataset(name, root=tmp_path)
        assert isinstance(e.value, FileNotFoundError)
        assert f"python datasets/fetch.py {name}" in str(e.value)
    with pytest.raises(du.DatasetNotFoundError, match="embedded"):
        du.load_dataset("embedded", root=tmp_path)
    with pytest.raises(du.DatasetNotFoundError, match="python datasets/fetch.py cifar10"):
        du.load_CIFAR10(tmp_path / "cifar-10-batches-py")


def test_unknown_name_and_bad_dtype():
    with pytest.raises(ValueError, match="unknown dataset"):
        du.load_dataset("svhn")
    with pytest.raises(ValueError, match="floating"):
        du.load_dataset("embedded", dtype=np.int32)


# ---------------------------------------------------------------------------
# the embedded dataset
# ---------------------------------------------------------------------------
def embedded_split_by_hand(labels):
    """The documented rule: within each class, in file order, rank % 10 in 0..6 train,
    7 val, 8..9 test."""
    seen = {}
    train, val, test = [], [], []
    for i, c in enumerate(labels):
        r = seen.get(int(c), 0)
        seen[int(c)] = r + 1
        (train if r % 10 < 7 else val if r % 10 == 7 else test).append(i)
    return train, val, test


def bilinear_by_hand(img8, i, j):
    """Output pixel (i, j) of the 8 -> 32 resize: sample at (k + 0.5) * 8 / 32 - 0.5,
    clamped to [0, 7], linear between the two neighbours along each axis."""
    def coord(k):
        s = min(max((k + 0.5) / 4 - 0.5, 0.0), 7.0)
        lo = int(np.floor(s))
        return lo, min(lo + 1, 7), s - lo
    r0, r1, fr = coord(i)
    c0, c1, fc = coord(j)
    top = img8[r0, c0] * (1 - fc) + img8[r0, c1] * fc
    bot = img8[r1, c0] * (1 - fc) + img8[r1, c1] * fc
    return top * (1 - fr) + bot * fr


def test_embedded_file_is_small_and_pickle_free():
    assert EMBEDDED.is_file() and EMBEDDED.stat().st_size < 300_000
    with np.load(EMBEDDED, allow_pickle=False) as z:
        assert sorted(z.files) == ["images", "labels"]
        assert z["images"].shape == (1797, 8, 8) and z["images"].dtype == np.uint8
        assert z["labels"].shape == (1797,)


def test_embedded_equals_scikit_learn_digits_scaled():
    sk = pytest.importorskip("sklearn.datasets")
    digits = sk.load_digits()
    images, labels = du.load_embedded()
    assert np.array_equal(images, np.rint(digits.images * 255 / 16).astype(np.uint8))
    assert np.array_equal(labels, digits.target)
    assert images.max() == 255 and images.min() == 0


def test_embedded_view_split_and_values():
    images, labels = du.load_embedded()
    tr, va, te = embedded_split_by_hand(labels)
    d = du.load_dataset("embedded", subtract_mean=False)
    assert d["X_train"].shape == (len(tr), 3, 32, 32) and d["X_train"].dtype == np.float64
    assert d["X_val"].shape == (len(va), 3, 32, 32) and d["X_test"].shape == (len(te), 3, 32, 32)
    assert (len(tr), len(va), len(te)) == (1266, 178, 353)  # the sizes documented in the module
    for split, idx in (("train", tr), ("val", va), ("test", te)):
        assert d[f"y_{split}"].dtype == np.int64
        assert np.array_equal(d[f"y_{split}"], labels[idx])
    assert set(np.unique(d["y_train"])) == set(range(10))
    assert d["class_names"] == tuple("0123456789")
    # pixels: the hand-written bilinear resize, the same in all three channels
    for split, idx in (("train", tr), ("test", te)):
        for n in (0, 5):
            img8 = images[idx[n]].astype(float)
            for (i, j) in [(0, 0), (1, 2), (13, 17), (31, 31), (16, 0), (30, 7)]:
                want = bilinear_by_hand(img8, i, j)
                for c in range(3):
                    assert abs(d[f"X_{split}"][n, c, i, j] - want) < 1e-12
    assert d["X_train"].min() >= 0 and d["X_train"].max() <= 255


def test_embedded_is_deterministic_and_mean_subtracted():
    a = du.load_dataset("embedded")
    b = du.load_dataset("embedded")
    raw = du.load_dataset("embedded", subtract_mean=False)
    for k in ("X_train", "X_val", "X_test", "y_train", "y_test", "mean_image"):
        assert np.array_equal(a[k], b[k])
    mean = raw["X_train"].sum(axis=0) / len(raw["X_train"])
    assert np.allclose(a["mean_image"], mean, atol=1e-10)
    assert np.allclose(a["X_val"] + a["mean_image"], raw["X_val"], atol=1e-10)
    assert "mean_image" not in raw
    hwc = du.load_dataset("embedded", channels_first=False)
    assert hwc["X_train"].shape[1:] == (32, 32, 3)
    assert np.array_equal(hwc["X_train"], a["X_train"].transpose(0, 2, 3, 1))
    assert hwc["mean_image"].shape == (32, 32, 3)


def test_embedded_sizes_and_dtype():
    d = du.load_dataset("embedded", num_training=100, num_validation=20, num_test=30, dtype=np.float32)
    full = du.load_dataset("embedded", subtract_mean=False)
    assert d["X_train"].dtype == np.float32 and d["mean_image"].dtype == np.float32
    assert [len(d[k]) for k in ("y_train", "y_val", "y_test")] == [100, 20, 30]
    assert np.array_equal(d["y_train"], full["y_train"][:100])
    with pytest.raises(ValueError, match="1266 training"):
        du.load_dataset("embedded", num_training=5000)


def test_env_selects_dataset(monkeypatch):
    monkeypatch.setenv("NNKIT_DATASET", "embedded")
    assert len(du.load_dataset()["y_train"]) == 1266


# ---------------------------------------------------------------------------
# CIFAR-10 on tiny batches in the real pickle format
# ---------------------------------------------------------------------------
def test_load_cifar_batch_real_format(tmp_path):
    written = write_cifar(tmp_path / "cifar-10-batches-py", n_per_batch=3)
    rows, labels = written["data_batch_2"]
    X, Y = du.load_CIFAR_batch(tmp_path / "cifar-10-batches-py" / "data_batch_2")
    assert X.shape == (3, 32, 32, 3) and X.dtype == np.float64
    assert Y.dtype == np.int64 and np.array_equal(Y, labels)
    for n in range(3):
        assert np.array_equal(X[n], cifar_row_to_hwc(rows[n]))


def test_load_cifar10_concatenates_in_order(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    written = write_cifar(folder, n_per_batch=2)
    Xtr, Ytr, Xte, Yte = du.load_CIFAR10(folder)
    assert Xtr.shape == (10, 32, 32, 3) and Xte.shape == (2, 32, 32, 3)
    assert Xtr.dtype == np.float64 and Xtr.flags.c_contiguous
    want_rows = [r for i in range(1, 6) for r in written[f"data_batch_{i}"][0]]
    want_y = [int(v) for i in range(1, 6) for v in written[f"data_batch_{i}"][1]]
    assert Ytr.tolist() == want_y
    for n in (0, 3, 9):
        assert np.array_equal(Xtr[n], cifar_row_to_hwc(want_rows[n]))
    assert np.array_equal(Xte[1], cifar_row_to_hwc(written["test_batch"][0][1]))


def test_cifar_batch_refuses_code(tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    bad = tmp_path / "data_batch_1"
    bad.write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}, protocol=2))
    with pytest.raises(ValueError, match="not a readable CIFAR-10"):
        du.load_CIFAR_batch(bad)


def test_cifar_truncated_batch_is_a_clear_error(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar(folder, n_per_batch=2)
    blob = (folder / "data_batch_3").read_bytes()
    (folder / "data_batch_3").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match="data_batch_3"):
        du.load_CIFAR10(folder)


def test_cifar10_load_dataset_splits_and_cache(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    written = write_cifar(folder, n_per_batch=4)  # 20 train, 4 test
    rows = np.concatenate([written[f"data_batch_{i}"][0] for i in range(1, 6)])
    ys = np.concatenate([written[f"data_batch_{i}"][1] for i in range(1, 6)])
    d = du.load_dataset("cifar10", root=tmp_path, num_training=15, num_validation=3, num_test=2,
                        subtract_mean=False)
    # CS231n split: train the first 15, val the next 3, test the first 2 of test_batch
    assert np.array_equal(d["y_train"], ys[:15]) and np.array_equal(d["y_val"], ys[15:18])
    assert np.array_equal(d["y_test"], written["test_batch"][1][:2])
    assert d["X_val"].shape == (3, 3, 32, 32)
    assert np.array_equal(d["X_val"][2], cifar_row_to_hwc(rows[17]).transpose(2, 0, 1))
    assert d["class_names"][0] == "airplane" and len(d["class_names"]) == 10
    cache = tmp_path / "cache" / "cifar10.npz"
    assert cache.is_file()
    # mean: from the training split only, by its definition
    m = du.load_dataset("cifar10", root=tmp_path, num_training=15, num_validation=3, num_test=2)
    want_mean = np.mean([cifar_row_to_hwc(r) for r in rows[:15]], axis=0).transpose(2, 0, 1)
    assert np.allclose(m["mean_image"], want_mean, atol=1e-12)
    assert np.allclose(m["X_test"][0], cifar_row_to_hwc(written["test_batch"][0][0]).transpose(2, 0, 1)
                       - want_mean, atol=1e-12)
    with pytest.raises(ValueError, match="too many"):
        du.load_dataset("cifar10", root=tmp_path, num_training=19, num_validation=2)


def test_cifar_cache_is_used_without_sources_and_rebuilt_when_corrupt(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    written = write_cifar(folder, n_per_batch=2)
    kw = dict(root=tmp_path, num_training=8, num_validation=2, num_test=2, subtract_mean=False)
    first = du.load_dataset("cifar10", **kw)
    cache = tmp_path / "cache" / "cifar10.npz"
    good = cache.read_bytes()
    # 1. the cache alone is enough (the batches were deleted after caching)
    moved = tmp_path / "moved"
    folder.rename(moved)
    again = du.load_dataset("cifar10", **kw)
    assert np.array_equal(again["X_train"], first["X_train"])
    # 2. a damaged cache without sources is never used: the dataset counts as missing
    flipped = bytearray(good)
    flipped[len(flipped) // 2] ^= 0xFF  # one byte inside the image data: the CRC catches it
    cache.write_bytes(bytes(flipped))
    with pytest.raises(du.DatasetNotFoundError):
        du.load_dataset("cifar10", **kw)
    # 3. with the sources back, a damaged (here: half-written) cache is rebuilt
    moved.rename(folder)
    cache.write_bytes(good[: len(good) // 2])
    rebuilt = du.load_dataset("cifar10", **kw)
    assert np.array_equal(rebuilt["X_train"], first["X_train"])
    assert cache.read_bytes() != good[: len(good) // 2]
    assert np.array_equal(du._read_npz_verified(cache)["Xtr"], np.load(cache)["Xtr"])


def test_cache_is_rebuilt_when_a_source_file_changes(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar(folder, n_per_batch=2, seed=1)
    kw = dict(root=tmp_path, num_training=8, num_validation=2, num_test=2, subtract_mean=False)
    du.load_dataset("cifar10", **kw)
    new = write_cifar(folder, n_per_batch=2, seed=2)  # new files: other sizes/mtimes
    os.utime(folder / "test_batch", ns=(1, 1))
    d = du.load_dataset("cifar10", **kw)
    assert np.array_equal(d["y_test"], new["test_batch"][1])


def test_cache_write_failure_is_silent(tmp_path, monkeypatch):
    write_cifar(tmp_path / "cifar-10-batches-py", n_per_batch=2)

    def fail(*a, **k):
        raise PermissionError("read-only")
    monkeypatch.setattr(du, "_write_npz_atomic", fail)
    d = du.load_dataset("cifar10", root=tmp_path, num_training=8, num_validation=2, num_test=2)
    assert d["X_train"].shape == (8, 3, 32, 32)
    assert not (tmp_path / "cache" / "cifar10.npz").exists()


# ---------------------------------------------------------------------------
# MNIST: IDX (gz and raw) and CSV
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("gz", [True, False])
def test_mnist_idx(tmp_path, gz):
    Xtr, ytr = mnist_arrays(7, 1)
    Xte, yte = mnist_arrays(3, 2)
    write_idx(tmp_path / "mnist", "train", Xtr, ytr, gz)
    write_idx(tmp_path / "mnist", "t10k", Xte, yte, gz)
    a, b, c, d = du.load_MNIST(tmp_path / "mnist")
    assert a.shape == (7, 28, 28) and a.dtype == np.float64
    assert np.array_equal(a, Xtr) and np.array_equal(b, ytr) and np.array_equal(c, Xte)
    assert np.array_equal(d, yte)
    data = du.load_dataset("mnist", root=tmp_path, num_training=5, num_validation=2, num_test=3,
                           subtract_mean=False)
    X = data["X_val"]
    assert X.shape == (2, 3, 32, 32) and np.array_equal(data["y_val"], ytr[5:7])
    # the documented view: 2 pixels of zero padding around the 28x28 digit, 3 equal channels
    for c in range(3):
        assert np.array_equal(X[1, c, 2:30, 2:30], Xtr[6])
    assert X[:, :, :2].sum() == 0 and X[:, :, 30:].sum() == 0 and X[:, :, :, :2].sum() == 0
    assert data["class_names"] == tuple("0123456789")


def test_mnist_idx_truncated_or_wrong(tmp_path):
    Xtr, ytr = mnist_arrays(4, 1)
    folder = tmp_path / "mnist"
    write_idx(folder, "train", Xtr, ytr, gz=False)
    blob = (folder / "train-images-idx3-ubyte").read_bytes()
    (folder / "train-images-idx3-ubyte").write_bytes(blob[:-10])
    with pytest.raises(ValueError, match="truncated"):
        du.load_mnist_idx(folder / "train-images-idx3-ubyte", folder / "train-labels-idx1-ubyte")
    with pytest.raises(ValueError, match="magic"):
        du.load_mnist_idx(folder / "train-labels-idx1-ubyte", folder / "train-labels-idx1-ubyte")


@pytest.mark.parametrize("header", [False, True])
def test_mnist_csv(tmp_path, header):
    Xtr, ytr = mnist_arrays(6, 3)
    Xte, yte = mnist_arrays(2, 4)
    folder = tmp_path / "mnist"
    folder.mkdir()
    write_csv(folder / "mnist_train.csv", Xtr, ytr, header)
    write_csv(folder / "mnist_test.csv", Xte, yte, header)
    X, y = du.load_mnist_csv(folder / "mnist_train.csv")
    assert X.dtype == np.uint8 and np.array_equal(X, Xtr) and np.array_equal(y, ytr)
    d = du.load_dataset("mnist", root=tmp_path, num_training=4, num_validation=2, num_test=2,
                        subtract_mean=False, channels_first=False)
    assert d["X_train"].shape == (4, 32, 32, 3)
    assert np.array_equal(d["X_test"][1, 2:30, 2:30, 0], Xte[1])
    # cached: the second load reads cache/mnist.npz, and it matches
    assert (tmp_path / "cache" / "mnist.npz").is_file()
    d2 = du.load_dataset("mnist", root=tmp_path, num_training=4, num_validation=2, num_test=2,
                         subtract_mean=False, channels_first=False)
    assert np.array_equal(d2["X_train"], d["X_train"])


def test_mnist_csv_bad_rows(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("3," + ",".join(["0"] * 10) + "\n")
    with pytest.raises(ValueError, match="785 columns"):
        du.load_mnist_csv(p)
    p.write_text("3," + ",".join(["300"] * 784) + "\n")
    with pytest.raises(ValueError):
        du.load_mnist_csv(p)
