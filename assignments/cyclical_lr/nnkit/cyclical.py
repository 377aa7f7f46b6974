"""Mini-batch training with cyclical learning rates, and a search of lam on a log scale.

The pieces of KTH DD2424's second assignment, around ``nnkit.classifiers.kth_net.KTHNet``:

- the data: ``load_splits(stage)`` gives the images as rows, in the two set-ups of the
  assignment ("batch": one batch of CIFAR-10 trains, the next validates; "all": everything
  but 1,000 images trains); ``normalization`` and ``normalize`` standardise every dimension
  with the mean and standard deviation of the training set;
- ``compare_gradients``: an analytic gradient against a numeric one, as the KTH report asks
  (the largest relative error, and the mean and largest absolute difference);
- ``minibatch_gd``: mini-batch gradient descent whose rate comes from a schedule, e.g.
  ``nnkit.optim.cyclical_lr``, recording (``record``) the cost, loss and accuracy of the
  training and validation sets every ``record_every`` updates into a ``History``;
- ``sample_lambdas`` and ``search_lambda``: random search of lam on a log scale, coarse
  first, then finer around the best values (``fine_range``); ``plot_history``.

A *net* here is any object with ``params`` (a dict of arrays) and the methods of ``KTHNet``:
``forward(X) -> (H, P)``, ``cost(X, y) -> (J, L)`` and ``gradients(X, y) -> grads``.
The data is a dict with ``X_train`` (N, D), ``y_train`` (N,), ``X_val``, ``y_val`` (and
``X_test``, ``y_test``).
"""
import math
import sys
import time
from dataclasses import dataclass, field

import numpy as np

__all__ = ["load_splits", "normalization", "normalize", "compare_gradients", "History", "record",
           "epoch_batches", "minibatch_gd", "sample_lambdas", "search_lambda", "fine_range", "plot_history",
           "BATCH_SIZE_OF_A_FILE"]

#: Images in one CIFAR-10 batch file (``data_batch_1`` ...): the "batch" set-up trains on one.
BATCH_SIZE_OF_A_FILE = 10000


# ---------------------------------------------------------------------------
# The data
# ---------------------------------------------------------------------------
def load_splits(stage="batch", name=None):
    """The images as rows, in one of the assignment's two set-ups.

    The images are those of ``nnkit.data_utils.load_dataset(name)`` (the view the grader
    evaluates saved models on: the training mean image subtracted), flattened:

    - ``"batch"``: training = the first 10,000 training images (CIFAR-10's
      ``data_batch_1``), validation = the next 10,000 (``data_batch_2``); a dataset with
      fewer than 20,000 training images (the embedded digits) gives each half of them;
    - ``"all"``: training = every training image but the 1,000 validation ones
      (CIFAR-10: 49,000 and 1,000; embedded: its 1,266 and 178).

    The test images are the dataset's test split in both (CIFAR-10: the first 1,000 of
    ``test_batch``, the grader's test set).

    Parameters
    ----------
    stage : "batch" or "all"
    name : str or None
        The dataset; None means ``nnkit.data_utils.dataset_name()`` (env ``NNKIT_DATASET``).

    Returns
    -------
    dict
        ``X_train`` (N, D), ``y_train`` (N,), ``X_val``, ``y_val``, ``X_test``, ``y_test`` (float64
        rows, int64 labels), ``class_names``, ``stage``.
    """
    from nnkit import data_utils

    if stage not in ("batch", "all"):
        raise ValueError(f"load_splits: stage must be 'batch' or 'all', got {stage!r}.")
    data = data_utils.load_dataset(name)
    flat = {k: data[k].reshape(len(data[k]), -1) for k in ("X_train", "X_val", "X_test")}
    out = {"X_test": flat["X_test"], "y_test": data["y_test"], "class_names": data["class_names"], "stage": stage}
    if stage == "all":
        out.update(X_train=flat["X_train"], y_train=data["y_train"], X_val=flat["X_val"], y_val=data["y_val"])
    else:
        n = len(flat["X_train"])
        half = BATCH_SIZE_OF_A_FILE if n >= 2 * BATCH_SIZE_OF_A_FILE else n // 2
        out.update(X_train=flat["X_train"][:half], y_train=data["y_train"][:half],
                   X_val=flat["X_train"][half:2 * half], y_val=data["y_train"][half:2 * half])
    return out


