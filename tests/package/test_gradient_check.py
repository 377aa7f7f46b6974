"""nnkit.gradient_check against functions whose gradients are known in closed form."""
import numpy as np
import pytest

from nnkit.gradient_check import (
    eval_numerical_gradient,
    eval_numerical_gradient_array,
    grad_check_sparse,
    rel_error,
)


def test_rel_error_definition():
    assert rel_error(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.0
    # |1 - 3| / (1 + 3) = 0.5 beats |2 - 2.2| / 4.2
    assert rel_error(np.array([1.0, 2.0]), np.array([3.0, 2.2])) == pytest.approx(0.5)
    # both zero: the 1e-8 floor avoids 0/0
    assert rel_error(np.zeros(3), np.zeros(3)) == 0.0
    assert rel_error(1e-9, 0.0) == pytest.approx(1e-9 / 1e-8)
    assert rel_error(2.0, np.array([2.0, 2.0])) == 0.0  # a scalar may be compared


def test_rel_error_refuses_to_broadcast_shapes():
    with pytest.raises(ValueError, match="different shapes"):
        rel_error(np.zeros((1, 5)), np.zeros(5))


def test_eval_numerical_gradient_quadratic_and_restores_x(capsys):
    rng = np.random.default_rng(0)
    A = rng.standard_normal((4, 4))
    x = rng.standard_normal((2, 2))
    x_before = x.copy()
    f = lambda z: float(z.ravel() @ A @ z.ravel())  # gradient (A + A^T) x
    grad = eval_numerical_gradient(f, x, verbose=False)
    np.testing.assert_allclose(grad, ((A + A.T) @ x_before.ravel()).reshape(2, 2), rtol=1e-8)
    np.testing.assert_array_equal(x, x_before)
    assert capsys.readouterr().out == ""
    eval_numerical_gradient(f, x, verbose=True)
    assert len(capsys.readouterr().out.splitlines()) == 4  # one line per entry


def test_eval_numerical_gradient_reads_shared_memory_of_non_contiguous_x():
    base = np.arange(12, dtype=np.float64).reshape(3, 4)
    view = base[:, ::2]  # not contiguous: perturbations must still reach `base`
    f = lambda _: float(np.sum(base ** 2))
    grad = eval_numerical_gradient(f, view, verbose=False)
    np.testing.assert_allclose(grad, 2 * base[:, ::2], rtol=1e-8)


def test_eval_numerical_gradient_array_matches_jacobian_transpose():
    rng = np.random.default_rng(1)
    W = rng.standard_normal((3, 5))
    x = rng.standard_normal((2, 3))
    df = rng.standard_normal((2, 5))
    grad = eval_numerical_gradient_array(lambda z: np.sin(z) @ W, x, df)
    np.testing.assert_allclose(grad, np.cos(x) * (df @ W.T), rtol=1e-8)


def test_eval_numerical_gradient_array_copies_outputs_that_alias_x():
    x = np.array([1.0, -2.0, 3.0])
    df = np.array([1.0, 2.0, 3.0])
    grad = eval_numerical_gradient_array(lambda z: z, x, df)  # f returns x itself
    np.testing.assert_allclose(grad, df, rtol=1e-9)


def test_integer_x_is_refused_with_advice():
    with pytest.raises(TypeError, match="astype"):
        eval_numerical_gradient(lambda z: 0.0, np.arange(3), verbose=False)


def test_grad_check_sparse_right_and_wrong_gradients(capsys):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((30, 20))
    f = lambda z: float(np.sum(z ** 3))
    good = grad_check_sparse(f, x, 3 * x ** 2, num_checks=15, seed=0)
    assert good.shape == (15,) and good.max() < 1e-7
    assert len(capsys.readouterr().out.splitlines()) == 15
    bad = grad_check_sparse(f, x, 2 * x ** 2, num_checks=15, seed=0, verbose=False)
    np.testing.assert_allclose(bad, 0.2, rtol=1e-6)  # |3-2| / (3+2)
    # the same seed checks the same entries
    np.testing.assert_array_equal(good, grad_check_sparse(f, x, 3 * x ** 2, 15, seed=0, verbose=False))


def test_grad_check_sparse_positional_cs231n_call():
    x = np.ones((3, 3))
    assert grad_check_sparse(lambda z: float(z.sum()), x, np.ones((3, 3)), 5, 1e-5, verbose=False).max() < 1e-9
    with pytest.raises(ValueError, match="shape"):
        grad_check_sparse(lambda z: 0.0, x, np.ones(9))
