"""The training loop (``Solver``) and model/checkpoint files as ``.npz``.

``Solver`` follows the CS231n contract so course material carries over::

    solver = Solver(model, data,
                    update_rule="sgd_momentum",
                    optim_config={"learning_rate": 1e-3},
                    lr_decay=0.95,
                    num_epochs=5, batch_size=200,
                    print_every=100)
    solver.train()
    solver.best_val_acc, solver.loss_history

A model is any object with

- ``model.params``: dict of parameter name -> array (``W1``, ``b1``, ...);
- ``model.loss(X)`` -> scores ``(N, C)`` when called without labels;
- ``model.loss(X, y)`` -> ``(loss, grads)`` with ``grads[name]`` of the same
  shape as ``params[name]``.

Files are ``.npz`` read with ``allow_pickle=False``: loading a model or a
checkpoint never runs code from the file. ``save_model`` / ``load_model``
store a trained model (its params plus a small JSON header naming the class
and its constructor config); ``Solver(checkpoint_name=...)`` writes
``<checkpoint_name>_epoch_<e>.npz`` read back with ``load_checkpoint``.
"""

import json
import os
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["Solver", "save_model", "load_model", "load_checkpoint", "KNOWN_MODELS"]

# The header entry of every nnkit .npz file: a 0-d str array holding JSON.
META_KEY = "__nnkit__"
FILE_FORMAT = 1

# Largest unpacked size of a model or checkpoint file we read (a guard
# against zip bombs; a CIFAR-10 net with a few hidden layers is ~10 MB).
MAX_FILE_BYTES = 1 << 30

# Optimizer settings students sometimes pass straight to the Solver.
_OPTIM_KEYS = ("learning_rate", "momentum", "decay_rate", "beta1", "beta2", "epsilon")


