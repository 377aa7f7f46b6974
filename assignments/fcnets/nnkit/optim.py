"""First-order update rules, and learning-rate schedules.

Every update rule has the interface::

    next_w, config = update(w, dw, config=None)

- ``w``: array of any shape, the current weights;
- ``dw``: array of the same shape, the gradient of the loss with respect to w;
- ``config``: dict of hyperparameters (learning rate, momentum, ...) and of
  the rule's state (velocity, moving averages, ...). Missing entries get their
  defaults; the state is written back into the same dict, which is returned
  and must be passed to the next call for the same parameter.

For speed the rules may update ``w`` and the state arrays in place and return
them: use the returned values, and copy ``w`` first if you still need the old
weights. Every rule keeps the dtype of ``w``.

NOTE: the default learning rates suit none of the problems in particular;
tune them.

The schedules map an epoch or an update step to a learning rate; pass one to
the Solver as ``lr_schedule=lambda t: cyclical_lr(t, 1e-5, 1e-1, 500)``.
"""
import numpy as np

__all__ = ["sgd", "sgd_momentum", "rmsprop", "adam", "step_decay", "cyclical_lr"]


def sgd(w, dw, config=None):
    """Vanilla stochastic gradient descent: ``w -= learning_rate * dw``.

    Parameters
    ----------
    w : ndarray, any shape
    dw : ndarray, same shape as w
    config : dict or None
        ``learning_rate`` (default 1e-2).

    Returns
    -------
    next_w : ndarray, same shape as w
        ``w`` itself, updated in place.
    config : dict
    """
    config = _config(config, w, dw, "sgd")
    config.setdefault("learning_rate", 1e-2)
    w -= np.multiply(dw, config["learning_rate"], out=_scratch_like(w, dw))
    return w, config


def sgd_momentum(w, dw, config=None):
    """Stochastic gradient descent with momentum.

    ``v = momentum * v - learning_rate * dw``; ``next_w = w + v``.

    Parameters
    ----------
    w : ndarray, any shape
    dw : ndarray, same shape as w
    config : dict or None
        ``learning_rate`` (default 1e-2); ``momentum`` in [0, 1) (default 0.9);
        state ``velocity``: array of w's shape (default zeros).

    Returns
    -------
    next_w : ndarray, same shape as w
    config : dict
        With the new ``velocity``.
    """
    config = _config(config, w, dw, "sgd_momentum")
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    v = config.get("velocity")
    if v is None:  # (not config.get(..., np.zeros_like(w)): that allocates on every call)
        v = np.zeros_like(w)

    next_w = None
    # TODO: Implement the momentum update. Store the updated weights in next_w
    # and the updated velocity in v.
    raise NotImplementedError("sgd_momentum: not implemented yet, see the TODO above")
    config["velocity"] = v

    return next_w, config


def rmsprop(w, dw, config=None):
    """RMSProp: steps scaled by a moving average of squared gradients.

    ``cache = decay_rate * cache + (1 - decay_rate) * dw**2``;
    ``next_w = w - learning_rate * dw / (sqrt(cache) + epsilon)``.

    Parameters
    ----------
    w : ndarray, any shape
    dw : ndarray, same shape as w
    config : dict or None
        ``learning_rate`` (default 1e-2); ``decay_rate`` (default 0.99);
        ``epsilon`` (default 1e-8); state ``cache``: array of w's shape (default zeros).

    Returns
    -------
    next_w : ndarray, same shape as w
    config : dict
        With the new ``cache``.
    """
    config = _config(config, w, dw, "rmsprop")
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("decay_rate", 0.99)
    config.setdefault("epsilon", 1e-8)
    if "cache" not in config:  # (not setdefault: np.zeros_like(w) would run on every call)
        config["cache"] = np.zeros_like(w)

    next_w = None
    # TODO: Implement the RMSprop update. Store the updated weights in next_w
    # and the updated moving average in config["cache"].
    raise NotImplementedError("rmsprop: not implemented yet, see the TODO above")

    return next_w, config


def adam(w, dw, config=None):
    """Adam: moving averages of the gradient and its square, with bias correction.

    ``t += 1`` (first, so the first step uses t = 1);
    ``m = beta1 * m + (1 - beta1) * dw``; ``v = beta2 * v + (1 - beta2) * dw**2``;
    ``mt = m / (1 - beta1**t)``; ``vt = v / (1 - beta2**t)``;
    ``next_w = w - learning_rate * mt / (sqrt(vt) + epsilon)``.

    Parameters
    ----------
    w : ndarray, any shape
    dw : ndarray, same shape as w
    config : dict or None
        ``learning_rate`` (default 1e-3); ``beta1`` (default 0.9); ``beta2``
        (default 0.999); ``epsilon`` (default 1e-8); state ``m`` and ``v``:
        arrays of w's shape (default zeros); ``t``: the step count (default 0).

    Returns
    -------
    next_w : ndarray, same shape as w
    config : dict
        With the new ``m``, ``v`` and ``t``.
    """
    config = _config(config, w, dw, "adam")
    config.setdefault("learning_rate", 1e-3)
    config.setdefault("beta1", 0.9)
    config.setdefault("beta2", 0.999)
    config.setdefault("epsilon", 1e-8)
    for key in ("m", "v"):  # (not setdefault(key, np.zeros_like(w)): that allocates on every call)
        if key not in config:
            config[key] = np.zeros_like(w)
    config.setdefault("t", 0)

    next_w = None
    # TODO: Implement the Adam update, with the bias correction. Store the
    # updated weights in next_w and the new m, v and t in config. To match the
    # reference, increment t BEFORE using it in any calculation.
    raise NotImplementedError("adam: not implemented yet, see the TODO above")

    return next_w, config


