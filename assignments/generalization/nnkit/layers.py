"""Single layers of a neural network: forward and backward passes, and the losses.

Every layer is a pair of functions. ``*_forward`` takes the layer's inputs and
returns ``(out, cache)``; ``*_backward`` takes the upstream derivative ``dout``
(the gradient of the loss with respect to ``out``, same shape as ``out``) and
that ``cache``, and returns the gradients with respect to the inputs, in the
order of the forward's arguments, each with exactly the shape and dtype of its
input. The losses ``svm_loss`` and ``softmax_loss`` return ``(loss, dx)``.

Shapes: ``N`` is the number of examples in the minibatch. An affine layer
accepts ``x`` of any shape ``(N, d_1, ..., d_k)`` and treats each example as a
vector of ``D = d_1 * ... * d_k`` numbers.

Never modify an input array in place: the caller (and the cache) still needs it.
"""
import numpy as np


def affine_forward(x, w, b):
    """Forward pass of an affine (fully-connected) layer: ``out = x w + b``.

    Parameters
    ----------
    x : ndarray, (N, d_1, ..., d_k)
        Minibatch; example ``i`` is ``x[i]`` flattened to ``D = d_1 * ... * d_k`` numbers.
    w : ndarray, (D, M)
        Weights.
    b : ndarray, (M,)
        Biases.

    Returns
    -------
    out : ndarray, (N, M)
    cache : tuple
        ``(x, w, b)``, the inputs unchanged.
    """
    _check_affine_shapes(x, w, b)
    out = None
    # TODO: Implement the affine forward pass. Reshape each example of x into a
    # row of D numbers (x.reshape(N, -1) does not copy), multiply by w, add b.
    # Store the result in `out`.
    out = x.reshape(x.shape[0], -1) @ w
    out += b  # in place: no second (N, M) array
    cache = (x, w, b)
    return out, cache


