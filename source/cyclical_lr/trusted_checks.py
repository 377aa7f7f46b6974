"""The trusted checks of the cyclical_lr assignment: the calls to make and how to judge them.

The spec the engine (autograder/trusted, see its spec.py) runs: ``build_plan(plan)`` draws
every input from the plan's seed and adds the calls (run once on the reference, once
sandboxed on the student's package) and the checks; ``MODELS`` says how the saved models are
scored. Each check belongs to one nbgrader ``grade_id`` (a ``test_*`` cell of the notebooks)
and has a weight; the points of a grade id (the manifest's ``[points]``) are shared among its
checks in proportion to their weights.

Every function graded here is one the manifest's ``[package]`` lists and is named in the
visible part of that grade id's check cell. What a function must do is judged the way its
docstring defines it:

- the pure functions (``normalization``, ``normalize``, ``compare_gradients``, ``KTHNet``'s
  ``forward``, ``cost`` and ``gradients``, ``cyclical_lr``) against the reference on random
  inputs (the net's params given, so that its initialisation does not matter there);
  ``normalization`` also accepts the sample standard deviation (MATLAB's ``std``, N - 1);
- ``KTHNet.__init__``: the statistics of the draws (each layer's own ``1/sqrt(d)``), zero
  biases, and the documented draws of ``RandomState(seed)`` / numpy's global generator;
- ``record`` and ``minibatch_gd`` on trusted nets of the runner (``KnownNet``, ``StepNet``)
  whose answers are known, so that a bug in the student's net costs the net's points only:
  the recorded numbers from their definitions; the loop's batches (``epoch_batches`` of
  ``RandomState(seed)``, epoch after epoch, stopped after ``n_updates``), the rate of every
  update (``lr_schedule(t)``, t from 0), the steps it records at; during the loop the student's
  ``record`` is replaced by a trusted one, so a bug there costs ``record``'s points only;
- the overfit sanity check: the student's own net and loop on a small random set, the trained
  params measured here with an independent forward pass;
- ``sample_lambdas``: the documented draws, the range, the log-uniform statistics of many draws
  and the same values for the same seed.

Conventions: the cost is the mean cross-entropy plus ``lam * (sum(W1**2) + sum(W2**2))``
(no 0.5, biases not penalised); rows are examples.
"""
from __future__ import annotations

import numpy as np

from autograder.trusted.compare import (
    Fail,
    any_of,
    dict_arrays,
    property_verifier,
    received_array,
    received_number,
    same_array,
    same_keys,
    same_scalar,
    unchanged_inputs,
)
from autograder.trusted.plan import Plan
from autograder.trusted.spec import ModelCheck

#: Saved models -> how the grader scores them on its own split (autograder/trusted/models.py).
#: save_model writes a TwoLayerNet file for the images as load_dataset gives them ("images"). The net
#: of notebook 02 trains and validates on the first two batches (load_splits("batch")), so only the
#: test split is its held-out set; the final net validates on the dataset's validation split.
MODELS = {
    "models/cyclical_net.npz": ModelCheck("test_cyclical_accuracy", ("TwoLayerNet",), "images",
                                          (("cyclical_test", "test"),)),
    "models/final_net.npz": ModelCheck("test_final_accuracy", ("TwoLayerNet",), "images",
                                       (("final_val", "val"), ("final_test", "test"))),
}

NET = {"module": "classifiers.kth_net", "cls": "KTHNet"}
CY = {"module": "cyclical"}


# ---------------------------------------------------------------------------
# Helpers for verifiers written against a definition
# ---------------------------------------------------------------------------
def _floats(got, name, what=""):
    array = received_array(got, name, what)
    if array.dtype.kind not in "iuf":
        raise Fail(f"{what}`{name}` must hold numbers, got dtype {array.dtype}")
    return array.astype(np.float64)


