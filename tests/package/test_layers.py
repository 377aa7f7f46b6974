"""Layers of nnkit.layers: known values from the definitions, and every backward
pass against a numeric gradient computed by a helper written here (independent
of nnkit.gradient_check, so a wrong checker cannot hide a wrong backward)."""
import numpy as np
import pytest

from numgrad import numeric_grad, numeric_grad_scalar, rel

from nnkit import layers as L

TOL = 1e-7


def away_from_zero(rng, shape, margin=0.05):
    """Normal values with |v| >= margin, so kinks at 0 are never straddled by h."""
    x = rng.standard_normal(shape)
    return np.where(np.abs(x) < margin, np.sign(x + 1e-12) * margin * 2, x)


# ---------------------------------------------------------------- affine
def test_affine_forward_known_values():
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    w = np.array([[1.0, 0.0, -1.0], [2.0, 1.0, 0.5]])
    b = np.array([0.5, -1.0, 0.0])
    out, cache = L.affine_forward(x, w, b)
    expected = np.array([[1 + 4 + 0.5, 0 + 2 - 1, -1 + 1 + 0], [3 + 8 + 0.5, 0 + 4 - 1, -3 + 2 + 0]])
    np.testing.assert_allclose(out, expected)
    assert cache[0] is x and cache[1] is w and cache[2] is b


def test_affine_forward_flattens_4d_input():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 5, 6))
    w = rng.standard_normal((120, 3))
    b = rng.standard_normal(3)
    out, _ = L.affine_forward(x, w, b)
    expected = np.array([[sum(x[i].ravel()[d] * w[d, m] for d in range(120)) + b[m] for m in range(3)]
                         for i in range(2)])
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out, expected, rtol=1e-12)


@pytest.mark.parametrize("xshape,M", [((3, 4), 5), ((10, 2, 3), 5), ((2, 3, 4, 2), 4), ((1, 7), 1)])
def test_affine_backward_numeric(xshape, M):
    rng = np.random.default_rng(sum(xshape) + M)
    x = rng.standard_normal(xshape)
    D = int(np.prod(xshape[1:]))
    w = rng.standard_normal((D, M))
    b = rng.standard_normal(M)
    dout = rng.standard_normal((xshape[0], M))
    _, cache = L.affine_forward(x, w, b)
    dx, dw, db = L.affine_backward(dout, cache)
    assert dx.shape == x.shape and dw.shape == w.shape and db.shape == (M,)
    assert rel(dx, numeric_grad(lambda z: L.affine_forward(z, w, b)[0], x, dout)) < TOL
    assert rel(dw, numeric_grad(lambda z: L.affine_forward(x, z, b)[0], w, dout)) < TOL
    assert rel(db, numeric_grad(lambda z: L.affine_forward(x, w, z)[0], b, dout)) < TOL


def test_affine_preserves_float32():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 2, 3)).astype(np.float32)
    w = rng.standard_normal((6, 5)).astype(np.float32)
    b = np.zeros(5, np.float32)
    out, cache = L.affine_forward(x, w, b)
    dx, dw, db = L.affine_backward(np.ones((4, 5), np.float32), cache)
    assert out.dtype == dx.dtype == dw.dtype == db.dtype == np.float32


def test_affine_forward_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="rows of w"):
        L.affine_forward(np.zeros((2, 3, 4)), np.zeros((10, 5)), np.zeros(5))
    with pytest.raises(ValueError, match=r"b \(M,\)"):
        L.affine_forward(np.zeros((2, 4)), np.zeros((4, 5)), np.zeros((1, 5)))


# ---------------------------------------------------------------- activations
def test_relu_forward_known_values_and_input_unchanged():
    x = np.array([[-2.0, -0.5, 0.0], [0.25, 3.0, -1e-9]])
    x_before = x.copy()
    out, cache = L.relu_forward(x)
    np.testing.assert_array_equal(out, [[0, 0, 0], [0.25, 3.0, 0]])
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(cache, x_before)


def test_relu_backward_known_values():
    x = np.array([[-2.0, 1.0], [0.5, -0.1]])
    dout = np.array([[10.0, 20.0], [30.0, 40.0]])
    _, cache = L.relu_forward(x)
    np.testing.assert_array_equal(L.relu_backward(dout, cache), [[0, 20.0], [30.0, 0]])


@pytest.mark.parametrize("shape", [(10, 10), (3, 4, 5), (2, 3, 4, 5)])
def test_relu_backward_numeric(shape):
    rng = np.random.default_rng(len(shape))
    x = away_from_zero(rng, shape)
    dout = rng.standard_normal(shape)
    dx = L.relu_backward(dout, L.relu_forward(x)[1])
    assert dx.shape == x.shape
    assert rel(dx, numeric_grad(lambda z: L.relu_forward(z)[0], x, dout)) < TOL


