"""The nnkit pieces of the generalization assignment, against values by hand and by formulas written here.

conv_layers (naive and fast), classifiers.cnn.ConvNet, regression, analysis, the nets'
input_grad, the Solver's restore_best, the new vis_utils plots, and the ConvNet budgets of the
grader's saved-model reader.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from nnkit import analysis, conv_layers as CL, regression as R
from nnkit.classifiers import fc_net
from nnkit.classifiers.cnn import ConvNet
from nnkit.classifiers.fc_net import FullyConnectedNet, TwoLayerNet
from nnkit.solver import Solver, load_model, save_model


def numeric_grad(f, x, h=1e-6):
    """Centred differences of the scalar f at every entry of x (written here, not nnkit's)."""
    g = np.zeros_like(x, dtype=np.float64)
    for ix in np.ndindex(x.shape):
        old = x[ix]
        x[ix] = old + h
        fp = f()
        x[ix] = old - h
        fm = f()
        x[ix] = old
        g[ix] = (fp - fm) / (2 * h)
    return g


def conv_by_formula(x, w, b, stride, pad):
    """out[n, f, i, j] = b[f] + sum_{c,k,l} xp[n, c, i s + k, j s + l] w[f, c, k, l], one einsum per output position."""
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    xp = np.zeros((N, C, H + 2 * pad, W + 2 * pad))
    xp[:, :, pad:pad + H, pad:pad + W] = x
    Ho, Wo = (H + 2 * pad - HH) // stride + 1, (W + 2 * pad - WW) // stride + 1
    out = np.empty((N, F, Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            patch = xp[:, :, i * stride:i * stride + HH, j * stride:j * stride + WW]
            out[:, :, i, j] = np.einsum("nckl,fckl->nf", patch, w) + b
    return out


# ---------------------------------------------------------------------------
# conv_layers
# ---------------------------------------------------------------------------
def test_conv_forward_by_hand():
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    w = np.ones((1, 1, 2, 2))
    for forward in (CL.conv_forward_naive, CL.conv_forward_fast):
        out, _ = forward(x, w, np.array([1.0]), {"stride": 1, "pad": 0})
        assert np.array_equal(out, [[[[13.0, 17.0], [25.0, 29.0]]]])
        out, _ = forward(x, w, np.array([0.0]), {"stride": 2, "pad": 1})
        assert np.array_equal(out, [[[[1.0, 5.0], [11.0, 28.0]]]])


@pytest.mark.parametrize("shape", [(2, 3, 7, 8, 4, 3, 3, 1, 1), (3, 2, 9, 7, 3, 3, 2, 2, 1), (2, 1, 6, 6, 2, 5, 5, 1, 0),
                                   (2, 2, 8, 8, 3, 4, 4, 3, 2)])
def test_conv_naive_and_fast_against_the_formula_and_numeric_gradients(shape):
    N, C, H, W, F, HH, WW, s, p = shape
    rng = np.random.default_rng(sum(shape))
    x, w, b = rng.standard_normal((N, C, H, W)), rng.standard_normal((F, C, HH, WW)), rng.standard_normal(F)
    cp = {"stride": s, "pad": p}
    expected = conv_by_formula(x, w, b, s, p)
    out_n, cache_n = CL.conv_forward_naive(x, w, b, cp)
    out_f, cache_f = CL.conv_forward_fast(x, w, b, cp)
    np.testing.assert_allclose(out_n, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out_f, expected, rtol=1e-12, atol=1e-12)
    assert out_f.flags.c_contiguous
    dout = rng.standard_normal(expected.shape)
    for name, arr in (("x", x), ("w", w), ("b", b)):
        num = numeric_grad(lambda: float(np.sum(conv_by_formula(x, w, b, s, p) * dout)), arr)
        got_n = dict(zip("xwb", CL.conv_backward_naive(dout, cache_n)))[name]
        got_f = dict(zip("xwb", CL.conv_backward_fast(dout, cache_f)))[name]
        assert got_n.shape == got_f.shape == arr.shape
        np.testing.assert_allclose(got_n, num, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(got_f, got_n, rtol=1e-10, atol=1e-11)


def test_conv_float32_keeps_dtype_and_im2col_layout():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 5, 5)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = np.zeros(4, np.float32)
    out, cache = CL.conv_forward_fast(x, w, b, {"stride": 1, "pad": 1})
    dx, dw, db = CL.conv_backward_fast(np.ones_like(out), cache)
    assert out.dtype == dx.dtype == dw.dtype == db.dtype == np.float32
    cols = CL.im2col(x, 3, 3, 1)  # no padding here: 3 x 3 outputs per image
    assert cols.shape == (27, 2 * 9)
    # column (n * 3 + i) * 3 + j is the window of output (i, j) of image n, ordered as w[f] is
    assert np.array_equal(cols[:, (1 * 3 + 2) * 3 + 1], x[1, :, 2:5, 1:4].ravel())


def test_conv_bad_arguments_say_why():
    x, w, b = np.zeros((1, 2, 4, 4)), np.zeros((3, 2, 5, 5)), np.zeros(3)
    with pytest.raises(ValueError, match="does not fit"):
        CL.conv_forward_naive(x, w, b, {"stride": 1, "pad": 0})
    with pytest.raises(ValueError, match="channels"):
        CL.conv_forward_fast(x, np.zeros((3, 1, 2, 2)), b, {"stride": 1})
    with pytest.raises(ValueError, match="stride"):
        CL.conv_forward_fast(x, np.zeros((3, 2, 2, 2)), b, {"stride": 0})


def test_max_pool_by_hand_ties_and_overlap():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    p2 = {"pool_height": 2, "pool_width": 2, "stride": 2}
    for fwd, bwd in ((CL.max_pool_forward_naive, CL.max_pool_backward_naive),
                     (CL.max_pool_forward_fast, CL.max_pool_backward_fast)):
        out, cache = fwd(x, p2)
        assert np.array_equal(out, [[[[5.0, 7.0], [13.0, 15.0]]]])
        dx = bwd(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]), cache)
        assert dx[0, 0, 1, 1] == 1 and dx[0, 0, 1, 3] == 2 and dx[0, 0, 3, 1] == 3 and dx[0, 0, 3, 3] == 4
        assert dx.sum() == 10
        _, cache = fwd(np.zeros((1, 1, 2, 2)), p2)  # ties: the first maximum takes it all
        assert np.array_equal(bwd(np.array([[[[3.0]]]]), cache), [[[[3.0, 0.0], [0.0, 0.0]]]])
        z = np.zeros((1, 1, 3, 3))
        z[0, 0, 1, 1] = 9.0
        _, cache = fwd(z, {"pool_height": 2, "pool_width": 2, "stride": 1})
        assert bwd(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]), cache)[0, 0, 1, 1] == 10.0


