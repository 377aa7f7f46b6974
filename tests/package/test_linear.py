"""Linear classifiers: losses by hand and by definition, naive == vectorized,
numeric gradients (helper written here), training on a separable toy problem,
and the SoftmaxRegression Solver model."""
import json

import numpy as np
import pytest

from numgrad import numeric_grad_scalar, rel

from nnkit.classifiers import linear as lin


def svm_by_definition(W, X, y, reg):
    s = X @ W
    total = sum(max(0.0, s[i, j] - s[i, y[i]] + 1.0)
                for i in range(len(y)) for j in range(W.shape[1]) if j != y[i])
    return total / len(y) + reg * np.sum(W * W)


def softmax_by_definition(W, X, y, reg):
    s = X @ W
    p = np.exp(s) / np.exp(s).sum(axis=1, keepdims=True)  # small scores: no overflow here
    return -np.mean(np.log(p[np.arange(len(y)), y])) + reg * np.sum(W * W)


def problem(N=40, D=12, C=5, seed=0):
    rng = np.random.default_rng(seed)
    return 0.1 * rng.standard_normal((D, C)), rng.standard_normal((N, D)), rng.integers(0, C, N)


def test_svm_hand_computed_2x3():
    W = np.eye(3)  # scores = X
    X = np.array([[3.0, 1.0, 2.5], [0.0, 2.0, 1.5]])
    y = np.array([0, 2])
    for fn in (lin.svm_loss_naive, lin.svm_loss_vectorized):
        loss, dW = fn(W, X, y, 0.0)
        assert loss == pytest.approx(1.0, abs=1e-15)  # (0.5 + 1.5) / 2, correct class not counted
        # dscores = [[-0.5, 0, 0.5], [0, 0.5, -0.5]], dW = X^T dscores
        np.testing.assert_allclose(dW, X.T @ np.array([[-0.5, 0.0, 0.5], [0.0, 0.5, -0.5]]), atol=1e-15)


# The SVM loss is piecewise linear: a tiny step is exact between its kinks and
# crosses none of them; the smooth softmax loss takes the stencil's usual step.
@pytest.mark.parametrize("naive,vec,by_def,h", [
    (lin.svm_loss_naive, lin.svm_loss_vectorized, svm_by_definition, 1e-6),
    (lin.softmax_loss_naive, lin.softmax_loss_vectorized, softmax_by_definition, 1e-3),
])
@pytest.mark.parametrize("reg", [0.0, 0.3])
def test_naive_equals_vectorized_equals_definition_and_numeric(naive, vec, by_def, h, reg):
    W, X, y = problem(seed=int(10 * reg))
    loss_n, dW_n = naive(W, X, y, reg)
    loss_v, dW_v = vec(W, X, y, reg)
    assert loss_n == pytest.approx(by_def(W, X, y, reg), rel=1e-12)
    assert loss_v == pytest.approx(loss_n, rel=1e-12)
    assert dW_n.shape == dW_v.shape == W.shape
    assert rel(dW_n, dW_v) < 1e-10
    assert rel(dW_v, numeric_grad_scalar(lambda w: by_def(w, X, y, reg), W, h)) < 1e-7


@pytest.mark.parametrize("fn", [lin.svm_loss_naive, lin.svm_loss_vectorized,
                                lin.softmax_loss_naive, lin.softmax_loss_vectorized])
