"""Hyperparameter search: grid, random and coarse-to-fine.

Every search trains one model per trial with ``nnkit.solver.Solver`` and
returns a ``TuningResults`` table (one row per trial)::

    def build_model(hidden_dim, reg):
        return TwoLayerNet(hidden_dim=hidden_dim, reg=reg)

    results = random_search(
        build_model, data,
        {"learning_rate": ("log", 1e-4, 1e-2),   # log-uniform
         "reg": ("log", 1e-5, 1e-1),
         "hidden_dim": [50, 100, 200]},          # a choice
        num_trials=20, seed=0,
        solver_kwargs={"num_epochs": 5, "update_rule": "adam"})
    print(results)            # or just `results` in Jupyter
    best = results.best()     # {"params": ..., "best_val_acc": ..., ...}
    model = results.best_model

Which trial parameters go where (the rule every search uses, ``split_params``):

1. a name the ``Solver`` takes (``batch_size``, ``lr_decay``, ``num_epochs``,
   ``update_rule``, ...) is passed to the ``Solver``;
2. an optimizer setting (``learning_rate``, ``momentum``, ``decay_rate``,
   ``beta1``, ``beta2``, ``epsilon``) goes into the Solver's ``optim_config``;
3. every other name is a keyword argument of ``build_model``.

``solver_kwargs`` holds the Solver settings shared by all trials (its
``optim_config`` is merged with the trial's settings, the trial winning).
Trials run quietly (``verbose=False, progress=False``) unless solver_kwargs
says otherwise. With ``seed`` given and no ``seed`` in solver_kwargs, every
trial's Solver gets that same seed: all trials see the same minibatches, so
their differences come from the hyperparameters. With ``seed`` given, numpy's
global generator is also seeded with it right before every ``build_model``
call, so a model that draws its initial weights from it (``TwoLayerNet``)
starts the same in every run: the same seed repeats the whole search.

Sampling specs (``random_search``, ``coarse_to_fine``):

- ``("log", low, high)``: log-uniform float in [low, high] (low > 0);
- ``("uniform", low, high)``: uniform float in [low, high];
- ``("int", low, high)``: uniform integer in [low, high] (both included);
- a list: one of its values, each equally likely;
- anything else: that fixed value.

Floating-point warnings of diverging trials (overflow, invalid values) are
silenced during a search: a diverged trial shows up as a ``nan`` loss.
"""

import html
import itertools
import math
import sys
import time

import numpy as np

from nnkit.solver import Solver

__all__ = [
    "TuningResults", "grid_search", "random_search", "coarse_to_fine",
    "split_params", "sample_params", "SOLVER_KEYS", "OPTIM_KEYS",
]

SOLVER_KEYS = frozenset({
    "update_rule", "optim_config", "lr_decay", "batch_size", "num_epochs",
    "num_train_samples", "num_val_samples", "checkpoint_name", "print_every",
    "verbose", "seed", "progress", "lr_schedule",
})
OPTIM_KEYS = frozenset({"learning_rate", "momentum", "decay_rate", "beta1", "beta2", "epsilon"})
_RANGE_KINDS = ("log", "uniform", "int")
_COLUMNS = ("best_val_acc", "train_acc", "loss", "seconds")


# ------------------------------------------------------------------ results