class Solver:
    """Train a classification model with minibatch gradient descent.

    Parameters
    ----------
    model : object
        A model with ``params`` (dict name -> array) and
        ``loss(X, y=None)`` (see the module docstring).
    data : dict
        ``X_train: (N_train, d1, ..., dk)``, ``y_train: (N_train,)`` int labels,
        ``X_val: (N_val, d1, ..., dk)``, ``y_val: (N_val,)``. Other keys are
        ignored. The arrays are used as they are, never copied.
    update_rule : str or callable, default "sgd"
        A name in ``nnkit.optim`` (``"sgd"``, ``"sgd_momentum"``,
        ``"rmsprop"``, ``"adam"``) or a function
        ``rule(w, dw, config) -> (next_w, config)``.
    optim_config : dict, default {}
        Settings for the update rule (``learning_rate``, ``momentum``, ...).
        Each parameter gets its own copy, which also holds its optimizer state.
    lr_decay : float, default 1.0
        Every parameter's ``learning_rate`` is multiplied by this at the end
        of each epoch.
    batch_size : int, default 100
        Minibatch size. Batches are drawn with replacement (as in CS231n).
    num_epochs : int, default 10
        An epoch is ``max(N_train // batch_size, 1)`` iterations.
    num_train_samples : int or None, default 1000
        Training samples used to estimate train accuracy (None: all).
    num_val_samples : int or None, default None
        Validation samples used to estimate val accuracy (None: all).
    checkpoint_name : str or None, default None
        When set, write ``<checkpoint_name>_epoch_<e>.npz`` at every accuracy
        check (see ``load_checkpoint``).
    print_every : int, default 10
        With ``verbose``, print the loss every this many iterations.
    verbose : bool, default True
        Print losses and accuracies while training.
    seed : int or None, default None
        Seed of the Solver's own random generator, used for minibatches and
        accuracy subsamples: the same seed gives the same ``loss_history``.
        None uses numpy's global generator, so ``np.random.seed(...)`` before
        training still makes a run repeatable (the CS231n behaviour).
    progress : bool, default True
        Show a progress bar over iterations with the current loss (a widget
        in Jupyter, text elsewhere, written to stdout).
    restore_best : bool, default True
        At the end of ``train``, put the parameters of the best validation
        accuracy back into the model (``best_params``). False keeps the last
        parameters: what the experiments that study the trained model itself
        need (random labels, interpolation between two trained models).
    lr_schedule : callable or None, default None
        ``lr_schedule(iteration) -> learning_rate``, called before every
        iteration (0-based, counted over the whole run) to set every
        parameter's ``learning_rate``. Use it instead of ``lr_decay``, not
        with it. With the schedules of ``nnkit.optim``::

            lr_schedule=lambda t: optim.cyclical_lr(t, 1e-4, 1e-2, n_s=200)
            # step_decay counts epochs: turn iterations into epochs
            ipe = max(len(data["X_train"]) // batch_size, 1)
            lr_schedule=lambda t: optim.step_decay(1e-3, t / ipe, drop=0.5, every=5)

    Attributes
    ----------
    loss_history : list of float
        The minibatch loss of every iteration.
    train_acc_history, val_acc_history : list of float
        Accuracies after the first iteration, every epoch and the last
        iteration (``num_epochs + 1`` entries in a full run).
    best_val_acc : float
        The best validation accuracy seen.
    best_params : dict
        Copies of the parameters at the best validation accuracy; ``train``
        puts them back into the model when it finishes (with ``restore_best``).
    optim_configs : dict
        Parameter name -> its optimizer config (settings and state).
    epoch : int
        Epochs completed.
    iterations_per_epoch : int
        ``max(N_train // batch_size, 1)``.

    Notes
    -----
    With ``seed=None`` the minibatches are exactly CS231n's
    (``np.random.choice(N_train, batch_size)`` on numpy's global generator).
    """

    def __init__(self, model, data, **kwargs):
        self.model = model
        missing = [k for k in ("X_train", "y_train", "X_val", "y_val") if k not in data]
        if missing:
            raise ValueError(
                f"Solver: data is missing {', '.join(missing)}; it needs the keys "
                "X_train, y_train, X_val, y_val (e.g. the dict from nnkit.data_utils.load_dataset)."
            )
        self.X_train, self.y_train = data["X_train"], data["y_train"]
        self.X_val, self.y_val = data["X_val"], data["y_val"]
        for split in ("train", "val"):
            X, y = data["X_" + split], data["y_" + split]
            if len(X) != len(y):
                raise ValueError(
                    f"Solver: X_{split} has {len(X)} samples but y_{split} has {len(y)}; "
                    "they must match."
                )
        if len(self.X_train) == 0:
            raise ValueError("Solver: X_train is empty; give it at least one sample.")

        update_rule = kwargs.pop("update_rule", "sgd")
        self.optim_config = dict(kwargs.pop("optim_config", None) or {})
        self.lr_decay = kwargs.pop("lr_decay", 1.0)
        self.batch_size = kwargs.pop("batch_size", 100)
        self.num_epochs = kwargs.pop("num_epochs", 10)
        self.num_train_samples = kwargs.pop("num_train_samples", 1000)
        self.num_val_samples = kwargs.pop("num_val_samples", None)
        self.checkpoint_name = kwargs.pop("checkpoint_name", None)
        self.print_every = kwargs.pop("print_every", 10)
        self.verbose = kwargs.pop("verbose", True)
        self.seed = kwargs.pop("seed", None)
        self.progress = kwargs.pop("progress", True)
        self.lr_schedule = kwargs.pop("lr_schedule", None)
        self.restore_best = kwargs.pop("restore_best", True)

        if kwargs:
            names = ", ".join(sorted(kwargs))
            hint = ""
            if any(k in _OPTIM_KEYS for k in kwargs):
                hint = (" Optimizer settings go in optim_config, e.g. "
                        "Solver(model, data, optim_config={'learning_rate': 1e-3}).")
            raise ValueError(f"Unrecognized arguments to Solver: {names}.{hint}")

        for name in ("batch_size", "num_epochs", "print_every"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Solver: {name} must be a positive int, got {value!r}.")
        if not isinstance(self.restore_best, (bool, np.bool_)):
            raise ValueError(f"Solver: restore_best must be True or False, got {self.restore_best!r}.")
        for name in ("num_train_samples", "num_val_samples"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, (int, np.integer)) or value < 1):
                raise ValueError(f"Solver: {name} must be a positive int or None, got {value!r}.")
        if self.lr_schedule is not None:
            if not callable(self.lr_schedule):
                raise ValueError("Solver: lr_schedule must be a function iteration -> learning rate.")
            if self.lr_decay != 1.0:
                raise ValueError(
                    "Solver: lr_schedule and lr_decay both set the learning rate; pass only one."
                )

        self.iterations_per_epoch = max(len(self.X_train) // self.batch_size, 1)
        self.update_rule = self._resolve_update_rule(update_rule)
        # None: numpy's global generator (np.random.seed still works); else our own.
        self._rng = np.random if self.seed is None else np.random.RandomState(self.seed)
        self._reset()

    @staticmethod
    def _resolve_update_rule(update_rule):
        if callable(update_rule):
            return update_rule
        if not isinstance(update_rule, str):
            raise ValueError(
                f"Solver: update_rule must be a name in nnkit.optim or a function, got {update_rule!r}."
            )
        from nnkit import optim  # imported here so a custom rule works without nnkit.optim

        rule = None if update_rule.startswith("_") else getattr(optim, update_rule, None)
        if not callable(rule):
            known = [n for n in ("sgd", "sgd_momentum", "rmsprop", "adam") if hasattr(optim, n)]
            raise ValueError(
                f'Invalid update_rule "{update_rule}": nnkit.optim has no such rule. '
                f"Use one of {', '.join(known)} or pass a function."
            )
        return rule

    def _reset(self):
        """Set up book-keeping for a fresh run. Don't call it by hand."""
        self.epoch = 0
        self.best_val_acc = 0.0
        self.best_params = {}
        self.loss_history = []
        self.train_acc_history = []
        self.val_acc_history = []
        # One shallow copy of optim_config per parameter: each holds its own state.
        self.optim_configs = {p: dict(self.optim_config) for p in self.model.params}

    def _check_grads(self, grads):
        """Fail with a clear message when grads don't match params (a silent bug otherwise)."""
        params = self.model.params
        if set(grads) != set(params):
            raise ValueError(
                f"model.loss returned grads for {sorted(grads)} but model.params has "
                f"{sorted(params)}; there must be one gradient per parameter."
            )
        for p, w in params.items():
            dw = grads[p]
            if np.shape(dw) != np.shape(w):
                raise ValueError(
                    f"grads[{p!r}] has shape {np.shape(dw)} but params[{p!r}] has shape "
                    f"{np.shape(w)}; a gradient must have its parameter's shape."
                )

    def _step(self):
        """One gradient update on a random minibatch. Called by ``train``."""
        num_train = self.X_train.shape[0]
        # randint(0, n, size) is what np.random.choice(n, size) draws: with replacement.
        batch_mask = self._rng.randint(0, num_train, size=self.batch_size)
        X_batch = self.X_train[batch_mask]
        y_batch = self.y_train[batch_mask]

        loss, grads = self.model.loss(X_batch, y_batch)
        self.loss_history.append(float(loss))
        self._check_grads(grads)

        # TODO: update every parameter. For each name p in self.model.params,
        # call self.update_rule(w, dw, config) with the parameter, its gradient
        # grads[p] and its own config self.optim_configs[p]; store the returned
        # array in self.model.params[p] and the returned config in
        # self.optim_configs[p] (it carries state such as the velocity).
        for p, w in self.model.params.items():
            next_w, next_config = self.update_rule(w, grads[p], self.optim_configs[p])
            self.model.params[p] = next_w
            self.optim_configs[p] = next_config

    def _decay_learning_rates(self):
        """Apply ``lr_decay`` at the end of an epoch."""
        # TODO: multiply the "learning_rate" of every config in
        # self.optim_configs by self.lr_decay.
        raise NotImplementedError("Solver._decay_learning_rates: not part of this assignment (another assignment of the course asks for it)")

    def _record_best(self, val_acc):
        """Keep copies of the params when ``val_acc`` is the best so far."""
        # TODO: when val_acc is strictly better than self.best_val_acc, or no
        # params were kept yet (self.best_params is empty), set
        # self.best_val_acc to val_acc and self.best_params to a dict of
        # COPIES of the arrays in self.model.params (later updates may change
        # the arrays in place).
        if val_acc > self.best_val_acc or not self.best_params:
            self.best_val_acc = val_acc
            self.best_params = {p: w.copy() for p, w in self.model.params.items()}

    def _restore_best(self):
        """At the end of ``train``, put the best params back into the model."""
        # TODO: set self.model.params to a dict of copies of the arrays in
        # self.best_params (copies, so that training again never changes them).
        self.model.params = {p: w.copy() for p, w in self.best_params.items()}

    def check_accuracy(self, X, y, num_samples=None, batch_size=100):
        """Accuracy of the model on the given data.

        Parameters
        ----------
        X : array, (N, d1, ..., dk)
        y : array, (N,) int labels
        num_samples : int or None
            If given and smaller than N, use this many samples drawn with
            replacement (from the Solver's generator).
        batch_size : int
            Samples per forward pass, to bound memory.

        Returns
        -------
        acc : float
            Fraction of samples whose highest score is the right label.
        """
        N = X.shape[0]
        if N == 0:
            raise ValueError("check_accuracy: X is empty.")
        idx = None
        if num_samples is not None and N > num_samples:
            idx = self._rng.randint(0, N, size=num_samples)
            N = num_samples
        correct = 0
        for start in range(0, N, batch_size):
            stop = min(start + batch_size, N)
            if idx is None:
                # Slices are views: no copy of the whole set.
                X_b, y_b = X[start:stop], y[start:stop]
            else:
                rows = idx[start:stop]
                X_b, y_b = X[rows], y[rows]
            scores = self.model.loss(X_b)
            correct += int(np.count_nonzero(np.argmax(scores, axis=1) == y_b))
        return correct / N

    def _print(self, bar, message):
        # Through the bar when there is one, so the bar is not torn apart.
        if bar is not None:
            bar.write(message, file=sys.stdout)
        else:
            print(message)

    def _make_bar(self, total):
        if not self.progress:
            return None
        from tqdm.auto import tqdm  # a widget in Jupyter, text elsewhere

        # stdout, not stderr: nbgrader scores a cell 0 when it writes to stderr.
        return tqdm(total=total, desc="Training", unit="it", file=sys.stdout, leave=True)

    def train(self):
        """Run the optimization; at the end the model holds the best params (the last ones
        with ``restore_best=False``)."""
        iterations_per_epoch = self.iterations_per_epoch
        num_iterations = self.num_epochs * iterations_per_epoch

        bar = self._make_bar(num_iterations)
        try:
            for t in range(num_iterations):
                if self.lr_schedule is not None:
                    lr = float(self.lr_schedule(t))
                    for config in self.optim_configs.values():
                        config["learning_rate"] = lr
                self._step()

                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{self.loss_history[-1]:.4g}", refresh=False)
                if self.verbose and t % self.print_every == 0:
                    self._print(bar, "(Iteration %d / %d) loss: %f"
                                % (t + 1, num_iterations, self.loss_history[-1]))

                epoch_end = (t + 1) % iterations_per_epoch == 0
                if epoch_end:
                    self.epoch += 1
                    # lr_decay 1 changes nothing: skipped, so update rules
                    # without a learning_rate (custom ones) work too.
                    if self.lr_schedule is None and self.lr_decay != 1.0:
                        self._decay_learning_rates()

                first_it = t == 0
                last_it = t == num_iterations - 1
                if first_it or last_it or epoch_end:
                    train_acc = self.check_accuracy(
                        self.X_train, self.y_train, num_samples=self.num_train_samples)
                    val_acc = self.check_accuracy(
                        self.X_val, self.y_val, num_samples=self.num_val_samples)
                    self.train_acc_history.append(train_acc)
                    self.val_acc_history.append(val_acc)
                    if self.checkpoint_name is not None:
                        self._save_checkpoint()
                    if self.verbose:
                        self._print(bar, "(Epoch %d / %d) train acc: %f; val_acc: %f"
                                    % (self.epoch, self.num_epochs, train_acc, val_acc))
                    self._record_best(val_acc)
        finally:
            if bar is not None:
                bar.close()

        if self.restore_best and self.best_params:
            self._restore_best()

    # ------------------------------------------------------------------ files

    def _save_checkpoint(self):
        """Write ``<checkpoint_name>_epoch_<epoch>.npz`` (see ``load_checkpoint``)."""
        arrays = {}
        optim_scalars = {}
        for p, w in self.model.params.items():
            arrays[f"params/{p}"] = np.asarray(w)
        for p, w in self.best_params.items():
            arrays[f"best_params/{p}"] = np.asarray(w)
        for p, config in self.optim_configs.items():
            scalars = {}
            for k, v in config.items():
                if isinstance(v, np.ndarray):
                    arrays[f"optim/{p}/{k}"] = v
                elif isinstance(v, (bool, int, float, np.integer, np.floating, np.bool_)):
                    scalars[k] = v.item() if isinstance(v, np.generic) else v
                # Anything else (a function, an object) is not optimizer state: skipped.
            optim_scalars[p] = scalars
        arrays["loss_history"] = np.asarray(self.loss_history, dtype=np.float64)
        arrays["train_acc_history"] = np.asarray(self.train_acc_history, dtype=np.float64)
        arrays["val_acc_history"] = np.asarray(self.val_acc_history, dtype=np.float64)
        meta = {
            "format": FILE_FORMAT,
            "kind": "checkpoint",
            "model_class": type(self.model).__name__,
            "update_rule": getattr(self.update_rule, "__name__", repr(self.update_rule)),
            "lr_decay": float(self.lr_decay),
            "batch_size": int(self.batch_size),
            "num_epochs": int(self.num_epochs),
            "num_train_samples": self.num_train_samples,
            "num_val_samples": self.num_val_samples,
            "epoch": int(self.epoch),
            "best_val_acc": float(self.best_val_acc),
            "optim_scalars": optim_scalars,
        }
        get_config = getattr(self.model, "get_config", None)
        if callable(get_config):
            meta["model_config"] = get_config()
        arrays[META_KEY] = np.array(json.dumps(meta))
        _write_npz(f"{self.checkpoint_name}_epoch_{self.epoch}.npz", arrays)


# -------------------------------------------------------------- npz helpers

# Class name -> (module, attribute): the only classes load_model builds.
# Imported on use, so a missing or unfinished module only matters when needed.
KNOWN_MODELS = {
    "TwoLayerNet": ("nnkit.classifiers.fc_net", "TwoLayerNet"),
    "FullyConnectedNet": ("nnkit.classifiers.fc_net", "FullyConnectedNet"),
    "SoftmaxRegression": ("nnkit.classifiers.linear", "SoftmaxRegression"),
    "ConvNet": ("nnkit.classifiers.cnn", "ConvNet"),
}


def _write_npz(path, arrays):
    """Write arrays to ``path`` exactly (no ``.npz`` appended), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _read_npz(path, what):
    """Read every entry of an .npz without pickle; any problem is a ValueError."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} file not found: {path}")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a valid nnkit {what} file: cannot read it as .npz "
                         "(it is not a zip archive).")
    with zipfile.ZipFile(path) as z:
        size = sum(info.file_size for info in z.infolist())
    if size > MAX_FILE_BYTES:
        raise ValueError(f"{path}: its entries unpack to {size} bytes, more than the "
                         f"{MAX_FILE_BYTES} an nnkit {what} file may hold.")
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except ValueError as e:
        # numpy's message for object arrays: "Object arrays cannot be loaded ..."
        raise ValueError(
            f"{path} is not a valid nnkit {what} file: it holds an entry that needs "
            f"pickle to load, which nnkit refuses ({e})."
        ) from None
    except Exception as e:  # a truncated or non-zip file
        raise ValueError(
            f"{path} is not a valid nnkit {what} file: cannot read it as .npz "
            f"({type(e).__name__}: {e})."
        ) from None


