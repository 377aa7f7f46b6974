"""Datasets: CIFAR-10, MNIST and the small embedded digits, behind one ``load_dataset``.

Every dataset comes out in the same CIFAR-shaped view, so the notebooks and the
grader run unchanged on any of them:

``load_dataset(name)`` returns a dict with ``X_train, y_train, X_val, y_val,
X_test, y_test`` (X: (N, 3, 32, 32), or (N, 32, 32, 3) with
``channels_first=False``; y: (N,) int64), plus ``mean_image`` (the training
mean, already subtracted) when ``subtract_mean`` and ``class_names``.

- ``"cifar10"``: the CIFAR-10 python batches (``cifar-10-batches-py/``).
  Splits as CS231n: train = the first ``num_training`` training images,
  val = the next ``num_validation``, test = the first ``num_test`` test images.
- ``"mnist"``: the four IDX files (gzipped or not) or ``mnist_train.csv`` /
  ``mnist_test.csv`` (label then 784 pixels per row) in ``mnist/``. Each 28x28
  digit is zero-padded by 2 pixels on every side to 32x32 (as LeNet-5 did) and
  the gray plane is repeated into 3 channels. Splits as CIFAR-10.
- ``"embedded"``: scikit-learn's 1797 8x8 digits, committed in
  ``embedded/digits8x8.npz`` (0..255). Each digit is upsampled to 32x32 by
  bilinear interpolation (pixel centres aligned, edges clamped) and repeated
  into 3 channels. The split is fixed: within each class, in file order, images
  whose rank modulo 10 is 0..6 train, 7 validate, 8..9 test (1266 / 178 / 353).

``load_flat_dataset(name)`` is the other view, for the multilayer perceptrons of
the MNIST assignment: ``"mnist"`` or ``"embedded"`` digits as rows of 28 * 28 = 784
numbers in [0, 1] (no padding, one channel), with a random validation split drawn
from a seed (``split_train_val``) and the fixed test images.

Where the data lives: env ``NNKIT_DATA_DIR`` if set, else the nearest
``datasets/`` folder above this package (the repository's or the release's).
Decoded CIFAR-10 and MNIST are cached as uint8 ``.npz`` files in
``<datasets>/cache/`` so a second load skips the parsing; a cache file is
written to a temporary name and renamed, and checked (layout, CRC, shapes,
source files) before it is used, so a broken one is rebuilt, never used.

Nothing here writes to stderr: a warning in a graded notebook cell costs points.
"""
from __future__ import annotations

import gzip
import json
import os
import pickle
import struct
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

DATASETS = ("embedded", "cifar10", "mnist")
DEFAULT_DATASET = "cifar10"

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
DIGIT_CLASSES = tuple(str(d) for d in range(10))

CIFAR_DIR = "cifar-10-batches-py"
CIFAR_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST_FILE = "test_batch"
MNIST_DIR = "mnist"
MNIST_IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
MNIST_CSV_FILES = {"train": "mnist_train.csv", "test": "mnist_test.csv"}
EMBEDDED_FILE = Path("embedded") / "digits8x8.npz"
CACHE_DIR = "cache"

# Default split sizes per dataset (None: everything in the split).
_DEFAULT_SIZES = {
    "cifar10": (49000, 1000, 1000),
    "mnist": (59000, 1000, 10000),
    "embedded": (None, None, None),
}
_CACHE_FORMAT = 2  # 2: CIFAR-10 stored channels first


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are missing; the message names the command that fetches them."""


# ---------------------------------------------------------------------------
# Names and folders
# ---------------------------------------------------------------------------
def dataset_name() -> str:
    """The dataset the notebooks use: env ``NNKIT_DATASET``, default ``"cifar10"``.

    Returns
    -------
    name : str, one of ``DATASETS``
    """
    name = os.environ.get("NNKIT_DATASET", "").strip().lower() or DEFAULT_DATASET
    return _check_name(name)


def _check_name(name: str) -> str:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)} "
                         "(DATASET in a notebook's first cell, the environment variable NNKIT_DATASET, "
                         "or the argument `name`)")
    return name


def dataset_dir(root: str | os.PathLike | None = None) -> Path:
    """The datasets folder: ``root`` if given, else env ``NNKIT_DATA_DIR``, else the
    nearest ``datasets/`` folder found walking up from the nnkit package.

    Raises
    ------
    DatasetNotFoundError if none is found.
    """
    if root is not None:
        return Path(root)
    env = os.environ.get("NNKIT_DATA_DIR", "").strip()
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    for folder in here.parents:
        if (folder / "datasets").is_dir():
            return folder / "datasets"
    raise DatasetNotFoundError(
        f"no datasets/ folder found above {here}: put the kit's datasets/ folder beside the "
        "nnkit/ folder, or set the environment variable NNKIT_DATA_DIR to it")


def _fetch_hint(name: str, folder: Path) -> str:
    where = folder.resolve().parent if folder.name == "datasets" else folder
    return (f"download it once: run `python datasets/fetch.py {name}` in a terminal in {where} "
            f"(in a notebook there: `!python datasets/fetch.py {name}`); it downloads, checks and "
            f"unpacks the files into {folder}, and when the download fails it says how to get "
            "them by hand. To work offline meanwhile, choose the small embedded dataset that "
            'comes with the assignment: DATASET = "embedded" in the first cell of each notebook '
            "(or the environment variable NNKIT_DATASET=embedded), then run the notebook from "
            "the top again. The accuracy thresholds are those of the dataset in use.")


# ---------------------------------------------------------------------------
# CIFAR-10 (the python pickle batches)
# ---------------------------------------------------------------------------
class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler for the CIFAR-10 batches: it builds numpy arrays and nothing else,
    so a doctored batch file cannot run code."""

    # The real batches were written by Python 2 with numpy's old module paths.
    _reconstruct = np.ndarray((0,)).__reduce__()[0]
    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }

    def find_class(self, module, name):
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"a CIFAR-10 batch should hold only numpy arrays and lists, not {module}.{name}: "
                "the file is not a CIFAR-10 python batch (fetch it again)") from None