def _show(values, limit=10, digits=6):
    values = np.asarray(values, dtype=np.float64).ravel()
    shown = [float(np.round(v, digits)) for v in values[:limit]]
    return str(shown)[:-1] + (", ...]" if len(values) > limit else "]")


def _softmax_rows(S):
    S = S - S.max(axis=1, keepdims=True)
    P = np.exp(S)
    return P / P.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------------------
# 01: normalization, normalize
# ---------------------------------------------------------------------------
def _normalization(P: Plan):
    grade = "test_normalize"
    N, D = P.dims(6, 12, 1) + P.dims(5, 9, 1)
    # Columns of very different means and scales (a per-column statistic shows), two constant ones.
    X = P.randn(N, D) * P.rng.uniform(0.5, 20.0, size=D) + P.rng.uniform(-50, 50, size=D)
    constant = P.rng.choice(D, size=2, replace=False)
    X[:, constant] = P.rng.uniform(-3, 3, size=2)
    c = P.call("normalization", "call", dict(CY, fn="normalization", args=["X"], outputs=["mean", "std"]), X=X)
    P.check("normalization.mean", grade, c,
            same_array("mean", tol=1e-10, hint="the mean of every column (dimension) of X: X.mean(axis=0), shape (D,)",
                       shape_hint="one mean per column of X: X.mean(axis=0)"),
            unchanged_inputs("compute new arrays; do not centre or scale X in place"))
    P.check("normalization.std", grade, c,
            any_of(same_array("std", tol=1e-10, hint="the standard deviation of every column, X.std(axis=0), with "
                              "each 0 replaced by 1 (a constant column is then centred, not divided by 0)",
                              shape_hint="one std per column of X: X.std(axis=0)"),
                   same_array("std", tol=1e-10, ref_name="std_ddof1"),
                   explain="the sample std (ddof=1, MATLAB's std) is accepted too"), weight=2)

    # normalize: given statistics that are NOT the set's own (a validation set normalised with the
    # training set's mean and std), some of them below 1.
    M = P.dims(4, 9, 1)[0]
    X2 = P.randn(M, D, scale=5.0) + 3.0
    mean = P.randn(D, scale=2.0)
    std = P.rng.uniform(0.2, 4.0, size=D)
    c = P.call("normalize", "call", dict(CY, fn="normalize", args=["X", "mean", "std"], outputs=["Xn"]),
               X=X2, mean=mean, std=std)
    P.check("normalize.values", grade, c,
            same_array("Xn", tol=1e-10, hint="(X - mean) / std, with the mean and std given (the training set's), "
                       "not X's own"),
            unchanged_inputs("return a new array: (X - mean) / std; do not change X in place"), weight=2)


def add_variant_references(call, outcome):
    """The accepted variant of normalization: the sample standard deviation (ddof=1), zeros replaced by 1."""
    if call.id == "normalization" and outcome.status == "ok":
        std = np.asarray(call.arrays["X"], dtype=np.float64).std(axis=0, ddof=1)
        std[std == 0] = 1.0
        outcome.arrays["std_ddof1"] = std


# ---------------------------------------------------------------------------
# 01: KTHNet
# ---------------------------------------------------------------------------
def _init_stats(D, m):
    """W1 ~ N(0, 1/D), W2 ~ N(0, 1/m) (each layer its own scale), biases exactly 0, the right shapes."""
    def check(ref, got):
        problem = same_keys("params", hint="name the parameters W1, b1, W2, b2")(ref, got) \
            or dict_arrays("params", shapes_only=True)(ref, got)
        if problem:
            raise Fail(problem)
        for key, d in (("W1", D), ("W2", m)):
            g = got.arrays[f"params.{key}"]
            std, mean, n = float(np.std(g)), float(np.mean(g)), g.size
            want = 1 / np.sqrt(d)
            # Five standard errors of the sample std and mean of n normal draws: a correct init fails
            # about once in a million; 1/d, sqrt(2/d) or another layer's scale never passes.
            if abs(std / want - 1) > 5 / np.sqrt(2 * n) or abs(mean) > 5 / np.sqrt(n) * want:
                raise Fail(f"`params.{key}` has mean {mean:.3g} and std {std:.4g}; expected mean 0 and std "
                            f"1/sqrt({d}) = {want:.4g}, {d} the number of inputs of this layer. Likely cause: "
                            + ("the same scale for both layers (W2's inputs are the m hidden units), "
                               if key == "W2" else "")
                            + "1/d (the variance) instead of 1/sqrt(d) (the standard deviation)")
        for key in ("b1", "b2"):
            g = got.arrays[f"params.{key}"]
            if np.any(g != 0):
                raise Fail(f"`params.{key}` must start at exactly 0, got max |b| = {np.max(np.abs(g)):.3g}")
    return property_verifier(check)


