"""Tests of nnkit.solver: the training loop, checkpoints and model files.

The loop is tested on a tiny softmax-regression model defined here (so these
tests do not depend on the student modules); the tests that need TwoLayerNet /
FullyConnectedNet / SoftmaxRegression skip when those are not importable.
"""

import importlib
import json
import os
import zipfile

import numpy as np
import pytest

from nnkit import solver as solver_mod
from nnkit.solver import Solver, load_checkpoint, load_model, save_model


# ----------------------------------------------------------------- helpers

class ToySoftmax:
    """Softmax regression, scores = X @ W + b; X: (N, D) or (N, d1, ...)."""

    def __init__(self, input_dim=4, num_classes=3, weight_scale=1e-2, reg=0.0, seed=0):
        rng = np.random.RandomState(seed)
        self.input_dim, self.num_classes = input_dim, num_classes
        self.weight_scale, self.reg, self.seed = weight_scale, reg, seed
        self.params = {
            "W": weight_scale * rng.randn(input_dim, num_classes),
            "b": np.zeros(num_classes),
        }

    def get_config(self):
        return {"input_dim": self.input_dim, "num_classes": self.num_classes,
                "weight_scale": self.weight_scale, "reg": self.reg, "seed": self.seed}

    def loss(self, X, y=None):
        X2 = X.reshape(X.shape[0], -1)
        W, b = self.params["W"], self.params["b"]
        scores = X2 @ W + b
        if y is None:
            return scores
        shifted = scores - scores.max(axis=1, keepdims=True)
        p = np.exp(shifted)
        p /= p.sum(axis=1, keepdims=True)
        N = X2.shape[0]
        loss = -np.mean(np.log(p[np.arange(N), y])) + 0.5 * self.reg * np.sum(W * W)
        d = p
        d[np.arange(N), y] -= 1
        d /= N
        return loss, {"W": X2.T @ d + self.reg * W, "b": d.sum(axis=0)}


def toy_sgd(w, dw, config=None):
    """Plain SGD written out here, independent of nnkit.optim."""
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-2)
    return w - config["learning_rate"] * dw, config


def toy_momentum(w, dw, config=None):
    """SGD with momentum, keeping a velocity array and a step counter as state."""
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-2)
    v = config.get("velocity", np.zeros_like(w))
    v = 0.9 * v - config["learning_rate"] * dw
    config["velocity"] = v
    config["t"] = config.get("t", 0) + 1
    return w + v, config


def fresh_config_momentum(w, dw, config=None):
    """Momentum that returns a NEW config dict (never mutates the one passed in):
    the Solver must store what the rule returns."""
    config = dict(config or {})
    config.setdefault("learning_rate", 1e-2)
    v = 0.9 * config.get("velocity", np.zeros_like(w)) - config["learning_rate"] * dw
    config["velocity"] = v
    return w + v, config


def make_data(N_train=50, N_val=30, D=4, C=3, seed=0, shape=None):
    rng = np.random.RandomState(seed)
    data = {
        "X_train": rng.randn(N_train, D), "y_train": rng.randint(C, size=N_train),
        "X_val": rng.randn(N_val, D), "y_val": rng.randint(C, size=N_val),
    }
    if shape is not None:
        data["X_train"] = data["X_train"].reshape((N_train,) + shape)
        data["X_val"] = data["X_val"].reshape((N_val,) + shape)
    return data


def quiet(**kwargs):
    return dict(verbose=False, progress=False, **kwargs)


def has_module(name, attr):
    try:
        return hasattr(importlib.import_module(name), attr)
    except Exception:
        return False


HAS_FC = has_module("nnkit.classifiers.fc_net", "TwoLayerNet")
HAS_LINEAR = has_module("nnkit.classifiers.linear", "SoftmaxRegression")
HAS_OPTIM = has_module("nnkit.optim", "sgd")
needs_fc = pytest.mark.skipif(not HAS_FC, reason="nnkit.classifiers.fc_net not available yet")
needs_optim = pytest.mark.skipif(not HAS_OPTIM, reason="nnkit.optim not available yet")


