"""A two-layer net with the conventions of KTH DD2424's second assignment.

For a batch of N examples, the rows of ``X`` (N, D)::

    S1 = X W1 + b1          (N, m)    W1 (D, m), b1 (m,)
    H  = max(0, S1)         (N, m)    the ReLU
    S  = H W2 + b2          (N, C)    W2 (m, C), b2 (C,)
    P  = softmax(S)         (N, C)    each row sums to 1

    L = (1/N) sum_i -log P[i, y_i]                      the loss
    J = L + lam * (sum(W1**2) + sum(W2**2))              the cost, minimised in training

Where these conventions differ from the CS231n nets of ``nnkit.classifiers.fc_net``:

- **the penalty** is ``lam * ||W||^2``, whose gradient is ``2 * lam * W``; CS231n writes
  ``0.5 * reg * ||W||^2`` (gradient ``reg * W``). The same net and cost with ``reg = 2 * lam``.
  The biases are not penalised in either.
- **the initialisation** depends on the layer: each weight ``N(0, 1/d)`` with d the number of
  inputs of its layer (``W1``: standard deviation ``1/sqrt(D)``, ``W2``: ``1/sqrt(m)``), where
  CS231n uses one ``weight_scale`` for every layer. Biases start at zero.
- **the inputs** are standardised first (``nnkit.cyclical.normalize``: every dimension minus its
  mean, divided by its standard deviation, both of the training set), not only centred.
- **rows are examples** here, as everywhere in nnkit: ``X`` is (N, D) and ``W1`` (D, m). The KTH
  notes put examples in columns (``X`` (d, n), ``W1`` (m, d)): the same formulas, transposed.

The methods are KTH's functions: ``forward`` is EvaluateClassifier (it also returns ``H``, which
the gradients need), ``cost`` is ComputeCost (it returns the loss too), ``gradients`` is
ComputeGradients.

A trained net is saved with ``save_model`` as a ``TwoLayerNet`` file of ``nnkit.solver`` (the
same function: affine, ReLU, affine, with ``reg = 2 * lam``), with the input standardisation
folded into its first layer, so that it takes the images as ``nnkit.data_utils.load_dataset``
gives them; ``load_model`` reads it back as a ``KTHNet``.
"""
import json
import math

import numpy as np

from nnkit.solver import FILE_FORMAT, META_KEY, _read_meta, _read_npz, _write_npz

__all__ = ["KTHNet", "save_model", "load_model"]


