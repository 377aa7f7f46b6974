"""TwoLayerNet and FullyConnectedNet: initialisation, loss against a reimplementation
written here, numeric gradients (helper written here), dtypes, config, errors."""
import json

import numpy as np
import pytest

from nnkit.classifiers.fc_net import FullyConnectedNet, TwoLayerNet


def complex_step_grad(f, params, name, h=1e-30):
    """Gradient of f(params) with respect to params[name] by the complex step.

    d f / d p = Im f(p + i h) / h exactly up to rounding: no difference of two
    nearly equal numbers, and the real part (hence every ReLU's on/off state) is
    never perturbed, so no kink can be crossed. f must be written with analytic
    operations only (see reference_loss), as it is evaluated on complex arrays.
    """
    cparams = {k: v.astype(np.complex128) for k, v in params.items()}
    p = cparams[name]
    grad = np.zeros(p.shape)
    for ix in np.ndindex(p.shape):
        p[ix] += 1j * h
        grad[ix] = f(cparams).imag / h
        p[ix] -= 1j * h
    return grad


def rel(a, b):
    assert np.shape(a) == np.shape(b), (np.shape(a), np.shape(b))
    return np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b)))


def reference_scores(params, X, num_layers, masks=None):
    """Forward pass by the definition. Works on complex params (for the complex
    step): the ReLU is x * [Re x > 0]. masks[i - 1], if given, multiplies the
    output of hidden layer i (inverted dropout)."""
    a = X.reshape(X.shape[0], -1).astype(np.float64)
    for i in range(1, num_layers):
        a = a @ params[f"W{i}"] + params[f"b{i}"]
        a = a * (a.real > 0)
        if masks is not None:
            a = a * masks[i - 1]
    return a @ params[f"W{num_layers}"] + params[f"b{num_layers}"]


def reference_loss(params, X, y, reg, num_layers, masks=None):
    """Softmax cross-entropy + 0.5 * reg * sum of squares of EVERY weight matrix."""
    s = reference_scores(params, X, num_layers, masks)
    s = s - s.real.max(axis=1, keepdims=True)
    log_p = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
    data = -np.mean(log_p[np.arange(len(y)), y])
    return data + 0.5 * reg * sum(np.sum(params[f"W{i}"] ** 2) for i in range(1, num_layers + 1))


# ---------------------------------------------------------------- TwoLayerNet
def test_two_layer_init_from_global_rng_layer_by_layer():
    np.random.seed(231)
    model = TwoLayerNet(input_dim=15, hidden_dim=8, num_classes=4, weight_scale=0.3)
    np.random.seed(231)
    W1 = 0.3 * np.random.randn(15, 8)
    W2 = 0.3 * np.random.randn(8, 4)
    np.testing.assert_array_equal(model.params["W1"], W1)
    np.testing.assert_array_equal(model.params["W2"], W2)
    np.testing.assert_array_equal(model.params["b1"], np.zeros(8))
    np.testing.assert_array_equal(model.params["b2"], np.zeros(4))
    assert sorted(model.params) == ["W1", "W2", "b1", "b2"]
    assert all(p.dtype == np.float64 for p in model.params.values())


@pytest.mark.parametrize("reg", [0.0, 0.7])
def test_two_layer_loss_scores_and_gradients(reg):
    rng = np.random.default_rng(0)
    np.random.seed(1)
    model = TwoLayerNet(input_dim=2 * 3 * 2, hidden_dim=10, num_classes=4, weight_scale=0.5, reg=reg)
    model.params["b1"][:] = rng.standard_normal(10) * 0.1
    model.params["b2"][:] = rng.standard_normal(4) * 0.1
    X = rng.standard_normal((5, 2, 3, 2))  # 4-D input
    y = rng.integers(0, 4, 5)
    np.testing.assert_allclose(model.loss(X), reference_scores(model.params, X, 2), rtol=1e-12)
    loss, grads = model.loss(X, y)
    assert loss == pytest.approx(reference_loss(model.params, X, y, reg, 2), rel=1e-12)
    assert sorted(grads) == sorted(model.params)
    for name, p in model.params.items():
        assert grads[name].shape == p.shape and grads[name].dtype == p.dtype
        num = complex_step_grad(lambda P: reference_loss(P, X, y, reg, 2), model.params, name)
        assert rel(grads[name], num) < 1e-7, name


