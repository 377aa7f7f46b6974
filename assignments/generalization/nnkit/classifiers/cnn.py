"""A small LeNet-style convolutional net with a softmax loss.

``ConvNet`` follows the contract of ``nnkit.solver.Solver`` (as the nets of ``fc_net`` do):

- ``model.params``: dict of parameter name -> array, numbered in the order the data flows:
  the convolutions' filters and biases first (``W1: (F_1, C, k, k)``, ``b1: (F_1,)``, ...),
  then the affine layers' (``Wi: (d_in, d_out)``, ``bi: (d_out,)``);
- ``model.loss(X)`` -> scores ``(N, num_classes)``;
- ``model.loss(X, y)`` -> ``(loss, grads)``, ``grads`` with the keys and shapes of ``params``;
- ``model.loss(X, y, grads=False)`` -> ``loss`` alone, without the backward pass.

Architecture, LeNet-5's (LeCun et al., 1998) with ReLUs and max pooling::

    {conv k x k (stride 1, `pad` zeros) - ReLU - 2 x 2 max pool (stride 2)} x len(num_filters)
    - {affine - ReLU} x len(hidden_dims) - affine - softmax

With the defaults on 1 x 32 x 32 digits: 32 -> conv 5x5 -> 6 x 28 x 28 -> pool -> 6 x 14 x 14
-> conv 5x5 -> 16 x 10 x 10 -> pool -> 16 x 5 x 5 = 400 -> 120 -> 84 -> 10: 61,706 parameters.

The L2 regularisation is ``0.5 * reg * sum(W**2)`` over every weight array, the filters
included, and none of the biases (the fc nets' convention).

The layers are the fast ones of ``nnkit.conv_layers`` (``conv_relu_pool_forward`` ...), which
compute what the naive ones do; those, and the affine and ReLU layers of ``nnkit.layers`` and
``nnkit.layer_utils``, are what ``loss`` is built from.
"""
import math

import numpy as np

from nnkit.conv_layers import conv_relu_pool_backward, conv_relu_pool_forward, pool_output_shape  # noqa: F401
from nnkit.layer_utils import affine_relu_backward, affine_relu_forward  # noqa: F401
from nnkit.layers import affine_backward, affine_forward, softmax_loss  # noqa: F401

__all__ = ["ConvNet"]

#: The pooling of every convolutional block: 2 x 2 windows, stride 2.
POOL_PARAM = {"pool_height": 2, "pool_width": 2, "stride": 2}


