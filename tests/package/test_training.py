"""nnkit.training: the epoch iterator, evaluate, the training step and epoch, the
training loop and its History, the YAML config and grid files, grid search.

Expected values come from definitions written out here (a permutation drawn from
np.random.RandomState(seed), softmax probabilities of hand-picked scores, one SGD
step w - lr * dw with the gradient of the formula), never from the code's output.
"""
import math
import warnings

import numpy as np
import pytest

from nnkit import optim, training as T
from nnkit.classifiers.fc_net import TwoLayerNet
from nnkit.classifiers.linear import SoftmaxRegression


def labelled_rows(n, width=1):
    """X (n, width) whose row i holds 10 * i, and y = i: every batch shows which examples it holds."""
    return np.repeat(10.0 * np.arange(n)[:, None], width, axis=1), np.arange(n)


def toy_problem(n=120, d=6, c=3, seed=0):
    """Well-separated Gaussian blobs: any working trainer gets them right."""
    rng = np.random.RandomState(seed)
    centers = 4 * rng.randn(c, d)
    y = rng.randint(c, size=n)
    X = centers[y] + rng.randn(n, d)
    return {"X_train": X[: n // 2 + n // 4], "y_train": y[: n // 2 + n // 4],
            "X_val": X[n // 2 + n // 4:], "y_val": y[n // 2 + n // 4:]}


# ---------------------------------------------------------------- generate_batched_data
def test_batches_without_shuffle_are_consecutive_runs_and_the_last_partial_batch_is_kept():
    X, y = labelled_rows(10)
    batches = list(T.generate_batched_data(X, y, 3, shuffle=False))
    assert [b[1].tolist() for b in batches] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    for Xb, yb in batches:
        np.testing.assert_array_equal(Xb[:, 0], 10.0 * yb)


@pytest.mark.parametrize("n, batch_size", [(10, 3), (12, 4), (7, 1), (5, 8)])
def test_every_example_exactly_once_per_epoch_with_its_label(n, batch_size):
    X, y = labelled_rows(n, width=2)
    batches = list(T.generate_batched_data(X, y, batch_size, seed=3))
    assert len(batches) == math.ceil(n / batch_size)
    assert [len(b[1]) for b in batches[:-1]] == [batch_size] * (len(batches) - 1)
    assert len(batches[-1][1]) == n - (len(batches) - 1) * batch_size
    seen = np.concatenate([b[1] for b in batches])
    assert sorted(seen.tolist()) == list(range(n))
    for Xb, yb in batches:
        np.testing.assert_array_equal(Xb, 10.0 * np.repeat(yb[:, None], 2, axis=1))


def test_shuffled_order_is_the_seeds_permutation():
    X, y = labelled_rows(11)
    order = np.random.RandomState(7).permutation(11)
    seen = np.concatenate([b[1] for b in T.generate_batched_data(X, y, 4, seed=7)])
    np.testing.assert_array_equal(seen, order)


def test_a_random_state_gives_a_new_order_every_epoch_and_none_follows_numpy():
    X, y = labelled_rows(30)
    rng = np.random.RandomState(0)
    first = np.concatenate([b[1] for b in T.generate_batched_data(X, y, 8, seed=rng)])
    second = np.concatenate([b[1] for b in T.generate_batched_data(X, y, 8, seed=rng)])
    expected = np.random.RandomState(0)
    np.testing.assert_array_equal(first, expected.permutation(30))
    np.testing.assert_array_equal(second, expected.permutation(30))
    assert not np.array_equal(first, second)
    np.random.seed(5)
    via_global = np.concatenate([b[1] for b in T.generate_batched_data(X, y, 8)])
    np.random.seed(5)
    np.testing.assert_array_equal(via_global, np.random.permutation(30))


def test_batches_of_images_keep_their_shape():
    X = np.arange(5 * 2 * 3, dtype=float).reshape(5, 2, 3)
    y = np.arange(5)
    (Xb, yb), (Xc, yc) = T.generate_batched_data(X, y, 3, shuffle=False)
    np.testing.assert_array_equal(Xb, X[:3])
    assert Xc.shape == (2, 2, 3)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, None])
def test_bad_batch_size_is_a_clear_error(bad):
    X, y = labelled_rows(4)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        list(T.generate_batched_data(X, y, bad))


def test_mismatched_lengths_are_a_clear_error():
    with pytest.raises(ValueError, match=r"X must be \(N, \.\.\.\) and y \(N,\)"):
        list(T.generate_batched_data(np.zeros((4, 2)), np.zeros(3, dtype=int), 2))


# ---------------------------------------------------------------- evaluate
class FixedScores:
    """A model whose scores are its input: scores = X."""
    params = {}

    def loss(self, X, y=None, **_):
        assert y is None, "evaluate needs scores: model.loss(X) without labels"
        return np.asarray(X, dtype=float)


def test_evaluate_by_hand_weighs_every_example_equally():
    # p(label) = 3/4, 1/4, 7/8: losses ln(4/3), ln(4), ln(8/7); the second is wrong.
    S = np.array([[np.log(3), 0.0], [0.0, np.log(3)], [0.0, np.log(7)]])
    y = np.array([0, 0, 1])
    expected_loss = (np.log(4 / 3) + np.log(4) + np.log(8 / 7)) / 3
    for batch_size in (1, 2, 3, 1000):  # 2: batches of 2 and 1, a mean of means would differ
        loss, acc = T.evaluate(FixedScores(), S, y, batch_size=batch_size)
        assert isinstance(loss, float) and isinstance(acc, float)
        assert loss == pytest.approx(expected_loss, rel=1e-12), batch_size
        assert acc == pytest.approx(2 / 3, rel=1e-12), batch_size


def test_evaluate_leaves_the_l2_term_out():
    np.random.seed(0)
    model = SoftmaxRegression(input_dim=4, num_classes=3, weight_scale=1.0, reg=10.0)
    X, y = np.random.randn(6, 4), np.array([0, 1, 2, 0, 1, 2])
    s = X @ model.params["W"] + model.params["b"]
    data_loss = np.mean(np.log(np.exp(s).sum(axis=1)) - s[np.arange(6), y])
    loss, acc = T.evaluate(model, X, y)
    assert loss == pytest.approx(data_loss, rel=1e-12)
    assert model.loss(X, y, grads=False) > loss + 1  # the objective does hold the large L2 term
    assert acc == pytest.approx(np.mean(np.argmax(s, axis=1) == y))


def test_evaluate_refuses_an_empty_set():
    with pytest.raises(ValueError, match="N >= 1"):
        T.evaluate(FixedScores(), np.zeros((0, 2)), np.zeros(0, dtype=int))


# ---------------------------------------------------------------- train_step / train_epoch
def test_train_step_is_one_sgd_step_on_the_loss_with_l2():
    np.random.seed(1)
    model = SoftmaxRegression(input_dim=5, num_classes=3, weight_scale=0.5, reg=0.3)
    W0, b0 = model.params["W"].copy(), model.params["b"].copy()
    X, y = np.random.randn(4, 5), np.array([2, 0, 1, 1])
    s = X @ W0 + b0
    p = np.exp(s) / np.exp(s).sum(axis=1, keepdims=True)
    loss0 = np.mean(-np.log(p[np.arange(4), y])) + 0.5 * 0.3 * np.sum(W0 ** 2)
    dscores = (p - np.eye(3)[y]) / 4
    configs = {"W": {"learning_rate": 0.1}, "b": {"learning_rate": 0.1}}
    loss = T.train_step(model, X, y, optim.sgd, configs)
    assert loss == pytest.approx(loss0, rel=1e-12)  # the loss before the update
    np.testing.assert_allclose(model.params["W"], W0 - 0.1 * (X.T @ dscores + 0.3 * W0), rtol=1e-12)
    np.testing.assert_allclose(model.params["b"], b0 - 0.1 * dscores.sum(axis=0), rtol=1e-12)


def test_train_step_stores_what_the_rule_returns_for_every_parameter():
    model = TwoLayerNet(input_dim=3, hidden_dim=2, num_classes=2, weight_scale=0.1)
    calls = []

    def rule(w, dw, config):
        calls.append(config["name"])
        return np.full_like(w, 7.0), {"name": config["name"], "steps": config.get("steps", 0) + 1}

    configs = {p: {"name": p} for p in model.params}
    T.train_step(model, np.ones((2, 3)), np.array([0, 1]), rule, configs)
    assert sorted(calls) == sorted(model.params)
    assert all(np.all(w == 7.0) for w in model.params.values())
    assert all(configs[p] == {"name": p, "steps": 1} for p in model.params)


class Recorder:
    """A model that records the labels of every training batch and returns loss = first label."""

    def __init__(self):
        self.params = {"w": np.zeros(1)}
        self.batches = []

    def loss(self, X, y=None, **_):
        self.batches.append(np.array(y))
        return float(y[0]), {"w": np.zeros(1)}


def test_train_epoch_steps_once_per_batch_over_every_example():
    X, y = labelled_rows(23)
    model = Recorder()
    rng = np.random.RandomState(4)
    losses = T.train_epoch(model, X, y, 5, optim.sgd, {"w": {}}, rng)
    assert len(model.batches) == 5 and len(losses) == 5
    assert sorted(np.concatenate(model.batches).tolist()) == list(range(23))
    np.testing.assert_array_equal(np.concatenate(model.batches), np.random.RandomState(4).permutation(23))
    assert losses == [float(b[0]) for b in model.batches]


# ---------------------------------------------------------------- train
def test_train_records_every_epoch_and_learns():
    data = toy_problem()
    config = T.TrainConfig(model="two_layer", hidden_dim=10, activation="sigmoid", learning_rate=0.5,
                           weight_scale=0.1, reg=1e-4, batch_size=16, num_epochs=6)
    model = T.build_model(config, input_dim=6, num_classes=3)
    h = T.train(model, data, config, verbose=False)
    for name in ("train_loss", "train_acc", "val_loss", "val_acc"):
        assert len(getattr(h, name)) == 7, name
    assert len(h.batch_loss) == 6 * math.ceil(90 / 16)
    assert h.val_acc[-1] > 0.9 and h.train_loss[-1] < 0.5 * h.train_loss[0]
    assert h.train_loss[0] == pytest.approx(math.log(3), rel=0.05)  # small weights: about uniform
    assert h.config is config and h.seconds > 0


def test_train_keeps_copies_of_the_best_epoch_and_restores_them():
    data = toy_problem(seed=2)
    config = T.TrainConfig(model="softmax", learning_rate=0.05, weight_scale=1e-3, reg=0.0, batch_size=10,
                           num_epochs=5)
    model = T.build_model(config, input_dim=6, num_classes=3)
    h = T.train(model, data, config, verbose=False)
    assert h.best_val_acc == max(h.val_acc)
    assert h.best_epoch == h.val_acc.index(max(h.val_acc))
    for name, w in h.best_params.items():
        np.testing.assert_array_equal(model.params[name], w)
        assert model.params[name] is not w
    loss, acc = T.evaluate(model, data["X_val"], data["y_val"])
    assert acc == h.best_val_acc and loss == h.val_loss[h.best_epoch]


def test_train_without_restore_best_keeps_the_last_params():
    data = toy_problem(seed=3)
    config = T.TrainConfig(model="softmax", learning_rate=0.05, batch_size=10, num_epochs=3, restore_best=False)
    model = T.build_model(config, input_dim=6, num_classes=3)
    h = T.train(model, data, config, verbose=False)
    assert T.evaluate(model, data["X_val"], data["y_val"]) == (h.val_loss[-1], h.val_acc[-1])


def test_the_same_config_gives_the_same_run_and_leaves_numpys_global_state_alone():
    data = toy_problem()
    config = T.TrainConfig(hidden_dim=5, batch_size=7, num_epochs=2, seed=11)
    state = np.random.get_state()
    runs = [T.train(T.build_model(config, 6, 3), data, config, verbose=False) for _ in range(2)]
    assert np.array_equal(np.random.get_state()[1], state[1])
    assert runs[0].batch_loss == runs[1].batch_loss and runs[0].val_acc == runs[1].val_acc
    other = T.train(T.build_model(config.replace(seed=12), 6, 3), data, config.replace(seed=12), verbose=False)
    assert other.batch_loss != runs[0].batch_loss


def test_lr_decay_multiplies_every_rate_after_every_epoch(monkeypatch):
    rates = []

    def rule(w, dw, config):
        rates.append(config["learning_rate"])
        return w, config

    monkeypatch.setattr(T, "_update_rule", lambda name: rule)
    data = toy_problem(n=40)
    config = T.TrainConfig(model="softmax", learning_rate=0.2, lr_decay=0.5, batch_size=30, num_epochs=3)
    T.train(T.build_model(config, 6, 3), data, config, verbose=False)
    # 30 training examples, batch 30: one step per epoch, two params (W, b)
    assert rates == pytest.approx([0.2, 0.2, 0.1, 0.1, 0.05, 0.05])


def test_momentum_is_passed_to_sgd_momentum_only():
    assert T.TrainConfig(update_rule="sgd_momentum", momentum=0.5).optim_config() == \
        {"learning_rate": 0.1, "momentum": 0.5}
    assert T.TrainConfig(update_rule="sgd").optim_config() == {"learning_rate": 0.1}


def test_a_diverging_run_gives_nan_losses_without_a_warning(capsys):
    data = toy_problem()
    data["X_train"] = data["X_train"] * 1e100  # scores and weights overflow within a step or two
    config = T.TrainConfig(model="softmax", learning_rate=1e100, weight_scale=1.0, reg=1.0, num_epochs=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any RuntimeWarning fails the test
        with np.errstate(all="warn"):
            h = T.train(T.build_model(config, 6, 3), data, config, verbose=True)
    assert not all(math.isfinite(v) for v in h.batch_loss)
    out = capsys.readouterr()
    assert out.err == "" and out.out.count("epoch") == 3


def test_train_errors_name_what_is_wrong():
    model = SoftmaxRegression(input_dim=6, num_classes=3)
    with pytest.raises(TypeError, match="TrainConfig"):
        T.train(model, toy_problem(), {"learning_rate": 0.1})
    with pytest.raises(ValueError, match="X_val, y_val"):
        T.train(model, {"X_train": np.zeros((2, 6)), "y_train": np.zeros(2, int)}, T.TrainConfig())


def test_build_model_draws_the_weights_from_the_configs_seed():
    config = T.TrainConfig(model="two_layer", hidden_dim=4, activation="relu", weight_scale=0.3, reg=0.2, seed=9)
    np.random.seed(123)
    model = T.build_model(config, input_dim=5, num_classes=2)
    after = np.random.randn()
    np.random.seed(123)
    assert after == np.random.randn()  # the global state was restored
    np.random.seed(9)
    np.testing.assert_array_equal(model.params["W1"], 0.3 * np.random.randn(5, 4))
    np.testing.assert_array_equal(model.params["W2"], 0.3 * np.random.randn(4, 2))
    assert (model.activation, model.reg, model.hidden_dim) == ("relu", 0.2, 4)
    soft = T.build_model(config.replace(model="softmax"), input_dim=5, num_classes=2)
    assert isinstance(soft, SoftmaxRegression) and soft.params["W"].shape == (5, 2)


# ---------------------------------------------------------------- the config
def write(tmp_path, text, name="config.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_load_config_reads_every_setting_and_1e_notation_as_numbers(tmp_path):
    path = write(tmp_path, """\
# a comment
model: softmax
hidden_dim: 32
activation: relu
weight_scale: 1e-3
reg: 5e-4
learning_rate: 1     # an integer where a number is asked for
lr_decay: 0.95
update_rule: sgd_momentum
momentum: 0.8
batch_size: 100
num_epochs: 3
seed: 4
restore_best: false
""")
    config = T.load_config(path)
    assert config.to_dict() == {
        "model": "softmax", "hidden_dim": 32, "activation": "relu", "weight_scale": 0.001, "reg": 0.0005,
        "learning_rate": 1.0, "lr_decay": 0.95, "update_rule": "sgd_momentum", "momentum": 0.8,
        "batch_size": 100, "num_epochs": 3, "seed": 4, "restore_best": False}
    assert type(config.learning_rate) is float and type(config.weight_scale) is float


def test_settings_left_out_keep_their_defaults(tmp_path):
    config = T.load_config(write(tmp_path, "learning_rate: 5e-2\n"))
    assert config == T.TrainConfig(learning_rate=0.05)


def test_an_unknown_setting_is_named_with_its_line_and_the_allowed_ones(tmp_path):
    path = write(tmp_path, "model: softmax\nlearning_rat: 0.1\n")
    with pytest.raises(T.ConfigError) as err:
        T.load_config(path)
    msg = str(err.value)
    assert f"{path}, line 2" in msg and "'learning_rat'" in msg and "did you mean 'learning_rate'" in msg
    assert "the settings are: model, hidden_dim, activation" in msg and "restore_best" in msg


@pytest.mark.parametrize("line, expected", [
    ("batch_size: 64.5", "batch_size must be a positive integer, got 64.5 (float)"),
    ("batch_size: 0", "batch_size must be a positive integer, got 0 (int)"),
    ("learning_rate: '0.1'", "learning_rate must be a positive number, got the text '0.1' (write numbers without quotes)"),
    ("learning_rate: -0.1", "learning_rate must be a positive number, got -0.1"),
    ("learning_rate: .inf", "learning_rate must be a positive number, got inf"),
    ("reg: true", "reg must be a number >= 0, got True (bool)"),
    ("activation: tanh", "activation must be one of relu, sigmoid, got 'tanh' (str)"),
    ("model: TwoLayerNet", "model must be one of softmax, two_layer, got 'TwoLayerNet'"),
    ("restore_best: 1", "restore_best must be true or false, got 1 (int)"),
    ("lr_decay: 1.5", "lr_decay must be a number in (0, 1], got 1.5"),
    ("momentum: 1", "momentum must be a number in [0, 1), got 1"),
    ("update_rule: sgd_nesterov", "update_rule must be one of sgd, sgd_momentum, rmsprop, adam"),
    ("hidden_dim: [64, 128]", "hidden_dim must be a positive integer, got [64, 128] (list)"),
])
def test_a_wrong_value_names_the_file_line_setting_and_what_it_must_be(tmp_path, line, expected):
    path = write(tmp_path, "seed: 1\n" + line + "\n")
    with pytest.raises(T.ConfigError) as err:
        T.load_config(path)
    assert str(err.value).startswith(f"{path}, line 2: ")
    assert expected in str(err.value)


@pytest.mark.parametrize("text, expected", [
    ("", "is empty"),
    ("# only a comment\n", "is empty"),
    ("- 1\n- 2\n", "found a list"),
    ("learning_rate: 0.1\nlearning_rate: 0.2\n", "'learning_rate' is given twice (lines 1 and 2)"),
    ("learning_rate: [0.1\n", "not valid YAML"),
    ("a: 1\n---\nb: 2\n", "not valid YAML"),
])
def test_files_that_are_not_a_config_are_clear_errors(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(T.ConfigError, match=r".*") as err:
        T.load_config(path)
    assert str(path) in str(err.value) and expected in str(err.value)


def test_a_missing_file_is_a_config_error_naming_it(tmp_path):
    with pytest.raises(T.ConfigError, match="no such file"):
        T.load_config(tmp_path / "nope.yaml")


def test_yaml_tags_that_build_objects_are_refused(tmp_path):
    path = write(tmp_path, "learning_rate: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(T.ConfigError, match="not valid YAML"):
        T.load_config(path)


def test_the_config_is_frozen_and_replace_and_the_constructor_check_like_a_file():
    import dataclasses

    config = T.TrainConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.learning_rate = 1.0
    assert config.replace(learning_rate=1).learning_rate == 1.0
    with pytest.raises(T.ConfigError, match="TrainConfig: batch_size must be a positive integer"):
        config.replace(batch_size=0)
    with pytest.raises(T.ConfigError, match="unknown setting 'lr'"):
        config.replace(lr=0.1)
    with pytest.raises(T.ConfigError, match="activation must be one of"):
        T.TrainConfig(activation="tanh")
    with pytest.raises(T.ConfigError, match="unknown setting 'epochs'.*did you mean 'num_epochs'"):
        T.TrainConfig.from_dict({"epochs": 3})


# ---------------------------------------------------------------- grids and grid search
def test_load_grid_reads_lists_and_single_values_and_checks_them(tmp_path):
    grid = T.load_grid(write(tmp_path, "learning_rate: [1e-1, 5e-2]\nhidden_dim: 64\n"))
    assert grid == {"learning_rate": [0.1, 0.05], "hidden_dim": [64]}
    for text, expected in (("hidden_dim: [64, 0]\n", "line 1: hidden_dim must be a positive integer, got 0"),
                           ("hiden_dim: [64]\n", "unknown setting 'hiden_dim'"),
                           ("reg: []\n", "reg has an empty list of values")):
        with pytest.raises(T.ConfigError, match=expected):
            T.load_grid(write(tmp_path, text, "grid.yaml"))


def test_grid_configs_are_every_combination_in_product_order():
    base = T.TrainConfig(num_epochs=2)
    combos = T.grid_configs(base, {"learning_rate": [0.1, 0.01], "reg": [0.0, 1e-3, 1e-2]})
    assert [c for c, _ in combos] == [{"learning_rate": lr, "reg": r} for lr in (0.1, 0.01) for r in (0.0, 1e-3, 1e-2)]
    assert all(cfg.learning_rate == c["learning_rate"] and cfg.reg == c["reg"] and cfg.num_epochs == 2
               for c, cfg in combos)


def test_grid_search_trains_each_combination_and_keeps_the_best_model(capsys):
    data = toy_problem()
    base = T.TrainConfig(model="softmax", batch_size=16, num_epochs=3)
    results = T.grid_search(data, base, {"learning_rate": [1e-4, 0.3]})
    assert len(results) == 2 and [r["params"] for r in results] == [{"learning_rate": 1e-4}, {"learning_rate": 0.3}]
    assert results.best()["params"] == {"learning_rate": 0.3}  # 1e-4 barely moves in 3 epochs
    again = T.train(T.build_model(base.replace(learning_rate=0.3), 6, 3), data, base.replace(learning_rate=0.3),
                    verbose=False)
    assert results.best()["best_val_acc"] == again.best_val_acc
    for name, w in again.best_params.items():
        np.testing.assert_array_equal(results.best_model.params[name], w)
    assert capsys.readouterr().out.count("trial") == 2


# ---------------------------------------------------------------- plot
def test_plot_history_draws_the_step_losses_and_both_per_epoch_losses():
    data = toy_problem()
    config = T.TrainConfig(model="softmax", batch_size=30, num_epochs=2)
    h = T.train(T.build_model(config, 6, 3), data, config, verbose=False)
    fig = T.plot_history(h, title="lr 0.1")
    ax_loss, ax_acc = fig.axes
    labels = [line.get_label() for line in ax_loss.get_lines()]
    assert labels == ["train (per iteration)", "val", "train (per epoch)"]
    np.testing.assert_allclose(ax_loss.get_lines()[2].get_ydata(), h.train_loss)
    np.testing.assert_allclose(ax_acc.get_lines()[1].get_ydata(), h.val_acc)
    assert fig._suptitle.get_text() == "lr 0.1"
    import matplotlib.pyplot as plt
    plt.close(fig)
