"""The known values hard-coded in the notebooks' checks, computed from the definitions.

Nothing here imports nnkit: every value comes from a few lines of plain numpy
written from the formula (CS231n conventions), so a notebook check compares the
student's code with the definition, not with the reference package.
``tests/notebooks/test_known_values.py`` recomputes them and compares them with
the numbers written in the notebooks.

Run ``python source/fcnets/authoring/known_values.py`` to print them.
"""
from __future__ import annotations

import numpy as np


# ---------------------------------------------------------------- definitions
def affine(x, w, b):
    return x.reshape(x.shape[0], -1) @ w + b


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def leaky_relu(x, alpha=0.01):
    return np.where(x > 0, x, alpha * x)


def svm_scores_loss(x, y):
    """(1/N) sum_i sum_{j != y_i} max(0, x_ij - x_iy_i + 1), with a loop."""
    total = 0.0
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            if j != y[i]:
                total += max(0.0, x[i, j] - x[i, y[i]] + 1.0)
    return total / x.shape[0]


def softmax_scores_loss(x, y):
    """(1/N) sum_i -log softmax(x_i)[y_i], via log-sum-exp with the max taken out."""
    m = x.max(axis=1, keepdims=True)
    logsum = np.log(np.exp(x - m).sum(axis=1)) + m[:, 0]
    return float(np.mean(logsum - x[np.arange(len(y)), y]))


def two_layer_toy():
    """The CS231n toy TwoLayerNet: params set by linspace; scores and losses."""
    N, D, H, C = 3, 5, 50, 7
    X = np.linspace(-5.5, 4.5, num=N * D).reshape(D, N).T
    y = np.asarray([0, 5, 1])
    W1 = np.linspace(-0.7, 0.3, num=D * H).reshape(D, H)
    b1 = np.linspace(-0.1, 0.9, num=H)
    W2 = np.linspace(-0.3, 0.4, num=H * C).reshape(H, C)
    b2 = np.linspace(-0.9, 0.1, num=C)
    scores = np.maximum(X @ W1 + b1, 0) @ W2 + b2
    data_loss = softmax_scores_loss(scores, y)
    reg_loss = lambda reg: data_loss + 0.5 * reg * (np.sum(W1 ** 2) + np.sum(W2 ** 2))
    return scores, data_loss, reg_loss(1.0)


def fc_toy(hidden_dims=(20, 30), D=15, C=10, N=2):
    """A FullyConnectedNet with params set by linspace; loss at reg 0 and 3.14."""
    dims = [D, *hidden_dims, C]
    X = np.linspace(-1.0, 1.0, num=N * D).reshape(N, D)
    y = np.arange(N) % C
    Ws, bs = [], []
    for i in range(len(dims) - 1):
        Ws.append(np.linspace(-0.2, 0.3, num=dims[i] * dims[i + 1]).reshape(dims[i], dims[i + 1]) * (i + 1) / len(dims))
        bs.append(np.linspace(-0.1, 0.1, num=dims[i + 1]))
    h = X
    for W, b in zip(Ws[:-1], bs[:-1]):
        h = np.maximum(h @ W + b, 0)
    scores = h @ Ws[-1] + bs[-1]
    data_loss = softmax_scores_loss(scores, y)
    l2 = sum(np.sum(W ** 2) for W in Ws)
    return data_loss, data_loss + 0.5 * 3.14 * l2


def linear_toy():
    """Linear classifier losses (reg * sum(W**2)) on a fixed small problem."""
    rng = np.random.RandomState(0)
    W = rng.randn(6, 4) * 0.1
    X = rng.randn(8, 6)
    y = rng.randint(4, size=8)
    scores = X @ W
    svm = svm_scores_loss(scores, y) + 0.1 * np.sum(W ** 2)
    soft = softmax_scores_loss(scores, y) + 0.1 * np.sum(W ** 2)
    return svm, soft


def sgd_momentum(w, dw, v, lr, mu=0.9):
    v = mu * v - lr * dw
    return w + v, v


def rmsprop(w, dw, cache, lr, decay=0.99, eps=1e-8):
    cache = decay * cache + (1 - decay) * dw ** 2
    return w - lr * dw / (np.sqrt(cache) + eps), cache


def adam(w, dw, m, v, t, lr, b1=0.9, b2=0.999, eps=1e-8):
    t = t + 1
    m = b1 * m + (1 - b1) * dw
    v = b2 * v + (1 - b2) * dw ** 2
    mhat, vhat = m / (1 - b1 ** t), v / (1 - b2 ** t)
    return w - lr * mhat / (np.sqrt(vhat) + eps), m, v, t


def optim_inputs(N=4, D=5):
    w = np.linspace(-0.4, 0.6, num=N * D).reshape(N, D)
    dw = np.linspace(-0.6, 0.4, num=N * D).reshape(N, D)
    return w, dw


# ---------------------------------------------------------------- the values
def values() -> dict:
    out = {}
    x = np.linspace(-0.1, 0.5, num=2 * 120).reshape(2, 4, 5, 6)
    w = np.linspace(-0.2, 0.3, num=120 * 3).reshape(120, 3)
    b = np.linspace(-0.3, 0.1, num=3)
    out["affine_forward"] = affine(x, w, b)
    xr = np.linspace(-0.5, 0.5, num=12).reshape(3, 4)
    out["relu_forward"] = np.maximum(xr, 0)
    xs = np.linspace(-3.0, 3.0, num=12).reshape(3, 4)
    out["sigmoid_forward"] = sigmoid(xs)
    out["leaky_relu_forward"] = leaky_relu(xr, 0.01)
    out["leaky_relu_forward_0.2"] = leaky_relu(xr, 0.2)
    rng = np.random.RandomState(231)
    xl = 0.001 * rng.randn(50, 10)
    yl = rng.randint(10, size=50)
    out["svm_loss"] = svm_scores_loss(xl, yl)
    out["softmax_loss"] = softmax_scores_loss(xl, yl)
    out["two_layer_scores"], out["two_layer_loss"], out["two_layer_loss_reg1"] = two_layer_toy()
    out["fc_loss"], out["fc_loss_reg"] = fc_toy()
    out["linear_svm_loss"], out["linear_softmax_loss"] = linear_toy()
    w, dw = optim_inputs()
    v = np.linspace(0.6, 0.9, num=20).reshape(4, 5)
    out["sgd_momentum_w"], out["sgd_momentum_v"] = sgd_momentum(w, dw, v, 1e-3)
    cache = np.linspace(0.6, 0.9, num=20).reshape(4, 5)
    out["rmsprop_w"], out["rmsprop_cache"] = rmsprop(w, dw, cache, 1e-2)
    m = np.linspace(0.6, 0.9, num=20).reshape(4, 5)
    vv = np.linspace(0.7, 0.5, num=20).reshape(4, 5)
    out["adam_w"], out["adam_m"], out["adam_v"], _ = adam(w, dw, m, vv, 5, 1e-2)
    return out


if __name__ == "__main__":
    np.set_printoptions(precision=10, linewidth=110)
    for k, v in values().items():
        print(k, "=", repr(v) if np.ndim(v) else f"{v:.12f}")