def test_sigmoid_forward_known_values_and_extremes():
    x = np.array([0.0, np.log(3.0), -np.log(3.0), 1000.0, -1000.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # no overflow warning either
        out, _ = L.sigmoid_forward(x)
    np.testing.assert_allclose(out, [0.5, 0.75, 0.25, 1.0, 0.0], rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("shape", [(6, 7), (2, 3, 4, 2)])
def test_sigmoid_backward_numeric(shape):
    rng = np.random.default_rng(7)
    x = 3 * rng.standard_normal(shape)
    dout = rng.standard_normal(shape)
    dx = L.sigmoid_backward(dout, L.sigmoid_forward(x)[1])
    assert dx.shape == x.shape
    assert rel(dx, numeric_grad(lambda z: L.sigmoid_forward(z)[0], x, dout)) < TOL


def test_leaky_relu_known_values():
    x = np.array([[-2.0, 3.0], [0.5, -0.1]])
    out, cache = L.leaky_relu_forward(x, alpha=0.1)
    np.testing.assert_allclose(out, [[-0.2, 3.0], [0.5, -0.01]], rtol=1e-15)
    dx = L.leaky_relu_backward(np.array([[1.0, 2.0], [3.0, 4.0]]), cache)
    np.testing.assert_allclose(dx, [[0.1, 2.0], [3.0, 0.4]], rtol=1e-15)
    out_default, _ = L.leaky_relu_forward(np.array([-1.0]))
    np.testing.assert_allclose(out_default, [-0.01])


@pytest.mark.parametrize("alpha,shape", [(0.01, (8, 9)), (0.2, (2, 3, 4, 5))])
def test_leaky_relu_backward_numeric(alpha, shape):
    rng = np.random.default_rng(3)
    x = away_from_zero(rng, shape)
    dout = rng.standard_normal(shape)
    dx = L.leaky_relu_backward(dout, L.leaky_relu_forward(x, alpha)[1])
    assert rel(dx, numeric_grad(lambda z: L.leaky_relu_forward(z, alpha)[0], x, dout)) < TOL


@pytest.mark.parametrize(
    "forward,backward",
    [(L.relu_forward, L.relu_backward), (L.sigmoid_forward, L.sigmoid_backward),
     (L.leaky_relu_forward, L.leaky_relu_backward)],
)
def test_activations_preserve_float32(forward, backward):
    x = np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4)
    out, cache = forward(x)
    dx = backward(np.ones_like(x), cache)
    assert out.dtype == np.float32 and dx.dtype == np.float32


# ---------------------------------------------------------------- dropout
def test_dropout_train_keeps_expectation_and_test_is_identity():
    x = np.ones((500, 500)) * 2.0
    for p in (0.25, 0.5, 0.9):
        out, (param, mask) = L.dropout_forward(x, {"mode": "train", "p": p, "seed": 0})
        kept = out != 0
        # inverted dropout: kept units are scaled by 1/p, about a fraction p are kept
        np.testing.assert_allclose(out[kept], 2.0 / p)
        assert abs(kept.mean() - p) < 0.01
        out_test, _ = L.dropout_forward(x, {"mode": "test", "p": p})
        np.testing.assert_array_equal(out_test, x)


def test_dropout_backward_numeric_and_dtype():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((10, 3, 4))
    dout = rng.standard_normal(x.shape)
    param = {"mode": "train", "p": 0.6, "seed": 123}
    out, cache = L.dropout_forward(x, param)
    dx = L.dropout_backward(dout, cache)
    assert rel(dx, numeric_grad(lambda z: L.dropout_forward(z, param)[0], x, dout)) < TOL
    x32 = x.astype(np.float32)
    out32, cache32 = L.dropout_forward(x32, param)
    assert out32.dtype == np.float32
    assert L.dropout_backward(dout.astype(np.float32), cache32).dtype == np.float32


def test_dropout_rejects_bad_params():
    with pytest.raises(ValueError, match="KEEPING"):
        L.dropout_forward(np.ones(3), {"mode": "train", "p": 0.0})
    with pytest.raises(ValueError, match="'train' or 'test'"):
        L.dropout_forward(np.ones(3), {"mode": "eval", "p": 0.5})


# ---------------------------------------------------------------- losses
def svm_loss_by_definition(x, y):
    N, C = x.shape
    total = 0.0
    for i in range(N):
        for j in range(C):
            if j != y[i]:
                total += max(0.0, x[i, j] - x[i, y[i]] + 1.0)
    return total / N


def test_svm_loss_hand_computed_2x3():
    x = np.array([[3.0, 1.0, 2.5], [0.0, 2.0, 1.5]])
    y = np.array([0, 2])
    # row 0 (correct 3.0): max(0, 1-3+1)=0, max(0, 2.5-3+1)=0.5 -> 0.5
    # row 1 (correct 1.5): max(0, 0-1.5+1)=0, max(0, 2-1.5+1)=1.5 -> 1.5
    # the correct class's own margin (always 1) is not counted
    loss, dx = L.svm_loss(x, y)
    assert loss == pytest.approx(1.0, abs=1e-15)
    np.testing.assert_allclose(dx, [[-0.5, 0.0, 0.5], [0.0, 0.5, -0.5]], atol=1e-15)


def test_svm_loss_matches_definition_and_numeric_gradient():
    rng = np.random.default_rng(11)
    for N, C in [(50, 10), (7, 3)]:
        x = 0.5 * rng.standard_normal((N, C))
        y = rng.integers(0, C, N)
        loss, dx = L.svm_loss(x, y)
        assert loss == pytest.approx(svm_loss_by_definition(x, y), rel=1e-12)
        assert dx.shape == x.shape
        assert rel(dx, numeric_grad_scalar(lambda z: L.svm_loss(z, y)[0], x)) < TOL


def test_softmax_loss_uniform_logits_is_log_c():
    for C in (2, 10, 100):
        loss, dx = L.softmax_loss(np.full((4, C), 3.7), np.arange(4) % C)
        assert loss == pytest.approx(np.log(C), rel=1e-13)
        # gradient: (1/C - onehot) / N
        expected = np.full((4, C), 1.0 / C)
        expected[np.arange(4), np.arange(4) % C] -= 1
        np.testing.assert_allclose(dx, expected / 4, atol=1e-15)


def test_softmax_loss_hand_computed():
    x = np.array([[0.0, np.log(3.0)]])  # probabilities 1/4, 3/4
    loss, dx = L.softmax_loss(x, np.array([0]))
    assert loss == pytest.approx(np.log(4.0), rel=1e-14)
    np.testing.assert_allclose(dx, [[0.25 - 1, 0.75]], atol=1e-15)


def test_softmax_loss_numeric_gradient():
    rng = np.random.default_rng(12)
    for N, C in [(50, 10), (3, 4)]:
        x = rng.standard_normal((N, C))
        y = rng.integers(0, C, N)
        loss, dx = L.softmax_loss(x, y)
        shifted = x - x.max(1, keepdims=True)
        by_def = np.mean(np.log(np.exp(shifted).sum(1)) - shifted[np.arange(N), y])
        assert loss == pytest.approx(by_def, rel=1e-12)
        assert rel(dx, numeric_grad_scalar(lambda z: L.softmax_loss(z, y)[0], x)) < TOL


def test_softmax_loss_large_logits_finite():
    x = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 999.0]])
    y = np.array([1, 2])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, dx = L.softmax_loss(x, y)
    # row 0: the correct logit is 2000 below the max -> loss ~ 2000; row 1: ~ log(1 + e^1)-... = 1 + log(1+e^-1)
    expected = (2000.0 + np.log1p(np.exp(-1000.0) + np.exp(-2000.0)) + (1.0 + np.log1p(np.exp(-1.0)))) / 2
    assert np.isfinite(loss) and np.all(np.isfinite(dx))
    assert loss == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("loss_fn", [L.svm_loss, L.softmax_loss])
def test_losses_preserve_float32(loss_fn):
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    loss, dx = loss_fn(x, np.array([0, 1, 2, 3, 0]))
    assert dx.dtype == np.float32 and np.isfinite(loss)


@pytest.mark.parametrize("loss_fn", [L.svm_loss, L.softmax_loss])
def test_losses_reject_bad_labels(loss_fn):
    x = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        loss_fn(x, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match="integers"):
        loss_fn(x, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"\(N,\)"):
        loss_fn(x, np.array([[0, 1, 2]]))


def test_forward_and_backward_are_adjacent_in_source():
    """Each *_forward sits directly above its *_backward (the layout promise)."""
    import inspect
    names = [n for n, _ in sorted(
        ((n, inspect.getsourcelines(f)[1]) for n, f in vars(L).items()
         if inspect.isfunction(f) and not n.startswith("_")), key=lambda t: t[1])]
    for i, n in enumerate(names):
        if n.endswith("_forward"):
            assert names[i + 1] == n.replace("_forward", "_backward"), names
