"""Training driven by YAML config files: epochs without replacement, per-epoch curves.

The MNIST assignment's way to train a model (``SoftmaxRegression`` or
``TwoLayerNet``) instead of the ``Solver``: every epoch visits each training
example exactly once, in minibatches of a shuffled order
(``generate_batched_data``), and after every epoch the loss and accuracy are
measured on the whole training and validation sets::

    config = load_config("configs/default.yaml")      # a TrainConfig
    model = build_model(config, input_dim=784, num_classes=10)
    history = train(model, data, config)              # a History
    plot_history(history)

A config file holds one ``name: value`` line per setting (``TrainConfig``
lists them with their defaults); a setting left out keeps its default, an
unknown name or a value of the wrong kind is an error naming the file, the
line and the setting::

    model: two_layer        # or softmax
    hidden_dim: 128
    activation: sigmoid     # or relu
    learning_rate: 1e-1
    reg: 1e-3
    batch_size: 64
    num_epochs: 10

A grid file (``load_grid``) maps settings to lists of values, for
``grid_search``.

The pieces, in the order a training run calls them: ``train`` (provided) calls
``evaluate`` on both sets once before training and after every epoch, and
``train_epoch`` once per epoch; ``train_epoch`` calls ``train_step`` on every
minibatch of ``generate_batched_data``; ``train_step`` takes the model's loss
and gradients and applies a ``nnkit.optim`` update rule to every parameter.
The L2 term is part of the model's loss (``0.5 * reg * sum(W**2)``), so SGD on
that loss is SGD with L2 regularisation.
"""
from __future__ import annotations

import dataclasses
import difflib
import itertools
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from nnkit.classifiers import fc_net
from nnkit.layers import softmax_loss

__all__ = [
    "ConfigError", "TrainConfig", "load_config", "load_grid", "History",
    "generate_batched_data", "evaluate", "train_step", "train_epoch",
    "build_model", "train", "grid_configs", "grid_search", "plot_history",
    "MODELS", "ACTIVATION_NAMES", "UPDATE_RULES",
]

MODELS = ("softmax", "two_layer")
ACTIVATION_NAMES = tuple(fc_net.ACTIVATIONS)  # what TwoLayerNet(activation=...) takes
UPDATE_RULES = ("sgd", "sgd_momentum", "rmsprop", "adam")  # the update rules of nnkit.optim


# ---------------------------------------------------------------------------
# The config (provided)
# ---------------------------------------------------------------------------
class ConfigError(ValueError):
    """A config or grid is not valid; the message names the file, the setting and what it must be."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run is decided by.

    Attributes
    ----------
    model : str
        ``"softmax"`` (``SoftmaxRegression``) or ``"two_layer"`` (``TwoLayerNet``).
    hidden_dim : int
        Hidden units of the two-layer net (unused by softmax).
    activation : str
        ``"sigmoid"`` or ``"relu"`` (``ACTIVATION_NAMES``): the two-layer net's hidden activation.
    weight_scale : float
        Standard deviation of the initial weights (> 0).
    reg : float
        L2 strength (>= 0), the models' ``0.5 * reg * sum(W**2)``.
    learning_rate : float
        Step size (> 0).
    lr_decay : float
        The learning rate is multiplied by this after every epoch, in (0, 1].
    update_rule : str
        A rule of ``nnkit.optim``: ``"sgd"``, ``"sgd_momentum"``, ``"rmsprop"``, ``"adam"``.
    momentum : float
        In [0, 1); used by ``sgd_momentum`` only.
    batch_size : int
        Examples per step (>= 1); an epoch is ``ceil(N / batch_size)`` steps.
    num_epochs : int
        Passes over the training set (>= 1).
    seed : int
        Seeds the initial weights (``build_model``) and the order of the
        minibatches (``train``): the same config gives the same run.
    restore_best : bool
        At the end, put back the params of the epoch with the best validation
        accuracy (else keep the last ones).
    """

    model: str = "two_layer"
    hidden_dim: int = 128
    activation: str = "sigmoid"
    weight_scale: float = 1e-2
    reg: float = 1e-3
    learning_rate: float = 1e-1
    lr_decay: float = 1.0
    update_rule: str = "sgd"
    momentum: float = 0.9
    batch_size: int = 64
    num_epochs: int = 10
    seed: int = 0
    restore_best: bool = True

    def __post_init__(self):
        # Checked here too, so that TrainConfig(...) and replace(...) are as strict as a file.
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _checked(f.name, getattr(self, f.name), "TrainConfig"))

    @classmethod
    def from_dict(cls, values, source="the config", lines=None):
        """A config from ``name: value`` pairs; the settings left out keep their defaults.

        Parameters
        ----------
        values : dict
            Setting name -> value.
        source : str
            What the values came from (a file name), for the error messages.
        lines : dict or None
            Setting name -> its line in the file, for the error messages.

        Raises
        ------
        ConfigError : an unknown setting, or a value of the wrong kind
        """
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: expected settings as `name: value` pairs, got {type(values).__name__}")
        checked = {}
        for key, value in values.items():
            where = _where(source, lines, key)
            _known(key, where)
            checked[key] = _checked(key, value, where)
        return cls(**checked)

    def replace(self, **changes):
        """A copy with some settings changed (each checked like a file's)."""
        for key in changes:
            _known(key, "TrainConfig.replace")
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        """Setting name -> value, in the order of the attributes."""
        return dataclasses.asdict(self)

    def optim_config(self):
        """The settings of ``update_rule`` as a fresh ``nnkit.optim`` config dict."""
        config = {"learning_rate": self.learning_rate}
        if self.update_rule == "sgd_momentum":
            config["momentum"] = self.momentum
        return config


