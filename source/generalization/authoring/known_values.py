"""The known values hard-coded in the generalization notebooks' checks, from the definitions.

Nothing here imports nnkit. The checks use inputs chosen so that the values can be worked out
by hand; this script writes those hand calculations out in plain numpy and loops, and prints the
numbers the cells compare with (tests/generalization checks that the cells' literals equal them):

    .venv/bin/python source/generalization/authoring/known_values.py
"""
from __future__ import annotations

import numpy as np


def conv(xp, w, b, stride):
    """out[n, f, i, j] = b[f] + sum over c, k, l of xp[n, c, i*stride + k, j*stride + l] * w[f, c, k, l] (padded xp)."""
    N, C, H, W = xp.shape
    F, _, HH, WW = w.shape
    Ho, Wo = 1 + (H - HH) // stride, 1 + (W - WW) // stride
    out = np.zeros((N, F, Ho, Wo))
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    total = b[f]
                    for c in range(C):
                        for k in range(HH):
                            for l in range(WW):
                                total += xp[n, c, i * stride + k, j * stride + l] * w[f, c, k, l]
                    out[n, f, i, j] = total
    return out


def pool(x, ph, pw, stride):
    N, C, H, W = x.shape
    Ho, Wo = 1 + (H - ph) // stride, 1 + (W - pw) // stride
    return np.array([[[[max(x[n, c, i * stride + k, j * stride + l] for k in range(ph) for l in range(pw))
                        for j in range(Wo)] for i in range(Ho)] for c in range(C)] for n in range(N)])


def values():
    """name -> the value (a float or an array) of every known value the cells hard-code."""
    v = {}
    # 01 · mse_loss: differences (1, 0, -2, 0), then zeros against (1, 2, 3; 0, 0, 0).
    d = np.array([[1.0], [0.0], [-2.0], [0.0]])
    v["mse_loss"] = float(np.sum(d ** 2) / d.size)
    v["mse_grad"] = 2 * d / d.size
    t = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    v["mse_loss_k3"] = float(np.sum(t ** 2) / t.size)
    v["mse_grad_k3"] = 2 * (0 - t) / t.size
    # 01 · count_params: weights d_in * d_out and biases d_out, layer by layer.
    count = lambda sizes: sum(a * b + b for a, b in zip(sizes, sizes[1:]))  # noqa: E731
    v["count_fc"] = count([4, 5, 3, 2])
    v["count_regression"] = count([1, 10, 10, 1])
    # 01 · grad_norm of (3, 0; 0, 0) and (4)
    v["grad_norm"] = float(np.sqrt(3.0 ** 2 + 4.0 ** 2))
    # 01 · pca: (1, 1), (2, 2), (3, 3) lie on the line through (2, 2) along (1, 1) / sqrt 2.
    u = np.array([1.0, 1.0]) / np.sqrt(2)
    pts = np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    v["pca_line_Z"] = ((pts - pts.mean(axis=0)) @ u)[:, None]
    # spread 2 along x and 1 along y: variances 8/4 and 2/4, so fractions 8/10 and 2/10
    pts = np.array([[2.0, 0, 0], [-2, 0, 0], [0, 1, 0], [0, -1, 0]])
    v["pca_axes_Z"] = pts[:, :2]
    var = np.sum(pts ** 2, axis=0)
    v["pca_axes_explained"] = var[:2] / var.sum()
    # 02 · interpolation of W = (0, 2) and (4, 2)
    a, b = np.array([[0.0, 2.0]]), np.array([[4.0, 2.0]])
    v["interpolate_quarter"] = 0.75 * a + 0.25 * b
    v["interpolate_minus_one"] = 2 * a - b
    # 02 · sensitivity: W = I, scores (ln 3, 0) and (0, ln 3), labels 1: p = (3/4, 1/4), (1/4, 3/4)
    p = np.array([[0.75, 0.25], [0.25, 0.75]])
    dscores = (p - np.array([[0.0, 1.0], [0.0, 1.0]])) / 2
    v["sensitivity"] = float(np.sqrt(np.sum(dscores ** 2)))
    # 03 · convolution of 1..9 with a 2 x 2 filter of ones
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    ones = np.ones((1, 1, 2, 2))
    v["conv_ones"] = conv(x, ones, [1.0], 1)
    v["conv_pad_stride"] = conv(np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))), ones, [0.0], 2)
    x2 = np.array([[[[1.0, 2.0], [3.0, 4.0]], [[10.0, 20.0], [30.0, 40.0]]]])
    w2 = np.zeros((2, 2, 2, 2))
    w2[0, 0] = 1.0
    w2[1, 0, 1, 1], w2[1, 1, 0, 0] = 2.0, 1.0
    v["conv_channels"] = conv(x2, w2, [0.0, -5.0], 1)
    # its gradients with dout = ones: dw[k, l] = sum of the windows' entries at (k, l); dx counts windows
    dw = np.zeros((2, 2))
    dx = np.zeros((3, 3))
    for i in range(2):
        for j in range(2):
            dw += x[0, 0, i:i + 2, j:j + 2]
            dx[i:i + 2, j:j + 2] += 1
    v["conv_dw"] = dw[None, None]
    v["conv_dx"] = dx[None, None]
    # 03 · max pooling of 0..15 (4 x 4)
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    v["pool_2x2"] = pool(x, 2, 2, 2)
    v["pool_3x3"] = pool(x, 3, 3, 1)
    v["pool_2x1"] = pool(-np.arange(9.0).reshape(1, 1, 3, 3), 2, 1, 1)
    return v


def main():
    for name, value in values().items():
        print(f"{name} = {np.array2string(np.asarray(value), precision=12, separator=', ')}")


if __name__ == "__main__":
    main()
