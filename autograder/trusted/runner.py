"""The sandboxed side of the trusted checks, and the procedures both sides run.

This file is executed as a script in a fresh, sandboxed interpreter::

    python -I runner.py WORKDIR PACKAGE_PARENT FIRST

It puts ``PACKAGE_PARENT`` first on ``sys.path`` so that ``import nnkit`` finds
the student's package and nothing else of ours, reads ``WORKDIR/plan.json``
(the calls to make) and ``WORKDIR/inputs.npz`` (their arrays, read with
``allow_pickle=False``) and runs the calls from index ``FIRST`` on. ``WORKDIR``
is read-only inside the sandbox: the runner writes no file. Its results go to
a private copy of its original stdout as a stream of frames (see "The wire
format" below); fds 1 and 2 point at /dev/null before any student code is
imported, so student prints go nowhere.

Student code runs in this same process, so it can write frames too: the
trusted side (``wire.parse_stream``) treats every frame as hostile and checks
values it receives, never the runner's description of them.

The trusted process imports this module too (``autograder.trusted.runner``)
and runs the very same procedures with the reference package, so student and
reference outputs are produced by identical driver code. The module therefore
imports only the standard library and numpy at top level.
"""
from __future__ import annotations

import importlib
import json
import os
import signal
import struct
import sys
import traceback

import numpy as np

