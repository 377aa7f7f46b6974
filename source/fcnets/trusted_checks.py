"""The trusted checks of the fcnets assignment: the calls to make and how to judge them.

The spec the engine (autograder/trusted, see its spec.py) runs: ``build_plan(plan)``
draws every input from the plan's seed and adds the calls (run once on the reference,
once sandboxed on the student's package) and the checks; ``MODELS`` says how saved
models are scored. Each check belongs to one nbgrader ``grade_id`` and has a weight;
the points of a grade_id (from the manifest's ``[points]``) are shared among its
checks in proportion to their weights.

Conventions checked here are the package's documented ones: layer losses
average over N, nets add ``0.5 * reg * sum(W**2)`` over weights only, linear
classifiers add ``reg * sum(W**2)``; update rules may put epsilon inside or
outside the square root.
"""
from __future__ import annotations

import numpy as np

from autograder.trusted.compare import (
    all_of,
    any_of,
    dict_arrays,
    float_problem,
    received,
    same_array,
    same_keys,
    same_scalar,
    unchanged_inputs,
)
from autograder.trusted.plan import Plan
from autograder.trusted.spec import ModelCheck

#: Saved models -> how the grader scores them on its own split (autograder/trusted/models.py).
MODELS = {
    "models/two_layer_net.npz": ModelCheck("test_two_layer_accuracy", ("TwoLayerNet",), "images",
                                           (("two_layer_val", "val"), ("two_layer_test", "test"))),
    "models/features_net.npz": ModelCheck("test_features_accuracy", ("TwoLayerNet", "FullyConnectedNet"), "features",
                                          (("features_net_test", "test"),)),
    "models/fc_net.npz": ModelCheck("test_fc_accuracy", ("FullyConnectedNet",), "images", (("fc_net_val", "val"),)),
}