def _kth_init(P: Plan):
    grade = "test_init"
    for tag, seed in (("seeded", int(P.rng.integers(0, 2**31 - 1))), ("global", None)):
        D, m, C = int(P.rng.integers(150, 260)), int(P.rng.integers(50, 90)), int(P.rng.integers(5, 11))
        kw = dict(input_dim=D, hidden_dim=m, num_classes=C, lam=float(P.rng.uniform(0, 0.1)), seed=seed)
        c = P.call(f"kth_init.{tag}", "net_init", dict(NET, kwargs=kw, np_seed=P.np_seed))
        if tag == "seeded":
            P.check("kth_init.statistics", grade, c, _init_stats(D, m), weight=2)
        how = ("rng = np.random.RandomState(seed)" if seed is not None
               else "numpy's global generator (rng = np.random when seed is None)")
        P.check(f"kth_init.same_draws_{tag}", grade, c,
                dict_arrays("params", tol=1e-12, hint=f"draw W1 then W2 from the rng given ({how}) as "
                            "rng.randn(rows, columns) / sqrt(d), d the layer's number of inputs; biases zeros"),
                weight=0.5)


def _kth_methods(P: Plan):
    N, m, C = P.dims(4, 8, 1) + P.dims(4, 9, 1) + P.dims(3, 6, 1)
    d = P.dims(2, 4, 2)
    D = int(np.prod(d))
    params = {"W1": P.randn(D, m, scale=0.8), "b1": P.randn(m, scale=0.5),
              "W2": P.randn(m, C, scale=0.8), "b2": P.randn(C, scale=0.5)}
    y = P.rng.integers(0, C, size=N)
    methods = [["forward", ["X"], ["H", "P"]], ["cost", ["X", "y"], ["J", "L"]], ["gradients", ["X", "y"], ["grads"]]]
    cases = (("nolam", 0.0, P.randn(N, D)), ("lam", float(P.rng.uniform(0.2, 1.5)), P.randn(N, D)),
             ("images", float(P.rng.uniform(0.05, 0.5)), P.randn(N, *d)))
    for tag, lam, X in cases:
        kw = dict(input_dim=D, hidden_dim=m, num_classes=C, lam=lam, seed=0)
        c = P.call(f"kth.{tag}", "model_methods", dict(NET, kwargs=kw, params=sorted(params), np_seed=P.np_seed,
                                                       methods=methods),
                   X=X, y=y, **{"param." + k: v for k, v in params.items()})
        if tag != "lam":
            P.check(f"kth.forward_{tag}", "test_cost", c,
                    same_array("H", hint="H = max(0, X W1 + b1) with X as rows (N, D); the ReLU is applied to the "
                               "pre-activations, not to X"),
                    same_array("P", hint="P = softmax(H W2 + b2), each ROW normalised to sum 1 (axis=1)"),
                    unchanged_inputs("compute new arrays; do not change X"))
        P.check(f"kth.loss_{tag}", "test_cost", c,
                same_scalar("L", hint="L = the mean over the N examples of -log P[i, y_i], without the penalty"))
        P.check(f"kth.cost_{tag}", "test_cost", c,
                same_scalar("J", hint="J = L + lam * (sum(W1**2) + sum(W2**2)): no 0.5 (KTH's convention), the "
                            "biases not penalised"), weight=2 if tag == "lam" else 1)
        P.check(f"kth.gradients_{tag}", "test_gradients", c,
                dict_arrays("grads", tol=1e-7, hint="with G = (P - Y) / N: dW2 = H.T G + 2 lam W2, db2 = G summed "
                            "over the examples, then G = (G W2.T) * (H > 0), dW1 = X.T G + 2 lam W1, db1 = G summed; "
                            "the penalty's gradient is 2 * lam * W (not lam * W)"), weight=2 if tag == "lam" else 1)

    # Scores of a thousand: the probabilities must still be finite (no overflow in exp).
    big = {"W1": params["W1"] * 30.0, "b1": params["b1"], "W2": params["W2"] * 30.0, "b2": params["b2"]}
    kw = dict(input_dim=D, hidden_dim=m, num_classes=C, lam=0.0, seed=0)
    X = P.randn(N, D, scale=3.0)
    c = P.call("kth.large_scores", "model_methods", dict(NET, kwargs=kw, params=sorted(big), np_seed=P.np_seed,
                                                         methods=methods[:1]),
               X=X, **{"param." + k: v for k, v in big.items()})
    P.check("kth.forward_large_scores", "test_cost", c,
            same_array("P", tol=1e-7, hint="subtract each row's largest score before exp(): exp of a large score "
                       "overflows to inf, and inf / inf is nan"))


