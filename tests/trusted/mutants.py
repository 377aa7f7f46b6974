"""The mutation catalog: realistic student bugs as textual edits of the reference.

Each mutant is one or more ``(old, new)`` edits of one module of
``source/nnkit``; ``old`` must occur exactly once in that module, so the
catalog fails loudly (``apply_mutant`` raises) when the reference changes
under it. Sources of the bugs: the research notes' table of bugs the usual
checks miss (cs231n_anatomy.md section 6) and common CS231n mistakes.

``ACCEPTED`` holds edits that are NOT bugs (epsilon inside the square root):
they must keep full marks.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutant:
    id: str
    module: str  # path inside the nnkit package
    edits: tuple  # ((old, new), ...)
    bug: str


def M(id, module, old, new, bug, *more):
    return Mutant(id, module, ((old, new),) + tuple(more), bug)


L, U, F, LIN, O, S = ("layers.py", "layer_utils.py", "classifiers/fc_net.py", "classifiers/linear.py",
                      "optim.py", "solver.py")

MUTANTS = [
    # ---- layers: affine --------------------------------------------------------------
    M("affine_forward_no_reshape", L, "out = x.reshape(x.shape[0], -1) @ w", "out = x @ w",
      "x not reshaped to (N, D): breaks on 4-D input"),
    M("affine_forward_no_bias", L, "out += b  # in place", "out = out  # in place", "bias forgotten"),
    M("affine_backward_dx_flat", L, "dx = (dout @ w.T).reshape(x.shape)", "dx = dout @ w.T",
      "dx returned as (N, D) instead of x's shape"),
    M("affine_backward_db_axis1", L, "db = dout.sum(axis=0)", "db = dout.sum(axis=1)", "wrong sum axis"),
    M("affine_backward_db_keepdims", L, "db = dout.sum(axis=0)", "db = dout.sum(axis=0, keepdims=True)",
      "(1, M) bias gradient"),
    M("affine_backward_db_mean", L, "db = dout.sum(axis=0)", "db = dout.mean(axis=0)", "mean instead of sum"),
    M("affine_backward_dw_divided", L, "dw = x.reshape(x.shape[0], -1).T @ dout",
      "dw = x.reshape(x.shape[0], -1).T @ dout / x.shape[0]", "dw divided by N"),
    # ---- layers: activations ---------------------------------------------------------
    M("relu_forward_in_place", L, "out = np.maximum(x, 0)", "x[x < 0] = 0\n    out = x",
      "ReLU modifies its input (and the cache) in place"),
    M("relu_backward_mask_from_dout", L, "dx = dout * (x > 0)", "dx = dout * (dout > 0)",
      "mask from dout instead of x"),
    M("relu_backward_times_relu", L, "dx = dout * (x > 0)", "dx = dout * np.maximum(x, 0)",
      "multiplies by max(0, x) instead of the indicator"),
    M("sigmoid_forward_flipped", L, "out = np.where(x >= 0, 1, z) / (1 + z)",
      "out = np.where(x >= 0, z, 1) / (1 + z)", "computes sigmoid(-x)"),
    M("sigmoid_backward_no_dout", L, "dx = dout * out * (1 - out)", "dx = out * (1 - out)",
      "local gradient not multiplied by dout"),
    M("leaky_relu_alpha_ignored", L, "out = np.where(x > 0, x, alpha * x)", "out = np.where(x > 0, x, 0.01 * x)",
      "hard-coded slope instead of alpha"),
    M("leaky_relu_backward_alpha", L, "dx = np.where(x > 0, dout, alpha * dout)",
      "dx = np.where(x > 0, dout, alpha)", "alpha instead of alpha * dout"),
    M("dropout_not_inverted", L, "mask /= p\n", "mask = mask\n", "kept units not scaled by 1/p"),
    M("dropout_backward_no_mask", L, "dx = dout * mask", "dx = dout", "backward ignores the mask"),
    # ---- layers: losses --------------------------------------------------------------
    M("svm_counts_correct_class", L, "margins[rows, y] = 0\n    loss = margins.sum() / N",
      "loss = margins.sum() / N\n    margins[rows, y] = 0",
      "margin of the correct class counted in the loss (+1 per example)"),
    M("svm_loss_not_averaged", L, "loss = margins.sum() / N", "loss = margins.sum()", "loss summed, not averaged"),
    M("svm_dx_not_averaged", L, "dx[rows, y] = -dx.sum(axis=1)\n    dx /= N", "dx[rows, y] = -dx.sum(axis=1)",
      "gradient not divided by N"),
    M("softmax_no_max_subtraction", L, "shifted = x - x.max(axis=1, keepdims=True)", "shifted = x",
      "no max-subtraction: nan for logits of 1000"),
    M("softmax_log_of_probabilities", L, "loss = (np.log(sums[:, 0]) - shifted[rows, y]).sum() / N",
      "loss = -np.log(np.exp(shifted[rows, y]) / sums[:, 0]).sum() / N",
      "log of probabilities that underflow to 0"),
    M("softmax_loss_summed", L, "loss = (np.log(sums[:, 0]) - shifted[rows, y]).sum() / N",
      "loss = (np.log(sums[:, 0]) - shifted[rows, y]).sum()", "loss summed over the batch"),
    M("softmax_dx_no_minus_one", L, "dx[rows, y] -= 1", "dx[rows, y] -= 0", "forgot -1 at the correct class"),
    # ---- layer_utils -----------------------------------------------------------------
    M("affine_relu_backward_skips_relu", U,
      "da = relu_backward(dout, relu_cache)\n    dx, dw, db = affine_backward(da, fc_cache)",
      "dx, dw, db = affine_backward(dout, fc_cache)", "ReLU's backward pass skipped"),
    M("affine_sigmoid_forward_relu", U, "out, sigmoid_cache = sigmoid_forward(a)",
      "out, sigmoid_cache = relu_forward(a)", "wrong activation in the sandwich"),
    # ---- TwoLayerNet -----------------------------------------------------------------
    M("two_layer_init_variance", F, 'self.params["W1"] = weight_scale * np.random.randn(input_dim, hidden_dim)',
      'self.params["W1"] = weight_scale ** 2 * np.random.randn(input_dim, hidden_dim)',
      "weight_scale used as a variance"),
    M("two_layer_bias_random", F, 'self.params["b2"] = np.zeros(num_classes)',
      'self.params["b2"] = weight_scale * np.random.randn(num_classes)', "biases not initialised to 0"),
    M("two_layer_reg_without_half", F, "loss += 0.5 * self.reg * (np.vdot(W1, W1) + np.vdot(W2, W2))",
      "loss += self.reg * (np.vdot(W1, W1) + np.vdot(W2, W2))", "L2 without the 0.5"),
    M("two_layer_reg_on_biases", F, "loss += 0.5 * self.reg * (np.vdot(W1, W1) + np.vdot(W2, W2))",
      "loss += 0.5 * self.reg * (np.vdot(W1, W1) + np.vdot(W2, W2) + np.vdot(b1, b1) + np.vdot(b2, b2))",
      "biases regularised"),
    M("two_layer_reg_missing_from_grads", F, "_add_scaled_(dW2, self.reg, W2)", "_add_scaled_(dW2, 0.0, W2)",
      "regularisation in the loss but not in dW2"),
    M("two_layer_relu_mask_always_on", F, "dhidden = hidden_backward(dscores @ W2.T, hidden_cache)",
      "dhidden = dscores @ W2.T\n        dhidden *= hidden >= 0",
      "ReLU mask computed on the clipped output: always true"),
    M("two_layer_b2_grad_keepdims", F, '"b2": dscores.sum(axis=0)}', '"b2": dscores.sum(axis=0, keepdims=True)}',
      "(1, C) bias gradient"),
    M("two_layer_scores_softmaxed", F, "scores = hidden @ W2\n        scores += b2",
      "scores = hidden @ W2\n        scores += b2\n        scores = np.exp(scores - scores.max(axis=1, keepdims=True))",
      "returns probabilities-like values instead of scores"),
    # ---- FullyConnectedNet -----------------------------------------------------------
    M("fc_init_variance", F, 'self.params[f"W{i}"] = weight_scale * rng.randn(sizes[i - 1], sizes[i])',
      'self.params[f"W{i}"] = weight_scale ** 2 * rng.randn(sizes[i - 1], sizes[i])',
      "weight_scale used as a variance"),
    M("fc_init_zero_based_keys", F,
      'self.params[f"W{i}"] = weight_scale * rng.randn(sizes[i - 1], sizes[i])\n'
      '            self.params[f"b{i}"] = np.zeros(sizes[i])',
      'self.params[f"W{i - 1}"] = weight_scale * rng.randn(sizes[i - 1], sizes[i])\n'
      '            self.params[f"b{i - 1}"] = np.zeros(sizes[i])',
      "parameters named W0, b0, ..."),
    M("fc_last_layer_unregularised", F, "loss += 0.5 * self.reg * np.vdot(W, W)",
      "loss += 0.5 * self.reg * np.vdot(W, W) * (i < L)", "the last layer's W left out of the L2 loss"),
    M("fc_last_layer_grad_unregularised", F, "_add_scaled_(dW, self.reg, W)",
      "_add_scaled_(dW, self.reg * (i < L), W)",
      "the last layer's W left out of the L2 gradient"),
    M("fc_bias_grad_mean", F, 'grads[f"W{i}"], grads[f"b{i}"] = dW, d.sum(axis=0)',
      'grads[f"W{i}"], grads[f"b{i}"] = dW, d.mean(axis=0)', "bias gradient averaged"),
    M("fc_no_relu_mask", F, "d *= inputs[i - 1] > 0", "d = d", "ReLU backward forgotten in the deep net"),
    M("fc_dropout_not_in_backward", F, "d = dropout_backward(d, drop_caches[i - 2])", "d = d",
      "dropout mask not applied in the backward pass"),
    # ---- optim -----------------------------------------------------------------------
    M("momentum_slide_form", O, "    w += v\n    next_w = w", '    w -= config["learning_rate"] * v\n    next_w = w',
      "the slide form v = rho v + dw; w -= lr v",
      ('v -= np.multiply(dw, config["learning_rate"], out=_scratch_like(v, dw))', "v += dw")),
    M("momentum_step_sign", O, "    w += v\n    next_w = w", "    w -= v\n    next_w = w", "velocity subtracted"),
    M("rmsprop_no_one_minus_decay", O, 'tmp -= cache\n    tmp *= 1 - config["decay_rate"]\n    cache += tmp',
      'cache *= config["decay_rate"]\n    cache += tmp', "RMSProp without (1 - decay)"),
    M("rmsprop_cache_not_written_back", O, "cache += tmp  # = decay_rate", "cache = cache + tmp  # = decay_rate",
      "new cache in a local only: state not written back"),
    M("rmsprop_adagrad", O, 'tmp -= cache\n    tmp *= 1 - config["decay_rate"]\n    cache += tmp', "cache += tmp",
      "AdaGrad accumulation"),
    M("adam_no_bias_correction", O,
      's = (1 - beta2 ** t) ** 0.5\n    step = config["learning_rate"] * s / (1 - beta1 ** t)',
      's = 1.0\n    step = config["learning_rate"]', "Adam without bias correction"),
    M("adam_t_incremented_after_use", O, 't = config["t"] = config["t"] + 1',
      't = config["t"]\n    config["t"] = t + 1', "t incremented after it is used"),
    M("adam_t_not_stored", O, 't = config["t"] = config["t"] + 1', 't = config["t"] + 1',
      "t not written back"),
    M("adam_m_not_written_back", O, "m += tmp  # = beta1", "m = m + tmp  # = beta1",
      "new m in a local only: state not written back"),
    # ---- Solver ----------------------------------------------------------------------
    M("solver_ignores_lr_decay", S, 'config["learning_rate"] *= self.lr_decay', 'config["learning_rate"] *= 1.0',
      "lr_decay never applied"),
    M("solver_keeps_last_params", S, "self.model.params = {p: w.copy() for p, w in self.best_params.items()}",
      "pass", "keeps the last params instead of the best"),
    M("solver_best_params_not_copied", S, "self.best_params = {p: w.copy() for p, w in self.model.params.items()}",
      "self.best_params = dict(self.model.params)", "best params aliased to arrays updated in place"),
    M("solver_config_not_stored", S, "self.optim_configs[p] = next_config", "pass",
      "the update rule's returned config (its state) dropped"),
    M("solver_updates_first_param_only", S, "self.optim_configs[p] = next_config",
      "self.optim_configs[p] = next_config\n            break", "only the first parameter is updated"),
    # ---- linear classifiers ----------------------------------------------------------
    M("linear_svm_naive_grad_sign", LIN, "dW[:, y[i]] -= X[i]", "dW[:, y[i]] += X[i]",
      "correct-class gradient with the wrong sign"),
    M("linear_svm_naive_reg_grad_half", LIN,
      "dW /= num_train\n    dW += 2 * reg * W\n    ### END SOLUTION\n    return float(loss), dW\n\n\ndef svm_loss_vectorized",
      "dW /= num_train\n    dW += reg * W\n    ### END SOLUTION\n    return float(loss), dW\n\n\ndef svm_loss_vectorized",
      "regularisation gradient reg * W instead of 2 * reg * W"),
    M("linear_svm_vectorized_no_reg", LIN, "loss = margins.sum() / N + reg * np.vdot(W, W)",
      "loss = margins.sum() / N", "regularisation missing from the vectorized loss"),
    M("linear_svm_vectorized_grad_not_averaged", LIN, "dW = X.T @ coeff\n    dW /= N", "dW = X.T @ coeff",
      "vectorized gradient not divided by N"),
    M("linear_softmax_naive_no_max", LIN, "scores = scores - np.max(scores)", "scores = scores",
      "naive softmax without max-subtraction"),
    M("linear_softmax_vectorized_half_reg", LIN, "loss = data_loss + reg * np.vdot(W, W)",
      "loss = data_loss + 0.5 * reg * np.vdot(W, W)", "the nets' 0.5 convention in the linear classifier"),
    M("linear_train_sign", LIN, "self.W -= learning_rate * grad", "self.W += learning_rate * grad",
      "gradient ascent"),
    M("linear_train_labels_mismatched", LIN, "X_batch, y_batch = X[idx], y[idx]",
      "X_batch, y_batch = X[idx], y[np.random.choice(num_train, batch_size)]", "labels sampled separately"),
    M("linear_predict_axis0", LIN, "y_pred = np.argmax(X @ self.W, axis=1)", "y_pred = np.argmax(X @ self.W, axis=0)",
      "argmax over the wrong axis"),
    M("softmax_regression_reg_on_bias", LIN, "loss += 0.5 * self.reg * np.vdot(W, W)",
      "loss += 0.5 * self.reg * (np.vdot(W, W) + np.vdot(b, b))", "bias regularised"),
]

#: Edits that are not bugs: they must keep full marks.
ACCEPTED = [
    M("adam_epsilon_inside_sqrt", O, 'np.sqrt(v, out=tmp)\n    tmp += config["epsilon"] * s',
      'np.sqrt(v + config["epsilon"] * s * s, out=tmp)', "epsilon inside the square root (accepted)"),
    M("rmsprop_epsilon_inside_sqrt", O, 'np.sqrt(cache, out=tmp)\n    tmp += config["epsilon"]',
      'np.sqrt(cache + config["epsilon"], out=tmp)', "epsilon inside the square root (accepted)"),
    M("relu_backward_ge", L, "dx = dout * (x > 0)", "dx = dout * (x >= 0)", "x >= 0 instead of x > 0 (benign)"),
]
