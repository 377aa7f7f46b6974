"""Tests of nnkit.tuning.

Trials train an "oracle" model whose validation accuracy is known in advance:
each sample carries its label in column 0 and a position u in [0, 1) in
column 1; the model predicts the right label exactly when u < q, where the
quality q = exp(-(log10(scale) + 3)**2) peaks at scale = 1e-3. With N_val
evenly spaced positions u_i = (i + 0.5) / N_val, the val accuracy is
#{i : u_i < q} / N_val.
"""

import importlib
import math

import numpy as np
import pytest

from nnkit import tuning
from nnkit.tuning import (TuningResults, coarse_to_fine, grid_search, narrow_space,
                          random_search, sample_params, split_params)

C = 3
N_VAL = 20


class Oracle:
    def __init__(self, scale=1e-3, hidden_dim=10):
        self.q = math.exp(-(math.log10(scale) + 3) ** 2)
        self.hidden_dim = hidden_dim
        self.params = {"w": np.zeros(2)}

    def loss(self, X, y=None):
        label = X[:, 0].astype(int)
        pred = np.where(X[:, 1] < self.q, label, (label + 1) % C)
        scores = np.eye(C)[pred]
        if y is None:
            return scores
        return 1.0 - self.q, {"w": np.zeros(2)}


def oracle_data(n_train=10, n_val=N_VAL):
    def split(n):
        y = np.arange(n) % C
        X = np.stack([y.astype(float), (np.arange(n) + 0.5) / n], axis=1)
        return X, y

    X_train, y_train = split(n_train)
    X_val, y_val = split(n_val)
    return {"X_train": X_train, "y_train": y_train, "X_val": X_val, "y_val": y_val}


def expected_acc(scale, n=N_VAL):
    q = math.exp(-(math.log10(scale) + 3) ** 2)
    return sum((i + 0.5) / n < q for i in range(n)) / n


def keep_rule(w, dw, config):
    return w, config


BASE = {"num_epochs": 1, "batch_size": 10, "update_rule": keep_rule}


# -------------------------------------------------------------- split rule

def test_split_params_rule():
    model_kw, solver_kw = split_params({
        "hidden_dim": 50, "reg": 1e-3, "learning_rate": 1e-2, "momentum": 0.8,
        "batch_size": 64, "lr_decay": 0.9, "update_rule": "adam"})
    assert model_kw == {"hidden_dim": 50, "reg": 1e-3}
    assert solver_kw == {"batch_size": 64, "lr_decay": 0.9, "update_rule": "adam",
                         "optim_config": {"learning_rate": 1e-2, "momentum": 0.8}}


def test_trial_params_reach_the_model_and_the_solver():
    built, seen = [], []

    def build(scale, hidden_dim=10):
        built.append({"scale": scale, "hidden_dim": hidden_dim})
        return Oracle(scale, hidden_dim)

    def rule(w, dw, config):
        seen.append(dict(config))
        return w, config

    results = grid_search(build, oracle_data(), {"scale": [1e-3], "hidden_dim": [7],
                                                 "learning_rate": [0.5], "batch_size": [5]},
                          solver_kwargs={"num_epochs": 1, "update_rule": rule,
                                         "optim_config": {"learning_rate": 9.0, "beta1": 0.3}},
                          progress=False)
    assert built == [{"scale": 1e-3, "hidden_dim": 7}]
    # 10 samples / batch_size 5 = 2 iterations, 1 param: 2 calls; trial lr wins, beta1 kept.
    assert seen == [{"learning_rate": 0.5, "beta1": 0.3}] * 2
    assert results[0]["params"] == {"scale": 1e-3, "hidden_dim": 7, "learning_rate": 0.5,
                                    "batch_size": 5}


def test_unknown_solver_kwargs_raise_before_training():
    with pytest.raises(ValueError, match="learning_rat"):
        grid_search(Oracle, oracle_data(), {"scale": [1e-3]},
                    solver_kwargs={"learning_rat": 1e-3}, progress=False)