# ------------------------------------------------------------ construction

def test_unknown_kwargs_raise_and_are_named():
    with pytest.raises(ValueError, match="learning_rate") as err:
        Solver(ToySoftmax(), make_data(), learning_rate=1e-3, num_epoch=3)
    assert "num_epoch" in str(err.value)
    assert "optim_config" in str(err.value)  # the hint for the common mistake


def test_missing_data_keys_are_named():
    data = make_data()
    del data["y_val"]
    with pytest.raises(ValueError, match="y_val"):
        Solver(ToySoftmax(), data)


@needs_optim
def test_bad_update_rule_name_raises():
    with pytest.raises(ValueError, match="no_such_rule"):
        Solver(ToySoftmax(), make_data(), update_rule="no_such_rule")


def test_bad_batch_size_raises():
    with pytest.raises(ValueError, match="batch_size"):
        Solver(ToySoftmax(), make_data(), batch_size=0)


def test_grads_with_wrong_shape_are_reported():
    class BadGrads(ToySoftmax):
        def loss(self, X, y=None):
            out = super().loss(X, y)
            if y is None:
                return out
            loss, grads = out
            grads["b"] = grads["b"][None, :]  # the keepdims bug: (1, C) for (C,)
            return loss, grads

    s = Solver(BadGrads(), make_data(), update_rule=toy_sgd, **quiet(num_epochs=1))
    with pytest.raises(ValueError, match=r"grads\['b'\] has shape \(1, 3\)"):
        s.train()


# ------------------------------------------------------------------ training

def test_overfits_small_data_with_toy_softmax():
    # D >= N: 50 points with random labels in 60 dimensions are linearly separable.
    data = make_data(N_train=50, N_val=10, D=60, C=5, seed=1)
    model = ToySoftmax(input_dim=60, num_classes=5)
    s = Solver(model, data, update_rule=toy_sgd, optim_config={"learning_rate": 0.5},
               batch_size=25, num_epochs=100, **quiet())
    s.train()
    # The last check ran on the final params, on all 50 samples.
    assert s.train_acc_history[-1] == 1.0
    assert s.loss_history[-1] < s.loss_history[0]


@needs_fc
def test_overfits_50_samples_with_two_layer_net():
    from nnkit.classifiers.fc_net import TwoLayerNet

    rng = np.random.RandomState(0)
    data = {"X_train": rng.randn(50, 3, 8, 8), "y_train": rng.randint(10, size=50),
            "X_val": rng.randn(20, 3, 8, 8), "y_val": rng.randint(10, size=20)}
    np.random.seed(0)
    model = TwoLayerNet(input_dim=3 * 8 * 8, hidden_dim=50, num_classes=10, weight_scale=1e-2)
    s = Solver(model, data, update_rule=toy_sgd, optim_config={"learning_rate": 0.5},
               batch_size=25, num_epochs=60, seed=0, **quiet())
    s.train()
    # Compare against labels directly: the model holds the best-val params now,
    # so check the train accuracy history, whose last entry is the final params.
    assert s.train_acc_history[-1] == 1.0


def test_callable_update_rule_is_called_for_every_param_with_its_own_config():
    calls = []

    def rule(w, dw, config):
        calls.append((w.shape, id(config)))
        return toy_sgd(w, dw, config)

    model = ToySoftmax()
    s = Solver(model, make_data(N_train=20), update_rule=rule, batch_size=10,
               num_epochs=1, **quiet())
    s.train()
    # 20 // 10 = 2 iterations x 2 params.
    assert len(calls) == 4
    assert sorted({shape for shape, _ in calls}) == [(3,), (4, 3)]
    assert s.optim_configs["W"] is not s.optim_configs["b"]


@needs_optim
def test_update_rule_by_name_is_looked_up_in_optim():
    from nnkit import optim

    s = Solver(ToySoftmax(), make_data(), update_rule="sgd_momentum", **quiet())
    assert s.update_rule is optim.sgd_momentum
    s.train()
    assert "velocity" in s.optim_configs["W"]