@pytest.mark.parametrize("pool", [(2, 2, 2), (3, 2, 1), (2, 3, 2), (3, 3, 3)])
def test_max_pool_naive_and_fast_against_numeric_gradients(pool):
    ph, pw, s = pool
    rng = np.random.default_rng(ph * 10 + pw)
    x = rng.standard_normal((2, 3, 7, 8))
    pp = {"pool_height": ph, "pool_width": pw, "stride": s}
    Ho, Wo = 1 + (7 - ph) // s, 1 + (8 - pw) // s
    expected = np.array([[[[x[n, c, i * s:i * s + ph, j * s:j * s + pw].max() for j in range(Wo)] for i in range(Ho)]
                          for c in range(3)] for n in range(2)])
    (o_n, c_n), (o_f, c_f) = CL.max_pool_forward_naive(x, pp), CL.max_pool_forward_fast(x, pp)
    assert np.array_equal(o_n, expected) and np.array_equal(o_f, expected)
    dout = rng.standard_normal(expected.shape)
    num = numeric_grad(lambda: float(np.sum(CL.max_pool_forward_naive(x, pp)[0] * dout)), x)
    np.testing.assert_allclose(CL.max_pool_backward_naive(dout, c_n), num, atol=1e-7)
    np.testing.assert_allclose(CL.max_pool_backward_fast(dout, c_f), num, atol=1e-7)


def test_sandwich_matches_its_parts():
    rng = np.random.default_rng(9)
    x, w, b = rng.standard_normal((2, 2, 8, 8)), rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3)
    cp, pp = {"stride": 1, "pad": 1}, {"pool_height": 2, "pool_width": 2, "stride": 2}
    out, cache = CL.conv_relu_pool_forward(x, w, b, cp, pp)
    a = np.maximum(conv_by_formula(x, w, b, 1, 1), 0)
    assert np.allclose(out, a.reshape(2, 3, 4, 2, 4, 2).max(axis=(3, 5)))
    dout = rng.standard_normal(out.shape)
    dx = CL.conv_relu_pool_backward(dout, cache)[0]
    num = numeric_grad(lambda: float(np.sum(CL.conv_relu_pool_forward(x, w, b, cp, pp)[0] * dout)), x)
    np.testing.assert_allclose(dx, num, atol=1e-6)