# ------------------------------------------------------------------- grid

def test_grid_search_one_row_per_combination_and_best():
    scales = [1e-5, 1e-3, 1e-2]
    results = grid_search(Oracle, oracle_data(), {"scale": scales, "hidden_dim": [5, 10]},
                          solver_kwargs=BASE, progress=False)
    assert len(results) == 6
    assert [r["params"] for r in results] == [
        {"scale": s, "hidden_dim": h} for s in scales for h in (5, 10)]
    for r in results:
        assert r["best_val_acc"] == expected_acc(r["params"]["scale"])
        assert r["loss"] == pytest.approx(1 - math.exp(-(math.log10(r["params"]["scale"]) + 3) ** 2))
        assert r["seconds"] >= 0
    # By hand: q(1e-2) = e^-1 = 0.368 -> u_i < 0.368 for i = 0..6 -> 7/20.
    assert expected_acc(1e-2) == 7 / 20
    best = results.best()
    assert best["params"] == {"scale": 1e-3, "hidden_dim": 5}  # first of the tie
    assert best["best_val_acc"] == 1.0
    assert isinstance(results.best_model, Oracle) and results.best_model.q == 1.0


def test_grid_search_rejects_ranges():
    with pytest.raises(ValueError, match="random_search"):
        grid_search(Oracle, oracle_data(), {"scale": ("log", 1e-4, 1e-2)}, progress=False)


# ----------------------------------------------------------------- random

def test_log_uniform_samples_lie_in_range_and_cover_both_decades():
    rng = np.random.RandomState(0)
    space = {"lr": ("log", 1e-4, 1e-2), "h": [50, 100], "p": ("uniform", 0.2, 0.4),
             "n": ("int", 3, 5), "fixed": "adam"}
    draws = [sample_params(space, rng) for _ in range(400)]
    lrs = np.array([d["lr"] for d in draws])
    assert np.all((lrs >= 1e-4) & (lrs <= 1e-2))
    logs = np.log10(lrs)
    low, high = np.sum(logs < -3), np.sum(logs >= -3)
    # Log-uniform: each decade gets about half. Uniform on [1e-4, 1e-2] would put
    # only ~9% below 1e-3.
    assert 150 < low < 250 and 150 < high < 250
    assert np.histogram(logs, bins=4, range=(-4, -2))[0].min() > 60
    assert {d["h"] for d in draws} == {50, 100}
    ps = np.array([d["p"] for d in draws])
    assert ps.min() >= 0.2 and ps.max() <= 0.4
    assert {d["n"] for d in draws} == {3, 4, 5}
    assert all(d["fixed"] == "adam" for d in draws)
    assert all(type(d["lr"]) is float and type(d["n"]) is int for d in draws)


def test_random_search_rows_and_seed():
    space = {"scale": ("log", 1e-5, 1e-1), "hidden_dim": [5, 10]}
    a = random_search(Oracle, oracle_data(), space, num_trials=12, seed=3,
                      solver_kwargs=BASE, progress=False)
    b = random_search(Oracle, oracle_data(), space, num_trials=12, seed=3,
                      solver_kwargs=BASE, progress=False)
    c = random_search(Oracle, oracle_data(), space, num_trials=12, seed=4,
                      solver_kwargs=BASE, progress=False)
    assert len(a) == 12 and [r["trial"] for r in a] == list(range(12))
    assert [r["params"] for r in a] == [r["params"] for r in b]
    assert [r["params"] for r in a] != [r["params"] for r in c]
    for r in a:
        assert r["best_val_acc"] == expected_acc(r["params"]["scale"])
    assert a.best()["best_val_acc"] == max(r["best_val_acc"] for r in a)


@pytest.mark.parametrize("space, message", [
    ({"x": ("log", 0.0, 1.0)}, "low > 0"),
    ({"x": ("log", 1.0, 0.1)}, "low <= high"),
    ({"x": ("sgd", "adam")}, "LIST of choices"),
    ({"x": []}, "empty"),
])
def test_bad_specs_raise(space, message):
    with pytest.raises(ValueError, match=message):
        random_search(Oracle, oracle_data(), space, num_trials=1, progress=False)