def test_step_applies_the_rule_and_stores_the_config():
    data = make_data(N_train=8)
    model = ToySoftmax()
    W0 = model.params["W"].copy()
    b0 = model.params["b"].copy()
    s = Solver(model, data, update_rule=toy_momentum, optim_config={"learning_rate": 0.1},
               batch_size=8, seed=3, **quiet())
    # Independent computation of the first step on the same minibatch.
    idx = np.random.RandomState(3).randint(0, 8, size=8)
    ref = ToySoftmax()
    _, g = ref.loss(data["X_train"][idx], data["y_train"][idx])
    s._step()
    assert np.allclose(model.params["W"], W0 - 0.1 * g["W"])
    assert np.allclose(model.params["b"], b0 - 0.1 * g["b"])
    assert np.allclose(s.optim_configs["W"]["velocity"], -0.1 * g["W"])
    assert s.optim_configs["b"]["t"] == 1


def test_step_stores_the_config_the_rule_returns():
    data = make_data(N_train=8)
    model = ToySoftmax()
    s = Solver(model, data, update_rule=fresh_config_momentum,
               optim_config={"learning_rate": 0.1}, batch_size=8, seed=2, **quiet())
    ref = ToySoftmax()
    rng = np.random.RandomState(2)
    v = {p: np.zeros_like(w) for p, w in ref.params.items()}
    for _ in range(3):
        idx = rng.randint(0, 8, size=8)
        _, g = ref.loss(data["X_train"][idx], data["y_train"][idx])
        for p in ref.params:
            v[p] = 0.9 * v[p] - 0.1 * g[p]
            ref.params[p] = ref.params[p] + v[p]
        s._step()
    for p in ref.params:
        assert np.allclose(s.optim_configs[p]["velocity"], v[p])
        assert np.allclose(model.params[p], ref.params[p])
    assert "velocity" not in s.optim_config  # the shared settings stay clean


