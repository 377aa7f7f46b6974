"""The reference code of the cyclical_lr assignment: nnkit.cyclical, nnkit.classifiers.kth_net, optim.cyclical_lr.

Expected values are worked out by hand or from the definitions in the docstrings (an independent
numeric gradient, the KTH formulas written out here), never taken from the code under test.
"""
import json
import zipfile

import numpy as np
import pytest

from nnkit import cyclical as cy
from nnkit import optim
from nnkit.classifiers.kth_net import KTHNet, load_model, save_model


def numeric_gradient(f, x, h=1e-5):
    """Centred differences of the scalar f() with respect to every entry of x (changed in place, restored)."""
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        plus = f()
        x[i] = old - h
        minus = f()
        x[i] = old
        grad[i] = (plus - minus) / (2 * h)
    return grad


def hand_net():
    """The net of notebook 01's check: W1 = W2 = I, b1 = (0, -ln 3), b2 = 0, lam = 0.1."""
    net = KTHNet(2, 2, 2, lam=0.1, seed=0)
    net.params = {"W1": np.eye(2), "b1": np.array([0.0, -np.log(3)]), "W2": np.eye(2), "b2": np.zeros(2)}
    return net, np.array([[np.log(3), 0.0], [0.0, np.log(3)]]), np.array([0, 1])


# --------------------------------------------------------------------------- cyclical_lr
def test_cyclical_lr_is_a_triangle_between_eta_min_and_eta_max():
    lo, hi, n_s = 0.1, 1.1, 4
    by_hand = [0.1, 0.35, 0.6, 0.85, 1.1, 0.85, 0.6, 0.35, 0.1, 0.35, 0.6]
    assert [optim.cyclical_lr(t, lo, hi, n_s) for t in range(11)] == pytest.approx(by_hand, abs=1e-12)
    # KTH's settings: half way up at t = 250, half way down at 750, the next cycle at 1000.
    kth = [optim.cyclical_lr(t, 1e-5, 1e-1, 500) for t in (0, 250, 500, 750, 1000, 1250, 1750)]
    assert kth == pytest.approx([1e-5, 0.050005, 0.1, 0.050005, 1e-5, 0.050005, 0.050005], rel=1e-12)
    assert isinstance(optim.cyclical_lr(3, lo, hi, n_s), float)


def test_cyclical_lr_refuses_what_has_no_meaning():
    with pytest.raises(ValueError, match="n_s"):
        optim.cyclical_lr(3, n_s=0)
    with pytest.raises(ValueError, match=">= 0"):
        optim.cyclical_lr(-1)


# --------------------------------------------------------------------------- data
def test_normalization_by_hand_and_zero_std():
    X = np.array([[1.0, 2.0, 5.0], [3.0, 2.0, 1.0]])
    mean, std = cy.normalization(X)
    assert mean.tolist() == [2.0, 2.0, 3.0] and std.tolist() == [1.0, 1.0, 2.0]
    assert cy.normalize(X, mean, std).tolist() == [[-1.0, 0.0, 1.0], [1.0, 0.0, -1.0]]
    assert cy.normalize(np.array([[4.0, 0.0, 3.0]]), mean, std).tolist() == [[2.0, -2.0, 0.0]]
    assert X.tolist() == [[1.0, 2.0, 5.0], [3.0, 2.0, 1.0]]
    with pytest.raises(ValueError, match=r"\(3,\)"):
        cy.normalize(X, mean[:2], std[:2])
    with pytest.raises(ValueError, match="one example per row"):
        cy.normalization(np.zeros(3))


