"""The tests' own numeric gradients, independent of nnkit.gradient_check.

A wrong `gradient_check` must not be able to hide a wrong backward pass, so the
package tests differentiate with this helper instead.
"""
import numpy as np


def numeric_grad(f, x, dout, h=1e-3):
    """d sum(f(x) * dout) / dx entry by entry, by the five-point centered stencil.

    Its truncation error is O(h**4), so a step of 1e-3 keeps both truncation and
    rounding errors near 1e-12 and a 1e-7 relative tolerance is meaningful.
    x: any shape; returns an array of x's shape (float64).
    """
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)

    def g(ix, value):
        x[ix] = value
        return np.sum(f(x) * dout)

    for ix in np.ndindex(x.shape):
        old = x[ix]
        grad[ix] = (8 * (g(ix, old + h) - g(ix, old - h)) - (g(ix, old + 2 * h) - g(ix, old - 2 * h))) / (12 * h)
        x[ix] = old
    return grad


def numeric_grad_scalar(f, x, h=1e-3):
    """d f / dx for a scalar-valued f, by the same stencil."""
    return numeric_grad(lambda z: np.array(f(z)), x, np.array(1.0), h=h)


def rel(a, b):
    """Largest elementwise relative error; the shapes must be equal."""
    assert np.shape(a) == np.shape(b), (np.shape(a), np.shape(b))
    return np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b)))