def _positive(v):
    return v > 0


#: setting -> (kind, test the value must pass, what the test asks, in words)
_RULES = {
    "model": (str, lambda v: v in MODELS, f"one of {', '.join(MODELS)}"),
    "hidden_dim": (int, _positive, "a positive integer"),
    "activation": (str, lambda v: v in ACTIVATION_NAMES, f"one of {', '.join(ACTIVATION_NAMES)}"),
    "weight_scale": (float, _positive, "a positive number"),
    "reg": (float, lambda v: v >= 0, "a number >= 0"),
    "learning_rate": (float, _positive, "a positive number"),
    "lr_decay": (float, lambda v: 0 < v <= 1, "a number in (0, 1]"),
    "update_rule": (str, lambda v: v in UPDATE_RULES, f"one of {', '.join(UPDATE_RULES)}"),
    "momentum": (float, lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "batch_size": (int, _positive, "a positive integer"),
    "num_epochs": (int, _positive, "a positive integer"),
    "seed": (int, lambda v: v >= 0, "an integer >= 0"),
    "restore_best": (bool, lambda v: True, "true or false"),
}
assert tuple(_RULES) == tuple(f.name for f in dataclasses.fields(TrainConfig))


def _where(source, lines, key):
    return f"{source}, line {lines[key]}" if lines and key in lines else source


def _known(key, where):
    if key not in _RULES:
        close = difflib.get_close_matches(str(key), _RULES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"{where}: unknown setting {key!r}{hint}; the settings are: {', '.join(_RULES)}")


def _checked(key, value, where):
    """``value`` as setting ``key`` takes it (an int becomes a float where a number is
    asked for), or a ConfigError that names where it came from and what it must be."""
    kind, test, wanted = _RULES[key]
    got = f"{value!r} ({type(value).__name__})"
    if isinstance(value, str) and kind is not str:
        got = f"the text {value!r}" + (" (write numbers without quotes)" if _is_number(value) else "")
    ok_kind = {
        str: isinstance(value, str),
        bool: isinstance(value, (bool, np.bool_)),
        int: isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)),
        float: isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)),
    }[kind]
    if ok_kind:
        value = kind(value)
        if kind is float and not math.isfinite(value):
            ok_kind = False
    if not ok_kind or not test(value):
        raise ConfigError(f"{where}: {key} must be {wanted}, got {got}")
    return value


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


class _ConfigLoader(yaml.SafeLoader):
    """PyYAML's safe loader (plain data only, never objects), with two fixes for config files.

    - ``1e-3`` is a float, as in YAML 1.2: PyYAML follows YAML 1.1, whose floats need a
      dot (``1.0e-3``), and would read ``1e-3`` as the text "1e-3".
    - A setting given twice is an error: PyYAML would keep the last one silently.
    """

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                line = key_node.start_mark.line + 1
                if key_node.value in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"the setting {key_node.value!r} is given twice (lines "
                        f"{seen[key_node.value]} and {line}): keep one", key_node.start_mark)
                seen[key_node.value] = line
        return super().construct_mapping(node, deep=deep)


_ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"""),
    list("-+0123456789."))


def _read_mapping(path):
    """(the mapping in YAML file ``path``, top-level key -> line number)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file (the configs are in configs/, beside the notebooks)") from None
    loader = _ConfigLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    finally:
        loader.dispose()
    if data is None:
        raise ConfigError(f"{path} is empty: write one setting per line, e.g. `learning_rate: 0.1`")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected one `name: value` setting per line, found a {type(data).__name__}")
    lines = {k.value: k.start_mark.line + 1 for k, _ in node.value if isinstance(k, yaml.ScalarNode)}
    return data, lines


def load_config(path):
    """Read a training config from a YAML file.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    TrainConfig

    Raises
    ------
    ConfigError : the file is missing or not YAML; a setting is unknown, given
        twice, or of the wrong kind (the message names the file, line and setting)
    """
    values, lines = _read_mapping(path)
    return TrainConfig.from_dict(values, source=str(path), lines=lines)


def load_grid(path):
    """Read a grid of settings from a YAML file: ``name: [value, value, ...]`` per line.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    grid : dict
        Setting name -> list of values (a single value becomes a list of one),
        each checked like a config's.

    Raises
    ------
    ConfigError : as ``load_config``, or an empty list
    """
    values, lines = _read_mapping(path)
    grid = {}
    for key, options in values.items():
        where = _where(str(path), lines, key)
        _known(key, where)
        options = options if isinstance(options, list) else [options]
        if not options:
            raise ConfigError(f"{where}: {key} has an empty list of values; give at least one")
        grid[key] = [_checked(key, v, where) for v in options]
    return grid