def test_regularization_is_reg_times_sum_of_squares(fn):
    W, X, y = problem(seed=5)
    l0, g0 = fn(W, X, y, 0.0)
    l1, g1 = fn(W, X, y, 2.5)
    assert l1 - l0 == pytest.approx(2.5 * np.sum(W * W), rel=1e-10)
    np.testing.assert_allclose(g1 - g0, 2 * 2.5 * W, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("fn", [lin.softmax_loss_naive, lin.softmax_loss_vectorized])
def test_softmax_zero_weights_gives_log_c_and_large_scores_stay_finite(fn):
    _, X, y = problem(C=7)
    assert fn(np.zeros((12, 7)), X, y, 0.0)[0] == pytest.approx(np.log(7), rel=1e-13)
    loss, dW = fn(np.full((12, 7), 300.0) * np.arange(7), X, y, 0.0)  # scores in the thousands
    assert np.isfinite(loss) and np.all(np.isfinite(dW))


@pytest.mark.parametrize("fn", [lin.svm_loss_vectorized, lin.softmax_loss_naive])
def test_linear_losses_reject_bad_shapes(fn):
    W, X, y = problem()
    with pytest.raises(ValueError, match="reshape"):
        fn(W, X.reshape(40, 3, 4), y, 0.0)
    with pytest.raises(ValueError, match=r"\[0, C\)"):
        fn(W, X, y + 5, 0.0)


def blobs(n_per_class=60, D=4, C=3, seed=0):
    rng = np.random.default_rng(seed)
    centres = 6.0 * np.eye(C, D)
    X = np.concatenate([c + 0.5 * rng.standard_normal((n_per_class, D)) for c in centres])
    return X, np.repeat(np.arange(C), n_per_class)


@pytest.mark.parametrize("cls", [lin.LinearSVM, lin.Softmax])
def test_linear_classifier_learns_separable_problem(cls):
    X, y = blobs()
    np.random.seed(0)
    clf = cls()
    with pytest.raises(ValueError, match="train first"):
        clf.predict(X)
    history = clf.train(X, y, learning_rate=1e-2, reg=1e-4, num_iters=300, batch_size=50)
    assert len(history) == 300 and clf.W.shape == (4, 3)
    assert np.mean(history[-20:]) < 0.3 * np.mean(history[:5])
    pred = clf.predict(X)
    assert pred.shape == (180,) and np.mean(pred == y) >= 0.98


def test_linear_classifier_train_reports_and_rejects_images(capsys):
    X, y = blobs()
    clf = lin.Softmax()
    clf.train(X, y, num_iters=201, verbose=True)
    assert capsys.readouterr().out.count("iteration") == 3  # 0, 100, 200
    with pytest.raises(ValueError, match="reshape"):
        lin.Softmax().train(X.reshape(-1, 2, 2), y)


# ---------------------------------------------------------------- SoftmaxRegression
def test_softmax_regression_init_loss_gradients_and_config():
    np.random.seed(3)
    model = lin.SoftmaxRegression(input_dim=12, num_classes=4, weight_scale=0.2, reg=0.6)
    np.random.seed(3)
    np.testing.assert_array_equal(model.params["W"], 0.2 * np.random.randn(12, 4))
    np.testing.assert_array_equal(model.params["b"], np.zeros(4))
    rng = np.random.default_rng(1)
    model.params["b"][:] = rng.standard_normal(4)
    X = rng.standard_normal((6, 3, 2, 2))
    y = rng.integers(0, 4, 6)

    def by_def(W, b):  # the nets' convention: 0.5 * reg * sum(W**2), b not regularized
        s = X.reshape(6, -1) @ W + b
        p = np.exp(s) / np.exp(s).sum(axis=1, keepdims=True)
        return -np.mean(np.log(p[np.arange(6), y])) + 0.5 * 0.6 * np.sum(W * W)

    W, b = model.params["W"], model.params["b"]
    np.testing.assert_allclose(model.loss(X), X.reshape(6, -1) @ W + b, rtol=1e-13)
    loss, grads = model.loss(X, y)
    assert loss == pytest.approx(by_def(W, b), rel=1e-12)
    assert rel(grads["W"], numeric_grad_scalar(lambda w: by_def(w, b), W)) < 1e-7
    assert rel(grads["b"], numeric_grad_scalar(lambda c: by_def(W, c), b)) < 1e-7
    cfg = json.loads(json.dumps(model.get_config()))
    assert cfg == {"input_dim": 12, "num_classes": 4, "weight_scale": 0.2, "reg": 0.6}
    assert lin.SoftmaxRegression(**cfg).get_config() == cfg
    with pytest.raises(ValueError, match=r"\(N, 12\)"):
        model.loss(np.zeros((2, 13)))