def test_two_layer_regularizes_both_weights_with_half_factor_and_no_bias():
    model = TwoLayerNet(input_dim=3, hidden_dim=2, num_classes=3, reg=2.0)
    # W1 = 0 makes the hidden layer 0 and the scores b2 = 0: data loss log(3).
    model.params["W1"][:] = 0.0
    model.params["W2"][:] = [[1.0, 2.0, 0.0], [0.0, -1.0, 3.0]]  # sum of squares 15
    model.params["b1"][:] = [-5.0, -5.0]  # a bias: not regularized (ReLU kills it)
    loss, grads = model.loss(np.ones((2, 3)), np.array([0, 2]))
    assert loss == pytest.approx(np.log(3) + 0.5 * 2.0 * 15, rel=1e-14)
    np.testing.assert_allclose(grads["W2"], 2.0 * model.params["W2"], rtol=1e-14)  # reg * W
    np.testing.assert_array_equal(grads["b1"], 0.0)


def test_two_layer_config_round_trip_and_errors():
    model = TwoLayerNet(input_dim=6, hidden_dim=3, num_classes=2, weight_scale=0.1, reg=0.5)
    model.reg = 0.25  # the config follows the attribute
    cfg = json.loads(json.dumps(model.get_config()))
    assert cfg == {"input_dim": 6, "hidden_dim": 3, "num_classes": 2, "weight_scale": 0.1, "reg": 0.25}
    assert TwoLayerNet(**cfg).get_config() == cfg
    with pytest.raises(ValueError, match="input_dim = 6"):
        model.loss(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="hidden_dim must be a positive integer"):
        TwoLayerNet(hidden_dim=0)


# ---------------------------------------------------------------- FullyConnectedNet
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fc_init_from_global_rng_layer_by_layer(dtype):
    np.random.seed(5)
    model = FullyConnectedNet([6, 7, 3], input_dim=10, num_classes=4, weight_scale=0.2, dtype=dtype)
    np.random.seed(5)
    sizes = [10, 6, 7, 3, 4]
    assert model.num_layers == 4
    assert sorted(model.params) == sorted([f"{k}{i}" for i in range(1, 5) for k in "Wb"])
    for i in range(1, 5):
        expected = 0.2 * np.random.randn(sizes[i - 1], sizes[i])
        np.testing.assert_array_equal(model.params[f"W{i}"], expected.astype(dtype))
        np.testing.assert_array_equal(model.params[f"b{i}"], np.zeros(sizes[i]))
        assert model.params[f"W{i}"].dtype == dtype and model.params[f"b{i}"].dtype == dtype


def test_fc_seed_draws_what_np_random_seed_draws_and_leaves_global_state():
    np.random.seed(0)
    state = np.random.get_state()[1].copy()
    seeded = FullyConnectedNet([5], input_dim=4, num_classes=3, seed=42, dtype=np.float64)
    np.testing.assert_array_equal(np.random.get_state()[1], state)
    np.random.seed(42)
    plain = FullyConnectedNet([5], input_dim=4, num_classes=3, dtype=np.float64)
    for k in plain.params:
        np.testing.assert_array_equal(seeded.params[k], plain.params[k])