# ---------------------------------------------------------------------------
# 01_layers
# ---------------------------------------------------------------------------
def _layers(P: Plan):
    L = {"module": "layers"}

    # Affine on 2-D and 4-D input (a missing reshape only shows on the 4-D one).
    N, M = P.dims(3, 6, 2)
    d = P.dims(2, 4, 3)
    D = int(np.prod(d))
    for tag, xshape in (("2d", (N, D)), ("4d", (N, *d))):
        c = P.call(f"affine.{tag}", "forward_backward",
                   dict(L, fn="affine_forward", backward="affine_backward", args=["x", "w", "b"], n_grads=3),
                   x=P.randn(*xshape), w=P.randn(D, M), b=P.randn(M), dout=P.randn(N, M))
        P.check(f"affine_forward.values_{tag}", "test_affine_forward", c,
                same_array("out", hint="reshape x to (N, D) with x.reshape(N, -1), then x @ w + b"),
                unchanged_inputs(), weight=1 if tag == "2d" else 2)
        P.check(f"affine_backward.dx_{tag}", "test_affine_backward", c,
                same_array("d0", hint="dx = dout @ w.T reshaped to x.shape",
                           shape_hint="dx must have the shape of x: reshape it back with .reshape(x.shape)"))
        P.check(f"affine_backward.dw_{tag}", "test_affine_backward", c,
                same_array("d1", hint="dw = x.reshape(N, -1).T @ dout (a sum over examples, not a mean)"))
        P.check(f"affine_backward.db_{tag}", "test_affine_backward", c,
                same_array("d2", hint="db = dout.sum(axis=0): sum over the examples (axis 0)"))

    # Elementwise activations, on 3-D input; values bounded away from 0 so x > 0 vs x >= 0 is moot.
    shape = tuple(P.dims(2, 5, 3))

    def away_from_zero(scale=1.0):
        x = P.randn(*shape, scale=scale)
        return np.where(np.abs(x) < 1e-3, 1e-3, x)

    for name, grade, kwargs in (("relu", "test_relu", {}), ("sigmoid", "test_sigmoid", {}),
                                ("leaky_relu", "test_leaky_relu", {}),
                                ("leaky_relu_alpha", "test_leaky_relu", {"alpha": float(P.rng.uniform(0.1, 0.3))})):
        fn = name.replace("_alpha", "")
        c = P.call(f"{name}", "forward_backward",
                   dict(L, fn=f"{fn}_forward", backward=f"{fn}_backward", args=["x"], n_grads=1, kwargs=kwargs),
                   x=away_from_zero(3.0), dout=P.randn(*shape))
        P.check(f"{name}_forward.values", grade, c, same_array("out"), unchanged_inputs())
        hint = {"relu": "the gradient passes where the INPUT x > 0 (use the cached x, not dout or out)",
                "sigmoid": "dx = dout * out * (1 - out) with out the cached sigmoid output",
                }.get(fn, "dx = dout where x > 0, alpha * dout elsewhere")
        P.check(f"{name}_backward.dx", grade, c, same_array("d0", hint=hint))

    # Sigmoid far out in the tails must stay finite and exact (0 and 1, not nan).
    big = np.concatenate([P.randn(6, scale=300.0), [800.0, -800.0, 1000.0, -1000.0]])
    c = P.call("sigmoid.large", "forward", dict(L, fn="sigmoid_forward", args=["x"]), x=big)
    P.check("sigmoid_forward.large_inputs", "test_sigmoid", c,
            same_array("out", hint="use exp(-|x|) so nothing large is exponentiated"), weight=0.5)

    # Sandwich layers on 4-D input.
    U = {"module": "layer_utils"}
    for name in ("affine_relu", "affine_sigmoid"):
        c = P.call(f"{name}", "forward_backward",
                   dict(U, fn=f"{name}_forward", backward=f"{name}_backward", args=["x", "w", "b"], n_grads=3),
                   x=P.randn(N, *d), w=P.randn(D, M), b=P.randn(M), dout=P.randn(N, M))
        P.check(f"{name}_forward.values", "test_sandwich_layers", c, same_array("out"))
        P.check(f"{name}_backward.grads", "test_sandwich_layers", c,
                same_array("d0", hint="run the parts' backward passes in reverse order"),
                same_array("d1"), same_array("d2"))

    # Inverted dropout with a fixed seed (the mask comes from RandomState(seed)); graded with the FC nets.
    x = P.randn(*shape)
    keep = float(P.rng.uniform(0.3, 0.8))
    c = P.call("dropout", "forward_backward",
               dict(L, fn="dropout_forward", backward="dropout_backward", args=["x"], n_grads=1,
                    kwargs={"dropout_param": {"mode": "train", "p": keep, "seed": int(P.rng.integers(0, 2**31 - 1))}}),
               x=x, dout=P.randn(*shape))
    P.check("dropout_forward.train", "test_fc_gradcheck", c,
            same_array("out", hint="keep units where rng.random_sample(x.shape) < p and divide them by p "
                       "(inverted dropout)"), unchanged_inputs(), weight=0.5)
    P.check("dropout_backward.dx", "test_fc_gradcheck", c,
            same_array("d0", hint="dx = dout * mask, the mask of the forward pass"), weight=0.5)

    # Losses: small random scores, scores of +-1000, and margins where every class is inside the margin.
    N, C = P.dims(4, 8, 2)
    y = P.rng.integers(0, C, size=N)
    huge = np.where(P.rng.random((N, C)) < 0.5, -1000.0, 1000.0) + P.randn(N, C)
    close = 0.1 * P.randn(N, C)  # every margin positive: counting the correct class adds exactly 1
    cases = {"random": P.randn(N, C, scale=2.0), "large": huge, "close": close}
    for loss, grade in (("svm_loss", "test_svm_loss"), ("softmax_loss", "test_softmax_loss")):
        for tag, x in cases.items():
            c = P.call(f"{loss}.{tag}", "loss", dict(L, fn=loss, args=["x", "y"]), x=x, y=y)
            hint = {
                ("svm_loss", "close"): "the correct class must contribute no margin (set margins[i, y_i] = 0)",
                ("softmax_loss", "large"): "subtract each row's maximum before exp; use log-sum-exp, not log(p)",
                ("svm_loss", "large"): "average over N; the correct class contributes no margin",
            }.get((loss, tag), "average the loss and the gradient over the N examples")
            P.check(f"{loss}.loss_{tag}", grade, c, same_scalar("loss", hint=hint))
            P.check(f"{loss}.dx_{tag}", grade, c,
                    same_array("grad", hint="divide dx by N; for the correct class subtract the count "
                               "(-=, not =)" if loss == "svm_loss" else hint))


# ---------------------------------------------------------------------------
# Nets (02_two_layer_net, 04_fully_connected_nets)
# ---------------------------------------------------------------------------
def _init_stats(prefix, weight_scale, dtype=None):
    """Weights ~ N(0, weight_scale**2) (std, not variance), biases exactly 0."""
    def verify(ref, got):
        problem = same_keys(prefix, hint="name the parameters W1, b1, W2, b2, ... (1-based)")(ref, got)
        if problem:
            return problem
        problem = dict_arrays(prefix, shapes_only=True)(ref, got)
        if problem:
            return problem
        for key in ref.keys[prefix]:
            g = got.arrays[f"{prefix}.{key}"]
            if dtype is not None and str(g.dtype) != dtype:
                return f"`{prefix}.{key}` has dtype {g.dtype}, expected {dtype} (the dtype argument)"
            if key.startswith("b"):
                if np.any(g != 0):
                    return f"`{prefix}.{key}` must start at exactly 0, got max |b| = {np.max(np.abs(g)):.3g}"
            elif key.startswith("W"):
                std, mean = float(np.std(g)), float(np.mean(g))
                # Five standard errors of the sample mean and std of n normal draws: a correct
                # init fails about once in a million, weight_scale**2 or a wrong scale never passes.
                n = g.size
                std_tol, mean_tol = 5 / np.sqrt(2 * n), 5 / np.sqrt(n)
                if abs(std / weight_scale - 1) > std_tol or abs(mean) > mean_tol * weight_scale:
                    return (f"`{prefix}.{key}` has mean {mean:.3g} and std {std:.3g}; expected mean 0 and std "
                            f"weight_scale = {weight_scale:g}. Likely cause: weight_scale is the standard deviation "
                            f"(weight_scale * np.random.randn(...)), not the variance")
        return None
    return verify


