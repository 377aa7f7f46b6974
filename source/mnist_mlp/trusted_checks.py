"""The trusted checks of the mnist_mlp assignment: the calls to make and how to judge them.

The spec the engine (autograder/trusted, see its spec.py) runs: ``build_plan(plan)`` draws
every input from the plan's seed and adds the calls (run once on the reference, once
sandboxed on the student's package) and the checks; ``MODELS`` says how the saved models
are scored. Each check belongs to one nbgrader ``grade_id`` (a ``test_*`` cell of the
notebooks) and has a weight; the points of a grade id (the manifest's ``[points]``) are
shared among its checks in proportion to their weights.

Every function graded here is one the manifest's ``[package]`` lists and is named in the
visible part of that grade id's check cell. What a function must do is judged the way its
docstring defines it:

- pure functions (``flatten_and_scale``, the layers, the models' ``loss``) against the
  reference on random shapes and values, at the notebooks' tolerances;
- ``split_train_val``: the documented split (``RandomState(seed).permutation``), and that it
  is a partition that keeps every label with its example, leaves its inputs alone and repeats
  itself for a seed;
- ``generate_batched_data``: the properties of an epoch (every example exactly once, batches of
  ``batch_size`` with the smaller last one kept, rows with their labels, a new order every
  epoch of one RandomState, the stored order without shuffle), each a check of its own, and
  the documented order ``rng.permutation(N)`` as one more;
- ``evaluate``, ``train_step``, ``train_epoch``: on trusted models and update rules
  (``runner.py``) whose answers are known, so that a bug in the student's models costs
  those models' points only: the data loss and accuracy from their definitions; one step of
  the given update rule on every parameter with its own config; an epoch on the batches the
  student's own ``generate_batched_data`` gives for the rng (or the documented ones), one
  step per batch. ``train_epoch`` steps with the student's ``train_step``, as the notebook's
  check does, so a wrong step costs points there too.

Conventions: layer losses average over N; the models add ``0.5 * reg * sum(W**2)`` over
weights only (the bias is not regularised).
"""
from __future__ import annotations

import numpy as np