class ConvNet:
    """conv-relu-pool blocks, then affine-relu layers, then an affine layer and the softmax loss.

    Parameters
    ----------
    input_dim : tuple of int
        ``(C, H, W)`` of one input image.
    num_filters : sequence of int
        The filters of each convolutional block (LeNet-5: 6, then 16).
    filter_size : int
        k: every filter is k x k (odd or even).
    hidden_dims : sequence of int
        The units of each affine-ReLU layer after the convolutions (LeNet-5: 120, 84).
    num_classes : int
    pad : int
        Zeros added on each side of every convolution's input (0: "valid" convolutions;
        (k - 1) // 2 with an odd k keeps the size).
    weight_scale : float or None
        Standard deviation of the initial weights; None draws each layer's with
        ``sqrt(2 / fan_in)`` (He et al., for ReLU nets): fan_in is C * k * k for a filter,
        d_in for an affine layer.
    reg : float
        L2 strength (``0.5 * reg * sum(W**2)`` over all weights).
    dtype : numpy dtype or str
        Of the parameters and the computation (float64 for gradient checks).
    seed : int or None
        None draws the weights from numpy's global generator, an int from
        ``np.random.RandomState(seed)``; layer by layer, W1 first, each as
        ``std * rng.randn(*shape)``. Biases start at zero.

    Attributes
    ----------
    params : dict
        ``W1, b1, ..., WL, bL`` with ``L = len(num_filters) + len(hidden_dims) + 1``.
    num_conv : int
        len(num_filters).
    num_layers : int
        L.
    """

    def __init__(self, input_dim=(1, 32, 32), num_filters=(6, 16), filter_size=5, hidden_dims=(120, 84),
                 num_classes=10, pad=0, weight_scale=None, reg=0.0, dtype=np.float64, seed=None):
        input_dim = tuple(input_dim)
        num_filters, hidden_dims = list(num_filters), list(hidden_dims)
        if len(input_dim) != 3:
            raise ValueError(f"ConvNet: input_dim must be (C, H, W), got {input_dim!r}.")
        _check_ints("ConvNet", 1, **{f"input_dim[{i}]": v for i, v in enumerate(input_dim)},
                    filter_size=filter_size, num_classes=num_classes,
                    **{f"num_filters[{i}]": v for i, v in enumerate(num_filters)},
                    **{f"hidden_dims[{i}]": v for i, v in enumerate(hidden_dims)})
        _check_ints("ConvNet", 0, pad=pad)
        if not num_filters:
            raise ValueError("ConvNet: num_filters must list at least one convolutional block.")
        self.input_dim = tuple(int(v) for v in input_dim)
        self.num_filters, self.hidden_dims = [int(f) for f in num_filters], [int(h) for h in hidden_dims]
        self.filter_size, self.num_classes, self.pad = int(filter_size), int(num_classes), int(pad)
        self.weight_scale = None if weight_scale is None else float(weight_scale)
        self.reg = reg
        self.dtype = np.dtype(dtype)
        self.seed = seed
        self.num_conv = len(self.num_filters)
        self.num_layers = self.num_conv + len(self.hidden_dims) + 1

        rng = np.random if seed is None else np.random.RandomState(seed)
        self.params = {}
        for i, shape in enumerate(self.param_shapes(), start=1):
            w_shape, b_shape = shape
            fan_in = math.prod(w_shape[1:]) if len(w_shape) == 4 else w_shape[0]
            std = math.sqrt(2.0 / fan_in) if self.weight_scale is None else self.weight_scale
            self.params[f"W{i}"] = (std * rng.randn(*w_shape)).astype(self.dtype)
            self.params[f"b{i}"] = np.zeros(b_shape, dtype=self.dtype)

    def param_shapes(self):
        """``[(W_i shape, b_i shape) for i = 1..L]`` of this architecture (no arrays are made).

        Raises ValueError when an image becomes too small for a filter or a pool window.
        """
        C, H, W = self.input_dim
        k, p = self.filter_size, self.pad
        shapes = []
        for i, F in enumerate(self.num_filters, start=1):
            H, W = H + 2 * p - k + 1, W + 2 * p - k + 1
            if H < 2 or W < 2:
                raise ValueError(f"ConvNet: the image is {H + k - 1 - 2 * p}x{W + k - 1 - 2 * p} before convolution "
                                 f"{i}, too small for a {k}x{k} filter and a 2x2 pool; use a larger input, "
                                 "more padding, smaller filters or fewer blocks.")
            shapes.append(((F, C, k, k), (F,)))
            C = F
            H, W = pool_output_shape(H, W, POOL_PARAM["pool_height"], POOL_PARAM["pool_width"],
                                     POOL_PARAM["stride"])
        d = C * H * W
        for h in self.hidden_dims:
            shapes.append(((d, h), (h,)))
            d = h
        shapes.append(((d, self.num_classes), (self.num_classes,)))
        return shapes

    def get_config(self):
        """Constructor arguments as a JSON-able dict (used to save and rebuild the model)."""
        return {
            "input_dim": list(self.input_dim),
            "num_filters": list(self.num_filters),
            "filter_size": self.filter_size,
            "hidden_dims": list(self.hidden_dims),
            "num_classes": self.num_classes,
            "pad": self.pad,
            "weight_scale": self.weight_scale,
            "reg": float(self.reg),
            "dtype": self.dtype.name,
            "seed": None if self.seed is None else int(self.seed),
        }

    def loss(self, X, y=None, *, grads=True):
        """Scores, or loss and gradients, for a minibatch.

        Parameters
        ----------
        X : ndarray, (N, C, H, W)
            Images of ``input_dim``; any (N, ...) of C * H * W numbers per example is
            reshaped to it. Cast to the net's dtype.
        y : ndarray of int, (N,), optional
            Labels. Without them only the forward pass runs.
        grads : bool, keyword only
            With y: False returns the loss alone, without the backward pass.

        Returns
        -------
        scores : ndarray, (N, num_classes)
            When y is None.
        loss : float
            When y is given: the softmax data loss plus the L2 term.
        grads : dict
            When y is given and grads is True: the keys and shapes of ``self.params``.
        """
        X = np.asarray(X)
        if X.ndim < 2 or math.prod(X.shape[1:]) != math.prod(self.input_dim):
            raise ValueError(f"ConvNet.loss: X has shape {X.shape}; each example must be an image of shape "
                             f"{self.input_dim} (C, H, W).")
        X = X.reshape(len(X), *self.input_dim).astype(self.dtype, copy=False)
        conv_param = {"stride": 1, "pad": self.pad}
        pool_param = dict(POOL_PARAM)
        L, n_conv = self.num_layers, self.num_conv
        scores = None
        # TODO: The forward pass, scores (N, num_classes) in `scores`: for i = 1 .. n_conv,
        # conv_relu_pool_forward with W{i}, b{i}, conv_param and pool_param; then, for the
        # hidden layers i = n_conv + 1 .. L - 1, affine_relu_forward; last, affine_forward with
        # WL, bL. Keep every layer's cache for the backward pass.
        raise NotImplementedError("ConvNet.loss: not implemented yet, see the TODO above")

        if y is None:
            return scores

        loss = 0.0
        # TODO: The loss: softmax_loss of the scores plus 0.5 * self.reg * the sum of the
        # squares of EVERY weight array W1 .. WL (the filters too), none of the biases.
        raise NotImplementedError("ConvNet.loss: not implemented yet, see the TODO above")

        if not grads:  # the loss alone (numeric gradient checks): no backward pass
            return float(loss)

        grads = {}
        # TODO: The backward pass, in the reverse order of the forward pass: affine_backward,
        # affine_relu_backward for the hidden layers, conv_relu_pool_backward for the blocks,
        # each with its cache. Store every parameter's gradient under its name, with
        # self.reg * W added to each weight's.
        raise NotImplementedError("ConvNet.loss: not implemented yet, see the TODO above")
        return float(loss), grads


def _check_ints(name, low, **values):
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name}: {key} must be an integer >= {low}; got {value!r}.")