class TuningResults:
    """The table of a search: one row (a dict) per trial.

    Each row holds ``trial`` (0-based), ``round`` (1 except in
    ``coarse_to_fine``), ``params`` (the trial's hyperparameters),
    ``best_val_acc``, ``train_acc`` (the last train accuracy check),
    ``loss`` (the last minibatch loss) and ``seconds`` (training time).

    Attributes
    ----------
    rows : list of dict
    best_model : object or None
        The model of the best trial (holding its best params).
    spaces : list of dict
        The search space of each round (``coarse_to_fine``; one entry otherwise).
    """

    def __init__(self, rows=(), best_model=None, spaces=()):
        self.rows = list(rows)
        self.best_model = best_model
        self.spaces = list(spaces)

    def __len__(self):
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __getitem__(self, i):
        return self.rows[i]

    def best(self):
        """The row with the highest ``best_val_acc`` (the earliest on ties; nan counts as lowest)."""
        if not self.rows:
            raise ValueError("TuningResults.best: no trials ran.")
        return max(self.rows, key=lambda r: _sort_value(r["best_val_acc"]))

    def sorted(self, by="best_val_acc", descending=True):
        """A new table with the rows sorted by a column or a parameter name.

        Rows without a value (or with nan) go last; ties keep their order.
        """
        if not any(by in r or by in r["params"] for r in self.rows) and self.rows:
            raise ValueError(f"TuningResults.sorted: no column or parameter named {by!r}; "
                             f"columns: {', '.join(('trial', 'round') + _COLUMNS)}, "
                             f"parameters: {', '.join(self._param_names())}.")

        def value(row):
            return row[by] if by in row else row["params"].get(by)

        def missing(v):
            return v is None or (isinstance(v, float) and math.isnan(v))

        present = [r for r in self.rows if not missing(value(r))]
        absent = [r for r in self.rows if missing(value(r))]
        try:
            present.sort(key=value, reverse=descending)
        except TypeError:  # mixed types, e.g. functions as update rules
            present.sort(key=lambda r: _fmt_param(value(r)), reverse=descending)
        return TuningResults(present + absent, self.best_model, self.spaces)

    def _param_names(self):
        names = []
        for row in self.rows:
            for k in row["params"]:
                if k not in names:
                    names.append(k)
        return names

    def _table(self):
        """Header and rows of formatted cells, shared by the text and HTML views."""
        names = self._param_names()
        show_round = any(r.get("round", 1) != 1 for r in self.rows)
        header = ["trial"] + (["round"] if show_round else []) + names + list(_COLUMNS)
        body = []
        for r in self.rows:
            cells = [str(r["trial"])] + ([str(r.get("round", 1))] if show_round else [])
            cells += [_fmt_param(r["params"].get(n, "")) for n in names]
            cells += [f"{r['best_val_acc']:.3f}", f"{r['train_acc']:.3f}",
                      f"{r['loss']:.4g}", f"{r['seconds']:.2f}"]
            body.append(cells)
        return header, body

    def __str__(self):
        if not self.rows:
            return "TuningResults (no trials)"
        header, body = self._table()
        widths = [max(len(h), *(len(row[i]) for row in body)) for i, h in enumerate(header)]
        best = self.best()
        lines = ["  ".join(h.rjust(w) for h, w in zip(header, widths)),
                 "  ".join("-" * w for w in widths)]
        for r, cells in zip(self.rows, body):
            mark = " *" if r is best else ""
            lines.append("  ".join(c.rjust(w) for c, w in zip(cells, widths)) + mark)
        lines.append(f"best (*): trial {best['trial']}, val acc {best['best_val_acc']:.3f}")
        return "\n".join(lines)

    def __repr__(self):
        return f"<TuningResults: {len(self.rows)} trials>\n{self}"

    def _repr_html_(self):
        if not self.rows:
            return "<p>TuningResults (no trials)</p>"
        header, body = self._table()
        best = self.best()
        out = ["<table>", "<thead><tr>"]
        out += [f"<th>{html.escape(h)}</th>" for h in header]
        out.append("</tr></thead><tbody>")
        for r, cells in zip(self.rows, body):
            style = ' style="font-weight:bold"' if r is best else ""
            out.append(f"<tr{style}>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells)
                       + "</tr>")
        out.append("</tbody></table>")
        return "".join(out)


def _sort_value(x):
    return -math.inf if x is None or (isinstance(x, float) and math.isnan(x)) else x


def _fmt_param(v):
    if isinstance(v, float):
        return f"{v:.3g}" if 1e-3 <= abs(v) < 1e4 or v == 0 else f"{v:.2e}"
    return getattr(v, "__name__", None) or str(v)


# --------------------------------------------------------- params and specs

def split_params(params):
    """Split a trial's parameters into model and Solver keyword arguments.

    Parameters
    ----------
    params : dict
        Name -> value of one trial.

    Returns
    -------
    model_kwargs : dict
        For ``build_model(**model_kwargs)``: every name that is not a Solver
        argument or an optimizer setting.
    solver_kwargs : dict
        Solver arguments; optimizer settings are gathered in
        ``solver_kwargs["optim_config"]``.
    """
    model_kwargs, solver_kwargs, optim = {}, {}, {}
    for name, value in params.items():
        if name in OPTIM_KEYS:
            optim[name] = value
        elif name == "optim_config":
            optim.update(value)
        elif name in SOLVER_KEYS:
            solver_kwargs[name] = value
        else:
            model_kwargs[name] = value
    if optim:
        solver_kwargs["optim_config"] = optim
    return model_kwargs, solver_kwargs


