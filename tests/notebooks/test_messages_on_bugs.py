"""Check cells catch the classic bugs, and their messages name the likely cause.

Each test runs one graded cell's code in-process (no kernel) with one nnkit
function replaced by a version carrying a classic bug (cs231n_anatomy.md §6),
written here from the definition. The cell must raise an AssertionError whose
message points at the cause. The same harness runs every cell on the
reference first, so a failure is the bug's, not the harness's.
"""
from __future__ import annotations

import ast
import contextlib
from pathlib import Path

import nbformat
import numpy as np
import pytest

from nnkit import gradient_check, layer_utils, layers, optim
from nnkit.classifiers import fc_net

FCNETS = Path(__file__).resolve().parents[2] / "source" / "fcnets"


def _cells(notebook: str) -> dict:
    nb = nbformat.read(FCNETS / f"{notebook}.ipynb", as_version=4)
    return {c.get("id"): c.source for c in nb.cells}


def _helpers() -> dict:
    """`_show` and `check_close` exactly as the notebooks' setup cell defines them."""
    setup = ast.parse(_cells("01_layers")["setup"])
    ns = {"np": np, "rel_error": gradient_check.rel_error, "contextlib": contextlib}
    funcs = [n for n in setup.body if isinstance(n, ast.FunctionDef) and n.name in ("_show", "check_close", "explain")]
    assert len(funcs) == 3, "the setup cell must define _show, check_close and explain"
    exec(compile(ast.Module(body=funcs, type_ignores=[]), "<setup>", "exec"), ns)
    return ns


def run_cell(notebook: str, cell_id: str, **overrides):
    ns = _helpers()
    ns.update(eval_numerical_gradient=gradient_check.eval_numerical_gradient,
              eval_numerical_gradient_array=gradient_check.eval_numerical_gradient_array)
    for module in (layers, layer_utils, optim):
        ns.update({k: getattr(module, k) for k in dir(module) if not k.startswith("_")})
    ns.update(TwoLayerNet=fc_net.TwoLayerNet, FullyConnectedNet=fc_net.FullyConnectedNet)
    ns.update(overrides)
    with np.errstate(all="ignore"):
        exec(compile(_cells(notebook)[cell_id], f"{notebook}:{cell_id}", "exec"), ns)


# ---------------------------------------------------------------- buggy versions
def affine_forward_no_reshape(x, w, b):
    return x @ w + b, (x, w, b)  # numpy: matmul's core dimensions do not match on the 4-D x


def relu_forward_in_place(x):
    x[x < 0] = 0
    return x, x


def svm_loss_counts_correct_class(x, y):
    N = x.shape[0]
    margins = np.maximum(0, x - x[np.arange(N), y][:, None] + 1)  # correct class margin (1) kept
    dx = (margins > 0).astype(float)
    dx[np.arange(N), y] -= dx.sum(axis=1)
    return margins.sum() / N, dx / N


def softmax_loss_no_shift(x, y):
    N = x.shape[0]
    p = np.exp(x)
    p /= p.sum(axis=1, keepdims=True)
    loss = -np.mean(np.log(p[np.arange(N), y]))
    p[np.arange(N), y] -= 1
    return loss, p / N


def affine_backward_db_keepdims(dout, cache):
    dx, dw, db = layers.affine_backward(dout, cache)
    return dx, dw, db.reshape(1, -1)


class TwoLayerNetNoHalf(fc_net.TwoLayerNet):
    """L2 term reg * sum(W**2) instead of 0.5 * reg * sum(W**2)."""

    def loss(self, X, y=None):
        out = super().loss(X, y)
        if y is None:
            return out
        loss, grads = out
        W1, W2 = self.params["W1"], self.params["W2"]
        return loss + 0.5 * self.reg * (np.sum(W1 ** 2) + np.sum(W2 ** 2)), grads


class FCNetLastLayerUnregularised(fc_net.FullyConnectedNet):
    """The off-by-one of bug 21: the last weight matrix gets no L2 term (loss and gradient agree)."""

    def loss(self, X, y=None):
        out = super().loss(X, y)
        if y is None:
            return out
        loss, grads = out
        W = self.params[f"W{self.num_layers}"]
        grads[f"W{self.num_layers}"] = grads[f"W{self.num_layers}"] - self.reg * W
        return loss - 0.5 * self.reg * np.sum(W ** 2), grads


def adam_t_after_use(w, dw, config=None):
    config = dict(config or {})
    for k, v in (("learning_rate", 1e-3), ("beta1", 0.9), ("beta2", 0.999), ("epsilon", 1e-8), ("t", 0)):
        config.setdefault(k, v)
    config.setdefault("m", np.zeros_like(w))
    config.setdefault("v", np.zeros_like(w))
    b1, b2, t = config["beta1"], config["beta2"], config["t"]  # t used before the increment
    m = b1 * config["m"] + (1 - b1) * dw
    v = b2 * config["v"] + (1 - b2) * dw ** 2
    next_w = w - config["learning_rate"] * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + config["epsilon"])
    config.update(m=m, v=v, t=t + 1)
    return next_w, config


def sgd_momentum_slide_form(w, dw, config=None):
    config = dict(config or {})
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    v = config["momentum"] * config.get("velocity", np.zeros_like(w)) + dw
    config["velocity"] = v
    return w - config["learning_rate"] * v, config


CASES = [
    ("01_layers", "test_affine_forward", {"affine_forward": affine_forward_no_reshape}, "without reshaping it to (N, D) = (2, 120)"),
    ("01_layers", "test_relu", {"relu_forward": relu_forward_in_place}, "in place"),
    ("01_layers", "test_svm_loss", {"svm_loss": svm_loss_counts_correct_class}, "correct class's own margin"),
    ("01_layers", "test_softmax_loss", {"softmax_loss": softmax_loss_no_shift}, "subtract each row's max"),
    ("01_layers", "test_affine_backward", {"affine_backward": affine_backward_db_keepdims}, "expected shape (5,), got (1, 5)"),
    ("02_two_layer_net", "test_two_layer_loss", {"TwoLayerNet": TwoLayerNetNoHalf}, "0.5 is missing"),
    ("04_fully_connected_nets", "test_fc_init_loss", {"FullyConnectedNet": FCNetLastLayerUnregularised}, "LAST layer"),
    ("04_fully_connected_nets", "test_adam", {"adam": adam_t_after_use}, "t incremented after"),
    ("04_fully_connected_nets", "test_sgd_momentum", {"sgd_momentum": sgd_momentum_slide_form}, "not v = momentum * v + dw"),
]


@pytest.mark.parametrize("notebook,cell_id", sorted({(n, c) for n, c, _, _ in CASES}))
def test_cell_passes_on_the_reference(notebook, cell_id):
    run_cell(notebook, cell_id)


@pytest.mark.parametrize("notebook,cell_id,overrides,hint", CASES, ids=[c[1] + ":" + next(iter(c[2])) for c in CASES])
def test_cell_catches_the_bug_and_names_its_cause(notebook, cell_id, overrides, hint):
    with pytest.raises(AssertionError) as info:
        run_cell(notebook, cell_id, **overrides)
    message = str(info.value)
    assert hint in message, f"{cell_id}: the message does not point at the cause ({hint!r}):\n{message}"
    assert "expected" in message.lower(), f"{cell_id}: the message does not say what was expected:\n{message}"