def normalization(X):
    """The mean and standard deviation of every dimension of a training set.

    Parameters
    ----------
    X : ndarray, (N, D)
        The training inputs, one example per row.

    Returns
    -------
    mean : ndarray, (D,)
        The mean of each column of X.
    std : ndarray, (D,)
        The standard deviation of each column of X (numpy's ``std``, over the N rows), with
        every 0 replaced by 1: a dimension that is the same in every training example (a
        border pixel of the embedded digits) is then centred to 0 and not divided by 0.
    """
    X = _rows(X, "normalization")
    mean = std = None
    # TODO: Compute mean and std, one number per column (per dimension) of X. Replace a
    # standard deviation of 0 by 1.
    raise NotImplementedError("normalization: not implemented yet, see the TODO above")
    return mean, std


def normalize(X, mean, std):
    """Standardise inputs with the training set's statistics: ``(X - mean) / std`` per dimension.

    Parameters
    ----------
    X : ndarray, (N, D)
        Training, validation or test inputs: always normalised with the TRAINING set's mean
        and std (those of ``normalization(X_train)``).
    mean, std : ndarray, (D,)

    Returns
    -------
    ndarray, (N, D)
        A new array; X is left as it was.
    """
    X = _rows(X, "normalize")
    mean, std = np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)
    if mean.shape != (X.shape[1],) or std.shape != (X.shape[1],):
        raise ValueError(f"normalize: mean and std must have shape ({X.shape[1]},), one number per column of X; "
                         f"got {mean.shape} and {std.shape}.")
    Xn = None
    # TODO: Standardise every column of X with its mean and std.
    raise NotImplementedError("normalize: not implemented yet, see the TODO above")
    return Xn


# ---------------------------------------------------------------------------
# Checking gradients
# ---------------------------------------------------------------------------
def compare_gradients(g_analytic, g_numeric, eps=1e-6):
    """How far an analytic gradient is from a numeric one, as the KTH report asks.

    Entry by entry, the relative error ``|ga - gn| / max(eps, |ga| + |gn|)`` (``eps`` keeps it
    finite where both are 0) and the absolute difference ``|ga - gn|``.

    Parameters
    ----------
    g_analytic, g_numeric : ndarray, any shape (the same)
    eps : float

    Returns
    -------
    dict
        ``max_relative``: the largest relative error; ``mean_absolute``: the mean absolute
        difference; ``max_absolute``: the largest absolute difference (floats).
    """
    ga = np.asarray(g_analytic, dtype=np.float64)
    gn = np.asarray(g_numeric, dtype=np.float64)
    if ga.shape != gn.shape or ga.size == 0:
        raise ValueError(f"compare_gradients: the gradients must have the same, non-empty shape; got {ga.shape} "
                         f"and {gn.shape}.")
    errors = None
    # TODO: Compute the three numbers and return them in the dict `errors`.
    raise NotImplementedError("compare_gradients: not implemented yet, see the TODO above")
    return errors


# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------
@dataclass
class History:
    """What ``minibatch_gd`` records.

    Attributes
    ----------
    steps : list of int
        The update step of each record: 0 is before the first update, t after t updates.
    train_cost, train_loss, train_acc : list of float
        The cost J, the loss L and the accuracy on the whole training set, one per record.
    val_cost, val_loss, val_acc : list of float
        The same on the validation set.
    learning_rates : list of float
        The rate of every update, in order (one per update).
    """

    steps: list = field(default_factory=list)
    train_cost: list = field(default_factory=list)
    train_loss: list = field(default_factory=list)
    train_acc: list = field(default_factory=list)
    val_cost: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_acc: list = field(default_factory=list)
    learning_rates: list = field(default_factory=list)

    def __repr__(self):
        if not self.steps:
            return f"History({len(self.learning_rates)} updates, no records)"
        return (f"History({len(self.learning_rates)} updates, {len(self.steps)} records; last, at step "
                f"{self.steps[-1]}: train cost {self.train_cost[-1]:.4f} acc {self.train_acc[-1]:.3f}, "
                f"val cost {self.val_cost[-1]:.4f} acc {self.val_acc[-1]:.3f})")


def record(history, net, data, t):
    """Append one record to ``history``: the state of ``net`` after ``t`` updates.

    For the training set (``data["X_train"], data["y_train"]``) and the validation set
    (``X_val``, ``y_val``), each as a whole: the cost and the loss (``net.cost``) and the
    accuracy, the fraction of examples whose most probable class (``net.forward``) is their
    label. Appends ``t`` to ``history.steps`` and each number to its list
    (``history.train_cost``, ``train_loss``, ``train_acc``, ``val_cost``, ``val_loss``,
    ``val_acc``), as floats.

    Parameters
    ----------
    history : History
    net : a net (see the module docstring)
    data : dict with X_train, y_train, X_val, y_val
    t : int
        Updates done so far.
    """
    # TODO: For both sets: cost and loss from net.cost, the accuracy from the probabilities of
    # net.forward; append them, and t, to the lists of history.
    raise NotImplementedError("record: not implemented yet, see the TODO above")


def epoch_batches(N, batch_size, rng):
    """The minibatches of one epoch: a new random order of the N examples, cut in runs of ``batch_size``.

    Parameters
    ----------
    N : int
    batch_size : int
    rng : np.random.RandomState
        The order is ``rng.permutation(N)``: one draw per epoch.

    Returns
    -------
    list of ndarray of int
        The indices of each batch, in order; together they hold each of 0..N-1 once. The
        last batch is shorter when ``batch_size`` does not divide N.
    """
    order = rng.permutation(N)
    starts = range(0, N, batch_size)
    return [order[s:s + batch_size] for s in starts]


def minibatch_gd(net, data, lr_schedule, n_updates, batch_size=100, record_every=None, seed=None):
    """Mini-batch gradient descent on the cost J, with the rate of a schedule.

    Epoch after epoch, the batches of ``epoch_batches(N, batch_size, rng)`` (a new order each
    epoch, from ``rng = np.random.RandomState(seed)``): for each batch, update number ``t``
    (counted from 0 over the whole run) takes ``eta = lr_schedule(t)`` and sets every
    parameter ``W`` of the net to ``W - eta * dJ/dW`` (``net.gradients`` on that batch). The
    run stops after ``n_updates`` updates, in the middle of an epoch if need be.

    It records (``record``) the state of the net before the first update (step 0), after
    every ``record_every`` updates (steps ``record_every``, ``2 * record_every``, ...), and
    after the last update when ``n_updates`` is not a multiple of ``record_every``; with a
    cyclical rate, ``record_every = 2 * n_s // k`` records k times per cycle. The rate of
    every update goes to ``history.learning_rates``.

    Parameters
    ----------
    net : a net (see the module docstring); its params are updated in place
    data : dict
        ``X_train`` (N, D), ``y_train`` (N,) train; ``X_val``, ``y_val`` are recorded too.
    lr_schedule : callable
        ``lr_schedule(t) -> eta``, e.g. ``lambda t: cyclical_lr(t, 1e-5, 1e-1, n_s)`` or
        ``lambda t: 0.01`` (a constant rate).
    n_updates : int
        The number of updates (``2 * n_s`` per cycle).
    batch_size : int
    record_every : int or None
        None: record only before the first and after the last update.
    seed : int or None
        The seed of the batches' order.

    Returns
    -------
    History
    """
    X, y = data["X_train"], data["y_train"]
    for key, value in (("n_updates", n_updates), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"minibatch_gd: {key} must be a positive integer; got {value!r}.")
    if record_every is None:
        record_every = n_updates
    if isinstance(record_every, bool) or not isinstance(record_every, (int, np.integer)) or record_every < 1:
        raise ValueError(f"minibatch_gd: record_every must be a positive integer or None; got {record_every!r}.")
    if not callable(lr_schedule):
        raise ValueError("minibatch_gd: lr_schedule must be a function t -> learning rate.")
    rng = np.random.RandomState(seed)
    history = History()
    # TODO: Call record(history, net, data, 0); then, epoch by epoch, one update per batch of
    # epoch_batches(len(X), batch_size, rng) with the rate lr_schedule(t) (append it to
    # history.learning_rates), record(history, net, data, t) whenever t (the updates done) is a
    # multiple of record_every, and a stop (with a last record, if not made yet) after n_updates
    # updates.
    raise NotImplementedError("minibatch_gd: not implemented yet, see the TODO above")
    return history