def _nets(P: Plan):
    F = {"module": "classifiers.fc_net"}

    # TwoLayerNet initialisation: big enough layers for a 10 % tolerance on the std.
    ws = float(P.rng.uniform(0.01, 0.1))
    kw = dict(input_dim=int(P.rng.integers(150, 250)), hidden_dim=int(P.rng.integers(80, 120)),
              num_classes=int(P.rng.integers(5, 12)), weight_scale=ws)
    c = P.call("two_layer.init", "net_init", dict(F, cls="TwoLayerNet", kwargs=kw, np_seed=P.np_seed))
    P.check("two_layer.init_keys_shapes", "test_two_layer_init", c, dict_arrays("params", shapes_only=True))
    P.check("two_layer.init_statistics", "test_two_layer_init", c, _init_stats("params", ws), weight=2)
    # The documented draw order makes runs reproducible after np.random.seed (curves match the reference's).
    P.check("two_layer.init_same_draws", "test_two_layer_init", c,
            dict_arrays("params", hint="draw W1 then W2 as weight_scale * np.random.randn(rows, columns) from "
                        "numpy's global generator, biases zeros"), weight=0.5)

    # TwoLayerNet loss and gradients, with and without regularisation.
    N, D, H, C = P.dims(3, 7, 1) + P.dims(4, 8, 1) + P.dims(5, 9, 1) + P.dims(3, 6, 1)
    params = {"W1": P.randn(D, H, scale=0.5), "b1": P.randn(H, scale=0.1),
              "W2": P.randn(H, C, scale=0.5), "b2": P.randn(C, scale=0.1)}
    X, y = P.randn(N, D), P.rng.integers(0, C, size=N)
    for tag, reg in (("noreg", 0.0), ("reg", float(P.rng.uniform(0.5, 1.5)))):
        kw = dict(input_dim=D, hidden_dim=H, num_classes=C, weight_scale=1e-3, reg=reg)
        c = P.call(f"two_layer.loss_{tag}", "net_loss",
                   dict(F, cls="TwoLayerNet", kwargs=kw, params=sorted(params), np_seed=P.np_seed, loss_only=True),
                   X=X, y=y, **{"param." + k: v for k, v in params.items()})
        if tag == "noreg":
            P.check("two_layer.scores", "test_two_layer_loss", c,
                    same_array("scores", hint="scores = relu(X W1 + b1) W2 + b2, with no softmax"))
        P.check(f"two_layer.loss_{tag}", "test_two_layer_loss", c,
                same_scalar("loss", hint="data loss = softmax loss; add 0.5 * reg * (sum(W1**2) + sum(W2**2)), "
                            "weights only, not biases"))
        P.check(f"two_layer.grad_shapes_{tag}", "test_two_layer_loss", c,
                dict_arrays("grads", shapes_only=True), weight=0.5)
        P.check(f"two_layer.grads_{tag}", "test_two_layer_gradcheck", c,
                dict_arrays("grads", hint="backpropagate through affine-relu-affine; add reg * W to each dW"))
        P.check(f"two_layer.loss_only_{tag}", "test_two_layer_gradcheck", c,
                same_scalar("loss_only", hint="loss(X, y, grads=False) must return the same loss (the numeric "
                            "gradient check calls it): compute the loss before the `if not grads` return"),
                weight=0.25)

    # FullyConnectedNet initialisation in float64 and float32.
    for dtype in ("float64", "float32"):
        ws = float(P.rng.uniform(0.01, 0.1))
        hidden = [int(h) for h in P.rng.integers(60, 100, size=2)]
        kw = dict(hidden_dims=hidden, input_dim=int(P.rng.integers(150, 250)),
                  num_classes=int(P.rng.integers(5, 12)), weight_scale=ws, dtype=dtype)
        c = P.call(f"fc.init_{dtype}", "net_init", dict(F, cls="FullyConnectedNet", kwargs=kw, np_seed=P.np_seed))
        P.check(f"fc.init_{dtype}", "test_fc_init_loss", c, _init_stats("params", ws, dtype=dtype))
        if dtype == "float64":
            P.check("fc.init_same_draws", "test_fc_init_loss", c,
                    dict_arrays("params", hint="draw W1, W2, ... in order as weight_scale * rng.randn(d_in, d_out)"),
                    weight=0.25)

    # FullyConnectedNet loss and gradients: 2 and 3 hidden layers, reg 0 and reg > 1 (last layer included).
    for depth in (2, 3):
        N, D, C = P.dims(3, 6, 1) + P.dims(4, 7, 1) + P.dims(3, 6, 1)
        hidden = P.dims(4, 8, depth)
        sizes = [D] + hidden + [C]
        params = {}
        for i in range(len(sizes) - 1):
            params[f"W{i + 1}"] = P.randn(sizes[i], sizes[i + 1], scale=0.6)
            params[f"b{i + 1}"] = P.randn(sizes[i + 1], scale=0.1)
        X, y = P.randn(N, D), P.rng.integers(0, C, size=N)
        for tag, reg in (("noreg", 0.0), ("reg", float(P.rng.uniform(2.0, 4.0)))):
            kw = dict(hidden_dims=hidden, input_dim=D, num_classes=C, reg=reg, weight_scale=1e-2, dtype="float64")
            c = P.call(f"fc.loss_{depth}_{tag}", "net_loss",
                       dict(F, cls="FullyConnectedNet", kwargs=kw, params=sorted(params), np_seed=P.np_seed,
                            loss_only=True),
                       X=X, y=y, **{"param." + k: v for k, v in params.items()})
            if tag == "noreg":
                P.check(f"fc.scores_{depth}", "test_fc_init_loss", c, same_array("scores"), weight=0.5)
            P.check(f"fc.loss_{depth}_{tag}", "test_fc_init_loss", c,
                    same_scalar("loss", hint="add 0.5 * reg * sum(W**2) for EVERY layer's W, the last included"))
            P.check(f"fc.grads_{depth}_{tag}", "test_fc_gradcheck", c,
                    dict_arrays("grads", hint="add reg * W to every dW, the last layer included"))
            P.check(f"fc.loss_only_{depth}_{tag}", "test_fc_gradcheck", c,
                    same_scalar("loss_only", hint="loss(X, y, grads=False) must return the same loss (the "
                                "numeric gradient check calls it)"), weight=0.25)

    # A net with dropout (fixed seed, so every call uses the same masks).
    N, D, C = P.dims(3, 6, 1) + P.dims(4, 7, 1) + P.dims(3, 6, 1)
    hidden = P.dims(5, 9, 2)
    sizes = [D] + hidden + [C]
    params = {}
    for i in range(len(sizes) - 1):
        params[f"W{i + 1}"] = P.randn(sizes[i], sizes[i + 1], scale=0.6)
        params[f"b{i + 1}"] = P.randn(sizes[i + 1], scale=0.1)
    kw = dict(hidden_dims=hidden, input_dim=D, num_classes=C, reg=float(P.rng.uniform(0.1, 1.0)),
              weight_scale=1e-2, dtype="float64", dropout_keep_ratio=float(P.rng.uniform(0.4, 0.8)),
              seed=int(P.rng.integers(0, 2**31 - 1)))
    c = P.call("fc.loss_dropout", "net_loss",
               dict(F, cls="FullyConnectedNet", kwargs=kw, params=sorted(params), np_seed=P.np_seed),
               X=P.randn(N, D), y=P.rng.integers(0, C, size=N), **{"param." + k: v for k, v in params.items()})
    P.check("fc.loss_dropout", "test_fc_gradcheck", c, same_scalar("loss"),
            dict_arrays("grads", hint="apply the same dropout mask in the backward pass"), weight=0.5)

    # Overfitting 50 examples with the package's own net, Solver and SGD.
    N, D, C = 50, 20, 5
    centers = P.randn(C, D, scale=2.0)
    y = np.arange(N) % C
    X = centers[y] + P.randn(N, D, scale=0.5)
    kw = dict(hidden_dims=[50, 50], input_dim=D, num_classes=C, weight_scale=5e-2, dtype="float64")
    skw = dict(update_rule="sgd", optim_config={"learning_rate": 0.1}, batch_size=25, num_epochs=40,
               verbose=False, progress=False)
    c = P.call("fc.overfit", "net_train",
               dict(F, cls="FullyConnectedNet", kwargs=kw, solver_kwargs=skw, np_seed=P.np_seed),
               timeout=30.0, X=X, y=y)
    P.check("fc.overfit_small_data", "test_fc_overfit", c, _overfit(X, y, 1.0))


