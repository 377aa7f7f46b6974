"""The trusted checks of the generalization assignment: the calls to make and how to judge them.

The spec the engine (autograder/trusted, see its spec.py) runs: ``build_plan(plan)`` draws every
input from the plan's seed and adds the calls (run once on the reference, once sandboxed on the
student's package) and the checks; ``MODELS`` says how the saved model is scored. Each check
belongs to one nbgrader ``grade_id`` (a ``test_*`` cell of the notebooks) and has a weight; the
points of a grade id (the manifest's ``[points]``) are shared among its checks in proportion to
their weights.

Every function graded here is one the manifest's ``[package]`` lists and is named in the visible
part of that grade id's check cell. How each is judged:

- ``mse_loss``, the naive convolution and max pooling (forward and backward), ``ConvNet.loss``:
  against the reference on random shapes, strides, paddings and values, at the notebooks'
  tolerances; the pooling's gradient with ties too (the first maximum, as documented);
- ``count_params``, ``grad_norm``, ``interpolate_params``: on dicts of random arrays of random
  shapes, read by a trusted model that is nothing but its params (``count_params`` must return an
  int; ``interpolate_params`` new arrays, its inputs unchanged);
- ``pca_project``: against the reference up to the sign of each component (the SVD's sign is
  arbitrary: a component and its column of Z may flip together), on points with distinct
  variances, more dimensions than points as well as fewer;
- ``input_grad_norm``: with a trusted linear classifier whose dL/dX is known, which must be asked
  for it (``loss(X, y, input_grad=True)``).
"""
from __future__ import annotations

import numpy as np

from autograder.trusted.compare import dict_arrays, float_problem, received, same_array, same_scalar, unchanged_inputs
from autograder.trusted.plan import Plan
from autograder.trusted.spec import ModelCheck

#: Saved models -> how the grader scores them on its own split (autograder/trusted/models.py): the
#: one-channel digits of analysis.load_digits, what 03's accuracy cell evaluates.
MODELS = {
    "models/cnn.npz": ModelCheck("test_cnn_accuracy", ("ConvNet",), "gray",
                                 (("cnn_val", "val"), ("cnn_test", "test"))),
}


# ---------------------------------------------------------------------------
# Verifiers written for this assignment
# ---------------------------------------------------------------------------
def _exact_int(name, hint):
    """The output `name` is a whole number (an int, not a float) equal to the reference's."""
    def verify(ref, got):
        value, problem = received(got, name, want_scalar=True)
        if problem:
            return problem
        if value.dtype.kind not in "iu":
            return f"`{name}` must be a Python int, got a {value.dtype} ({value.item()!r:.40}); {hint}"
        want = int(ref.arrays[name])
        if int(value) != want:
            return f"`{name}` is {int(value)}, expected {want}; {hint}"
        return None
    return verify


def _no_alias(hint):
    def verify(ref, got):
        value, problem = received(got, "aliased", want_scalar=True)
        if problem or int(value) != 0:
            return f"the result holds the input arrays themselves; {hint}"
        return None
    return verify


def _asked_for_dX(ref, got):
    value, problem = received(got, "input_grad_calls", want_scalar=True)
    if problem or int(value) < 1:
        return ("the model was never asked for dL/dX: call model.loss(X, y, input_grad=True), which returns "
                "(loss, grads, dX)")
    return None


def _pca_up_to_sign(k, tol=1e-6):
    """Z (M, k), components (k, P) and explained (k,) equal the reference's, each component (and its
    column of Z) allowed to have either sign."""
    def verify(ref, got):
        for name in ("Z", "components", "explained"):
            problem = float_problem(got, name)
            if problem:
                return problem
            if got.arrays[name].shape != ref.arrays[name].shape:
                hint = {"components": "the components are the first k ROWS of Vt, (k, P)",
                        "Z": "Z is the centred X projected onto the components, (M, k)",
                        "explained": "one fraction per component, (k,)"}[name]
                return f"`{name}` has shape {got.arrays[name].shape}, expected {ref.arrays[name].shape}: {hint}"
        C, Cg = ref.arrays["components"], got.arrays["components"].astype(np.float64)
        signs = np.where(np.sum(C * Cg, axis=1) < 0, -1.0, 1.0)
        problem = _close(C, Cg * signs[:, None], "components", tol,
                         "the first k rows of Vt of the SVD of the CENTRED X (X - X.mean(axis=0)), in the order of "
                         "the singular values")
        if problem:
            return problem
        problem = _close(ref.arrays["Z"], got.arrays["Z"].astype(np.float64) * signs[None, :], "Z", tol,
                         "Z = (X - X.mean(axis=0)) @ components.T (the centred rows, projected)")
        if problem:
            return problem
        return _close(ref.arrays["explained"], got.arrays["explained"].astype(np.float64), "explained", tol,
                      "S[:k]**2 / sum(S**2), the squared singular values over the sum of all of them")
    return verify