@pytest.mark.parametrize("hidden,reg", [([20, 30], 0.0), ([20, 30], 3.14), ([7], 0.5), ([6, 5, 4, 3], 0.1), ([], 0.2)])
def test_fc_loss_and_gradients_float64(hidden, reg):
    rng = np.random.default_rng(len(hidden) + int(10 * reg))
    np.random.seed(231)
    model = FullyConnectedNet(hidden, input_dim=15, num_classes=10, reg=reg, weight_scale=5e-2, dtype=np.float64)
    for i in range(1, model.num_layers + 1):
        model.params[f"b{i}"][:] = 0.05 * rng.standard_normal(model.params[f"b{i}"].shape)
    X = rng.standard_normal((3, 15))
    y = rng.integers(0, 10, 3)
    np.testing.assert_allclose(model.loss(X), reference_scores(model.params, X, model.num_layers), rtol=1e-12)
    loss, grads = model.loss(X, y)
    assert loss == pytest.approx(reference_loss(model.params, X, y, reg, model.num_layers), rel=1e-12)
    assert sorted(grads) == sorted(model.params)
    for name, p in model.params.items():
        assert grads[name].shape == p.shape and grads[name].dtype == np.float64
        num = complex_step_grad(lambda P: reference_loss(P, X, y, reg, model.num_layers), model.params, name)
        assert rel(grads[name], num) < 1e-7, name


def test_fc_regularizes_the_last_layer_with_half_factor():
    model = FullyConnectedNet([3, 2], input_dim=4, num_classes=3, reg=3.0, dtype=np.float64)
    for k in model.params:
        model.params[k][:] = 0.0
    # Zero W1 makes every hidden layer 0, so the scores are b3 = 0 whatever W2, W3 are.
    model.params["W2"][:] = 1.0  # 3 x 2: sum of squares 6
    model.params["W3"][:] = [[1.0, 0.0, 2.0], [0.0, 0.0, -2.0]]  # sum of squares 9
    loss, grads = model.loss(np.ones((2, 4)), np.array([1, 2]))
    assert loss == pytest.approx(np.log(3) + 0.5 * 3.0 * (6 + 9), rel=1e-14)
    np.testing.assert_allclose(grads["W3"], 3.0 * model.params["W3"], rtol=1e-14)
    np.testing.assert_allclose(grads["W2"], 3.0 * model.params["W2"], rtol=1e-14)


def test_fc_dropout_gradients_with_seed_and_identity_at_test_time():
    rng = np.random.default_rng(9)
    model = FullyConnectedNet([12, 9], input_dim=2 * 2 * 3, num_classes=5, dropout_keep_ratio=0.6,
                              reg=0.1, weight_scale=0.3, dtype=np.float64, seed=3)
    X = rng.standard_normal((4, 2, 2, 3))
    y = rng.integers(0, 5, 4)
    # test mode (no labels): dropout off, plain forward pass
    np.testing.assert_allclose(model.loss(X), reference_scores(model.params, X, 3), rtol=1e-12)
    loss, grads = model.loss(X, y)
    # With a seed, every dropout layer draws its mask from a fresh RandomState(seed):
    masks = [(np.random.RandomState(3).random_sample((4, h)) < 0.6) / 0.6 for h in (12, 9)]
    assert loss == pytest.approx(reference_loss(model.params, X, y, 0.1, 3, masks), rel=1e-12)
    assert loss != pytest.approx(reference_loss(model.params, X, y, 0.1, 3))  # dropout is on
    for name, p in model.params.items():
        num = complex_step_grad(lambda P: reference_loss(P, X, y, 0.1, 3, masks), model.params, name)
        assert rel(grads[name], num) < 1e-7, name


def test_fc_float32_default_casts_input_and_keeps_dtypes():
    np.random.seed(0)
    model = FullyConnectedNet([10, 10], input_dim=12, num_classes=3)
    assert model.dtype == np.float32
    X = np.random.randn(6, 3, 4)  # float64 in
    y = np.array([0, 1, 2, 0, 1, 2])
    assert model.loss(X).dtype == np.float32
    loss, grads = model.loss(X, y)
    assert isinstance(loss, float)
    assert all(grads[k].dtype == np.float32 and grads[k].shape == model.params[k].shape for k in grads)


