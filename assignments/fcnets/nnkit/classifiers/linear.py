"""Linear classifiers: the SVM and softmax losses, a trainer, and a Solver model.

Shapes (CS231n convention): ``W: (D, C)`` weights, ``X: (N, D)`` examples as
rows, ``y: (N,)`` integer labels in ``[0, C)``; the scores are ``X @ W: (N, C)``.

The loss functions here regularize with ``reg * sum(W**2)`` (gradient
``2 * reg * W``), as the CS231n linear-classifier assignment does; the Solver
model ``SoftmaxRegression`` uses the nets' ``0.5 * reg * sum(W**2)``.
"""
import numpy as np

from nnkit.layers import softmax_loss

__all__ = [
    "svm_loss_naive",
    "svm_loss_vectorized",
    "softmax_loss_naive",
    "softmax_loss_vectorized",
    "LinearClassifier",
    "LinearSVM",
    "Softmax",
    "SoftmaxRegression",
]


def svm_loss_naive(W, X, y, reg):
    """Multiclass SVM loss and gradient, with loops.

    ``loss = (1/N) sum_i sum_{j != y_i} max(0, s_ij - s_iy_i + 1) + reg * sum(W**2)``
    with scores ``s = X W``.

    Parameters
    ----------
    W : ndarray, (D, C)
    X : ndarray, (N, D)
    y : ndarray of int, (N,)
    reg : float

    Returns
    -------
    loss : float
    dW : ndarray, (D, C)
    """
    _check_linear_inputs("svm_loss_naive", W, X, y)
    dW = np.zeros(W.shape, dtype=np.result_type(W, X))
    num_classes = W.shape[1]
    num_train = X.shape[0]
    loss = 0.0
    for i in range(num_train):
        scores = X[i].dot(W)
        correct_class_score = scores[y[i]]
        for j in range(num_classes):
            if j == y[i]:
                continue
            margin = scores[j] - correct_class_score + 1  # note delta = 1
            if margin > 0:
                loss += margin
                # TODO: add this margin's contribution to the gradient dW.
                raise NotImplementedError("svm_loss_naive: not implemented yet, see the TODO above")

    # The loss is a sum over all training examples: average it, then add the
    # regularization.
    loss /= num_train
    loss += reg * np.sum(W * W)

    # TODO: average the gradient in the same way and add the gradient of the
    # regularization term.
    raise NotImplementedError("svm_loss_naive: not implemented yet, see the TODO above")
    return float(loss), dW


def svm_loss_vectorized(W, X, y, reg):
    """Multiclass SVM loss and gradient, without loops.

    Same inputs and outputs as ``svm_loss_naive``.
    """
    _check_linear_inputs("svm_loss_vectorized", W, X, y)
    loss, dW = 0.0, None
    # TODO: Implement a vectorized version of the SVM loss and its gradient.
    raise NotImplementedError("svm_loss_vectorized: not implemented yet, see the TODO above")
    return float(loss), dW


def softmax_loss_naive(W, X, y, reg):
    """Softmax loss and gradient, with loops.

    ``loss = (1/N) sum_i -log(exp(s_iy_i) / sum_j exp(s_ij)) + reg * sum(W**2)``
    with scores ``s = X W``.

    Parameters
    ----------
    W : ndarray, (D, C)
    X : ndarray, (N, D)
    y : ndarray of int, (N,)
    reg : float

    Returns
    -------
    loss : float
    dW : ndarray, (D, C)
    """
    _check_linear_inputs("softmax_loss_naive", W, X, y)
    loss = 0.0
    dW = np.zeros(W.shape, dtype=np.result_type(W, X))
    # TODO: Compute the softmax loss and its gradient with explicit loops over
    # the examples. Subtract each example's largest score before exp() to
    # avoid overflow. Remember the regularization.
    raise NotImplementedError("softmax_loss_naive: not implemented yet, see the TODO above")
    return float(loss), dW