def test_lr_decay_is_applied_every_epoch():
    seen = []

    def rule(w, dw, config):
        seen.append(config["learning_rate"])
        return toy_sgd(w, dw, config)

    lr, decay = 0.1, 0.5
    s = Solver(ToySoftmax(), make_data(N_train=40), update_rule=rule,
               optim_config={"learning_rate": lr}, lr_decay=decay,
               batch_size=10, num_epochs=3, **quiet())
    s.train()
    # 4 iterations per epoch, 2 params per iteration: epoch e uses lr * decay**e.
    expected = [lr * decay ** (i // 8) for i in range(24)]
    assert np.allclose(seen, expected)
    for config in s.optim_configs.values():
        assert config["learning_rate"] == pytest.approx(lr * decay ** 3)
    assert s.epoch == 3


def test_lr_schedule_sets_the_rate_every_iteration():
    seen = []

    def rule(w, dw, config):
        seen.append(config["learning_rate"])
        return toy_sgd(w, dw, config)

    s = Solver(ToySoftmax(), make_data(N_train=40), update_rule=rule,
               lr_schedule=lambda t: 1.0 / (t + 1), batch_size=10, num_epochs=2, **quiet())
    s.train()
    assert np.allclose(seen, [1.0 / (i // 2 + 1) for i in range(16)])
    with pytest.raises(ValueError, match="lr_decay"):
        Solver(ToySoftmax(), make_data(), lr_schedule=lambda t: 0.1, lr_decay=0.9)


def test_histories_have_one_entry_per_check():
    s = Solver(ToySoftmax(), make_data(N_train=40), update_rule=toy_sgd,
               batch_size=10, num_epochs=3, **quiet())
    s.train()
    assert len(s.loss_history) == 12
    assert len(s.train_acc_history) == len(s.val_acc_history) == 4  # first it + 3 epochs


def scripted_rule(weights):
    """An update rule that ignores the gradient and writes the next scripted value
    into w IN PLACE (so kept references to w would change too)."""
    calls = {"W": 0}

    def rule(w, dw, config):
        if w.ndim == 2:
            w[...] = weights[calls["W"]]
            calls["W"] += 1
        return w, config

    return rule


def test_best_params_are_a_copy_from_the_best_epoch_not_the_last():
    # Val: 3 one-hot points labelled 0, 1, 2 -> identity W classifies all right.
    data = {"X_train": np.eye(3), "y_train": np.arange(3),
            "X_val": np.eye(3), "y_val": np.arange(3)}
    good = np.eye(3)                   # val acc 1
    half = np.eye(3)[:, [0, 2, 1]]     # val acc 1/3
    bad = np.eye(3)[:, [1, 2, 0]]      # val acc 0
    model = ToySoftmax(input_dim=3, num_classes=3)
    # batch_size 3 -> one iteration per epoch -> one check per iteration.
    also_good = 2 * np.eye(3)          # val acc 1 too: a tie keeps the first
    s = Solver(model, data, update_rule=scripted_rule([half, good, bad, also_good, half]),
               batch_size=3, num_epochs=5, **quiet())
    s.train()
    assert s.val_acc_history == pytest.approx([1 / 3, 1.0, 0.0, 1.0, 1 / 3])
    assert s.best_val_acc == 1.0
    assert np.array_equal(s.best_params["W"], good)
    # The model ends with the best params, and they are not shared with best_params.
    assert np.array_equal(model.params["W"], good)
    assert model.params["W"] is not s.best_params["W"]


def test_best_params_kept_even_when_val_acc_is_always_zero():
    data = {"X_train": np.eye(3), "y_train": np.arange(3),
            "X_val": np.eye(3), "y_val": np.arange(3)}
    bad = np.eye(3)[:, [1, 2, 0]]
    model = ToySoftmax(input_dim=3, num_classes=3)
    s = Solver(model, data, update_rule=scripted_rule([bad, bad]), batch_size=3,
               num_epochs=2, **quiet())
    s.train()
    assert s.val_acc_history == [0.0, 0.0]
    assert set(model.params) == {"W", "b"}  # not emptied (the CS231n gotcha)
    assert set(s.best_params) == {"W", "b"}  # the first check's params were kept
    assert s.best_val_acc == 0.0
    assert np.array_equal(model.params["W"], bad)


def test_same_seed_same_run_different_seed_different_run():
    def run(seed):
        s = Solver(ToySoftmax(), make_data(N_train=100), update_rule=toy_sgd,
                   optim_config={"learning_rate": 0.1}, batch_size=10, num_epochs=2,
                   num_train_samples=30, num_val_samples=10, seed=seed, **quiet())
        s.train()
        return s.loss_history, s.train_acc_history, s.val_acc_history

    a, b, c = run(0), run(0), run(1)
    assert a == b
    assert a[0] != c[0]


def test_seed_none_follows_numpy_global_seed():
    def run():
        np.random.seed(7)
        s = Solver(ToySoftmax(), make_data(N_train=100), update_rule=toy_sgd,
                   batch_size=10, num_epochs=1, **quiet())
        s.train()
        return s.loss_history

    assert run() == run()


def test_seed_none_draws_the_same_minibatches_as_cs231n():
    # The CS231n loop written out: np.random.choice(N, batch_size) on the global RNG.
    data = make_data(N_train=100)
    np.random.seed(5)
    ref = ToySoftmax()
    ref_losses = []
    for _ in range(20):
        idx = np.random.choice(100, 10)
        loss, grads = ref.loss(data["X_train"][idx], data["y_train"][idx])
        ref_losses.append(loss)
        for p in ref.params:
            ref.params[p] = ref.params[p] - 0.1 * grads[p]

    np.random.seed(5)
    s = Solver(ToySoftmax(), data, update_rule=toy_sgd, optim_config={"learning_rate": 0.1},
               batch_size=10, num_epochs=2, **quiet())
    s.train()
    assert s.loss_history == ref_losses


@needs_optim
def test_lr_schedule_with_nnkit_cyclical_lr():
    from nnkit import optim

    seen = []

    def rule(w, dw, config):
        if w.ndim == 2:
            seen.append(config["learning_rate"])
        return optim.sgd(w, dw, config)

    s = Solver(ToySoftmax(), make_data(N_train=30), update_rule=rule, batch_size=5,
               num_epochs=1, lr_schedule=lambda t: optim.cyclical_lr(t, 0.0, 1.0, n_s=2),
               **quiet())
    s.train()
    # Triangle 0 -> 1 -> 0 over 4 iterations, by hand.
    assert seen == [0.0, 0.5, 1.0, 0.5, 0.0, 0.5]
    assert s.iterations_per_epoch == 6


def test_check_accuracy_full_set_and_batches():
    data = make_data(N_train=37, D=4, C=3, seed=2, shape=(2, 2))
    model = ToySoftmax()
    s = Solver(model, data, update_rule=toy_sgd, **quiet())
    X2 = data["X_train"].reshape(37, 4)
    expected = np.mean(np.argmax(X2 @ model.params["W"] + model.params["b"], axis=1)
                       == data["y_train"])
    for bs in (1, 10, 37, 100):
        assert s.check_accuracy(data["X_train"], data["y_train"], batch_size=bs) == expected


def test_check_accuracy_subsample_uses_the_solver_generator():
    data = make_data(N_train=200, seed=4)
    model = ToySoftmax()
    s = Solver(model, data, update_rule=toy_sgd, seed=11, **quiet())
    idx = np.random.RandomState(11).randint(0, 200, size=50)
    pred = np.argmax(data["X_train"][idx] @ model.params["W"] + model.params["b"], axis=1)
    expected = np.mean(pred == data["y_train"][idx])
    assert s.check_accuracy(data["X_train"], data["y_train"], num_samples=50,
                            batch_size=7) == expected


# -------------------------------------------------------------------- output

def test_quiet_run_prints_nothing(capsys):
    s = Solver(ToySoftmax(), make_data(), update_rule=toy_sgd, batch_size=10,
               num_epochs=2, **quiet())
    s.train()
    out, err = capsys.readouterr()
    assert out == "" and err == ""


def test_progress_bar_goes_to_stdout_not_stderr(capsys):
    s = Solver(ToySoftmax(), make_data(), update_rule=toy_sgd, batch_size=10,
               num_epochs=2, verbose=False, progress=True)
    s.train()
    out, err = capsys.readouterr()
    assert "Training" in out and "10/10" in out
    assert err == ""


def test_verbose_prints_iterations_and_epochs(capsys):
    s = Solver(ToySoftmax(), make_data(N_train=40), update_rule=toy_sgd, batch_size=10,
               num_epochs=2, print_every=3, verbose=True, progress=False)
    s.train()
    out = capsys.readouterr().out
    # Iterations 1, 4, 7 of 8 (t % 3 == 0) and checks at epochs 0, 1, 2.
    assert [l.split(")")[0] for l in out.splitlines() if l.startswith("(Iteration")] == [
        "(Iteration 1 / 8", "(Iteration 4 / 8", "(Iteration 7 / 8"]
    assert sum(l.startswith("(Epoch") for l in out.splitlines()) == 3


# ---------------------------------------------------------------- checkpoints

def test_checkpoints_round_trip(tmp_path):
    snapshots = {}

    class Recording(Solver):
        def _save_checkpoint(self):
            super()._save_checkpoint()
            snapshots[self.epoch] = {
                "params": {k: v.copy() for k, v in self.model.params.items()},
                "best_params": {k: v.copy() for k, v in self.best_params.items()},
                "optim": {p: {k: (v.copy() if isinstance(v, np.ndarray) else v)
                              for k, v in c.items()} for p, c in self.optim_configs.items()},
                "loss": list(self.loss_history),
                "train": list(self.train_acc_history),
                "val": list(self.val_acc_history),
            }

    name = str(tmp_path / "ck" / "toy")
    s = Recording(ToySoftmax(), make_data(N_train=40), update_rule=toy_momentum,
                  optim_config={"learning_rate": 0.05}, batch_size=10, num_epochs=3,
                  checkpoint_name=name, **quiet())
    s.train()
    assert sorted(os.listdir(tmp_path / "ck")) == [f"toy_epoch_{e}.npz" for e in range(4)]
    for epoch, snap in snapshots.items():
        ck = load_checkpoint(f"{name}_epoch_{epoch}.npz")
        assert ck["epoch"] == epoch
        assert ck["update_rule"] == "toy_momentum"
        assert ck["model_class"] == "ToySoftmax"
        assert ck["model_config"] == ToySoftmax().get_config()
        assert ck["loss_history"] == snap["loss"]
        assert ck["train_acc_history"] == snap["train"]
        assert ck["val_acc_history"] == snap["val"]
        for key in ("params", "best_params"):
            assert set(ck[key]) == set(snap[key])
            for p in snap[key]:
                assert np.array_equal(ck[key][p], snap[key][p])
        for p, config in snap["optim"].items():
            assert set(ck["optim_configs"][p]) == {"learning_rate", "velocity", "t"}
            assert np.array_equal(ck["optim_configs"][p]["velocity"], config["velocity"])
            assert ck["optim_configs"][p]["t"] == config["t"]
            assert ck["optim_configs"][p]["learning_rate"] == config["learning_rate"]
    # Never pickled: every entry loads with allow_pickle=False.
    with np.load(f"{name}_epoch_3.npz", allow_pickle=False) as f:
        assert all(f[k].dtype != object for k in f.files)


def test_load_checkpoint_rejects_a_model_file(tmp_path, toy_known):
    path = tmp_path / "m.npz"
    save_model(ToySoftmax(), path)
    with pytest.raises(ValueError, match="not a checkpoint"):
        load_checkpoint(path)


# -------------------------------------------------------------- model files

@pytest.fixture
def toy_known(monkeypatch):
    """Let save_model / load_model accept the toy class, as if it were built in."""
    monkeypatch.setitem(solver_mod.KNOWN_MODELS, "ToySoftmax", (__name__, "ToySoftmax"))


def write_npz(path, meta=None, **arrays):
    if meta is not None:
        arrays["__nnkit__"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)
    return path


def toy_meta(cls="ToySoftmax", config=None):
    return {"format": 1, "class": cls, "config": config or ToySoftmax().get_config()}


def test_save_and_load_toy_model(tmp_path, toy_known):
    model = ToySoftmax(input_dim=4, num_classes=3, weight_scale=1.0, seed=5)
    model.params["b"] = np.array([1.0, 2.0, 3.0])
    path = tmp_path / "models" / "toy.npz"
    save_model(model, path)
    assert path.is_file()
    with np.load(path, allow_pickle=False) as f:
        assert sorted(f.files) == ["W", "__nnkit__", "b"]
        meta = json.loads(str(f["__nnkit__"]))
    assert meta == {"format": 1, "class": "ToySoftmax", "config": model.get_config()}
    state = np.random.get_state()
    loaded = load_model(path)
    assert np.array_equal(np.random.get_state()[1], state[1])  # global RNG untouched
    assert type(loaded) is ToySoftmax
    for k in ("W", "b"):
        assert np.array_equal(loaded.params[k], model.params[k])
        assert loaded.params[k].dtype == model.params[k].dtype


def test_save_model_refuses_unknown_classes(tmp_path):
    with pytest.raises(ValueError, match="ToySoftmax"):
        save_model(ToySoftmax(), tmp_path / "m.npz")


@pytest.mark.parametrize("case, message", [
    ("extra_key", "unexpected evil"),
    ("missing_key", "missing b"),
    ("wrong_shape", r"'W' has shape \(5, 3\)"),
    ("wrong_dtype", "dtype float32"),
    ("unknown_class", "unknown model class 'subprocess.Popen'"),
    ("no_header", "'__nnkit__' entry is missing"),
    ("bad_format", "unsupported nnkit file format"),
    ("bad_config", "cannot build ToySoftmax"),
    ("not_a_zip", "cannot read it as .npz"),
])
def test_tampered_model_files_raise_clear_errors(tmp_path, toy_known, case, message):
    W, b = np.zeros((4, 3)), np.zeros(3)
    path = tmp_path / "m.npz"
    if case == "extra_key":
        write_npz(path, toy_meta(), W=W, b=b, evil=np.zeros(2))
    elif case == "missing_key":
        write_npz(path, toy_meta(), W=W)
    elif case == "wrong_shape":
        write_npz(path, toy_meta(), W=np.zeros((5, 3)), b=b)
    elif case == "wrong_dtype":
        write_npz(path, toy_meta(), W=W.astype(np.float32), b=b)
    elif case == "unknown_class":
        write_npz(path, toy_meta(cls="subprocess.Popen"), W=W, b=b)
    elif case == "no_header":
        write_npz(path, None, W=W, b=b)
    elif case == "bad_format":
        write_npz(path, {"format": 99, "class": "ToySoftmax", "config": {}}, W=W, b=b)
    elif case == "bad_config":
        write_npz(path, toy_meta(config={"input_dim": 4, "rm_rf": True}), W=W, b=b)
    elif case == "not_a_zip":
        path.write_bytes(b"this is not a zip file")
    with pytest.raises(ValueError, match=message):
        load_model(path)


UNPICKLED = []


def _record_unpickle():
    UNPICKLED.append(True)
    return "boom"


class Boom:
    def __reduce__(self):
        return (_record_unpickle, ())


def test_object_arrays_are_refused_and_never_unpickled(tmp_path, toy_known):
    path = tmp_path / "m.npz"
    obj = np.empty(1, dtype=object)
    obj[0] = Boom()
    write_npz(path, toy_meta(), W=np.zeros((4, 3)), b=obj)
    with pytest.raises(ValueError, match="needs pickle"):
        load_model(path)
    # A pickled header is refused the same way.
    path2 = tmp_path / "m2.npz"
    header = np.empty((), dtype=object)
    header[()] = Boom()
    np.savez(path2, __nnkit__=header, W=np.zeros((4, 3)), b=np.zeros(3))
    with pytest.raises(ValueError, match="needs pickle"):
        load_model(path2)
    assert UNPICKLED == []
    assert zipfile.is_zipfile(path)  # the file was really written with the object array


def test_oversized_files_are_refused_before_loading(tmp_path, toy_known, monkeypatch):
    path = write_npz(tmp_path / "m.npz", toy_meta(), W=np.zeros((4, 3)), b=np.zeros(3))
    monkeypatch.setattr(solver_mod, "MAX_FILE_BYTES", 100)
    with pytest.raises(ValueError, match="more than the 100"):
        load_model(path)


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        load_model(tmp_path / "nope.npz")


def round_trip(model, path):
    save_model(model, path)
    loaded = load_model(path)
    assert type(loaded) is type(model)
    assert loaded.get_config() == model.get_config()
    assert set(loaded.params) == set(model.params)
    for k, v in model.params.items():
        assert loaded.params[k].dtype == v.dtype
        assert np.array_equal(loaded.params[k], v)
    return loaded


@needs_fc
def test_round_trip_two_layer_net(tmp_path):
    from nnkit.classifiers.fc_net import TwoLayerNet

    model = TwoLayerNet(input_dim=12, hidden_dim=7, num_classes=4, weight_scale=0.1, reg=0.3)
    model.params["b1"] = np.arange(7, dtype=model.params["b1"].dtype)
    loaded = round_trip(model, tmp_path / "two.npz")
    X = np.random.RandomState(0).randn(5, 12)
    assert np.array_equal(loaded.loss(X), model.loss(X))


@needs_fc
def test_round_trip_fully_connected_net(tmp_path):
    from nnkit.classifiers.fc_net import FullyConnectedNet

    for dtype in (np.float32, np.float64):
        model = FullyConnectedNet([6, 5], input_dim=12, num_classes=4, dtype=dtype, seed=0)
        round_trip(model, tmp_path / f"fc_{np.dtype(dtype).name}.npz")


@needs_fc
def test_fully_connected_net_with_wrong_depth_is_refused(tmp_path):
    from nnkit.classifiers.fc_net import FullyConnectedNet

    model = FullyConnectedNet([6, 5], input_dim=12, num_classes=4, seed=0)
    path = tmp_path / "fc.npz"
    save_model(model, path)
    with np.load(path, allow_pickle=False) as f:
        entries = {k: f[k] for k in f.files}
    meta = json.loads(str(entries["__nnkit__"]))
    meta["config"]["hidden_dims"] = [6]  # claims 2 layers, file holds 3
    entries["__nnkit__"] = np.array(json.dumps(meta))
    np.savez(path, **entries)
    with pytest.raises(ValueError, match="unexpected"):
        load_model(path)


@pytest.mark.skipif(not HAS_LINEAR, reason="nnkit.classifiers.linear.SoftmaxRegression not available yet")
def test_round_trip_softmax_regression(tmp_path):
    from nnkit.classifiers.linear import SoftmaxRegression

    model = SoftmaxRegression(input_dim=12, num_classes=4, weight_scale=0.1, reg=0.2)
    model.params["b"] = np.arange(4.0)
    loaded = round_trip(model, tmp_path / "softmax.npz")
    X = np.random.RandomState(0).randn(5, 12)
    assert np.array_equal(loaded.loss(X), model.loss(X))


@needs_fc
def test_absurd_sizes_in_a_config_are_a_value_error(tmp_path):
    from nnkit.classifiers.fc_net import FullyConnectedNet

    path = tmp_path / "fc.npz"
    save_model(FullyConnectedNet([6], input_dim=12, num_classes=4, seed=0), path)
    with np.load(path, allow_pickle=False) as f:
        entries = {k: f[k] for k in f.files}
    meta = json.loads(str(entries["__nnkit__"]))
    meta["config"].update(hidden_dims=[10 ** 9], input_dim=3072)  # ~22 TiB of weights
    entries["__nnkit__"] = np.array(json.dumps(meta))
    np.savez(path, **entries)
    with pytest.raises(ValueError, match="cannot build FullyConnectedNet"):
        load_model(path)


@needs_fc
@needs_optim
def test_adam_checkpoint_of_a_float32_net_keeps_state_and_dtypes(tmp_path):
    from nnkit.classifiers.fc_net import FullyConnectedNet

    rng = np.random.RandomState(0)
    data = {"X_train": rng.randn(40, 12), "y_train": rng.randint(4, size=40),
            "X_val": rng.randn(10, 12), "y_val": rng.randint(4, size=10)}
    model = FullyConnectedNet([6], input_dim=12, num_classes=4, dtype=np.float32, seed=0)
    name = str(tmp_path / "fc")
    s = Solver(model, data, update_rule="adam", batch_size=10, num_epochs=2, seed=0,
               checkpoint_name=name, **quiet())
    s.train()
    ck = load_checkpoint(f"{name}_epoch_2.npz")
    assert ck["update_rule"] == "adam" and ck["model_class"] == "FullyConnectedNet"
    assert ck["model_config"] == model.get_config()
    # The optimizer state is never rolled back: the last checkpoint holds the final one.
    for p, config in s.optim_configs.items():
        got = ck["optim_configs"][p]
        assert got["t"] == config["t"] == 8
        for k in ("m", "v"):
            assert got[k].dtype == config[k].dtype
            assert np.array_equal(got[k], config[k])
    for p, w in s.best_params.items():
        assert ck["best_params"][p].dtype == np.float32
        assert np.array_equal(ck["best_params"][p], w)