def relu_net_scores(params, X):
    """Scores of affine - ReLU - ... - affine with params W1, b1, ..., WL, bL (the trusted forward pass)."""
    L = len(params) // 2
    a = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
    for i in range(1, L + 1):
        a = a @ params[f"W{i}"].astype(np.float64) + params[f"b{i}"].astype(np.float64)
        if i < L:
            a = np.maximum(a, 0)
    return a


def _overfit(X, y, threshold):
    """The trained params, run through the trusted forward pass, classify the training set."""
    def verify(ref, got):
        problem = dict_arrays("params", shapes_only=True)(ref, got)
        if problem:
            return problem
        params = {k: got.arrays[f"params.{k}"] for k in got.keys["params"]}
        with np.errstate(all="ignore"):
            acc = float(np.mean(np.argmax(relu_net_scores(params, X), axis=1) == y))
        if not acc >= threshold:
            return (f"after training, the net classifies {acc:.1%} of the 50 training examples correctly; "
                    f"overfitting them should reach {threshold:.0%} (the reference does). Check the forward and "
                    f"backward passes and the Solver's update step")
        return None
    return verify


# ---------------------------------------------------------------------------
# Optimizers (04_fully_connected_nets)
# ---------------------------------------------------------------------------
def _adam_eps_inside(w, dws, config):
    """Adam with epsilon inside the square root: an accepted variant of the reference."""
    lr, b1, b2, eps = (config.get(k, d) for k, d in
                       (("learning_rate", 1e-3), ("beta1", 0.9), ("beta2", 0.999), ("epsilon", 1e-8)))
    m, v, t = np.zeros_like(w), np.zeros_like(w), 0
    out = {}
    for k, dw in enumerate(dws):
        t += 1
        m = b1 * m + (1 - b1) * dw
        v = b2 * v + (1 - b2) * dw * dw
        step = -lr * (m / (1 - b1 ** t)) / np.sqrt(v / (1 - b2 ** t) + eps)
        w = w + step
        out[f"step{k}"] = step
    return out


