"""Image features: HOG and a hue histogram, per image or batched.

``hog_feature`` and ``color_histogram_hsv`` are the CS231n definitions, one
image at a time, written to be read. ``extract_features`` applies a list of such
per-image functions to a stack of images; for these two functions it runs an
equivalent batched numpy version (the same values to ~1e-13, about 10x
faster), and it falls back to the per-image loop for any other function.

Differences from the CS231n starter code, on purpose:

- gray is ``0.299 R + 0.587 G + 0.114 B`` (ITU-R BT.601; the starter's 0.144 is a typo);
- gray images (H, W) work (the starter crashed on them);
- no scipy: the cell means are computed directly.

Kept from the starter, so results carry over: forward differences, orientation
``arctan2(gy, gx + 1e-15)`` in degrees ``+ 90``, 9 bins of 20 degrees over
(0, 180) (a gradient whose orientation falls outside, i.e. one pointing left,
gx < 0, is not counted), the MEAN magnitude of each 8x8 cell per bin,
no block normalisation.
"""
from __future__ import annotations

import numpy as np

GRAY_WEIGHTS = np.array([0.299, 0.587, 0.114])
HOG_ORIENTATIONS = 9
HOG_CELL = 8
_BIN_DEG = 180.0 / HOG_ORIENTATIONS  # 20.0 exactly


def rgb2gray(rgb):
    """Convert RGB image(s) to gray.

    Parameters
    ----------
    rgb : (..., 3) array (extra channels after the third are ignored)

    Returns
    -------
    gray : (...) float64, ``0.299 R + 0.587 G + 0.114 B``
    """
    # np.dot, not @: the batched path relies on np.dot giving the same bits per image.
    return np.dot(rgb[..., :3], GRAY_WEIGHTS)