from autograder.trusted.compare import (
    Fail,
    all_of,
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
#: The threshold keys and splits are those of the notebooks' accuracy cells.
MODELS = {
    "models/softmax.npz": ModelCheck("test_softmax_accuracy", ("SoftmaxRegression",), "flat",
                                     (("softmax_val", "val"), ("softmax_test", "test"))),
    "models/two_layer_net.npz": ModelCheck("test_two_layer_accuracy", ("TwoLayerNet",), "flat",
                                           (("two_layer_val", "val"), ("two_layer_test", "test"))),
    "models/best_net.npz": ModelCheck("test_grid_accuracy", ("TwoLayerNet", "SoftmaxRegression"), "flat",
                                      (("best_val", "val"), ("best_test", "test"))),
}


# ---------------------------------------------------------------------------
# Helpers for verifiers written against a definition
# ---------------------------------------------------------------------------
def _ints(array, name, what=""):
    """``array`` as int64 when it holds whole numbers only (labels, sizes), else Fail."""
    if array.dtype.kind in "iu":
        return array.astype(np.int64)
    if array.dtype.kind == "f" and np.all(np.isfinite(array)) and np.all(array == np.round(array)):
        return array.astype(np.int64)
    raise Fail(f"{what}`{name}` must hold whole numbers (labels), got dtype {array.dtype}")


def _show(values, limit=12):
    values = [int(v) for v in np.asarray(values).ravel()]
    return str(values[:limit])[:-1] + (", ...]" if len(values) > limit else "]")


def _batch_sizes(N, B):
    """The documented batch sizes of one epoch: runs of B, the last one smaller and kept."""
    return [B] * (N // B) + ([N % B] if N % B else [])


def _cross_entropy(scores, y):
    """Mean softmax cross-entropy of scores (N, C) with labels y (N,), by log-sum-exp (stable)."""
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_sums = np.log(np.exp(shifted).sum(axis=1))
    return float(np.mean(log_sums - shifted[np.arange(len(y)), y]))


# ---------------------------------------------------------------------------
# 01: flatten_and_scale, split_train_val
# ---------------------------------------------------------------------------
def _data_path(P: Plan):
    D = {"module": "data_utils"}

    # Images of random sizes, H != W (a transpose shows), pixel values 0..255 with both ends present.
    N, H, W = P.dims(3, 6, 1) + P.dims(4, 9, 1) + P.dims(10, 14, 1)
    images = P.rng.integers(0, 256, size=(N, H, W)).astype(np.uint8)
    images[0, 0, 0], images[-1, -1, -1] = 255, 0
    c = P.call("flatten.uint8", "call", dict(D, fn="flatten_and_scale", args=["images"], outputs=["X"]),
               images=images)
    P.check("flatten_and_scale.values", "test_flatten_and_scale", c,
            same_array("X", tol=1e-9, hint="divide by 255 (so that 255 becomes 1), in a floating dtype, each "
                       "image read row by row: images.reshape(N, -1) / 255.0",
                       shape_hint="one row of H * W numbers per image: reshape to (N, H * W)"),
            unchanged_inputs("make a new array; do not divide the images in place"), weight=2)
    # A darker set whose largest pixel is not 255: dividing by the largest pixel shows here.
    dark = P.rng.integers(0, 200, size=(P.dims(2, 4, 1)[0], 28, 28)).astype(np.uint8)
    c = P.call("flatten.dark", "call", dict(D, fn="flatten_and_scale", args=["images"], outputs=["X"]),
               images=dark)
    P.check("flatten_and_scale.not_by_the_largest_pixel", "test_flatten_and_scale", c,
            same_array("X", tol=1e-9, hint="divide by 255 always, not by the largest pixel of the images"))
    # Float images (the hidden test's case): the same scale, and the input left alone.
    floats = P.rng.integers(0, 256, size=(N, W, H)).astype(np.float64)
    c = P.call("flatten.float", "call", dict(D, fn="flatten_and_scale", args=["images"], outputs=["X"]),
               images=floats)
    P.check("flatten_and_scale.float_images", "test_flatten_and_scale", c,
            same_array("X", tol=1e-9, hint="divide by 255 whatever the images' dtype"),
            unchanged_inputs("images / 255.0 makes a new array; `X /= 255` on a reshaped view changes the "
                             "caller's images"))

    # split_train_val: row i of X holds i (and i + 0.5 below it), label i * 7 % N... every
    # example is recognisable by its row, and its label by the row too.
    for tag, shape_tail in (("rows", (2,)), ("images", (2, 3))):
        N = P.dims(12, 30, 1)[0]
        k = int(P.rng.integers(1, N // 2))
        seed = int(P.rng.integers(0, 2**31 - 1))
        X = (np.arange(N, dtype=np.float64).reshape(N, *([1] * len(shape_tail)))
             + np.zeros((N, *shape_tail)) + 0.5 * np.arange(int(np.prod(shape_tail))).reshape(shape_tail))
        y = (3 * np.arange(N) + 1).astype(np.int64)  # label of example i: 3 i + 1
        c = P.call(f"split.{tag}", "call",
                   dict(D, fn="split_train_val", args=["X", "y"], kwargs={"num_validation": k, "seed": seed},
                        outputs=["X_train", "y_train", "X_val", "y_val"], repeat=True), X=X, y=y)
        P.check(f"split_train_val.partition_{tag}", "test_split_train_val", c, _split_partition(N, k, X))
        P.check(f"split_train_val.documented_split_{tag}", "test_split_train_val", c,
                _split_order(N, k, seed, X, y))
        if tag == "rows":
            P.check("split_train_val.same_seed_same_split", "test_split_train_val", c, _split_repeats(),
                    unchanged_inputs("index X and y with the permutation (X[order]); do not shuffle them in place"),
                    weight=0.5)
    # No validation at all: every example stays for training.
    N = P.dims(5, 10, 1)[0]
    X, y = np.arange(N, dtype=np.float64)[:, None] + np.zeros((N, 2)), (3 * np.arange(N) + 1).astype(np.int64)
    c = P.call("split.none", "call",
               dict(D, fn="split_train_val", args=["X", "y"], kwargs={"num_validation": 0, "seed": 1},
                    outputs=["X_train", "y_train", "X_val", "y_val"]), X=X, y=y)
    P.check("split_train_val.no_validation", "test_split_train_val", c, _split_partition(N, 0, X), weight=0.5)


def _split_arrays(got):
    arrays = {}
    for name in ("X_train", "y_train", "X_val", "y_val"):
        arrays[name] = received_array(got, name, "split_train_val must return X_train, y_train, X_val, y_val: ")
    return arrays


def _split_partition(N, k, X):
    """Sizes N - k and k; every example in exactly one set; every label with its example."""
    def check(ref, got):
        a = _split_arrays(got)
        for name, n in (("X_train", N - k), ("y_train", N - k), ("X_val", k), ("y_val", k)):
            if len(a[name]) != n:
                raise Fail(f"split_train_val(N = {N}, num_validation = {k}): {name} has {len(a[name])} "
                            f"examples, expected {n}")
        for name in ("X_train", "X_val"):
            if a[name].shape[1:] != X.shape[1:]:
                raise Fail(f"`{name}` has shape {a[name].shape}, expected ({len(a[name])}, "
                            f"{', '.join(map(str, X.shape[1:]))}): keep every example as it is")
        # Example i is recognisable by its first number, i.
        ids = {}
        for name in ("X_train", "X_val"):
            first = a[name].reshape(len(a[name]), -1)[:, 0] if len(a[name]) else np.zeros(0)
            ids[name] = _ints(first, name)
        seen = np.concatenate([ids["X_train"], ids["X_val"]])
        if sorted(seen.tolist()) != list(range(N)):
            twice = sorted({int(i) for i in seen if np.sum(seen == i) > 1})
            raise Fail(f"every example must be in exactly one of the two sets; got examples {_show(sorted(seen))}"
                        + (f" ({_show(twice)} more than once)" if twice else "")
                        + ". Likely cause: the training set taken from all the indices, or the two sets' "
                          "slices overlapping (order[:num_validation] and order[num_validation:])")
        for xs, ys in (("X_train", "y_train"), ("X_val", "y_val")):
            labels = _ints(a[ys], ys)
            if not np.array_equal(labels, 3 * ids[xs] + 1):
                raise Fail(f"`{ys}` does not hold the labels of the examples in `{xs}` (example i has label "
                            f"3 i + 1 here): expected {_show(3 * ids[xs] + 1)}, got {_show(labels)}. Likely "
                            "cause: X and y indexed with different indices")
    return property_verifier(check)


def _split_order(N, k, seed, X, y):
    """The documented split: order = RandomState(seed).permutation(N); validation = its first k."""
    order = np.random.RandomState(seed).permutation(N)

    def check(ref, got):
        a = _split_arrays(got)
        for name, idx in (("X_val", order[:k]), ("X_train", order[k:])):
            if len(a[name]) != len(idx):
                raise Fail(f"`{name}` has {len(a[name])} examples, expected {len(idx)} (N = {N}, "
                            f"num_validation = {k})")
            if a[name].shape != X[idx].shape or not np.array_equal(a[name], X[idx]):
                first = a[name].reshape(len(a[name]), -1)[:, 0] if a[name].size else np.zeros(0)
                raise Fail(f"`{name}` (seed {seed}, num_validation {k}) should hold the examples "
                            f"{_show(idx)}, the {'first' if name == 'X_val' else 'other'} indices of "
                            f"np.random.RandomState(seed).permutation(N), in that order; got the examples "
                            f"{_show(first)}. Likely cause: np.random.permutation or np.random.shuffle (numpy's "
                            "global generator, not the seed), or the last num_validation indices instead of "
                            "the first")
        for name, idx in (("y_val", order[:k]), ("y_train", order[k:])):
            if a[name].shape != y[idx].shape or not np.array_equal(a[name], y[idx]):
                raise Fail(f"`{name}` should be y at the same indices as its X: expected {_show(y[idx])}, got "
                            f"{_show(a[name]) if a[name].dtype.kind in 'iuf' else a[name].dtype}")
    return property_verifier(check)


def _split_repeats():
    def check(ref, got):
        a = _split_arrays(got)
        for name in ("X_train", "y_train", "X_val", "y_val"):
            again = received_array(got, f"again.{name}", "a second call with the same seed: ")
            if again.shape != a[name].shape or not np.array_equal(again, a[name]):
                raise Fail(f"the same seed gave another split (`{name}` differs between two calls): draw the "
                            "order from np.random.RandomState(seed), not from numpy's global generator")
    return property_verifier(check)


# ---------------------------------------------------------------------------
# 01: softmax_loss
# ---------------------------------------------------------------------------
def _softmax(P: Plan):
    L = {"module": "layers"}
    N, C = P.dims(4, 8, 1) + P.dims(3, 7, 1)
    y = P.rng.integers(0, C, size=N)
    huge = np.where(P.rng.random((N, C)) < 0.5, -1000.0, 1000.0) + P.randn(N, C)
    # Row 0: its label's probability underflows to 0 (the loss of that row is about 2000).
    under = P.randn(N, C)
    under[0] = 0.0
    under[0, (y[0] + 1) % C], under[0, y[0]] = 1000.0, -1000.0
    cases = {"random": (P.randn(N, C, scale=3.0), 2), "large": (huge, 2), "underflow": (under, 1)}
    hints = {
        "random": "loss = mean over the N rows of -log p[label]; dx = (p - onehot(y)) / N",
        "large": "subtract each row's largest score before exp(); the probabilities do not change",
        "underflow": "compute log p as shifted - log(sum(exp(shifted))) (log-sum-exp), not log(p): "
                     "p of a very unlikely label underflows to 0 and log(0) = -inf",
    }
    for tag, (x, weight) in cases.items():
        c = P.call(f"softmax_loss.{tag}", "loss", dict(L, fn="softmax_loss", args=["x", "y"]), x=x, y=y)
        P.check(f"softmax_loss.loss_{tag}", "test_softmax_loss", c, same_scalar("loss", tol=1e-7, hint=hints[tag]),
                weight=weight)
        P.check(f"softmax_loss.dx_{tag}", "test_softmax_loss", c,
                same_array("grad", tol=1e-7, hint=hints[tag] if tag != "underflow" else hints["random"]),
                unchanged_inputs("compute on a copy (x - x.max(...) makes one); do not change the scores in place"),
                weight=weight)


# ---------------------------------------------------------------------------
# 01: SoftmaxRegression.loss
# ---------------------------------------------------------------------------
def _softmax_regression(P: Plan):
    Lm = {"module": "classifiers.linear"}
    N, C = P.dims(4, 8, 1) + P.dims(3, 6, 1)
    d = P.dims(2, 4, 2)
    D = int(np.prod(d))
    params = {"W": P.randn(D, C, scale=0.5), "b": P.randn(C, scale=0.5)}
    y = P.rng.integers(0, C, size=N)
    hint_loss = ("the softmax loss of X W + b plus 0.5 * reg * sum(W**2); b is not regularised")
    for tag, reg, X in (("noreg", 0.0, P.randn(N, D)), ("reg", float(P.rng.uniform(0.3, 1.5)), P.randn(N, *d))):
        kw = dict(input_dim=D, num_classes=C, weight_scale=1e-3, reg=reg)
        c = P.call(f"softmax_regression.{tag}", "net_loss",
                   dict(Lm, cls="SoftmaxRegression", kwargs=kw, params=sorted(params), np_seed=P.np_seed,
                        loss_only=True),
                   X=X, y=y, **{"param." + k: v for k, v in params.items()})
        P.check(f"softmax_regression.scores_{tag}", "test_softmax_regression_loss", c,
                same_array("scores", hint="scores = x W + b with x = X reshaped to (N, D); b added to every row"))
        P.check(f"softmax_regression.loss_{tag}", "test_softmax_regression_loss", c,
                same_scalar("loss", hint=hint_loss), weight=2 if tag == "reg" else 1)
        P.check(f"softmax_regression.grad_keys_{tag}", "test_softmax_regression_loss", c,
                dict_arrays("grads", shapes_only=True), weight=0.5)
        P.check(f"softmax_regression.loss_only_{tag}", "test_softmax_regression_loss", c,
                same_scalar("loss_only", hint="loss(X, y, grads=False) must return the same loss, alone: add the "
                            "L2 term before the `if not grads` return"), weight=0.5)
        P.check(f"softmax_regression.grads_{tag}", "test_softmax_regression_gradcheck", c,
                dict_arrays("grads", hint="dW = x.T @ dscores + reg * W (the gradient of 0.5 * reg * sum(W**2)); "
                            "db = dscores summed over the examples, shape (C,)"))


# ---------------------------------------------------------------------------
# 01: generate_batched_data
# ---------------------------------------------------------------------------
def _batched(P: Plan):
    T = {"module": "training", "fn": "generate_batched_data"}

    def call(tag, N, B, X, *, seed_kind, seed=0, epochs=1, shuffle=True):
        kwargs = {} if shuffle else {"shuffle": False}
        return P.call(f"batched.{tag}", "batches",
                      dict(T, batch_size=B, kwargs=kwargs, seed_kind=seed_kind, seed=seed, epochs=epochs,
                           np_seed=P.np_seed, max_batches=N // B + 3, max_elements=4 * (X.size + N)),
                      X=X, y=np.arange(N))

    def sizes_not_multiple():
        while True:
            N, B = P.dims(13, 31, 1)[0], P.dims(3, 7, 1)[0]
            if N % B:
                return N, B

    cases = []
    # Stored order (shuffle=False), 2-D examples.
    N, B = sizes_not_multiple()
    X = P.randn(N, 3)
    cases.append(("unshuffled", N, B, X, call("unshuffled", N, B, X, seed_kind="none", shuffle=False), 1, None))
    # An int seed, examples that are 3-D (rows must be indexed as a whole).
    N, B = sizes_not_multiple()
    X, seed = P.randn(N, 2, 2), int(P.rng.integers(1, 2**31 - 1))
    cases.append(("int_seed", N, B, X, call("int_seed", N, B, X, seed_kind="int", seed=seed), 1,
                  [np.random.RandomState(seed).permutation(N)]))
    # One RandomState for two epochs, as train passes it: a new order every epoch.
    N, B = sizes_not_multiple()
    X, seed = P.randn(N, 2), int(P.rng.integers(1, 2**31 - 1))
    rs = np.random.RandomState(seed)
    cases.append(("two_epochs", N, B, X, call("two_epochs", N, B, X, seed_kind="state", seed=seed, epochs=2), 2,
                  [rs.permutation(N), rs.permutation(N)]))
    # N a multiple of B (no empty last batch); seed=None draws from numpy's global generator.
    B = P.dims(3, 5, 1)[0]
    N = B * P.dims(3, 5, 1)[0]
    X = P.randn(N, 2)
    cases.append(("multiple", N, B, X, call("multiple", N, B, X, seed_kind="none"), 1,
                  [np.random.RandomState(P.np_seed).permutation(N)]))
    # A batch larger than the set: one batch of N.
    N = P.dims(4, 9, 1)[0]
    X = P.randn(N, 2)
    B = N + int(P.rng.integers(1, 20))
    cases.append(("one_batch", N, B, X, call("one_batch", N, B, X, seed_kind="int", seed=3), 1,
                  [np.random.RandomState(3).permutation(N)]))

    grade = "test_batched_data"
    for tag, N, B, X, c, epochs, orders in cases:
        P.check(f"batched.{tag}.each_example_once", grade, c, _epochs_cover(N, B, epochs), weight=2)
        P.check(f"batched.{tag}.batch_sizes", grade, c, _epochs_sizes(N, B, epochs))
        P.check(f"batched.{tag}.rows_follow_labels", grade, c, _epochs_rows(X, epochs), weight=0.5)
        if tag == "unshuffled":
            P.check("batched.unshuffled.stored_order", grade, c, _epoch_order(np.arange(N), 0,
                    "shuffle=False must keep the stored order 0, 1, ..., N - 1"))
        if tag == "two_epochs":
            P.check("batched.two_epochs.new_order_each_epoch", grade, c, _epochs_differ(N))
        if orders is not None:
            how = {"int_seed": "np.random.RandomState(seed).permutation(N) for an int seed",
                   "two_epochs": "rng.permutation(N) drawn from the given RandomState itself, once per call",
                   "multiple": "np.random.permutation(N), numpy's global generator, for seed=None",
                   "one_batch": "np.random.RandomState(seed).permutation(N) for an int seed"}[tag]
            P.check(f"batched.{tag}.documented_order", grade, c,
                    all_of(*(_epoch_order(order, e, f"the order of a shuffled epoch is {how}")
                             for e, order in enumerate(orders))), weight=0.5)


def _epoch_labels(got, e):
    what = f"epoch {e + 1}: " if e else ""
    return _ints(received_array(got, f"e{e}.labels", what), "y_batch", what), what


def _epochs_cover(N, B, epochs):
    """Without replacement: each epoch holds every example exactly once."""
    def check(ref, got):
        for e in range(epochs):
            labels, what = _epoch_labels(got, e)
            if sorted(labels.tolist()) != list(range(N)):
                counts = np.bincount(labels[(labels >= 0) & (labels < N)], minlength=N) if labels.size else np.zeros(N)
                missing, twice = np.flatnonzero(counts == 0), np.flatnonzero(counts > 1)
                found = [f"{len(missing)} missing (e.g. {_show(missing, 5)})" if len(missing) else "",
                         f"{len(twice)} more than once (e.g. {_show(twice, 5)})" if len(twice) else ""]
                cause = ("indices drawn with replacement (randint, choice) instead of a permutation" if len(twice)
                         else "the last, smaller batch dropped, or a range that stops early" if len(missing)
                         else "labels that are not the examples' own (y[batch])")
                raise Fail(f"{what}N = {N} examples in batches of {B}: an epoch must hold every example exactly "
                            f"once; {len(labels)} came out, {', '.join(s for s in found if s) or 'others'}. "
                            f"Likely cause: {cause}")
    return property_verifier(check)


def _epochs_sizes(N, B, epochs):
    want = _batch_sizes(N, B)

    def check(ref, got):
        for e in range(epochs):
            what = f"epoch {e + 1}: " if e else ""
            sizes = _ints(received_array(got, f"e{e}.sizes", what), "sizes", what)
            if sizes.tolist() != want:
                raise Fail(f"{what}{N} examples in batches of {B}: expected batch sizes {want}, got "
                            f"{sizes.tolist()[:20]}. Likely cause: the last, smaller batch dropped (or an empty one "
                            "added), or batches of another size")
    return property_verifier(check)


def _epochs_rows(X, epochs):
    flat = X.reshape(len(X), -1)

    def check(ref, got):
        for e in range(epochs):
            labels, what = _epoch_labels(got, e)
            rows = received_array(got, f"e{e}.rows", what)
            ok = labels[(labels >= 0) & (labels < len(X))]
            if len(ok) != len(labels) or rows.shape != (len(labels), flat.shape[1]) \
                    or not np.array_equal(rows, flat[labels]):
                raise Fail(f"{what}every X_batch row must be the example of its label (y here is the example's "
                            "index): index X and y with the same indices, X[batch] and y[batch]")
    return property_verifier(check)


def _epoch_order(order, e, how):
    def check(ref, got):
        labels, what = _epoch_labels(got, e)
        if not np.array_equal(labels, order):
            raise Fail(f"{what}the examples came in the order {_show(labels)}, expected {_show(order)}: {how}. "
                        "Likely cause: np.random.permutation (the global generator) instead of rng, a generator "
                        "made anew inside the function, or shuffle ignored")
    return property_verifier(check)


def _epochs_differ(N):
    def check(ref, got):
        first, _ = _epoch_labels(got, 0)
        second, _ = _epoch_labels(got, 1)
        if np.array_equal(first, second):
            raise Fail(f"two epochs drawn from the same RandomState came in the same order {_show(first)}: draw "
                        "the permutation from rng on every call (a generator made from a fixed seed inside the "
                        "function repeats the order every epoch)")
        if np.array_equal(first, np.arange(N)):
            raise Fail("a shuffled epoch came in the stored order 0, 1, ..., N - 1: with shuffle, use "
                        "rng.permutation(N)")
    return property_verifier(check)


# ---------------------------------------------------------------------------
# 01: evaluate
# ---------------------------------------------------------------------------
def _evaluate(P: Plan):
    T = {"module": "training", "fn": "evaluate"}
    grade = "test_evaluate"
    cases = []
    while len(cases) < 2:  # N not a multiple of B: a mean of the batches' means is wrong there
        N, B = P.dims(9, 25, 1)[0], P.dims(2, 6, 1)[0]
        if N % B:
            cases.append((N, B))
    cases.append((P.dims(5, 9, 1)[0], 1000))  # the default-sized batch, larger than the set
    for i, (N, B) in enumerate(cases):
        C = P.dims(3, 6, 1)[0]
        S = P.randn(N, C, scale=2.0)
        y = P.rng.integers(0, C, size=N)
        reg = float(P.rng.uniform(2.0, 6.0))
        c = P.call(f"evaluate.{i}", "evaluate", dict(T, reg=reg, kwargs={"batch_size": B}, max_rows_total=4 * N + 8),
                   S=S, y=y)
        P.check(f"evaluate.{i}.loss", grade, c, _evaluate_loss(S, y, B, reg), weight=2)
        P.check(f"evaluate.{i}.accuracy", grade, c, _evaluate_accuracy(S, y))
        if B < N:
            P.check(f"evaluate.{i}.in_batches", grade, c, _evaluate_batches(N, B), weight=0.5)


def _evaluate_loss(S, y, B, reg):
    """The softmax data loss averaged over all N examples (every one weighed equally, no L2)."""
    want = _cross_entropy(S, y)
    starts = range(0, len(S), B)
    batch_means = float(np.mean([_cross_entropy(S[s:s + B], y[s:s + B]) for s in starts]))
    l2 = 0.5 * reg * S.shape[1]  # the model's L2 term (W = ones(C))

    def check(ref, got):
        loss = received_number(got, "loss", "evaluate must return (loss, accuracy): ")
        if abs(loss - want) <= 1e-9 * max(1.0, abs(want)):
            return
        cause = ""
        if abs(loss - batch_means) <= 1e-9 * max(1.0, abs(batch_means)):
            cause = ("the mean of the batches' means: softmax_loss returns a batch's MEAN, weigh it by the batch's "
                     "size (the last batch is smaller)")
        elif abs(loss - (want + l2)) <= 1e-9 * max(1.0, abs(want + l2)):
            cause = "the L2 term included: evaluate the data loss of model.loss(X_batch)'s scores, not model.loss(X, y)"
        elif abs(loss - want * len(S)) <= 1e-9 * max(1.0, abs(want * len(S))):
            cause = "a sum over the examples: divide by N"
        raise Fail(f"evaluate(model, X, y, batch_size={B}) on N = {len(S)} examples: loss {loss:.10g}, expected "
                    f"{want:.10g}, the softmax loss averaged over all N examples"
                    + (f". Likely cause: {cause}" if cause else ""))
    return property_verifier(check)


def _evaluate_accuracy(S, y):
    want = float(np.mean(np.argmax(S, axis=1) == y))

    def check(ref, got):
        acc = received_number(got, "accuracy", "evaluate must return (loss, accuracy): ")
        if abs(acc - want) > 1e-12:
            raise Fail(f"accuracy {acc:.6g}, expected {want:.6g}: the fraction of examples whose highest score "
                        "(argmax over the classes, axis=1) is their label")
    return property_verifier(check)


def _evaluate_batches(N, B):
    def check(ref, got):
        rows = received_number(got, "max_rows")
        if rows > B:
            raise Fail(f"evaluate(..., batch_size={B}) gave model.loss {int(rows)} examples at once: go through X "
                        f"a batch of at most batch_size examples at a time (X[start:start + batch_size]), so that a "
                        "whole set never passes through the net at once")
    return property_verifier(check)


# ---------------------------------------------------------------------------
# 01: train_step
# ---------------------------------------------------------------------------
def _train_step(P: Plan):
    T = {"module": "training", "fn": "train_step"}
    grade = "test_train_step"
    N, D, C = P.dims(4, 8, 1) + P.dims(3, 6, 1) + P.dims(2, 5, 1)
    W, b = P.randn(D, C, scale=0.5), P.randn(C, scale=0.5)
    for rule, steps in (("sgd", 1), ("momentum", 3)):
        lr, reg = float(P.rng.uniform(0.05, 0.5)), float(P.rng.uniform(0.2, 1.0))
        batches = {}
        for k in range(steps):
            batches[f"X{k}"], batches[f"y{k}"] = P.randn(N, D), P.rng.integers(0, C, size=N)
        c = P.call(f"train_step.{rule}", "train_step",
                   dict(T, rule=rule, steps=steps, learning_rate=lr, reg=reg, momentum=float(P.rng.uniform(0.5, 0.9))),
                   W=W, b=b, **batches)
        if rule == "sgd":
            P.check("train_step.loss_before_update", grade, c,
                    same_scalar("loss0", hint="return the loss model.loss(X_batch, y_batch) gave BEFORE the update "
                                "(L2 term included), as a float"))
            P.check("train_step.one_sgd_step", grade, c,
                    dict_arrays("params0", tol=1e-9, hint="replace every parameter p (b too) by what "
                                "update_rule(model.params[p], grads[p], optim_configs[p]) returns; the model's "
                                "gradient already holds the L2 term (add nothing to it)"), weight=2)
            P.check("train_step.rule_once_per_parameter", grade, c, _rule_calls(steps))
        else:
            P.check("train_step.configs_carried", grade, c, _counts(steps),
                    all_of(*(dict_arrays(f"params{k}", tol=1e-9, hint="store the config update_rule returns in "
                             "optim_configs[p]: a rule with state (a velocity) needs it at the next step")
                             for k in range(steps))), weight=2)


def _rule_calls(steps):
    def check(ref, got):
        for k in range(steps):
            want = ref.keys.get(f"calls{k}", [])
            have = got.keys.get(f"calls{k}")
            counts = {n: got.arrays.get(f"calls{k}.{n}") for n in (have or [])}
            if have != want or any(v is None or float(v) != 1 for v in counts.values()):
                shown = {n: (None if v is None else int(v)) for n, v in counts.items()}
                raise Fail(f"update_rule must be called once for every parameter ({', '.join(want)}) per step; "
                            f"got the calls {shown}")
    return property_verifier(check)


def _counts(steps):
    def check(ref, got):
        for k in range(steps):
            for n in ref.keys.get(f"count{k}", []):
                value = got.arrays.get(f"count{k}.{n}")
                if value is None or float(value) != k + 1:
                    shown = "missing" if value is None or float(value) < 0 else int(value)
                    raise Fail(f"after {k + 1} step{'s' if k else ''} with a rule that counts its calls in the "
                                f"config it returns, "
                                f"optim_configs[{n!r}]['count'] is {shown}, expected {k + 1}: store the config the "
                                "rule returns back into optim_configs[p]")
    return property_verifier(check)


# ---------------------------------------------------------------------------
# 01: train_epoch
# ---------------------------------------------------------------------------
def _train_epoch(P: Plan):
    T = {"module": "training", "fn": "train_epoch"}
    grade = "test_train_epoch"
    while True:
        N, B = P.dims(13, 29, 1)[0], P.dims(3, 6, 1)[0]
        if N % B:
            break
    X = (10.0 * np.arange(N) + P.rng.uniform(0, 1, size=N))[:, None]
    seed, lr, w0 = int(P.rng.integers(1, 2**31 - 1)), float(P.rng.uniform(0.1, 0.5)), float(P.rng.uniform(-1, 1))
    c = P.call("train_epoch", "train_epoch",
               dict(T, batch_size=B, seed=seed, learning_rate=lr, w0=w0, np_seed=P.np_seed), X=X, y=np.arange(N))
    P.check("train_epoch.batches", grade, c, _epoch_batches(N, B, seed), weight=2)
    P.check("train_epoch.losses", grade, c, _epoch_losses())
    P.check("train_epoch.one_step_per_batch", grade, c, _epoch_steps(lr, w0))


def _epoch_batches(N, B, seed):
    """The epoch trains on the batches of generate_batched_data(X, y, B, seed=rng): those the
    package's own generator gives for that rng (so that a generator bug costs the generator's
    points, not these), or the documented ones."""
    order = np.random.RandomState(seed).permutation(N)
    documented = (order, _batch_sizes(N, B))

    def check(ref, got):
        labels = _ints(received_array(got, "batches.labels"), "y_batch")
        sizes = _ints(received_array(got, "batches.sizes"), "sizes").tolist()
        accepted = [documented]
        if not got.arrays.get("gen_failed", 1) and "gen.labels" in got.arrays:
            accepted.append((_ints(got.arrays["gen.labels"], "labels"),
                             _ints(got.arrays["gen.sizes"], "sizes").tolist()))
        if any(np.array_equal(labels, want) and sizes == want_sizes for want, want_sizes in accepted):
            return
        if len(labels) != N or sorted(labels.tolist()) != list(range(N)):
            raise Fail(f"one epoch of N = {N} examples in batches of {B} must train on every example exactly once; "
                        f"the model was trained on {len(labels)} examples in {len(sizes)} steps (sizes {sizes[:12]})")
        raise Fail(f"the epoch trained on the examples in the order {_show(labels)} (batch sizes {sizes[:12]}); "
                    f"expected the batches of generate_batched_data(X, y, batch_size, seed=rng), shuffled with the "
                    f"rng given ({_show(order)}). Likely cause: shuffle=False, or a new generator instead of rng")
    return property_verifier(check)


def _epoch_losses():
    def check(ref, got):
        losses = received_array(got, "losses", "train_epoch must return the list of the steps' losses: ")
        returned = received_array(got, "returned")
        if not got.arrays.get("losses_is_list", 0):
            raise Fail("train_epoch must return a list (one float per step), got another type")
        if losses.shape != returned.shape or not np.allclose(losses, returned, rtol=1e-12, atol=1e-12):
            raise Fail(f"train_epoch returned {len(losses)} losses {np.round(losses[:6], 6).tolist()}, but its "
                        f"{len(returned)} steps' losses were {np.round(returned[:6], 6).tolist()}: append the loss "
                        "train_step returns for every batch, in order")
    return property_verifier(check)


def _epoch_steps(lr, w0):
    """One train_step per batch trained on: the rule ran once per batch (and its config was
    stored), so w moved by lr per batch (the model's gradient is 1)."""
    def check(ref, got):
        steps = len(received_array(got, "batches.sizes"))
        w = received_array(got, "w")
        count = received_number(got, "count")
        want = w0 - steps * lr
        if count < 0:
            raise Fail("after the epoch optim_configs['w'] holds no 'count' (the update rule given adds 1 to it at "
                        "every call): store the config the update rule returns (train_step), on every batch")
        if count != steps:
            raise Fail(f"the epoch trained on {steps} batches but the update rule ran {int(count)} times: one "
                        "train_step per batch")
        if w.shape != (1,) or not abs(float(w[0]) - want) <= 1e-9:
            raise Fail(f"after {steps} SGD steps (learning rate {lr:g}, gradient 1) w should be {want:.10g}, got "
                        f"{np.asarray(w).ravel()[:3]}: store the parameter the update rule returns (train_step)")
    return property_verifier(check)


# ---------------------------------------------------------------------------
# 02: sigmoid and ReLU layers
# ---------------------------------------------------------------------------
def _activations(P: Plan):
    L = {"module": "layers"}
    shape = tuple(P.dims(2, 5, 3))

    def away_from_zero(scale):
        x = P.randn(*shape, scale=scale)
        return np.where(np.abs(x) < 1e-3, 1e-3, x)

    for name, hint in (("sigmoid", "dx = dout * s * (1 - s) with s = the cache, the sigmoid's OUTPUT (not its "
                                   "input x: the cache already is sigmoid(x))"),
                       ("relu", "dx = dout where the INPUT x (the cache) > 0, else 0; the mask comes from x, not "
                                "dout")):
        c = P.call(name, "forward_backward",
                   dict(L, fn=f"{name}_forward", backward=f"{name}_backward", args=["x"], n_grads=1),
                   x=away_from_zero(3.0), dout=P.randn(*shape))
        forward_hint = ("1 / (1 + exp(-x)) elementwise" if name == "sigmoid" else "max(0, x) elementwise")
        P.check(f"{name}_forward.values", f"test_{name}", c, same_array("out", hint=forward_hint),
                unchanged_inputs(), weight=1.5)
        P.check(f"{name}_backward.dx", f"test_{name}", c, same_array("d0", hint=hint), weight=1.5)

    # The sigmoid far out in the tails: exact values and no overflow in numpy's eyes.
    big = np.concatenate([P.randn(6, scale=300.0), [800.0, -800.0, 1000.0, -1000.0, 30.0, -30.0]])
    c = P.call("sigmoid.large", "call", dict(L, fn="sigmoid_forward", args=["x"], outputs=["out", "cache"],
                                             fp_watch=["over", "invalid"]), x=big)
    P.check("sigmoid_forward.large_inputs", "test_sigmoid", c,
            same_array("out", tol=1e-7, hint="values in [0, 1], no nan: use exp(-|x|) so nothing large is "
                       "exponentiated"), _no_fp_errors(), weight=1)


def _no_fp_errors():
    def check(ref, got):
        count = received_number(got, "fp_errors")
        if count > 0:
            raise Fail("sigmoid_forward of inputs down to -1000 overflowed in exp() (numpy warns, and the warning "
                        "fails a graded cell): for x < 0 compute the sigmoid from z = exp(x) as z / (1 + z), or use "
                        "z = exp(-|x|) for every x, so that exp never sees a large positive number")
    return property_verifier(check)


# ---------------------------------------------------------------------------
# 02: TwoLayerNet
# ---------------------------------------------------------------------------
def _init_stats(prefix, weight_scale):
    """Weights ~ N(0, weight_scale**2) (std, not variance), biases exactly 0."""
    def check(ref, got):
        problem = same_keys(prefix, hint="name the parameters W1, b1, W2, b2")(ref, got) \
            or dict_arrays(prefix, shapes_only=True)(ref, got)
        if problem:
            raise Fail(problem)
        for key in ref.keys[prefix]:
            g = got.arrays[f"{prefix}.{key}"]
            if key.startswith("b"):
                if np.any(g != 0):
                    raise Fail(f"`{prefix}.{key}` must start at exactly 0, got max |b| = {np.max(np.abs(g)):.3g}")
            else:
                std, mean, n = float(np.std(g)), float(np.mean(g)), g.size
                # Five standard errors of the sample mean and std of n normal draws: a correct init fails
                # about once in a million, weight_scale**2 or another scale never passes.
                if abs(std / weight_scale - 1) > 5 / np.sqrt(2 * n) or abs(mean) > 5 / np.sqrt(n) * weight_scale:
                    raise Fail(f"`{prefix}.{key}` has mean {mean:.3g} and std {std:.3g}; expected mean 0 and std "
                                f"weight_scale = {weight_scale:g}. Likely cause: weight_scale is the standard "
                                "deviation (weight_scale * np.random.randn(...)), not the variance")
    return property_verifier(check)


def _two_layer(P: Plan):
    F = {"module": "classifiers.fc_net"}

    # Initialisation: big enough layers for a tight test of the std.
    for activation in ("sigmoid", "relu"):
        ws = float(P.rng.uniform(0.01, 0.1))
        kw = dict(input_dim=int(P.rng.integers(150, 250)), hidden_dim=int(P.rng.integers(60, 120)),
                  num_classes=int(P.rng.integers(5, 12)), weight_scale=ws, activation=activation)
        c = P.call(f"two_layer.init_{activation}", "net_init", dict(F, cls="TwoLayerNet", kwargs=kw, np_seed=P.np_seed))
        P.check(f"two_layer.init_{activation}_statistics", "test_two_layer_init", c, _init_stats("params", ws),
                weight=1.5)
        P.check(f"two_layer.init_{activation}_same_draws", "test_two_layer_init", c,
                dict_arrays("params", hint="draw W1 then W2 as weight_scale * np.random.randn(rows, columns) from "
                            "numpy's global generator, biases zeros (np.random.seed then reproduces the net)"),
                weight=0.5)

    # Loss and gradients: both activations, with and without L2, on 3-D input.
    N, H, C = P.dims(3, 7, 1) + P.dims(4, 9, 1) + P.dims(3, 6, 1)
    d = P.dims(2, 4, 2)
    D = int(np.prod(d))
    params = {"W1": P.randn(D, H, scale=0.7), "b1": P.randn(H, scale=0.3),
              "W2": P.randn(H, C, scale=0.7), "b2": P.randn(C, scale=0.3)}
    X, y = P.randn(N, *d), P.rng.integers(0, C, size=N)
    for activation in ("sigmoid", "relu"):
        for tag, reg in (("noreg", 0.0), ("reg", float(P.rng.uniform(0.3, 1.5)))):
            kw = dict(input_dim=D, hidden_dim=H, num_classes=C, weight_scale=1e-3, reg=reg, activation=activation)
            c = P.call(f"two_layer.{activation}_{tag}", "net_loss",
                       dict(F, cls="TwoLayerNet", kwargs=kw, params=sorted(params), np_seed=P.np_seed,
                            loss_only=True),
                       X=X, y=y, **{"param." + k: v for k, v in params.items()})
            if tag == "noreg":
                P.check(f"two_layer.{activation}_scores", "test_two_layer_loss", c,
                        same_array("scores", hint=f"scores = {activation}(x W1 + b1) W2 + b2 with x = X reshaped to "
                                   "(N, D): apply the activation with hidden_forward (a ReLU written by hand serves "
                                   "the ReLU net only), no softmax"))
            P.check(f"two_layer.{activation}_loss_{tag}", "test_two_layer_loss", c,
                    same_scalar("loss", hint="the softmax loss of the scores plus 0.5 * reg * (sum(W1**2) + "
                                "sum(W2**2)); the biases are not regularised"))
            P.check(f"two_layer.{activation}_grad_shapes_{tag}", "test_two_layer_loss", c,
                    dict_arrays("grads", shapes_only=True), weight=0.5)
            P.check(f"two_layer.{activation}_loss_only_{tag}", "test_two_layer_loss", c,
                    same_scalar("loss_only", hint="loss(X, y, grads=False) must return the same loss, alone: "
                                "compute the L2 term before the `if not grads` return"), weight=0.5)
            P.check(f"two_layer.{activation}_grads_{tag}", "test_two_layer_gradcheck", c,
                    dict_arrays("grads", hint="backpropagate through affine - activation - affine with "
                                "hidden_backward; add reg * W to each dW (not to the biases); sum the bias "
                                "gradients over the examples"))


# ---------------------------------------------------------------------------
def build_plan(P: Plan):
    """Add every call and check of the seed ``P`` was made with."""
    _data_path(P)
    _softmax(P)
    _softmax_regression(P)
    _batched(P)
    _evaluate(P)
    _train_step(P)
    _train_epoch(P)
    _activations(P)
    _two_layer(P)