def _rmsprop_eps_inside(w, dws, config):
    """RMSProp with epsilon inside the square root: an accepted variant of the reference."""
    lr, rho, eps = (config.get(k, d) for k, d in
                    (("learning_rate", 1e-2), ("decay_rate", 0.99), ("epsilon", 1e-8)))
    cache = np.zeros_like(w)
    out = {}
    for k, dw in enumerate(dws):
        cache = rho * cache + (1 - rho) * dw * dw
        step = -lr * dw / np.sqrt(cache + eps)
        w = w + step
        out[f"step{k}"] = step
    return out


#: rule -> (grade_id, state keys, config to pass, hint, accepted variant or None)
_RULES = {
    "sgd_momentum": ("test_sgd_momentum", ["velocity"],
                     "v = momentum * v - learning_rate * dw; next_w = w + v; store v in config['velocity']", None),
    "rmsprop": ("test_rmsprop", ["cache"],
                "cache = decay_rate * cache + (1 - decay_rate) * dw**2; next_w = w - lr * dw / (sqrt(cache) + eps); "
                "store the cache", _rmsprop_eps_inside),
    "adam": ("test_adam", ["m", "v", "t"],
             "increment t BEFORE using it; m and v are the uncorrected moments; divide by (1 - beta**t) for the "
             "bias correction; store m, v, t", _adam_eps_inside),
}

STEPS = 5


def _optim(P: Plan):
    O = {"module": "optim"}
    for rule, (grade, state, hint, variant) in _RULES.items():
        for tag, config in (("defaults", None), ("config", None)):
            shape = tuple(P.dims(3, 6, 2))
            w = P.randn(*shape)
            dws = [P.randn(*shape) for _ in range(STEPS)]
            if tag == "config":
                config = {"learning_rate": float(P.rng.uniform(0.01, 0.1))}
                if rule == "sgd_momentum":
                    config["momentum"] = float(P.rng.uniform(0.5, 0.95))
                elif rule == "rmsprop":
                    config["decay_rate"] = float(P.rng.uniform(0.8, 0.98))
                else:
                    config["beta1"] = float(P.rng.uniform(0.7, 0.95))
                    config["beta2"] = float(P.rng.uniform(0.9, 0.999))
            c = P.call(f"{rule}.{tag}", "optim", dict(O, fn=rule, steps=STEPS, state=state, config=config),
                       w=w, **{f"dw{k}": dw for k, dw in enumerate(dws)})
            steps = []
            for k in range(STEPS):
                main = same_array(f"step{k}", tol=1e-6, hint=hint)
                if variant is not None:
                    main = any_of(main, same_array(f"step{k}", tol=1e-6, ref_name=f"alt.step{k}"),
                                  explain="epsilon inside the square root is accepted too")
                # Steps compared on their own scale; w_k = w_(k-1) + step_k follows from them.
                steps.append(main)
            P.check(f"{rule}.{tag}_first_step", grade, c, steps[0])
            P.check(f"{rule}.{tag}_later_steps", grade, c, all_of(*steps[1:]))
            P.check(f"{rule}.{tag}_state", grade, c,
                    all_of(*(_state_entry(f"state{k}", key, hint) for k in range(STEPS) for key in state)),
                    weight=0.5)
            if variant is not None:
                c_obj = P.calls[-1]
                c_obj.params["_variant"] = rule  # the trusted side adds alt.* references


