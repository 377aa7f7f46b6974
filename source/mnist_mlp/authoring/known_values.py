"""The known values hard-coded in the mnist_mlp notebooks' checks, from the definitions.

Nothing here imports nnkit. The checks use inputs chosen so that the values can be
worked out by hand (scores of ln 3 and 0 give softmax probabilities 3/4 and 1/4;
sigmoid(ln 3) = 3/4); this script writes those hand calculations out in plain numpy
and prints the numbers, to 12 digits, that the cells compare with:

    .venv/bin/python source/mnist_mlp/authoring/known_values.py
"""
from __future__ import annotations

import numpy as np

LN3 = np.log(3.0)


def softmax(s):
    e = np.exp(s - s.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def data_loss(s, y):
    return float(np.mean(-np.log(softmax(s)[np.arange(len(y)), y])))


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def show(name, value):
    print(f"{name} = {np.array2string(np.asarray(value), precision=12, separator=', ')}")


def main():
    # 01 · softmax_loss: p = (3/4, 1/4) and (1/4, 3/4), label 0 both: losses ln(4/3) and ln 4.
    s = np.array([[LN3, 0.0], [0.0, LN3]])
    y = np.array([0, 0])
    show("softmax_loss loss, (ln(4/3) + ln 4) / 2", (np.log(4 / 3) + np.log(4)) / 2)
    assert np.isclose(data_loss(s, y), (np.log(4 / 3) + np.log(4)) / 2)
    show("softmax_loss dx, (p - onehot) / 2", (softmax(s) - np.eye(2)[y]) / 2)

    # 01 · SoftmaxRegression with W = I, b = (1, -2), reg = 0.5 on the same X: scores X + b.
    W, b, reg = np.eye(2), np.array([1.0, -2.0]), 0.5
    scores = s @ W + b
    show("SoftmaxRegression scores", scores)
    loss = data_loss(scores, y) + 0.5 * reg * np.sum(W ** 2)
    show("SoftmaxRegression loss (data + 0.5 * 0.5 * 2)", loss)
    d = (softmax(scores) - np.eye(2)[y]) / 2
    show("SoftmaxRegression dW = X.T d + reg W", s.T @ d + reg * W)
    show("SoftmaxRegression db = sum of d", d.sum(axis=0))
    # one SGD step with learning rate 0.1 (train_step)
    show("W after one SGD step, lr 0.1", W - 0.1 * (s.T @ d + reg * W))
    show("b after one SGD step, lr 0.1", b - 0.1 * d.sum(axis=0))

    # 01 · evaluate: scores (ln 3, 0), (0, ln 3), (0, ln 7) with labels 0, 0, 1 -> p(label) 3/4, 1/4, 7/8.
    show("evaluate loss, (ln(4/3) + ln 4 + ln(8/7)) / 3", (np.log(4 / 3) + np.log(4) + np.log(8 / 7)) / 3)

    # 02 · sigmoid at 0, +-ln 3 and its local gradient s (1 - s)
    x = np.array([[-LN3, 0.0, LN3]])
    show("sigmoid(-ln 3, 0, ln 3)", sigmoid(x))
    show("sigmoid backward with dout = (1, 2, 4)", np.array([[1.0, 2.0, 4.0]]) * sigmoid(x) * (1 - sigmoid(x)))

    # 02 · TwoLayerNet with W1 = W2 = I, b1 = (0, -ln 3), b2 = (0, 1), X = (ln 3, 0), (0, ln 3), y = (0, 1)
    X = np.array([[LN3, 0.0], [0.0, LN3]])
    y = np.array([0, 1])
    b1, b2 = np.array([0.0, -LN3]), np.array([0.0, 1.0])
    for name, act in (("sigmoid", sigmoid), ("relu", lambda a: np.maximum(a, 0))):
        scores = act(X + b1) + b2
        show(f"TwoLayerNet {name} scores", scores)
        show(f"TwoLayerNet {name} loss, reg 0", data_loss(scores, y))
        show(f"TwoLayerNet {name} loss, reg 0.1 (+ 0.5 * 0.1 * 4)", data_loss(scores, y) + 0.2)
    # by hand: sigmoid rows (3/4, 1/4) + b2 and (1/2, 1/2) + b2: losses ln(1 + e^0.5), ln(1 + e^-1)
    show("sigmoid loss by hand", (np.log(1 + np.exp(0.5)) + np.log(1 + np.exp(-1.0))) / 2)
    # relu rows (ln 3, 0) + b2 and (0, 0) + b2: losses ln(1 + e^(1 - ln 3)), ln(1 + e^-1)
    show("relu loss by hand", (np.log(1 + np.exp(1 - LN3)) + np.log(1 + np.exp(-1.0))) / 2)


if __name__ == "__main__":
    main()