def hog_feature(im):
    """Histogram of oriented gradients of one image (the CS231n variant).

    Gradients are forward differences (the last column of gx and last row of gy
    are 0), magnitude ``sqrt(gx**2 + gy**2)``, orientation
    ``arctan2(gy, gx + 1e-15)`` in degrees plus 90. Bin ``i`` (0..8) holds the
    pixels with ``20 i <= orientation < 20 (i + 1)`` and ``orientation > 0``.
    Each feature is the mean magnitude over one 8x8 cell of the pixels in one
    bin; only whole cells count.

    Parameters
    ----------
    im : (H, W, C) RGB image (C >= 3) or (H, W) gray image, values 0..255

    Returns
    -------
    feat : (W // 8 * H // 8 * 9,) float64, ordered (cell column, cell row, bin)
        (144 values for 32x32)
    """
    im = np.asarray(im)
    image = rgb2gray(im) if im.ndim == 3 else np.asarray(im, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError(f"hog_feature expects one image (H, W, C) or (H, W), got shape {im.shape}")
    H, W = image.shape
    ch, cw = H // HOG_CELL, W // HOG_CELL

    gx = np.zeros(image.shape)
    gy = np.zeros(image.shape)
    gx[:, :-1] = np.diff(image, n=1, axis=1)
    gy[:-1, :] = np.diff(image, n=1, axis=0)
    grad_mag = np.sqrt(gx ** 2 + gy ** 2)
    grad_ori = np.arctan2(gy, (gx + 1e-15)) * (180 / np.pi) + 90

    hist = np.zeros((cw, ch, HOG_ORIENTATIONS))
    for i in range(HOG_ORIENTATIONS):
        in_bin = (grad_ori >= _BIN_DEG * i) & (grad_ori < _BIN_DEG * (i + 1)) & (grad_ori > 0)
        mag = np.where(in_bin, grad_mag, 0.0)[: ch * HOG_CELL, : cw * HOG_CELL]
        cell_mean = mag.reshape(ch, HOG_CELL, cw, HOG_CELL).mean(axis=(1, 3))  # (ch, cw)
        hist[:, :, i] = cell_mean.T
    return hist.ravel()


def color_histogram_hsv(im, nbin=10, xmin=0, xmax=255, normalized=True):
    """Histogram of the hue of one image.

    The image is scaled to 0..1 by ``xmax``, converted with
    ``matplotlib.colors.rgb_to_hsv``, and the hue (scaled back by ``xmax``) is
    binned over ``np.linspace(xmin, xmax, nbin + 1)`` with ``np.histogram``'s
    edges (each bin half-open, the last one closed).

    Parameters
    ----------
    im : (H, W, C) RGB image (C >= 3) or (H, W) gray image, values xmin..xmax
    nbin : number of bins
    xmin, xmax : value range
    normalized : if True the histogram sums to 1 (fraction of pixels per bin); if
        False it holds the pixel counts times the bin width (as the CS231n code does)

    Returns
    -------
    hist : (nbin,) float64
    """
    import matplotlib.colors  # imported on use: it costs ~0.1 s

    im = np.asarray(im)
    if im.ndim == 2:  # gray: all three channels equal, hue 0
        im = np.repeat(im[:, :, None], 3, axis=2)
    bins = np.linspace(xmin, xmax, nbin + 1)
    hsv = matplotlib.colors.rgb_to_hsv(im[..., :3] / xmax) * xmax
    imhist, bin_edges = np.histogram(hsv[:, :, 0], bins=bins, density=normalized)
    imhist = imhist * np.diff(bin_edges)
    return imhist


def extract_features(imgs, feature_fns, verbose=False, *, batched=True, chunk=128):
    """Apply feature functions to a stack of images and concatenate the results.

    Parameters
    ----------
    imgs : (N, H, W, C) RGB images or (N, H, W) gray images
    feature_fns : list of functions, each taking one image and returning a 1-D
        array (of the same length for every image). ``hog_feature`` and
        ``color_histogram_hsv`` (also as ``functools.partial(color_histogram_hsv,
        nbin=...)``) are recognised and run batched, with the same values;
        any other function (a lambda too) runs image by image.
    verbose : show a tqdm progress bar
    batched : False forces the per-image loop for every function (for comparison)
    chunk : images per batched step (bounds the temporary memory)

    Returns
    -------
    features : (N, F_1 + ... + F_k) float64, the columns of each function in order
    """
    imgs = np.asarray(imgs)
    if imgs.ndim not in (3, 4):
        raise ValueError(f"extract_features expects images (N, H, W, C) or (N, H, W), "
                         f"got shape {imgs.shape}")
    num_images = imgs.shape[0]
    if num_images == 0:
        return np.zeros((0, 0))

    # Size each function's output on the first image, as the starter does.
    dims = []
    for fn in feature_fns:
        f0 = np.asarray(fn(imgs[0]))
        if f0.ndim != 1:
            raise ValueError(f"feature function {getattr(fn, '__name__', fn)!r} must return a "
                             f"1-D array, returned shape {f0.shape}")
        dims.append(f0.size)
    out = np.zeros((num_images, sum(dims)))

    plans = []  # (columns, batched function or None, per-image function)
    start = 0
    for fn, d in zip(feature_fns, dims):
        plans.append((slice(start, start + d), _batched_version(fn) if batched else None, fn))
        start += d

    bar = None
    if verbose:
        from tqdm.auto import tqdm
        bar = tqdm(total=num_images, desc="extracting features", unit="img")
    for s in range(0, num_images, chunk):
        block = imgs[s: s + chunk]
        for cols, batch_fn, fn in plans:
            if batch_fn is not None:
                out[s: s + len(block), cols] = batch_fn(block)
            else:
                for j in range(len(block)):
                    out[s + j, cols] = fn(block[j]).squeeze()
        if bar is not None:
            bar.update(len(block))
    if bar is not None:
        bar.close()
    return out


# ---------------------------------------------------------------------------
# Batched versions (the same values as the per-image functions)
# ---------------------------------------------------------------------------
def _batched_version(fn):
    """The batched equivalent of a known per-image function, or None."""
    import functools

    args, kwargs = (), {}
    if isinstance(fn, functools.partial):
        fn, args, kwargs = fn.func, fn.args, dict(fn.keywords)
    if fn is hog_feature and not args and not kwargs:
        return hog_features_batch
    if fn is color_histogram_hsv:
        try:
            import inspect
            bound = inspect.signature(color_histogram_hsv).bind(None, *args, **kwargs)
        except TypeError:
            return None
        bound.apply_defaults()
        params = dict(bound.arguments)
        params.pop("im")
        return lambda block: color_histograms_hsv_batch(block, **params)
    return None


def hog_features_batch(imgs):
    """``hog_feature`` of every image at once.

    Parameters
    ----------
    imgs : (N, H, W, C) RGB or (N, H, W) gray

    Returns
    -------
    feats : (N, W // 8 * H // 8 * 9) float64, row n equal to ``hog_feature(imgs[n])``
        to rounding (~1e-13)
    """
    imgs = np.asarray(imgs)
    gray = _gray_batch(imgs) if imgs.ndim == 4 else imgs.astype(np.float64, copy=False)
    n, H, W = gray.shape
    ch, cw = H // HOG_CELL, W // HOG_CELL

    gx = np.zeros(gray.shape)
    gy = np.zeros(gray.shape)
    np.subtract(gray[:, :, 1:], gray[:, :, :-1], out=gx[:, :, :-1])
    np.subtract(gray[:, 1:, :], gray[:, :-1, :], out=gy[:, :-1, :])
    mag = np.sqrt(gx ** 2 + gy ** 2)  # the same expression as the per-image version
    gx += 1e-15
    b = _orientation_bins(gx, gy)  # 0..8, or 9 for a pixel the definition drops

    # One bincount over (image, cell column, cell row, slot): 10 slots per cell, the
    # 10th collecting the dropped pixels; pixels outside whole cells go to a spare cell.
    rows = np.arange(H) // HOG_CELL
    cols = np.arange(W) // HOG_CELL
    cell = cols[None, :] * ch + rows[:, None]                           # (H, W)
    cell[(rows >= ch)[:, None] | (cols >= cw)[None, :]] = ch * cw       # partial cells
    slots = HOG_ORIENTATIONS + 1
    per_img = (ch * cw + 1) * slots
    b += cell * slots
    b += (np.arange(n, dtype=np.intp) * per_img)[:, None, None]
    sums = np.bincount(b.ravel(), weights=mag.ravel(), minlength=n * per_img)
    sums = sums.reshape(n, ch * cw + 1, slots)[:, : ch * cw, :HOG_ORIENTATIONS]
    return sums.reshape(n, -1) / (HOG_CELL * HOG_CELL)


# The edges of the orientation bins 20 i, as |gy / gx| = tan(|20 i - 90| degrees):
# the bins are symmetric around 90 degrees (gx > 0, gy = 0).
_TAN_EDGES = np.tan(np.deg2rad([10.0, 30.0, 50.0, 70.0]))
# A pixel is binned by the exact formula when |gy / gx| is within this relative distance
# of an edge (rounding in the formula is ~1e-15), or when the gradient is near vertical,
# where the formula's last bits decide whether orientation 0 or 180 is reached.
_NEAR_EDGE = 1e-7
_NEAR_VERTICAL = 1e7
# For |gy / gx| in step k (between edges k - 1 and k): the safe interval, shrunk by _NEAR_EDGE.
_SAFE_LO = np.concatenate([[-np.inf], _TAN_EDGES]) * (1 + _NEAR_EDGE)
_SAFE_HI = np.concatenate([_TAN_EDGES, [np.inf]]) * (1 - _NEAR_EDGE)


def _orientation_bins(gx1, gy):
    """Orientation bin of every pixel, as ``hog_feature`` decides it.

    ``hog_feature`` bins ``ori = arctan2(gy, gx1) * (180 / pi) + 90`` into
    ``[20 i, 20 (i + 1))`` and drops ``ori <= 0`` and ``ori >= 180``. arctan2 is
    the slowest step, so the bin is read from ``|gy / gx1|`` against the tangents
    of the edges, and the exact formula is evaluated only for the few pixels
    close to an edge or to vertical, where the comparison of its rounded result
    decides.

    Parameters
    ----------
    gx1 : (N, H, W) float64, the x gradient plus 1e-15
    gy : (N, H, W) float64

    Returns
    -------
    bins : (N, H, W) intp, 0..8, or 9 where the pixel is dropped
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.abs(gy / gx1)
    k = (a >= _TAN_EDGES[0]).astype(np.intp)  # 0..4: |ori - 90| in 20-degree steps
    for edge in _TAN_EDGES[1:]:
        k += a >= edge
    uncertain = (a < _SAFE_LO[k]) | (a > _SAFE_HI[k]) | ~(a <= _NEAR_VERTICAL)  # nan, inf too
    # Away from the edges: gx1 > 0 gives orientations strictly inside (0, 180), gy >= 0
    # the upper half (bins 4 + k), gy < 0 the lower half (bins 4 - k); gx1 < 0 gives
    # orientations outside (0, 180), which the definition drops.
    # (integer arithmetic on masks: 3x faster than np.where with its random branches)
    bins = k * (1 - 2 * (gy < 0))
    bins += 4
    bins += (HOG_ORIENTATIONS - bins) * (gx1 < 0)
    where = np.flatnonzero(uncertain)
    if where.size:
        ori = np.arctan2(gy.ravel()[where], gx1.ravel()[where]) * (180 / np.pi) + 90
        exact = np.floor(ori * (1 / _BIN_DEG))
        exact -= ori < _BIN_DEG * exact                       # exact edges 20 i
        exact += ori >= _BIN_DEG * (exact + 1)
        exact[~((ori > 0) & (ori < 180))] = HOG_ORIENTATIONS
        bins.ravel()[where] = exact.astype(np.intp)
    return bins


def _gray_batch(imgs):
    """``rgb2gray`` of a stack of images, with the same bits as ``np.dot`` per image.

    ``np.dot`` of an (H, W, 3) image with the weights is a BLAS call whose rounding
    depends on the BLAS build. Where it computes ``(r w0 + g w1) + b w2`` in plain
    double arithmetic (checked once per image size on random probes), the same
    expression on whole planes is 5x faster; otherwise ``np.dot`` itself is used.

    Parameters
    ----------
    imgs : (N, H, W, C) with C >= 3

    Returns
    -------
    gray : (N, H, W) float64
    """
    rgb = imgs[..., :3]
    if _plain_dot_matches(imgs.shape[1:3]):
        w0, w1, w2 = GRAY_WEIGHTS
        return (rgb[..., 0] * w0 + rgb[..., 1] * w1) + rgb[..., 2] * w2
    return np.dot(rgb, GRAY_WEIGHTS)


_PLAIN_DOT = {}  # (H, W) -> whether np.dot per image equals the plain expression


def _plain_dot_matches(hw):
    hw = tuple(hw)
    if not isinstance(_PLAIN_DOT, dict):  # tests force one answer
        return bool(_PLAIN_DOT)
    if hw not in _PLAIN_DOT:
        rng = np.random.default_rng(12345)
        probe = np.concatenate([rng.uniform(0, 255, (3,) + hw + (3,)),
                                rng.integers(0, 256, (3,) + hw + (3,)).astype(np.float64),
                                rng.random((3,) + hw + (3,))])
        w0, w1, w2 = GRAY_WEIGHTS
        plain = (probe[..., 0] * w0 + probe[..., 1] * w1) + probe[..., 2] * w2
        _PLAIN_DOT[hw] = all(np.array_equal(np.dot(p, GRAY_WEIGHTS), q) for p, q in zip(probe, plain))
    return _PLAIN_DOT[hw]


def color_histograms_hsv_batch(imgs, nbin=10, xmin=0, xmax=255, normalized=True):
    """``color_histogram_hsv`` of every image at once.

    Parameters
    ----------
    imgs : (N, H, W, C) RGB or (N, H, W) gray

    Returns
    -------
    hists : (N, nbin) float64, row n equal to ``color_histogram_hsv(imgs[n], ...)``
    """
    imgs = np.asarray(imgs)
    n = imgs.shape[0]
    if imgs.ndim == 3:  # gray: the three channels equal
        imgs = imgs[..., None]
        rgb = np.broadcast_to(imgs / xmax, imgs.shape[:3] + (3,))
    else:
        rgb = imgs[..., :3] / xmax
    hue = _hue(rgb)
    hue *= xmax
    hue = hue.reshape(n, -1)

    # np.histogram's rule for equal bins: index by scaling, then fix by the exact edges;
    # values equal to the last edge go to the last bin, values outside are dropped.
    edges = np.linspace(xmin, xmax, nbin + 1)
    # hue lies in [0, xmax): values can fall outside the edges only when xmin > 0
    inside = (hue >= edges[0]) & (hue <= edges[-1]) if edges[0] > 0 or edges[-1] < xmax else None
    idx = ((hue - edges[0]) * (nbin / (edges[-1] - edges[0]))).astype(np.intp)
    np.clip(idx, 0, nbin - 1, out=idx)
    idx -= (hue < edges[idx]) & (idx > 0)
    idx += (hue >= edges[idx + 1]) & (idx < nbin - 1)
    idx += (np.arange(n, dtype=np.intp) * nbin)[:, None]
    idx = idx.ravel() if inside is None else idx[inside]
    counts = np.bincount(idx, minlength=n * nbin).reshape(n, nbin).astype(np.float64)
    # color_histogram_hsv multiplies np.histogram's result by the bin widths; with
    # density=True that result is counts / width / total. The same operations, in order.
    width = np.diff(edges)
    if not normalized:
        return counts * width
    with np.errstate(invalid="ignore", divide="ignore"):
        return counts / width / counts.sum(axis=1, keepdims=True) * width


def _hue(arr):
    """The hue channel of ``matplotlib.colors.rgb_to_hsv(arr)``, bit for bit, without the
    saturation and value channels and the fancy indexing (5x faster).

    Parameters
    ----------
    arr : (..., 3) RGB values in [0, 1]

    Returns
    -------
    hue : (...) in [0, 1), float32 or wider like rgb_to_hsv
    """
    arr = np.asarray(arr)
    dtype = np.promote_types(arr.dtype, np.float32)
    # Contiguous channel planes (one reordering copy) make every later pass faster.
    planes = np.empty((3,) + arr.shape[:-1], dtype=dtype)
    np.copyto(planes, np.moveaxis(arr, -1, 0))
    r, g, b = planes
    arr_max = np.maximum(np.maximum(r, g), b)
    arr_min = np.minimum(np.minimum(r, g), b)
    if arr.size and (arr_max.max() > 1 or arr_min.min() < 0):
        raise ValueError("Input array must be in the range [0, 1]: the images must hold values "
                         f"xmin..xmax, found {arr_min.min() * 1:g}..{arr_max.max() * 1:g} after "
                         "dividing by xmax")
    delta = arr_max - arr_min
    ipos = delta > 0
    safe = delta + ~ipos                     # delta, or 1 where delta == 0 (exact)
    # The same expressions as rgb_to_hsv; blue overrides green overrides red.
    # Selected by 0/1 masks (exact: one mask is 1, the products of the others are zeros);
    # faster than np.where's branches.
    is_b = b == arr_max
    is_g = (g == arr_max) & ~is_b
    is_r = ~(is_b | is_g)
    out = (g - b) / safe
    out *= is_r
    out += (2. + (b - r) / safe) * is_g
    out += (4. + (r - g) / safe) * is_b
    out *= ipos                              # 0 where delta == 0 (a -0.0 bins like 0.0)
    out /= 6.0
    # rgb_to_hsv then takes `% 1.0`; here out >= -1/6, and numpy's float modulo of a
    # negative x by 1.0 is x + 1.0.
    out += out < 0
    return out


# ---------------------------------------------------------------------------
# The features dataset of 03_features
# ---------------------------------------------------------------------------
FEATURES_VERSION = 1


def load_feature_dataset(name=None, *, nbin=10, verbose=False) -> dict:
    """HOG + hue-histogram features of a dataset's images, standardised.

    The features of ``load_dataset(name, subtract_mean=False, channels_first=False)``
    (raw pixels 0..255): ``hog_feature`` (144 values) then
    ``color_histogram_hsv(nbin=nbin)``, each column standardised with the
    training mean and standard deviation (a standard deviation of 0 counts as 1).
    The result is cached in ``<datasets>/cache/`` so a rerun is fast.

    Parameters
    ----------
    name : "embedded", "cifar10" or "mnist"; None means ``dataset_name()``
    nbin : bins of the hue histogram
    verbose : show a progress bar while extracting

    Returns
    -------
    data : dict with ``X_train`` (N_train, 144 + nbin) float64, ``y_train`` (N_train,) int64,
        ``X_val``, ``y_val``, ``X_test``, ``y_test`` likewise
    """
    import functools
    import json

    from nnkit import data_utils as du

    name = du._check_name(name if name is not None else du.dataset_name())
    folder = du.dataset_dir()
    source = _dataset_signature(name, folder)
    key = json.dumps({"version": FEATURES_VERSION, "name": name, "nbin": int(nbin), "source": source},
                     sort_keys=True)
    cache = folder / du.CACHE_DIR / f"features_{name}_{int(nbin)}.npz"
    splits = ("train", "val", "test")
    if cache.is_file():
        try:
            d = du._read_npz_verified(cache)
            if str(d.pop("__key__")[()]) == key:
                return {k: d[k] for s in splits for k in (f"X_{s}", f"y_{s}")}
        except Exception:  # damaged or foreign cache: recomputed below
            pass

    raw = du.load_dataset(name, subtract_mean=False, channels_first=False)
    fns = [hog_feature, functools.partial(color_histogram_hsv, nbin=nbin)]
    feats = {s: extract_features(raw[f"X_{s}"], fns, verbose=verbose) for s in splits}
    mean = feats["train"].mean(axis=0, keepdims=True)
    std = feats["train"].std(axis=0, keepdims=True)
    std[std == 0] = 1.0
    data = {}
    for s in splits:
        data[f"X_{s}"] = (feats[s] - mean) / std
        data[f"y_{s}"] = raw[f"y_{s}"]
    try:
        du._write_npz_atomic(cache, {**data, "__key__": np.array(key)})
    except OSError:
        pass  # read-only datasets folder: no cache
    return data


def _dataset_signature(name, folder):
    """Sizes and modification times of the files a dataset is read from (or its cache)."""
    from nnkit import data_utils as du

    if name == "embedded":
        paths = [folder / du.EMBEDDED_FILE]
    elif name == "cifar10":
        paths = [folder / du.CIFAR_DIR / f for f in du.CIFAR_TRAIN_FILES + (du.CIFAR_TEST_FILE,)]
    else:
        try:
            paths = du._mnist_sources(folder / du.MNIST_DIR)[1]
        except du.DatasetNotFoundError:
            paths = []
    paths = [p for p in paths if p.is_file()] or [folder / du.CACHE_DIR / f"{name}.npz"]
    return [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in paths if p.is_file()]