def _read_meta(path, entries, what):
    if META_KEY not in entries:
        raise ValueError(
            f"{path} is not an nnkit {what} file: the '{META_KEY}' entry is missing. "
            "Save models with nnkit.solver.save_model."
        )
    raw = entries.pop(META_KEY)
    if raw.ndim != 0 or raw.dtype.kind != "U":
        raise ValueError(f"{path}: '{META_KEY}' must be a 0-d string array, got "
                         f"shape {raw.shape} dtype {raw.dtype}.")
    try:
        meta = json.loads(str(raw))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: '{META_KEY}' is not valid JSON ({e}).") from None
    if not isinstance(meta, dict) or meta.get("format") != FILE_FORMAT:
        raise ValueError(
            f"{path}: unsupported nnkit file format {meta.get('format') if isinstance(meta, dict) else meta!r}"
            f" (this nnkit reads format {FILE_FORMAT})."
        )
    return meta


def save_model(model, path):
    """Save a model's params and config to an ``.npz`` file.

    Parameters
    ----------
    model : TwoLayerNet, FullyConnectedNet, SoftmaxRegression or ConvNet
        Needs ``params`` (dict name -> numeric array) and ``get_config()``.
    path : str or Path
        Written exactly as given (e.g. ``models/two_layer_net.npz``); missing
        folders are created.

    Notes
    -----
    The file holds every ``model.params[name]`` under ``name`` plus
    ``__nnkit__``, a 0-d string array with the JSON
    ``{"format": 1, "class": "<ClassName>", "config": model.get_config()}``.
    """
    cls = type(model).__name__
    if cls not in KNOWN_MODELS:
        raise ValueError(
            f"save_model: cannot save a {cls}; load_model only rebuilds "
            f"{', '.join(KNOWN_MODELS)}."
        )
    get_config = getattr(model, "get_config", None)
    if not callable(get_config):
        raise ValueError(f"save_model: {cls} has no get_config(); it is needed to rebuild the model.")
    config = get_config()
    meta = {"format": FILE_FORMAT, "class": cls, "config": config}
    try:
        header = json.dumps(meta)
    except TypeError as e:
        raise ValueError(f"save_model: {cls}.get_config() is not JSON-able ({e}).") from None
    arrays = {}
    for name, w in model.params.items():
        if name == META_KEY:
            raise ValueError(f"save_model: a parameter may not be called {META_KEY!r}.")
        w = np.asarray(w)
        if w.dtype.kind not in "fiub":
            raise ValueError(f"save_model: params[{name!r}] has dtype {w.dtype}; only numeric "
                             "arrays can be saved.")
        arrays[name] = w
    arrays[META_KEY] = np.array(header)
    _write_npz(path, arrays)