# ------------------------------------------------------------ coarse-to-fine

def test_narrow_space_by_hand():
    space = {"s": ("log", 1e-6, 1.0), "h": [5, 10, 20], "k": ("int", 0, 100), "f": 3}
    top = [{"params": {"s": 1e-3, "h": 10, "k": 40, "f": 3}},
           {"params": {"s": 2e-3, "h": 20, "k": 50, "f": 3}},
           {"params": {"s": 4e-3, "h": 10, "k": 42, "f": 3}}]
    new = narrow_space(space, top, margin=0.25, shrink=0.5)
    # log10 values -3, -2.699, -2.398: span 0.602, padded by 0.1505 each side.
    span = math.log10(4)
    kind, lo, hi = new["s"]
    assert kind == "log"
    assert math.log10(lo) == pytest.approx(-3 - 0.25 * span)
    assert math.log10(hi) == pytest.approx(-3 + span + 0.25 * span)
    assert new["h"] == [10, 20]
    # ints 40..50 padded by 2.5 -> [37.5, 52.5] -> rounded outwards [37, 53].
    assert new["k"] == ("int", 37, 53)
    assert new["f"] == 3


def test_narrow_space_caps_the_width_around_the_best():
    space = {"x": ("uniform", 0.0, 10.0)}
    top = [{"params": {"x": 1.0}}, {"params": {"x": 9.0}}]
    # Hull [0, 10] after padding is wider than shrink * 10 = 5: a window of 5 around
    # the best (1.0), shifted right to stay inside: [0, 5].
    assert narrow_space(space, top, shrink=0.5) == {"x": ("uniform", 0.0, 5.0)}
    top = [{"params": {"x": 6.0}}]
    assert narrow_space(space, top, shrink=0.2) == {"x": ("uniform", 5.0, 7.0)}


def test_coarse_to_fine_narrows_towards_the_peak():
    results = coarse_to_fine(Oracle, oracle_data(), {"scale": ("log", 1e-7, 1e1)},
                             num_trials=8, num_rounds=3, top_k=3, seed=0,
                             solver_kwargs=BASE, progress=False)
    assert len(results) == 24
    assert [r["round"] for r in results] == [1] * 8 + [2] * 8 + [3] * 8
    assert len(results.spaces) == 3
    widths = []
    for i, space in enumerate(results.spaces):
        _, lo, hi = space["scale"]
        widths.append(math.log10(hi) - math.log10(lo))
        rows = [r for r in results if r["round"] == i + 1]
        assert all(lo <= r["params"]["scale"] <= hi for r in rows)
        if i:
            _, plo, phi = results.spaces[i - 1]["scale"]
            assert plo <= lo and hi <= phi
    assert widths[0] == pytest.approx(8)
    assert widths[1] <= 0.5 * widths[0] + 1e-9 and widths[2] <= 0.5 * widths[1] + 1e-9
    # Each later round gets closer to the peak at 1e-3 on average.
    dist = [np.mean([abs(math.log10(r["params"]["scale"]) + 3) for r in results
                     if r["round"] == k]) for k in (1, 2, 3)]
    assert dist[2] < dist[0]
    assert results.best()["best_val_acc"] >= 0.9


# ------------------------------------------------------------------- table

def make_table():
    rows = [
        {"trial": 0, "round": 1, "params": {"lr": 1e-4, "h": 50}, "best_val_acc": 0.4,
         "train_acc": 0.5, "loss": 1.5, "seconds": 0.2},
        {"trial": 1, "round": 1, "params": {"lr": 3e-3, "h": 100}, "best_val_acc": 0.6,
         "train_acc": 0.7, "loss": 1.1, "seconds": 0.3},
        {"trial": 2, "round": 1, "params": {"lr": 1.0, "h": 50}, "best_val_acc": math.nan,
         "train_acc": 0.1, "loss": math.nan, "seconds": 0.1},
    ]
    return TuningResults(rows)


