"""Sandwich layers: the composition of their parts, and numeric gradients."""
import numpy as np
import pytest

from numgrad import numeric_grad, rel

from nnkit import layer_utils as U


def test_affine_relu_forward_is_relu_of_affine():
    x = np.array([[1.0, -2.0]])
    w = np.array([[1.0, -1.0, 0.5], [1.0, 1.0, 0.0]])
    b = np.array([0.0, 0.5, -1.0])
    out, _ = U.affine_relu_forward(x, w, b)
    # affine: [1-2+0, -1-2+0.5, 0.5-1] = [-1, -2.5, -0.5] -> relu: all zero except none
    np.testing.assert_array_equal(out, [[0.0, 0.0, 0.0]])
    out, _ = U.affine_relu_forward(-x, w, b)
    # affine: [-1+2, 1+2+0.5, -0.5-1] = [1, 3.5, -1.5]
    np.testing.assert_allclose(out, [[1.0, 3.5, 0.0]])


def test_affine_sigmoid_forward_is_sigmoid_of_affine():
    x = np.array([[np.log(3.0)]])
    out, _ = U.affine_sigmoid_forward(x, np.array([[1.0, -1.0]]), np.zeros(2))
    np.testing.assert_allclose(out, [[0.75, 0.25]], rtol=1e-14)


@pytest.mark.parametrize("pair", ["relu", "sigmoid"])
@pytest.mark.parametrize("xshape,M", [((4, 6), 5), ((2, 3, 4), 6), ((3, 2, 2, 2), 4)])
def test_sandwich_backward_numeric(pair, xshape, M):
    fwd = getattr(U, f"affine_{pair}_forward")
    bwd = getattr(U, f"affine_{pair}_backward")
    rng = np.random.default_rng(len(xshape) * 10 + M)
    x = rng.standard_normal(xshape)
    D = int(np.prod(xshape[1:]))
    w = rng.standard_normal((D, M))
    b = rng.standard_normal(M)
    if pair == "relu":  # keep every pre-activation away from the kink at 0
        a = x.reshape(xshape[0], -1) @ w
        b = b + np.where(np.abs(a + b) < 0.05, 0.2, 0.0).max(axis=0)
        assert np.min(np.abs(x.reshape(xshape[0], -1) @ w + b)) > 0.01
    dout = rng.standard_normal((xshape[0], M))
    _, cache = fwd(x, w, b)
    dx, dw, db = bwd(dout, cache)
    assert dx.shape == x.shape and dw.shape == w.shape and db.shape == (M,)
    assert rel(dx, numeric_grad(lambda z: fwd(z, w, b)[0], x, dout)) < 1e-7
    assert rel(dw, numeric_grad(lambda z: fwd(x, z, b)[0], w, dout)) < 1e-7
    assert rel(db, numeric_grad(lambda z: fwd(x, w, z)[0], b, dout)) < 1e-7