class KTHNet:
    """Two layers, ReLU between them, softmax at the end; cost = loss + lam * ||W||^2.

    Parameters
    ----------
    input_dim : int
        D, the size of one (flattened, standardised) input.
    hidden_dim : int
        m, the number of hidden units (KTH: 50).
    num_classes : int
        C.
    lam : float
        lam >= 0, the strength of the penalty ``lam * (sum(W1**2) + sum(W2**2))``.
    seed : int or None
        The initial weights are drawn from ``np.random.RandomState(seed)``; None draws them
        from numpy's global generator (``np.random.seed`` then repeats them).

    Attributes
    ----------
    params : dict
        ``W1`` (D, m), ``b1`` (m,), ``W2`` (m, C), ``b2`` (C,), float64.
    lam : float
    """

    def __init__(self, input_dim=3 * 32 * 32, hidden_dim=50, num_classes=10, lam=0.0, seed=None):
        for key, value in (("input_dim", input_dim), ("hidden_dim", hidden_dim), ("num_classes", num_classes)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"KTHNet: {key} must be a positive integer; got {value!r}.")
        if isinstance(lam, bool) or not isinstance(lam, (int, float, np.integer, np.floating)) \
                or not lam >= 0 or not math.isfinite(lam):
            raise ValueError(f"KTHNet: lam must be a finite number >= 0; got {lam!r}.")
        self.input_dim, self.hidden_dim, self.num_classes = int(input_dim), int(hidden_dim), int(num_classes)
        self.lam = float(lam)
        self.seed = seed
        rng = np.random if seed is None else np.random.RandomState(seed)
        self.params = {}
        # TODO: Initialise W1, b1, W2, b2 in self.params. Draw the weights from rng, W1 first:
        # rng.randn(rows, columns) scaled to the standard deviation 1 / sqrt(d), d the number of
        # inputs of that layer (D for W1, m for W2). The biases are zeros.
        raise NotImplementedError("KTHNet.__init__: not implemented yet, see the TODO above")

    def get_config(self):
        """The constructor's arguments, as a JSON-able dict."""
        return {"input_dim": self.input_dim, "hidden_dim": self.hidden_dim, "num_classes": self.num_classes,
                "lam": self.lam, "seed": self.seed if self.seed is None else int(self.seed)}

    def forward(self, X):
        """The forward pass (KTH's EvaluateClassifier).

        Parameters
        ----------
        X : ndarray, (N, D) (or (N, d1, ..., dk) with d1 * ... * dk = D)

        Returns
        -------
        H : ndarray, (N, m)
            The hidden activations ``max(0, X W1 + b1)``.
        P : ndarray, (N, C)
            The class probabilities ``softmax(H W2 + b2)``, row by row.
        """
        X = _flat(X, self.params["W1"].shape[0], "forward")
        W1, b1, W2, b2 = (self.params[k] for k in ("W1", "b1", "W2", "b2"))
        H = P = None
        # TODO: Compute H and P. Subtract each row's largest score before exp(): the
        # probabilities stay the same and exp cannot overflow.
        raise NotImplementedError("KTHNet.forward: not implemented yet, see the TODO above")
        return H, P

    def cost(self, X, y):
        """The cost J and the loss L of a batch (KTH's ComputeCost).

        Parameters
        ----------
        X : ndarray, (N, D)
        y : ndarray of int, (N,)
            Labels in 0..C-1.

        Returns
        -------
        J : float
            ``L + lam * (sum(W1**2) + sum(W2**2))``.
        L : float
            The mean cross-entropy ``(1/N) sum_i -log P[i, y_i]``.
        """
        y = _labels(y, len(X), self.params["b2"].shape[0], "cost")
        W1, W2 = self.params["W1"], self.params["W2"]
        J = L = None
        # TODO: Compute L from the probabilities of forward, then J. Only the weights are
        # penalised, not the biases; note there is no 0.5 in KTH's penalty.
        raise NotImplementedError("KTHNet.cost: not implemented yet, see the TODO above")
        return float(J), float(L)

    def gradients(self, X, y):
        """The gradients of the cost J with respect to every parameter (KTH's ComputeGradients).

        Parameters
        ----------
        X : ndarray, (N, D)
        y : ndarray of int, (N,)

        Returns
        -------
        grads : dict
            ``W1`` (D, m), ``b1`` (m,), ``W2`` (m, C), ``b2`` (C,): ``dJ/dW1`` and so on, the
            penalty's ``2 * lam * W`` included.
        """
        X = _flat(X, self.params["W1"].shape[0], "gradients")
        y = _labels(y, len(X), self.params["b2"].shape[0], "gradients")
        W1, W2 = self.params["W1"], self.params["W2"]
        N = len(X)
        grads = {}
        # TODO: Backpropagate. With G = P - Y (Y the one-hot labels, (N, C)), the gradient of
        # the loss with respect to the scores S is G / N; go back through W2, then through the
        # ReLU (where S1 > 0, i.e. H > 0), then through W1. Add the penalty's gradient to the
        # weights' gradients.
        raise NotImplementedError("KTHNet.gradients: not implemented yet, see the TODO above")
        return grads