# ---------------------------------------------------------------------------
# ConvNet
# ---------------------------------------------------------------------------
def test_convnet_lenet_shapes_and_parameter_count():
    model = ConvNet(seed=0)
    shapes = {k: v.shape for k, v in model.params.items()}
    assert shapes == {"W1": (6, 1, 5, 5), "b1": (6,), "W2": (16, 6, 5, 5), "b2": (16,), "W3": (400, 120),
                      "b3": (120,), "W4": (120, 84), "b4": (84,), "W5": (84, 10), "b5": (10,)}
    assert sum(v.size for v in model.params.values()) == 150 + 6 + 2400 + 16 + 48000 + 120 + 10080 + 84 + 840 + 10 == 61706
    assert analysis.count_params(model) == 61706
    # He initialisation: std sqrt(2 / fan_in) per layer, biases zero.
    assert abs(model.params["W3"].std() / math.sqrt(2 / 400) - 1) < 0.05
    assert all(np.all(model.params[f"b{i}"] == 0) for i in range(1, 6))
    # the same seed, the same weights; RandomState(seed) draws them layer by layer
    rng = np.random.RandomState(0)
    assert np.array_equal(ConvNet(seed=0).params["W1"], math.sqrt(2 / 25) * rng.randn(6, 1, 5, 5))


def test_convnet_loss_gradients_and_reshaped_inputs():
    model = ConvNet(input_dim=(2, 8, 8), num_filters=(3, 2), filter_size=3, pad=1, hidden_dims=(4,), num_classes=3,
                    weight_scale=0.5, reg=0.3, seed=1)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((3, 2, 8, 8)), np.array([0, 2, 1])
    loss, grads = model.loss(X, y)
    assert loss == pytest.approx(model.loss(X.reshape(3, -1), y, grads=False), rel=1e-12)
    for name, p in model.params.items():
        num = numeric_grad(lambda: model.loss(X, y, grads=False), p, h=1e-5)
        np.testing.assert_allclose(grads[name], num, rtol=1e-4, atol=1e-7, err_msg=name)
    # the L2 term covers the filters and the affine weights, not the biases
    reg0 = model.loss(X, y, grads=False)
    model.reg = 0.0
    data = model.loss(X, y, grads=False)
    weights = sum(np.sum(model.params[f"W{i}"] ** 2) for i in range(1, 5))
    assert reg0 - data == pytest.approx(0.5 * 0.3 * weights, rel=1e-10)


def test_convnet_saves_loads_and_refuses_bad_configs(tmp_path):
    model = ConvNet(input_dim=(1, 12, 12), num_filters=(4,), filter_size=3, hidden_dims=(7,), seed=3)
    save_model(model, tmp_path / "cnn.npz")
    back = load_model(tmp_path / "cnn.npz")
    assert type(back).__name__ == "ConvNet" and back.get_config() == model.get_config()
    for k, v in model.params.items():
        assert np.array_equal(back.params[k], v)
    with pytest.raises(ValueError, match="too small"):
        ConvNet(input_dim=(1, 6, 6), num_filters=(2, 2, 2), filter_size=3)
    with pytest.raises(ValueError, match="input_dim"):
        ConvNet(input_dim=(32, 32))


# ---------------------------------------------------------------------------
# regression
# ---------------------------------------------------------------------------
def test_mse_loss_by_hand():
    loss, d = R.mse_loss(np.array([[1.0], [2.0], [3.0], [4.0]]), np.array([[0.0], [2.0], [5.0], [4.0]]))
    assert loss == 1.25 and np.array_equal(d, [[0.5], [0.0], [-1.0], [0.0]])
    loss, d = R.mse_loss(np.zeros((2, 3)), np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]))
    assert loss == pytest.approx(14 / 6) and np.allclose(d, [[-1 / 3, -2 / 3, -1], [0, 0, 0]])
    with pytest.raises(ValueError, match="same"):
        R.mse_loss(np.zeros((3, 1)), np.zeros(3))