# ---------------------------------------------------------------------------
# Searching lam
# ---------------------------------------------------------------------------
def sample_lambdas(l_min, l_max, n, seed=None):
    """n random values of lam, uniform on a log scale between ``10**l_min`` and ``10**l_max``.

    As the KTH notes do: ``l = l_min + (l_max - l_min) * u`` with ``u`` uniform in [0, 1),
    then ``lam = 10**l``. The n numbers ``u`` are ``rng.rand(n)`` with
    ``rng = np.random.RandomState(seed)`` (``rng.uniform(l_min, l_max, n)`` draws the same ``l``).

    Parameters
    ----------
    l_min, l_max : float
        The range of ``log10(lam)``, l_min < l_max (e.g. -5 and -1).
    n : int
    seed : int or None

    Returns
    -------
    ndarray, (n,)
        The values of lam.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"sample_lambdas: n must be a positive integer; got {n!r}.")
    if not l_min < l_max:
        raise ValueError(f"sample_lambdas: need l_min < l_max (the range of log10(lam)); got {l_min}, {l_max}.")
    rng = np.random.RandomState(seed)
    lams = None
    # TODO: Draw l uniformly in [l_min, l_max), then lam = 10**l.
    raise NotImplementedError("sample_lambdas: not implemented yet, see the TODO above")
    return lams


def search_lambda(data, l_min, l_max, n_values, *, n_s, cycles=2, eta_min=1e-5, eta_max=1e-1, batch_size=100,
                  hidden_dim=50, seed=0, previous=None, progress=True, verbose=False):
    """Train one KTHNet per lam of ``sample_lambdas(l_min, l_max, n_values)``; the results as a table.

    Each net starts from the same weights (``KTHNet(..., seed=seed)``) and trains for
    ``cycles`` cycles of ``cyclical_lr(t, eta_min, eta_max, n_s)`` with ``minibatch_gd`` (the
    same batches for every lam), recording at the end of every cycle.

    Parameters
    ----------
    data : dict
        Normalised ``X_train``, ``y_train``, ``X_val``, ``y_val``.
    l_min, l_max : float
        The range of ``log10(lam)``.
    n_values : int
    n_s : int
        Updates per half cycle (KTH: ``2 * floor(N / batch_size)``).
    cycles, eta_min, eta_max, batch_size, hidden_dim, seed
        As above.
    previous : TuningResults or None
        The results of an earlier round (the coarse search): the table returned holds its
        rows too, this search as its next round.
    progress, verbose : bool
        A progress bar over the values; one printed line per value.

    Returns
    -------
    nnkit.tuning.TuningResults
        One row per lam (``params["lam"]``): ``best_val_acc`` (the best validation accuracy of
        the records, at the end of a cycle), ``train_acc`` and ``loss`` (the training set's
        accuracy and cost after the last update), ``seconds``, ``round``.
    """
    from nnkit.classifiers.kth_net import KTHNet
    from nnkit.optim import cyclical_lr
    from nnkit.tuning import TuningResults

    rows = list(previous.rows) if previous is not None else []
    spaces = list(previous.spaces) if previous is not None else []
    round_ = max((r.get("round", 1) for r in rows), default=0) + 1
    lams = sample_lambdas(l_min, l_max, n_values, seed=seed + round_)
    spaces.append({"lam": ("log", 10.0 ** l_min, 10.0 ** l_max)})
    D, C = data["X_train"].shape[1], int(max(data["y_train"].max(), data["y_val"].max()) + 1)
    best_acc = max((r["best_val_acc"] for r in rows), default=-math.inf)
    best_model = previous.best_model if previous is not None else None

    def schedule(t):
        return cyclical_lr(t, eta_min, eta_max, n_s)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(lams), desc=f"Search, round {round_}", unit="lam", file=sys.stdout)
    try:
        for lam in lams:
            start = time.perf_counter()
            net = KTHNet(D, hidden_dim, C, lam=float(lam), seed=seed)
            with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
                trained = minibatch_gd(net, data, schedule, 2 * n_s * cycles, batch_size=batch_size,
                                       record_every=2 * n_s, seed=seed)
            row = {"trial": len(rows), "round": round_, "params": {"lam": float(lam)},
                   "best_val_acc": float(np.nanmax(trained.val_acc[1:])),
                   "train_acc": float(trained.train_acc[-1]), "loss": float(trained.train_cost[-1]),
                   "seconds": time.perf_counter() - start}
            rows.append(row)
            if row["best_val_acc"] > best_acc:
                best_acc, best_model = row["best_val_acc"], net
            if verbose:
                print(f"lam {lam:.3e} (log10 {math.log10(lam):.2f}): val acc {row['best_val_acc']:.4f}, "
                      f"train acc {row['train_acc']:.4f} ({row['seconds']:.1f} s)")
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return TuningResults(rows, best_model, spaces)


def fine_range(results, top_k=3, margin=0.25, shrink=0.5):
    """The range of log10(lam) for the next, finer round: around the ``top_k`` best values so far.

    ``nnkit.tuning.narrow_space`` on a log scale: the span of the best values, widened by
    ``margin`` of it on each side, at most ``shrink`` times the last round's range.

    Returns
    -------
    (l_min, l_max) : floats
    """
    from nnkit.tuning import narrow_space

    best = results.sorted("best_val_acc").rows[:top_k]
    kind, low, high = narrow_space(results.spaces[-1], best, margin, shrink)["lam"]
    return math.log10(low), math.log10(high)


# ---------------------------------------------------------------------------
# Curves
# ---------------------------------------------------------------------------
def plot_history(history, title=None):
    """Cost, loss and accuracy (training and validation) against the update step, and the rate.

    Returns
    -------
    matplotlib.figure.Figure
        Four panels side by side: cost, loss, accuracy at the records, and the learning rate
        of every update.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(18, 3.8))
    steps = history.steps
    for ax, what in zip(axes, ("cost", "loss", "acc")):
        ax.plot(steps, getattr(history, "train_" + what), "o-", ms=3, label="training")
        ax.plot(steps, getattr(history, "val_" + what), "o-", ms=3, label="validation")
        ax.set_xlabel("update step")
        ax.set_title({"cost": "cost J", "loss": "loss L", "acc": "accuracy"}[what])
        ax.legend()
    axes[3].plot(np.arange(len(history.learning_rates)), history.learning_rates, color="tab:green")
    axes[3].set_xlabel("update step")
    axes[3].set_title("learning rate")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------
# helpers (provided)
# ---------------------------------------------------------------------------
def _rows(X, what):
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or 0 in X.shape:
        raise ValueError(f"{what}: X must be (N, D), one example per row, with N, D >= 1; got shape {X.shape}.")
    return X