def test_fc_config_round_trip_and_errors():
    model = FullyConnectedNet([4, 3], input_dim=5, num_classes=2, dropout_keep_ratio=0.5,
                              reg=0.1, weight_scale=0.2, dtype=np.float64, seed=7)
    cfg = json.loads(json.dumps(model.get_config()))
    assert cfg == {"hidden_dims": [4, 3], "input_dim": 5, "num_classes": 2, "dropout_keep_ratio": 0.5,
                   "reg": 0.1, "weight_scale": 0.2, "dtype": "float64", "seed": 7}
    rebuilt = FullyConnectedNet(**cfg)
    assert rebuilt.get_config() == cfg
    for k in model.params:  # same seed: the same weights
        np.testing.assert_array_equal(rebuilt.params[k], model.params[k])
    assert FullyConnectedNet([3], input_dim=2).get_config()["dtype"] == "float32"
    with pytest.raises(ValueError, match="KEEPING"):
        FullyConnectedNet([3], dropout_keep_ratio=0)
    with pytest.raises(ValueError, match=r"hidden_dims\[1\]"):
        FullyConnectedNet([3, -1])
    with pytest.raises(ValueError, match="normalization"):
        FullyConnectedNet([3], normalization="batchnorm")
    with pytest.raises(ValueError, match="input_dim = 5"):
        model.loss(np.zeros((2, 6)))


# ---------------------------------------------------------------- the loss alone

@pytest.mark.parametrize("reg", [0.0, 0.7])
def test_two_layer_loss_alone_equals_the_full_call(reg):
    rng = np.random.default_rng(3)
    np.random.seed(5)
    model = TwoLayerNet(input_dim=12, hidden_dim=9, num_classes=4, weight_scale=0.3, reg=reg)
    X, y = rng.standard_normal((6, 3, 4)), rng.integers(0, 4, 6)
    loss = model.loss(X, y, grads=False)
    assert isinstance(loss, float)
    assert loss == model.loss(X, y)[0]
    assert loss == pytest.approx(reference_loss(model.params, X, y, reg, 2), rel=1e-12)
    np.testing.assert_array_equal(model.loss(X, grads=False), model.loss(X))  # no labels: scores
    with pytest.raises(TypeError):
        model.loss(X, y, False)  # keyword only


def test_fc_loss_alone_equals_the_full_call_with_dropout_and_float32():
    rng = np.random.default_rng(4)
    X, y = rng.standard_normal((5, 12)), rng.integers(0, 3, 5)
    for kw in (dict(dtype=np.float64, reg=0.3), dict(dtype=np.float64, reg=0.1, dropout_keep_ratio=0.6, seed=3),
               dict(reg=0.2)):
        model = FullyConnectedNet([7, 6], input_dim=12, num_classes=3, weight_scale=0.3, **kw)
        loss = model.loss(X, y, grads=False)
        assert isinstance(loss, float)
        assert loss == model.loss(X, y)[0], kw


def test_loss_alone_skips_the_backward_pass(monkeypatch):
    import nnkit.classifiers.fc_net as fc
    added = []
    monkeypatch.setattr(fc, "_add_scaled_", lambda *a: added.append(a))
    np.random.seed(0)
    X, y = np.random.randn(4, 12), np.array([0, 1, 2, 0])
    for model in (TwoLayerNet(input_dim=12, hidden_dim=5, num_classes=3, reg=0.5),
                  FullyConnectedNet([5, 5], input_dim=12, num_classes=3, reg=0.5, dtype=np.float64)):
        model.loss(X, y, grads=False)
        assert added == []          # the L2 gradient is part of the backward pass
        model.loss(X, y)
        assert added                # the full call's backward pass does add reg * W
        added.clear()


def test_numeric_gradient_of_the_loss_alone_matches_the_gradients():
    from nnkit.gradient_check import grad_check_sparse
    rng = np.random.default_rng(8)
    np.random.seed(1)
    model = TwoLayerNet(input_dim=20, hidden_dim=15, num_classes=5, weight_scale=0.1, reg=0.2)
    X, y = rng.standard_normal((7, 20)), rng.integers(0, 5, 7)
    _, grads = model.loss(X, y)
    errors = grad_check_sparse(lambda _: model.loss(X, y, grads=False), model.params["W1"], grads["W1"],
                               num_checks=20, seed=0, verbose=False)
    assert errors.max() < 1e-6