def test_target_widths_and_regression_net():
    assert R.target_function(0.0) == 1.0
    assert R.target_function(0.2) == pytest.approx(0.0, abs=1e-15)  # sin(pi) / pi
    assert R.target_function(0.1) == pytest.approx(np.sin(0.5 * np.pi) / (0.5 * np.pi))
    assert R.mlp_param_count([10, 10]) == (10 + 10) + (100 + 10) + (10 + 1)
    for depth in (1, 2, 4):
        w = R.widths_for_budget(depth, 400)
        assert len(w) == depth and len(set(w)) == 1
        near = [abs(R.mlp_param_count([v] * depth) - 400) for v in (w[0] - 1, w[0], w[0] + 1)]
        assert near[1] == min(near)
    net = R.RegressionNet([5, 4], input_dim=2, output_dim=3, seed=0)
    bound = 1 / math.sqrt(2)
    assert np.all(np.abs(net.params["W1"]) <= bound) and np.all(np.abs(net.params["b1"]) <= bound)
    assert np.any(net.params["b1"] != 0)  # the biases spread the first layer's kinks
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((6, 2)), rng.standard_normal((6, 3))
    pred = net.loss(X)
    h = X
    for i in (1, 2):
        h = np.maximum(h @ net.params[f"W{i}"] + net.params[f"b{i}"], 0)
    assert np.allclose(pred, h @ net.params["W3"] + net.params["b3"])
    loss, grads = net.loss(X, y)
    assert loss == pytest.approx(np.mean((pred - y) ** 2))
    for name, p in net.params.items():
        np.testing.assert_allclose(grads[name], numeric_grad(lambda: net.loss(X, y, grads=False), p), atol=1e-7)


def test_fit_records_and_learns():
    x = np.linspace(0, 1, 50)[:, None]
    y = R.target_function(x)
    net = R.RegressionNet([16], seed=0)
    h = R.fit(net, x, y, num_epochs=30, batch_size=10, learning_rate=1e-2, seed=0, record_every=10)
    assert len(h.loss) == 31 and len(h.grad_norm) == 30 * 5
    assert h.loss[-1] < 0.5 * h.loss[0]
    assert h.snapshot_epochs == [0, 10, 20, 30] and len(h.snapshots) == 4
    assert h.snapshots[-1].shape == (16 + 16 + 16 + 1,)
    assert np.array_equal(h.snapshots[-1], analysis.flatten_params(net.params))
    assert h.loss[-1] == pytest.approx(net.loss(x, y, grads=False))
    full = R.fit(R.RegressionNet([8], seed=1), x, y, num_epochs=5)  # the whole set per step
    assert len(full.loss) == 6 and len(full.grad_norm) == 5


# ---------------------------------------------------------------------------
# analysis
# ---------------------------------------------------------------------------
def test_count_grad_norm_interpolate():
    class Bag:
        params = {"a": np.zeros((2, 3, 4)), "b": np.zeros(7), "c": np.zeros(())}

    assert analysis.count_params(Bag()) == 32 and isinstance(analysis.count_params(Bag()), int)
    assert analysis.grad_norm({"W": np.array([[3.0, 0.0]]), "b": np.array([4.0])}) == 5.0
    p1, p2 = {"W": np.array([0.0, 2.0]), "b": np.array([1.0])}, {"W": np.array([4.0, 2.0]), "b": np.array([-1.0])}
    q = analysis.interpolate_params(p1, p2, 0.25)
    assert np.array_equal(q["W"], [1.0, 2.0]) and np.array_equal(q["b"], [0.5])
    assert np.array_equal(analysis.interpolate_params(p1, p2, -1)["W"], [-4.0, 2.0])
    assert np.array_equal(p1["W"], [0.0, 2.0]) and analysis.interpolate_params(p1, p2, 0.0)["W"] is not p1["W"]
    with pytest.raises(ValueError, match="same parameter"):
        analysis.interpolate_params(p1, {"W": np.zeros(2)}, 0.5)


def test_pca_against_the_covariance_eigenvectors():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 6)) @ np.diag([5.0, 3, 2, 1, 0.5, 0.1]) + 7.0
    Z, comps, explained = analysis.pca_project(X, 3)
    evals, evecs = np.linalg.eigh(np.cov(X.T, bias=True))
    order = np.argsort(evals)[::-1][:3]
    for k in range(3):
        sign = np.sign(comps[k] @ evecs[:, order[k]])
        np.testing.assert_allclose(sign * comps[k], evecs[:, order[k]], atol=1e-10)
        np.testing.assert_allclose(sign * Z[:, k], (X - X.mean(0)) @ evecs[:, order[k]], atol=1e-9)
    np.testing.assert_allclose(explained, evals[order] / evals.sum(), rtol=1e-10)
    with pytest.raises(ValueError, match="k"):
        analysis.pca_project(X, 7)