def softmax_loss_vectorized(W, X, y, reg):
    """Softmax loss and gradient, without loops.

    Same inputs and outputs as ``softmax_loss_naive``.
    """
    _check_linear_inputs("softmax_loss_vectorized", W, X, y)
    loss, dW = 0.0, None
    # TODO: Compute the softmax loss and its gradient without explicit loops.
    raise NotImplementedError("softmax_loss_vectorized: not implemented yet, see the TODO above")
    return float(loss), dW


class LinearClassifier:
    """A linear classifier trained by minibatch SGD; subclasses choose the loss.

    Attributes
    ----------
    W : ndarray, (D, C) or None
        The weights; created by the first call of ``train``.
    """

    def __init__(self):
        self.W = None

    def train(self, X, y, learning_rate=1e-3, reg=1e-5, num_iters=100, batch_size=200, verbose=False):
        """Train by stochastic gradient descent.

        Parameters
        ----------
        X : ndarray, (N, D)
            Training examples as rows.
        y : ndarray of int, (N,)
            Labels in [0, C); C is ``max(y) + 1``.
        learning_rate : float
        reg : float
            Regularization strength.
        num_iters : int
            Number of steps.
        batch_size : int
            Examples per step, drawn with replacement.
        verbose : bool
            Print the loss every 100 iterations.

        Returns
        -------
        loss_history : list of float
            The loss at every iteration.
        """
        X, y = np.asarray(X), np.asarray(y)
        if X.ndim != 2 or y.shape != (X.shape[0],):
            raise ValueError(
                f"train: X must be (N, D) and y (N,); got X {X.shape} and y {y.shape}. "
                "Flatten images with X.reshape(X.shape[0], -1)."
            )
        num_train, dim = X.shape
        num_classes = int(np.max(y)) + 1  # assume y takes values 0...K-1 where K is number of classes
        if self.W is None:
            # lazily initialize W
            self.W = 0.001 * np.random.randn(dim, num_classes)
        elif self.W.shape[0] != dim or self.W.shape[1] < num_classes:
            raise ValueError(
                f"train: the classifier's W is {self.W.shape} but X has {dim} columns and y "
                f"{num_classes} classes; use a new classifier for data of another shape."
            )

        loss_history = []
        for it in range(num_iters):
            X_batch, y_batch = None, None
            # TODO: Sample batch_size examples and their labels into X_batch
            # (batch_size, D) and y_batch (batch_size,). Sampling with
            # replacement (np.random.choice) is faster than without.
            raise NotImplementedError("LinearClassifier.train: not implemented yet, see the TODO above")

            loss, grad = self.loss(X_batch, y_batch, reg)
            loss_history.append(loss)

            # TODO: Update the weights with the gradient and the learning rate.
            raise NotImplementedError("LinearClassifier.train: not implemented yet, see the TODO above")

            if verbose and it % 100 == 0:
                print("iteration %d / %d: loss %f" % (it, num_iters, loss))

        return loss_history

    def predict(self, X):
        """Predicted labels.

        Parameters
        ----------
        X : ndarray, (N, D)

        Returns
        -------
        y_pred : ndarray of int, (N,)
            The class with the highest score for each example.
        """
        if self.W is None:
            raise ValueError("predict: the classifier has no weights yet; call train first.")
        y_pred = np.zeros(X.shape[0], dtype=np.int64)
        # TODO: Predict the class with the highest score for every example.
        raise NotImplementedError("LinearClassifier.predict: not implemented yet, see the TODO above")
        return y_pred

    def loss(self, X_batch, y_batch, reg):
        """Loss and gradient on a minibatch; defined by the subclasses.

        Parameters
        ----------
        X_batch : ndarray, (N, D)
        y_batch : ndarray of int, (N,)
        reg : float

        Returns
        -------
        loss : float
        dW : ndarray, (D, C)
        """
        raise NotImplementedError("LinearClassifier.loss: use LinearSVM or Softmax.")


class LinearSVM(LinearClassifier):
    """A linear classifier with the multiclass SVM loss."""

    def loss(self, X_batch, y_batch, reg):
        return svm_loss_vectorized(self.W, X_batch, y_batch, reg)


class Softmax(LinearClassifier):
    """A linear classifier with the softmax (cross-entropy) loss."""

    def loss(self, X_batch, y_batch, reg):
        return softmax_loss_vectorized(self.W, X_batch, y_batch, reg)