def _state_entry(prefix, key, hint):
    name = f"{prefix}.{key}"

    def verify(ref, got):
        if key not in got.keys.get(prefix, []):
            return f"the returned config has no `{key}` after step {prefix[5:]}: store the new state in config['{key}']"
        if key == "t":
            t, problem = received(got, name, want_scalar=True)
            if problem:
                return f"config['t'] must be a number: {problem}"
            if t.dtype.kind not in "iuf" or float(t) != float(ref.arrays[name]):
                return (f"config['t'] is {t.item()!r:.40} after step {int(prefix[5:]) + 1}, expected "
                        f"{float(ref.arrays[name]):g}: add 1 to t once per call, before using it")
            return None
        return same_array(name, tol=1e-6, hint=hint)(ref, got)
    return verify


def add_variant_references(call, outcome):
    """Add the accepted-variant references (``alt.w<k>``) to a reference outcome of an optimizer call."""
    rule = call.params.get("_variant")
    if rule is None or outcome.status != "ok":
        return
    fn = _adam_eps_inside if rule == "adam" else _rmsprop_eps_inside
    dws = [call.arrays[f"dw{k}"] for k in range(call.params["steps"])]
    for name, value in fn(call.arrays["w"], dws, call.params.get("config") or {}).items():
        outcome.arrays["alt." + name] = value


# ---------------------------------------------------------------------------
# Solver (02_two_layer_net)
# ---------------------------------------------------------------------------
def _solver(P: Plan):
    n_train, n_val = 20, 40
    kwargs = dict(optim_config={"learning_rate": float(P.rng.uniform(0.2, 0.3))},
                  lr_decay=float(P.rng.uniform(0.8, 0.9)), batch_size=10, num_epochs=8,
                  num_train_samples=None, verbose=False, progress=False)
    c = P.call("solver.toy", "solver",
               dict(kwargs=kwargs, theta0=0.0, phi0=[float(v) for v in P.randn(2)], np_seed=P.np_seed),
               X_train=P.rng.uniform(0.5, 3.5, size=(n_train, 1)), y_train=np.ones(n_train, dtype=np.int64),
               X_val=P.rng.uniform(1.0, 3.0, size=(n_val, 1)), y_val=np.ones(n_val, dtype=np.int64))
    P.check("solver.loss_history", "test_solver", c,
            same_array("loss_history", hint="update every parameter with self.update_rule and store both the new "
                       "value and the returned config"), weight=2)
    P.check("solver.configs_written_back", "test_solver", c,
            dict_arrays("count", tol=0, hint="store the config returned by the update rule in self.optim_configs[p]"))
    P.check("solver.lr_decay", "test_solver", c,
            dict_arrays("learning_rate", tol=1e-9,
                        hint="multiply every config's learning_rate by lr_decay at the end of each epoch"), weight=2)
    P.check("solver.best_params_kept", "test_solver", c,
            same_scalar("best_val_acc", tol=1e-12),
            dict_arrays("final_params", hint="at the end of train the model must hold the params with the best "
                        "validation accuracy, not the last ones"), weight=2)
    P.check("solver.best_params_are_copies", "test_solver", c,
            dict_arrays("best_params_after_edit", hint="keep COPIES (w.copy()) of the params: update rules may "
                        "change the arrays in place"))