def _close(expected, got, name, tol, hint):
    if not np.all(np.isfinite(got)):
        return f"`{name}` holds nan or inf; likely cause: {hint}"
    scale = max(float(np.max(np.abs(expected))), 1e-12)
    err = float(np.max(np.abs(got - expected))) / scale
    if err > tol:
        return (f"`{name}` is wrong (largest error {err:.3g} of the largest expected value, tolerance {tol:g}, "
                f"a component's sign aside); likely cause: {hint}")
    return None


# ---------------------------------------------------------------------------
# 01_function_fitting
# ---------------------------------------------------------------------------
def _regression(P: Plan):
    R = {"module": "regression"}
    for tag, (N, K) in (("wide", (P.dims(3, 7, 1)[0], P.dims(2, 4, 1)[0])), ("column", (P.dims(4, 9, 1)[0], 1))):
        c = P.call(f"mse.{tag}", "loss", dict(R, fn="mse_loss", args=["pred", "y"]),
                   pred=P.randn(N, K, scale=2.0), y=P.randn(N, K))
        P.check(f"mse_loss.loss_{tag}", "test_mse_loss", c,
                same_scalar("loss", tol=1e-9, hint="the MEAN of (pred - y)**2 over all N * K entries"))
        P.check(f"mse_loss.grad_{tag}", "test_mse_loss", c,
                same_array("grad", tol=1e-9, hint="dpred = 2 * (pred - y) / (N * K): the factor 2, the sign "
                           "(pred - y, not y - pred) and the division by the number of entries"),
                unchanged_inputs())


def _random_params(P: Plan, prefix, shapes):
    return {f"{prefix}.{k}": P.randn(*shape) for k, shape in shapes.items()}