def affine_backward(dout, cache):
    """Backward pass of an affine layer.

    Parameters
    ----------
    dout : ndarray, (N, M)
        Upstream derivative.
    cache : tuple
        ``(x, w, b)`` from ``affine_forward``: x (N, d_1, ..., d_k), w (D, M), b (M,).

    Returns
    -------
    dx : ndarray, (N, d_1, ..., d_k)
        Gradient with respect to x, in x's own shape.
    dw : ndarray, (D, M)
    db : ndarray, (M,)
        One number per output unit, not (1, M).
    """
    x, w, b = cache
    dx, dw, db = None, None, None
    # TODO: Implement the affine backward pass. dx must have x's shape (not
    # (N, D)), dw the shape of w and db the shape (M,) of b.
    dx = (dout @ w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T @ dout
    db = dout.sum(axis=0)
    return dx, dw, db


def relu_forward(x):
    """Forward pass of a rectified linear unit: ``out = max(0, x)`` elementwise.

    Parameters
    ----------
    x : ndarray, any shape

    Returns
    -------
    out : ndarray, same shape as x
    cache : ndarray
        ``x`` itself (unchanged: do not modify it in place).
    """
    out = None
    # TODO: Implement the ReLU forward pass without changing x.
    out = np.maximum(x, 0)
    cache = x
    return out, cache


def relu_backward(dout, cache):
    """Backward pass of a ReLU.

    Parameters
    ----------
    dout : ndarray, any shape
        Upstream derivative.
    cache : ndarray
        The input ``x`` of ``relu_forward``, same shape as dout.

    Returns
    -------
    dx : ndarray, same shape as x
        ``dout`` where ``x > 0``, else 0.
    """
    dx, x = None, cache
    # TODO: Implement the ReLU backward pass. The gradient passes where the
    # INPUT x was positive.
    dx = dout * (x > 0)
    return dx


def sigmoid_forward(x):
    """Forward pass of the logistic sigmoid: ``out = 1 / (1 + exp(-x))`` elementwise.

    Parameters
    ----------
    x : ndarray, any shape

    Returns
    -------
    out : ndarray, same shape as x, values in [0, 1]
    cache : ndarray
        ``out`` (the backward pass needs only the output).
    """
    out = None
    # TODO: Implement the sigmoid forward pass. Make it numerically stable:
    # exp(-x) overflows (with a warning) for x < -709, so never exponentiate a
    # large positive number. Hint: with z = exp(-|x|), sigmoid(x) is 1/(1+z)
    # for x >= 0 and z/(1+z) for x < 0.
    raise NotImplementedError("sigmoid_forward: not part of this assignment (another assignment of the course asks for it)")
    cache = out
    return out, cache


def sigmoid_backward(dout, cache):
    """Backward pass of the sigmoid.

    Parameters
    ----------
    dout : ndarray, any shape
        Upstream derivative.
    cache : ndarray
        ``out`` of ``sigmoid_forward``, same shape as dout.

    Returns
    -------
    dx : ndarray, same shape as dout
    """
    dx, out = None, cache
    # TODO: Implement the sigmoid backward pass using only the cached output.
    raise NotImplementedError("sigmoid_backward: not part of this assignment (another assignment of the course asks for it)")
    return dx


def leaky_relu_forward(x, alpha=0.01):
    """Forward pass of a leaky ReLU: ``out = x`` where ``x > 0``, else ``alpha * x``.

    Parameters
    ----------
    x : ndarray, any shape
    alpha : float
        Slope for negative inputs (0 gives the plain ReLU).

    Returns
    -------
    out : ndarray, same shape as x
    cache : tuple
        ``(x, alpha)``.
    """
    out = None
    # TODO: Implement the leaky ReLU forward pass without changing x.
    raise NotImplementedError("leaky_relu_forward: not part of this assignment (another assignment of the course asks for it)")
    cache = (x, alpha)
    return out, cache


def leaky_relu_backward(dout, cache):
    """Backward pass of a leaky ReLU.

    Parameters
    ----------
    dout : ndarray, any shape
        Upstream derivative.
    cache : tuple
        ``(x, alpha)`` from ``leaky_relu_forward``; x has the shape of dout.

    Returns
    -------
    dx : ndarray, same shape as x
        ``dout`` where ``x > 0``, else ``alpha * dout``.
    """
    (x, alpha), dx = cache, None
    # TODO: Implement the leaky ReLU backward pass.
    raise NotImplementedError("leaky_relu_backward: not part of this assignment (another assignment of the course asks for it)")
    return dx


def dropout_forward(x, dropout_param):
    """Forward pass of inverted dropout.

    In training mode each unit is kept with probability ``p`` and the kept
    units are divided by ``p``, so the expected output equals ``x`` and test
    mode is the identity.

    Parameters
    ----------
    x : ndarray, any shape
    dropout_param : dict
        ``p``: probability of KEEPING a unit, in (0, 1];
        ``mode``: ``"train"`` or ``"test"``;
        ``seed`` (optional): if given, the mask is drawn from
        ``np.random.RandomState(seed)``, so every call draws the same mask (use it
        for gradient checks); otherwise from numpy's global random state.

    Returns
    -------
    out : ndarray, same shape and dtype as x
    cache : tuple
        ``(dropout_param, mask)``; ``mask`` has x's shape and holds ``0`` or
        ``1 / p`` (None in test mode).
    """
    p, mode, rng = _check_dropout_param(dropout_param)
    mask, out = None, None
    if mode == "train":
        # TODO: Implement the training-time forward pass of inverted dropout:
        # draw a mask of x's shape with rng.random_sample (rng is set up for
        # you), keep units where it is below p and scale them by 1 / p.
        # Store the mask (in x's dtype) in `mask` and the result in `out`.
        raise NotImplementedError("dropout_forward: not part of this assignment (another assignment of the course asks for it)")
    else:
        out = x
    cache = (dropout_param, mask)
    return out, cache


def dropout_backward(dout, cache):
    """Backward pass of inverted dropout.

    Parameters
    ----------
    dout : ndarray, any shape
        Upstream derivative.
    cache : tuple
        ``(dropout_param, mask)`` from ``dropout_forward``.

    Returns
    -------
    dx : ndarray, same shape as dout
    """
    dropout_param, mask = cache
    if dropout_param["mode"] != "train":
        return dout
    dx = None
    # TODO: Implement the training-time backward pass of inverted dropout.
    raise NotImplementedError("dropout_backward: not part of this assignment (another assignment of the course asks for it)")
    return dx


def svm_loss(x, y):
    """Multiclass SVM (hinge) loss and its gradient, averaged over the minibatch.

    ``loss = (1/N) * sum_i sum_{j != y_i} max(0, x[i, j] - x[i, y_i] + 1)``:
    the correct class contributes no margin.

    Parameters
    ----------
    x : ndarray, (N, C)
        Scores; ``x[i, j]`` is the score of class j for example i.
    y : ndarray of int, (N,)
        Labels, ``0 <= y[i] < C``.

    Returns
    -------
    loss : float
    dx : ndarray, (N, C)
        Gradient of the loss with respect to x.
    """
    _check_scores_labels(x, y, "svm_loss")
    loss, dx = None, None
    # TODO: Implement the vectorized SVM loss and its gradient (no loops).
    # Remember to average over the N examples.
    raise NotImplementedError("svm_loss: not part of this assignment (another assignment of the course asks for it)")
    return float(loss), dx


def softmax_loss(x, y):
    """Softmax (cross-entropy) loss and its gradient, averaged over the minibatch.

    ``loss = (1/N) * sum_i -log(exp(x[i, y_i]) / sum_j exp(x[i, j]))``.

    Parameters
    ----------
    x : ndarray, (N, C)
        Scores (logits); they may be large (say 1000): the loss must stay finite.
    y : ndarray of int, (N,)
        Labels, ``0 <= y[i] < C``.

    Returns
    -------
    loss : float
    dx : ndarray, (N, C)
        Gradient of the loss with respect to x.
    """
    _check_scores_labels(x, y, "softmax_loss")
    loss, dx = None, None
    # TODO: Implement the vectorized softmax loss and its gradient (no loops).
    # Subtract each row's maximum from its scores first: the probabilities do
    # not change, and exp() can no longer overflow. Compute log-probabilities
    # as shifted - log(sum(exp(shifted))) rather than log(probabilities), which
    # would give log(0) = -inf for very unlikely classes.
    N = x.shape[0]
    rows = np.arange(N)
    shifted = x - x.max(axis=1, keepdims=True)
    dx = np.exp(shifted)
    sums = dx.sum(axis=1, keepdims=True)
    loss = (np.log(sums[:, 0]) - shifted[rows, y]).sum() / N
    dx /= sums
    dx[rows, y] -= 1
    dx /= N
    return float(loss), dx


# ---------------------------------------------------------------------------
# Input checks (provided): a clear message beats a shape error deep in numpy.
# ---------------------------------------------------------------------------
def _check_affine_shapes(x, w, b):
    x, w, b = np.asarray(x), np.asarray(w), np.asarray(b)
    if w.ndim != 2 or b.shape != (w.shape[1],):
        raise ValueError(
            f"affine_forward: w must be (D, M) and b (M,); got w {w.shape} and b {b.shape}."
        )
    if x.ndim < 1 or x.size != x.shape[0] * w.shape[0]:
        raise ValueError(
            f"affine_forward: x {x.shape} does not flatten to (N, D) with D = {w.shape[0]} "
            f"(the number of rows of w). Pass x as (N, d_1, ..., d_k) with d_1*...*d_k = D."
        )


def _check_scores_labels(x, y, name):
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 2:
        raise ValueError(f"{name}: scores x must be (N, C); got shape {x.shape}.")
    if y.shape != (x.shape[0],):
        raise ValueError(
            f"{name}: labels y must be (N,) = ({x.shape[0]},) to match x {x.shape}; got {y.shape}."
        )
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{name}: labels y must be integers (class indices); got dtype {y.dtype}.")
    if y.size and (y.min() < 0 or y.max() >= x.shape[1]):
        raise ValueError(
            f"{name}: labels must lie in [0, C) = [0, {x.shape[1]}); got values from "
            f"{y.min()} to {y.max()}."
        )


def _check_dropout_param(dropout_param):
    try:
        p, mode = dropout_param["p"], dropout_param["mode"]
    except (KeyError, TypeError):
        raise ValueError(
            "dropout_param must be a dict with keys 'p' (keep probability) and 'mode' "
            f"('train' or 'test'); got {dropout_param!r}."
        ) from None
    if mode not in ("train", "test"):
        raise ValueError(f"dropout_param['mode'] must be 'train' or 'test'; got {mode!r}.")
    if not 0 < p <= 1:
        raise ValueError(f"dropout_param['p'] is the probability of KEEPING a unit, in (0, 1]; got {p}.")
    seed = dropout_param.get("seed")
    rng = np.random if seed is None else np.random.RandomState(seed)
    return p, mode, rng