def _as_python(v):
    return v.item() if isinstance(v, np.generic) else v


def _parse_spec(name, spec):
    """-> ("range", kind, low, high) | ("choice", values) | ("fixed", value)."""
    if isinstance(spec, tuple):
        if len(spec) == 3 and isinstance(spec[0], str) and spec[0] in _RANGE_KINDS:
            kind, low, high = spec
            if not (np.isscalar(low) and np.isscalar(high)) or not low <= high:
                raise ValueError(f"{name}: range {spec!r} needs numbers low <= high.")
            if kind == "log" and low <= 0:
                raise ValueError(f"{name}: a log range needs low > 0, got {spec!r}.")
            if kind == "int" and (int(low) != low or int(high) != high):
                raise ValueError(f"{name}: an int range needs integer bounds, got {spec!r}.")
            return ("range", kind, low, high)
        raise ValueError(
            f"{name}: {spec!r} is not a sampling spec; use ('log', low, high), "
            "('uniform', low, high), ('int', low, high), or a LIST of choices."
        )
    if isinstance(spec, np.ndarray) and spec.ndim == 1:
        spec = [_as_python(v) for v in spec]
    if isinstance(spec, list):
        if not spec:
            raise ValueError(f"{name}: the list of choices is empty.")
        return ("choice", list(spec))
    return ("fixed", spec)


def sample_params(param_space, rng):
    """Draw one trial's parameters from a search space (see the module docstring).

    Parameters
    ----------
    param_space : dict
        Name -> sampling spec.
    rng : np.random.RandomState

    Returns
    -------
    params : dict
        Name -> a Python value.
    """
    params = {}
    for name, spec in param_space.items():
        parsed = _parse_spec(name, spec)
        if parsed[0] == "range":
            _, kind, low, high = parsed
            if kind == "log":
                value = float(10 ** rng.uniform(np.log10(low), np.log10(high)))
                value = min(max(value, low), high)  # guard against rounding at the ends
            elif kind == "uniform":
                value = float(rng.uniform(low, high))
            else:
                value = int(rng.randint(int(low), int(high) + 1))
        elif parsed[0] == "choice":
            value = _as_python(parsed[1][rng.randint(len(parsed[1]))])
        else:
            value = parsed[1]
        params[name] = value
    return params


# ------------------------------------------------------------------- trials

class _Runner:
    """Runs trials and keeps the rows and the best model."""

    def __init__(self, build_model, data, solver_kwargs, seed, verbose):
        if not callable(build_model):
            raise ValueError("build_model must be a function params -> model.")
        self.build_model = build_model
        self.data = data
        self.base = dict(solver_kwargs or {})
        unknown = set(self.base) - SOLVER_KEYS
        if unknown:
            raise ValueError(f"solver_kwargs has names the Solver does not take: "
                             f"{', '.join(sorted(unknown))}.")
        self.seed = seed
        self.verbose = verbose
        self.rows = []
        self.best_model = None
        self._best_acc = -math.inf

    def run(self, params, round_=1):
        model_kwargs, trial_kwargs = split_params(params)
        kwargs = {"verbose": False, "progress": False}
        kwargs.update(self.base)
        optim_config = dict(self.base.get("optim_config") or {})
        optim_config.update(trial_kwargs.pop("optim_config", {}))
        kwargs.update(trial_kwargs)
        kwargs["optim_config"] = optim_config
        if self.seed is not None and "seed" not in kwargs:
            kwargs["seed"] = self.seed

        if self.seed is not None:
            np.random.seed(self.seed)  # the initial weights of models drawn from the global generator
        model = self.build_model(**model_kwargs)
        start = time.perf_counter()
        # Diverging trials are expected in a search: no warnings, a nan loss instead.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            solver = Solver(model, self.data, **kwargs)
            solver.train()
        seconds = time.perf_counter() - start

        row = {
            "trial": len(self.rows),
            "round": round_,
            "params": dict(params),
            "best_val_acc": float(solver.best_val_acc),
            "train_acc": float(solver.train_acc_history[-1]) if solver.train_acc_history else math.nan,
            "loss": float(solver.loss_history[-1]) if solver.loss_history else math.nan,
            "seconds": seconds,
        }
        self.rows.append(row)
        if _sort_value(row["best_val_acc"]) > self._best_acc:
            self._best_acc = _sort_value(row["best_val_acc"])
            self.best_model = model
        if self.verbose:
            shown = ", ".join(f"{k}={_fmt_param(v)}" for k, v in params.items())
            print(f"trial {row['trial']}: {shown}: val acc {row['best_val_acc']:.3f}, "
                  f"train acc {row['train_acc']:.3f}, loss {row['loss']:.4g} "
                  f"({seconds:.1f} s)")
        return row

    def results(self, spaces):
        return TuningResults(self.rows, self.best_model, spaces)