def _analysis(P: Plan):
    A = {"module": "analysis"}

    # count_params: arrays of 1 to 4 dimensions and a 0-d one, read from a model's params.
    a, b, c, d = P.dims(2, 6, 4)
    shapes = {"W1": (a, b), "b1": (b,), "kernel": (c, a, d, 2), "scale": ()}
    c_id = P.call("count_params", "structured_call",
                  dict(A, fn="count_params", outputs=["count"],
                       args=[{"kind": "params_model", "prefix": "p", "keys": sorted(shapes)}]),
                  **_random_params(P, "p", shapes))
    P.check("count_params.count", "test_count_params", c_id,
            _exact_int("count", "count every entry of every array of model.params (np.size), biases included, "
                       "as an int"), unchanged_inputs(), weight=2)

    # grad_norm: one array, then several of different shapes.
    for tag, shapes in (("one", {"W": tuple(P.dims(2, 5, 2))}),
                        ("several", {"W1": tuple(P.dims(2, 5, 2)), "b1": (P.dims(2, 6, 1)[0],),
                                     "W2": tuple(P.dims(2, 4, 3))})):
        c_id = P.call(f"grad_norm.{tag}", "structured_call",
                      dict(A, fn="grad_norm", outputs=["norm"],
                           args=[{"kind": "dict", "prefix": "g", "keys": sorted(shapes)}]),
                      **_random_params(P, "g", shapes))
        P.check(f"grad_norm.{tag}", "test_grad_norm", c_id,
                same_scalar("norm", tol=1e-9, hint="sqrt of the sum of the squares of EVERY entry of every "
                            "array, not the sum of the arrays' norms"), unchanged_inputs(),
                weight=1 if tag == "one" else 2)

    # pca_project: points whose directions have distinct variances (a well-defined order), moved off
    # the origin (centring shows); more points than dimensions, then fewer (a training path: few
    # snapshots of many parameters).
    for tag, (M, D, k) in (("tall", (P.dims(10, 16, 1)[0], P.dims(4, 7, 1)[0], 2)),
                           ("wide", (P.dims(5, 8, 1)[0], P.dims(15, 25, 1)[0], 3))):
        rotation, _ = np.linalg.qr(P.randn(D, D))
        spread = np.geomspace(6.0, 0.5, min(M, D))
        latent = P.randn(M, min(M, D)) * spread
        X = latent @ rotation[:, :min(M, D)].T + P.randn(D, scale=3.0)
        c_id = P.call(f"pca.{tag}", "call",
                      dict(A, fn="pca_project", args=["X"], kwargs={"k": k}, outputs=["Z", "components", "explained"]),
                      X=X)
        P.check(f"pca_project.{tag}", "test_pca", c_id, _pca_up_to_sign(k), unchanged_inputs(), weight=2)

    # interpolate_params: three arrays of different shapes, alpha inside and outside [0, 1].
    shapes = {"W1": tuple(P.dims(2, 5, 2)), "b1": (P.dims(2, 5, 1)[0],), "W2": tuple(P.dims(2, 4, 3))}
    for tag, alpha in (("inside", float(P.rng.uniform(0.1, 0.9))), ("outside", float(P.rng.uniform(1.2, 2.0))),
                       ("zero", 0.0)):
        arrays = {**_random_params(P, "p1", shapes), **_random_params(P, "p2", shapes)}
        c_id = P.call(f"interpolate.{tag}", "structured_call",
                      dict(A, fn="interpolate_params", outputs=["params"],
                           args=[{"kind": "dict", "prefix": "p1", "keys": sorted(shapes)},
                                 {"kind": "dict", "prefix": "p2", "keys": sorted(shapes)},
                                 {"kind": "value", "value": alpha}]),
                      **arrays)
        checks = [dict_arrays("params", tol=1e-9, hint="(1 - alpha) * params1[name] + alpha * params2[name]"),
                  unchanged_inputs("build new arrays; do not update params1 or params2 in place"),
                  _no_alias("return new arrays, even at alpha = 0, not params1's own")]
        P.check(f"interpolate_params.{tag}", "test_interpolate", c_id, *checks)

    # input_grad_norm: a trusted linear classifier; X of 2 and of 3 dimensions.
    for tag, xshape in (("flat", (P.dims(3, 7, 1)[0], P.dims(3, 6, 1)[0])),
                        ("images", (P.dims(2, 5, 1)[0], 2, P.dims(2, 3, 1)[0]))):
        D, C = int(np.prod(xshape[1:])), P.dims(2, 5, 1)[0]
        c_id = P.call(f"input_grad_norm.{tag}", "structured_call",
                      dict(A, fn="input_grad_norm", outputs=["norm"],
                           args=[{"kind": "input_grad_model", "W": "W", "b": "b"}, {"kind": "array", "name": "X"},
                                 {"kind": "array", "name": "y"}]),
                      W=P.randn(D, C, scale=1.5), b=P.randn(C), X=P.randn(*xshape),
                      y=P.rng.integers(0, C, size=xshape[0]))
        P.check(f"input_grad_norm.{tag}", "test_sensitivity", c_id,
                _asked_for_dX, same_scalar("norm", tol=1e-9, hint="the Frobenius norm of dX, "
                                           "sqrt(sum(dX**2)) over all its entries"), weight=2)