# ---------------------------------------------------------------------------
# 01: compare_gradients
# ---------------------------------------------------------------------------
def _compare_gradients(P: Plan):
    grade = "test_compare_gradients"
    shape = tuple(P.dims(2, 5, 2))
    ga = P.randn(*shape)
    gn = ga + P.randn(*shape, scale=1e-3)
    c = P.call("compare.random", "call", dict(CY, fn="compare_gradients", args=["ga", "gn"], outputs=["errors"]),
               ga=ga, gn=gn)
    hint = ("relative = |ga - gn| / max(eps, |ga| + |gn|) entry by entry (np.maximum, not max); max_relative its "
            "largest entry; mean_absolute and max_absolute the mean and the largest |ga - gn|")
    P.check("compare_gradients.random", grade, c, dict_arrays("errors", tol=1e-10, hint=hint),
            unchanged_inputs("compute with new arrays; do not change the gradients"), weight=2)
    # Entries that are 0 in both gradients, and tiny ones: eps decides there.
    ga = P.randn(*shape, scale=1e-7)
    gn = ga + P.randn(*shape, scale=1e-8)
    ga.flat[0] = gn.flat[0] = 0.0
    eps = float(P.rng.choice([1e-6, 1e-5]))
    c = P.call("compare.tiny", "call", dict(CY, fn="compare_gradients", args=["ga", "gn"], outputs=["errors"],
                                            kwargs={"eps": eps}), ga=ga, gn=gn)
    P.check("compare_gradients.tiny_entries", grade, c,
            dict_arrays("errors", tol=1e-10, hint="divide by max(eps, |ga| + |gn|) with the eps given: where both "
                        "gradients are (nearly) 0 the denominator is eps, so the error stays finite and small"))


