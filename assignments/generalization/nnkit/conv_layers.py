"""Convolution and max-pooling layers: a naive version that reads like the definition, and a fast one.

The layers follow the contract of ``nnkit.layers``: ``*_forward`` returns ``(out, cache)``,
``*_backward(dout, cache)`` returns the gradients with respect to the forward's array
inputs, each with the shape and dtype of that input. Images are channels first:

- ``x``: ``(N, C, H, W)``, N images of C channels, H rows and W columns;
- ``w``: ``(F, C, HH, WW)``, F filters, each spanning all C channels and HH x WW pixels;
- ``b``: ``(F,)``, one bias per filter.

A convolution (strictly, the cross-correlation every deep-learning library calls one) with
``conv_param = {"stride": s, "pad": p}`` first pads x with p zeros on every side of its height
and width, giving ``xp`` of shape ``(N, C, H + 2p, W + 2p)``, then slides every filter over it::

    out[n, f, i, j] = b[f] + sum over c, k, l of  xp[n, c, i*s + k, j*s + l] * w[f, c, k, l]

for ``0 <= i < H_out = 1 + (H + 2p - HH) // s`` and ``0 <= j < W_out = 1 + (W + 2p - WW) // s``.

Max pooling with ``pool_param = {"pool_height": ph, "pool_width": pw, "stride": s}`` keeps the
largest value of every ``ph x pw`` window of every channel::

    out[n, c, i, j] = max over k < ph, l < pw of  x[n, c, i*s + k, j*s + l]

for ``0 <= i < 1 + (H - ph) // s`` and ``0 <= j < 1 + (W - pw) // s``. Its gradient flows to the
one input that was the maximum; where several inputs of a window share it, to the first of them
in row-major order (what ``np.argmax`` of the window returns).

The naive layers (``conv_forward_naive`` ... ``max_pool_backward_naive``) loop over every
output value: clear, and slow. The fast layers (``conv_forward_fast`` ...) compute exactly the
same values (checked against the naive ones) with matrix products: ``im2col`` copies every
window of ``xp`` into one column of a matrix (a strided view of ``xp``, built with
``numpy.lib.stride_tricks``, then one copy), so that the convolution is the filters, one per
row, times that matrix. The CNN (``nnkit.classifiers.cnn``) trains with the fast ones;
``bench/bench_conv.py`` times them against their matrix products.
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from nnkit.layers import relu_backward, relu_forward

__all__ = [
    "conv_forward_naive", "conv_backward_naive", "max_pool_forward_naive", "max_pool_backward_naive",
    "conv_forward_fast", "conv_backward_fast", "max_pool_forward_fast", "max_pool_backward_fast",
    "conv_relu_forward", "conv_relu_backward", "conv_relu_pool_forward", "conv_relu_pool_backward",
    "conv_output_shape", "pool_output_shape", "zero_pad", "crop_padding", "im2col",
]


# ---------------------------------------------------------------------------
# Shapes and padding (shared by both versions)
# ---------------------------------------------------------------------------
def conv_output_shape(H, W, HH, WW, stride, pad):
    """``(H_out, W_out)`` of a convolution of an H x W image with an HH x WW filter.

    ``H_out = 1 + (H + 2 * pad - HH) // stride``, likewise ``W_out``. A ValueError when the
    filter is larger than the padded image.
    """
    Hp, Wp = H + 2 * pad, W + 2 * pad
    if HH > Hp or WW > Wp:
        raise ValueError(f"convolution: a {HH}x{WW} filter does not fit in a {H}x{W} image padded by {pad} "
                         f"({Hp}x{Wp}); use smaller filters or more padding.")
    return 1 + (Hp - HH) // stride, 1 + (Wp - WW) // stride


def pool_output_shape(H, W, pool_height, pool_width, stride):
    """``(H_out, W_out)`` of max pooling: ``1 + (H - pool_height) // stride``, likewise for W."""
    if pool_height > H or pool_width > W:
        raise ValueError(f"max pool: a {pool_height}x{pool_width} window does not fit in a {H}x{W} image.")
    return 1 + (H - pool_height) // stride, 1 + (W - pool_width) // stride


