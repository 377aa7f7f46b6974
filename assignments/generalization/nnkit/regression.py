"""Regression with fully-connected nets: the mean squared error, a net, and its training loop.

- ``mse_loss(pred, y) -> (loss, dpred)``: the mean squared error and its gradient, a loss
  layer with the contract of ``nnkit.layers.softmax_loss``;
- ``RegressionNet``: ``{affine - ReLU} x len(hidden_dims) - affine`` with that loss, following
  the model contract of the classifiers (``params``, ``loss(X)``, ``loss(X, y)``);
- ``fit(model, X, y, ...)``: Adam on (mini)batches, recording the training loss every epoch,
  the norm of the gradient at every step and, on request, the parameters every few epochs;
- ``target_function(x)``: ``sin(5 pi x) / (5 pi x)`` (1 at x = 0), the function the
  notebooks fit, and ``widths_for_budget``: hidden widths giving nets of several depths
  (nearly) the same number of parameters.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from nnkit import analysis, optim
from nnkit.layers import affine_backward, affine_forward, relu_backward, relu_forward

__all__ = ["mse_loss", "RegressionNet", "fit", "FitHistory", "target_function", "widths_for_budget",
           "mlp_param_count"]


def mse_loss(pred, y):
    """Mean squared error and its gradient, averaged over every entry.

    ``loss = (1 / (N * K)) * sum over i, k of (pred[i, k] - y[i, k])**2``.

    Parameters
    ----------
    pred : ndarray, (N, K)
        Predictions (any shape, in fact: every entry counts the same).
    y : ndarray, the shape of pred
        Targets.

    Returns
    -------
    loss : float
    dpred : ndarray, the shape of pred
        The gradient of the loss with respect to pred.
    """
    pred, y = np.asarray(pred), np.asarray(y)
    if pred.shape != y.shape:
        raise ValueError(f"mse_loss: pred has shape {pred.shape} and y {y.shape}; they must be the same "
                         "(reshape y to pred's shape, e.g. y.reshape(-1, 1) for one output).")
    loss, dpred = None, None
    # TODO: The mean of the squared differences over ALL N * K entries, and its gradient with
    # respect to pred: the derivative of (pred - y)**2 is 2 (pred - y), divided by the number of
    # entries that the mean divides by.
    raise NotImplementedError("mse_loss: not implemented yet, see the TODO above")
    return float(loss), dpred


def target_function(x):
    """``sin(5 pi x) / (5 pi x)``, with its limit 1 at x = 0 (``np.sinc(5 x)``); any shape."""
    return np.sinc(5 * np.asarray(x, dtype=np.float64))


def mlp_param_count(hidden_dims, input_dim=1, output_dim=1):
    """Weights and biases of the affine layers ``input_dim -> hidden_dims ... -> output_dim``."""
    sizes = [input_dim, *hidden_dims, output_dim]
    return sum(a * b + b for a, b in zip(sizes, sizes[1:]))


def widths_for_budget(depth, budget, input_dim=1, output_dim=1):
    """The hidden widths of a net of ``depth`` equal hidden layers with about ``budget`` parameters.

    Returns
    -------
    hidden_dims : list of int, length depth
        The width w (the same for every layer) whose ``mlp_param_count`` is closest to budget.
    """
    if depth < 1 or budget < 1:
        raise ValueError("widths_for_budget: depth and budget must be positive")
    best = min(range(1, budget + 1),
               key=lambda w: abs(mlp_param_count([w] * depth, input_dim, output_dim) - budget))
    return [best] * depth


class RegressionNet:
    """A fully-connected regression net: ``{affine - ReLU} x len(hidden_dims) - affine``, MSE loss.

    Parameters
    ----------
    hidden_dims : sequence of int
        The width of each hidden layer.
    input_dim : int
        D, the size of one input.
    output_dim : int
        K, the size of one prediction.
    weight_scale : float or None
        None (the default) draws every layer's weights AND biases uniformly from
        ``[-1/sqrt(d_in), 1/sqrt(d_in)]``, as PyTorch's ``nn.Linear`` does: with one input, the
        random first-layer biases spread the ReLUs' kinks over the inputs (with zero biases
        every kink would sit at x = 0 and the net start out piecewise linear in two pieces).
        A float: weights ``weight_scale * randn``, biases as with None.
    seed : int or None
        None draws from numpy's global generator, an int from
        ``np.random.RandomState(seed)``; layer by layer, W1 then b1 first.

    Attributes
    ----------
    params : dict
        ``W1: (D, H_1)``, ``b1: (H_1,)``, ..., ``WL: (H_{L-1}, K)``, ``bL: (K,)``, float64.
    num_layers : int
        ``L = len(hidden_dims) + 1``.
    """

    def __init__(self, hidden_dims, input_dim=1, output_dim=1, weight_scale=None, seed=None):
        self.hidden_dims = [int(h) for h in hidden_dims]
        if any(h < 1 for h in self.hidden_dims) or input_dim < 1 or output_dim < 1:
            raise ValueError("RegressionNet: every size must be a positive integer")
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        self.weight_scale = None if weight_scale is None else float(weight_scale)
        self.seed = seed
        self.num_layers = len(self.hidden_dims) + 1
        rng = np.random if seed is None else np.random.RandomState(seed)
        sizes = [self.input_dim, *self.hidden_dims, self.output_dim]
        self.params = {}
        for i in range(1, self.num_layers + 1):
            d_in, d_out = sizes[i - 1], sizes[i]
            bound = 1.0 / math.sqrt(d_in)
            if self.weight_scale is None:
                self.params[f"W{i}"] = rng.uniform(-bound, bound, size=(d_in, d_out))
            else:
                self.params[f"W{i}"] = self.weight_scale * rng.randn(d_in, d_out)
            self.params[f"b{i}"] = rng.uniform(-bound, bound, size=d_out)

    def get_config(self):
        """Constructor arguments as a JSON-able dict."""
        return {"hidden_dims": list(self.hidden_dims), "input_dim": self.input_dim,
                "output_dim": self.output_dim, "weight_scale": self.weight_scale,
                "seed": None if self.seed is None else int(self.seed)}

    def loss(self, X, y=None, *, grads=True):
        """Predictions, or the MSE loss and its gradients, for a batch.

        Parameters
        ----------
        X : ndarray, (N, D), or (N,) when D = 1
        y : ndarray, (N, K), or (N,) when K = 1; optional
        grads : bool, keyword only
            With y: False returns the loss alone.

        Returns
        -------
        pred : ndarray, (N, K)
            When y is None.
        loss : float
            When y is given: ``mse_loss(pred, y)``.
        grads : dict
            When y is given and grads is True: the keys and shapes of ``params``.
        """
        X = np.asarray(X, dtype=np.float64)
        X = X.reshape(len(X), -1)
        if X.shape[1] != self.input_dim:
            raise ValueError(f"RegressionNet.loss: X has {X.shape[1]} numbers per example, the net takes "
                             f"input_dim = {self.input_dim}.")
        L = self.num_layers
        p = self.params
        layers = [(p[f"W{k + 1}"], p[f"b{k + 1}"]) for k in range(L)]  # (W, b) of every affine layer
        layer_caches = []
        h = X
        for W, b in layers[:-1]:
            z, affine_cache = affine_forward(h, W, b)
            h, relu_cache = relu_forward(z)
            layer_caches.append((affine_cache, relu_cache))
        pred, last_cache = affine_forward(h, *layers[-1])
        if y is None:
            return pred
        target = np.asarray(y, dtype=np.float64).reshape(pred.shape)
        loss, dpred = mse_loss(pred, target)
        if not grads:
            return float(loss)
        out = {}
        upstream, out[f"W{L}"], out[f"b{L}"] = affine_backward(dpred, last_cache)
        for i in reversed(range(1, L)):
            affine_cache, relu_cache = layer_caches[i - 1]
            upstream, out[f"W{i}"], out[f"b{i}"] = affine_backward(relu_backward(upstream, relu_cache), affine_cache)
        return float(loss), out


@dataclass
class FitHistory:
    """What ``fit`` recorded.

    Attributes
    ----------
    loss : list of float
        The loss on the whole training set before training (entry 0) and after every epoch.
    grad_norm : list of float
        ``analysis.grad_norm`` of the gradients of every step, in order.
    snapshots : list of ndarray
        The parameters (``analysis.flatten_params``) at the epochs of ``snapshot_epochs``.
    snapshot_epochs : list of int
        0 (before training), then every ``record_every`` epochs.
    """

    loss: list = field(default_factory=list)
    grad_norm: list = field(default_factory=list)
    snapshots: list = field(default_factory=list)
    snapshot_epochs: list = field(default_factory=list)


def fit(model, X, y, *, num_epochs=1000, batch_size=None, learning_rate=1e-3, seed=0, record_every=None):
    """Train ``model`` with Adam on (X, y), recording as it goes.

    Parameters
    ----------
    model : RegressionNet or any model of the same contract
    X : ndarray, (N, ...)
    y : ndarray, (N, ...)
    num_epochs : int
    batch_size : int or None
        None: the whole set every step (one step per epoch).
    learning_rate : float
        Adam's (``nnkit.optim.adam``, its other settings the defaults).
    seed : int
        Seed of the order of the minibatches (a new permutation every epoch).
    record_every : int or None
        Keep a copy of the parameters every this many epochs (and before training).

    Returns
    -------
    history : FitHistory
    """
    X, y = np.asarray(X), np.asarray(y)
    N = len(X)
    B = N if batch_size is None else int(batch_size)
    rng = np.random.RandomState(seed)
    configs = {p: {"learning_rate": learning_rate} for p in model.params}
    history = FitHistory()
    if record_every:
        history.snapshots.append(analysis.flatten_params(model.params).copy())
        history.snapshot_epochs.append(0)
    for epoch in range(1, num_epochs + 1):
        order = rng.permutation(N) if B < N else np.arange(N)
        for start in range(0, N, B):
            rows = order[start:start + B]
            loss, grads = model.loss(X[rows], y[rows])
            if B == N:  # the whole set: this step's loss is the loss before the epoch
                history.loss.append(float(loss))
            elif epoch == 1 and start == 0:
                history.loss.append(float(model.loss(X, y, grads=False)))
            history.grad_norm.append(float(analysis.grad_norm(grads)))
            for p in model.params:
                model.params[p], configs[p] = optim.adam(model.params[p], grads[p], configs[p])
        if B < N or epoch == num_epochs:
            history.loss.append(float(model.loss(X, y, grads=False)))
        if record_every and epoch % record_every == 0:
            history.snapshots.append(analysis.flatten_params(model.params).copy())
            history.snapshot_epochs.append(epoch)
    return history
