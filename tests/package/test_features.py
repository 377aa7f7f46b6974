"""nnkit.features: HOG and hue histogram against their definitions, written out here
plainly (loops over cells and pixels), and the batched path against the per-image one.
"""
import functools
import math
from pathlib import Path

import numpy as np
import pytest

from nnkit import features as ft


# ---------------------------------------------------------------------------
# the definitions, straight from the CS231n text (with the BT.601 gray weights)
# ---------------------------------------------------------------------------
def gray_by_definition(im):
    """0.299 R + 0.587 G + 0.114 B, computed by np.dot as the CS231n code does."""
    return np.dot(im[..., :3], [0.299, 0.587, 0.114]) if im.ndim == 3 else im.astype(float)


def hog_by_definition(im):
    g = gray_by_definition(im)
    H, W = g.shape
    gx = np.zeros((H, W))
    gy = np.zeros((H, W))
    for i in range(H):
        for j in range(W):
            if j + 1 < W:
                gx[i, j] = g[i, j + 1] - g[i, j]    # forward differences; last column 0
            if i + 1 < H:
                gy[i, j] = g[i + 1, j] - g[i, j]    # last row 0
    mag = np.sqrt(gx ** 2 + gy ** 2)
    ori = np.arctan2(gy, gx + 1e-15) * (180 / np.pi) + 90
    ch, cw = H // 8, W // 8
    out = np.zeros((cw, ch, 9))
    for cx in range(cw):              # cell column
        for cy in range(ch):          # cell row
            for b in range(9):
                total = 0.0
                for i in range(8 * cy, 8 * cy + 8):
                    for j in range(8 * cx, 8 * cx + 8):
                        o = ori[i, j]
                        if 20 * b <= o < 20 * (b + 1) and o > 0:
                            total += mag[i, j]
                out[cx, cy, b] = total / 64   # the MEAN over the cell
    return out.ravel()


def hue_hist_by_definition(im, nbin=10, xmin=0, xmax=255, normalized=True):
    """Hue per pixel by the textbook HSV formula (as matplotlib's rgb_to_hsv), counted into
    [e_k, e_k+1) bins with the last bin closed, e = linspace(xmin, xmax, nbin + 1)."""
    if im.ndim == 2:
        im = np.stack([im] * 3, axis=-1)
    edges = np.linspace(xmin, xmax, nbin + 1)
    counts = np.zeros(nbin)
    for r, g, b in (im[..., :3] / xmax).reshape(-1, 3):
        mx, mn = max(r, g, b), min(r, g, b)
        d = mx - mn
        if d == 0:
            h = 0.0
        elif b == mx:
            h = 4.0 + (r - g) / d
        elif g == mx:
            h = 2.0 + (b - r) / d
        else:
            h = (g - b) / d
        h = (h / 6.0) % 1.0 * xmax
        for k in range(nbin):
            if edges[k] <= h < edges[k + 1] or (k == nbin - 1 and h == edges[-1]):
                counts[k] += 1
                break
    # CS231n multiplies np.histogram's output by the bin width: with density this gives
    # the fraction of pixels per bin, without it the counts times the width
    return counts / counts.sum() if normalized else counts * np.diff(edges)