# ---------------------------------------------------------------------------
# 01: record
# ---------------------------------------------------------------------------
def _record(P: Plan):
    grade = "test_record"
    C = int(P.rng.integers(3, 7))
    N, M = P.dims(5, 12, 1) + P.dims(3, 8, 1)
    D = C + int(P.rng.integers(0, 4))
    X_train, X_val = P.rng.uniform(0, 1, size=(N, D)), P.rng.uniform(0, 1, size=(M, D)) + 0.5
    y_train, y_val = P.rng.integers(0, C, size=N), P.rng.integers(0, C, size=M)
    steps = sorted(int(s) for s in P.rng.choice(np.arange(1, 500), size=2, replace=False))
    steps = [0] + steps
    c = P.call("record", "record", dict(CY, fn="record", steps=steps, num_classes=C),
               X_train=X_train, y_train=y_train, X_val=X_val, y_val=y_val)

    def known(X, y):
        mean = float(np.mean(X))
        return 1.0 + 2.0 * mean, mean, float(np.mean(np.argmax(X[:, :C], axis=1) == y))

    tr, va = known(X_train, y_train), known(X_val, y_val)
    k = len(steps)
    expected = {"steps": steps, "train_cost": [tr[0]] * k, "train_loss": [tr[1]] * k, "train_acc": [tr[2]] * k,
                "val_cost": [va[0]] * k, "val_loss": [va[1]] * k, "val_acc": [va[2]] * k}
    hints = {
        "steps": "append t, the updates done, to history.steps once per call",
        "train_cost": "the cost J = net.cost(X_train, y_train)[0] of the WHOLE training set (cost returns (J, L))",
        "train_loss": "the loss L = net.cost(X_train, y_train)[1] of the whole training set",
        "train_acc": "the fraction of training examples whose most probable class, argmax of P = "
                     "net.forward(X)[1] along axis 1, is their label",
        "val_cost": "the same on the validation set, data['X_val'] and data['y_val']",
        "val_loss": "the same on the validation set",
        "val_acc": "the same on the validation set",
    }

    def lists(names):
        def check(ref, got):
            for name in names:
                values = _floats(got, f"history.{name}", "record: ")
                want = np.asarray(expected[name], dtype=np.float64)
                if values.shape != want.shape:
                    raise Fail(f"after {k} calls of record, history.{name} holds {len(values)} values, expected {k} "
                                f"(one per call: append, do not replace)")
                if not np.allclose(values, want, rtol=1e-9, atol=1e-12):
                    swapped = {"train_cost": "train_loss", "train_loss": "train_cost", "val_cost": "val_loss",
                               "val_loss": "val_cost"}.get(name)
                    why = hints[name]
                    if swapped and np.allclose(values, expected[swapped], rtol=1e-9):
                        why = "cost and loss are swapped: net.cost returns (J, L), J the cost with the penalty"
                    elif name.startswith("val") and np.allclose(values, expected["train" + name[3:]], rtol=1e-9):
                        why = "these are the training set's numbers: measure data['X_val'], data['y_val']"
                    raise Fail(f"history.{name} is {_show(values)}, expected {_show(want)}. Likely cause: {why}")
        return property_verifier(check)

    P.check("record.steps", grade, c, lists(["steps"]), weight=0.5)
    P.check("record.cost_and_loss", grade, c, lists(["train_cost", "train_loss", "val_cost", "val_loss"]),
            weight=1.5)
    P.check("record.accuracy", grade, c, lists(["train_acc", "val_acc"]))