# ---------------------------------------------------------------------------
# Linear classifiers (03_features)
# ---------------------------------------------------------------------------
def _linear(P: Plan):
    Lm = {"module": "classifiers.linear"}
    N, D, C = P.dims(6, 12, 1) + P.dims(5, 9, 1) + P.dims(3, 6, 1)
    X, y = P.randn(N, D), P.rng.integers(0, C, size=N)
    for loss, grade in (("svm", "test_linear_svm_loss"), ("softmax", "test_linear_softmax_loss")):
        for impl in ("naive", "vectorized"):
            cases = [("reg", P.randn(D, C, scale=0.5), float(P.rng.uniform(0.1, 1.0)))]
            if loss == "softmax":
                cases.append(("large", P.randn(D, C, scale=300.0), 0.0))
            for tag, W, reg in cases:
                c = P.call(f"linear.{loss}_{impl}_{tag}", "loss",
                           dict(Lm, fn=f"{loss}_loss_{impl}", args=["W", "X", "y"], extra=[reg]), W=W, X=X, y=y)
                hint = ("add reg * sum(W**2) to the loss and 2 * reg * W to the gradient (no 0.5 here)"
                        if tag == "reg" else "subtract each row's maximum score before exp")
                P.check(f"linear.{loss}_{impl}_{tag}_loss", grade, c, same_scalar("loss", hint=hint))
                P.check(f"linear.{loss}_{impl}_{tag}_grad", grade, c, same_array("grad", hint=hint))

    # SoftmaxRegression, the Solver model of 03_features (the nets' 0.5 * reg convention, b unregularised).
    N, D, C = P.dims(4, 8, 1) + P.dims(5, 9, 1) + P.dims(3, 6, 1)
    params = {"W": P.randn(D, C, scale=0.5), "b": P.randn(C, scale=0.1)}
    kw = dict(input_dim=D, num_classes=C, weight_scale=1e-3, reg=float(P.rng.uniform(0.5, 1.5)))
    c = P.call("linear.softmax_regression", "net_loss",
               dict(Lm, cls="SoftmaxRegression", kwargs=kw, params=sorted(params), np_seed=P.np_seed),
               X=P.randn(N, D), y=P.rng.integers(0, C, size=N), **{"param." + k: v for k, v in params.items()})
    P.check("linear.softmax_regression_scores", "test_linear_classifier", c, same_array("scores"), weight=0.5)
    P.check("linear.softmax_regression_loss", "test_linear_classifier", c,
            same_scalar("loss", hint="softmax loss plus 0.5 * reg * sum(W**2); b is not regularised"),
            dict_arrays("grads", hint="dW = X.T @ dscores + reg * W; db = dscores.sum(axis=0)"))

    # Training on separable data. The held-out X_test never leaves this process: the runner returns
    # W, and the accuracy, the loss W gives and the history's consistency are all computed here.
    N, D, C = 120, 10, 3
    centers = P.randn(C, D, scale=3.0)
    y = np.arange(N) % C
    X = centers[y] + P.randn(N, D)
    y_test = np.arange(60) % C
    X_test = centers[y_test] + P.randn(60, D)
    losses = (("LinearSVM", "svm_loss_vectorized"), ("Softmax", "softmax_loss_vectorized"))
    for cls, loss_name in losses:
        kwargs = dict(learning_rate=1e-2, reg=1e-4, num_iters=150, batch_size=40, verbose=False)
        c = P.call(f"linear.train_{cls}", "linear_train",
                   dict(Lm, cls=cls, kwargs=kwargs, np_seed=P.np_seed), timeout=20.0, X=X, y=y)
        P.check(f"linear.{cls}_train", "test_linear_classifier", c,
                _linear_training(X, y, X_test, y_test, kwargs, loss_name, P.np_seed))
        P.check(f"linear.{cls}_predict", "test_linear_classifier", c, _linear_predict(X))

    # SGD itself, replayed: on N copies of one example every minibatch is the same, so any honest
    # sampling (with or without replacement) takes exactly the reference's steps from the initial
    # draw, and W and the history must equal the reference's. A closed-form W or an invented
    # history cannot.
    Nr, Dr, Cr = 10, P.dims(6, 10, 1)[0], P.dims(3, 5, 1)[0]
    Xr = np.repeat(P.randn(1, Dr), Nr, axis=0)
    yr = np.full(Nr, Cr - 1)
    for cls, _ in losses:
        kwargs = dict(learning_rate=float(P.rng.uniform(0.02, 0.05)), reg=float(P.rng.uniform(0.05, 0.2)),
                      num_iters=30, batch_size=5, verbose=False)
        c = P.call(f"linear.sgd_{cls}", "linear_train",
                   dict(Lm, cls=cls, kwargs=kwargs, np_seed=P.np_seed), X=Xr, y=yr)
        hint = ("start from the given W = 0.001 * np.random.randn(D, C), then every iteration: loss, grad = "
                "self.loss(X_batch, y_batch, reg); append loss; W -= learning_rate * grad (fix the loss checks first)")
        P.check(f"linear.{cls}_sgd_steps", "test_linear_classifier", c,
                same_array("loss_history", tol=1e-6, hint=hint), same_array("W", tol=1e-6, hint=hint))


def _linear_loss(name):
    """The reference's vectorized linear loss ``name`` (run here, in the trusted process)."""
    from autograder.trusted.reference import reference_module

    return getattr(reference_module("classifiers.linear"), name)