def _bar(total, progress, desc):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="trial", file=sys.stdout)


def _tick(bar, runner):
    if bar is not None:
        bar.update(1)
        bar.set_postfix(best_val_acc=f"{max(0.0, runner._best_acc):.3f}", refresh=False)


# ------------------------------------------------------------------ searches

def grid_search(build_model, data, param_grid, solver_kwargs=None, *, seed=None,
                progress=True, verbose=False):
    """Train one model for every combination of the given values.

    Parameters
    ----------
    build_model : callable
        ``build_model(**model_kwargs) -> model`` (see ``split_params``).
    data : dict
        ``X_train, y_train, X_val, y_val`` as for the Solver.
    param_grid : dict
        Name -> list of values (a single non-list value is fixed). Combinations
        run in the order of ``itertools.product`` over the dict's order.
    solver_kwargs : dict or None
        Solver settings shared by all trials.
    seed : int or None
        Solver seed of every trial (unless solver_kwargs has one).
    progress : bool
        A progress bar over trials.
    verbose : bool
        Print one line per trial.

    Returns
    -------
    TuningResults
    """
    names, values = [], []
    for name, spec in param_grid.items():
        parsed = _parse_spec(name, spec)
        if parsed[0] == "range":
            raise ValueError(f"grid_search: {name} is a range {spec!r}; a grid needs a list "
                             "of values (e.g. np.logspace(-4, -2, 3)), or use random_search.")
        names.append(name)
        values.append(parsed[1] if parsed[0] == "choice" else [parsed[1]])
    runner = _Runner(build_model, data, solver_kwargs, seed, verbose)
    combos = list(itertools.product(*values))
    bar = _bar(len(combos), progress, "Grid search")
    try:
        for combo in combos:
            runner.run(dict(zip(names, combo)))
            _tick(bar, runner)
    finally:
        if bar is not None:
            bar.close()
    return runner.results([dict(param_grid)])


def random_search(build_model, data, param_space, num_trials, seed=None, solver_kwargs=None,
                  *, progress=True, verbose=False):
    """Train ``num_trials`` models with parameters drawn from ``param_space``.

    Parameters
    ----------
    build_model : callable
        ``build_model(**model_kwargs) -> model`` (see ``split_params``).
    data : dict
        ``X_train, y_train, X_val, y_val`` as for the Solver.
    param_space : dict
        Name -> sampling spec, e.g. ``{"learning_rate": ("log", 1e-4, 1e-2),
        "hidden_dim": [50, 100]}`` (see the module docstring).
    num_trials : int
    seed : int or None
        Seeds the sampling, numpy's global generator before each
        ``build_model`` call, and the Solver of every trial (unless
        solver_kwargs has a seed): the same seed repeats the search.
    solver_kwargs : dict or None
        Solver settings shared by all trials.
    progress, verbose : bool
        A progress bar over trials; one printed line per trial.

    Returns
    -------
    TuningResults
    """
    if not isinstance(num_trials, (int, np.integer)) or num_trials < 1:
        raise ValueError(f"random_search: num_trials must be a positive int, got {num_trials!r}.")
    for name, spec in param_space.items():
        _parse_spec(name, spec)  # fail before any training
    rng = np.random.RandomState(seed)
    runner = _Runner(build_model, data, solver_kwargs, seed, verbose)
    bar = _bar(num_trials, progress, "Random search")
    try:
        for _ in range(num_trials):
            runner.run(sample_params(param_space, rng))
            _tick(bar, runner)
    finally:
        if bar is not None:
            bar.close()
    return runner.results([dict(param_space)])


def _to_scale(kind, x):
    return math.log10(x) if kind == "log" else x


def _from_scale(kind, u):
    return 10 ** u if kind == "log" else u


