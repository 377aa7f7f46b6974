"""The mnist_mlp mutation catalog: realistic student bugs in what mnist_mlp students write.

Each mutant is one or more ``(old, new)`` edits of one module of ``source/nnkit``, built
with the fcnets kit's ``Mutant`` (tests/trusted/mutation_kit.py): every ``old`` must occur
exactly once in that module, so the catalog fails loudly when the reference changes under
it. Only the functions of the manifest's ``[package]`` are mutated (the student regions of
data_utils, layers, linear, fc_net and training). Sources: the notebooks' own "likely
cause" messages, the CS7643 / Fudan homework FAQs (divide by 256, sigmoid of the cache,
L2 without its 0.5, the bias regularised, sampling with replacement, the last batch
dropped), and the mistakes of the first students of the fcnets assignment.

``ACCEPTED`` holds edits that are NOT bugs (another correct way to write the same thing):
they must keep full marks.
"""
from __future__ import annotations


def catalog(Mutant):
    """(MUTANTS, ACCEPTED) built with the kit's Mutant class."""
    def M(id, module, old, new, bug, *more):
        return Mutant(id, module, ((old, new),) + tuple(more), bug)

    DU, L, LIN, F, T = ("data_utils.py", "layers.py", "classifiers/linear.py", "classifiers/fc_net.py",
                        "training.py")
    flatten = "X = images.reshape(len(images), -1) / 255.0"
    split = "val, train = order[:num_validation], order[num_validation:]"
    order = "order = rng.permutation(len(X)) if shuffle else np.arange(len(X))"
    batch_loop = "for start in range(0, len(X), batch_size):\n        batch = order[start:start + batch_size]"
    eval_loss = "total_loss += softmax_loss(scores, y_batch)[0] * len(y_batch)"
    step = ("model.params[name], optim_configs[name] = update_rule(model.params[name], grads[name], "
            "optim_configs[name])")
    epoch = ("for X_batch, y_batch in generate_batched_data(X, y, batch_size, seed=rng):\n"
             "        losses.append(train_step(model, X_batch, y_batch, update_rule, optim_configs))")

    mutants = [
        # ---- data_utils: flatten_and_scale --------------------------------------------
        M("flatten_by_256", DU, flatten, "X = images.reshape(len(images), -1) / 256.0",
          "divides by 256: 255 becomes 0.996"),
        M("flatten_not_scaled", DU, flatten, "X = images.reshape(len(images), -1).astype(np.float64)",
          "flattened but left in 0..255"),
        M("flatten_by_largest_pixel", DU, flatten, "X = images.reshape(len(images), -1) / images.max()",
          "divides by the largest pixel of the set"),
        M("flatten_columns_first", DU, flatten, "X = images.transpose(0, 2, 1).reshape(len(images), -1) / 255.0",
          "reads each image column by column (a transpose)"),
        M("flatten_integer_division", DU, flatten, "X = images.reshape(len(images), -1) // 255",
          "integer division: everything but 255 becomes 0"),
        M("flatten_in_place", DU, flatten, "X = images.reshape(len(images), -1)\n    X /= 255.0",
          "divides a view in place: fails on uint8, changes float images"),
        M("flatten_keeps_images", DU, flatten, "X = images / 255.0", "scaled but not flattened: (N, H, W)"),
        # ---- data_utils: split_train_val ----------------------------------------------
        M("split_not_seeded", DU, "order = np.random.RandomState(seed).permutation(len(X))",
          "order = np.random.permutation(len(X))", "numpy's global generator: the seed is ignored"),
        M("split_train_overlaps", DU, split, "val, train = order[:num_validation], order",
          "the training set keeps the validation examples too"),
        M("split_last_for_validation", DU, split,
          "val, train = order[len(X) - num_validation:], order[:len(X) - num_validation]",
          "the LAST num_validation indices go to validation"),
        M("split_labels_not_permuted", DU, "X_val, y_val = X[val], y[val]", "X_val, y_val = X[val], y[:num_validation]",
          "validation labels taken in stored order: they no longer match their images"),
        M("split_unshuffled", DU, split, "val, train = np.arange(num_validation), np.arange(num_validation, len(X))",
          "no shuffle at all: the first examples go to validation"),
        M("split_shuffles_inputs_in_place", DU, "X_train, y_train = X[train], y[train]",
          "X[:], y[:] = X[order], y[order]\n    val, train = np.arange(num_validation), np.arange(num_validation, len(X))\n"
          "    X_train, y_train = X[train], y[train]",
          "shuffles the caller's X and y in place"),
        # ---- layers: softmax_loss -----------------------------------------------------
        M("softmax_no_max_subtraction", L, "shifted = x - x.max(axis=1, keepdims=True)", "shifted = x",
          "no max-subtraction: exp(1000) overflows to nan"),
        M("softmax_log_of_probabilities", L, "loss = (np.log(sums[:, 0]) - shifted[rows, y]).sum() / N",
          "loss = -np.log(np.exp(shifted[rows, y]) / sums[:, 0]).sum() / N",
          "log of probabilities that underflow to 0: inf"),
        M("softmax_loss_summed", L, "loss = (np.log(sums[:, 0]) - shifted[rows, y]).sum() / N",
          "loss = (np.log(sums[:, 0]) - shifted[rows, y]).sum()", "loss summed over the batch, not averaged"),
        M("softmax_dx_not_averaged", L, "    dx[rows, y] -= 1\n    dx /= N\n", "    dx[rows, y] -= 1\n",
          "gradient not divided by N"),
        M("softmax_dx_no_minus_one", L, "dx[rows, y] -= 1", "dx[rows, y] -= 0", "forgot -1 at the label"),
        # ---- layers: sigmoid and relu -------------------------------------------------
        M("sigmoid_backward_of_the_cache", L, "dx = dout * out * (1 - out)",
          "s = 1 / (1 + np.exp(-out))\n    dx = dout * s * (1 - s)",
          "treats the cache (the output) as the input x: the sigmoid taken twice"),
        M("sigmoid_backward_no_dout", L, "dx = dout * out * (1 - out)", "dx = out * (1 - out)",
          "local gradient not multiplied by dout"),
        M("sigmoid_naive_overflow", L, "z = np.exp(-np.abs(x))\n    out = np.where(x >= 0, 1, z) / (1 + z)",
          "out = 1 / (1 + np.exp(-x))", "exp(-x) overflows for x < -709 (right values, numpy warns)"),
        M("sigmoid_of_minus_x", L, "out = np.where(x >= 0, 1, z) / (1 + z)", "out = np.where(x >= 0, z, 1) / (1 + z)",
          "computes sigmoid(-x)"),
        M("relu_forward_in_place", L, "out = np.maximum(x, 0)", "x[x < 0] = 0\n    out = x",
          "ReLU changes its input (and the cache) in place"),
        M("relu_backward_mask_from_dout", L, "dx = dout * (x > 0)", "dx = dout * (dout > 0)",
          "mask taken from dout instead of the input"),
        # ---- classifiers/linear: SoftmaxRegression.loss -------------------------------
        M("softmax_regression_no_bias", LIN, "        scores = x @ W\n        scores += b\n",
          "        scores = x @ W\n", "b forgotten in the scores"),
        M("softmax_regression_l2_without_half", LIN, "loss += 0.5 * self.reg * np.vdot(W, W)",
          "loss += self.reg * np.vdot(W, W)", "L2 without its 0.5 while the gradient is reg * W"),
        M("softmax_regression_bias_regularised", LIN, "loss += 0.5 * self.reg * np.vdot(W, W)",
          "loss += 0.5 * self.reg * (np.vdot(W, W) + np.vdot(b, b))", "b regularised too"),
        M("softmax_regression_grad_without_reg", LIN, '"W": x.T @ dscores + self.reg * W', '"W": x.T @ dscores',
          "the L2 term's gradient forgotten"),
        M("softmax_regression_grad_twice_reg", LIN, '"W": x.T @ dscores + self.reg * W',
          '"W": x.T @ dscores + 2 * self.reg * W', "the gradient of reg * sum(W**2), not of 0.5 * reg * sum(W**2)"),
        M("softmax_regression_db_mean", LIN, '"b": dscores.sum(axis=0)', '"b": dscores.mean(axis=0)',
          "bias gradient averaged again (dscores is already divided by N)"),
        M("softmax_regression_l2_after_early_return", LIN, "        loss += 0.5 * self.reg * np.vdot(W, W)\n", "",
          "the L2 term added after the grads=False return",
          ('        grads = {"W": x.T @ dscores + self.reg * W, "b": dscores.sum(axis=0)}',
           '        loss += 0.5 * self.reg * np.vdot(W, W)\n'
           '        grads = {"W": x.T @ dscores + self.reg * W, "b": dscores.sum(axis=0)}')),
        # ---- classifiers/fc_net: TwoLayerNet ------------------------------------------
        M("two_layer_ignores_activation", F, "hidden, hidden_cache = hidden_forward(x @ W1 + b1)",
          "hidden, hidden_cache = relu_forward(x @ W1 + b1)", "a hand-written ReLU: the sigmoid net is a ReLU net",
          ("dhidden = hidden_backward(dscores @ W2.T, hidden_cache)", "dhidden = relu_backward(dscores @ W2.T, hidden_cache)")),
        M("two_layer_backward_ignores_activation", F, "dhidden = hidden_backward(dscores @ W2.T, hidden_cache)",
          "dhidden = relu_backward(dscores @ W2.T, hidden_cache)", "the backward pass always goes through a ReLU"),
        M("two_layer_init_scale_squared", F, 'self.params["W1"] = weight_scale * np.random.randn(input_dim, hidden_dim)',
          'self.params["W1"] = weight_scale ** 2 * np.random.randn(input_dim, hidden_dim)',
          "weight_scale taken as the variance"),
        M("two_layer_init_unit_scale", F, 'self.params["W2"] = weight_scale * np.random.randn(hidden_dim, num_classes)',
          'self.params["W2"] = np.random.randn(hidden_dim, num_classes) / np.sqrt(hidden_dim)',
          "a Xavier scale instead of weight_scale"),
        M("two_layer_init_random_bias", F, 'self.params["b1"] = np.zeros(hidden_dim)',
          'self.params["b1"] = weight_scale * np.random.randn(hidden_dim)', "random biases"),
        M("two_layer_init_draw_order", F,
          'self.params["W1"] = weight_scale * np.random.randn(input_dim, hidden_dim)\n'
          '        self.params["b1"] = np.zeros(hidden_dim)\n'
          '        self.params["W2"] = weight_scale * np.random.randn(hidden_dim, num_classes)',
          'self.params["W2"] = weight_scale * np.random.randn(hidden_dim, num_classes)\n'
          '        self.params["b1"] = np.zeros(hidden_dim)\n'
          '        self.params["W1"] = weight_scale * np.random.randn(input_dim, hidden_dim)',
          "W2 drawn before W1: np.random.seed no longer reproduces the documented net"),
        M("two_layer_l2_without_half", F, "loss += 0.5 * self.reg * (np.vdot(W1, W1) + np.vdot(W2, W2))",
          "loss += self.reg * (np.vdot(W1, W1) + np.vdot(W2, W2))", "L2 without its 0.5"),
        M("two_layer_bias_regularised", F, "loss += 0.5 * self.reg * (np.vdot(W1, W1) + np.vdot(W2, W2))",
          "loss += 0.5 * self.reg * (np.vdot(W1, W1) + np.vdot(W2, W2) + np.vdot(b1, b1) + np.vdot(b2, b2))",
          "biases regularised too"),
        M("two_layer_dW1_without_reg", F, "        if self.reg:\n            _add_scaled_(dW1, self.reg, W1)\n", "",
          "reg * W1 missing from dW1"),
        M("two_layer_db1_skips_activation", F, '"b1": dhidden.sum(axis=0)', '"b1": (dscores @ W2.T).sum(axis=0)',
          "b1's gradient taken before the activation's backward pass"),
        # ---- training: generate_batched_data ------------------------------------------
        M("batches_with_replacement", T, order,
          "order = rng.randint(0, len(X), size=len(X)) if shuffle else np.arange(len(X))",
          "indices drawn with replacement: some examples twice, others never"),
        M("batches_drop_last", T, batch_loop,
          "for start in range(0, len(X) - batch_size + 1, batch_size):\n        batch = order[start:start + batch_size]",
          "the last, smaller batch dropped"),
        M("batches_same_order_every_epoch", T, order,
          "order = np.random.RandomState(0).permutation(len(X)) if shuffle else np.arange(len(X))",
          "a generator made from a fixed seed inside: every epoch in the same order"),
        M("batches_global_generator", T, order,
          "order = np.random.permutation(len(X)) if shuffle else np.arange(len(X))",
          "numpy's global generator instead of rng: seeds ignored"),
        M("batches_never_shuffled", T, order, "order = np.arange(len(X))", "shuffle ignored"),
        M("batches_labels_in_stored_order", T, "yield X[batch], y[batch]", "yield X[batch], y[start:start + batch_size]",
          "labels taken in stored order: rows and labels no longer match"),
        M("batches_extra_empty_batch", T, batch_loop,
          "for start in range(0, len(X) + batch_size, batch_size):\n        batch = order[start:start + batch_size]",
          "one batch too many (empty when N is a multiple of batch_size)"),
        M("batches_never_end", T, batch_loop,
          "for start in itertools.cycle(range(0, len(X), batch_size)):\n        batch = order[start:start + batch_size]",
          "the generator never ends (cycles over the batches)"),
        # ---- training: evaluate -------------------------------------------------------
        M("evaluate_mean_of_batch_means", T, eval_loss, "total_loss += softmax_loss(scores, y_batch)[0]",
          "mean of the batches' means",
          ("loss, accuracy = total_loss / len(X), correct / len(X)",
           "loss, accuracy = total_loss / math.ceil(len(X) / batch_size), correct / len(X)")),
        M("evaluate_weighs_batch_size", T, eval_loss, "total_loss += softmax_loss(scores, y_batch)[0] * batch_size",
          "the last, smaller batch weighed as a full one"),
        M("evaluate_includes_l2", T, eval_loss,
          "total_loss += model.loss(X[start:start + batch_size], y_batch)[0] * len(y_batch)",
          "the training loss (with its L2 term) instead of the data loss"),
        M("evaluate_whole_set_at_once", T, "scores = model.loss(X[start:start + batch_size])",
          "scores = model.loss(X)[start:start + batch_size]", "the whole set through the model for every batch"),
        M("evaluate_accuracy_count_not_fraction", T, "loss, accuracy = total_loss / len(X), correct / len(X)",
          "loss, accuracy = total_loss / len(X), correct", "the number of correct examples, not the fraction"),
        # ---- training: train_step -----------------------------------------------------
        M("train_step_loss_after_update", T, "    ### END SOLUTION\n    return float(loss)\n\n\ndef train_epoch",
          "    loss = model.loss(X_batch, y_batch)[0]\n    ### END SOLUTION\n    return float(loss)\n\n\n"
          "def train_epoch",
          "returns the loss after the update"),
        M("train_step_drops_returned_config", T, step,
          "model.params[name], _ = update_rule(model.params[name], grads[name], optim_configs[name])",
          "the config the rule returns is thrown away"),
        M("train_step_hardcoded_sgd", T, step,
          'model.params[name] = model.params[name] - optim_configs[name]["learning_rate"] * grads[name]',
          "plain SGD written by hand: the update rule (and its state) ignored"),
        M("train_step_adds_l2_again", T, step,
          "model.params[name], optim_configs[name] = update_rule(model.params[name], "
          "grads[name] + model.reg * model.params[name], optim_configs[name])",
          "adds reg * w to a gradient that already holds it (and to b)"),
        M("train_step_skips_bias", T, "for name in model.params:\n        model.params[name], optim_configs[name]",
          "for name in [n for n in model.params if n.startswith('W')]:\n        model.params[name], optim_configs[name]",
          "only the weights are updated"),
        # ---- training: train_epoch ----------------------------------------------------
        M("train_epoch_unshuffled", T, "generate_batched_data(X, y, batch_size, seed=rng)",
          "generate_batched_data(X, y, batch_size, shuffle=False)", "the epoch in stored order"),
        M("train_epoch_fixed_seed", T, "generate_batched_data(X, y, batch_size, seed=rng)",
          "generate_batched_data(X, y, batch_size, seed=0)", "a fixed seed instead of rng: the same order every epoch"),
        M("train_epoch_keeps_last_loss", T, epoch,
          "for X_batch, y_batch in generate_batched_data(X, y, batch_size, seed=rng):\n"
          "        losses = [train_step(model, X_batch, y_batch, update_rule, optim_configs)]",
          "the list holds the last step's loss only"),
        M("train_epoch_skips_small_batch", T, epoch,
          "for X_batch, y_batch in generate_batched_data(X, y, batch_size, seed=rng):\n"
          "        if len(y_batch) < batch_size:\n            break\n"
          "        losses.append(train_step(model, X_batch, y_batch, update_rule, optim_configs))",
          "the last, smaller batch not trained on"),
    ]

    accepted = [
        M("ok_flatten_astype_then_divide", DU, flatten,
          "X = images.reshape(images.shape[0], images.shape[1] * images.shape[2]).astype(np.float64) / 255",
          "another way to write the same thing"),
        M("ok_split_shuffle_of_arange", DU, "order = np.random.RandomState(seed).permutation(len(X))",
          "order = np.arange(len(X))\n    np.random.RandomState(seed).shuffle(order)",
          "RandomState.shuffle of arange(N) is its permutation(N)"),
        M("ok_softmax_logsumexp", L, "loss = (np.log(sums[:, 0]) - shifted[rows, y]).sum() / N",
          "loss = -np.mean(shifted[rows, y] - np.log(sums[:, 0]))", "the same loss written as a mean"),
        M("ok_sigmoid_tanh", L, "z = np.exp(-np.abs(x))\n    out = np.where(x >= 0, 1, z) / (1 + z)",
          "out = 0.5 * (1 + np.tanh(0.5 * x))", "the sigmoid through tanh: no overflow"),
        M("ok_relu_mask_ge", L, "dx = dout * (x > 0)", "dx = np.where(x >= 0, dout, 0.0)",
          "x >= 0 instead of x > 0 (the inputs are away from 0)"),
        M("ok_batches_sliced_copy", T, batch_loop + "\n        yield X[batch], y[batch]",
          "Xs, ys = X[order], y[order]\n    for start in range(0, len(X), batch_size):\n"
          "        yield Xs[start:start + batch_size], ys[start:start + batch_size]",
          "the shuffled set copied once, then sliced"),
        M("ok_evaluate_weighted_average", T,
          "    total_loss, correct = 0.0, 0\n"
          "    for start in range(0, len(X), batch_size):\n"
          "        scores = model.loss(X[start:start + batch_size])\n"
          "        y_batch = y[start:start + batch_size]\n"
          "        total_loss += softmax_loss(scores, y_batch)[0] * len(y_batch)\n"
          "        correct += np.sum(np.argmax(scores, axis=1) == y_batch)\n"
          "    loss, accuracy = total_loss / len(X), correct / len(X)\n",
          "    means, sizes, correct = [], [], 0\n"
          "    for start in range(0, len(X), batch_size):\n"
          "        scores = model.loss(X[start:start + batch_size])\n"
          "        y_batch = y[start:start + batch_size]\n"
          "        means.append(softmax_loss(scores, y_batch)[0])\n"
          "        sizes.append(len(y_batch))\n"
          "        correct += int(np.count_nonzero(scores.argmax(axis=1) == y_batch))\n"
          "    loss, accuracy = np.average(means, weights=sizes), correct / len(X)\n",
          "the batches' means weighed by their sizes with np.average"),
        M("ok_train_step_over_grads", T, "for name in model.params:\n        model.params[name], optim_configs[name]",
          "for name in grads:\n        model.params[name], optim_configs[name]", "walks the gradients' keys"),
        M("ok_two_layer_always_reg", F, "        if self.reg:\n            _add_scaled_(dW1, self.reg, W1)\n",
          "        dW1 = dW1 + self.reg * W1\n", "reg * W1 added without the shortcut"),
    ]
    return mutants, accepted
