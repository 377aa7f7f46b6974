"""Update rules over several steps against the formulas written out here, state
written back into config, dtypes kept; schedules against hand-computed values."""
import numpy as np
import pytest

from nnkit import optim


def arrays(shape=(4, 5), seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape), [rng.standard_normal(shape) for _ in range(3)]


def test_sgd_steps_in_place_with_default_rate():
    w0, dws = arrays()
    w, config = w0.copy(), None
    for dw in dws:
        w, config = optim.sgd(w, dw, config)
    np.testing.assert_allclose(w, w0 - 1e-2 * sum(dws), rtol=1e-14)
    assert config == {"learning_rate": 1e-2}


@pytest.mark.parametrize("shape", [(4, 5), (3072, 100)])  # the large one goes slice by slice
def test_sgd_momentum_three_steps_against_formula(shape):
    w0, dws = arrays(shape)
    lr, mu = 3e-3, 0.8
    w, config = w0.copy(), {"learning_rate": lr, "momentum": mu}
    v_ref, w_ref = np.zeros(shape), w0.copy()
    for dw in dws:
        w, config = optim.sgd_momentum(w, dw, config)
        v_ref = mu * v_ref - lr * dw
        w_ref = w_ref + v_ref
        np.testing.assert_allclose(w, w_ref, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(config["velocity"], v_ref, rtol=1e-12, atol=1e-15)


def test_sgd_momentum_defaults_and_given_velocity():
    w0, (dw, _, _) = arrays()
    v0 = np.linspace(0.6, 0.9, 20).reshape(4, 5)
    w, config = optim.sgd_momentum(w0.copy(), dw, {"velocity": v0.copy()})
    v = 0.9 * v0 - 1e-2 * dw
    np.testing.assert_allclose(config["velocity"], v, rtol=1e-14)
    np.testing.assert_allclose(w, w0 + v, rtol=1e-14)
    assert config["learning_rate"] == 1e-2 and config["momentum"] == 0.9


def test_rmsprop_three_steps_against_formula():
    w0, dws = arrays(seed=1)
    lr, rho, eps = 1e-2, 0.9, 1e-6
    w, config = w0.copy(), {"learning_rate": lr, "decay_rate": rho, "epsilon": eps}
    c_ref, w_ref = np.zeros_like(w0), w0.copy()
    for dw in dws:
        w, config = optim.rmsprop(w, dw, config)
        c_ref = rho * c_ref + (1 - rho) * dw ** 2
        w_ref = w_ref - lr * dw / (np.sqrt(c_ref) + eps)
        np.testing.assert_allclose(w, w_ref, rtol=1e-12)
        np.testing.assert_allclose(config["cache"], c_ref, rtol=1e-12)


def test_rmsprop_defaults():
    w0, (dw, _, _) = arrays(seed=2)
    w, config = optim.rmsprop(w0.copy(), dw)
    cache = 0.01 * dw ** 2
    np.testing.assert_allclose(w, w0 - 1e-2 * dw / (np.sqrt(cache) + 1e-8), rtol=1e-12)
    assert (config["learning_rate"], config["decay_rate"], config["epsilon"]) == (1e-2, 0.99, 1e-8)


def test_adam_three_steps_against_formula_t_incremented_first():
    w0, dws = arrays(seed=3)
    lr, b1, b2, eps = 1e-2, 0.8, 0.95, 1e-8
    w, config = w0.copy(), {"learning_rate": lr, "beta1": b1, "beta2": b2, "epsilon": eps}
    m, v, w_ref = np.zeros_like(w0), np.zeros_like(w0), w0.copy()
    for t, dw in enumerate(dws, start=1):  # t = 1 at the first step
        w, config = optim.adam(w, dw, config)
        m = b1 * m + (1 - b1) * dw
        v = b2 * v + (1 - b2) * dw ** 2
        w_ref = w_ref - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
        assert config["t"] == t
        np.testing.assert_allclose(w, w_ref, rtol=1e-12)
        np.testing.assert_allclose(config["m"], m, rtol=1e-12)
        np.testing.assert_allclose(config["v"], v, rtol=1e-12)


def test_adam_first_step_is_learning_rate_times_sign():
    # From zero moments, the bias-corrected first step is lr * dw / (|dw| + eps).
    w0, (dw, _, _) = arrays(seed=4)
    w, config = optim.adam(w0.copy(), dw)
    np.testing.assert_allclose(w, w0 - 1e-3 * np.sign(dw), rtol=1e-7)
    assert config["t"] == 1
    assert (config["beta1"], config["beta2"], config["epsilon"]) == (0.9, 0.999, 1e-8)


def test_adam_from_given_state():
    N, D = 4, 5
    w0 = np.linspace(-0.4, 0.6, N * D).reshape(N, D)
    dw = np.linspace(-0.6, 0.4, N * D).reshape(N, D)
    m0 = np.linspace(0.6, 0.9, N * D).reshape(N, D)
    v0 = np.linspace(0.7, 0.5, N * D).reshape(N, D)
    w, config = optim.adam(w0.copy(), dw, {"learning_rate": 1e-2, "m": m0.copy(), "v": v0.copy(), "t": 5})
    t = 6
    m = 0.9 * m0 + 0.1 * dw
    v = 0.999 * v0 + 0.001 * dw ** 2
    expected = w0 - 1e-2 * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
    np.testing.assert_allclose(w, expected, rtol=1e-12)
    assert config["t"] == 6


@pytest.mark.parametrize("rule", [optim.sgd, optim.sgd_momentum, optim.rmsprop, optim.adam])
@pytest.mark.parametrize("shape", [(7, 3), (300, 200)])
def test_rules_keep_float32(rule, shape):
    w = np.ones(shape, np.float32)
    dw = np.full(shape, 0.5, np.float32)
    config = None
    for _ in range(2):
        w, config = rule(w, dw, config)
    assert w.dtype == np.float32 and w.shape == shape
    assert all(v.dtype == np.float32 for v in config.values() if isinstance(v, np.ndarray))


@pytest.mark.parametrize("rule", [optim.sgd, optim.sgd_momentum, optim.rmsprop, optim.adam])
def test_rules_reject_gradient_of_another_shape(rule):
    with pytest.raises(ValueError, match="shape"):
        rule(np.zeros(5), np.zeros((1, 5)))


def test_step_decay_hand_values():
    assert optim.step_decay(0.1, 0, drop=0.5, every=10) == 0.1
    assert optim.step_decay(0.1, 9, drop=0.5, every=10) == 0.1
    assert optim.step_decay(0.1, 10, drop=0.5, every=10) == pytest.approx(0.05)
    assert optim.step_decay(0.1, 25, drop=0.5, every=10) == pytest.approx(0.025)
    assert optim.step_decay(1.0, 7, drop=0.1, every=3) == pytest.approx(0.01)
    with pytest.raises(ValueError):
        optim.step_decay(0.1, 1, every=0)


def test_cyclical_lr_hand_values():
    lo, hi, n = 1e-5, 1e-1, 500
    f = lambda t: optim.cyclical_lr(t, lo, hi, n)
    assert f(0) == pytest.approx(lo)
    assert f(250) == pytest.approx(lo + 0.5 * (hi - lo))
    assert f(500) == pytest.approx(hi)
    assert f(750) == pytest.approx(lo + 0.5 * (hi - lo))
    assert f(1000) == pytest.approx(lo)  # one cycle = 2 n_s iterations
    assert f(1100) == pytest.approx(lo + 0.2 * (hi - lo))
    assert f(1600) == pytest.approx(hi - 0.2 * (hi - lo))
    with pytest.raises(ValueError):
        optim.cyclical_lr(3, n_s=0)


@pytest.mark.parametrize("rule", [optim.sgd, optim.sgd_momentum, optim.rmsprop, optim.adam])
def test_zero_learning_rate_leaves_weights(rule):
    w0, (dw, _, _) = arrays(seed=6)
    w, _ = rule(w0.copy(), dw, {"learning_rate": 0.0})
    np.testing.assert_array_equal(w, w0)