# ---------------------------------------------------------------------------
# 03_cnn
# ---------------------------------------------------------------------------
def _conv(P: Plan):
    C = {"module": "conv_layers"}
    cases = (("plain", 1, 0, (3, 3)), ("strided_padded", 2, 1, (3, 3)), ("wide_pad", 1, 2, (2, 3)),
             ("stride3", 3, 1, (4, 4)))
    for tag, stride, pad, (HH, WW) in cases:
        N, Ch, F = P.dims(2, 3, 1)[0], P.dims(1, 3, 1)[0], P.dims(2, 4, 1)[0]
        H, W = P.dims(5, 8, 2)
        arrays = dict(x=P.randn(N, Ch, H, W), w=P.randn(F, Ch, HH, WW), b=P.randn(F))
        kwargs = {"conv_param": {"stride": stride, "pad": pad}}
        # The forward pass alone (a bug of the backward pass costs nothing here), then both.
        f = P.call(f"conv.{tag}", "forward", dict(C, fn="conv_forward_naive", args=["x", "w", "b"], kwargs=kwargs),
                   **arrays)
        c = P.call(f"conv.{tag}.backward", "forward_backward",
                   dict(C, fn="conv_forward_naive", backward="conv_backward_naive", args=["x", "w", "b"], n_grads=3,
                        kwargs=kwargs),
                   dout=P.randn(N, F, 1 + (H + 2 * pad - HH) // stride, 1 + (W + 2 * pad - WW) // stride), **arrays)
        P.check(f"conv_forward.{tag}", "test_conv_forward", f,
                same_array("out", tol=1e-9, hint="out[n, f, i, j] = b[f] + sum(window * w[f]), the window of the PADDED "
                           "xp starting at row i * stride, column j * stride, HH x WW, over every channel",
                           shape_hint="(N, F, 1 + (H + 2 pad - HH) // stride, 1 + (W + 2 pad - WW) // stride)"),
                unchanged_inputs(), weight=2 if tag != "plain" else 1)
        hint = ("for every n, f, i, j: dw[f] += g * window, dxp[window] += g * w[f], db[f] += g with "
                "g = dout[n, f, i, j]; windows at i * stride, j * stride of the padded input")
        P.check(f"conv_backward.dx_{tag}", "test_conv_backward", c,
                same_array("d0", tol=1e-9, hint=hint, shape_hint="dx has the shape of x (the padding cropped)"))
        P.check(f"conv_backward.dw_{tag}", "test_conv_backward", c, same_array("d1", tol=1e-9, hint=hint))
        P.check(f"conv_backward.db_{tag}", "test_conv_backward", c,
                same_array("d2", tol=1e-9, hint="db[f] = the sum of dout[:, f] over n, i and j"), weight=0.5)

    cases = (("2x2", 2, 2, 2), ("overlap", 3, 2, 1), ("uneven", 2, 3, 2))
    for tag, ph, pw, stride in cases:
        N, Ch = P.dims(2, 3, 1)[0], P.dims(1, 3, 1)[0]
        H, W = P.dims(5, 8, 2)
        out_shape = (N, Ch, 1 + (H - ph) // stride, 1 + (W - pw) // stride)
        x, kwargs = P.randn(N, Ch, H, W), {"pool_param": {"pool_height": ph, "pool_width": pw, "stride": stride}}
        f = P.call(f"pool.{tag}", "forward", dict(C, fn="max_pool_forward_naive", args=["x"], kwargs=kwargs), x=x)
        c = P.call(f"pool.{tag}.backward", "forward_backward",
                   dict(C, fn="max_pool_forward_naive", backward="max_pool_backward_naive", args=["x"], n_grads=1,
                        kwargs=kwargs), x=x, dout=P.randn(*out_shape))
        P.check(f"max_pool_forward.{tag}", "test_pool_forward", f,
                same_array("out", tol=1e-12, hint="the largest value of each pool_height x pool_width window, "
                           "windows starting every stride rows and columns",
                           shape_hint="(N, C, 1 + (H - pool_height) // stride, 1 + (W - pool_width) // stride)"),
                unchanged_inputs())
        P.check(f"max_pool_backward.{tag}", "test_pool_backward", c,
                same_array("d0", tol=1e-12, hint="each dout[n, c, i, j] added (+=) at the position of its window's "
                           "maximum, 0 elsewhere"))
    # Ties (small integers): the whole gradient at the first maximum of each window.
    N, Ch = 2, 2
    x = P.rng.integers(0, 3, size=(N, Ch, 6, 6)).astype(np.float64)
    c = P.call("pool.ties", "forward_backward",
               dict(C, fn="max_pool_forward_naive", backward="max_pool_backward_naive", args=["x"], n_grads=1,
                    kwargs={"pool_param": {"pool_height": 2, "pool_width": 2, "stride": 2}}),
               x=x, dout=P.randn(N, Ch, 3, 3))
    P.check("max_pool_backward.ties", "test_pool_backward", c,
            same_array("d0", tol=1e-12, hint="where several inputs of a window share its maximum the whole gradient "
                       "goes to the FIRST of them in row-major order (np.argmax of the window)"), weight=0.5)


def _cnn(P: Plan):
    K = {"module": "classifiers.cnn", "cls": "ConvNet"}
    archs = (("one_block", dict(input_dim=[1, 6, 6], num_filters=[2], filter_size=3, pad=1, hidden_dims=[],
                                num_classes=3)),
             ("two_blocks", dict(input_dim=[2, 8, 8], num_filters=[3, 2], filter_size=3, pad=1, hidden_dims=[4],
                                 num_classes=4)),
             ("valid_conv", dict(input_dim=[1, 9, 9], num_filters=[2], filter_size=4, pad=0, hidden_dims=[5, 3],
                                 num_classes=2)))
    for tag, arch in archs:
        shapes = _cnn_shapes(arch)
        params = {}
        for i, (w_shape, b_shape) in enumerate(shapes, start=1):
            params[f"W{i}"] = P.randn(*w_shape, scale=0.6)
            params[f"b{i}"] = P.randn(*b_shape, scale=0.2)
        N = P.dims(2, 4, 1)[0]
        X, y = P.randn(N, *arch["input_dim"]), P.rng.integers(0, arch["num_classes"], size=N)
        for reg_tag, reg in (("noreg", 0.0), ("reg", float(P.rng.uniform(0.3, 1.0)))):
            c = P.call(f"cnn.{tag}_{reg_tag}", "net_loss",
                       dict(K, kwargs=dict(arch, reg=reg, weight_scale=1e-2), params=sorted(params), np_seed=P.np_seed,
                            loss_only=True),
                       X=X, y=y, **{"param." + k: v for k, v in params.items()})
            if reg_tag == "noreg":
                P.check(f"cnn_loss.scores_{tag}", "test_cnn_loss", c,
                        same_array("scores", tol=1e-9, hint="conv_relu_pool_forward for each block, affine_relu_forward "
                                   "for each hidden layer, then affine_forward (no ReLU after the last layer)"))
            P.check(f"cnn_loss.loss_{tag}_{reg_tag}", "test_cnn_loss", c,
                    same_scalar("loss", tol=1e-9, hint="softmax_loss of the scores plus 0.5 * reg * the sum of the "
                                "squares of EVERY weight array (the filters too), no bias"))
            P.check(f"cnn_loss.grad_shapes_{tag}_{reg_tag}", "test_cnn_loss", c,
                    dict_arrays("grads", shapes_only=True), weight=0.5)
            P.check(f"cnn_gradcheck.grads_{tag}_{reg_tag}", "test_cnn_gradcheck", c,
                    dict_arrays("grads", tol=1e-7, hint="the layers' backward passes in reverse order, each with its own "
                                "cache; reg * W added to every weight's gradient (the filters' too)"))
            P.check(f"cnn_gradcheck.loss_only_{tag}_{reg_tag}", "test_cnn_gradcheck", c,
                    same_scalar("loss_only", tol=1e-9, hint="loss(X, y, grads=False) must return the same loss"),
                    weight=0.25)


def _cnn_shapes(arch):
    """[(W shape, b shape)] of a ConvNet architecture, from the definition: valid or padded k x k
    convolutions of stride 1, each followed by a 2 x 2 max pool of stride 2, then the affine layers."""
    C, H, W = arch["input_dim"]
    k, p = arch["filter_size"], arch["pad"]
    shapes = []
    for F in arch["num_filters"]:
        shapes.append(((F, C, k, k), (F,)))
        H, W = H + 2 * p - k + 1, W + 2 * p - k + 1
        C, H, W = F, 1 + (H - 2) // 2, 1 + (W - 2) // 2
    d = C * H * W
    for h in arch["hidden_dims"] + [arch["num_classes"]]:
        shapes.append(((d, h), (h,)))
        d = h
    return shapes


# ---------------------------------------------------------------------------
def build_plan(P: Plan):
    """Add every call and check of the seed ``P`` was made with."""
    _regression(P)
    _analysis(P)
    _conv(P)
    _cnn(P)