def test_input_grad_by_hand_numeric_and_in_chunks(monkeypatch):
    net = FullyConnectedNet([], input_dim=2, num_classes=2, dtype=np.float64)
    net.params = {"W1": np.eye(2), "b1": np.zeros(2)}
    X = np.array([[np.log(3), 0.0], [0.0, np.log(3)]])
    loss, grads, dX = net.loss(X, np.array([1, 1]), input_grad=True)
    np.testing.assert_allclose(dX, [[3 / 8, -3 / 8], [1 / 8, -1 / 8]], atol=1e-12)
    assert analysis.input_grad_norm(net, X, np.array([1, 1])) == pytest.approx(math.sqrt(20) / 8, rel=1e-12)
    rng = np.random.default_rng(2)
    for model in (FullyConnectedNet([6, 5], input_dim=12, num_classes=3, weight_scale=0.5, reg=0.4,
                                    dtype=np.float64, seed=0),
                  TwoLayerNet(12, 7, 3, weight_scale=0.5, reg=0.2, activation="sigmoid")):
        X, y = rng.standard_normal((9, 3, 4)), rng.integers(0, 3, 9)
        plain_loss, plain_grads = model.loss(X, y)
        num = numeric_grad(lambda: model.loss(X, y, grads=False), X)
        for chunk in (256, 4):
            monkeypatch.setattr(fc_net, "_INPUT_GRAD_CHUNK", chunk)
            loss, grads, dX = model.loss(X, y, input_grad=True)
            assert loss == pytest.approx(plain_loss, rel=1e-12) and dX.shape == X.shape
            for k in plain_grads:
                np.testing.assert_allclose(grads[k], plain_grads[k], rtol=1e-10, atol=1e-13)
            np.testing.assert_allclose(dX, num, rtol=1e-5, atol=1e-9)
    with pytest.raises(ValueError, match="needs the labels"):
        net.loss(X[:, :1, :2].reshape(9, 2), input_grad=True)


def test_loss_and_accuracy_and_shuffled_labels():
    class Fixed:
        params = {}

        def loss(self, X):
            return np.asarray(X, dtype=np.float64)

    S = np.array([[np.log(3), 0.0], [0.0, np.log(3)], [0.0, np.log(7)]])
    loss, acc = analysis.loss_and_accuracy(Fixed(), S, np.array([0, 0, 1]), batch_size=2)
    assert loss == pytest.approx((np.log(4 / 3) + np.log(4) + np.log(8 / 7)) / 3)
    assert acc == pytest.approx(2 / 3)
    y = np.arange(20) % 4
    s = analysis.shuffled_labels(y, seed=3)
    assert sorted(s) == sorted(y) and not np.array_equal(s, y)
    assert np.array_equal(s, analysis.shuffled_labels(y, seed=3))


def test_record_training_keeps_the_last_params_and_solver_restore_best():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 5))
    y = (X[:, 0] > 0).astype(int)
    data = {"X_train": X, "y_train": y, "X_val": X[:20], "y_val": y[:20], "X_test": X[20:], "y_test": y[20:]}
    model = FullyConnectedNet([8], input_dim=5, num_classes=2, weight_scale=0.1, dtype=np.float64, seed=0)
    rec = analysis.record_training(model, data, 4, update_rule="sgd", optim_config={"learning_rate": 0.5},
                                   batch_size=10, seed=0)
    assert rec["epoch"] == [0, 1, 2, 3, 4] and len(rec["train_loss"]) == len(rec["test_acc"]) == 5
    assert rec["train_loss"][-1] < rec["train_loss"][0]
    assert rec["train_acc"][-1] == analysis.loss_and_accuracy(model, X, y)[1]
    assert len(rec["solver"].loss_history) == 4 * 6
    with pytest.raises(ValueError, match="sets restore_best"):
        analysis.record_training(model, data, 1, restore_best=True)

    # The Solver puts the best validation params back by default, keeps the last ones with restore_best=False.
    # The validation labels are the wrong ones, so that learning makes the validation accuracy worse: the
    # best params are those of the first check, not the last.
    flipped = dict(data, y_val=1 - y[:20])
    for restore in (True, False):
        m = FullyConnectedNet([8], input_dim=5, num_classes=2, weight_scale=0.1, dtype=np.float64, seed=0)
        solver = Solver(m, flipped, update_rule="sgd", optim_config={"learning_rate": 3.0}, batch_size=10, num_epochs=3,
                        restore_best=restore, verbose=False, progress=False, seed=1)
        last = {}

        def rule(w, dw, config, last=last):
            w = w - config["learning_rate"] * dw
            last[id(config)] = w
            return w, config

        solver.update_rule = rule
        solver.train()
        final = {p: last[id(solver.optim_configs[p])] for p in m.params}
        if restore:
            assert all(np.array_equal(m.params[p], solver.best_params[p]) for p in m.params)
            assert all(m.params[p] is not solver.best_params[p] for p in m.params)
            assert not all(np.array_equal(m.params[p], final[p]) for p in m.params)  # the best epoch was not the last
        else:
            assert all(m.params[p] is final[p] for p in m.params)
    with pytest.raises(ValueError, match="restore_best"):
        Solver(m, data, restore_best="yes")