def zero_pad(x, pad):
    """x of shape ``(N, C, H, W)`` with ``pad`` zeros on each side of H and W: ``(N, C, H + 2 pad, W + 2 pad)``.

    Returns x itself when pad is 0 (no copy).
    """
    if pad == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))


def crop_padding(xp, pad):
    """The inverse of ``zero_pad``: the middle ``(N, C, H, W)`` of a padded ``(N, C, H + 2 pad, W + 2 pad)``.

    A view when pad > 0; xp itself when pad is 0.
    """
    if pad == 0:
        return xp
    return xp[:, :, pad:-pad, pad:-pad]


def _conv_settings(x, w, b, conv_param):
    """(stride, pad) of conv_param, after checking the shapes of x, w and b."""
    if np.ndim(x) != 4 or np.ndim(w) != 4 or np.ndim(b) != 1:
        raise ValueError(f"convolution: x must be (N, C, H, W), w (F, C, HH, WW) and b (F,); got shapes "
                         f"{np.shape(x)}, {np.shape(w)} and {np.shape(b)}.")
    if x.shape[1] != w.shape[1] or w.shape[0] != b.shape[0]:
        raise ValueError(f"convolution: x has {x.shape[1]} channels and w is {w.shape} with {b.shape[0]} biases; "
                         "w must be (F, C, HH, WW) with C the channels of x, and b (F,).")
    stride, pad = _positive(conv_param, "stride", "conv_param"), conv_param.get("pad", 0)
    if isinstance(pad, bool) or not isinstance(pad, (int, np.integer)) or pad < 0:
        raise ValueError(f"convolution: conv_param['pad'] must be an integer >= 0, got {pad!r}.")
    return int(stride), int(pad)


def _pool_settings(x, pool_param):
    """(pool_height, pool_width, stride) of pool_param, after checking the shape of x."""
    if np.ndim(x) != 4:
        raise ValueError(f"max pool: x must be (N, C, H, W), got shape {np.shape(x)}.")
    return tuple(int(_positive(pool_param, k, "pool_param")) for k in ("pool_height", "pool_width", "stride"))


def _positive(param, key, name):
    value = param.get(key) if isinstance(param, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}[{key!r}] must be a positive integer, got {value!r}.")
    return value


# ---------------------------------------------------------------------------
# The naive layers
# ---------------------------------------------------------------------------
def conv_forward_naive(x, w, b, conv_param):
    """Forward pass of a convolutional layer, by the definition (a loop over the outputs).

    Parameters
    ----------
    x : ndarray, (N, C, H, W)
        Input images.
    w : ndarray, (F, C, HH, WW)
        Filters.
    b : ndarray, (F,)
        Biases.
    conv_param : dict
        ``"stride"``: pixels between neighbouring windows (the same along H and W);
        ``"pad"``: zeros added on each side of H and W (default 0).

    Returns
    -------
    out : ndarray, (N, F, H_out, W_out)
        ``out[n, f, i, j] = b[f] + sum(xp[n, :, i*stride : i*stride + HH, j*stride : j*stride + WW] * w[f])``
        with ``xp`` the padded input (module docstring); ``H_out = 1 + (H + 2 pad - HH) // stride``,
        ``W_out = 1 + (W + 2 pad - WW) // stride``.
    cache : tuple
        ``(x, w, b, conv_param)``.
    """
    stride, pad = _conv_settings(x, w, b, conv_param)
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    H_out, W_out = conv_output_shape(H, W, HH, WW, stride, pad)
    xp = zero_pad(x, pad)  # (N, C, H + 2 pad, W + 2 pad)
    out = np.zeros((N, F, H_out, W_out), dtype=np.result_type(x, w, b, 0.0))
    # TODO: Fill out[n, f, i, j] for every image n, filter f and output position (i, j): the
    # window of xp that output sees starts at row i * stride and column j * stride and is
    # HH x WW pixels over all C channels; multiply it elementwise by the filter w[f], sum
    # everything and add the bias b[f]. Loops over n, f, i and j are fine here.
    raise NotImplementedError("conv_forward_naive: not implemented yet, see the TODO above")
    cache = (x, w, b, conv_param)
    return out, cache