def _read_cifar_batch_uint8(filename) -> tuple[np.ndarray, np.ndarray]:
    """One batch as stored: data (N, 3072) uint8 (R, G, B planes) and labels (N,) int64."""
    try:
        with open(filename, "rb") as f:
            d = _ArrayUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, struct.error) as exc:
        raise ValueError(f"{filename} is not a readable CIFAR-10 python batch ({exc}); "
                         "delete it and fetch the dataset again") from exc
    if not isinstance(d, dict):
        raise ValueError(f"{filename}: expected a dict, found {type(d).__name__}")
    data = d.get(b"data", d.get("data"))
    labels = d.get(b"labels", d.get("labels"))
    if data is None or labels is None:
        raise ValueError(f"{filename}: no 'data'/'labels' entries (keys: {list(d)})")
    data = np.asarray(data)
    labels = np.asarray(labels, dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise ValueError(f"{filename}: expected data (N, 3072) uint8 and N labels, found "
                         f"data {data.shape} {data.dtype} and {labels.shape} labels")
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{filename}: labels outside 0..9")
    return data, labels


def _cifar_rows_to_nhwc(rows: np.ndarray, dtype=np.float64) -> np.ndarray:
    """rows: (N, 3072) in R, G, B planes -> (N, 32, 32, 3) C-contiguous ``dtype``."""
    return _to_view(rows.reshape(-1, 3, 32, 32), channels_first=False, dtype=dtype, chw=True)


def load_CIFAR_batch(filename):
    """Load one CIFAR-10 python batch.

    Parameters
    ----------
    filename : path of ``data_batch_<i>`` or ``test_batch``

    Returns
    -------
    X : (10000, 32, 32, 3) float64, pixel values 0..255
    Y : (10000,) int64, labels 0..9
    """
    data, labels = _read_cifar_batch_uint8(filename)
    return _cifar_rows_to_nhwc(data), labels


def _cifar_uint8(folder: Path) -> dict:
    """Xtr (50000, 3, 32, 32) uint8, ytr, Xte (10000, 3, 32, 32) uint8, yte from the batches
    (channels first: the stored layout, so no transposition)."""
    missing = [n for n in CIFAR_TRAIN_FILES + (CIFAR_TEST_FILE,) if not (folder / n).is_file()]
    if missing:
        raise DatasetNotFoundError(f"CIFAR-10 batches missing in {folder}: {', '.join(missing)}")
    parts = [_read_cifar_batch_uint8(folder / n) for n in CIFAR_TRAIN_FILES]
    test_rows, yte = _read_cifar_batch_uint8(folder / CIFAR_TEST_FILE)
    train_rows = np.concatenate([p[0] for p in parts])
    ytr = np.concatenate([p[1] for p in parts])
    return {"Xtr": train_rows.reshape(-1, 3, 32, 32), "ytr": ytr,
            "Xte": test_rows.reshape(-1, 3, 32, 32), "yte": yte}


def load_CIFAR10(root):
    """Load all of CIFAR-10 from the folder of python batches.

    Parameters
    ----------
    root : the ``cifar-10-batches-py`` folder (``data_batch_1..5``, ``test_batch``)

    Returns
    -------
    Xtr : (50000, 32, 32, 3) float64, 0..255
    Ytr : (50000,) int64
    Xte : (10000, 32, 32, 3) float64, 0..255
    Yte : (10000,) int64
    """
    root = Path(root)
    missing = [n for n in CIFAR_TRAIN_FILES + (CIFAR_TEST_FILE,) if not (root / n).is_file()]
    if missing:
        raise DatasetNotFoundError(f"CIFAR-10 batches missing in {root}: {', '.join(missing)}. "
                                   f"Fix: {_fetch_hint('cifar10', root.parent)}")
    parts = [_read_cifar_batch_uint8(root / n) for n in CIFAR_TRAIN_FILES]
    test_rows, Yte = _read_cifar_batch_uint8(root / CIFAR_TEST_FILE)
    # One casting copy per batch, straight from the stored rows into float64 NHWC.
    Xtr = np.empty((sum(len(p[0]) for p in parts), 32, 32, 3))
    start = 0
    for rows, _ in parts:
        _to_view(rows.reshape(-1, 3, 32, 32), False, None, chw=True, out=Xtr[start:start + len(rows)])
        start += len(rows)
    Ytr = np.concatenate([p[1] for p in parts])
    return Xtr, Ytr, _cifar_rows_to_nhwc(test_rows), Yte


def get_CIFAR10_data(num_training=49000, num_validation=1000, num_test=1000, subtract_mean=True):
    """CIFAR-10 split as CS231n does, channels first.

    Train = the first ``num_training`` training images, val = the next
    ``num_validation``, test = the first ``num_test`` test images; the training
    mean image is subtracted from all three when ``subtract_mean``.

    Returns
    -------
    data : dict with X_train (num_training, 3, 32, 32) float64, y_train (num_training,)
        int64, X_val, y_val, X_test, y_test likewise, ``mean_image`` (3, 32, 32)
        when subtract_mean, and ``class_names``
    """
    return load_dataset("cifar10", num_training=num_training, num_validation=num_validation,
                        num_test=num_test, subtract_mean=subtract_mean)


# ---------------------------------------------------------------------------
# MNIST (IDX files, gzipped or raw, or CSV)
# ---------------------------------------------------------------------------
def _open_maybe_gz(path: Path) -> bytes:
    with open(path, "rb") as f:
        head = f.read(2)
    opener = gzip.open if head == b"\x1f\x8b" else open
    try:
        with opener(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{path}: cannot be read ({exc}); delete it and fetch MNIST again") from exc


def load_mnist_idx(images_path, labels_path) -> tuple[np.ndarray, np.ndarray]:
    """Read one pair of MNIST IDX files (``*-idx3-ubyte`` / ``*-idx1-ubyte``, optionally gzipped).

    Returns
    -------
    X : (N, 28, 28) uint8, 0..255
    y : (N,) int64, 0..9
    """
    img = _open_maybe_gz(Path(images_path))
    lab = _open_maybe_gz(Path(labels_path))
    if len(img) < 16 or struct.unpack(">I", img[:4])[0] != 0x00000803:
        raise ValueError(f"{images_path}: not an IDX image file (magic number 2051 expected)")
    if len(lab) < 8 or struct.unpack(">I", lab[:4])[0] != 0x00000801:
        raise ValueError(f"{labels_path}: not an IDX label file (magic number 2049 expected)")
    n, rows, cols = struct.unpack(">III", img[4:16])
    (nl,) = struct.unpack(">I", lab[4:8])
    if len(img) != 16 + n * rows * cols or len(lab) != 8 + nl:
        raise ValueError(f"{images_path} / {labels_path}: size does not match the header "
                         "(truncated download?); delete them and fetch MNIST again")
    if nl != n:
        raise ValueError(f"{images_path} holds {n} images but {labels_path} holds {nl} labels")
    X = np.frombuffer(img, dtype=np.uint8, offset=16).reshape(n, rows, cols)
    y = np.frombuffer(lab, dtype=np.uint8, offset=8).astype(np.int64)
    if n and y.max() > 9:
        raise ValueError(f"{labels_path}: labels outside 0..9")
    return X, y


def load_mnist_csv(path) -> tuple[np.ndarray, np.ndarray]:
    """Read an MNIST CSV: one image per row, the label then 784 pixels 0..255
    (a first line with a header, as in some copies, is skipped).

    Returns
    -------
    X : (N, 28, 28) uint8
    y : (N,) int64
    """
    path = Path(path)
    with open(path, "rb") as f:
        first = f.readline()
    skip = 1 if any(c.isalpha() for c in first.decode("latin1")) else 0
    try:
        # numpy's C parser; 30x faster than the csv module, 20x than genfromtxt.
        a = np.loadtxt(path, delimiter=",", dtype=np.uint8, skiprows=skip, ndmin=2)
    except ValueError as exc:
        raise ValueError(f"{path}: not an MNIST CSV of integers 0..255 ({exc})") from exc
    if a.shape[1] != 785:
        raise ValueError(f"{path}: expected 785 columns (label + 28*28 pixels), found {a.shape[1]}")
    y = a[:, 0].astype(np.int64)
    if len(y) and y.max() > 9:
        raise ValueError(f"{path}: labels (first column) outside 0..9")
    return np.ascontiguousarray(a[:, 1:]).reshape(-1, 28, 28), y


def _mnist_sources(folder: Path) -> tuple[str, list[Path]]:
    """Which MNIST files to read: ("idx", [4 paths]) or ("csv", [train, test])."""
    idx = []
    for base in MNIST_IDX_FILES.values():
        hits = [folder / (base + ext) for ext in (".gz", "") if (folder / (base + ext)).is_file()]
        idx.append(hits[0] if hits else None)
    if all(idx):
        return "idx", idx
    csv = [folder / MNIST_CSV_FILES["train"], folder / MNIST_CSV_FILES["test"]]
    if all(p.is_file() for p in csv):
        return "csv", csv
    raise DatasetNotFoundError(
        f"MNIST not found in {folder}: expected the four IDX files "
        f"({', '.join(b + '[.gz]' for b in MNIST_IDX_FILES.values())}) or "
        f"{MNIST_CSV_FILES['train']} and {MNIST_CSV_FILES['test']}")


def _mnist_uint8(folder: Path) -> dict:
    kind, paths = _mnist_sources(folder)
    if kind == "idx":
        Xtr, ytr = load_mnist_idx(paths[0], paths[1])
        Xte, yte = load_mnist_idx(paths[2], paths[3])
    else:
        Xtr, ytr = load_mnist_csv(paths[0])
        Xte, yte = load_mnist_csv(paths[1])
    return {"Xtr": Xtr, "ytr": ytr, "Xte": Xte, "yte": yte}


def load_MNIST(root):
    """Load MNIST from a folder holding the IDX files (or ``mnist_train.csv``/``mnist_test.csv``).

    Returns
    -------
    Xtr : (60000, 28, 28) float64, 0..255
    Ytr : (60000,) int64
    Xte : (10000, 28, 28) float64
    Yte : (10000,) int64
    """
    root = Path(root)
    try:
        raw = _mnist_uint8(root)
    except DatasetNotFoundError as exc:
        raise DatasetNotFoundError(f"{exc}. Fix: {_fetch_hint('mnist', root.parent)}") from None
    return (raw["Xtr"].astype(np.float64), raw["ytr"], raw["Xte"].astype(np.float64), raw["yte"])


# ---------------------------------------------------------------------------
# The embedded digits
# ---------------------------------------------------------------------------
def load_embedded(root=None) -> tuple[np.ndarray, np.ndarray]:
    """The committed 8x8 digits as stored.

    Parameters
    ----------
    root : the datasets folder (default: ``dataset_dir()``)

    Returns
    -------
    images : (1797, 8, 8) uint8, 0..255
    labels : (1797,) int64, 0..9
    """
    path = dataset_dir(root) / EMBEDDED_FILE
    if not path.is_file():
        raise DatasetNotFoundError(
            f"the embedded dataset {path} is missing: it comes with the assignment "
            f"({EMBEDDED_FILE.as_posix()} in its datasets/ folder); copy it back from the "
            "assignment's zip or repository")
    with np.load(path, allow_pickle=False) as z:
        images, labels = z["images"], z["labels"].astype(np.int64)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (8, 8) \
            or labels.shape != (len(images),) or labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"{path} is not the embedded digits file (images {images.shape} "
                         f"{images.dtype}, labels {labels.shape}); restore it from the kit")
    return images, labels


def embedded_split(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fixed split of the embedded digits, stratified by class.

    Within each class, in file order, an image whose rank modulo 10 is 0..6 goes to
    train, 7 to validation, 8..9 to test.

    Parameters
    ----------
    labels : (N,) int

    Returns
    -------
    train, val, test : index arrays (int64), each in increasing order
    """
    labels = np.asarray(labels)
    rank = np.empty(len(labels), dtype=np.int64)
    for c in np.unique(labels):
        where = np.flatnonzero(labels == c)
        rank[where] = np.arange(len(where))
    r = rank % 10
    return np.flatnonzero(r < 7), np.flatnonzero(r == 7), np.flatnonzero(r >= 8)


def upsample_bilinear(images: np.ndarray, size: int = 32) -> np.ndarray:
    """Bilinear resize of square gray images with pixel centres aligned, edges clamped.

    Output pixel ``i`` samples the input at ``(i + 0.5) * h / size - 0.5``.

    Parameters
    ----------
    images : (N, h, h) any real dtype
    size : output side

    Returns
    -------
    out : (N, size, size) float64
    """
    h = images.shape[1]
    src = np.clip((np.arange(size) + 0.5) * (h / size) - 0.5, 0, h - 1)
    i0 = np.floor(src).astype(np.intp)
    i1 = np.minimum(i0 + 1, h - 1)
    f = src - i0
    a = images.astype(np.float64)
    a = a[:, i0, :] * (1 - f)[None, :, None] + a[:, i1, :] * f[None, :, None]
    return a[:, :, i0] * (1 - f)[None, None, :] + a[:, :, i1] * f[None, None, :]


# ---------------------------------------------------------------------------
# The uint8 cache
# ---------------------------------------------------------------------------
def _source_signature(paths) -> list:
    return [[Path(p).name, os.stat(p).st_size, os.stat(p).st_mtime_ns] for p in paths]


def _read_npz_verified(path: Path) -> dict:
    """Read an uncompressed ``.npz`` written by ``np.savez``, checking every member's CRC.

    Reads each array straight into its final buffer (faster than ``np.load``,
    which goes through zipfile's small reads); anything unusual falls back to
    ``np.load``-style reading through ``zipfile``, which checks the CRC as well.
    """
    out = {}
    with open(path, "rb") as f, zipfile.ZipFile(f) as zf:
        for info in zf.infolist():
            key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            arr = None
            if info.compress_type == zipfile.ZIP_STORED:
                f.seek(info.header_offset)
                local = f.read(30)
                if local[:4] != b"PK\x03\x04":
                    raise ValueError("bad local header")
                nlen, elen = struct.unpack("<HH", local[26:30])
                start = info.header_offset + 30 + nlen + elen
                f.seek(start)
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
                elif version == (2, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
                else:
                    version = None
                if version is not None and not dtype.hasobject:
                    hlen = f.tell() - start
                    count = int(np.prod(shape, dtype=np.int64))
                    # Sizes first: a damaged header must not trigger a huge allocation.
                    if hlen + count * dtype.itemsize != info.file_size:
                        raise ValueError(f"member {info.filename} is damaged (size)")
                    f.seek(start)
                    crc = zlib.crc32(f.read(hlen))
                    flat = np.empty(count, dtype=dtype)
                    if f.readinto(memoryview(flat).cast("B")) != flat.nbytes:
                        raise ValueError("truncated member")
                    if zlib.crc32(flat, crc) != info.CRC:
                        raise ValueError(f"member {info.filename} is damaged (CRC)")
                    arr = flat.reshape(shape, order="F" if fortran else "C")
            if arr is None:
                with zf.open(info) as m:
                    arr = np.lib.format.read_array(m, allow_pickle=False)
            out[key] = arr
    return out


def _write_npz_atomic(path: Path, arrays: dict) -> None:
    """Write ``arrays`` to ``path`` via a temporary file and a rename (never half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.stem + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a shared course folder needs to read it
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _check_raw(raw: dict, hw: tuple) -> None:
    """Raise ValueError unless raw holds uint8 images (N, *hw) with N labels in 0..9."""
    for X, y in ((raw["Xtr"], raw["ytr"]), (raw["Xte"], raw["yte"])):
        if X.dtype != np.uint8 or X.shape[1:] != hw or y.shape != (len(X),):
            raise ValueError(f"unexpected arrays {X.shape} {X.dtype} / {y.shape}")
        if len(y) and (y.min() < 0 or y.max() > 9):
            raise ValueError("labels outside 0..9")


def _cached_uint8(name: str, folder: Path, sources, build, hw: tuple) -> dict:
    """The raw uint8 arrays of ``name``: from the cache when it is intact and was made
    from the same source files, else from ``build()`` (then cached)."""
    cache = folder / CACHE_DIR / f"{name}.npz"
    signature = _source_signature(sources) if sources else None
    if cache.is_file():
        try:
            d = _read_npz_verified(cache)
            meta = json.loads(str(d.pop("__meta__")[()]))
            if meta.get("format") != _CACHE_FORMAT or meta.get("name") != name:
                raise ValueError("other format")
            if signature is not None and meta.get("sources") != signature:
                raise ValueError("source files changed")
            raw = {k: d[k] for k in ("Xtr", "ytr", "Xte", "yte")}
            _check_raw(raw, hw)
            return raw
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError, TypeError, struct.error):
            pass  # damaged, stale or foreign: rebuilt below, never used
    if not sources:
        raise DatasetNotFoundError(f"{name} is not in {folder}")
    raw = build()
    _check_raw(raw, hw)
    meta = json.dumps({"format": _CACHE_FORMAT, "name": name, "sources": signature})
    try:
        _write_npz_atomic(cache, {**{k: np.ascontiguousarray(v) for k, v in raw.items()},
                                  "__meta__": np.array(meta)})
    except OSError:
        pass  # a read-only datasets folder (a grading sandbox): just do not cache
    return raw


def _raw_uint8(name: str, folder: Path) -> dict:
    """Xtr, ytr, Xte, yte as stored (uint8 images) for cifar10 or mnist, cached."""
    if name == "cifar10":
        src = folder / CIFAR_DIR
        files = [src / n for n in CIFAR_TRAIN_FILES + (CIFAR_TEST_FILE,)]
        sources = files if all(p.is_file() for p in files) else None
        try:
            return _cached_uint8(name, folder, sources, lambda: _cifar_uint8(src), (3, 32, 32))
        except DatasetNotFoundError:
            raise DatasetNotFoundError(
                f"CIFAR-10 not found: expected {src}/data_batch_1..5 and test_batch. "
                f"Fix: {_fetch_hint('cifar10', folder)}") from None
    src = folder / MNIST_DIR
    try:
        _, sources = _mnist_sources(src)
    except DatasetNotFoundError:
        sources = None
    try:
        return _cached_uint8(name, folder, sources, lambda: _mnist_uint8(src), (28, 28))
    except DatasetNotFoundError:
        raise DatasetNotFoundError(
            f"MNIST not found: expected in {src} the four IDX files "
            f"({', '.join(MNIST_IDX_FILES.values())}, gzipped or not) or "
            f"{MNIST_CSV_FILES['train']} and {MNIST_CSV_FILES['test']}. "
            f"Fix: {_fetch_hint('mnist', folder)}") from None


def build_cache(name: str, root=None) -> Path:
    """Decode ``name`` ("cifar10" or "mnist") once and write its uint8 cache.

    Returns
    -------
    path : the cache file ``<datasets>/cache/<name>.npz``
    """
    folder = dataset_dir(root)
    if _check_name(name) == "embedded":
        raise ValueError("the embedded dataset needs no cache")
    _raw_uint8(name, folder)
    return folder / CACHE_DIR / f"{name}.npz"


# ---------------------------------------------------------------------------
# The one entry point
# ---------------------------------------------------------------------------
def _sizes(name, pool_train, pool_test, num_training, num_validation, num_test):
    d_tr, d_val, d_te = _DEFAULT_SIZES[name]
    n_tr = d_tr if num_training is None else int(num_training)
    n_val = d_val if num_validation is None else int(num_validation)
    n_te = d_te if num_test is None else int(num_test)
    for label, v in (("num_training", n_tr), ("num_validation", n_val), ("num_test", n_te)):
        if v is not None and v < 0:
            raise ValueError(f"{label} must be >= 0, got {v}")
    if n_tr is not None and n_val is not None and n_tr + n_val > pool_train:
        raise ValueError(f"{name} has {pool_train} training images: num_training + num_validation "
                         f"= {n_tr} + {n_val} is too many")
    if n_te is not None and n_te > pool_test:
        raise ValueError(f"{name} has {pool_test} test images: num_test = {n_te} is too many")
    return n_tr, n_val, n_te


def _take(idx: np.ndarray, n: int | None, what: str, name: str) -> np.ndarray:
    if n is None:
        return idx
    if n > len(idx):
        raise ValueError(f"{name} has {len(idx)} {what} images, asked for {n}")
    return idx[:n]


def _to_view(images: np.ndarray, channels_first: bool, dtype, chw: bool = False,
             out: np.ndarray | None = None) -> np.ndarray:
    """Images -> the CIFAR-shaped view in ``dtype``, C-contiguous, in one casting copy.

    Parameters
    ----------
    images : (N, 32, 32, 3), or (N, 3, 32, 32) when ``chw``, or gray (N, 32, 32); any real dtype
    channels_first : output (N, 3, 32, 32) if True, else (N, 32, 32, 3)
    out : optional C-contiguous array of the output shape to fill (``dtype`` is then its dtype)

    Returns
    -------
    X : (N, 3, 32, 32) or (N, 32, 32, 3) ``dtype``
    """
    n = len(images)
    if images.ndim == 3:  # gray: the same plane in all three channels
        src = images[:, None, :, :] if channels_first else images[:, :, :, None]
    elif chw:
        src = images if channels_first else images.transpose(0, 2, 3, 1)
    else:
        src = images.transpose(0, 3, 1, 2) if channels_first else images
    shape = (n, 3, 32, 32) if channels_first else (n, 32, 32, 3)
    if out is None:
        out = np.empty(shape, dtype=dtype)
    # In blocks of 1000 images (a transposing copy then stays in the caches); same-layout
    # copies stream.
    for i in range(0, n, 1000):
        m = min(1000, n - i)
        np.copyto(out[i:i + m], np.broadcast_to(src[i:i + m], (m,) + shape[1:]), casting="unsafe")
    return out


def load_dataset(name=None, *, num_training=None, num_validation=None, num_test=None,
                 subtract_mean=True, channels_first=True, dtype=np.float64, root=None) -> dict:
    """Load a dataset in the CIFAR-shaped view, split deterministically.

    Parameters
    ----------
    name : "embedded", "cifar10" or "mnist"; None means ``dataset_name()`` (env NNKIT_DATASET)
    num_training, num_validation, num_test : split sizes; None means the dataset's default
        (cifar10 49000/1000/1000, mnist 59000/1000/10000, embedded all: 1266/178/353)
    subtract_mean : subtract the training mean image from every split
    channels_first : X as (N, 3, 32, 32) if True, else (N, 32, 32, 3)
    dtype : floating dtype of X
    root : the datasets folder (default: ``dataset_dir()``)

    Returns
    -------
    data : dict
        ``X_train`` (N_train, 3, 32, 32), ``y_train`` (N_train,) int64, ``X_val``, ``y_val``,
        ``X_test``, ``y_test`` likewise; ``mean_image`` (3, 32, 32) (or (32, 32, 3)) in
        ``dtype`` when subtract_mean; ``class_names`` (tuple of 10 str).
        Without subtract_mean, X holds the pixel values 0..255.

    Raises
    ------
    DatasetNotFoundError : the files are missing; the message says how to fetch them
    ValueError : unknown name, or split sizes the dataset cannot give
    """
    name = _check_name(name if name is not None else dataset_name())
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise ValueError(f"dtype must be a floating type, got {dtype}")
    folder = dataset_dir(root)

    if name == "embedded":
        images, labels = load_embedded(folder)
        tr, va, te = embedded_split(labels)
        tr = _take(tr, num_training, "training", name)
        va = _take(va, num_validation, "validation", name)
        te = _take(te, num_test, "test", name)
        pick = lambda idx: (upsample_bilinear(images[idx]), labels[idx])
        parts = {"train": pick(tr), "val": pick(va), "test": pick(te)}
        classes = DIGIT_CLASSES
    else:
        raw = _raw_uint8(name, folder)
        n_tr, n_val, n_te = _sizes(name, len(raw["Xtr"]), len(raw["Xte"]),
                                   num_training, num_validation, num_test)
        Xtr, Xte = raw["Xtr"], raw["Xte"]
        if name == "mnist":
            # 28x28 -> 32x32: 2 pixels of zero padding on each side (the digit stays centred).
            pad = lambda X: np.pad(X, ((0, 0), (2, 2), (2, 2)))
            Xtr, Xte = pad(Xtr[:n_tr + n_val]), pad(Xte[:n_te])
        parts = {"train": (Xtr[:n_tr], raw["ytr"][:n_tr]),
                 "val": (Xtr[n_tr:n_tr + n_val], raw["ytr"][n_tr:n_tr + n_val]),
                 "test": (Xte[:n_te], raw["yte"][:n_te])}
        classes = CIFAR10_CLASSES if name == "cifar10" else DIGIT_CLASSES

    data = {}
    for split, (X, y) in parts.items():
        data[f"X_{split}"] = _to_view(X, channels_first, dtype, chw=(name == "cifar10"))
        data[f"y_{split}"] = np.ascontiguousarray(y, dtype=np.int64)
    if subtract_mean:
        if len(data["X_train"]) == 0:
            raise ValueError("subtract_mean needs at least one training image")
        # Accumulated in float64 whatever dtype is: the grader recomputes the same mean.
        mean = data["X_train"].mean(axis=0, dtype=np.float64).astype(dtype)
        for split in ("train", "val", "test"):
            data[f"X_{split}"] -= mean
        data["mean_image"] = mean
    data["class_names"] = classes
    return data


# ---------------------------------------------------------------------------
# Flat inputs: digits as rows of 784 numbers in [0, 1]
# ---------------------------------------------------------------------------
FLAT_DATASETS = ("mnist", "embedded")
FLAT_SIDE = 28  # MNIST's side; the embedded 8x8 digits are enlarged to it
# Validation images split off the training pool by default: MNIST's 60000 -> 50000 / 10000
# (as CS7643 does); the embedded pool of 1444 -> 1266 / 178, the sizes of its fixed split.
_FLAT_VALIDATION = {"mnist": 10000, "embedded": 178}


def flatten_and_scale(images):
    """Images of pixel values 0..255 as rows of numbers in [0, 1].

    Parameters
    ----------
    images : ndarray, (N, H, W)
        Any real dtype (uint8 as stored), values 0..255.

    Returns
    -------
    X : ndarray, (N, H * W), floating (float64 for integer images)
        Row i is image i read row by row (``reshape``'s C order), every
        value divided by 255: 0 stays 0, 255 becomes 1.
    """
    images = np.asarray(images)
    if images.ndim < 2:
        raise ValueError(f"flatten_and_scale: images must be (N, H, W); got shape {images.shape}.")
    X = None
    # TODO: Turn every image into one row of H * W numbers (reshape, which does
    # not copy) and divide by 255, so that the values lie in [0, 1]. Store the
    # result in X, in a floating dtype.
    raise NotImplementedError("flatten_and_scale: not part of this assignment (another assignment of the course asks for it)")
    return X


def split_train_val(X, y, num_validation, seed=0):
    """A random validation split: the same seed gives the same split.

    The examples are put in the random order
    ``order = np.random.RandomState(seed).permutation(N)``; the first
    ``num_validation`` of that order form the validation set, the others the
    training set, both in that order.

    Parameters
    ----------
    X : ndarray, (N, ...)
        Examples (any shape after the first axis: images or rows).
    y : ndarray, (N,)
        Labels.
    num_validation : int
        How many examples go to validation, 0 <= num_validation <= N.
    seed : int
        Seed of the shuffle.

    Returns
    -------
    X_train : ndarray, (N - num_validation, ...)
    y_train : ndarray, (N - num_validation,)
    X_val : ndarray, (num_validation, ...)
    y_val : ndarray, (num_validation,)
        Every example is in exactly one of the two sets, with its own label.
    """
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim < 1 or y.shape != (len(X),):
        raise ValueError(f"split_train_val: X must be (N, ...) and y (N,); got X {X.shape} and y {y.shape}.")
    if isinstance(num_validation, bool) or not isinstance(num_validation, (int, np.integer)) \
            or not 0 <= num_validation <= len(X):
        raise ValueError(f"split_train_val: num_validation must be an integer from 0 to N = {len(X)}; "
                         f"got {num_validation!r}.")
    X_train, y_train, X_val, y_val = None, None, None, None
    # TODO: Draw the random order of the N examples with
    # np.random.RandomState(seed).permutation, give its first num_validation
    # indices to the validation set and the rest to the training set. Index X
    # and y with the same indices, so that every label stays with its example.
    raise NotImplementedError("split_train_val: not part of this assignment (another assignment of the course asks for it)")
    return X_train, y_train, X_val, y_val


def load_flat_dataset(name=None, *, num_training=None, num_validation=None, num_test=None,
                      seed=0, root=None) -> dict:
    """Digits as flat vectors in [0, 1], with a random validation split.

    - ``"mnist"``: MNIST's 60000 training images (the IDX files, gzipped or not,
      or ``mnist_train.csv`` / ``mnist_test.csv`` in pjreddie's CSV format; read
      by ``load_mnist_idx`` / ``load_mnist_csv`` and cached) are split by
      ``split_train_val`` into 50000 train and 10000 validation images; the test
      set is MNIST's 10000 test images.
    - ``"embedded"``: the 1797 embedded 8x8 digits, enlarged to 28x28 by
      ``upsample_bilinear``. The images of the fixed split's train and
      validation parts (1444, see ``embedded_split``) are split by
      ``split_train_val`` into 1266 train and 178 validation images; the test set
      is the fixed test part (353), so it never depends on the seed.

    Every image becomes a row of 28 * 28 = 784 numbers in [0, 1]
    (``flatten_and_scale``); no mean is subtracted.

    Parameters
    ----------
    name : "mnist" or "embedded"; None means ``dataset_name()`` (env NNKIT_DATASET)
    num_training : int or None
        Keep only the first this many training images (after the shuffle: a
        random subset); None keeps all.
    num_validation : int or None
        Size of the validation set; None: 10000 (mnist), 178 (embedded).
    num_test : int or None
        Keep only the first this many test images; None keeps all.
    seed : int
        Seed of the validation split.
    root : the datasets folder (default: ``dataset_dir()``)

    Returns
    -------
    data : dict
        ``X_train`` (N_train, 784) float64, ``y_train`` (N_train,) int64, ``X_val``,
        ``y_val``, ``X_test``, ``y_test`` likewise; ``class_names`` (10 str);
        ``image_shape`` (28, 28), the shape to reshape a row into to see it;
        ``name``, the dataset's.

    Raises
    ------
    DatasetNotFoundError : MNIST's files are missing; the message says how to fetch them
    ValueError : another dataset, or sizes the dataset cannot give
    """
    name = _check_name(name if name is not None else dataset_name())
    if name not in FLAT_DATASETS:
        raise ValueError(f"load_flat_dataset reads digits: {' or '.join(map(repr, FLAT_DATASETS))}, not "
                         f"{name!r}. Choose one with DATASET in a notebook's first cell, the environment "
                         "variable NNKIT_DATASET, or the argument `name`.")
    folder = dataset_dir(root)
    if name == "embedded":
        images, labels = load_embedded(folder)
        tr, va, te = embedded_split(labels)
        pool = np.sort(np.concatenate([tr, va]))  # file order, so the seed alone decides the split
        pool_images, pool_labels = upsample_bilinear(images[pool], FLAT_SIDE), labels[pool]
        test_images, test_labels = upsample_bilinear(images[te], FLAT_SIDE), labels[te]
    else:
        raw = _raw_uint8("mnist", folder)
        pool_images, pool_labels, test_images, test_labels = raw["Xtr"], raw["ytr"], raw["Xte"], raw["yte"]

    n_val = _FLAT_VALIDATION[name] if num_validation is None else num_validation
    if isinstance(n_val, bool) or not isinstance(n_val, (int, np.integer)) or not 0 <= n_val <= len(pool_images):
        raise ValueError(f"{name} has {len(pool_images)} training images to split: num_validation must be "
                         f"an integer from 0 to {len(pool_images)}, got {n_val!r}")
    # Split the images as stored (uint8 for MNIST: an eighth of the memory), then scale each part.
    parts = split_train_val(pool_images, pool_labels, int(n_val), seed)
    if not (isinstance(parts, tuple) and len(parts) == 4 and all(p is not None for p in parts)):
        raise ValueError("split_train_val must return X_train, y_train, X_val, y_val (four arrays); "
                         "see its TODO in nnkit/data_utils.py")
    X_tr, y_tr, X_va, y_va = parts
    n_tr = _count(num_training, len(X_tr), "num_training", name)
    X_tr, y_tr = X_tr[:n_tr], y_tr[:n_tr]
    n_te = _count(num_test, len(test_images), "num_test", name)
    X_te, y_te = test_images[:n_te], test_labels[:n_te]

    data = {}
    for split, (X, y) in {"train": (X_tr, y_tr), "val": (X_va, y_va), "test": (X_te, y_te)}.items():
        data[f"X_{split}"] = flatten_and_scale(X)
        data[f"y_{split}"] = np.ascontiguousarray(y, dtype=np.int64)
    data["class_names"] = DIGIT_CLASSES
    data["image_shape"] = (FLAT_SIDE, FLAT_SIDE)
    data["name"] = name
    return data


def _count(n, available, what, name) -> int:
    """n (None: all ``available``), checked to be an integer from 0 to available."""
    if n is None:
        return available
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 0 <= n <= available:
        raise ValueError(f"{name}: {what} must be an integer from 0 to {available}, got {n!r}")
    return int(n)