class SoftmaxRegression:
    """Softmax regression as a Solver model: ``scores = X W + b``.

    Parameters
    ----------
    input_dim : int
        D.
    num_classes : int
        C.
    weight_scale : float
        Standard deviation of the initial weights, drawn as
        ``weight_scale * np.random.randn(D, C)`` from numpy's global random state.
    reg : float
        L2 strength, with the nets' convention ``0.5 * reg * sum(W**2)``
        (gradient ``reg * W``); b is not regularized.

    Attributes
    ----------
    params : dict
        ``W: (D, C)``, ``b: (C,)``, float64.
    """

    def __init__(self, input_dim=3 * 32 * 32, num_classes=10, weight_scale=1e-3, reg=0.0):
        for key, value in (("input_dim", input_dim), ("num_classes", num_classes)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"SoftmaxRegression: {key} must be a positive integer; got {value!r}.")
        self.input_dim, self.num_classes = input_dim, num_classes
        self.weight_scale, self.reg = weight_scale, reg
        self.params = {
            "W": weight_scale * np.random.randn(input_dim, num_classes),
            "b": np.zeros(num_classes),
        }

    def get_config(self):
        """Constructor arguments as a JSON-able dict (used to save and rebuild the model)."""
        return {
            "input_dim": int(self.input_dim),
            "num_classes": int(self.num_classes),
            "weight_scale": float(self.weight_scale),
            "reg": float(self.reg),
        }

    def loss(self, X, y=None, *, grads=True):
        """Scores, or loss and gradients, for a minibatch.

        Parameters
        ----------
        X : ndarray, (N, d_1, ..., d_k)
            Inputs with d_1 * ... * d_k = D.
        y : ndarray of int, (N,), optional
        grads : bool, keyword only
            With y: False returns the loss alone, without the gradients
            (for numeric gradient checks).

        Returns
        -------
        scores : ndarray, (N, C)
            When y is None.
        loss : float
            When y is given: the softmax data loss plus the L2 term.
        grads : dict
            When y is given and grads is True: ``W: (D, C)``, ``b: (C,)``.
        """
        shape = np.shape(X)
        if len(shape) < 2 or int(np.prod(shape[1:])) != self.params["W"].shape[0]:
            raise ValueError(
                f"SoftmaxRegression.loss: X has shape {shape}, which does not flatten to "
                f"(N, {self.params['W'].shape[0]})."
            )
        W, b = self.params["W"], self.params["b"]
        x = np.asarray(X).reshape(shape[0], -1)
        scores = None
        # TODO: Compute the scores x W + b.
        raise NotImplementedError("SoftmaxRegression.loss: not implemented yet, see the TODO above")
        if y is None:
            return scores

        loss = 0.0
        # TODO: The softmax loss of the scores plus 0.5 * self.reg * sum(W**2)
        # (b is not regularized). Keep what the gradients below need.
        raise NotImplementedError("SoftmaxRegression.loss: not implemented yet, see the TODO above")

        if not grads:  # the loss alone (numeric gradient checks)
            return float(loss)

        grads = {}
        # TODO: The gradients of W and b (the L2 term's too) in grads, under
        # the parameters' names.
        raise NotImplementedError("SoftmaxRegression.loss: not implemented yet, see the TODO above")
        return float(loss), grads


def _check_linear_inputs(name, W, X, y):
    W, X, y = np.asarray(W), np.asarray(X), np.asarray(y)
    if W.ndim != 2 or X.ndim != 2 or X.shape[1] != W.shape[0] or y.shape != (X.shape[0],):
        raise ValueError(
            f"{name}: expected W (D, C), X (N, D) and y (N,); got W {W.shape}, X {X.shape}, "
            f"y {y.shape}. Flatten images with X.reshape(X.shape[0], -1)."
        )
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{name}: labels y must be integers; got dtype {y.dtype}.")
    if y.size and (y.min() < 0 or y.max() >= W.shape[1]):
        raise ValueError(f"{name}: labels must lie in [0, C) = [0, {W.shape[1]}).")