def conv_backward_naive(dout, cache):
    """Backward pass of a convolutional layer, by the definition.

    Parameters
    ----------
    dout : ndarray, (N, F, H_out, W_out)
        Upstream derivative.
    cache : tuple
        ``(x, w, b, conv_param)`` from ``conv_forward_naive``.

    Returns
    -------
    dx : ndarray, (N, C, H, W)
    dw : ndarray, (F, C, HH, WW)
    db : ndarray, (F,)
    """
    x, w, b, conv_param = cache
    stride, pad = _conv_settings(x, w, b, conv_param)
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    _, _, H_out, W_out = dout.shape
    xp = zero_pad(x, pad)
    dxp = np.zeros_like(xp)  # the gradient with respect to the PADDED input
    dw = np.zeros_like(w)
    db = np.zeros_like(b)
    # TODO: Each output out[n, f, i, j] is b[f] + sum(window * w[f]) (see the forward pass), so
    # its upstream derivative g = dout[n, f, i, j] adds g * window to dw[f], g * w[f] to the same
    # window of dxp, and g to db[f]. Accumulate these (+=) over every n, f, i, j: windows
    # overlap when stride < HH. The padding is cropped from dxp for you below.
    raise NotImplementedError("conv_backward_naive: not implemented yet, see the TODO above")
    dx = crop_padding(dxp, pad)
    return dx, dw, db


def max_pool_forward_naive(x, pool_param):
    """Forward pass of a max-pooling layer, by the definition.

    Parameters
    ----------
    x : ndarray, (N, C, H, W)
    pool_param : dict
        ``"pool_height"``, ``"pool_width"``: the window; ``"stride"``: pixels between windows.

    Returns
    -------
    out : ndarray, (N, C, H_out, W_out)
        ``out[n, c, i, j] = max(x[n, c, i*stride : i*stride + pool_height, j*stride : j*stride + pool_width])``,
        ``H_out = 1 + (H - pool_height) // stride``, ``W_out = 1 + (W - pool_width) // stride``.
    cache : tuple
        ``(x, pool_param)``.
    """
    ph, pw, stride = _pool_settings(x, pool_param)
    N, C, H, W = x.shape
    H_out, W_out = pool_output_shape(H, W, ph, pw, stride)
    out = np.zeros((N, C, H_out, W_out), dtype=x.dtype)
    # TODO: Fill out[n, c, i, j] with the largest value of its window of x: rows i * stride to
    # i * stride + pool_height (excluded), columns likewise, of channel c of image n.
    raise NotImplementedError("max_pool_forward_naive: not implemented yet, see the TODO above")
    cache = (x, pool_param)
    return out, cache


def max_pool_backward_naive(dout, cache):
    """Backward pass of a max-pooling layer, by the definition.

    Parameters
    ----------
    dout : ndarray, (N, C, H_out, W_out)
        Upstream derivative.
    cache : tuple
        ``(x, pool_param)`` from ``max_pool_forward_naive``.

    Returns
    -------
    dx : ndarray, (N, C, H, W)
        ``dout[n, c, i, j]`` goes to the input that was the maximum of window (i, j), the
        first of them (``np.argmax`` of the window) when several share it; everything
        else of the window gets 0. Where windows overlap the contributions add up.
    """
    x, pool_param = cache
    ph, pw, stride = _pool_settings(x, pool_param)
    N, C, H, W = x.shape
    _, _, H_out, W_out = dout.shape
    dx = np.zeros_like(x)
    # TODO: For every n, c, i, j find where the maximum of the window sits (np.argmax of the
    # window gives its position in the flattened window; np.unravel_index turns it into a row
    # and a column) and add dout[n, c, i, j] to dx at that position.
    raise NotImplementedError("max_pool_backward_naive: not implemented yet, see the TODO above")
    return dx


