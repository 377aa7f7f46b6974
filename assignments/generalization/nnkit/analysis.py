"""Tools for the generalisation experiments: what a model is made of, and how it behaves.

Every model here follows the classifiers' contract (``model.params``, ``model.loss``; see
``nnkit.solver``).

- ``count_params(model)``: the number of parameters;
- ``grad_norm(grads)``: the norm of a whole gradient, all parameters together;
- ``flatten_params(params)``: the parameters as one vector (for PCA of training paths);
- ``pca_project(X, k)``: the first k principal components of the rows of X, by SVD;
- ``interpolate_params(params1, params2, alpha)``: ``(1 - alpha) * theta_1 + alpha * theta_2``;
- ``input_grad_norm(model, X, y)``: the Frobenius norm of dL/dX, the loss's sensitivity to
  its input (the nets of ``nnkit.classifiers.fc_net`` give dL/dX with
  ``loss(X, y, input_grad=True)``);
- ``loss_and_accuracy(model, X, y)``: the data loss and the accuracy on a whole set;
- ``record_training(model, data, num_epochs, ...)``: a ``Solver`` run, one epoch at a time,
  with the loss and accuracy of every split after each epoch (the last parameters kept,
  ``restore_best=False``, so that what is measured is what was trained);
- ``shuffled_labels(y, seed)``: the labels in a random order (the random-labels experiment);
- ``load_digits(name)``: the digits of ``nnkit.data_utils.load_dataset`` as one-channel
  images, ``(N, 1, 32, 32)``.
"""
from __future__ import annotations

import numpy as np

__all__ = ["count_params", "grad_norm", "flatten_params", "pca_project", "interpolate_params", "input_grad_norm",
           "loss_and_accuracy", "record_training", "shuffled_labels", "load_digits", "DIGIT_DATASETS"]

#: The datasets load_digits reads (data_utils's names).
DIGIT_DATASETS = ("embedded", "mnist")


def count_params(model):
    """The number of parameters of a model: every entry of every array of ``model.params``.

    Parameters
    ----------
    model : object with ``params``, a dict of name -> ndarray

    Returns
    -------
    count : int
        The sum of the arrays' sizes (a (3, 4) weight counts 12, a (4,) bias 4).
    """
    count = 0
    # TODO: Add up the number of entries of every array in model.params, as a Python int.
    raise NotImplementedError("count_params: not implemented yet, see the TODO above")
    return count


def grad_norm(grads):
    """The Euclidean norm of a whole gradient: all its arrays seen as one long vector.

    Parameters
    ----------
    grads : dict of name -> ndarray
        One gradient per parameter (what ``model.loss(X, y)`` returns).

    Returns
    -------
    norm : float
        ``sqrt(sum over every array g, every entry of g**2)``.
    """
    norm = 0.0
    # TODO: The square root of the sum of the squares of every entry of every array of grads
    # (not the sum of the arrays' own norms).
    raise NotImplementedError("grad_norm: not implemented yet, see the TODO above")
    return float(norm)


def flatten_params(params, names=None):
    """The parameters as one vector: the arrays raveled and concatenated, in ``names`` order.

    Parameters
    ----------
    params : dict of name -> ndarray
    names : sequence of str or None
        The order (default: the dict's own).

    Returns
    -------
    theta : ndarray, (total size,), float64
    """
    names = list(params) if names is None else list(names)
    return np.concatenate([np.asarray(params[k], dtype=np.float64).ravel() for k in names])