def _float_output(got, name, shape):
    """(array, None) when output ``name`` was received as floats of ``shape``, else (None, why)."""
    problem = float_problem(got, name)
    if problem:
        return None, problem
    array = got.arrays[name]
    if array.shape != shape:
        return None, f"`{name}` has shape {array.shape}, expected {shape}"
    if not np.all(np.isfinite(array)):
        return None, f"`{name}` holds nan/inf"
    return array, None


def _linear_training(X, y, X_test, y_test, kwargs, loss_name, np_seed):
    """train ran SGD from the documented initial draw and learned; every claim is recomputed here.

    With ``W0 = 0.001 * randn(D, C)`` after ``np.random.seed(np_seed)`` (the given first line of
    train) and ``L`` the reference loss on the training set ``X: (N, D)``:

    - the returned ``W: (D, C)`` classifies >= 90 % of the held-out ``X_test`` (never sent to the
      runner) and ``L(W) < 0.3 * L(W0)``;
    - the history has ``num_iters`` finite entries; the first is the loss of W0 on some minibatch,
      so it lies within the per-example losses of W0; the mean of the last 10 is within
      ``0.03 * L(W0)`` of ``L(W)`` (honest SGD, with or without replacement, differs by at most
      0.0104 * L(W0) over 600 runs of this set-up).

    These catch an invented history; a closed-form W with a made-up but consistent history is
    caught by the SGD replay (``linear.<cls>_sgd_steps``).
    """
    reg, num_iters = kwargs["reg"], kwargs["num_iters"]
    D, C = X.shape[1], int(y.max()) + 1

    def verify(ref, got):
        h, problem = _float_output(got, "loss_history", (num_iters,))
        if problem:
            return f"train must return the list of losses, one per iteration: {problem}"
        W, problem = _float_output(got, "W", (D, C))
        if problem:
            return f"after training the classifier must hold W of shape (D, C) = ({D}, {C}): {problem}"
        loss = _linear_loss(loss_name)
        W0 = 0.001 * np.random.RandomState(np_seed).randn(D, C)
        with np.errstate(all="ignore"):
            L0, LW = loss(W0, X, y, reg)[0], loss(W.astype(np.float64), X, y, reg)[0]
            per_example = [loss(W0, X[i:i + 1], y[i:i + 1], reg)[0] for i in range(len(X))]
            acc = float(np.mean(np.argmax(X_test @ W, axis=1) == y_test))
        lo, hi = min(per_example), max(per_example)
        slack = 1e-7 * (1 + abs(hi))  # rounding only
        if not lo - slack <= h[0] <= hi + slack:
            return (f"the first loss of the history is {h[0]:.6g}, but any minibatch loss of the initial "
                    f"W = 0.001 * np.random.randn(D, C) lies in [{lo:.6g}, {hi:.6g}]: record the loss that "
                    "self.loss returns for the current W before updating it")
        if not (np.isfinite(LW) and LW < 0.3 * L0):
            return (f"the loss of the returned W on the training data is {LW:.4g}, the initial W's is {L0:.4g}: "
                    "training did not reduce it; step against the gradient: W -= learning_rate * grad, "
                    "on a batch X[idx], y[idx]")
        if not abs(float(np.mean(h[-10:])) - LW) <= 0.03 * L0:
            return (f"the last 10 losses of the history average {np.mean(h[-10:]):.4g}, but the returned W "
                    f"gives {LW:.4g} on the training data: the history must be the losses of the W being trained")
        if acc < 0.9:
            return (f"the trained W classifies {acc:.1%} of well-separated held-out data correctly "
                    "(the reference: > 90%)")
        return None
    return verify


def _linear_predict(X):
    """predict is argmax(X W) of the classifier's own W (on the training inputs ``X: (N, D)``)."""
    def verify(ref, got):
        pred, problem = received(got, "pred_train")
        if problem:
            return f"predict must return an ndarray of labels: {problem}"
        W, problem = _float_output(got, "W", ref.arrays["W"].shape)
        if problem:
            return f"after training the classifier must hold W of shape (D, C): {problem}"
        if pred.shape != (len(X),):
            return f"predict returned shape {pred.shape}, expected ({len(X)},)"
        with np.errstate(all="ignore"):
            want = np.argmax(X @ W, axis=1)
        if not np.array_equal(pred, want):
            return (f"predict disagrees with argmax(X @ W) on {int(np.sum(pred != want))} of {len(want)} examples: "
                    "predict the class with the highest score, np.argmax(X @ self.W, axis=1)")
        return None
    return verify


# ---------------------------------------------------------------------------
def build_plan(P: Plan):
    """Add every call and check of the seed ``P`` was made with."""
    _layers(P)
    _nets(P)
    _solver(P)
    _linear(P)
    _optim(P)
