"""Numeric gradients by centered differences, and the relative error used to compare them.

The functions follow the CS231n starter API, so notebooks written for it work
unchanged. They perturb the array ``x`` IN PLACE, call ``f``, and restore the
exact original value afterwards: ``f`` must read ``x`` (or an array that shares
its memory, such as a model's parameter) at call time.

Use float64 arrays: with float32 a step of ``h = 1e-5`` is lost in rounding.

For a model, check with its loss alone::

    f = lambda _: model.loss(X, y, grads=False)
    grad_check_sparse(f, model.params["W1"], grads["W1"])

``model.loss(X, y)[0]`` gives the same value but runs the backward pass on
every call (about 3x the work of the loss, then thrown away); ``f`` is called
twice per checked entry.
"""
import random

import numpy as np

__all__ = [
    "eval_numerical_gradient",
    "eval_numerical_gradient_array",
    "grad_check_sparse",
    "rel_error",
]


def rel_error(x, y):
    """Largest elementwise relative error ``|x - y| / max(1e-8, |x| + |y|)``.

    Parameters
    ----------
    x, y : ndarray or float
        Arrays of the SAME shape (a scalar may be compared with an array).
        Different shapes raise ``ValueError`` instead of broadcasting, so a
        gradient of shape (1, M) never passes a check against one of shape (M,).

    Returns
    -------
    float
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape and x.ndim and y.ndim:
        raise ValueError(
            f"rel_error: the arrays have different shapes {x.shape} and {y.shape}; a gradient "
            "must have exactly the shape of the array it is the gradient of."
        )
    if x.size == 0 and y.size == 0:
        return 0.0
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))))


def eval_numerical_gradient(f, x, verbose=True, h=1e-5):
    """Numeric gradient of a scalar function at x, one entry at a time.

    ``grad[i] = (f(x + h e_i) - f(x - h e_i)) / (2h)`` for every index i of x.

    Parameters
    ----------
    f : callable
        ``f(x) -> float``; it may read x through shared memory and ignore its argument.
    x : ndarray of float, any shape
        The point; perturbed in place during the call and restored exactly.
    verbose : bool
        Print every index and its gradient (as the CS231n starter does).
    h : float
        Step.

    Returns
    -------
    grad : ndarray of float64, same shape as x
    """
    x = _check_float_array(x, "eval_numerical_gradient")
    grad = np.zeros(x.shape, dtype=np.float64)
    flat, gflat = _flat_view(x), grad.reshape(-1)
    for i, ix in _indices(x, flat):
        old = flat[i] if flat is not None else x[ix]
        _set(x, flat, i, ix, old + h)
        fxph = float(f(x))
        _set(x, flat, i, ix, old - h)
        fxmh = float(f(x))
        _set(x, flat, i, ix, old)
        gflat[i] = (fxph - fxmh) / (2 * h)
        if verbose:
            print(ix, gflat[i])
    return grad


def eval_numerical_gradient_array(f, x, df, h=1e-5):
    """Numeric gradient of ``sum(f(x) * df)`` with respect to x (array-valued f).

    This is the gradient a backward pass returns when ``df`` is the upstream
    derivative of the output ``f(x)``.

    Parameters
    ----------
    f : callable
        ``f(x) -> ndarray`` of df's shape.
    x : ndarray of float, any shape
        Perturbed in place during the call and restored exactly.
    df : ndarray, shape of f(x)
        Upstream derivative.
    h : float
        Step.

    Returns
    -------
    grad : ndarray of float64, same shape as x
    """
    x = _check_float_array(x, "eval_numerical_gradient_array")
    df = np.asarray(df, dtype=np.float64)
    grad = np.zeros(x.shape, dtype=np.float64)
    flat, gflat = _flat_view(x), grad.reshape(-1)
    for i, ix in _indices(x, flat):
        old = flat[i] if flat is not None else x[ix]
        _set(x, flat, i, ix, old + h)
        # copy: f may return a view of x or reuse an output buffer
        pos = np.array(f(x), dtype=np.float64)
        _set(x, flat, i, ix, old - h)
        neg = np.asarray(f(x), dtype=np.float64)
        pos -= neg  # before restoring x: neg may be a view of x
        _set(x, flat, i, ix, old)
        if pos.shape != df.shape:
            raise ValueError(
                f"eval_numerical_gradient_array: f(x) has shape {pos.shape} but df has shape "
                f"{df.shape}; df must be the upstream derivative of f's output."
            )
        gflat[i] = np.vdot(pos, df) / (2 * h)
    return grad


def grad_check_sparse(f, x, analytic_grad, num_checks=10, h=1e-5, seed=None, verbose=True):
    """Compare an analytic gradient with numeric ones at a few random entries.

    Cheap where a full numeric gradient is not: ``2 * num_checks`` calls of f.

    Parameters
    ----------
    f : callable
        ``f(x) -> float`` (it may ignore its argument and read x through shared memory),
        e.g. ``lambda _: model.loss(X, y, grads=False)``: the loss without the backward pass.
    x : ndarray of float, any shape
        Perturbed in place during the call and restored exactly.
    analytic_grad : ndarray, same shape as x
        The gradient to check.
    num_checks : int
        Number of random entries.
    h : float
        Step.
    seed : int or None
        Seed for the choice of entries; None uses Python's global ``random``
        module, as the CS231n starter does.
    verbose : bool
        Print one line per entry: numeric, analytic and relative error.

    Returns
    -------
    rel_errors : ndarray of float64, (num_checks,)
        The relative error at each checked entry.
    """
    x = _check_float_array(x, "grad_check_sparse")
    analytic_grad = np.asarray(analytic_grad)
    if analytic_grad.shape != x.shape:
        raise ValueError(
            f"grad_check_sparse: analytic_grad has shape {analytic_grad.shape} but x has "
            f"shape {x.shape}; they must be equal."
        )
    rnd = random if seed is None else random.Random(seed)
    errors = np.empty(num_checks, dtype=np.float64)
    for k in range(num_checks):
        ix = tuple(rnd.randrange(m) for m in x.shape)
        old = x[ix]
        x[ix] = old + h
        fxph = float(f(x))
        x[ix] = old - h
        fxmh = float(f(x))
        x[ix] = old
        grad_numerical = (fxph - fxmh) / (2 * h)
        grad_analytic = float(analytic_grad[ix])
        errors[k] = abs(grad_numerical - grad_analytic) / max(
            1e-300, abs(grad_numerical) + abs(grad_analytic)
        )
        if verbose:
            print(
                "numerical: %f analytic: %f, relative error: %e"
                % (grad_numerical, grad_analytic, errors[k])
            )
    return errors


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def _check_float_array(x, name):
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
        raise TypeError(
            f"{name}: x must be a numpy array of floats that f reads (it is perturbed in "
            f"place); got {type(x).__name__}"
            + (f" of dtype {x.dtype}" if isinstance(x, np.ndarray) else "")
            + ". Convert it once with x = x.astype(np.float64) and let f use that array."
        )
    return x


def _flat_view(x):
    """A 1-D view sharing x's memory, or None when x is not contiguous."""
    if x.flags.c_contiguous:
        return x.reshape(-1)
    return None


def _indices(x, flat):
    """Pairs (flat position, index tuple) in C order."""
    if flat is not None and x.ndim == 1:
        return ((i, (i,)) for i in range(x.size))
    return enumerate(np.ndindex(x.shape)) if x.ndim else iter([(0, ())])


def _set(x, flat, i, ix, value):
    if flat is not None:
        flat[i] = value
    else:
        x[ix] = value