def pca_project(X, k=2):
    """The first k principal components of the rows of X, and the rows projected onto them.

    Principal component analysis by the SVD: with ``Xc = X - mean(X, axis=0)`` (every column
    centred) and its thin SVD ``U, S, Vt = np.linalg.svd(Xc, full_matrices=False)``,
    the components are the first k rows of Vt (the directions of largest variance, in
    decreasing order), and each row's coordinates along them are ``Xc @ components.T``.

    Parameters
    ----------
    X : ndarray, (M, P)
        M points (e.g. the weights of several runs at several epochs, one flattened
        parameter vector per row) in P dimensions.
    k : int
        How many components, 1 <= k <= min(M, P).

    Returns
    -------
    Z : ndarray, (M, k)
        The centred rows projected onto the components: ``Xc @ components.T``.
    components : ndarray, (k, P)
        Orthonormal rows, the first k rows of Vt. The sign of each is arbitrary (the SVD's);
        flipping one flips its column of Z, and the checks accept either.
    explained : ndarray, (k,)
        The fraction of the total variance along each component: ``S[:k]**2 / sum(S**2)``.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or not 1 <= k <= min(X.shape):
        raise ValueError(f"pca_project: X must be (M, P) and 1 <= k <= min(M, P); got X {X.shape} and k = {k!r}.")
    Z, components, explained = None, None, None
    # TODO: Centre every column of X (subtract the mean row), take the thin SVD of the result
    # with np.linalg.svd(..., full_matrices=False), keep the first k rows of Vt as the
    # components, project the centred rows onto them, and compute the explained fractions
    # from the singular values S.
    raise NotImplementedError("pca_project: not implemented yet, see the TODO above")
    return Z, components, explained


def interpolate_params(params1, params2, alpha):
    """The parameters on the line through two models: ``(1 - alpha) * theta_1 + alpha * theta_2``.

    Parameters
    ----------
    params1, params2 : dict of name -> ndarray
        Two models' params with the same names and shapes.
    alpha : float
        0 gives params1, 1 gives params2; values outside [0, 1] extrapolate.

    Returns
    -------
    params : dict of name -> ndarray
        NEW arrays (params1 and params2 are left unchanged), under the same names.
    """
    if set(params1) != set(params2) or any(np.shape(params1[k]) != np.shape(params2[k]) for k in params1):
        raise ValueError("interpolate_params: the two models must have the same parameter names and shapes")
    params = {}
    # TODO: For every name, the array (1 - alpha) * params1[name] + alpha * params2[name].
    raise NotImplementedError("interpolate_params: not implemented yet, see the TODO above")
    return params


def input_grad_norm(model, X, y):
    """The sensitivity of a model's loss to its input: the Frobenius norm of dL/dX.

    L is the model's loss on the batch (X, y), the mean over its examples, so dL/dX holds
    one (1/N-scaled) gradient per example; its Frobenius norm is the square root of the sum
    of the squares of all its entries. Compare models on the same X.

    Parameters
    ----------
    model : a net whose ``loss(X, y, input_grad=True)`` returns ``(loss, grads, dX)``
        (``FullyConnectedNet``, ``TwoLayerNet``), dX of the shape of X
    X : ndarray, (N, ...)
    y : ndarray of int, (N,)

    Returns
    -------
    norm : float
    """
    norm = 0.0
    # TODO: Ask the model for dL/dX with model.loss(X, y, input_grad=True) (it returns
    # (loss, grads, dX)) and return the Frobenius norm of dX.
    raise NotImplementedError("input_grad_norm: not implemented yet, see the TODO above")
    return float(norm)


# ---------------------------------------------------------------------------
# Provided: evaluation, training records, data
# ---------------------------------------------------------------------------
def loss_and_accuracy(model, X, y, batch_size=500):
    """The softmax data loss (no L2 term) and the accuracy of a classifier on a whole set.

    Parameters
    ----------
    model : a classifier (``model.loss(X)`` -> scores (N, C))
    X : ndarray, (N, ...)
    y : ndarray of int, (N,)
    batch_size : int
        Examples per forward pass.

    Returns
    -------
    loss : float
        The mean over the N examples of the cross-entropy of their scores.
    accuracy : float
        The fraction whose highest score is their label.
    """
    from nnkit.layers import softmax_loss

    total, correct = 0.0, 0
    for start in range(0, len(X), batch_size):
        scores = model.loss(X[start:start + batch_size])
        labels = y[start:start + batch_size]
        total += softmax_loss(scores, labels)[0] * len(labels)
        correct += int(np.count_nonzero(np.argmax(scores, axis=1) == labels))
    return total / len(X), correct / len(X)


def record_training(model, data, num_epochs, *, splits=("train", "test"), **solver_kwargs):
    """Train with a ``Solver`` one epoch at a time, measuring every split after each epoch.

    The Solver keeps the LAST parameters (``restore_best=False``): an experiment measures
    the model it trained, not the epoch with the best validation accuracy.

    Parameters
    ----------
    model : a classifier
    data : dict
        ``X_train, y_train, X_val, y_val`` for the Solver, and ``X_<split>, y_<split>`` of
        every split measured.
    num_epochs : int
    splits : sequence of str
        The splits measured: their loss (``loss_and_accuracy``) and accuracy.
    **solver_kwargs
        For ``Solver`` (``update_rule``, ``optim_config``, ``batch_size``, ``seed``...);
        ``num_epochs``, ``restore_best``, ``verbose`` and ``progress`` are set here.

    Returns
    -------
    record : dict
        ``"epoch"``: 0, 1, ..., num_epochs; for each split s, ``s + "_loss"`` and
        ``s + "_acc"``: lists of num_epochs + 1 floats (before training, then after each
        epoch); ``"solver"``: the Solver (its loss_history holds every minibatch's loss).
    """
    from nnkit.solver import Solver

    for key in ("num_epochs", "restore_best", "verbose", "progress"):
        if key in solver_kwargs:
            raise ValueError(f"record_training sets {key} itself; leave it out")
    solver = Solver(model, data, num_epochs=1, restore_best=False, verbose=False, progress=False, **solver_kwargs)
    record = {"epoch": []}
    for s in splits:
        record[f"{s}_loss"], record[f"{s}_acc"] = [], []

    def measure(epoch):
        record["epoch"].append(epoch)
        for s in splits:
            loss, acc = loss_and_accuracy(model, data[f"X_{s}"], data[f"y_{s}"])
            record[f"{s}_loss"].append(loss)
            record[f"{s}_acc"].append(acc)

    measure(0)
    for epoch in range(1, num_epochs + 1):
        solver.train()
        measure(epoch)
    record["solver"] = solver
    return record


def shuffled_labels(y, seed=0):
    """The labels y in a random order (``np.random.RandomState(seed).permutation(y)``): the
    same labels, no longer related to their images."""
    return np.random.RandomState(seed).permutation(np.asarray(y))


def load_digits(name=None, *, pool=1, num_training=None, num_validation=None, num_test=None, root=None):
    """Digits as one-channel images, from ``nnkit.data_utils.load_dataset``.

    The loader's CIFAR-shaped view repeats a digit's gray plane in its 3 channels (MNIST's
    28 x 28 digits padded to 32 x 32, LeNet-5's input size; the embedded 8 x 8 digits
    enlarged to it) and subtracts the training mean image. This keeps one channel and
    divides by 255, so pixels lie in about [-1, 1]; with ``pool`` > 1 every pool x pool block
    of pixels is averaged into one (smaller inputs for the fully-connected experiments).

    Parameters
    ----------
    name : "embedded" or "mnist"; None means ``data_utils.dataset_name()``
    pool : int
        1, 2, 4, 8, 16 or 32: images of 32 / pool x 32 / pool pixels.
    num_training, num_validation, num_test, root
        As for ``data_utils.load_dataset``.

    Returns
    -------
    data : dict
        ``X_train`` (N_train, 1, 32 / pool, 32 / pool) float64, ``y_train`` (N_train,) int64, ``X_val``,
        ``y_val``, ``X_test``, ``y_test`` likewise; ``class_names``; ``name``.
    """
    from nnkit import data_utils

    name = data_utils.dataset_name() if name is None else name
    if name not in DIGIT_DATASETS:
        raise ValueError(f"load_digits reads the digits, {' or '.join(map(repr, DIGIT_DATASETS))}, not {name!r}: "
                         "choose one with DATASET in the notebook's first cell.")
    if pool not in (1, 2, 4, 8, 16, 32):
        raise ValueError(f"load_digits: pool must divide 32 (1, 2, 4, 8, 16 or 32), got {pool!r}.")
    # float32 first (MNIST's 3-channel view is 1.4 GB in float64), one channel in float64 after.
    raw = data_utils.load_dataset(name, num_training=num_training, num_validation=num_validation,
                                  num_test=num_test, dtype=np.float32, root=root)
    data = {"class_names": raw["class_names"], "name": name}
    for split in ("train", "val", "test"):
        gray = raw[f"X_{split}"][:, :1].astype(np.float64) / 255.0
        if pool > 1:
            side = 32 // pool
            gray = gray.reshape(len(gray), 1, side, pool, side, pool).mean(axis=(3, 5))
        data[f"X_{split}"] = np.ascontiguousarray(gray)
        data[f"y_{split}"] = raw[f"y_{split}"]
    return data