def narrow_space(param_space, top_rows, margin=0.25, shrink=0.5):
    """The search space of the next coarse-to-fine round.

    For a range: the span of the top trials' values, padded on each side by
    ``margin`` times that span (in log10 units for log ranges), kept inside
    the old range; if that is wider than ``shrink`` times the old width, a
    window of that width centred on the best trial's value instead (shifted
    to stay inside the old range). A single top trial gets the window too.
    An ``int`` range is then rounded outwards to integers. A list keeps the
    choices the top trials used (in their original order). Fixed values stay.

    Parameters
    ----------
    param_space : dict
        The current space.
    top_rows : list of dict
        The best rows of the round, best first (rows of ``TuningResults``).
    margin, shrink : float

    Returns
    -------
    dict
        The narrowed space.
    """
    if not top_rows:
        raise ValueError("narrow_space: no trials to narrow around.")
    new = {}
    for name, spec in param_space.items():
        parsed = _parse_spec(name, spec)
        if parsed[0] == "choice":
            used = [r["params"][name] for r in top_rows]
            new[name] = [v for v in parsed[1] if v in used]
            continue
        if parsed[0] == "fixed":
            new[name] = spec
            continue
        _, kind, low, high = parsed
        lo_s, hi_s = _to_scale(kind, low), _to_scale(kind, high)
        vals = [_to_scale(kind, r["params"][name]) for r in top_rows]
        best = vals[0]
        span = max(vals) - min(vals)
        a, b = min(vals) - margin * span, max(vals) + margin * span
        a, b = max(a, lo_s), min(b, hi_s)
        limit = shrink * (hi_s - lo_s)
        if span == 0 or b - a > limit:
            a, b = best - limit / 2, best + limit / 2
            if a < lo_s:
                a, b = lo_s, lo_s + limit
            if b > hi_s:
                a, b = hi_s - limit, hi_s
        new_low, new_high = _from_scale(kind, a), _from_scale(kind, b)
        if kind == "int":
            new_low, new_high = int(math.floor(new_low + 1e-9)), int(math.ceil(new_high - 1e-9))
        else:
            # Exact ends of the old range, not their 10**log10 round trip.
            new_low = low if a == lo_s else new_low
            new_high = high if b == hi_s else new_high
        new[name] = (kind, new_low, new_high)
    return new


def coarse_to_fine(build_model, data, param_space, num_trials=10, num_rounds=3, top_k=3,
                   seed=None, solver_kwargs=None, *, margin=0.25, shrink=0.5,
                   progress=True, verbose=False):
    """Random search over a few rounds, narrowing the ranges around the best trials.

    Round 1 samples ``param_space``; each next round samples the space given
    by ``narrow_space`` around the ``top_k`` best trials so far (all rounds
    together). Typical use: a short ``num_epochs`` in solver_kwargs, then
    train the best setting longer.

    Parameters
    ----------
    build_model, data, solver_kwargs
        As for ``random_search``.
    param_space : dict
        Name -> sampling spec of round 1.
    num_trials : int
        Trials per round.
    num_rounds : int
    top_k : int
        How many of the best trials the next range covers.
    seed : int or None
        Seeds the sampling and the Solvers: the same seed repeats the search.
    margin, shrink : float
        See ``narrow_space``.
    progress, verbose : bool

    Returns
    -------
    TuningResults
        All trials, with their ``round``; ``spaces`` holds each round's space.
    """
    for name, value in (("num_trials", num_trials), ("num_rounds", num_rounds), ("top_k", top_k)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"coarse_to_fine: {name} must be a positive int, got {value!r}.")
    if not 0 < shrink < 1:
        raise ValueError(f"coarse_to_fine: shrink must be in (0, 1), got {shrink!r}.")
    for name, spec in param_space.items():
        _parse_spec(name, spec)
    rng = np.random.RandomState(seed)
    runner = _Runner(build_model, data, solver_kwargs, seed, verbose)
    spaces = [dict(param_space)]
    bar = _bar(num_trials * num_rounds, progress, "Coarse to fine")
    try:
        for round_ in range(1, num_rounds + 1):
            if round_ > 1:
                ranked = TuningResults(runner.rows).sorted("best_val_acc").rows
                spaces.append(narrow_space(spaces[-1], ranked[:top_k], margin, shrink))
            if verbose:
                print(f"round {round_}: " + ", ".join(
                    f"{k}={v!r}" for k, v in spaces[-1].items()))
            for _ in range(num_trials):
                runner.run(sample_params(spaces[-1], rng), round_)
                _tick(bar, runner)
    finally:
        if bar is not None:
            bar.close()
    return runner.results(spaces)