def test_load_digits_one_channel_and_pooled():
    full = analysis.load_digits("embedded")
    assert full["X_train"].shape == (1266, 1, 32, 32) and full["X_test"].shape == (353, 1, 32, 32)
    assert full["X_train"].dtype == np.float64 and -1.01 < full["X_train"].min() and full["X_train"].max() < 1.01
    assert abs(full["X_train"].mean()) < 1e-6  # the training mean image was subtracted
    small = analysis.load_digits("embedded", pool=2)
    assert small["X_train"].shape == (1266, 1, 16, 16)
    np.testing.assert_allclose(small["X_train"][5, 0, 3, 4], full["X_train"][5, 0, 6:8, 8:10].mean(), rtol=1e-12)
    assert np.array_equal(small["y_train"], full["y_train"])
    with pytest.raises(ValueError, match="digits"):
        analysis.load_digits("cifar10")
    with pytest.raises(ValueError, match="pool"):
        analysis.load_digits("embedded", pool=3)


def test_new_plots_return_figures():
    import matplotlib.pyplot as plt

    from nnkit import vis_utils

    figs = [vis_utils.plot_lines([1, 2, 3], {"a": [1, 2, 3], "b": [3, 2, 1]}, logy=True, marker="o"),
            vis_utils.plot_fits(np.linspace(0, 1, 5), np.zeros(5), {"net": np.ones((5, 1))}),
            vis_utils.plot_pca_paths(np.random.default_rng(0).standard_normal((6, 2)), [0, 0, 0, 1, 1, 1],
                                     labels=list(range(6))),
            vis_utils.plot_loss_and_accuracy([1, 10, 100], {"train_loss": [1, 0.5, 0.1], "train_acc": [0.1, 0.5, 0.9],
                                                            "test_loss": [1, 0.6, 0.3], "test_acc": [0.1, 0.4, 0.8]},
                                             logx=True)]
    assert all(isinstance(f, plt.Figure) for f in figs)
    assert len(figs[2].axes[0].lines) == 6  # two paths, each with its start and end marker
    with pytest.raises(ValueError, match="Z must be"):
        vis_utils.plot_pca_paths(np.zeros((3, 3)), [0, 0, 0])
    plt.close("all")


# ---------------------------------------------------------------------------
# The grader's reader of saved ConvNets (autograder/trusted/models.py)
# ---------------------------------------------------------------------------
def _tamper(tmp_path, **config):
    model = ConvNet(seed=0)
    save_model(model, tmp_path / "models" / "cnn.npz")
    with np.load(tmp_path / "models" / "cnn.npz") as z:
        entries = {k: z[k] for k in z.files}
    meta = json.loads(str(entries["__nnkit__"]))
    meta["config"].update(config)
    entries["__nnkit__"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "models" / "cnn.npz", **entries)


@pytest.mark.parametrize("config, words", [
    ({"num_filters": [4096, 16]}, "multiply-adds"),
    ({"filter_size": 31}, "filter_size must be an integer in [1, 11]"),
    ({"input_dim": [3, 32, 32]}, "the data here needs 1024 numbers"),
    ({"num_filters": [6, 16, 8, 8, 8]}, "num_filters must be a list of 1 to 4"),
    ({"pad": 9}, "pad must be"),
    ({"activation": "relu"}, "unexpected config entries"),
    ({"hidden_dims": [120, 84], "num_filters": [6, 16]}, "below the threshold"),  # untrained weights
])
def test_saved_convnets_are_checked_before_they_are_built(tmp_path, config, words):
    from autograder.trusted import check_models

    _tamper(tmp_path, **config)
    row = check_models(tmp_path, "generalization", "embedded")["checks"][0]
    assert row["status"] == "failed" and words in row["message"], row["message"]