def _model_class(name, path):
    if not isinstance(name, str) or name not in KNOWN_MODELS:
        raise ValueError(
            f"{path}: unknown model class {name!r}; load_model only builds "
            f"{', '.join(KNOWN_MODELS)}."
        )
    import importlib

    module, attr = KNOWN_MODELS[name]
    return getattr(importlib.import_module(module), attr)


def load_model(path):
    """Rebuild a model saved with ``save_model``.

    The file is read with ``allow_pickle=False``; only the classes in
    ``KNOWN_MODELS`` are built, from the JSON config; every parameter's name,
    shape and dtype must match the rebuilt model.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    model
        A ``TwoLayerNet``, ``FullyConnectedNet``, ``SoftmaxRegression`` or
        ``ConvNet`` holding the saved params.

    Raises
    ------
    ValueError
        If the file is not a valid nnkit model file (missing or extra entries,
        wrong shapes or dtypes, an unknown class, entries needing pickle).
    """
    entries = _read_npz(path, "model")
    meta = _read_meta(path, entries, "model")
    cls = _model_class(meta.get("class"), path)
    config = meta.get("config")
    if not isinstance(config, dict):
        raise ValueError(f"{path}: the model config must be a JSON object, got {config!r}.")

    # Building draws random initial weights; keep the caller's global RNG untouched.
    state = np.random.get_state()
    try:
        model = cls(**config)
    except (TypeError, ValueError, MemoryError) as e:
        raise ValueError(f"{path}: cannot build {cls.__name__} from its saved config "
                         f"{config!r} ({type(e).__name__}: {e}).") from None
    finally:
        np.random.set_state(state)

    expected = model.params
    missing = sorted(set(expected) - set(entries))
    extra = sorted(set(entries) - set(expected))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing)}")
        if extra:
            parts.append(f"unexpected {', '.join(extra)}")
        raise ValueError(f"{path}: the params don't match a {cls.__name__} with this config: "
                         f"{'; '.join(parts)}.")
    for name, w in expected.items():
        got = entries[name]
        if got.shape != np.shape(w) or got.dtype != np.asarray(w).dtype:
            raise ValueError(
                f"{path}: param {name!r} has shape {got.shape} dtype {got.dtype}, but a "
                f"{cls.__name__} with this config needs shape {np.shape(w)} dtype "
                f"{np.asarray(w).dtype}."
            )
    model.params = {name: entries[name] for name in expected}
    return model