# ---------------------------------------------------------------------------
# Saving a trained net (provided)
# ---------------------------------------------------------------------------
def save_model(net, path, mean=None, std=None):
    """Save a trained net as a ``TwoLayerNet`` file of ``nnkit.solver``, for the images as loaded.

    A net trained on standardised inputs ``(x - mean) / std`` computes, in its first layer,
    ``((x - mean) / std) W1 + b1 = x W1' + b1'`` with ``W1' = W1 / std`` (row d of W1 divided
    by ``std[d]``) and ``b1' = b1 - (mean / std) W1``. The file holds ``W1', b1', W2, b2``: a net
    that takes the inputs ``x`` before standardisation, as ``nnkit.data_utils.load_dataset``
    gives them (flattened), which is what the grader evaluates it on.

    Parameters
    ----------
    net : KTHNet (or any net with params W1, b1, W2, b2 and lam)
    path : str or Path
        Written exactly as given (``models/final_net.npz``); missing folders are created.
    mean, std : ndarray, (D,), or None
        What ``nnkit.cyclical.normalization`` returned for the training set; None when the
        net was trained on the inputs as they are.

    Notes
    -----
    The file is ``{"format": 1, "class": "TwoLayerNet", "config": {"input_dim", "hidden_dim",
    "num_classes", "reg"}}`` plus the four arrays, with ``reg = 2 * lam`` (the two penalties'
    conventions, see the module docstring): ``nnkit.solver.load_model`` rebuilds it as a
    ``TwoLayerNet``, ``load_model`` below as a ``KTHNet``.
    """
    params = {k: np.asarray(net.params[k], dtype=np.float64) for k in ("W1", "b1", "W2", "b2")}
    W1, b1 = params["W1"], params["b1"]
    D, m = W1.shape
    if (mean is None) != (std is None):
        raise ValueError("save_model: give both mean and std (the training set's), or neither.")
    if mean is not None:
        mean = np.asarray(mean, dtype=np.float64).reshape(-1)
        std = np.asarray(std, dtype=np.float64).reshape(-1)
        if mean.shape != (D,) or std.shape != (D,):
            raise ValueError(f"save_model: mean and std must have shape ({D},) like the net's inputs; got "
                             f"{mean.shape} and {std.shape}.")
        if not np.all(np.isfinite(std)) or np.any(std == 0) or not np.all(np.isfinite(mean)):
            raise ValueError("save_model: std must be finite and nonzero (normalization() replaces a 0 by 1).")
        params["W1"] = W1 / std[:, None]
        params["b1"] = b1 - (mean / std) @ W1
    C = params["W2"].shape[1]
    for name, shape in (("b1", (m,)), ("W2", (m, C)), ("b2", (C,))):
        if params[name].shape != shape:
            raise ValueError(f"save_model: params[{name!r}] has shape {params[name].shape}, expected {shape}.")
    for name, w in params.items():
        if not np.all(np.isfinite(w)):
            raise ValueError(f"save_model: params[{name!r}] holds nan or inf: the training diverged.")
    config = {"input_dim": int(D), "hidden_dim": int(m), "num_classes": int(C), "reg": 2 * float(net.lam)}
    arrays = dict(params)
    arrays[META_KEY] = np.array(json.dumps({"format": FILE_FORMAT, "class": "TwoLayerNet", "config": config}))
    _write_npz(path, arrays)


def load_model(path):
    """Read a file of ``save_model`` (or a ReLU ``TwoLayerNet`` file) as a ``KTHNet``.

    The net takes the inputs as ``nnkit.data_utils.load_dataset`` gives them, flattened: the
    standardisation is folded into its first layer. ``lam`` is the file's ``reg / 2``.

    Returns
    -------
    KTHNet
    """
    entries = _read_npz(path, "model")
    meta = _read_meta(path, entries, "model")
    config = meta.get("config")
    if meta.get("class") != "TwoLayerNet" or not isinstance(config, dict):
        raise ValueError(f"{path}: holds a {meta.get('class')!r}, not the TwoLayerNet that save_model writes.")
    if config.get("activation", "relu") != "relu":
        raise ValueError(f"{path}: a TwoLayerNet with the {config.get('activation')!r} activation is not a KTHNet "
                         "(ReLU).")
    try:
        net = KTHNet(config["input_dim"], config["hidden_dim"], config["num_classes"],
                     lam=float(config.get("reg", 0.0)) / 2, seed=0)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: cannot build a KTHNet from the config {config!r} ({exc}).") from None
    if set(entries) != set(net.params):
        raise ValueError(f"{path}: holds {sorted(entries)}, expected {sorted(net.params)}.")
    for name, w in net.params.items():
        got = entries[name]
        if got.shape != w.shape or got.dtype.kind != "f":
            raise ValueError(f"{path}: {name} is {got.dtype}{got.shape}, expected float{w.shape}.")
        net.params[name] = got.astype(np.float64)
    return net


# ---------------------------------------------------------------------------
# helpers (provided)
# ---------------------------------------------------------------------------
def _flat(X, D, what):
    X = np.asarray(X)
    if X.ndim < 2 or math.prod(X.shape[1:]) != D:
        raise ValueError(f"KTHNet.{what}: X has shape {X.shape}, which does not flatten to (N, {D}); each "
                         f"example must hold input_dim = {D} numbers.")
    return X.reshape(len(X), D)


def _labels(y, N, C, what):
    y = np.asarray(y)
    if y.shape != (N,) or y.dtype.kind not in "iu":
        raise ValueError(f"KTHNet.{what}: y must be {N} integer labels, shape ({N},); got {y.dtype}{y.shape}.")
    if N and (y.min() < 0 or y.max() >= C):
        raise ValueError(f"KTHNet.{what}: labels must lie in 0..{C - 1}; got {y.min()}..{y.max()}.")
    return y