# ---------------------------------------------------------------------------
# Learning-rate schedules
# ---------------------------------------------------------------------------
def step_decay(lr0, epoch, drop=0.5, every=10):
    """Step decay: the rate is multiplied by ``drop`` every ``every`` epochs.

    ``lr = lr0 * drop ** floor(epoch / every)``.

    Parameters
    ----------
    lr0 : float
        Rate at epoch 0.
    epoch : int or float
        Epochs completed (fractions allowed: iteration / iterations_per_epoch).
    drop : float
        Factor per step, in (0, 1].
    every : int
        Epochs between steps.

    Returns
    -------
    float
    """
    if every <= 0:
        raise ValueError(f"step_decay: every must be a positive number of epochs; got {every}.")
    if epoch < 0:
        raise ValueError(f"step_decay: epoch must be >= 0; got {epoch}.")
    return float(lr0 * drop ** (epoch // every))


def cyclical_lr(t, eta_min=1e-5, eta_max=1e-1, n_s=500):
    """Triangular cyclical learning rate (Smith, 2015; KTH DD2424) at update step t.

    The rate climbs linearly from ``eta_min`` to ``eta_max`` over ``n_s``
    updates, falls back to ``eta_min`` over the next ``n_s``, and repeats:
    one cycle is ``2 * n_s`` updates. In cycle ``l`` (``2 l n_s <= t <= 2 (l + 1) n_s``)::

        eta_t = eta_min + (t - 2 l n_s) / n_s * (eta_max - eta_min)            if 2 l n_s <= t <= (2 l + 1) n_s
        eta_t = eta_max - (t - (2 l + 1) n_s) / n_s * (eta_max - eta_min)      if (2 l + 1) n_s <= t <= 2 (l + 1) n_s

    so ``eta_0 = eta_min``, ``eta_{n_s} = eta_max``, ``eta_{2 n_s} = eta_min`` again (the two
    lines meet at the ends, so either may be used there).

    Parameters
    ----------
    t : int
        Update step, from 0.
    eta_min, eta_max : float
        Lowest and highest rate.
    n_s : int
        Step size: updates per half cycle.

    Returns
    -------
    float
    """
    if n_s <= 0:
        raise ValueError(f"cyclical_lr: n_s (updates per half cycle) must be positive; got {n_s}.")
    if t < 0:
        raise ValueError(f"cyclical_lr: the update step t must be >= 0; got {t}.")
    eta_t = None
    # TODO: Compute eta_t with the formula above: find where t lies in its cycle of 2 * n_s
    # updates (which l, or t modulo 2 * n_s), then whether the rate is climbing or falling.
    raise NotImplementedError("cyclical_lr: not part of this assignment (another assignment of the course asks for it)")
    return float(eta_t)


# ---------------------------------------------------------------------------
# helpers (provided)
# ---------------------------------------------------------------------------
_SCRATCH = {}  # (shape, dtype) -> array, the most recently used last
_SCRATCH_KEEP = 8


def _scratch_like(w, dw):
    """A reusable work array of w's shape, in the dtype of ``w op dw``.

    A fresh temporary the size of a weight matrix (3072 x 100 is 2.4 MB),
    allocated while the gradient of the same size is alive, is often handed
    fresh pages by the allocator: about 1000 page faults, several ms, per
    update. A few cached arrays avoid that. Never returned, so never shared
    with a caller; not for updates running in several threads at once.
    """
    key = (w.shape, np.result_type(w, dw))
    buf = _SCRATCH.pop(key, None)
    if buf is None:
        buf = np.empty(key[0], dtype=key[1])
        while len(_SCRATCH) >= _SCRATCH_KEEP:
            _SCRATCH.pop(next(iter(_SCRATCH)))
    _SCRATCH[key] = buf
    return buf


def _config(config, w, dw, name):
    if config is None:
        config = {}
    elif not isinstance(config, dict):
        raise TypeError(f"{name}: config must be a dict or None; got {type(config).__name__}.")
    if np.shape(w) != np.shape(dw):
        raise ValueError(
            f"{name}: the gradient dw has shape {np.shape(dw)} but w has shape {np.shape(w)}; "
            "a gradient must have exactly the shape of its parameter."
        )
    return config