# ---------------------------------------------------------------------------
# 01: minibatch_gd
# ---------------------------------------------------------------------------
def _minibatch_gd(P: Plan):
    grade = "test_minibatch_gd"
    while True:
        N, B = P.dims(11, 29, 1)[0], P.dims(3, 7, 1)[0]
        if N % B:
            break
    per_epoch = -(-N // B)
    T = per_epoch * 2 + int(P.rng.integers(1, per_epoch))  # stops in the middle of the third epoch
    r = int(P.rng.integers(2, 5))
    if T % r == 0:
        T += 1
    seed, w0 = int(P.rng.integers(1, 2**31 - 1)), float(P.rng.uniform(-1, 1))
    eta0, eta_step = float(P.rng.uniform(0.01, 0.05)), float(P.rng.uniform(1e-3, 5e-3))
    X = np.arange(N, dtype=np.float64)[:, None] + np.zeros((N, 3))
    X[:, 1:] = P.randn(N, 2)
    c = P.call("minibatch_gd", "minibatch_gd",
               dict(CY, fn="minibatch_gd", n_updates=T, batch_size=B, record_every=r, seed=seed, w0=w0,
                    eta0=eta0, eta_step=eta_step, num_classes=N), timeout=15.0, X=X, y=np.arange(N))
    rates = eta0 + eta_step * np.arange(T)
    rs = np.random.RandomState(seed)
    batches = []
    while len(batches) < T:
        order = rs.permutation(N)
        batches.extend(order[s:s + B] for s in range(0, N, B))
    batches = batches[:T]
    states = w0 - np.concatenate([[0.0], np.cumsum(rates)])  # w after t updates, t = 0..T
    record_steps = [t for t in range(T + 1) if t % r == 0] + [T]

    def updates(ref, got):
        before = _floats(got, "before")
        if len(before) != T:
            raise Fail(f"minibatch_gd(n_updates={T}) made {len(before)} updates (net.gradients calls); expected "
                        f"exactly {T}: stop after n_updates updates, even in the middle of an epoch")
        w = _floats(got, "w")
        applied = -np.diff(np.concatenate([before, w.reshape(-1)[:1]]))
        if not np.allclose(applied, rates, rtol=1e-9, atol=1e-12):
            hint = "the rate of update t (t = 0, 1, ... over the whole run) is lr_schedule(t)"
            if np.allclose(applied[:-1], rates[1:], rtol=1e-9):
                hint = "update t used lr_schedule(t + 1): count t from 0 and increase it after the update"
            elif np.allclose(applied, rates[0], rtol=1e-9):
                hint = "every update used lr_schedule(0): pass the update count t, increased after every update"
            raise Fail(f"the net (whose gradient is 1) moved by {_show(applied)} at its updates; with the rates "
                        f"lr_schedule(t) = {eta0:.4g} + {eta_step:.4g} t it must move by {_show(rates)}. Likely "
                        f"cause: {hint}; every parameter W becomes W - eta * dJ/dW")

    def batches_check(ref, got):
        sizes = _floats(got, "sizes").astype(np.int64)
        labels = _floats(got, "labels").astype(np.int64)
        want_sizes = [len(b) for b in batches]
        want = np.concatenate(batches)
        if sizes.tolist() != want_sizes or not np.array_equal(labels, want):
            raise Fail(f"the updates trained on batches of sizes {sizes.tolist()[:12]} holding the examples "
                        f"{_show(labels, 12, 0)}; expected the batches of epoch_batches(N, batch_size, rng) epoch "
                        f"after epoch, from rng = np.random.RandomState(seed) (the first: {_show(want, 12, 0)}, sizes "
                        f"{want_sizes[:12]}). Likely cause: one order for every epoch (call epoch_batches once per "
                        "epoch), a new RandomState per epoch, or X and y not indexed with the batch")
        if received_number(got, "mismatched") > 0:
            raise Fail("X_batch and y_batch were taken with different indices: use X[batch] and y[batch]")

    def records(ref, got):
        t = _floats(got, "records.t")
        w = _floats(got, "records.w")
        want_t = sorted(set(record_steps))
        if t.tolist() != [float(v) for v in want_t]:
            raise Fail(f"record was called at the steps {_show(t, 12, 0)}; expected {want_t[:12]} (record_every = "
                        f"{r}, n_updates = {T}): before the first update (t = 0), after every record_every-th update "
                        "(t a multiple of record_every) and after the last one")
        if not np.allclose(w, states[np.asarray(want_t)], rtol=1e-9, atol=1e-12):
            raise Fail(f"record(history, net, data, t) was called with the net in another state than after t "
                        f"updates (w = {_show(w)}, expected {_show(states[np.asarray(want_t)])}): record after the "
                        "update, with t the number of updates done")

    def learning_rates(ref, got):
        lrs = _floats(got, "learning_rates", "history.learning_rates: ")
        if lrs.shape != rates.shape or not np.allclose(lrs, rates, rtol=1e-9, atol=1e-12):
            raise Fail(f"history.learning_rates is {_show(lrs)} ({len(lrs)} values); expected the rate of every "
                        f"update, {_show(rates)} ({T} values)")

    P.check("minibatch_gd.updates_and_rates", grade, c, property_verifier(updates), weight=2)
    P.check("minibatch_gd.batches", grade, c, property_verifier(batches_check), weight=1.5)
    P.check("minibatch_gd.records", grade, c, property_verifier(records), weight=1.5)
    P.check("minibatch_gd.learning_rates", grade, c, property_verifier(learning_rates), weight=0.5)


def _overfit(P: Plan):
    N, D, C, m = 60, int(P.rng.integers(30, 50)), 10, int(P.rng.integers(25, 40))
    X = P.randn(N, D)
    y = P.rng.integers(0, C, size=N)
    kw = dict(input_dim=D, hidden_dim=m, num_classes=C, lam=0.0, seed=int(P.rng.integers(0, 2**31 - 1)))
    c = P.call("overfit", "overfit", dict(NET, kwargs=kw, loop_module="cyclical", loop="minibatch_gd", eta=0.2,
                                          n_updates=200, seed=int(P.rng.integers(0, 1000)), np_seed=P.np_seed),
               timeout=20.0, X=X, y=y)

    def check(ref, got):
        params = {}
        for k, shape in (("W1", (D, m)), ("b1", (m,)), ("W2", (m, C)), ("b2", (C,))):
            a = _floats(got, f"params.{k}", "the trained net: ")
            if a.shape != shape or not np.all(np.isfinite(a)):
                raise Fail(f"the trained net's {k} has shape {a.shape} (expected {shape}) or holds nan/inf")
            params[k] = a
        H = np.maximum(X @ params["W1"] + params["b1"], 0)
        probs = _softmax_rows(H @ params["W2"] + params["b2"])
        acc = float(np.mean(np.argmax(probs, axis=1) == y))
        loss = float(np.mean(-np.log(np.maximum(probs[np.arange(N), y], 1e-300))))
        if acc < 0.95:
            raise Fail(f"{N} random examples trained on for 200 updates (lam = 0, rate 0.2, one batch of all) must be "
                        f"learnt by heart; the trained net gets {acc:.0%} of them right (loss {loss:.3f}). If the "
                        "checks of the gradients pass, look at minibatch_gd's update (W - eta * dJ/dW, every parameter)")
    P.check("overfit.memorises", "test_overfit", c, property_verifier(check))


# ---------------------------------------------------------------------------
# 02: cyclical_lr
# ---------------------------------------------------------------------------
def _cyclical_lr(P: Plan):
    grade = "test_cyclical_lr"
    for tag in ("a", "b", "c"):
        n_s = int(P.rng.integers(5, 40)) if tag != "c" else int(P.rng.integers(200, 900))
        eta_min = float(10 ** P.rng.uniform(-6, -3))
        eta_max = float(10 ** P.rng.uniform(-2, 0))
        steps = {0, n_s // 2, n_s - 1, n_s, n_s + 1, 2 * n_s - 1, 2 * n_s, 2 * n_s + 1, 3 * n_s, 3 * n_s + n_s // 3,
                 4 * n_s, 7 * n_s + 2}
        steps |= {int(v) for v in P.rng.integers(0, 10 * n_s, size=8)}
        c = P.call(f"cyclical_lr.{tag}", "schedule",
                   dict(module="optim", fn="cyclical_lr", steps=sorted(steps),
                        kwargs={"eta_min": eta_min, "eta_max": eta_max, "n_s": n_s}))
        P.check(f"cyclical_lr.{tag}", grade, c,
                same_array("rates", tol=1e-9, hint="eta_min + (t - 2 l n_s) / n_s * (eta_max - eta_min) while the rate "
                           "climbs (2 l n_s <= t <= (2 l + 1) n_s), eta_max - (t - (2 l + 1) n_s) / n_s * (eta_max - "
                           "eta_min) while it falls; a cycle is 2 * n_s updates (t % (2 * n_s) is t - 2 l n_s)"))


# ---------------------------------------------------------------------------
# 03: sample_lambdas
# ---------------------------------------------------------------------------
def _sample_lambdas(P: Plan):
    grade = "test_sample_lambdas"
    l_min = float(P.rng.uniform(-7, -4))
    l_max = l_min + float(P.rng.uniform(2, 5))
    seed = int(P.rng.integers(0, 2**31 - 1))
    n = 4000
    c = P.call("sample_lambdas", "call",
               dict(CY, fn="sample_lambdas", args=[], outputs=["lams"], repeat=True,
                    kwargs={"l_min": l_min, "l_max": l_max, "n": n, "seed": seed}))
    P.check("sample_lambdas.documented_draws", grade, c,
            same_array("lams", tol=1e-9, hint="l = l_min + (l_max - l_min) * rng.rand(n) with rng = "
                       "np.random.RandomState(seed), then lam = 10**l (not np.exp(l): l is log10(lam))"))

    def log_uniform(ref, got):
        lams = _floats(got, "lams")
        if lams.shape != (n,):
            raise Fail(f"sample_lambdas(n={n}) returned shape {lams.shape}, expected ({n},)")
        if np.any(~np.isfinite(lams)) or np.any(lams <= 0):
            raise Fail("every lam must be a positive number")
        lo, hi = 10 ** l_min, 10 ** l_max
        if lams.min() < lo * (1 - 1e-9) or lams.max() > hi * (1 + 1e-9):
            raise Fail(f"the values lie in [{lams.min():.3g}, {lams.max():.3g}], outside [10**l_min, 10**l_max] = "
                        f"[{lo:.3g}, {hi:.3g}]. Likely cause: np.exp(l) instead of 10**l, or the range scaled wrongly")
        logs = np.log10(lams)
        mid, width = (l_min + l_max) / 2, l_max - l_min
        # log10(lam) uniform on [l_min, l_max]: its mean within 5 standard errors of the middle, and a
        # quarter of the draws in each quarter of the range (5 standard errors each).
        se = width / np.sqrt(12 * n)
        quarters = np.histogram(logs, bins=4, range=(l_min, l_max))[0] / n
        if abs(logs.mean() - mid) > 5 * se or np.max(np.abs(quarters - 0.25)) > 5 * np.sqrt(0.25 * 0.75 / n):
            raise Fail(f"log10 of the values should be uniform on [{l_min:.3f}, {l_max:.3f}]: mean {mid:.3f} and a "
                        f"quarter of them in each quarter of the range; got mean {logs.mean():.3f} and the quarters "
                        f"{np.round(quarters, 3).tolist()}. Likely cause: lam drawn uniformly between 10**l_min and "
                        "10**l_max (then almost every value is near the top), instead of l uniformly and lam = 10**l")

    def repeats(ref, got):
        a, b = _floats(got, "lams"), _floats(got, "again.lams", "a second call with the same seed: ")
        if a.shape != b.shape or not np.array_equal(a, b):
            raise Fail("the same seed gave other values: draw from np.random.RandomState(seed), not from numpy's "
                        "global generator")

    P.check("sample_lambdas.log_uniform", grade, c, property_verifier(log_uniform), weight=1.5)
    P.check("sample_lambdas.same_seed_same_values", grade, c, property_verifier(repeats), weight=0.5)


# ---------------------------------------------------------------------------
def build_plan(P: Plan):
    """Add every call and check of the seed ``P`` was made with."""
    _normalization(P)
    _kth_init(P)
    _kth_methods(P)
    _compare_gradients(P)
    _record(P)
    _minibatch_gd(P)
    _overfit(P)
    _cyclical_lr(P)
    _sample_lambdas(P)