def test_table_sorting_and_best():
    t = make_table()
    assert t.best()["trial"] == 1
    assert [r["trial"] for r in t.sorted()] == [1, 0, 2]
    assert [r["trial"] for r in t.sorted("loss", descending=False)] == [1, 0, 2]
    assert [r["trial"] for r in t.sorted("lr", descending=False)] == [0, 1, 2]
    assert [r["trial"] for r in t] == [0, 1, 2]  # the original is unchanged
    with pytest.raises(ValueError, match="no column or parameter named 'acc'"):
        t.sorted("acc")
    with pytest.raises(ValueError, match="no trials"):
        TuningResults().best()


def test_table_text_and_html():
    t = make_table()
    text = str(t)
    lines = text.splitlines()
    assert lines[0].split() == ["trial", "lr", "h", "best_val_acc", "train_acc", "loss", "seconds"]
    assert len(lines) == 2 + 3 + 1
    assert lines[2].split()[:2] == ["0", "1.00e-04"]
    assert lines[3].split()[:3] == ["1", "0.003", "100"] and lines[3].endswith("*")
    assert "best (*): trial 1" in lines[-1]
    page = t._repr_html_()
    assert page.count("<tr") == 4 and page.count("<th>") == 7
    assert '<tr style="font-weight:bold"><td>1</td>' in page


def test_search_progress_bar_on_stdout(capsys):
    grid_search(Oracle, oracle_data(), {"scale": [1e-3, 1e-2]}, solver_kwargs=BASE,
                progress=True, verbose=True)
    out, err = capsys.readouterr()
    assert "Grid search" in out and "trial 1: scale=0.01" in out
    assert err == ""


def test_diverging_trials_do_not_warn(recwarn):
    class Diverging(Oracle):
        def loss(self, X, y=None):
            out = super().loss(X, y)
            if y is None:
                return out
            return np.exp(np.float64(1e4)) - np.exp(np.float64(1e4)), out[1]  # inf - inf

    results = grid_search(Diverging, oracle_data(), {"scale": [1e-3]}, solver_kwargs=BASE,
                          progress=False)
    assert math.isnan(results[0]["loss"])
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]



def _has_two_layer_net():
    try:
        return hasattr(importlib.import_module("nnkit.classifiers.fc_net"), "TwoLayerNet")
    except Exception:
        return False


@pytest.mark.skipif(not _has_two_layer_net(), reason="nnkit.classifiers.fc_net not available yet")
def test_random_search_trains_two_layer_nets():
    from nnkit.classifiers.fc_net import TwoLayerNet

    rng = np.random.RandomState(0)
    # Two separable blobs in 12 dimensions.
    y = np.arange(80) % 2
    X = rng.randn(80, 12) + 2.0 * y[:, None]
    data = {"X_train": X[:60], "y_train": y[:60], "X_val": X[60:], "y_val": y[60:]}

    def build(hidden_dim, reg=0.0):
        return TwoLayerNet(input_dim=12, hidden_dim=hidden_dim, num_classes=2,
                           weight_scale=0.1, reg=reg)

    np.random.seed(0)  # TwoLayerNet draws its weights from the global generator
    results = random_search(build, data, {"learning_rate": ("log", 1e-2, 1e-1),
                                          "hidden_dim": [4, 8]},
                            num_trials=3, seed=0, progress=False,
                            solver_kwargs={"num_epochs": 10, "batch_size": 20,
                                           "update_rule": "sgd_momentum"})
    assert len(results) == 3
    assert results.best()["best_val_acc"] >= 0.9
    model = results.best_model
    assert model.params["W1"].shape[1] == results.best()["params"]["hidden_dim"]
    pred = np.argmax(model.loss(data["X_val"]), axis=1)
    assert np.mean(pred == data["y_val"]) == results.best()["best_val_acc"]