# ---------------------------------------------------------------------------
# The pieces of a training run (students write these)
# ---------------------------------------------------------------------------
def generate_batched_data(X, y, batch_size, *, shuffle=True, seed=None):
    """The minibatches of one epoch: every example exactly once (without replacement).

    The examples are visited in a random order, ``rng.permutation(N)``, when
    ``shuffle`` (``rng`` as ``seed`` says, below), else in their stored order.
    Consecutive runs of ``batch_size`` indices of that order are the batches; when
    N is not a multiple of batch_size the last batch is smaller (it holds the
    ``N % batch_size`` examples left) and is kept, not dropped.

    Parameters
    ----------
    X : ndarray, (N, ...)
        Examples.
    y : ndarray, (N,)
        Their labels.
    batch_size : int
        B, examples per batch.
    shuffle : bool, keyword only
    seed : int, np.random.RandomState or None, keyword only
        Where the order comes from: ``np.random.RandomState(seed)`` for an int
        (the same seed, the same batches), the RandomState itself when one is
        given (``train`` passes one, so each epoch gets a new order), numpy's
        global generator for None.

    Yields
    ------
    X_batch : ndarray, (B, ...), the last batch possibly (N % B, ...)
    y_batch : ndarray, (B,), the labels of the examples in X_batch, in the same order
    """
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim < 1 or y.shape != (len(X),):
        raise ValueError(f"generate_batched_data: X must be (N, ...) and y (N,); got X {X.shape} and y {y.shape}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"generate_batched_data: batch_size must be a positive integer; got {batch_size!r}.")
    rng = _random_state(seed)
    # TODO: Choose the order of the N examples: rng.permutation(N) when shuffle
    # is true, else 0, 1, ..., N - 1. Then yield (X_batch, y_batch) for every
    # run of batch_size consecutive indices of that order, the last, shorter
    # run included. Index X and y with the same indices.
    raise NotImplementedError("generate_batched_data: not implemented yet, see the TODO above")


def evaluate(model, X, y, batch_size=1000):
    """The data loss and the accuracy of a model on a whole set.

    With scores ``s = model.loss(X)`` (N, C), computed ``batch_size``
    consecutive examples at a time (bounded memory):

    - loss: the softmax (cross-entropy) loss averaged over all N examples,
      ``(1/N) sum_i -log(exp(s_iy_i) / sum_j exp(s_ij))``; the L2 term is left
      out, so that training and validation losses compare;
    - accuracy: the fraction of examples whose highest score is their label.

    Parameters
    ----------
    model : a model with ``loss(X) -> scores (N, C)`` (SoftmaxRegression, TwoLayerNet)
    X : ndarray, (N, D)
    y : ndarray of int, (N,)
    batch_size : int

    Returns
    -------
    loss : float
    accuracy : float, in [0, 1]
    """
    X, y = np.asarray(X), np.asarray(y)
    if len(X) == 0 or y.shape != (len(X),):
        raise ValueError(f"evaluate: X must be (N, D) with N >= 1 and y (N,); got X {X.shape} and y {y.shape}.")
    loss, accuracy = None, None
    # TODO: Go through X in batches of batch_size consecutive examples; for
    # each, get the scores from model.loss(X_batch) and add up the batch's
    # softmax loss (softmax_loss returns the batch's MEAN: weigh it by the
    # batch's size) and its number of correct predictions. Divide both sums
    # by N at the end.
    raise NotImplementedError("evaluate: not implemented yet, see the TODO above")
    return float(loss), float(accuracy)


def train_step(model, X_batch, y_batch, update_rule, optim_configs):
    """One step of minibatch gradient descent on ``model``.

    The model's loss and gradients on the batch (its loss holds the L2 term), then
    every parameter ``p`` replaced by what ``update_rule`` returns for it, given
    the parameter, its gradient and its own config ``optim_configs[p]``; the
    config the rule returns (it may carry state, e.g. a velocity) replaces
    ``optim_configs[p]``.

    Parameters
    ----------
    model : a model with ``params`` and ``loss(X, y) -> (loss, grads)``
    X_batch : ndarray, (B, D)
    y_batch : ndarray of int, (B,)
    update_rule : callable
        ``update_rule(w, dw, config) -> (next_w, config)``, e.g. ``nnkit.optim.sgd``.
    optim_configs : dict
        Parameter name -> its config dict; updated in place.

    Returns
    -------
    loss : float
        The batch's loss BEFORE the update.
    """
    loss = None
    # TODO: Compute the loss and the gradients with model.loss(X_batch, y_batch).
    # Then, for every parameter name p of model.params, call update_rule with
    # the parameter, grads[p] and optim_configs[p], and store the two results
    # it returns back into model.params[p] and optim_configs[p].
    raise NotImplementedError("train_step: not implemented yet, see the TODO above")
    return float(loss)


def train_epoch(model, X, y, batch_size, update_rule, optim_configs, rng):
    """One epoch: a ``train_step`` on every minibatch of ``generate_batched_data``.

    Parameters
    ----------
    model : a model with ``params`` and ``loss``
    X : ndarray, (N, D)
        The training set.
    y : ndarray of int, (N,)
    batch_size : int
    update_rule : callable, as for ``train_step``
    optim_configs : dict, as for ``train_step``
    rng : np.random.RandomState
        The order of the batches: pass it as ``seed`` to ``generate_batched_data``
        (shuffled), so that every epoch draws a new order from it.

    Returns
    -------
    losses : list of float, (ceil(N / batch_size),)
        The loss of every step, in order.
    """
    losses = []
    # TODO: For every (X_batch, y_batch) of generate_batched_data(X, y,
    # batch_size, seed=rng), take a train_step and append its loss to losses.
    raise NotImplementedError("train_epoch: not implemented yet, see the TODO above")
    return losses


# ---------------------------------------------------------------------------
# A training run (provided)
# ---------------------------------------------------------------------------
def build_model(config, input_dim, num_classes=10):
    """The model a config describes, with its initial weights drawn from ``config.seed``.

    numpy's global random state is left as it was (the weights come from
    ``np.random.seed(config.seed)``, the state is restored afterwards).

    Parameters
    ----------
    config : TrainConfig
    input_dim : int
        D, numbers per example (784 for MNIST's 28x28 digits).
    num_classes : int
        C.

    Returns
    -------
    model : SoftmaxRegression or TwoLayerNet
    """
    from nnkit.classifiers.linear import SoftmaxRegression

    state = np.random.get_state()
    np.random.seed(config.seed)
    try:
        if config.model == "softmax":
            return SoftmaxRegression(input_dim=input_dim, num_classes=num_classes,
                                     weight_scale=config.weight_scale, reg=config.reg)
        return fc_net.TwoLayerNet(input_dim=input_dim, hidden_dim=config.hidden_dim, num_classes=num_classes,
                                  weight_scale=config.weight_scale, reg=config.reg, activation=config.activation)
    finally:
        np.random.set_state(state)


@dataclass
class History:
    """What ``train`` measured.

    The per-epoch lists have ``num_epochs + 1`` entries: entry 0 before the first
    step, entry e after epoch e. Losses are data losses (no L2 term), from
    ``evaluate`` on the whole set.

    Attributes
    ----------
    config : TrainConfig
    train_loss, train_acc : list of float, (E + 1,)
    val_loss, val_acc : list of float, (E + 1,)
    batch_loss : list of float, (E * ceil(N_train / batch_size),)
        The minibatch loss of every step (L2 term included: what the steps minimise).
    best_epoch : int
        The epoch of the highest validation accuracy (the earliest on ties).
    best_val_acc : float
    best_params : dict
        Copies of the params at ``best_epoch``.
    seconds : float
        Wall time of the run.
    """

    config: TrainConfig
    train_loss: list = field(default_factory=list)
    train_acc: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_acc: list = field(default_factory=list)
    batch_loss: list = field(default_factory=list)
    best_epoch: int = -1
    best_val_acc: float = -math.inf
    best_params: dict = field(default_factory=dict)
    seconds: float = 0.0

    def __repr__(self):
        last = (f"after {len(self.val_acc) - 1} epochs: train loss {self.train_loss[-1]:.4g} acc "
                f"{self.train_acc[-1]:.3f}, val loss {self.val_loss[-1]:.4g} acc {self.val_acc[-1]:.3f}"
                if self.val_acc else "nothing recorded")
        return f"<History {last}; best val acc {self.best_val_acc:.3f} at epoch {self.best_epoch}>"


def _random_state(seed):
    """``seed`` as a generator with ``permutation``: int -> RandomState(seed), RandomState -> itself,
    None -> numpy's global generator."""
    if seed is None:
        return np.random
    if isinstance(seed, np.random.RandomState):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an int, a np.random.RandomState or None; got {seed!r}.")
    return np.random.RandomState(seed)


def _update_rule(name):
    from nnkit import optim

    return getattr(optim, name)


def train(model, data, config, *, verbose=True):
    """Train ``model`` on ``data`` as ``config`` says, measuring every epoch.

    Before the first step and after every epoch, ``evaluate`` measures the loss and
    accuracy on the whole training and validation sets; the params of the best
    validation accuracy are kept (copies). Every epoch is a ``train_epoch`` over
    a new shuffled order drawn from ``np.random.RandomState(config.seed)``; after
    it, every parameter's learning rate is multiplied by ``config.lr_decay``.
    Floating-point warnings of a diverging run are silenced (its loss becomes nan).

    Parameters
    ----------
    model : SoftmaxRegression, TwoLayerNet, or any model with ``params`` and ``loss``
    data : dict
        ``X_train`` (N_train, D), ``y_train`` (N_train,), ``X_val`` (N_val, D),
        ``y_val`` (N_val,); other keys are ignored.
    config : TrainConfig
    verbose : bool, keyword only
        Print one line per epoch.

    Returns
    -------
    History
        With ``config.restore_best`` the model ends with ``history.best_params``.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"train: config must be a TrainConfig (load_config(path)); got {type(config).__name__}.")
    missing = [k for k in ("X_train", "y_train", "X_val", "y_val") if k not in data]
    if missing:
        raise ValueError(f"train: data is missing {', '.join(missing)} (load_flat_dataset() gives all four).")
    X_train, y_train, X_val, y_val = (data[k] for k in ("X_train", "y_train", "X_val", "y_val"))
    update_rule = _update_rule(config.update_rule)
    optim_configs = {name: config.optim_config() for name in model.params}
    rng = np.random.RandomState(config.seed)
    history = History(config=config)
    start = time.perf_counter()

    def measure(epoch):
        for split, (X, y) in (("train", (X_train, y_train)), ("val", (X_val, y_val))):
            loss, acc = evaluate(model, X, y)
            getattr(history, f"{split}_loss").append(loss)
            getattr(history, f"{split}_acc").append(acc)
        if history.val_acc[-1] > history.best_val_acc:
            history.best_epoch, history.best_val_acc = epoch, history.val_acc[-1]
            # Copies: the update rules change the arrays in place.
            history.best_params = {name: np.array(w, copy=True) for name, w in model.params.items()}
        if verbose:
            print(f"epoch {epoch:2d}/{config.num_epochs}: train loss {history.train_loss[-1]:.4f} "
                  f"acc {history.train_acc[-1]:.3f} | val loss {history.val_loss[-1]:.4f} "
                  f"acc {history.val_acc[-1]:.3f}")

    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        measure(0)
        for epoch in range(1, config.num_epochs + 1):
            history.batch_loss += train_epoch(model, X_train, y_train, config.batch_size, update_rule,
                                              optim_configs, rng)
            measure(epoch)
            for c in optim_configs.values():
                c["learning_rate"] *= config.lr_decay
    if config.restore_best:
        model.params = {name: w.copy() for name, w in history.best_params.items()}
    history.seconds = time.perf_counter() - start
    return history


# ---------------------------------------------------------------------------
# Grid search and pictures (provided)
# ---------------------------------------------------------------------------
def grid_configs(base, grid):
    """Every combination of a grid's values, applied to a base config.

    Parameters
    ----------
    base : TrainConfig
    grid : dict
        Setting name -> list of values (``load_grid``).

    Returns
    -------
    list of (dict, TrainConfig)
        (the combination's settings, the config), in the order of
        ``itertools.product`` over the grid's order.
    """
    names = list(grid)
    out = []
    for values in itertools.product(*(grid[n] for n in names)):
        changes = dict(zip(names, values))
        out.append((changes, base.replace(**changes)))
    return out


def grid_search(data, base, grid, *, verbose=True):
    """Train one model per combination of the grid, and keep the best.

    Parameters
    ----------
    data : dict
        As for ``train``; ``X_train`` is (N, D).
    base : TrainConfig
        The settings the grid does not change.
    grid : dict
        Setting name -> list of values.
    verbose : bool, keyword only
        Print one line per trial.

    Returns
    -------
    nnkit.tuning.TuningResults
        One row per trial (``params``: the combination; ``best_val_acc``,
        ``train_acc``: the last epoch's; ``loss``: the last minibatch loss;
        ``seconds``); ``.best_model`` is the model of the best validation accuracy,
        ``.best()`` its row.
    """
    from nnkit.tuning import TuningResults

    input_dim = int(np.prod(np.shape(data["X_train"])[1:]))
    num_classes = len(data["class_names"]) if "class_names" in data else int(np.max(data["y_train"])) + 1
    rows, best_model, best_acc = [], None, -math.inf
    for trial, (changes, config) in enumerate(grid_configs(base, grid)):
        model = build_model(config, input_dim, num_classes)
        history = train(model, data, config, verbose=False)
        rows.append({"trial": trial, "round": 1, "params": changes, "best_val_acc": history.best_val_acc,
                     "train_acc": history.train_acc[-1], "loss": history.batch_loss[-1],
                     "seconds": history.seconds})
        if history.best_val_acc > best_acc:
            best_model, best_acc = model, history.best_val_acc
        if verbose:
            shown = ", ".join(f"{k}={v}" for k, v in changes.items())
            print(f"trial {trial}: {shown}: best val acc {history.best_val_acc:.3f} ({history.seconds:.1f} s)")
    return TuningResults(rows, best_model, [dict(grid)])


def plot_history(history, title=None):
    """The curves of a run: ``vis_utils.plot_curves`` plus the per-epoch training loss.

    Left: the minibatch loss of every step (dots), the training and validation
    loss after every epoch (lines); right: training and validation accuracy per epoch.

    Parameters
    ----------
    history : History
    title : str or None
        Shown above both panels.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    from nnkit.vis_utils import plot_curves

    fig = plot_curves(history.batch_loss, history.train_acc, val_loss=history.val_loss, val_acc=history.val_acc)
    ax_loss = fig.axes[0]
    # The same x positions plot_curves gives the validation losses: epoch e at its last step.
    x = np.linspace(1, max(len(history.batch_loss), 1), len(history.train_loss))
    ax_loss.plot(x, history.train_loss, "s-", label="train (per epoch)")
    ax_loss.legend()
    fig.axes[1].set_xlabel("Epoch")
    if title:
        fig.suptitle(title)
        fig.tight_layout()
    return fig