# ---------------------------------------------------------------------------
# The wire format (the encoder is here, the decoder in ``wire.py``)
#
#   frame  := MAGIC, header length (uint32 little-endian), header (UTF-8 JSON object), payload
#   header := {"t": "begin", "i": index}                                  before call `index`
#           | {"t": "array", "i": index, "name": str, "dtype": str, "shape": [int, ...], "nbytes": int}
#                                                 followed by nbytes of C-order little-endian data
#           | {"t": "end", "i": index, "status", "error", "infos", "keys", "mutated"}   after the call
#           | {"t": "done"}                                               after the last call
# ---------------------------------------------------------------------------
MAGIC = b"NNK1"
HEADER_LENGTH = struct.Struct("<I")
#: The dtypes an array may have on the wire (``dtype.str``): little-endian or byte-order-free numbers,
#: no objects, no structured or string types, no long double.
WIRE_DTYPES = frozenset(np.dtype(code).newbyteorder("<").str for code in (
    "?", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8", "c8", "c16"))


def wire_dtype(array):
    """The little-endian dtype ``array`` travels as, or None when it may not travel."""
    if array.dtype.hasobject or array.dtype.fields is not None or array.dtype.subdtype is not None:
        return None
    dtype = array.dtype.newbyteorder("<")
    return dtype if dtype.str in WIRE_DTYPES else None


def encode_frame(header, payload=b""):
    """One frame: MAGIC, the header's length, the header as compact JSON, the payload."""
    data = json.dumps(header, separators=(",", ":")).encode("utf-8")
    return MAGIC + HEADER_LENGTH.pack(len(data)) + data + payload


def encode_array(index, name, array):
    """The frame of one output array (a plain ndarray whose ``wire_dtype`` is not None)."""
    data = np.ascontiguousarray(array, dtype=wire_dtype(array)).tobytes()
    return encode_frame({"t": "array", "i": index, "name": name, "dtype": wire_dtype(array).str,
                         "shape": [int(n) for n in array.shape], "nbytes": len(data)}, data)


class CallTimeout(BaseException):
    """Raised by the alarm handler. A BaseException, so `except Exception` in student code cannot swallow it."""


# ---------------------------------------------------------------------------
# Recording outputs
# ---------------------------------------------------------------------------
def snap(value):
    """A private copy of an array output (later student code may change the original in place)."""
    if isinstance(value, np.ndarray):
        try:
            return value.copy()
        except Exception:  # a hostile subclass; describe() reports it
            return value
    return value


def describe(value):
    """What kind of thing a student returned, and the plain array to send (or None).

    Returns
    -------
    info : dict
        ``kind`` is ``"ndarray"`` (exactly numpy.ndarray), ``"subclass"``, ``"scalar"``
        (a Python or numpy real number), ``"none"`` or ``"other"``; ``type`` names the
        value's type. No dtype or shape: the trusted side takes those from the array itself.
    array : ndarray or None
        A plain ndarray holding the value, of a dtype that may travel (``wire_dtype``).
    """
    info = {"type": type(value).__module__ + "." + type(value).__qualname__}
    array = None
    if value is None:
        info["kind"] = "none"
    elif isinstance(value, np.ndarray):
        info["kind"] = "ndarray" if type(value) is np.ndarray else "subclass"
        try:
            array = np.array(value.view(np.ndarray), copy=True)
        except Exception:  # the subclass refused to be viewed
            array = None
    elif isinstance(value, (bool, np.bool_)):
        info["kind"] = "other"
    elif isinstance(value, (int, float, np.integer, np.floating)):
        info["kind"] = "scalar"
        array = np.asarray(value)
    else:
        info["kind"] = "other"
    if array is not None and wire_dtype(array) is None:
        info["kind"] = "other"
        array = None
    return info, array


def flatten_outputs(outputs):
    """Flatten ``{name: value or {key: value}}`` into ``{"name" or "name.key": value}`` plus the key sets."""
    flat, keysets = {}, {}
    for name, value in outputs.items():
        if isinstance(value, dict):
            keysets[name] = sorted(str(k) for k in value)
            for k, v in value.items():
                flat[f"{name}.{k}"] = v
        else:
            flat[name] = value
    return flat, keysets


# ---------------------------------------------------------------------------
# Procedures. Each is ``procedure(mod, a, p) -> {name: value or dict}`` where
# ``mod(name)`` returns the module ``nnkit.<name>`` of the package under test,
# ``a`` maps input names to fresh array copies, and ``p`` holds JSON parameters.
# Procedures copy (``snap``) every array they record before calling on.
# ---------------------------------------------------------------------------
def _fn(mod, p):
    return getattr(mod(p["module"]), p["fn"])


def _grads(result, n):
    """Backward passes return one array or a tuple of n arrays."""
    if n == 1:
        return {"d0": snap(result)}
    if not isinstance(result, tuple) or len(result) != n:
        raise TypeError(f"expected a tuple of {n} gradients, got {type(result).__name__}")
    return {f"d{i}": snap(g) for i, g in enumerate(result)}


def proc_forward(mod, a, p):
    """``out, cache = fn(*args, **kwargs)``."""
    args = [a[n] for n in p["args"]]
    result = _fn(mod, p)(*args, **p.get("kwargs", {}))
    if not isinstance(result, tuple) or len(result) != 2:
        raise TypeError(f"{p['fn']} must return (out, cache), got {type(result).__name__}")
    return {"out": snap(result[0])}


def proc_forward_backward(mod, a, p):
    """Forward then ``backward(dout, cache)``; gradients recorded as ``d0, d1, ...``."""
    args = [a[n] for n in p["args"]]
    out, cache = _fn(mod, p)(*args, **p.get("kwargs", {}))
    rec = {"out": snap(out)}
    back = getattr(mod(p["module"]), p["backward"])
    rec.update(_grads(back(a["dout"], cache), p["n_grads"]))
    return rec


def proc_loss(mod, a, p):
    """``loss, dx = fn(x, y)`` (layer losses) or ``fn(W, X, y, reg)`` (linear classifiers)."""
    args = [a[n] for n in p["args"]] + list(p.get("extra", []))
    result = _fn(mod, p)(*args)
    if not isinstance(result, tuple) or len(result) != 2:
        raise TypeError(f"{p['fn']} must return (loss, grad), got {type(result).__name__}")
    return {"loss": result[0], "grad": snap(result[1])}


def _dtype_kwargs(kwargs):
    kwargs = dict(kwargs)
    if "dtype" in kwargs:
        kwargs["dtype"] = np.dtype(kwargs["dtype"]).type
    return kwargs


def proc_net_init(mod, a, p):
    """Seed numpy's global generator, build the model, record its params."""
    np.random.seed(p["np_seed"])
    cls = getattr(mod(p["module"]), p["cls"])
    model = cls(**_dtype_kwargs(p["kwargs"]))
    params = model.params
    if not isinstance(params, dict):
        raise TypeError(f"model.params must be a dict, got {type(params).__name__}")
    return {"params": {k: snap(v) for k, v in params.items()}}


def proc_net_loss(mod, a, p):
    """Build the model, load given params, record scores, loss and grads (and, with
    ``p["loss_only"]``, what ``loss(X, y, grads=False)`` returns)."""
    np.random.seed(p["np_seed"])
    cls = getattr(mod(p["module"]), p["cls"])
    model = cls(**_dtype_kwargs(p["kwargs"]))
    names = p["params"]
    model.params.clear()
    model.params.update({k: a["param." + k] for k in names})
    rec = {"scores": snap(model.loss(a["X"]))}
    result = model.loss(a["X"], a["y"])
    if not isinstance(result, tuple) or len(result) != 2:
        raise TypeError(f"model.loss(X, y) must return (loss, grads), got {type(result).__name__}")
    loss, grads = result
    if not isinstance(grads, dict):
        raise TypeError(f"grads must be a dict, got {type(grads).__name__}")
    rec["loss"] = loss
    rec["grads"] = {k: snap(v) for k, v in grads.items()}
    if p.get("loss_only"):
        # The loss-only path the notebooks' numeric gradient checks call: the same loss, no gradients.
        rec["loss_only"] = model.loss(a["X"], a["y"], grads=False)
    return rec


def proc_optim(mod, a, p):
    """Several update steps, each fed the previous step's next_w and config."""
    rule = _fn(mod, p)
    w = a["w"]
    config = None if p.get("config") is None else dict(p["config"])
    rec = {}
    for k in range(p["steps"]):
        # Rules may update w in place: keep the weights before the step.
        before = np.array(w, dtype=np.float64, copy=True)
        result = rule(w, a[f"dw{k}"], config)
        if not isinstance(result, tuple) or len(result) != 2:
            raise TypeError(f"{p['fn']} must return (next_w, config), got {type(result).__name__}")
        w, config = result
        if not isinstance(config, dict):
            raise TypeError(f"{p['fn']} must return its config dict, got {type(config).__name__}")
        rec[f"w{k}"] = snap(w)
        # The step itself: small next to w, so it is compared on its own scale.
        rec[f"step{k}"] = np.asarray(w, dtype=np.float64) - before if isinstance(w, np.ndarray) else None
        rec[f"state{k}"] = {key: snap(config[key]) for key in p["state"] if key in config}
    return rec


class ToyModel:
    """A two-parameter model whose validation accuracy rises then falls as training goes on.

    ``theta`` (1,) climbs by the learning rate every step (its gradient is -1);
    ``phi`` (2,) decays towards 0. An example with feature ``x`` scores class 1
    with ``0.5 - |theta - x|`` and class 0 with 0, so the accuracy on examples
    labelled 1 is the fraction of them within 0.5 of ``theta``. The loss
    depends only on the params, so any minibatch order gives the same history.
    """

    def __init__(self, theta0, phi0):
        self.params = {"theta": np.array([theta0], dtype=np.float64),
                       "phi": np.array(phi0, dtype=np.float64)}

    def loss(self, X, y=None):
        theta, phi = self.params["theta"][0], self.params["phi"]
        x = np.asarray(X, dtype=np.float64).reshape(len(X), -1)[:, 0]
        if y is None:
            return np.stack([np.zeros_like(x), 0.5 - np.abs(theta - x)], axis=1)
        loss = -theta + float(np.sum(phi ** 2))
        return loss, {"theta": np.array([-1.0]), "phi": 2 * phi}


def toy_sgd(w, dw, config=None):
    """SGD that updates in place (allowed by the update-rule contract) and counts its calls."""
    config = dict(config or {})
    config.setdefault("learning_rate", 1e-2)
    w -= config["learning_rate"] * dw
    config["count"] = config.get("count", 0) + 1
    return w, config


def proc_solver(mod, a, p):
    """Train ToyModel with the Solver under test and the trusted in-place SGD."""
    np.random.seed(p["np_seed"])
    model = ToyModel(p["theta0"], p["phi0"])
    data = {"X_train": a["X_train"], "y_train": a["y_train"], "X_val": a["X_val"], "y_val": a["y_val"]}
    solver = mod("solver").Solver(model, data, update_rule=toy_sgd, **p["kwargs"])
    solver.train()
    params = model.params
    rec = {
        "loss_history": np.asarray(solver.loss_history, dtype=np.float64),
        "val_acc_history": np.asarray(solver.val_acc_history, dtype=np.float64),
        "best_val_acc": solver.best_val_acc,
        "final_params": {k: snap(v) for k, v in params.items()},
        "learning_rate": {k: c.get("learning_rate") for k, c in solver.optim_configs.items()},
        "count": {k: float(c.get("count", 0)) for k, c in solver.optim_configs.items()},
    }
    # Training again from the kept params must not change the kept copies.
    kept = {k: snap(v) for k, v in solver.best_params.items()}
    for v in model.params.values():
        v += 1000.0
    rec["best_params_after_edit"] = {k: snap(v) for k, v in solver.best_params.items()}
    rec["best_params"] = kept
    return rec


def proc_linear_train(mod, a, p):
    """Train a linear classifier with its own ``train``, then ``predict`` on the training inputs.

    Held-out data never comes here: the trusted side scores the returned ``W`` on it.
    """
    np.random.seed(p["np_seed"])
    cls = getattr(mod(p["module"]), p["cls"])
    clf = cls(**p.get("init_kwargs", {}))
    history = clf.train(a["X"], a["y"], **p["kwargs"])
    rec = {"loss_history": np.asarray(history, dtype=np.float64) if history is not None else None}
    rec["W"] = snap(getattr(clf, "W", None))
    rec["pred_train"] = snap(clf.predict(a["X"]))
    return rec


def proc_net_train(mod, a, p):
    """Overfit a small set with the package's own net, Solver and update rule."""
    np.random.seed(p["np_seed"])
    cls = getattr(mod(p["module"]), p["cls"])
    model = cls(**_dtype_kwargs(p["kwargs"]))
    data = {"X_train": a["X"], "y_train": a["y"], "X_val": a["X"], "y_val": a["y"]}
    solver = mod("solver").Solver(model, data, **p["solver_kwargs"])
    solver.train()
    # The trained params go back; the trusted side computes the accuracy with its own forward pass.
    return {"params": {k: snap(v) for k, v in model.params.items()},
            "loss_history": np.asarray(solver.loss_history, dtype=np.float64)}


# ---------------------------------------------------------------------------
# Procedures for plain functions, generators and training steps (the flat-input data
# path and the epoch-based training loop). Everything they take from student code is
# bounded: a generator is read for at most ``max_batches`` batches of ``max_elements``
# numbers in all, and a trusted model handed to student code answers at most a given
# number of calls or rows. Past a budget the procedure stops with ``BudgetExceeded``,
# whose message says which budget and what was expected (it reaches the student as the
# reason of the failed checks).
# ---------------------------------------------------------------------------
class BudgetExceeded(BaseException):
    """A budget of the trusted side was exceeded by student code (an endless generator, a
    training loop that never stops...). A BaseException, so that ``except Exception`` in the
    student's loop cannot swallow it and carry on."""


def proc_call(mod, a, p):
    """``fn(*args, **kwargs)`` of a plain function, its result recorded by name.

    p["outputs"] names what the function returns: one name records the result itself, several
    a tuple of exactly that many. With ``p["repeat"]`` the function is called once more on fresh
    copies of the inputs, recorded under ``again.<name>`` (the same seed must give the same
    result). With ``p["fp_watch"]`` (numpy error kinds, e.g. ``["over", "invalid"]``) the first
    call runs under ``np.errstate(<kind>="call")`` and ``fp_errors`` counts numpy's floating-point
    errors of those kinds (an overflow that only shows as a warning in a notebook).
    """
    fn = _fn(mod, p)
    names = p["outputs"]
    pristine = {n: a[n].copy() for n in p["args"]} if p.get("repeat") else None

    def once(arrays):
        result = fn(*[arrays[n] for n in p["args"]], **p.get("kwargs", {}))
        if len(names) == 1:
            return {names[0]: snap(result)}
        if not isinstance(result, tuple) or len(result) != len(names):
            raise TypeError(f"{p['fn']} must return a tuple of {len(names)} values ({', '.join(names)}), "
                            f"got {type(result).__name__}")
        return {n: snap(v) for n, v in zip(names, result)}

    if p.get("fp_watch"):
        count = [0]

        def on_error(kind, flag):
            count[0] += 1

        with np.errstate(call=on_error, **{kind: "call" for kind in p["fp_watch"]}):
            rec = once(a)
        rec["fp_errors"] = count[0]
    else:
        rec = once(a)
    if pristine is not None:
        rec["again"] = once(pristine)
    return rec


def read_batches(batches, X, what, max_batches, max_elements):
    """The ``(X_batch, y_batch)`` pairs an iterable yields, checked and copied within budgets.

    Parameters
    ----------
    batches : the iterable (a generator) returned by student code
    X : ndarray, (N, ...)
        The examples it batches (for the shapes a batch must have).
    what : str
        The function's name, for the messages.
    max_batches : int
        Batches read at most; one more is ``BudgetExceeded`` (an epoch must end).
    max_elements : int
        Numbers (X_batch.size + y_batch.size, summed over the batches) accepted at most, checked
        BEFORE a batch is copied (a batch may be a huge broadcast view that costs no memory yet).

    Returns
    -------
    labels : ndarray, (M,)
        The y of every batch, in order.
    rows : ndarray of float64, (M, prod(X.shape[1:]))
        The X of every batch, each example flattened.
    sizes : ndarray of int64, (number of batches,)
    """
    N, width = len(X), int(np.prod(X.shape[1:]))
    try:
        iterator = iter(batches)
    except TypeError:
        raise TypeError(f"{what} must yield (X_batch, y_batch) pairs (use `yield` in its loop); it returned "
                        f"a {type(batches).__name__}") from None
    labels, rows, sizes, elements = [], [], [], 0
    for item in iterator:
        k = len(sizes)
        if k >= max_batches:
            raise BudgetExceeded(f"{what} yielded more than {max_batches} batches for N = {N} examples: "
                                 "stopped there (one epoch visits each example once, then the generator must end)")
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise TypeError(f"{what}: batch {k} is a {type(item).__name__}, not an (X_batch, y_batch) pair")
        Xb, yb = item
        if type(Xb) is not np.ndarray or type(yb) is not np.ndarray:
            raise TypeError(f"{what}: batch {k} holds a {type(Xb).__name__} and a {type(yb).__name__}; X_batch and "
                            "y_batch must be numpy arrays (index X and y with the batch's indices)")
        elements += Xb.size + yb.size
        if elements > max_elements:
            raise BudgetExceeded(f"{what} yielded more than {max_elements} numbers in all for N = {N} examples "
                                 f"(batch {k} has X_batch of shape {Xb.shape}): stopped there; an epoch holds each "
                                 "example once")
        if Xb.ndim != X.ndim or Xb.shape[1:] != X.shape[1:] or yb.shape != (len(Xb),):
            raise ValueError(f"{what}: batch {k} has X_batch of shape {Xb.shape} and y_batch of shape {yb.shape}; "
                             f"expected (B, {', '.join(map(str, X.shape[1:]))}) and (B,), the same B")
        sizes.append(len(yb))
        labels.append(np.array(yb, copy=True))
        rows.append(np.array(Xb, dtype=np.float64).reshape(len(Xb), width))
    labels = np.concatenate(labels) if labels else np.zeros(0, dtype=np.int64)
    rows = np.concatenate(rows) if rows else np.zeros((0, width))
    return labels, rows, np.asarray(sizes, dtype=np.int64)


def _seed_argument(p):
    """The ``seed`` argument a procedure passes: ``p["seed"]`` itself ("int"), one
    ``np.random.RandomState(p["seed"])`` ("state"), or none at all ("none")."""
    kind = p.get("seed_kind", "none")
    if kind == "int":
        return {"seed": int(p["seed"])}
    if kind == "state":
        return {"seed": np.random.RandomState(p["seed"])}
    return {}


def proc_batches(mod, a, p):
    """The minibatches of ``fn(X, y, batch_size, **kwargs, seed=...)`` over ``p["epochs"]`` epochs.

    Numpy's global generator is seeded with ``p["np_seed"]`` first (what ``seed=None`` draws
    from). With ``seed_kind`` "state" every epoch gets the same RandomState object, so each
    epoch draws a new order from it (what ``train`` does). Each epoch is read with
    ``read_batches`` within ``max_batches`` and ``max_elements``.

    Records, for epoch e: ``e<e>.labels`` (M,), ``e<e>.rows`` (M, prod(X.shape[1:])) float64 and
    ``e<e>.sizes`` (number of batches,) int64.
    """
    np.random.seed(p["np_seed"])
    fn = _fn(mod, p)
    kwargs = {**p.get("kwargs", {}), **_seed_argument(p)}
    rec = {}
    for e in range(p.get("epochs", 1)):
        labels, rows, sizes = read_batches(fn(a["X"], a["y"], p["batch_size"], **kwargs), a["X"], p["fn"],
                                           p["max_batches"], p["max_elements"])
        rec[f"e{e}"] = {"labels": labels, "rows": rows, "sizes": sizes}
    return rec


def _cross_entropy(scores, y):
    """(mean softmax cross-entropy of scores (N, C) with labels y (N,), the probabilities (N, C))."""
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_sums = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(len(y))
    return float(np.mean(log_sums[:, 0] - shifted[rows, y])), np.exp(shifted - log_sums)


class ScoresModel:
    """A trusted model whose scores are its input: ``loss(X)`` returns a copy of X, (N, C).

    ``loss(X, y)`` returns what a model's training loss is, the cross-entropy of those scores
    PLUS an L2 term ``0.5 * reg * sum(W**2)`` (W = ones(C)), and gradients; a function that
    must report the data loss alone (``evaluate``) must not use it. The model records the most
    rows one call took (``max_rows``) and the rows of all calls (``rows_seen``); past
    ``max_rows_total`` rows in all it raises BudgetExceeded.
    """

    def __init__(self, num_classes, reg, max_rows_total):
        self.params = {"W": np.ones(num_classes)}
        self.reg = reg
        self.max_rows = self.rows_seen = 0
        self._limit = max_rows_total

    def loss(self, X, y=None, grads=True):
        n = len(X)
        self.rows_seen += n
        self.max_rows = max(self.max_rows, n)
        if self.rows_seen > self._limit:
            raise BudgetExceeded(f"model.loss was asked for the scores of more than {self._limit} examples in all: "
                                 "stopped there (a whole set takes one pass)")
        scores = np.array(X, dtype=np.float64, copy=True)
        if y is None:
            return scores
        W = self.params["W"]
        data_loss, probs = _cross_entropy(scores, np.asarray(y))
        loss = data_loss + 0.5 * self.reg * float(np.sum(W * W))
        return (loss, {"W": self.reg * W}) if grads else loss


def proc_evaluate(mod, a, p):
    """``loss, accuracy = fn(model, S, y, **kwargs)`` with a ScoresModel: the scores are S, (N, C).

    Records ``loss`` and ``accuracy`` as returned, and what the model saw: ``max_rows`` (the
    largest batch) and ``rows_seen``.
    """
    S = a["S"]
    model = ScoresModel(S.shape[1], p["reg"], p["max_rows_total"])
    result = _fn(mod, p)(model, S, a["y"], **p.get("kwargs", {}))
    if not isinstance(result, tuple) or len(result) != 2:
        raise TypeError(f"{p['fn']} must return (loss, accuracy), got {type(result).__name__}")
    return {"loss": result[0], "accuracy": result[1], "max_rows": model.max_rows, "rows_seen": model.rows_seen}


class LinearSoftmaxModel:
    """A trusted softmax regression: ``scores = X W + b`` with W (D, C), b (C,).

    ``loss(X, y)`` is the mean softmax cross-entropy plus ``0.5 * reg * sum(W**2)``, with the
    gradients ``W: X.T dscores + reg * W`` and ``b: dscores summed over the examples`` (b is not
    regularised), so one SGD step on it is one SGD step with L2. Past ``max_calls`` calls it
    raises BudgetExceeded.
    """

    def __init__(self, W, b, reg, max_calls):
        self.params = {"W": np.array(W, dtype=np.float64), "b": np.array(b, dtype=np.float64)}
        self.reg = reg
        self.calls = 0
        self._max_calls = max_calls

    def loss(self, X, y=None, grads=True):
        self.calls += 1
        if self.calls > self._max_calls:
            raise BudgetExceeded(f"model.loss was called more than {self._max_calls} times: stopped there")
        W = np.asarray(self.params["W"], dtype=np.float64)
        b = np.asarray(self.params["b"], dtype=np.float64)
        x = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
        scores = x @ W + b
        if y is None:
            return scores
        y = np.asarray(y)
        data_loss, probs = _cross_entropy(scores, y)
        loss = data_loss + 0.5 * self.reg * float(np.sum(W * W))
        if not grads:
            return loss
        dscores = probs
        dscores[np.arange(len(y)), y] -= 1
        dscores /= len(y)
        return loss, {"W": x.T @ dscores + self.reg * W, "b": dscores.sum(axis=0)}


def trusted_rule(kind, calls):
    """An update rule ``rule(w, dw, config) -> (next_w, next_config)`` that returns NEW objects.

    ``kind`` "sgd": ``w - learning_rate * dw``; "momentum": ``v = momentum * v - learning_rate * dw``,
    then ``w + v``, with v kept in the config as "velocity" (so a step that drops the returned
    config loses it). Both return a new config with ``count`` one higher, and count their calls
    per parameter in ``calls`` (keyed by the config's "name").
    """
    def rule(w, dw, config):
        if not isinstance(config, dict):
            raise TypeError(f"the update rule was given a {type(config).__name__} as its config; pass "
                            "optim_configs[p], the parameter's own config dict")
        name = str(config.get("name"))
        calls[name] = calls.get(name, 0) + 1
        w = np.asarray(w, dtype=np.float64)
        dw = np.asarray(dw, dtype=np.float64)
        new = {**config, "count": config.get("count", 0) + 1}
        if kind == "momentum":
            v = config.get("velocity")
            v = np.zeros_like(w) if v is None else v
            new["velocity"] = config["momentum"] * v - config["learning_rate"] * dw
            return w + new["velocity"], new
        return w - config["learning_rate"] * dw, new
    return rule


def _count_of(config):
    """config["count"] as a float, or -1 when the config is not a dict holding a number there."""
    if isinstance(config, dict) and isinstance(config.get("count"), (int, float)) \
            and not isinstance(config.get("count"), bool):
        return float(config["count"])
    return -1.0


def proc_train_step(mod, a, p):
    """``p["steps"]`` calls ``fn(model, X<k>, y<k>, rule, configs)`` on a LinearSoftmaxModel (W, b, p["reg"]).

    ``rule`` is ``trusted_rule(p["rule"])``; every parameter's config starts as
    ``{"name", "learning_rate"(, "momentum")}``. Records per step k: ``loss<k>`` (what fn returned),
    ``params<k>`` (the model's params after it), ``count<k>`` (config["count"] of W and b after it,
    -1 when missing) and ``calls<k>`` (the rule's calls per parameter during it).
    """
    model = LinearSoftmaxModel(a["W"], a["b"], p["reg"], max_calls=4 * p["steps"] + 4)
    extra = {"momentum": p["momentum"]} if p["rule"] == "momentum" else {}
    names = sorted(model.params)
    configs = {n: {"name": n, "learning_rate": p["learning_rate"], **extra} for n in names}
    calls = {}
    rule = trusted_rule(p["rule"], calls)
    fn = _fn(mod, p)
    rec = {}
    for k in range(p["steps"]):
        calls.clear()
        rec[f"loss{k}"] = fn(model, a[f"X{k}"], a[f"y{k}"], rule, configs)
        if not isinstance(model.params, dict):
            raise TypeError(f"model.params must stay a dict, got {type(model.params).__name__}")
        rec[f"params{k}"] = {n: snap(v) for n, v in model.params.items()}
        rec[f"count{k}"] = {n: _count_of(configs.get(n)) for n in names}
        rec[f"calls{k}"] = dict(calls)
    return rec


class RecorderModel:
    """A trusted model that records the batches it is trained on (as notebook checks do).

    params ``w`` (1,); ``loss(X, y)`` returns ``w[0] + 1e-3 * sum(X)`` (so each loss tells the
    batch and the step apart) and the gradient ``w: [1.0]``, and records y and the loss it
    returned. Past ``max_calls`` calls or ``max_elements`` recorded labels it raises BudgetExceeded.
    """

    def __init__(self, w0, max_calls, max_elements):
        self.params = {"w": np.array([w0], dtype=np.float64)}
        self.labels, self.returned = [], []
        self._max_calls, self._max_elements, self._elements = max_calls, max_elements, 0

    def loss(self, X, y=None, grads=True):
        if len(self.returned) >= self._max_calls:
            raise BudgetExceeded(f"model.loss was called more than {self._max_calls} times in one epoch: stopped "
                                 "there (one train_step per batch)")
        y = np.asarray(y)
        self._elements += y.size
        if self._elements > self._max_elements:
            raise BudgetExceeded(f"the model was given more than {self._max_elements} examples in one epoch: "
                                 "stopped there")
        value = float(np.asarray(self.params["w"], dtype=np.float64)[0]) + 1e-3 * float(np.sum(X))
        self.labels.append(np.array(y, copy=True).reshape(-1))
        self.returned.append(value)
        return (value, {"w": np.ones(1)}) if grads else value


def proc_train_epoch(mod, a, p):
    """One ``fn(model, X, y, batch_size, rule, configs, np.random.RandomState(seed))`` on a RecorderModel.

    ``rule`` is ``trusted_rule("sgd")`` with ``configs = {"w": {"name": "w", "learning_rate": lr}}``.
    First, for comparison, the package's own ``training.generate_batched_data(X, y, batch_size,
    seed=np.random.RandomState(seed))`` is read within budgets: ``gen.labels`` and ``gen.sizes``, or
    ``gen_failed`` = 1 when it raised or broke a budget. Numpy's global generator is seeded with
    ``p["np_seed"]`` before that read and again before the epoch, so that even a generator that
    draws from it gives the epoch the batches it gave the read.

    Records: ``losses`` (what fn returned, as floats) and ``losses_is_list`` (1 or 0);
    ``batches.labels`` and ``batches.sizes`` (the labels of every loss call, in order);
    ``returned`` (the loss the model returned at each call); ``w`` (the param after the epoch);
    ``count`` (config["count"] of w after it: the rule's calls, -1 when missing).
    """
    X, y, B, seed = a["X"], a["y"], p["batch_size"], p["seed"]
    max_calls = -(-len(X) // B) + 4
    rec = {"gen_failed": 0}
    np.random.seed(p["np_seed"])
    try:
        gen = mod("training").generate_batched_data(X.copy(), y.copy(), B, seed=np.random.RandomState(seed))
        labels, _, sizes = read_batches(gen, X, "generate_batched_data", max_calls, 4 * X.size + 4 * len(X))
        rec["gen"] = {"labels": labels, "sizes": sizes}
    except (Exception, BudgetExceeded):  # the comparison is then with the documented order alone
        rec["gen_failed"] = 1
    model = RecorderModel(p["w0"], max_calls, 4 * len(X))
    configs = {"w": {"name": "w", "learning_rate": p["learning_rate"]}}
    np.random.seed(p["np_seed"])
    losses = _fn(mod, p)(model, X, y, B, trusted_rule("sgd", {}), configs, np.random.RandomState(seed))
    if not isinstance(losses, (list, tuple, np.ndarray)) or len(losses) > max_calls:
        raise TypeError(f"{p['fn']} must return the list of the steps' losses, got "
                        f"{type(losses).__name__}" + (f" of length {len(losses)}" if hasattr(losses, "__len__") else ""))
    rec["losses"] = np.array([float(v) for v in losses], dtype=np.float64)
    rec["losses_is_list"] = int(isinstance(losses, list))
    sizes = [len(v) for v in model.labels]
    rec["batches"] = {"labels": np.concatenate(model.labels) if model.labels else np.zeros(0, dtype=np.int64),
                      "sizes": np.asarray(sizes, dtype=np.int64)}
    rec["returned"] = np.asarray(model.returned, dtype=np.float64)
    rec["w"] = snap(model.params.get("w")) if isinstance(model.params, dict) else None
    rec["count"] = _count_of(configs.get("w"))
    return rec


PROCEDURES = {
    "forward": proc_forward,
    "forward_backward": proc_forward_backward,
    "loss": proc_loss,
    "net_init": proc_net_init,
    "net_loss": proc_net_loss,
    "optim": proc_optim,
    "solver": proc_solver,
    "linear_train": proc_linear_train,
    "net_train": proc_net_train,
    "call": proc_call,
    "batches": proc_batches,
    "evaluate": proc_evaluate,
    "train_step": proc_train_step,
    "train_epoch": proc_train_epoch,
}


def run_procedure(name, mod, arrays, params):
    """Run one procedure on copies of its input arrays; return (outputs, names of inputs changed in place)."""
    fresh = {k: v.copy() for k, v in arrays.items()}
    outputs = PROCEDURES[name](mod, fresh, params)
    mutated = sorted(k for k, v in arrays.items()
                     if fresh[k].shape != v.shape or not np.array_equal(fresh[k], v, equal_nan=True))
    return outputs, mutated


# ---------------------------------------------------------------------------
# Procedures of the cyclical_lr assignment: a schedule at given steps, a net's methods on given
# params, and the recording step and training loop on trusted nets (their answers are known, so
# a bug in the student's net costs the net's points only). Budgets as above.
# ---------------------------------------------------------------------------
def _real(value, what):
    """``value`` as a float when it is a real number (not a bool), else TypeError."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        if isinstance(value, np.ndarray) and value.shape == () and value.dtype.kind in "iuf":
            return float(value)
        raise TypeError(f"{what} must be a number, got {type(value).__name__}")
    return float(value)


def proc_schedule(mod, a, p):
    """``fn(t, **kwargs)`` at every step t of ``p["steps"]``; records ``rates`` (float64, one per step)."""
    fn = _fn(mod, p)
    kwargs = p.get("kwargs", {})
    rates = [_real(fn(int(t), **kwargs), f"{p['fn']}(t={int(t)})") for t in p["steps"]]
    return {"rates": np.asarray(rates, dtype=np.float64)}


def proc_model_methods(mod, a, p):
    """Build ``cls(**kwargs)``, put in the given params, call its methods in turn.

    ``p["methods"]``: ``[name, [input names], [output names]]`` triples; one output records the
    result itself, several a tuple of exactly that many. A dict result (gradients) is recorded
    with its keys.
    """
    np.random.seed(p["np_seed"])
    model = getattr(mod(p["module"]), p["cls"])(**p["kwargs"])
    if not isinstance(model.params, dict):
        raise TypeError(f"model.params must be a dict, got {type(model.params).__name__}")
    model.params.clear()
    model.params.update({k: a["param." + k] for k in p["params"]})
    rec = {}
    for name, args, outputs in p["methods"]:
        result = getattr(model, name)(*[a[n] for n in args])
        if len(outputs) == 1:
            value = result
            rec[outputs[0]] = {k: snap(v) for k, v in value.items()} if isinstance(value, dict) else snap(value)
            continue
        if not isinstance(result, tuple) or len(result) != len(outputs):
            raise TypeError(f"{p['cls']}.{name} must return a tuple of {len(outputs)} values ({', '.join(outputs)}), "
                            f"got {type(result).__name__}")
        rec.update({o: snap(v) for o, v in zip(outputs, result)})
    return rec


class KnownNet:
    """A trusted net whose answers are known: ``cost(X, y) = (1 + 2 m, m)`` with m the mean of X,
    and ``forward(X) = (zeros (N, 1), X[:, :C])`` (the first C columns are the probabilities).
    Past ``max_calls`` calls or ``max_rows`` rows in all it raises BudgetExceeded."""

    def __init__(self, num_classes, max_calls, max_rows):
        self.params = {"w": np.zeros(1)}
        self.C, self._calls, self._rows, self._max_calls, self._max_rows = num_classes, 0, 0, max_calls, max_rows

    def _count(self, X):
        self._calls += 1
        self._rows += len(X)
        if self._calls > self._max_calls or self._rows > self._max_rows:
            raise BudgetExceeded(f"the net was asked more than {self._max_calls} times or for more than "
                                 f"{self._max_rows} rows in all: stopped there (one record evaluates each set once)")

    def cost(self, X, y):
        self._count(X)
        m = float(np.mean(np.asarray(X, dtype=np.float64)))
        return 1.0 + 2.0 * m, m

    def forward(self, X):
        self._count(X)
        X = np.asarray(X, dtype=np.float64)
        return np.zeros((len(X), 1)), np.array(X[:, :self.C], copy=True)

    def gradients(self, X, y):
        raise BudgetExceeded("record must not compute gradients (it only measures the net)")


def _history_lists(history, names):
    """The lists of a History as float64 arrays (TypeError when one is not a list of numbers)."""
    out = {}
    for name in names:
        values = getattr(history, name, None)
        if not isinstance(values, list):
            raise TypeError(f"history.{name} must be a list, got {type(values).__name__}")
        out[name] = np.asarray([_real(v, f"an entry of history.{name}") for v in values], dtype=np.float64)
    return out


_RECORD_LISTS = ("steps", "train_cost", "train_loss", "train_acc", "val_cost", "val_loss", "val_acc")


def proc_record(mod, a, p):
    """``fn(history, net, data, t)`` for every t of ``p["steps"]`` on one fresh ``History`` of the
    package, with a KnownNet; records the history's lists (``history.<name>``)."""
    module = mod(p["module"])
    history = module.History()
    net = KnownNet(p["num_classes"], 4 * len(p["steps"]) + 4, 4 * len(p["steps"]) * (len(a["X_train"]) + len(a["X_val"])))
    data = {k: a[k] for k in ("X_train", "y_train", "X_val", "y_val")}
    fn = getattr(module, p["fn"])
    for t in p["steps"]:
        fn(history, net, data, int(t))
    return {"history": _history_lists(history, _RECORD_LISTS)}


class StepNet:
    """A trusted net for training loops: ``w`` (1,) whose gradient is always 1, so an update with
    rate eta lowers w by exactly eta. It records, at every ``gradients`` call, w before the update
    (``before``) and the batch's labels, which name the examples (example i has label i, and its
    first number is i). ``cost`` and ``forward`` answer as KnownNet's. Past ``max_calls`` gradient
    calls or ``max_rows`` rows it raises BudgetExceeded."""

    def __init__(self, w0, num_classes, max_calls, max_rows):
        self.params = {"w": np.array([w0], dtype=np.float64)}
        self.before, self.labels, self.mismatched = [], [], 0
        self._known = KnownNet(num_classes, 10 ** 9, 10 ** 12)
        self._max_calls, self._max_rows, self._rows = max_calls, max_rows, 0

    def gradients(self, X, y):
        if len(self.before) >= self._max_calls:
            raise BudgetExceeded(f"more than {self._max_calls} updates: stopped there (the loop must stop after "
                                 "n_updates updates)")
        X, y = np.asarray(X), np.asarray(y)
        self._rows += len(y)
        if self._rows > self._max_rows or X.ndim != 2 or len(X) != len(y):
            raise BudgetExceeded(f"the batches hold more than {self._max_rows} examples in all, or X_batch and "
                                 "y_batch differ in length: stopped there")
        self.before.append(_real(np.asarray(self.params["w"]).reshape(-1)[0], "params['w']"))
        self.labels.append(np.array(y, dtype=np.int64).reshape(-1))
        self.mismatched += int(not np.array_equal(np.asarray(X[:, 0], dtype=np.float64), y.astype(np.float64)))
        return {"w": np.ones(1)}

    def cost(self, X, y):
        return self._known.cost(X, y)

    def forward(self, X):
        return self._known.forward(X)


def proc_minibatch_gd(mod, a, p):
    """``fn(net, data, schedule, n_updates, batch_size=..., record_every=..., seed=...)`` on a StepNet.

    ``schedule(t) = p["eta0"] + p["eta_step"] * t``, which logs the steps it is asked for. The
    module's ``record`` is replaced during the call by one that logs (t, w) and appends t to
    ``history.steps`` (so a bug in the student's record costs record's points, not these).

    Records: ``before`` (w before each update), ``w`` (after the run), ``sizes`` and ``labels``
    (the batches trained on, in order), ``mismatched`` (batches whose X rows are not those of
    their labels), ``asked`` (the steps the schedule was asked for), ``records.t`` and
    ``records.w``, ``learning_rates`` (the history's).
    """
    module = mod(p["module"])
    X, y = a["X"], a["y"]
    T = p["n_updates"]
    net = StepNet(p["w0"], p["num_classes"], T + 2, (T + 2) * p["batch_size"] + len(X))
    asked, rec_t, rec_w = [], [], []

    def schedule(t):
        if len(asked) > 4 * T + 8:
            raise BudgetExceeded("lr_schedule was asked for a rate more than four times per update: stopped there")
        asked.append(_real(t, "the step t given to lr_schedule"))
        return p["eta0"] + p["eta_step"] * float(t)

    def spy(history, net_, data_, t):
        if len(rec_t) > T + 4:
            raise BudgetExceeded("record was called more than n_updates + 4 times: stopped there")
        rec_t.append(_real(t, "the step t given to record"))
        rec_w.append(_real(np.asarray(net_.params["w"]).reshape(-1)[0], "params['w']"))
        history.steps.append(t)

    data = {"X_train": X, "y_train": y, "X_val": X[:2], "y_val": y[:2]}
    original = module.record
    module.record = spy
    try:
        history = getattr(module, p["fn"])(net, data, schedule, T, batch_size=p["batch_size"],
                                           record_every=p["record_every"], seed=p["seed"])
    finally:
        module.record = original
    lrs = getattr(history, "learning_rates", None)
    sizes = [len(v) for v in net.labels]
    return {"before": np.asarray(net.before, dtype=np.float64), "w": snap(net.params.get("w")),
            "sizes": np.asarray(sizes, dtype=np.int64),
            "labels": np.concatenate(net.labels) if net.labels else np.zeros(0, dtype=np.int64),
            "mismatched": net.mismatched, "asked": np.asarray(asked, dtype=np.float64),
            "records": {"t": np.asarray(rec_t, dtype=np.float64), "w": np.asarray(rec_w, dtype=np.float64)},
            "learning_rates": (np.asarray([_real(v, "an entry of history.learning_rates") for v in lrs],
                                          dtype=np.float64) if isinstance(lrs, list) else None)}


def proc_overfit(mod, a, p):
    """The package's own net (``cls(**kwargs)`` of ``module``) trained by its own loop (``loop`` of
    ``loop_module``) on a small set with a constant rate: the trained params come back (the trusted side
    measures them) with the history's training costs. Past ``n_updates + 2`` calls of the net's
    gradients it raises BudgetExceeded."""
    np.random.seed(p["np_seed"])
    net = getattr(mod(p["module"]), p["cls"])(**p["kwargs"])
    data = {"X_train": a["X"], "y_train": a["y"], "X_val": a["X"], "y_val": a["y"]}
    eta = p["eta"]
    gradients, calls = net.gradients, [0]

    def counted(X, y):  # the loop makes n_updates updates: one gradient per update, not forever
        calls[0] += 1
        if calls[0] > p["n_updates"] + 2:
            raise BudgetExceeded(f"more than {p['n_updates']} updates: stopped there (the loop must stop after "
                                 "n_updates updates)")
        return gradients(X, y)

    net.gradients = counted
    history = getattr(mod(p["loop_module"]), p["loop"])(net, data, lambda t: eta, p["n_updates"],
                                                 batch_size=len(a["X"]), record_every=p["n_updates"],
                                                 seed=p["seed"])
    if not isinstance(net.params, dict):
        raise TypeError(f"net.params must stay a dict, got {type(net.params).__name__}")
    return {"params": {k: snap(v) for k, v in net.params.items()},
            "train_cost": _history_lists(history, ("train_cost",))["train_cost"]}


PROCEDURES.update({
    "schedule": proc_schedule,
    "model_methods": proc_model_methods,
    "record": proc_record,
    "minibatch_gd": proc_minibatch_gd,
    "overfit": proc_overfit,
})


# ---------------------------------------------------------------------------
# Procedures of the generalization assignment: functions of dicts of arrays and of models,
# called with trusted models whose answers are known (so a bug elsewhere in the student's
# package costs nothing here). Budgets as above.
# ---------------------------------------------------------------------------
class ParamsModel:
    """A trusted model that is only its ``params`` (for functions that read them, e.g. count_params)."""

    def __init__(self, params):
        self.params = params

    def loss(self, *args, **kwargs):
        raise BudgetExceeded("model.loss was called: this function only needs model.params")


class InputGradModel:
    """A trusted linear softmax classifier that also gives dL/dX.

    ``scores = x W + b`` with x = X flattened to (N, D); ``loss(X, y, input_grad=True)`` returns
    ``(loss, grads, dX)``: the mean cross-entropy, the gradients of W and b, and
    ``dX = dscores W.T`` in X's shape, dscores = (softmax - onehot) / N. ``loss(X)`` gives the
    scores, ``loss(X, y)`` (loss, grads). Counts the calls with input_grad (``input_grad_calls``);
    past ``max_calls`` calls it raises BudgetExceeded.
    """

    def __init__(self, W, b, max_calls):
        self.params = {"W": np.array(W, dtype=np.float64), "b": np.array(b, dtype=np.float64)}
        self.calls = self.input_grad_calls = 0
        self._max_calls = max_calls

    def loss(self, X, y=None, *, grads=True, input_grad=False):
        self.calls += 1
        if self.calls > self._max_calls:
            raise BudgetExceeded(f"model.loss was called more than {self._max_calls} times: stopped there")
        X = np.asarray(X, dtype=np.float64)
        x = X.reshape(len(X), -1)
        W, b = self.params["W"], self.params["b"]
        scores = x @ W + b
        if y is None:
            return scores
        y = np.asarray(y)
        loss, probs = _cross_entropy(scores, y)
        if not grads and not input_grad:
            return loss
        dscores = probs
        dscores[np.arange(len(y)), y] -= 1
        dscores /= len(y)
        out = {"W": x.T @ dscores, "b": dscores.sum(axis=0)}
        if input_grad:
            self.input_grad_calls += 1
            return loss, out, (dscores @ W.T).reshape(X.shape)
        return loss, out


def _argument(a, spec):
    """One argument of ``proc_structured_call`` from its spec (see there)."""
    kind = spec["kind"]
    if kind == "array":
        return a[spec["name"]]
    if kind == "value":
        return spec["value"]
    if kind == "dict":
        return {k: a[f"{spec['prefix']}.{k}"] for k in spec["keys"]}
    if kind == "params_model":
        return ParamsModel({k: a[f"{spec['prefix']}.{k}"] for k in spec["keys"]})
    if kind == "input_grad_model":
        return InputGradModel(a[spec["W"]], a[spec["b"]], spec.get("max_calls", 4))
    raise ValueError(f"unknown argument kind {kind!r}")


def proc_structured_call(mod, a, p):
    """``fn(*args)`` where every argument is an input array, a JSON value, a dict of input arrays or a
    trusted model built from input arrays (``p["args"]``: ``{"kind": "array", "name"}``, ``{"kind": "value",
    "value"}``, ``{"kind": "dict", "prefix", "keys"}`` (arrays ``prefix.key``), ``{"kind": "params_model",
    "prefix", "keys"}`` (a ParamsModel of those arrays) or ``{"kind": "input_grad_model", "W", "b"}``).

    ``p["outputs"]`` names the result (one name) or the items of a tuple of exactly that many; a dict
    result is recorded with its keys. Also records ``aliased``: how many values of a dict result are
    one of the input arrays themselves (a function that must return new arrays returned an input),
    and for an input_grad_model argument ``input_grad_calls``.
    """
    args = [_argument(a, spec) for spec in p["args"]]
    result = _fn(mod, p)(*args)
    names = p["outputs"]
    if len(names) == 1:
        values = {names[0]: result}
    elif isinstance(result, tuple) and len(result) == len(names):
        values = dict(zip(names, result))
    else:
        raise TypeError(f"{p['fn']} must return a tuple of {len(names)} values ({', '.join(names)}), "
                        f"got {type(result).__name__}")
    rec, inputs = {}, [id(v) for v in a.values()]
    aliased = 0
    for name, value in values.items():
        if isinstance(value, dict):
            rec[name] = {str(k): snap(v) for k, v in value.items()}
            aliased += sum(id(v) in inputs for v in value.values())
        else:
            rec[name] = snap(value)
    rec["aliased"] = aliased
    for arg in args:
        if isinstance(arg, InputGradModel):
            rec["input_grad_calls"] = arg.input_grad_calls
    return rec


PROCEDURES.update({
    "structured_call": proc_structured_call,
})


# ---------------------------------------------------------------------------
# The script
# ---------------------------------------------------------------------------
def _on_alarm(signum, frame):
    raise CallTimeout()


def _student_module(name):
    return importlib.import_module("nnkit." + name)


def _error_text(exc, limit=1500):
    """The exception and the innermost frames: enough to locate the bug, short enough for feedback."""
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-4)
    text = "".join(lines)
    return text[-limit:]


class Wire:
    """The runner's private copy of its original stdout, where the frames go."""

    def __init__(self):
        self.fd = os.dup(1)

    def send(self, data):
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]


def _run_call(index, call, store, default_timeout):
    """Run one call on the student's package; return (end-frame header, {output name: array})."""
    arrays = {name: store[key] for name, key in call["arrays"].items()}
    record = {"t": "end", "i": index, "status": "ok", "error": None, "infos": {}, "keys": {}, "mutated": []}
    sent = {}
    timeout = float(call.get("timeout", default_timeout))
    np_state = np.seterr(all="ignore")
    try:
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            outputs, record["mutated"] = run_procedure(call["procedure"], _student_module, arrays, call["params"])
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        flat, record["keys"] = flatten_outputs(outputs)
        for name, value in flat.items():
            record["infos"][name], array = describe(value)
            if array is not None:
                sent[name] = array
    except CallTimeout:
        record.update(status="timeout", error=f"timeout: the call took longer than {timeout} s",
                      infos={}, keys={}, mutated=[])
        sent = {}
    except BaseException as exc:  # noqa: BLE001 - any student failure is a recorded result
        if isinstance(exc, KeyboardInterrupt):
            raise
        record.update(status="raised", error=_error_text(exc), infos={}, keys={}, mutated=[])
        sent = {}
    finally:
        np.seterr(**np_state)
    return record, sent


def main(argv):
    workdir, package_parent, first = argv[1], argv[2], int(argv[3])
    sys.path.insert(0, package_parent)
    # Keep a private copy of stdout for the frames, then send fds 1 and 2 away: student prints
    # must neither reach the stream nor trip the output limit.
    wire = Wire()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    with open(os.path.join(workdir, "plan.json"), encoding="utf-8") as f:
        plan = json.load(f)
    with np.load(os.path.join(workdir, "inputs.npz"), allow_pickle=False) as z:
        store = {k: z[k] for k in z.files}
    signal.signal(signal.SIGALRM, _on_alarm)
    default_timeout = plan.get("timeout", 10.0)
    for index in range(first, len(plan["calls"])):
        wire.send(encode_frame({"t": "begin", "i": index}))
        record, sent = _run_call(index, plan["calls"][index], store, default_timeout)
        for name, array in sent.items():
            wire.send(encode_array(index, name, array))
        wire.send(encode_frame(record))
    wire.send(encode_frame({"t": "done"}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
