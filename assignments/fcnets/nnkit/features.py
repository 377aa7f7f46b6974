"""Image features: HOG and a hue histogram, of one image or of a batch.

``hog_feature`` and ``color_histogram_hsv`` are the CS231n definitions. Given
one image they compute it as written below, to be read; given a batch
(N, H, W, C) they run an equivalent batched numpy version with the same values
(to ~1e-14, about 15x faster per image). ``extract_features`` applies a list of
feature functions to a stack of images: it tries each function once on a small
batch and, where the result equals the per-image one, calls it on whole
batches; otherwise (a function that takes only one image) it loops over the
images. So ``[hog_feature, lambda img: color_histogram_hsv(img, nbin=10)]`` is
as fast as the functions themselves.

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
    # np.dot, as the CS231n code: its bits per pixel (BLAS-dependent) are what the batched
    # path reproduces (see _gray_method); @ rounds differently.
    return np.dot(rgb[..., :3], GRAY_WEIGHTS)


def _is_batch(im):
    """A batch (N, H, W, C) or (N, H, W), as opposed to one image (H, W, C) or (H, W).

    A 3-D array is one colour image when its last axis holds 3 or 4 channels
    (RGB, RGBA), and a batch of gray images otherwise.
    """
    return im.ndim == 4 or (im.ndim == 3 and im.shape[-1] > 4)


def hog_feature(im):
    """Histogram of oriented gradients of one image (the CS231n variant), or of each image of a batch.

    Gradients are forward differences (the last column of gx and last row of gy
    are 0), magnitude ``sqrt(gx**2 + gy**2)``, orientation
    ``arctan2(gy, gx + 1e-15)`` in degrees plus 90. Bin ``i`` (0..8) holds the
    pixels with ``20 i <= orientation < 20 (i + 1)`` and ``orientation > 0``.
    Each feature is the mean magnitude over one 8x8 cell of the pixels in one
    bin; only whole cells count.

    Parameters
    ----------
    im : (H, W, C) RGB image (C = 3 or 4, a 4th channel is ignored) or (H, W) gray
        image, values 0..255; or a batch of them, (N, H, W, C) or (N, H, W)

    Returns
    -------
    feat : (W // 8 * H // 8 * 9,) float64, ordered (cell column, cell row, bin)
        (144 values for 32x32); for a batch (N, W // 8 * H // 8 * 9), row n equal
        to ``hog_feature(im[n])`` to rounding (~1e-14)
    """
    im = np.asarray(im)
    if _is_batch(im):
        return hog_features_batch(im)
    image = rgb2gray(im) if im.ndim == 3 else np.asarray(im, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError(f"hog_feature expects one image (H, W, C) or (H, W), or a batch "
                         f"(N, H, W, C), got shape {im.shape}")
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
    """Histogram of the hue of one image, or of each image of a batch.

    The image is scaled to 0..1 by ``xmax``, converted with
    ``matplotlib.colors.rgb_to_hsv``, and the hue (scaled back by ``xmax``) is
    binned over ``np.linspace(xmin, xmax, nbin + 1)`` with ``np.histogram``'s
    edges (each bin half-open, the last one closed).

    Parameters
    ----------
    im : (H, W, C) RGB image (C = 3 or 4, a 4th channel is ignored) or (H, W) gray
        image, values xmin..xmax; or a batch of them, (N, H, W, C) or (N, H, W)
    nbin : number of bins
    xmin, xmax : value range
    normalized : if True the histogram sums to 1 (fraction of pixels per bin); if
        False it holds the pixel counts times the bin width (as the CS231n code does)

    Returns
    -------
    hist : (nbin,) float64; for a batch (N, nbin), row n equal to
        ``color_histogram_hsv(im[n], ...)``
    """
    im = np.asarray(im)
    if _is_batch(im):
        return color_histograms_hsv_batch(im, nbin=nbin, xmin=xmin, xmax=xmax, normalized=normalized)
    import matplotlib.colors  # imported on use: it costs ~0.1 s

    if im.ndim == 2:  # gray: all three channels equal, hue 0
        im = np.repeat(im[:, :, None], 3, axis=2)
    bins = np.linspace(xmin, xmax, nbin + 1)
    hsv = matplotlib.colors.rgb_to_hsv(im[..., :3] / xmax) * xmax
    imhist, bin_edges = np.histogram(hsv[:, :, 0], bins=bins, density=normalized)
    imhist = imhist * np.diff(bin_edges)
    return imhist


def extract_features(imgs, feature_fns, verbose=False, *, batched=True, chunk=1024):
    """Apply feature functions to a stack of images and concatenate the results.

    Parameters
    ----------
    imgs : (N, H, W, C) RGB images or (N, H, W) gray images
    feature_fns : list of functions, each taking one image and returning a 1-D
        array (of the same length for every image). A function that also takes
        a batch of images and returns one row per image (as ``hog_feature`` and
        ``color_histogram_hsv`` do, also inside a lambda or a
        ``functools.partial``) is called on whole batches: each function is
        tried once on the first few images, and used batched only when its rows
        equal its per-image results (to 1e-12); any other function runs image
        by image.
    verbose : show a tqdm progress bar
    batched : False forces the per-image loop for every function (for comparison)
    chunk : images per call of a batched function (bounds the memory a
        function's own temporaries take)

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
    firsts = []
    for fn in feature_fns:
        f0 = np.asarray(fn(imgs[0]))
        if f0.ndim != 1:
            raise ValueError(f"feature function {getattr(fn, '__name__', fn)!r} must return a "
                             f"1-D array, returned shape {f0.shape}")
        firsts.append(f0)
    out = np.zeros((num_images, sum(f0.size for f0 in firsts)))

    plans = []  # (columns, function, whether it takes a batch)
    start = 0
    for fn, f0 in zip(feature_fns, firsts):
        plans.append((slice(start, start + f0.size), fn, batched and _takes_batches(fn, imgs, f0)))
        start += f0.size

    bar = None
    if verbose:
        from tqdm.auto import tqdm
        bar = tqdm(total=num_images, desc="extracting features", unit="img")
    for s in range(0, num_images, chunk):
        block = imgs[s: s + chunk]
        for cols, fn, batch in plans:
            rows = np.asarray(fn(block)) if batch else None
            if rows is not None and rows.shape == (len(block), cols.stop - cols.start):
                out[s: s + len(block), cols] = rows
            else:
                for j in range(len(block)):
                    out[s + j, cols] = np.asarray(fn(block[j])).squeeze()
        if bar is not None:
            bar.update(len(block))
    if bar is not None:
        bar.close()
    return out


_PROBE_IMAGES = 3


def _takes_batches(fn, imgs, first):
    """Whether ``fn(imgs[:k])`` returns the k rows ``fn(imgs[j])``, j < k (to 1e-12).

    ``first`` is ``fn(imgs[0])``. A function written for one image fails here
    (an exception, a result of another shape or other values) and is then
    called image by image.
    """
    k = min(_PROBE_IMAGES, len(imgs))
    if k < 2:
        return False
    import warnings

    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            rows = np.asarray(fn(imgs[:k]), dtype=np.float64)
    except Exception:
        return False
    if rows.shape != (k, first.size):
        return False
    want = np.stack([first] + [np.asarray(fn(imgs[j])).ravel() for j in range(1, k)])
    return bool(np.allclose(rows, want, rtol=1e-12, atol=1e-12, equal_nan=True))


# ---------------------------------------------------------------------------
# Batched versions (the same values as the per-image definitions)
# ---------------------------------------------------------------------------
# Each works through the batch in blocks of _BLOCK images, in work arrays allocated
# once per call: one 32x32 float64 plane of a block is 512 KB, so a block's planes stay
# in the CPU caches, and the steps do not allocate (and page-fault) fresh memory for
# every block. (Fresh pages cost more than the arithmetic here.)
_BLOCK = 64


def hog_features_batch(imgs):
    """``hog_feature`` of every image of a batch.

    Parameters
    ----------
    imgs : (N, H, W, C) RGB or (N, H, W) gray

    Returns
    -------
    feats : (N, W // 8 * H // 8 * 9) float64, row n equal to ``hog_feature(imgs[n])``
        to rounding (~1e-14)
    """
    imgs = np.asarray(imgs)
    if imgs.ndim not in (3, 4):
        raise ValueError(f"hog_features_batch expects images (N, H, W, C) or (N, H, W), "
                         f"got shape {imgs.shape}")
    n, H, W = imgs.shape[:3]
    ch, cw = H // HOG_CELL, W // HOG_CELL
    feats = np.empty((n, cw * ch * HOG_ORIENTATIONS))
    if n == 0:
        return feats
    method = _gray_method((H, W)) if imgs.ndim == 4 else None
    work = np.empty((4, min(n, _BLOCK), H, W))
    for s in range(0, n, _BLOCK):
        block = imgs[s: s + _BLOCK]
        gray, gx, gy, mag = work[:, : len(block)]
        if method is None:
            gray[...] = block
        else:
            _gray_batch(block, gray, mag, method)
        feats[s: s + len(block)] = _hog_of_gray(gray, gx, gy, mag)
    return feats


def _hog_of_gray(gray, gx, gy, mag):
    """HOG of a block of gray images (n, H, W); gx, gy, mag are work arrays of its shape.

    The same operations as ``hog_feature`` on each pixel; the orientation bin is
    decided by ``_orientation_bins`` (and ``_exact_bins`` where that is not
    certain), the per-cell sums by one ``bincount``. Overwrites gray.
    """
    n, H, W = gray.shape
    ch, cw = H // HOG_CELL, W // HOG_CELL
    # Forward differences on the flattened block; the last column (row) of each image,
    # which the flat difference fills with the step to the next row (image), is 0.
    g1, gx1, gy1 = gray.reshape(-1), gx.reshape(-1), gy.reshape(-1)
    np.subtract(g1[1:], g1[:-1], out=gx1[:-1])
    gx[:, :, -1] = 0
    np.subtract(g1[W:], g1[:-W], out=gy1[:-W])
    gy[:, -1, :] = 0
    np.multiply(gx, gx, out=mag)        # sqrt(gx ** 2 + gy ** 2), as hog_feature
    mag += np.multiply(gy, gy, out=gray)
    np.sqrt(mag, out=mag)
    gx += 1e-15
    slot, uncertain = _orientation_bins(gx, gy, gray)  # int8 0..8, or 9 for a dropped pixel
    where = np.flatnonzero(uncertain)
    if where.size:
        slot.reshape(-1)[where] = _exact_bins(gx1[where], gy1[where])

    # One bincount over (image, cell, slot), 10 slots per cell (the 10th collects the
    # dropped pixels); pixels outside whole cells go to a spare cell.
    index = np.add(_cell_index(n, H, W), slot)
    per_img = (ch * cw + 1) * _SLOTS
    sums = np.bincount(index.reshape(-1), weights=mag.reshape(-1), minlength=n * per_img)
    sums = sums.reshape(n, ch * cw + 1, _SLOTS)[:, : ch * cw, :HOG_ORIENTATIONS]
    return sums.reshape(n, -1) / (HOG_CELL * HOG_CELL)


_SLOTS = HOG_ORIENTATIONS + 1
_CELL_INDEX = {}  # (n, H, W) -> read-only (n, H, W) intp


def _cell_index(n, H, W):
    """``(image * (cells + 1) + cell) * 10`` of every pixel, cell = cell column * rows + cell row
    (the spare cell ``cells`` for pixels outside whole cells)."""
    key = (n, H, W)
    index = _CELL_INDEX.get(key)
    if index is None:
        ch, cw = H // HOG_CELL, W // HOG_CELL
        rows = np.arange(H) // HOG_CELL
        cols = np.arange(W) // HOG_CELL
        cell = cols[None, :] * ch + rows[:, None]                           # (H, W)
        cell[(rows >= ch)[:, None] | (cols >= cw)[None, :]] = ch * cw       # partial cells
        first = np.arange(n, dtype=np.intp) * ((ch * cw + 1) * _SLOTS)
        index = first[:, None, None] + cell * _SLOTS
        index.flags.writeable = False
        if len(_CELL_INDEX) >= 8:
            _CELL_INDEX.clear()
        _CELL_INDEX[key] = index
    return index


# The edges of the orientation bins 20 i, as |gy / gx| = tan(|20 i - 90| degrees):
# the bins are symmetric around 90 degrees (gx > 0, gy = 0).
_TAN_EDGES = np.tan(np.deg2rad([10.0, 30.0, 50.0, 70.0]))
# A pixel is binned by the exact formula when |gy / gx| is within this relative distance
# of an edge (rounding in the formula is ~1e-15), or when the gradient is near vertical,
# where the formula's last bits decide whether orientation 0 or 180 is reached.
_NEAR_EDGE = 1e-7
_NEAR_VERTICAL = 1e7
_TAN_BELOW = _TAN_EDGES * (1 - _NEAR_EDGE)
_TAN_ABOVE = _TAN_EDGES * (1 + _NEAR_EDGE)


def _orientation_bins(gx1, gy, work):
    """Orientation bin of every pixel, as ``hog_feature`` decides it, where it is certain.

    ``hog_feature`` bins ``ori = arctan2(gy, gx1) * (180 / pi) + 90`` into
    ``[20 i, 20 (i + 1))`` and drops ``ori <= 0`` and ``ori >= 180``. Here the
    bin is read from ``|gy / gx1|`` against the tangents of the edges (no
    arctan2, which is slow without AVX-512); the pixels close to an edge or to
    vertical, where the comparison of the formula's rounded result decides, are
    marked uncertain, for ``_exact_bins``.

    Parameters
    ----------
    gx1 : (N, H, W) float64, the x gradient plus 1e-15
    gy : (N, H, W) float64
    work : (N, H, W) float64 work array (overwritten)

    Returns
    -------
    bins : (N, H, W) int8, 0..8, or 9 where the pixel is dropped
    uncertain : (N, H, W) bool, where bins is to be replaced by ``_exact_bins``
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.divide(gy, gx1, out=work)
    np.abs(a, out=a)
    # k: how many edges |gy / gx1| passes, 0..4 (|ori - 90| in 20-degree steps), counted
    # with the edges moved up and down by _NEAR_EDGE: a pixel whose two counts differ is
    # near an edge.
    above = np.greater_equal(a, _TAN_ABOVE[0]).view(np.int8)
    below = np.greater_equal(a, _TAN_BELOW[0]).view(np.int8)
    mask = np.empty(a.shape, dtype=bool)
    for t_above, t_below in zip(_TAN_ABOVE[1:], _TAN_BELOW[1:]):
        above += np.greater_equal(a, t_above, out=mask).view(np.int8)
        below += np.greater_equal(a, t_below, out=mask).view(np.int8)
    uncertain = np.not_equal(above, below)
    uncertain |= ~(a <= _NEAR_VERTICAL)                     # also nan, inf
    # Away from the edges: gx1 > 0 gives orientations strictly inside (0, 180), gy >= 0
    # the upper half (bins 4 + k), gy < 0 the lower half (bins 4 - k); gx1 < 0 gives
    # orientations outside (0, 180), which the definition drops.
    # (integer arithmetic on 0/1 masks: much faster than np.where with its random branches)
    k = above
    bins = np.less(gy, 0, out=mask).view(np.int8) * np.int8(-2)   # -2 where gy < 0, else 0
    bins += 1
    bins *= k                                                     # -k or k
    bins += 4
    bins += (HOG_ORIENTATIONS - bins) * np.less(gx1, 0, out=mask).view(np.int8)
    return bins, uncertain


def _exact_bins(gx1, gy):
    """The orientation bins of ``hog_feature``, by its formula: int8 0..8, or 9 (dropped)."""
    ori = np.arctan2(gy, gx1) * (180 / np.pi) + 90
    exact = np.floor(ori * (1 / _BIN_DEG))
    exact -= ori < _BIN_DEG * exact                       # exact edges 20 i
    exact += ori >= _BIN_DEG * (exact + 1)
    exact[~((ori > 0) & (ori < 180))] = HOG_ORIENTATIONS
    return exact.astype(np.int8)


def _gray_batch(rgb, out, tmp, method):
    """``rgb2gray`` of a block of images (n, H, W, C) into out (n, H, W) float64, with
    the bits of ``np.dot`` per image; tmp is a work array of out's shape.

    ``np.dot`` of an (H, W, 3) image with the weights calls the BLAS dot product
    for each pixel, whose rounding depends on the BLAS build (with fused
    multiply-adds or not). ``method``, from ``_gray_method``, is the fastest
    computation that gives the same bits here.
    """
    if method == "plain":  # (r w0 + g w1) + b w2 on whole planes: 5x faster than np.dot
        w0, w1, w2 = GRAY_WEIGHTS
        # dtype: always in float64, as np.dot computes (also for float32 images on numpy 1.x)
        np.multiply(rgb[..., 0], w0, out=out, dtype=np.float64)
        np.multiply(rgb[..., 1], w1, out=tmp, dtype=np.float64)
        out += tmp
        np.multiply(rgb[..., 2], w2, out=tmp, dtype=np.float64)
        out += tmp
    elif method == "vecdot":  # the same per-pixel BLAS dot as np.dot, in one call: 2.5x faster
        np.vecdot(rgb[..., :3], GRAY_WEIGHTS, out=out)
    else:
        out[...] = np.dot(rgb[..., :3], GRAY_WEIGHTS)
    return out


_GRAY_METHOD = {}  # (H, W) -> "plain", "vecdot" or "dot"


def _gray_method(hw):
    """The fastest way to compute ``rgb2gray`` of a batch of (H, W) images with the bits of
    ``np.dot`` per image, checked once per image size on random probes."""
    hw = tuple(hw)
    if isinstance(_GRAY_METHOD, str):  # tests force one method
        return _GRAY_METHOD
    if hw not in _GRAY_METHOD:
        rng = np.random.default_rng(12345)
        probe = np.concatenate([rng.uniform(0, 255, (3,) + hw + (3,)),
                                rng.integers(0, 256, (3,) + hw + (3,)).astype(np.float64),
                                rng.random((3,) + hw + (3,))])
        want = np.array([np.dot(p, GRAY_WEIGHTS) for p in probe])
        method = "dot"
        for candidate in ("plain", "vecdot") if hasattr(np, "vecdot") else ("plain",):
            got = _gray_batch(probe, np.empty(want.shape), np.empty(want.shape), candidate)
            if np.array_equal(got, want):
                method = candidate
                break
        _GRAY_METHOD[hw] = method
    return _GRAY_METHOD[hw]


def color_histograms_hsv_batch(imgs, nbin=10, xmin=0, xmax=255, normalized=True):
    """``color_histogram_hsv`` of every image of a batch.

    Parameters
    ----------
    imgs : (N, H, W, C) RGB or (N, H, W) gray

    Returns
    -------
    hists : (N, nbin) float64, row n equal to ``color_histogram_hsv(imgs[n], ...)``
    """
    imgs = np.asarray(imgs)
    if imgs.ndim == 3:  # gray: the three channels equal
        imgs = np.broadcast_to(imgs[..., None], imgs.shape + (3,))
    if imgs.ndim != 4:
        raise ValueError(f"color_histograms_hsv_batch expects images (N, H, W, C) or (N, H, W), "
                         f"got shape {imgs.shape}")
    n, H, W = imgs.shape[:3]
    edges = np.linspace(xmin, xmax, nbin + 1)
    if n == 0 or not 0 < xmax or not np.all(np.diff(edges) > 0):
        # nothing to do, or parameters np.histogram refuses: the definition says how
        return np.array([color_histogram_hsv(im, nbin, xmin, xmax, normalized) for im in imgs]
                        ).reshape(n, nbin)

    # rgb_to_hsv computes in im / xmax's dtype, at least float32.
    scaled = (imgs[:1, :1, :1, :1] / xmax).dtype
    dtype = np.promote_types(scaled, np.float32)
    # The hue lies in [0, xmax]: only the edges inside (0, xmax] cut; below them all
    # pixels count, above none.
    cuts = edges[:nbin][(edges[:nbin] > 0) & (edges[:nbin] <= xmax)]
    at_least = np.empty((n, nbin), dtype=np.intp)  # pixels with hue >= edge j, j < nbin
    at_least[:, edges[:nbin] <= 0] = H * W
    at_least[:, edges[:nbin] > xmax] = 0
    cut_cols = (edges[:nbin] > 0) & (edges[:nbin] <= xmax)

    work = np.empty((7, min(n, _BLOCK), H, W), dtype=dtype)
    for s in range(0, n, _BLOCK):
        block = imgs[s: s + _BLOCK]
        hue = _hue_of_block(block, xmax, scaled, work[:, : len(block)])
        hue *= xmax
        at_least[s: s + len(block), cut_cols] = _count_at_least(hue.reshape(len(block), -1), cuts)

    counts = np.empty((n, nbin), dtype=np.intp)
    counts[:, :-1] = at_least[:, :-1] - at_least[:, 1:]
    counts[:, -1] = at_least[:, -1]  # the last bin is closed: no hue is above xmax
    # color_histogram_hsv multiplies np.histogram's result by the bin widths; with
    # density=True that result is counts / width / total. The same operations, in order.
    width = np.diff(edges)
    if not normalized:
        return counts * width
    with np.errstate(invalid="ignore", divide="ignore"):
        return counts / width / counts.sum(axis=1, keepdims=True) * width


def _count_at_least(values, cuts):
    """``(values >= cut).sum(axis=1)`` for each cut: (n, len(cuts)) intp.

    NaN counts as 0 (below every cut > 0).
    """
    ge = np.greater_equal(values[None], np.asarray(cuts, dtype=np.float64)[:, None, None])
    if values.shape[1] % 8 == 0 and hasattr(np, "bitwise_count"):
        # A bool is one byte, 0 or 1: 8 of them read as one uint64 hold as many set bits
        # as true values. Counting bits is 4x faster than summing the bools.
        counted = np.bitwise_count(ge.view(np.uint64)).sum(axis=-1, dtype=np.intp)
    else:
        counted = np.count_nonzero(ge, axis=-1)
    return counted.T


def _hue_of_block(rgb, xmax, scaled, work):
    """The hue channel of ``matplotlib.colors.rgb_to_hsv(rgb[..., :3] / xmax)``, bit for bit.

    Without the saturation and value channels and the fancy indexing, and with
    one division per pixel: 5x faster.

    Parameters
    ----------
    rgb : (n, H, W, C) values 0..xmax
    xmax : the scale, as given to color_histogram_hsv
    scaled : the dtype of ``rgb / xmax``
    work : (7, n, H, W) work array of rgb_to_hsv's dtype (at least float32)

    Returns
    -------
    hue : (n, H, W) in [0, 1), a view of work; NaN where the pixel is gray (hue 0)
    """
    r, g, b, hi, lo, hue, tmp = work
    if scaled == work.dtype:
        n, H, W, C = rgb.shape
        # one call for the three channel planes (the transposed view of the pixels)
        np.divide(rgb.reshape(n * H * W, C)[:, :3].T, xmax, out=work[:3].reshape(3, -1))
    else:  # float16 images: rgb_to_hsv casts the scaled values
        work[:3] = np.moveaxis(rgb[..., :3] / xmax, -1, 0)
    # max, median and min of r, g, b
    np.maximum(r, g, out=hi)
    np.minimum(r, g, out=lo)
    mid = np.minimum(hi, b, out=tmp)
    np.maximum(lo, mid, out=mid)
    np.maximum(hi, b, out=hi)
    np.minimum(lo, b, out=lo)
    if hi.max() > 1 or lo.min() < 0:
        raise ValueError("Input array must be in the range [0, 1]: the images must hold values "
                         f"xmin..xmax, found {lo.min() * xmax:g}..{hi.max() * xmax:g}")
    # rgb_to_hsv: red is max: (g - b) / delta; green is max: 2 + (b - r) / delta; blue
    # is max: 4 + (r - g) / delta (blue overriding green overriding red). In each case the
    # numerator is +-(mid - min): the same subtraction of the same two values, exactly.
    # With A = b >= g, B = b >= r, C = g >= r: blue is max where A and B, green where C and
    # not A, red elsewhere; the numerator is negative where A ^ B ^ C (the order
    # max -> mid -> min is not r -> g -> b -> r).
    A, B, C = b >= g, b >= r, g >= r
    np.subtract(mid, lo, out=hue)
    delta = np.subtract(hi, lo, out=hi)
    with np.errstate(invalid="ignore", divide="ignore"):
        hue /= delta          # 0 / 0 = NaN where delta == 0, where rgb_to_hsv leaves 0
    sign = np.bitwise_xor(A, B).view(np.int8)
    sign ^= C.view(np.int8)                     # 1 where negative
    sign *= np.int8(-2)
    sign += 1                                   # -1 or +1
    hue *= sign
    base = np.bitwise_or(B, C).view(np.uint8)
    base += (A & B).view(np.uint8)              # 0 red, 1 green, 2 blue
    base += base
    np.copyto(tmp, base)
    hue += tmp                                  # (0, 2 or 4 exactly) + ratio, as 2. + ratio
    hue /= 6.0
    # rgb_to_hsv then takes `% 1.0`; here hue >= -1/6, and numpy's float modulo of a
    # negative x by 1.0 is x + 1.0.
    hue += hue < 0
    return hue


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
