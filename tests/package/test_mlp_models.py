"""The models of the MNIST assignment: TwoLayerNet with a sigmoid (or ReLU) hidden
layer and SoftmaxRegression, each with its loss-only path; save/load keeps the
activation.

Expected values come from the formulas written out here and from the tests' own
numeric gradients (numgrad.py, independent of nnkit.gradient_check).
"""
import json

import numpy as np
import pytest

from nnkit.classifiers.fc_net import TwoLayerNet
from nnkit.classifiers.linear import SoftmaxRegression
from nnkit.solver import load_model, save_model
from numgrad import numeric_grad_scalar, rel


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


def softmax_data_loss(s, y):
    s = s - s.max(axis=1, keepdims=True)
    return np.mean(np.log(np.exp(s).sum(axis=1)) - s[np.arange(len(y)), y])


def two_layer_loss(p, X, y, reg, act):
    x = X.reshape(len(X), -1)
    hidden = act(x @ p["W1"] + p["b1"])
    scores = hidden @ p["W2"] + p["b2"]
    return softmax_data_loss(scores, y) + 0.5 * reg * (np.sum(p["W1"] ** 2) + np.sum(p["W2"] ** 2))


def random_net(activation, reg, seed=0):
    rng = np.random.RandomState(seed)
    net = TwoLayerNet(input_dim=6, hidden_dim=5, num_classes=4, reg=reg, activation=activation)
    for k in net.params:
        net.params[k] = rng.randn(*net.params[k].shape)
    X, y = rng.randn(7, 2, 3), rng.randint(4, size=7)
    return net, X, y


# ---------------------------------------------------------------- TwoLayerNet(activation=...)
def test_sigmoid_scores_by_the_formula_and_relu_stays_the_default():
    net, X, _ = random_net("sigmoid", 0.0)
    p, x = net.params, X.reshape(7, -1)
    np.testing.assert_allclose(net.loss(X), sigmoid(x @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"], rtol=1e-12)
    relu = TwoLayerNet(input_dim=6, hidden_dim=5, num_classes=4)
    assert relu.activation == "relu"
    relu.params = dict(p)
    np.testing.assert_allclose(relu.loss(X), np.maximum(x @ p["W1"] + p["b1"], 0) @ p["W2"] + p["b2"], rtol=1e-12)


@pytest.mark.parametrize("activation, act", [("sigmoid", sigmoid), ("relu", lambda a: np.maximum(a, 0))])
@pytest.mark.parametrize("reg", [0.0, 0.7])
def test_two_layer_loss_and_numeric_gradients(activation, act, reg):
    net, X, y = random_net(activation, reg, seed=2)
    loss, grads = net.loss(X, y)
    assert loss == pytest.approx(two_layer_loss(net.params, X, y, reg, act), rel=1e-12)
    assert net.loss(X, y, grads=False) == loss
    for name in net.params:
        def f(w, name=name):
            return two_layer_loss({**net.params, name: w}, X, y, reg, act)
        num = numeric_grad_scalar(f, net.params[name])
        assert grads[name].shape == net.params[name].shape
        # ReLU: random weights of scale 1 keep the pre-activations far from the kink (|a| >> h = 1e-3).
        # atol: the stencil's rounding error is about 1e-13 (loss ~ 1, h = 1e-3), which is a large
        # relative error only for entries near 1e-6.
        np.testing.assert_allclose(grads[name], num, rtol=1e-7, atol=1e-11, err_msg=f"{activation} {reg} {name}")


def test_an_unknown_activation_is_a_clear_error_at_construction_and_at_use():
    with pytest.raises(ValueError, match="activation must be one of 'relu', 'sigmoid'; got 'tanh'"):
        TwoLayerNet(activation="tanh")
    net = TwoLayerNet(input_dim=3, hidden_dim=2, num_classes=2)
    net.activation = "Sigmoid"
    with pytest.raises(ValueError, match="got 'Sigmoid'"):
        net.loss(np.zeros((1, 3)))


def test_config_names_the_activation_when_it_is_not_relu():
    sig = TwoLayerNet(input_dim=6, hidden_dim=3, num_classes=2, weight_scale=0.1, reg=0.5, activation="sigmoid")
    cfg = json.loads(json.dumps(sig.get_config()))
    assert cfg == {"input_dim": 6, "hidden_dim": 3, "num_classes": 2, "weight_scale": 0.1, "reg": 0.5,
                   "activation": "sigmoid"}
    assert TwoLayerNet(**cfg).activation == "sigmoid"
    # A ReLU net's config is what it always was (older nnkit and graders read it).
    assert "activation" not in TwoLayerNet(input_dim=6, hidden_dim=3, num_classes=2).get_config()


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_save_and_load_round_trip_keeps_the_activation(tmp_path, activation):
    net, X, _ = random_net(activation, 0.25, seed=4)
    save_model(net, tmp_path / "net.npz")
    back = load_model(tmp_path / "net.npz")
    assert isinstance(back, TwoLayerNet) and back.activation == activation and back.reg == 0.25
    np.testing.assert_array_equal(back.loss(X), net.loss(X))
    other = "relu" if activation == "sigmoid" else "sigmoid"
    swapped = TwoLayerNet(input_dim=6, hidden_dim=5, num_classes=4, activation=other)
    swapped.params = back.params
    assert not np.allclose(swapped.loss(X), net.loss(X))  # the activation matters to the scores


# ---------------------------------------------------------------- SoftmaxRegression
@pytest.mark.parametrize("reg", [0.0, 0.9])
def test_softmax_regression_loss_alone_and_numeric_gradients(reg):
    rng = np.random.RandomState(6)
    model = SoftmaxRegression(input_dim=6, num_classes=3, reg=reg)
    model.params = {"W": rng.randn(6, 3), "b": rng.randn(3)}
    X, y = rng.randn(5, 6), rng.randint(3, size=5)

    def objective(W, b):
        return softmax_data_loss(X @ W + b, y) + 0.5 * reg * np.sum(W ** 2)

    loss, grads = model.loss(X, y)
    assert loss == pytest.approx(objective(model.params["W"], model.params["b"]), rel=1e-12)
    alone = model.loss(X, y, grads=False)
    assert isinstance(alone, float) and alone == loss
    num_W = numeric_grad_scalar(lambda W: objective(W, model.params["b"]), model.params["W"])
    num_b = numeric_grad_scalar(lambda b: objective(model.params["W"], b), model.params["b"])
    assert rel(grads["W"], num_W) < 1e-7 and rel(grads["b"], num_b) < 1e-7
    with pytest.raises(TypeError):
        model.loss(X, y, False)  # keyword only
