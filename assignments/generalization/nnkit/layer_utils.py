"""Sandwich layers: common sequences of layers as one forward/backward pair.

Each sandwich composes functions of ``nnkit.layers``; its cache is the tuple
of the caches of its parts, and its backward pass runs the parts' backward
passes in reverse order.
"""
from nnkit.layers import (
    affine_backward,
    affine_forward,
    relu_backward,
    relu_forward,
    sigmoid_backward,
    sigmoid_forward,
)


def affine_relu_forward(x, w, b):
    """An affine layer followed by a ReLU.

    Parameters
    ----------
    x : ndarray, (N, d_1, ..., d_k)
    w : ndarray, (D, M)
    b : ndarray, (M,)

    Returns
    -------
    out : ndarray, (N, M)
    cache : tuple
        ``(fc_cache, relu_cache)`` from ``affine_forward`` and ``relu_forward``.
    """
    out, cache = None, None
    # TODO: Compose affine_forward and relu_forward; keep both caches.
    a, fc_cache = affine_forward(x, w, b)
    out, relu_cache = relu_forward(a)
    cache = (fc_cache, relu_cache)
    return out, cache


def affine_relu_backward(dout, cache):
    """Backward pass of the affine-ReLU sandwich.

    Parameters
    ----------
    dout : ndarray, (N, M)
        Upstream derivative.
    cache : tuple
        ``(fc_cache, relu_cache)`` from ``affine_relu_forward``.

    Returns
    -------
    dx : ndarray, (N, d_1, ..., d_k)
    dw : ndarray, (D, M)
    db : ndarray, (M,)
    """
    dx, dw, db = None, None, None
    # TODO: Run the parts' backward passes in reverse order.
    fc_cache, relu_cache = cache
    da = relu_backward(dout, relu_cache)
    dx, dw, db = affine_backward(da, fc_cache)
    return dx, dw, db


def affine_sigmoid_forward(x, w, b):
    """An affine layer followed by a sigmoid.

    Parameters
    ----------
    x : ndarray, (N, d_1, ..., d_k)
    w : ndarray, (D, M)
    b : ndarray, (M,)

    Returns
    -------
    out : ndarray, (N, M)
    cache : tuple
        ``(fc_cache, sigmoid_cache)`` from ``affine_forward`` and ``sigmoid_forward``.
    """
    out, cache = None, None
    # TODO: Compose affine_forward and sigmoid_forward; keep both caches.
    raise NotImplementedError("affine_sigmoid_forward: not part of this assignment (another assignment of the course asks for it)")
    return out, cache


def affine_sigmoid_backward(dout, cache):
    """Backward pass of the affine-sigmoid sandwich.

    Parameters
    ----------
    dout : ndarray, (N, M)
        Upstream derivative.
    cache : tuple
        ``(fc_cache, sigmoid_cache)`` from ``affine_sigmoid_forward``.

    Returns
    -------
    dx : ndarray, (N, d_1, ..., d_k)
    dw : ndarray, (D, M)
    db : ndarray, (M,)
    """
    dx, dw, db = None, None, None
    # TODO: Run the parts' backward passes in reverse order.
    raise NotImplementedError("affine_sigmoid_backward: not part of this assignment (another assignment of the course asks for it)")
    return dx, dw, db