# ---------------------------------------------------------------------------
# The fast layers: im2col and one matrix product
# ---------------------------------------------------------------------------
def im2col(xp, HH, WW, stride):
    """Every HH x WW window of a padded batch as one column of a matrix.

    Parameters
    ----------
    xp : ndarray, (N, C, Hp, Wp)
        Padded images.
    HH, WW : int
        Window size.
    stride : int

    Returns
    -------
    cols : ndarray, (C * HH * WW, N * H_out * W_out), C-contiguous
        Column ``(n * H_out + i) * W_out + j`` holds the window of output (i, j) of image n,
        its entries ordered as ``w[f]`` is (channel, row, column), so that
        ``w.reshape(F, -1) @ cols`` is the convolution, laid out ``(F, N, H_out, W_out)``.
        Made from a strided view of xp (every window, no pixel copied) by one copy.
    """
    N, C = xp.shape[:2]
    # (N, C, H_out, W_out, HH, WW): a view, every window without copying a pixel.
    windows = sliding_window_view(xp, (HH, WW), axis=(2, 3))[:, :, ::stride, ::stride]
    H_out, W_out = windows.shape[2:4]
    return np.ascontiguousarray(windows.transpose(1, 4, 5, 0, 2, 3)).reshape(C * HH * WW, N * H_out * W_out)


def conv_forward_fast(x, w, b, conv_param):
    """The convolution of ``conv_forward_naive`` (same arguments, same values), by matrix products.

    With ``cols = im2col(xp, HH, WW, stride)``, ``(K, N * H_out * W_out)`` for ``K = C * HH * WW``,
    image n's output is ``w.reshape(F, K) @ cols[:, n-th block]`` (one product per image, each
    reading its block of cols in place, written straight into out's layout).

    Returns
    -------
    out : ndarray, (N, F, H_out, W_out), C-contiguous
    cache : tuple
        ``(x, w, b, conv_param, cols)``; the backward pass reuses cols.
    """
    stride, pad = _conv_settings(x, w, b, conv_param)
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    H_out, W_out = conv_output_shape(H, W, HH, WW, stride, pad)
    cols = im2col(zero_pad(x, pad), HH, WW, stride)
    blocks = cols.reshape(C * HH * WW, N, H_out * W_out).transpose(1, 0, 2)  # (N, K, P), a view
    out = np.matmul(w.reshape(F, -1), blocks)  # (N, F, H_out * W_out)
    out += b[:, None]
    return out.reshape(N, F, H_out, W_out), (x, w, b, conv_param, cols)


def conv_backward_fast(dout, cache):
    """The gradients of ``conv_backward_naive`` from the cache of ``conv_forward_fast``.

    With ``d``, dout laid out ``(F, N * H_out * W_out)`` like the columns of cols, ``dw`` is
    ``d @ cols.T`` and the gradient of every window ``w.reshape(F, K).T @ d``: two matrix
    products. col2im then adds each window's gradient back into its place in the padded
    input, one filter offset (k, l) at a time (``HH * WW`` strided additions over the batch).

    Returns
    -------
    dx : ndarray, (N, C, H, W)
    dw : ndarray, (F, C, HH, WW)
    db : ndarray, (F,)
    """
    x, w, b, conv_param, cols = cache
    stride, pad = _conv_settings(x, w, b, conv_param)
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    H_out, W_out = dout.shape[2:]
    d = np.ascontiguousarray(np.asarray(dout).reshape(N, F, H_out * W_out).transpose(1, 0, 2)).reshape(F, -1)
    db = d.sum(axis=1).astype(b.dtype, copy=False)
    dw = (d @ cols.T).reshape(w.shape).astype(w.dtype, copy=False)
    # (C, HH, WW, N, H_out, W_out): each (c, k, l) slice is one contiguous block.
    dcols = (w.reshape(F, -1).T @ d).reshape(C, HH, WW, N, H_out, W_out)
    dxp = np.zeros((C, N, H + 2 * pad, W + 2 * pad), dtype=x.dtype)
    rows, columns = stride * (H_out - 1) + 1, stride * (W_out - 1) + 1
    for k in range(HH):
        for l in range(WW):
            dxp[:, :, k:k + rows:stride, l:l + columns:stride] += dcols[:, k, l]
    dx = np.ascontiguousarray(crop_padding(dxp.transpose(1, 0, 2, 3), pad))
    return dx, dw, db