def test_load_splits_roles_on_the_embedded_digits():
    from nnkit import data_utils

    full = data_utils.load_dataset("embedded")
    batch = cy.load_splits("batch", "embedded")
    every = cy.load_splits("all", "embedded")
    n = len(full["X_train"])
    assert batch["X_train"].shape == (n // 2, 3072) and batch["X_val"].shape == (n // 2, 3072)
    flat = full["X_train"].reshape(n, -1)
    assert np.array_equal(batch["X_train"], flat[: n // 2]) and np.array_equal(batch["X_val"], flat[n // 2: 2 * (n // 2)])
    assert np.array_equal(batch["y_val"], full["y_train"][n // 2: 2 * (n // 2)])
    assert np.array_equal(every["X_train"], flat) and np.array_equal(every["X_val"], full["X_val"].reshape(178, -1))
    for d in (batch, every):  # the grader's test set in both
        assert np.array_equal(d["X_test"], full["X_test"].reshape(len(full["X_test"]), -1))
    with pytest.raises(ValueError, match="stage"):
        cy.load_splits("half")


def test_the_batch_stage_takes_the_first_two_cifar_files(monkeypatch):
    """On CIFAR-10 the first 10,000 training images are data_batch_1, the next 10,000 data_batch_2."""
    from nnkit import data_utils

    rows = np.arange(25000, dtype=np.float64)[:, None, None, None] + np.zeros((1, 3, 2, 2))
    fake = {"X_train": rows, "y_train": np.arange(25000) % 10, "X_val": rows[:5], "y_val": np.zeros(5, int),
            "X_test": rows[:7], "y_test": np.zeros(7, int), "class_names": data_utils.CIFAR10_CLASSES}
    monkeypatch.setattr(data_utils, "load_dataset", lambda name=None: fake)
    d = cy.load_splits("batch", "cifar10")
    assert d["X_train"][:, 0].tolist() == list(range(10000))
    assert d["X_val"][:, 0].tolist() == list(range(10000, 20000))


# --------------------------------------------------------------------------- KTHNet
def test_init_scales_each_layer_by_its_inputs():
    D, m, C = 900, 120, 10
    net = KTHNet(D, m, C, lam=0.2, seed=3)
    assert {k: v.shape for k, v in net.params.items()} == {"W1": (D, m), "b1": (m,), "W2": (m, C), "b2": (C,)}
    assert not net.params["b1"].any() and not net.params["b2"].any()
    assert abs(net.params["W1"].std() * np.sqrt(D) - 1) < 0.01
    assert abs(net.params["W2"].std() * np.sqrt(m) - 1) < 0.08
    again = KTHNet(D, m, C, seed=3)
    assert all(np.array_equal(again.params[k], net.params[k]) for k in net.params)
    np.random.seed(1)
    a = KTHNet(30, 5, 3).params["W1"]
    np.random.seed(1)
    assert np.array_equal(a, KTHNet(30, 5, 3).params["W1"])
    with pytest.raises(ValueError, match="lam"):
        KTHNet(3, 2, 2, lam=-1)
    with pytest.raises(ValueError, match="hidden_dim"):
        KTHNet(3, 0, 2)


def test_forward_and_cost_by_hand():
    net, X, y = hand_net()
    H, P = net.forward(X)
    assert H == pytest.approx(np.array([[np.log(3), 0.0], [0.0, 0.0]]), abs=1e-12)
    assert P == pytest.approx(np.array([[0.75, 0.25], [0.5, 0.5]]), abs=1e-12)
    J, L = net.cost(X, y)
    assert L == pytest.approx(np.log(8 / 3) / 2, abs=1e-12)
    assert J == pytest.approx(L + 0.4, abs=1e-12)  # lam * (||I||^2 + ||I||^2), no 0.5, no biases
    net.params["W1"] = 1000 * np.eye(2)
    with np.errstate(over="raise", invalid="raise"):
        _, P = net.forward(X)
    assert P == pytest.approx(np.eye(2), abs=1e-12)
    with pytest.raises(ValueError, match="labels"):
        net.cost(X, np.array([0, 2]))


@pytest.mark.parametrize("lam", [0.0, 0.35])
def test_gradients_match_centred_differences(lam):
    rng = np.random.RandomState(0)
    net = KTHNet(7, 6, 4, lam=lam, seed=2)
    for k in ("b1", "b2"):
        net.params[k] = rng.randn(*net.params[k].shape) * 0.3
    X, y = rng.randn(5, 7), rng.randint(4, size=5)
    grads = net.gradients(X, y)
    assert set(grads) == set(net.params)
    for name in net.params:
        num = numeric_gradient(lambda: net.cost(X, y)[0], net.params[name])
        assert grads[name] == pytest.approx(num, abs=1e-7, rel=1e-6), name


def test_the_penalty_gradient_is_two_lam_w():
    """With the data term zero (W2 = 0 and b2 = 0 make every probability 1/C whatever W1 is), dJ/dW1 is the
    penalty's gradient alone: 2 * lam * W1."""
    net = KTHNet(4, 3, 2, lam=0.25, seed=1)
    net.params["W2"][:] = 0.0
    X, y = np.random.RandomState(3).randn(6, 4), np.array([0, 1, 0, 1, 1, 0])
    assert net.gradients(X, y)["W1"] == pytest.approx(0.5 * net.params["W1"], abs=1e-15)


# --------------------------------------------------------------------------- gradients compared
def test_compare_gradients_by_hand():
    errors = cy.compare_gradients(np.array([1.0, 0.0, 2e-7]), np.array([1.5, 0.0, 1e-7]))
    assert errors == pytest.approx({"max_relative": 0.2, "mean_absolute": (0.5 + 1e-7) / 3, "max_absolute": 0.5})
    assert cy.compare_gradients(np.zeros((2, 2)), np.zeros((2, 2)))["max_relative"] == 0.0
    assert cy.compare_gradients(np.array([3e-7]), np.array([1e-7]), eps=1e-5)["max_relative"] == pytest.approx(0.02)
    with pytest.raises(ValueError, match="same"):
        cy.compare_gradients(np.zeros(2), np.zeros(3))


# --------------------------------------------------------------------------- training
class CountingNet:
    """cost 10 per row, loss 1 per row; the rows of X are the probabilities."""

    params = {}

    def cost(self, X, y):
        return 10.0 * len(X), 1.0 * len(X)

    def forward(self, X):
        return None, X


class StepNet:
    """w whose gradient is always 1; cost = loss = w; keeps every batch's labels."""

    def __init__(self):
        self.params = {"w": np.zeros(1)}
        self.batches = []

    def gradients(self, X, y):
        assert np.array_equal(X[:, 0], y)
        self.batches.append(y.tolist())
        return {"w": np.ones(1)}

    def cost(self, X, y):
        return float(self.params["w"][0]), float(self.params["w"][0])

    def forward(self, X):
        return None, np.ones((len(X), 1))


def test_record_appends_what_the_net_says_of_both_sets():
    data = {"X_train": np.array([[0.7, 0.3], [0.2, 0.8], [0.9, 0.1]]), "y_train": np.array([0, 0, 0]),
            "X_val": np.array([[0.4, 0.6], [0.35, 0.65]]), "y_val": np.array([1, 0])}
    h = cy.History()
    cy.record(h, CountingNet(), data, 0)
    cy.record(h, CountingNet(), data, 9)
    assert h.steps == [0, 9]
    assert (h.train_cost, h.train_loss, h.val_cost, h.val_loss) == ([30.0] * 2, [3.0] * 2, [20.0] * 2, [2.0] * 2)
    assert h.train_acc == pytest.approx([2 / 3] * 2) and h.val_acc == [0.5, 0.5]
    assert "2 records" in repr(h)


def test_epoch_batches_partition_in_the_permutation_order():
    rng, same = np.random.RandomState(4), np.random.RandomState(4)
    batches = cy.epoch_batches(11, 4, rng)
    assert [len(b) for b in batches] == [4, 4, 3]
    assert np.concatenate(batches).tolist() == same.permutation(11).tolist()
    assert np.concatenate(cy.epoch_batches(11, 4, rng)).tolist() == same.permutation(11).tolist()  # a new order


def test_minibatch_gd_batches_rates_records_and_the_stop():
    data = {"X_train": np.arange(10.0)[:, None], "y_train": np.arange(10), "X_val": np.zeros((2, 1)),
            "y_val": np.zeros(2, dtype=int)}
    net = StepNet()
    h = cy.minibatch_gd(net, data, lambda t: 0.1 * (t + 1), 7, batch_size=4, record_every=3, seed=5)
    rng = np.random.RandomState(5)
    perms = [rng.permutation(10).tolist() for _ in range(3)]
    expected = [p[s:s + 4] for p in perms for s in (0, 4, 8)][:7]  # 4, 4, 2 per epoch; stops in the third
    assert net.batches == expected
    assert h.learning_rates == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7])
    assert net.params["w"] == pytest.approx([-2.8])
    assert h.steps == [0, 3, 6, 7]
    assert h.train_cost == pytest.approx([0.0, -0.6, -2.1, -2.8])  # w after 0, 3, 6, 7 updates
    # record_every None: the start and the end only; a multiple of record_every ends on a record once.
    h = cy.minibatch_gd(StepNet(), data, lambda t: 1.0, 6, batch_size=10)
    assert h.steps == [0, 6]
    assert cy.minibatch_gd(StepNet(), data, lambda t: 1.0, 6, batch_size=3, record_every=3).steps == [0, 3, 6]
    with pytest.raises(ValueError, match="record_every"):
        cy.minibatch_gd(StepNet(), data, lambda t: 1.0, 6, record_every=0)


def test_the_reference_learns_100_images_by_heart():
    rng = np.random.RandomState(0)
    X, y = rng.randn(100, 60), rng.randint(10, size=100)
    data = {"X_train": X, "y_train": y, "X_val": X[:10], "y_val": y[:10]}
    net = KTHNet(60, 50, 10, lam=0.0, seed=0)
    h = cy.minibatch_gd(net, data, lambda t: 0.1, 200, batch_size=100, seed=0)
    assert h.train_acc[-1] == 1.0 and h.train_cost[-1] < 0.15 < 2.0 < h.train_cost[0]


# --------------------------------------------------------------------------- search
def test_sample_lambdas_is_log_uniform_and_seeded():
    lams = cy.sample_lambdas(-5, -1, 40000, seed=2)
    assert lams.shape == (40000,) and lams.min() >= 1e-5 and lams.max() <= 1e-1
    shares = np.histogram(np.log10(lams), bins=4, range=(-5, -1))[0] / 40000
    assert shares == pytest.approx([0.25] * 4, abs=0.01)
    assert np.array_equal(lams, cy.sample_lambdas(-5, -1, 40000, seed=2))
    u = np.random.RandomState(9).rand(3)
    assert cy.sample_lambdas(-2, 1, 3, seed=9) == pytest.approx(10 ** (-2 + 3 * u), rel=1e-14)
    with pytest.raises(ValueError, match="l_min < l_max"):
        cy.sample_lambdas(0, 0, 3)


def _blobs(n=120, d=8, c=3, seed=0):
    rng = np.random.RandomState(seed)
    centres = rng.randn(c, d) * 3
    y = rng.randint(c, size=n)
    X = centres[y] + rng.randn(n, d)
    return X, y


def test_search_lambda_rows_rounds_and_fine_range():
    X, y = _blobs()
    data = {"X_train": X[:90], "y_train": y[:90], "X_val": X[90:], "y_val": y[90:]}
    coarse = cy.search_lambda(data, -5, -1, 3, n_s=5, cycles=1, batch_size=30, hidden_dim=10, progress=False)
    assert len(coarse) == 3 and {r["round"] for r in coarse} == {1}
    lams = [r["params"]["lam"] for r in coarse]
    assert lams == pytest.approx(cy.sample_lambdas(-5, -1, 3, seed=1).tolist())  # round 1 draws with seed + 1
    assert all(0 <= r["best_val_acc"] <= 1 for r in coarse) and coarse.best_model is not None
    lo, hi = cy.fine_range(coarse)
    best3 = [np.log10(r["params"]["lam"]) for r in coarse.sorted().rows[:3]]
    assert -5 <= lo < hi <= -1 and hi - lo <= 2 + 1e-9 and lo <= max(best3) and min(best3) <= hi
    both = cy.search_lambda(data, lo, hi, 2, n_s=5, cycles=1, batch_size=30, hidden_dim=10, previous=coarse,
                            progress=False)
    assert [r["round"] for r in both] == [1, 1, 1, 2, 2] and [r["trial"] for r in both] == list(range(5))
    assert all(10 ** lo <= r["params"]["lam"] <= 10 ** hi for r in both.rows[3:])
    assert len(both.spaces) == 2 and len(coarse) == 3  # the earlier table is left as it was
    assert "round" in str(both)


# --------------------------------------------------------------------------- saving
def test_save_model_folds_the_standardisation_into_a_two_layer_net_file(tmp_path):
    from nnkit.solver import load_model as solver_load_model

    rng = np.random.RandomState(1)
    X_raw = rng.randn(30, 12) * rng.uniform(0.5, 5, size=12) + rng.uniform(-10, 10, size=12)
    X_raw[:, 3] = 2.0  # a constant column: std 1
    mean, std = cy.normalization(X_raw)
    net = KTHNet(12, 7, 4, lam=0.05, seed=0)
    for k in ("b1", "b2"):
        net.params[k] = rng.randn(*net.params[k].shape)
    want = net.forward(cy.normalize(X_raw, mean, std))[1]
    path = tmp_path / "models" / "net.npz"
    save_model(net, path, mean, std)
    back = load_model(path)
    assert isinstance(back, KTHNet) and back.lam == pytest.approx(0.05)
    assert back.forward(X_raw)[1] == pytest.approx(want, abs=1e-12)
    with zipfile.ZipFile(path) as z:
        meta = json.loads(str(np.load(path)["__nnkit__"]))
        assert sorted(z.namelist()) == ["W1.npy", "W2.npy", "__nnkit__.npy", "b1.npy", "b2.npy"]
    assert meta == {"format": 1, "class": "TwoLayerNet",
                    "config": {"input_dim": 12, "hidden_dim": 7, "num_classes": 4, "reg": 0.1}}
    two_layer = solver_load_model(path)  # CS231n's net with reg = 2 * lam: the same function
    assert type(two_layer).__name__ == "TwoLayerNet" and two_layer.reg == pytest.approx(0.1)
    scores = two_layer.loss(X_raw)
    assert np.array_equal(np.argmax(scores, axis=1), np.argmax(want, axis=1))
    # Without statistics: the net as it is.
    save_model(net, tmp_path / "plain.npz")
    assert load_model(tmp_path / "plain.npz").params["W1"] == pytest.approx(net.params["W1"], abs=0)


def test_save_model_refuses_what_it_cannot_write(tmp_path):
    net = KTHNet(3, 2, 2, seed=0)
    with pytest.raises(ValueError, match="both"):
        save_model(net, tmp_path / "a.npz", np.zeros(3))
    with pytest.raises(ValueError, match=r"\(3,\)"):
        save_model(net, tmp_path / "a.npz", np.zeros(2), np.ones(2))
    with pytest.raises(ValueError, match="nonzero"):
        save_model(net, tmp_path / "a.npz", np.zeros(3), np.zeros(3))
    net.params["W2"][0, 0] = np.nan
    with pytest.raises(ValueError, match="diverged"):
        save_model(net, tmp_path / "a.npz")
    assert not list(tmp_path.iterdir())