def images(kind, n=6, shape=(32, 32, 3), seed=0):
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        return rng.uniform(0, 255, (n,) + shape)
    if kind == "integer":
        return rng.integers(0, 256, (n,) + shape).astype(np.float64)
    if kind == "quantized":  # flat areas, gx == 0 with gy != 0: the orientation-rule edge cases
        return (rng.integers(0, 3, (n,) + shape) * 85).astype(np.float64)
    if kind == "constant":
        return np.full((n,) + shape, 77.0)
    if kind == "blocks":     # piecewise constant: many exactly vertical / horizontal gradients
        small = rng.integers(0, 256, (n, shape[0] // 4, shape[1] // 4) + shape[2:])
        return np.repeat(np.repeat(small, 4, axis=1), 4, axis=2).astype(np.float64)
    raise ValueError(kind)


KINDS = ["uniform", "integer", "quantized", "constant", "blocks"]


# ---------------------------------------------------------------------------
# per-image functions against the definitions
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_hog_feature_matches_definition(kind):
    for im in images(kind, n=3):
        f = ft.hog_feature(im)
        assert f.shape == (144,)
        assert np.abs(f - hog_by_definition(im)).max() < 1e-10


def test_hog_uses_bt601_gray_weights():
    im = np.zeros((32, 32, 3))
    im[:, 16:, 2] = 100.0  # a blue step: gx = 0.114 * 100 at column 15
    f = ft.hog_feature(im).reshape(4, 4, 9)
    # gx = 11.4 > 0, gy = 0: orientation 90 -> bin 4; in cell column 1 (columns 8..15) 8 pixels
    # of each cell row have magnitude 11.4, mean over 64 pixels = 11.4 * 8 / 64
    assert f[1, :, 4] == pytest.approx([0.114 * 100 * 8 / 64] * 4, abs=1e-12)
    assert np.count_nonzero(f) == 4


def test_hog_gray_and_odd_sizes():
    g = images("integer", n=2, shape=(28, 30))
    for im in g:
        f = ft.hog_feature(im)
        assert f.shape == (3 * 3 * 9,)
        assert np.abs(f - hog_by_definition(im)).max() < 1e-10


@pytest.mark.parametrize("kind", KINDS)
def test_color_histogram_matches_definition(kind):
    for im in images(kind, n=2):
        h = ft.color_histogram_hsv(im)
        assert h.shape == (10,)
        assert np.abs(h - hue_hist_by_definition(im)).max() < 1e-10
        assert h.sum() == pytest.approx(1.0)
    im = images(kind, n=1, seed=3)[0]
    assert np.abs(ft.color_histogram_hsv(im, nbin=7, normalized=False)
                  - hue_hist_by_definition(im, nbin=7, normalized=False)).max() == 0


def test_color_histogram_of_pure_colours():
    im = np.zeros((4, 4, 3))
    im[:2, :, 0] = 255      # red: hue 0 -> bin 0
    im[2:, :, 1] = 255      # green: hue 1/3 * 255 = 85 -> bin 3 ([76.5, 102))
    h = ft.color_histogram_hsv(im)
    assert h.tolist() == [0.5, 0, 0, 0.5, 0, 0, 0, 0, 0, 0]


# ---------------------------------------------------------------------------
# batched extract_features against the per-image definition
# ---------------------------------------------------------------------------
def per_image(imgs, fns):
    return np.array([np.concatenate([fn(im) for fn in fns]) for im in imgs])


@pytest.mark.parametrize("kind", KINDS)
def test_batched_equals_definition(kind):
    imgs = images(kind, n=40, seed=7)
    fns = [ft.hog_feature, ft.color_histogram_hsv]
    F = ft.extract_features(imgs, fns)
    assert F.shape == (40, 154) and F.dtype == np.float64
    want = np.array([np.concatenate([hog_by_definition(im), hue_hist_by_definition(im)])
                     for im in imgs[:8]])
    assert np.abs(F[:8] - want).max() < 1e-10
    assert np.abs(F - per_image(imgs, fns)).max() < 1e-12


def ramp_images(seed=5, n=12):
    """Gray images made of 8x8 linear ramps g = 100 + a i + b j, whose forward differences
    (gx = b, gy = a, up to the rounding of g) sit on or next to the orientation-bin edges
    (angles +-10, 30, 50, 70 degrees from horizontal), or are vertical (gx == 0)."""
    rng = np.random.default_rng(seed)
    imgs = np.zeros((n, 32, 32))
    i, j = np.mgrid[0:8, 0:8]
    for m in range(n):
        for r in range(4):
            for c in range(4):
                b = rng.choice([0.0, 0.5, 1.0, 2.0, -1.0, 0.3])
                theta = rng.choice([10, 30, 50, 70, -10, -30, -50, -70])
                theta = theta * (1 + rng.choice([0.0, 1e-15, -1e-15, 1e-9, -1e-9]))
                a = np.tan(np.deg2rad(theta)) * b if b != 0 else rng.choice([1.0, -1.0, 0.5])
                imgs[m, 8 * r:8 * r + 8, 8 * c:8 * c + 8] = 100 + a * i + b * j
    return imgs


def test_batched_on_gradients_at_bin_edges():
    imgs = ramp_images()
    F = ft.extract_features(imgs, [ft.hog_feature])
    assert np.abs(F - per_image(imgs, [ft.hog_feature])).max() < 1e-12
    assert np.abs(F[:3] - np.array([hog_by_definition(im) for im in imgs[:3]])).max() < 1e-10
    assert np.count_nonzero(F) > 0


def planted_images():
    """Gray images whose cell corners hold gradients (gx, gy) = (1, +-tan(edge) (1 + k 2**-52)),
    k = -40..40: orientations within a few 1e-14 degrees of a bin edge, where only the
    last bits of arctan2 decide the bin."""
    pairs = [(1.0, sgn * np.tan(np.deg2rad(e)) * (1 + k * 2.0 ** -52))
             for e in (10.0, 30.0, 50.0, 70.0) for sgn in (1, -1) for k in range(-40, 41)]
    imgs = np.zeros((math.ceil(len(pairs) / 16), 32, 32))
    for p, (gx, gy) in enumerate(pairs):
        m, cell = divmod(p, 16)
        r, c = 8 * (cell // 4), 8 * (cell % 4)
        imgs[m, r, c + 1] = gx      # forward differences at (r, c): exactly gx and gy
        imgs[m, r + 1, c] = gy
    return imgs


def test_batched_on_orientations_a_few_ulps_from_bin_edges():
    imgs = planted_images()
    F = ft.extract_features(imgs, [ft.hog_feature])
    assert np.abs(F - per_image(imgs, [ft.hog_feature])).max() < 1e-12
    assert np.abs(F[:2] - np.array([hog_by_definition(im) for im in imgs[:2]])).max() < 1e-10


def test_batched_gray_input_and_partial():
    imgs = images("integer", n=12, shape=(32, 32))
    before = imgs.copy()
    fns = [ft.hog_feature, functools.partial(ft.color_histogram_hsv, nbin=5)]
    F = ft.extract_features(imgs, fns, chunk=5)
    assert np.array_equal(imgs, before)  # the caller's images are never written to
    assert F.shape == (12, 149)
    assert np.abs(F - per_image(imgs, fns)).max() < 1e-12
    assert np.all(F[:, 144] == 1.0) and np.all(F[:, 145:] == 0)  # gray: hue 0 everywhere


def test_batched_uint8_and_float32_input():
    imgs = images("integer", n=10).astype(np.uint8)
    fns = [ft.hog_feature, ft.color_histogram_hsv]
    assert np.abs(ft.extract_features(imgs, fns) - per_image(imgs, fns)).max() < 1e-12
    f32 = images("uniform", n=10).astype(np.float32)
    assert np.abs(ft.extract_features(f32, fns) - per_image(f32, fns)).max() < 1e-12


def test_unknown_functions_use_the_loop_and_order_is_kept():
    imgs = images("integer", n=5)
    mean_fn = lambda im: np.array([im.mean(), im.max()])
    F = ft.extract_features(imgs, [mean_fn, ft.hog_feature])
    assert F.shape == (5, 146)
    assert np.array_equal(F[:, 0], imgs.mean(axis=(1, 2, 3)))
    assert np.abs(F[:, 2:] - per_image(imgs, [ft.hog_feature])).max() < 1e-12
    assert np.array_equal(ft.extract_features(imgs, [ft.hog_feature], batched=False),
                          per_image(imgs, [ft.hog_feature]))


def test_feature_functions_take_a_batch():
    imgs = images("quantized", n=150, seed=4)   # more than one internal block, the last partial
    assert ft._BLOCK < 150 and 150 % ft._BLOCK
    hog = ft.hog_feature(imgs)
    assert hog.shape == (150, 144)
    assert np.abs(hog - np.array([ft.hog_feature(im) for im in imgs])).max() < 1e-12
    hue = ft.color_histogram_hsv(imgs, nbin=7, normalized=False)
    assert hue.shape == (150, 7)
    assert np.array_equal(hue, np.array([ft.color_histogram_hsv(im, nbin=7, normalized=False)
                                         for im in imgs]))
    gray = images("integer", n=5, shape=(32, 32))   # (N, H, W): a batch of gray images
    assert ft.hog_feature(gray).shape == (5, 144)
    assert ft.hog_feature(gray[0]).shape == (144,) and ft.hog_feature(imgs[0, ..., :3]).shape == (144,)


class Counting:
    def __init__(self, fn):
        self.fn, self.calls = fn, 0

    def __call__(self, im):
        self.calls += 1
        return self.fn(im)


def test_lambdas_and_partials_run_batched_and_per_image_functions_in_a_loop():
    imgs = images("integer", n=300, seed=2)
    # the CS231n notebook's call: a lambda around the batch-capable function
    hue = Counting(lambda img: ft.color_histogram_hsv(img, nbin=10))
    hog = Counting(functools.partial(ft.hog_feature))
    per_img = Counting(lambda img: ft.color_histogram_hsv(img[..., :3].reshape(-1, 3)[None], nbin=4))
    F = ft.extract_features(imgs, [hog, hue, per_img], chunk=128)
    assert hog.calls < 10 and hue.calls < 10      # sized, probed, then 3 batches of 128
    assert per_img.calls > 300                    # returns one row for a batch: image by image
    assert np.abs(F - per_image(imgs, [ft.hog_feature, ft.color_histogram_hsv, per_img.fn])).max() < 1e-12
    assert np.abs(F - ft.extract_features(imgs, [hog.fn, hue.fn, per_img.fn], batched=False)).max() < 1e-12


def test_total_feature_length_and_errors():
    imgs = images("uniform", n=3)
    assert ft.extract_features(imgs, [ft.hog_feature, ft.color_histogram_hsv]).shape == (3, 154)
    with pytest.raises(ValueError, match="1-D"):
        ft.extract_features(imgs, [lambda im: im])
    with pytest.raises(ValueError, match="images"):
        ft.extract_features(np.zeros(5), [ft.hog_feature])
    with pytest.raises(ValueError, match="range"):
        ft.extract_features(imgs - 128, [ft.color_histogram_hsv])


def test_verbose_shows_progress(capsys):
    ft.extract_features(images("uniform", n=3), [ft.hog_feature], verbose=True)
    assert "3/3" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# load_feature_dataset on the embedded digits
# ---------------------------------------------------------------------------
def test_load_feature_dataset_embedded(tmp_path, monkeypatch):
    import shutil

    from nnkit import data_utils as du
    (tmp_path / "embedded").mkdir()
    shutil.copy(du.dataset_dir() / du.EMBEDDED_FILE, tmp_path / du.EMBEDDED_FILE)
    monkeypatch.setenv("NNKIT_DATA_DIR", str(tmp_path))
    d = ft.load_feature_dataset("embedded")
    raw = du.load_dataset("embedded", subtract_mean=False, channels_first=False)
    assert d["X_train"].shape == (1266, 154) and d["X_val"].shape == (178, 154)
    assert np.array_equal(d["y_test"], raw["y_test"])
    # standardised with the training statistics, by definition
    fns = [ft.hog_feature, ft.color_histogram_hsv]
    # training statistics from the batched path (shown equal to the definition above),
    # the checked rows image by image
    feats = {"train": ft.extract_features(raw["X_train"], fns), "test": per_image(raw["X_test"][:20], fns)}
    mu = feats["train"].mean(axis=0)
    sd = feats["train"].std(axis=0)
    sd[sd == 0] = 1
    assert np.abs(d["X_test"][:20] - (feats["test"] - mu) / sd).max() < 1e-8
    assert np.allclose(d["X_train"].mean(axis=0), 0, atol=1e-10)
    # the hue histogram of gray digits is constant: standardised to 0
    assert np.all(d["X_train"][:, 144:] == 0)
    cache = tmp_path / "cache" / "features_embedded_10.npz"
    assert cache.is_file()
    again = ft.load_feature_dataset("embedded")
    assert np.array_equal(again["X_val"], d["X_val"])
    cache.write_bytes(cache.read_bytes()[:1000])  # damaged: recomputed, not used
    assert np.array_equal(ft.load_feature_dataset("embedded")["X_val"], d["X_val"])


def equal_gray_images(n=8, seed=3):
    """Neighbouring pixels of different colours whose gray is equal in exact arithmetic
    (0.299 dr + 0.587 dg + 0.114 db = 0), on rows alternating in brightness: gx is 0 or
    +-1e-14 depending on how the gray is rounded, and the sign of gx decides whether the
    large vertical gradient counts (gx + 1e-15 > 0) or not."""
    rng = np.random.default_rng(seed)
    steps = np.array([(-15, 9, -7), (-11, -1, 34), (-4, 10, -41), (-26, 8, 27), (-30, 18, -14)])
    imgs = np.empty((n, 32, 32, 3))
    for m in range(n):
        base = rng.integers(60, 190, 3).astype(float)
        imgs[m] = base + rng.integers(0, 2, (32, 32))[..., None] * steps[rng.integers(0, 5, (32, 32))]
        imgs[m, :, 1::2] = imgs[m, :, 0::2] + steps[m % 5]
    imgs[:, 1::2] += 30
    return np.clip(imgs, 0, 255)


@pytest.mark.parametrize("method", ["found", "plain", "vecdot", "dot"])
def test_gray_computed_as_np_dot_rounds_it(monkeypatch, method):
    # The batched gray must have np.dot's bits per image: with another rounding (e.g. the
    # plain expression where the BLAS dot uses fused multiply-adds) these images move
    # features by several units.
    imgs = equal_gray_images()
    want = np.array([ft.hog_feature(im) for im in imgs])
    if method != "found":
        found = ft._gray_method(imgs.shape[1:3])
        if method == "vecdot" and not hasattr(np, "vecdot"):
            pytest.skip("numpy < 2 has no vecdot")
        monkeypatch.setattr(ft, "_GRAY_METHOD", method)
        if method != found and method != "dot":
            # a method the probe rejected here may round differently: only check it runs
            assert ft.hog_feature(imgs).shape == want.shape
            return
    assert np.abs(ft.hog_feature(imgs) - want).max() < 1e-12
    imgs = images("quantized", n=10, seed=11)
    fns = [ft.hog_feature]
    assert np.abs(ft.extract_features(imgs, fns) - per_image(imgs, fns)).max() < 1e-12


def test_runs_without_scipy_or_sklearn():
    import subprocess
    import sys
    code = (
        "import sys\n"
        "for m in ('scipy', 'sklearn', 'pandas'): sys.modules[m] = None\n"
        "from nnkit.data_utils import load_dataset\n"
        "from nnkit.features import extract_features, hog_feature, color_histogram_hsv\n"
        "d = load_dataset('embedded', subtract_mean=False, channels_first=False, num_training=50)\n"
        "F = extract_features(d['X_train'], [hog_feature, color_histogram_hsv])\n"
        "assert F.shape == (50, 154), F.shape\n"
        "print('ok')\n")
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root / "source", capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
    assert out.stderr == ""   # nothing on stderr: a graded cell would lose its points


def test_batched_rgb_other_sizes():
    imgs = images("integer", n=6, shape=(24, 40, 3), seed=9)
    fns = [ft.hog_feature, ft.color_histogram_hsv]
    F = ft.extract_features(imgs, fns)
    assert F.shape == (6, 5 * 3 * 9 + 10)
    assert np.abs(F - per_image(imgs, fns)).max() < 1e-12
    assert np.abs(F[0, :135] - hog_by_definition(imgs[0])).max() < 1e-10
