"""The cyclical_lr mutation catalog: realistic student bugs in what cyclical_lr students write.

Each mutant is one or more ``(old, new)`` edits of one module of ``source/nnkit``, built with
the fcnets kit's ``Mutant`` (tests/trusted/mutation_kit.py): every ``old`` must occur exactly
once in that module, so the catalog fails loudly when the reference changes under it. Only the
functions of the manifest's ``[package]`` are mutated (the student regions of kth_net,
cyclical and optim.cyclical_lr). Sources: the notebooks' own "likely cause" messages, the
conventions the KTH assignment warns about (CS231n's 0.5 in the penalty, ``lam`` instead of
``2 lam`` in the gradient, one scale for both layers, MATLAB's column-major habits: statistics
over the wrong axis), the classic cyclical-rate bugs (a sawtooth, a cycle of n_s updates,
off by one), and training-loop bugs (one order for every epoch, no stop mid-epoch, recording
before the update).

``ACCEPTED`` holds edits that are NOT bugs (another correct way to write the same thing):
they must keep full marks.
"""
from __future__ import annotations


def catalog(Mutant):
    """(MUTANTS, ACCEPTED) built with the kit's Mutant class."""
    def M(id, module, old, new, bug, *more):
        return Mutant(id, module, ((old, new),) + tuple(more), bug)

    K, C, O = "classifiers/kth_net.py", "cyclical.py", "optim.py"
    w1 = 'self.params["W1"] = rng.randn(input_dim, hidden_dim) / np.sqrt(input_dim)'
    w2 = 'self.params["W2"] = rng.randn(hidden_dim, num_classes) / np.sqrt(hidden_dim)'
    relu = "H = np.maximum(X @ W1 + b1, 0)"
    shift = "S = S - S.max(axis=1, keepdims=True)"
    norm = "P /= P.sum(axis=1, keepdims=True)"
    loss = "L = np.mean(-np.log(P[np.arange(len(y)), y]))"
    cost = "J = L + self.lam * (np.sum(W1 ** 2) + np.sum(W2 ** 2))"
    gw2 = 'grads["W2"] = H.T @ G / N + 2 * self.lam * W2'
    gw1 = 'grads["W1"] = X.T @ G / N + 2 * self.lam * W1'
    back = "G = (G @ W2.T) * (H > 0)  # back through W2 and the ReLU"
    rel = "relative = diff / np.maximum(eps, np.abs(ga) + np.abs(gn))"
    loop_head = ("    while t < n_updates:\n"
                 "        for batch in epoch_batches(len(X), batch_size, rng):\n")
    update = "                net.params[name] -= eta * grads[name]"
    rec = ("            if t % record_every == 0 or t == n_updates:\n"
           "                record(history, net, data, t)\n")
    into = "into_cycle = t % (2 * n_s)  # t - 2 l n_s"
    climb = "eta_t = eta_min + into_cycle / n_s * (eta_max - eta_min)"
    fall = "eta_t = eta_max - (into_cycle - n_s) / n_s * (eta_max - eta_min)"

    mutants = [
        # ---- kth_net: KTHNet.__init__ ---------------------------------------------------
        M("init_one_scale_for_both_layers", K, w2,
          'self.params["W2"] = rng.randn(hidden_dim, num_classes) / np.sqrt(input_dim)',
          "W2 scaled by 1/sqrt(D) like W1: its inputs are the m hidden units"),
        M("init_variance_not_std", K, w1, 'self.params["W1"] = rng.randn(input_dim, hidden_dim) / input_dim',
          "1/d, the variance, as the scale"),
        M("init_he_scale", K, w1, 'self.params["W1"] = rng.randn(input_dim, hidden_dim) * np.sqrt(2 / input_dim)',
          "He's sqrt(2/d) instead of KTH's 1/sqrt(d)"),
        M("init_cs231n_weight_scale", K, w1, 'self.params["W1"] = 1e-3 * rng.randn(input_dim, hidden_dim)',
          "CS231n's weight_scale 1e-3", (w2, 'self.params["W2"] = 1e-3 * rng.randn(hidden_dim, num_classes)')),
        M("init_random_biases", K, 'self.params["b1"] = np.zeros(hidden_dim)',
          'self.params["b1"] = rng.randn(hidden_dim) / np.sqrt(input_dim)', "random biases"),
        M("init_ignores_rng", K, w1, 'self.params["W1"] = np.random.randn(input_dim, hidden_dim) / np.sqrt(input_dim)',
          "numpy's global generator instead of rng: the seed is ignored",
          (w2, 'self.params["W2"] = np.random.randn(hidden_dim, num_classes) / np.sqrt(hidden_dim)')),
        M("init_draw_order", K, f'{w1}\n        self.params["b1"] = np.zeros(hidden_dim)\n        {w2}',
          f'{w2}\n        self.params["b1"] = np.zeros(hidden_dim)\n        {w1}',
          "W2 drawn before W1: the seed no longer gives the documented net"),
        # ---- kth_net: KTHNet.forward ----------------------------------------------------
        M("forward_no_max_subtraction", K, shift, "S = S", "exp of scores of a thousand overflows: nan"),
        M("forward_softmax_over_examples", K, norm, "P /= P.sum(axis=0, keepdims=True)",
          "each column normalised (MATLAB's column habit) instead of each row"),
        M("forward_bias_after_relu", K, relu, "H = np.maximum(X @ W1, 0) + b1", "the bias added after the ReLU"),
        M("forward_no_relu", K, relu, "H = X @ W1 + b1", "no ReLU: a linear net"),
        M("forward_scores_not_probabilities", K, f"P = np.exp(S)\n        {norm}", "P = S",
          "the scores returned as P"),
        # ---- kth_net: KTHNet.cost --------------------------------------------------------
        M("cost_cs231n_half", K, cost, "J = L + 0.5 * self.lam * (np.sum(W1 ** 2) + np.sum(W2 ** 2))",
          "CS231n's 0.5 in the penalty"),
        M("cost_biases_penalised", K, cost,
          'J = L + self.lam * (np.sum(W1 ** 2) + np.sum(W2 ** 2) + np.sum(self.params["b1"] ** 2))',
          "b1 penalised too"),
        M("cost_summed_not_mean", K, loss, "L = np.sum(-np.log(P[np.arange(len(y)), y]))",
          "the loss summed over the batch"),
        M("cost_loss_includes_penalty", K, cost, f"{cost}\n        L = J", "the penalty in the loss too"),
        M("cost_only_first_layer", K, cost, "J = L + self.lam * np.sum(W1 ** 2)", "W2 not penalised"),
        M("cost_log_of_all_classes", K, loss, "L = np.mean(-np.log(P[:, y]))",
          "P[:, y] picks whole columns: every label of the batch for every example"),
        # ---- kth_net: KTHNet.gradients ---------------------------------------------------
        M("grad_lam_not_two_lam", K, gw2, 'grads["W2"] = H.T @ G / N + self.lam * W2',
          "the gradient of CS231n's 0.5 * reg * ||W||^2", (gw1, 'grads["W1"] = X.T @ G / N + self.lam * W1')),
        M("grad_no_penalty_in_W1", K, gw1, 'grads["W1"] = X.T @ G / N', "the penalty's gradient missing from dW1"),
        M("grad_relu_mask_everywhere", K, back, "G = (G @ W2.T) * (H >= 0)", "H >= 0 holds everywhere: no mask"),
        M("grad_no_relu_backward", K, back, "G = G @ W2.T", "the ReLU skipped in the backward pass"),
        M("grad_W2_not_averaged", K, gw2, 'grads["W2"] = H.T @ G + 2 * self.lam * W2', "dW2 not divided by N"),
        M("grad_no_onehot", K, "G[np.arange(N), y] -= 1  # P - Y: the gradient of N * L with respect to S", "pass",
          "G = P: the one-hot labels never subtracted"),
        M("grad_b2_averaged_twice", K, 'grads["b2"] = G.sum(axis=0) / N', 'grads["b2"] = G.mean(axis=0) / N',
          "the bias gradient divided by N twice"),
        M("grad_b1_wrong_axis", K, 'grads["b1"] = G.sum(axis=0) / N', 'grads["b1"] = G.sum(axis=1) / N',
          "db1 summed over the hidden units instead of the examples"),
        # ---- cyclical: normalization, normalize ------------------------------------------
        M("normalization_one_std_for_all", C, "std = X.std(axis=0)", "std = np.full(X.shape[1], X.std())",
          "one standard deviation for the whole set"),
        M("normalization_over_rows", C, "mean = X.mean(axis=0)", "mean = X.mean(axis=1)",
          "the mean of each row (axis=1, the MATLAB layout)"),
        M("normalization_zero_std_kept", C, "    std[std == 0] = 1.0\n", "", "a zero std is kept: divide by 0"),
        M("normalization_epsilon", C, "std[std == 0] = 1.0", "std += 1e-8", "an epsilon added instead of 0 -> 1"),
        M("normalize_multiplies", C, "Xn = (X - mean) / std", "Xn = (X - mean) * std", "multiplies by the std"),
        M("normalize_not_centred", C, "Xn = (X - mean) / std", "Xn = X / std", "divides only"),
        M("normalize_own_statistics", C, "Xn = (X - mean) / std", "Xn = (X - X.mean(axis=0)) / std",
          "the set's own mean instead of the training set's"),
        M("normalize_in_place", C, "Xn = (X - mean) / std", "X -= mean\n    X /= std\n    Xn = X",
          "changes the caller's array in place"),
        # ---- cyclical: compare_gradients --------------------------------------------------
        M("compare_without_eps", C, rel, "relative = diff / (np.abs(ga) + np.abs(gn))", "no eps: 0 / 0 is nan"),
        M("compare_builtin_max", C, rel, "relative = diff / max(eps, np.max(np.abs(ga) + np.abs(gn)))",
          "the largest denominator for every entry"),
        M("compare_mean_relative", C, '"max_relative": float(relative.max())', '"max_relative": float(relative.mean())',
          "the mean relative error reported as the largest"),
        M("compare_absolutes_swapped", C, '"mean_absolute": float(diff.mean())', '"mean_absolute": float(diff.max())',
          "the largest difference reported as the mean"),
        M("compare_signed_difference", C, "diff = np.abs(ga - gn)", "diff = ga - gn", "no absolute value"),
        # ---- cyclical: record ----------------------------------------------------------------
        M("record_cost_and_loss_swapped", C, "cost, loss = net.cost(X, y)", "loss, cost = net.cost(X, y)",
          "(L, J) read from cost, which returns (J, L)"),
        M("record_validation_is_training", C, 'X, y = data[f"X_{split}"], data[f"y_{split}"]',
          'X, y = data["X_train"], data["y_train"]', "the training set measured twice"),
        M("record_accuracy_counted", C, "accuracy = np.mean(np.argmax(P, axis=1) == y)",
          "accuracy = np.sum(np.argmax(P, axis=1) == y)", "the number of right answers, not the fraction"),
        M("record_steps_forgotten", C, "    history.steps.append(int(t))\n", "", "t never recorded"),
        M("record_loss_as_cost", C, 'getattr(history, f"{split}_cost").append(float(cost))',
          'getattr(history, f"{split}_cost").append(float(loss))', "the loss recorded as the cost"),
        # ---- cyclical: minibatch_gd --------------------------------------------------------
        M("gd_no_initial_record", C, "    record(history, net, data, 0)\n    t = 0\n", "    t = 0\n",
          "no record before the first update"),
        M("gd_rate_of_t_plus_one", C, "            eta = lr_schedule(t)\n", "            eta = lr_schedule(t + 1)\n", "t counted from 1"),
        M("gd_one_order_for_every_epoch", C, loop_head,
          "    batches = epoch_batches(len(X), batch_size, rng)\n    while t < n_updates:\n"
          "        for batch in batches:\n", "the same batches every epoch"),
        M("gd_new_rng_every_epoch", C, loop_head,
          "    while t < n_updates:\n        rng = np.random.RandomState(seed)\n"
          "        for batch in epoch_batches(len(X), batch_size, rng):\n",
          "a new RandomState every epoch: the same order every epoch"),
        M("gd_finishes_the_epoch", C, "            if t == n_updates:\n                break\n", "",
          "no stop in the middle of an epoch: more than n_updates updates"),
        M("gd_records_before_the_update", C, rec, "",
          "the record made before the update",
          ("            eta = lr_schedule(t)\n",
           "            if t % record_every == 0 and t > 0:\n                record(history, net, data, t)\n"
           "            eta = lr_schedule(t)\n")),
        M("gd_no_last_record", C, "if t % record_every == 0 or t == n_updates:", "if t % record_every == 0:",
          "no record after the last update"),
        M("gd_gradient_ascent", C, update, "                net.params[name] += eta * grads[name]",
          "climbs the cost"),
        M("gd_rates_not_kept", C, "            history.learning_rates.append(eta)\n", "",
          "history.learning_rates left empty"),
        M("gd_labels_of_the_whole_set", C, "grads = net.gradients(X[batch], y[batch])",
          "grads = net.gradients(X[batch], y[:len(batch)])", "the labels not indexed with the batch"),
        M("gd_fixed_rate", C, "            eta = lr_schedule(t)\n", "            eta = lr_schedule(0)\n", "the schedule asked once, at t = 0"),
        # ---- cyclical: sample_lambdas -------------------------------------------------------
        M("lambdas_uniform_not_log", C, "lams = 10.0 ** l", "lams = rng.uniform(10.0 ** l_min, 10.0 ** l_max, n)",
          "lam uniform between the ends"),
        M("lambdas_natural_exp", C, "lams = 10.0 ** l", "lams = np.exp(l)", "e**l instead of 10**l"),
        M("lambdas_returns_the_exponents", C, "lams = 10.0 ** l", "lams = l", "log10(lam) returned"),
        M("lambdas_global_rng", C, "l = l_min + (l_max - l_min) * rng.rand(n)",
          "l = l_min + (l_max - l_min) * np.random.rand(n)", "numpy's global generator: the seed ignored"),
        M("lambdas_range_from_zero", C, "l = l_min + (l_max - l_min) * rng.rand(n)", "l = l_max * rng.rand(n)",
          "l drawn in [0, l_max)"),
        # ---- optim: cyclical_lr ---------------------------------------------------------------
        M("cyclical_sawtooth", O, into, "into_cycle = t % n_s", "only the climbing half: a sawtooth"),
        M("cyclical_no_eta_min", O, climb, "eta_t = into_cycle / n_s * eta_max", "climbs from 0, not from eta_min"),
        M("cyclical_falls_from_the_wrong_place", O, fall,
          "eta_t = eta_max - into_cycle / n_s * (eta_max - eta_min)", "the fall measured from the cycle's start"),
        M("cyclical_off_by_one", O, into, "into_cycle = (t + 1) % (2 * n_s)", "t counted from 1"),
        M("cyclical_integer_division", O, climb, "eta_t = eta_min + into_cycle // n_s * (eta_max - eta_min)",
          "integer division: the rate jumps between eta_min and eta_max"),
        M("cyclical_starts_high", O, climb, "eta_t = eta_max - into_cycle / n_s * (eta_max - eta_min)",
          "the cycle starts at eta_max", (fall, "eta_t = eta_min + (into_cycle - n_s) / n_s * (eta_max - eta_min)")),
    ]

    accepted = [
        M("ok_sample_std", C, "std = X.std(axis=0)", "std = X.std(axis=0, ddof=1)",
          "the sample standard deviation (MATLAB's std): accepted"),
        M("ok_bias_gradients_as_means", K, 'grads["b2"] = G.sum(axis=0) / N', 'grads["b2"] = G.mean(axis=0)',
          "the same number", ('grads["b1"] = G.sum(axis=0) / N', 'grads["b1"] = G.mean(axis=0)')),
        M("ok_cyclical_with_l", O, f"{into}\n    if into_cycle <= n_s:\n        {climb}\n    else:\n        {fall}",
          "l = t // (2 * n_s)\n    if t <= (2 * l + 1) * n_s:\n"
          "        eta_t = eta_min + (t - 2 * l * n_s) / n_s * (eta_max - eta_min)\n    else:\n"
          "        eta_t = eta_max - (t - (2 * l + 1) * n_s) / n_s * (eta_max - eta_min)",
          "the KTH formula with the cycle l written out"),
        M("ok_cyclical_strict_peak", O, "if into_cycle <= n_s:", "if into_cycle < n_s:",
          "the two lines meet at the peak: either may be used there"),
        M("ok_lambdas_uniform_exponent", C, "l = l_min + (l_max - l_min) * rng.rand(n)", "l = rng.uniform(l_min, l_max, n)",
          "the same draws"),
        M("ok_update_not_in_place", C, update, "                net.params[name] = net.params[name] - eta * grads[name]",
          "a new array instead of an in-place update"),
        M("ok_explicit_one_hot", K, "G = P.copy()\n        G[np.arange(N), y] -= 1  # P - Y: the gradient of N * L "
          "with respect to S", "G = P - np.eye(P.shape[1])[y]", "P - Y with Y written out"),
    ]
    return mutants, accepted