def load_checkpoint(path):
    """Read a checkpoint written by ``Solver(checkpoint_name=...)``.

    Returns
    -------
    dict
        ``params`` and ``best_params`` (name -> array), ``optim_configs``
        (name -> dict of the optimizer state arrays and scalar settings),
        ``loss_history``, ``train_acc_history``, ``val_acc_history`` (lists
        of float), ``epoch``, ``best_val_acc``, and the run's settings
        ``model_class``, ``update_rule`` (its name), ``lr_decay``,
        ``batch_size``, ``num_epochs``, ``num_train_samples``,
        ``num_val_samples`` (plus ``model_config`` when the model has one).
    """
    entries = _read_npz(path, "checkpoint")
    meta = _read_meta(path, entries, "checkpoint")
    if meta.get("kind") != "checkpoint":
        raise ValueError(f"{path} is an nnkit file but not a checkpoint (kind {meta.get('kind')!r}).")
    out = {k: v for k, v in meta.items() if k not in ("format", "kind", "optim_scalars")}
    out["params"], out["best_params"] = {}, {}
    scalars = meta.get("optim_scalars") or {}
    out["optim_configs"] = {p: dict(c) for p, c in scalars.items()}
    for name in ("loss_history", "train_acc_history", "val_acc_history"):
        if name not in entries:
            raise ValueError(f"{path}: the checkpoint has no '{name}' entry.")
        out[name] = [float(v) for v in entries.pop(name)]
    for key, value in entries.items():
        parts = key.split("/")
        if len(parts) == 2 and parts[0] in ("params", "best_params"):
            out[parts[0]][parts[1]] = value
        elif len(parts) == 3 and parts[0] == "optim":
            out["optim_configs"].setdefault(parts[1], {})[parts[2]] = value
        else:
            raise ValueError(f"{path}: unexpected entry {key!r} in a checkpoint.")
    return out