def max_pool_forward_fast(x, pool_param):
    """The max pooling of ``max_pool_forward_naive`` (same arguments, same values), vectorised.

    Returns
    -------
    out : ndarray, (N, C, H_out, W_out)
    cache : tuple
        ``(x, pool_param, argmax)``: argmax (N, C, H_out, W_out) is the position of each
        window's maximum in the window read row by row (np.argmax's first maximum).
    """
    ph, pw, stride = _pool_settings(x, pool_param)
    N, C, H, W = x.shape
    H_out, W_out = pool_output_shape(H, W, ph, pw, stride)
    windows = sliding_window_view(x, (ph, pw), axis=(2, 3))[:, :, ::stride, ::stride]
    flat = windows.reshape(N, C, H_out, W_out, ph * pw)  # one copy
    argmax = flat.argmax(axis=-1)
    out = np.take_along_axis(flat, argmax[..., None], axis=-1)[..., 0]
    return out, (x, pool_param, argmax)


def max_pool_backward_fast(dout, cache):
    """The gradient of ``max_pool_backward_naive`` from the cache of ``max_pool_forward_fast``.

    One pass per window position (k, l): every window whose maximum sat at (k, l) passes its
    dout there.

    Returns
    -------
    dx : ndarray, (N, C, H, W)
    """
    x, pool_param, argmax = cache
    ph, pw, stride = _pool_settings(x, pool_param)
    H_out, W_out = argmax.shape[2:]
    dx = np.zeros_like(x)
    dout = np.asarray(dout, dtype=x.dtype)
    for k in range(ph):
        for l in range(pw):
            hit = argmax == k * pw + l
            dx[:, :, k:k + stride * (H_out - 1) + 1:stride, l:l + stride * (W_out - 1) + 1:stride] += \
                np.where(hit, dout, 0)
    return dx


# ---------------------------------------------------------------------------
# Sandwich layers of the CNN (fast versions)
# ---------------------------------------------------------------------------
def conv_relu_forward(x, w, b, conv_param):
    """conv (fast) - ReLU. Returns ``(out, cache)``, out ``(N, F, H_out, W_out)``."""
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)
    out, relu_cache = relu_forward(a)
    return out, (conv_cache, relu_cache)


def conv_relu_backward(dout, cache):
    """Backward of ``conv_relu_forward``: ``(dx, dw, db)``."""
    conv_cache, relu_cache = cache
    return conv_backward_fast(relu_backward(dout, relu_cache), conv_cache)


def conv_relu_pool_forward(x, w, b, conv_param, pool_param):
    """conv (fast) - ReLU - max pool (fast). Returns ``(out, cache)``, out ``(N, F, H_pool, W_pool)``."""
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)
    s, relu_cache = relu_forward(a)
    out, pool_cache = max_pool_forward_fast(s, pool_param)
    return out, (conv_cache, relu_cache, pool_cache)


def conv_relu_pool_backward(dout, cache):
    """Backward of ``conv_relu_pool_forward``: ``(dx, dw, db)``."""
    conv_cache, relu_cache, pool_cache = cache
    ds = max_pool_backward_fast(dout, pool_cache)
    return conv_backward_fast(relu_backward(ds, relu_cache), conv_cache)
