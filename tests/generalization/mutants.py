"""The generalization mutation catalog: realistic student bugs in what generalization students write.

Each mutant is one or more ``(old, new)`` edits of one module of ``source/nnkit``, built with the
fcnets kit's ``Mutant`` (tests/trusted/mutation_kit.py): every ``old`` must occur exactly once in
that module, so the catalog fails loudly when the reference changes under it. Only the functions
of the manifest's ``[package]`` are mutated (the student regions of regression, analysis,
conv_layers and classifiers/cnn). Sources: the notebooks' own "likely cause" messages and the
classic mistakes of these exercises (the MSE summed or averaged over N only, its factor 2 or sign
lost; PCA without centring, from U or from the columns of Vt, variances from S not S²; the
convolution flipped, its bias or stride forgotten, padding ignored, gradients assigned instead of
accumulated; average instead of max pooling, the maximum's row and column swapped; the CNN's
filters left out of the L2 term).

``ACCEPTED`` holds edits that are NOT bugs (another correct way to write the same thing): they
must keep full marks.
"""
from __future__ import annotations


def catalog(Mutant):
    """(MUTANTS, ACCEPTED) built with the kit's Mutant class."""
    def M(id, module, old, new, bug, *more):
        return Mutant(id, module, ((old, new),) + tuple(more), bug)

    R, A, C, K = "regression.py", "analysis.py", "conv_layers.py", "classifiers/cnn.py"
    conv_out = "out[n, f, i, j] = np.sum(window * w[f]) + b[f]"
    conv_window = "window = xp[n, :, i * stride:i * stride + HH, j * stride:j * stride + WW]"
    pool_out = "out[n, c, i, j] = x[n, c, i * stride:i * stride + ph, j * stride:j * stride + pw].max()"
    pool_back = "dx[n, c, i * stride + k, j * stride + l] += dout[n, c, i, j]"
    cnn_l2 = 'squares = sum(float(np.sum(self.params[f"W{i}"] ** 2)) for i in range(1, L + 1))'

    mutants = [
        # ---- regression: mse_loss ---------------------------------------------------------
        M("mse_summed", R, "loss = np.mean(diff ** 2)", "loss = np.sum(diff ** 2)", "the loss summed, not averaged"),
        M("mse_mean_over_rows", R, "loss = np.mean(diff ** 2)", "loss = np.sum(diff ** 2) / len(diff)",
          "averaged over the N examples only (wrong when K > 1)"),
        M("mse_grad_no_factor_2", R, "dpred = 2.0 * diff / diff.size", "dpred = diff / diff.size",
          "the factor 2 of the derivative forgotten"),
        M("mse_grad_wrong_sign", R, "diff = pred - y", "diff = y - pred",
          "the difference reversed (the loss is fine, the gradient's sign flips)"),
        M("mse_grad_not_divided", R, "dpred = 2.0 * diff / diff.size", "dpred = 2.0 * diff",
          "the gradient of the sum, not of the mean"),
        M("mse_grad_by_rows", R, "dpred = 2.0 * diff / diff.size", "dpred = 2.0 * diff / len(diff)",
          "the gradient divided by N, not by N * K"),
        # ---- analysis: count_params -------------------------------------------------------
        M("count_arrays", A, "count += int(np.size(value))", "count += 1", "counts the arrays, not their entries"),
        M("count_len", A, "count += int(np.size(value))", "count += len(value) if np.ndim(value) else 1",
          "len(): the first dimension only"),
        M("count_weights_only", A, "for value in model.params.values():\n        count += int(np.size(value))",
          "for name, value in model.params.items():\n        count += int(np.size(value)) if name.startswith('W') "
          "else 0", "the biases left out"),
        M("count_float", A, "count += int(np.size(value))", "count += float(np.size(value))",
          "a float count"),
        # ---- analysis: grad_norm ----------------------------------------------------------
        M("grad_norm_sum_of_norms", A, "squares += float(np.sum(np.square(g, dtype=np.float64)))\n    norm = np.sqrt(squares)",
          "squares += float(np.sqrt(np.sum(np.square(g, dtype=np.float64))))\n    norm = squares",
          "the sum of each array's norm"),
        M("grad_norm_no_sqrt", A, "norm = np.sqrt(squares)", "norm = squares", "the squared norm"),
        M("grad_norm_first_array", A, "for g in grads.values():\n        squares +=",
          "for g in list(grads.values())[:1]:\n        squares +=", "only the first parameter's gradient"),
        M("grad_norm_max", A, "squares += float(np.sum(np.square(g, dtype=np.float64)))\n    norm = np.sqrt(squares)",
          "squares = max(squares, float(np.max(np.abs(g))))\n    norm = squares", "the largest entry, not the norm"),
        # ---- analysis: pca_project --------------------------------------------------------
        M("pca_not_centred", A, "Xc = X - X.mean(axis=0)", "Xc = X", "the mean row not subtracted"),
        M("pca_centred_rows", A, "Xc = X - X.mean(axis=0)", "Xc = X - X.mean(axis=1, keepdims=True)",
          "every row centred instead of every column"),
        M("pca_columns_of_vt", A, "components = Vt[:k]", "components = Vt[:, :k].T",
          "the first k columns of Vt (transposed) instead of its rows"),
        M("pca_project_uncentred", A, "Z = Xc @ components.T", "Z = X @ components.T",
          "the rows projected without centring them"),
        M("pca_explained_from_s", A, "explained = S[:k] ** 2 / np.sum(S ** 2)", "explained = S[:k] / np.sum(S)",
          "the fractions of the singular values, not of the variance"),
        M("pca_explained_of_k", A, "explained = S[:k] ** 2 / np.sum(S ** 2)",
          "explained = S[:k] ** 2 / np.sum(S[:k] ** 2)", "the variance of the k components only as the total"),
        M("pca_last_components", A, "components = Vt[:k]", "components = Vt[-k:][::-1]",
          "the directions of SMALLEST variance"),
        # ---- analysis: interpolate_params -------------------------------------------------
        M("interpolate_swapped", A, "params[name] = (1 - alpha) * theta1 + alpha * params2[name]",
          "params[name] = alpha * theta1 + (1 - alpha) * params2[name]", "alpha and 1 - alpha swapped"),
        M("interpolate_in_place", A, "params[name] = (1 - alpha) * theta1 + alpha * params2[name]",
          "theta1 *= 1 - alpha\n        theta1 += alpha * params2[name]\n        params[name] = theta1",
          "params1 updated in place (and returned)"),
        M("interpolate_weights_only", A, "params[name] = (1 - alpha) * theta1 + alpha * params2[name]",
          "params[name] = (1 - alpha) * theta1 + alpha * params2[name] if name.startswith('W') else theta1",
          "the biases kept from the first model"),
        M("interpolate_alias_at_ends", A, "params[name] = (1 - alpha) * theta1 + alpha * params2[name]",
          "params[name] = theta1 if alpha == 0 else (1 - alpha) * theta1 + alpha * params2[name]",
          "alpha = 0 returns the first model's own arrays"),
        # ---- analysis: input_grad_norm ----------------------------------------------------
        M("sensitivity_param_grads", A, "_, _, dX = model.loss(X, y, input_grad=True)",
          "_, grads, _ = model.loss(X, y, input_grad=True)\n    dX = np.concatenate([g.ravel() for g in grads.values()])",
          "the norm of the parameters' gradient instead of the input's"),
        M("sensitivity_squared", A, "norm = np.sqrt(np.sum(np.square(dX, dtype=np.float64)))",
          "norm = np.sum(np.square(dX, dtype=np.float64))", "the squared norm"),
        M("sensitivity_without_input_grad", A, "_, _, dX = model.loss(X, y, input_grad=True)",
          "_, dX = model.loss(X, y)", "not asking for dL/dX (unpacks the gradients instead)"),
        M("sensitivity_per_example_mean", A, "norm = np.sqrt(np.sum(np.square(dX, dtype=np.float64)))",
          "norm = np.mean(np.linalg.norm(dX.reshape(len(dX), -1), axis=1))", "the mean of the rows' norms"),
        # ---- conv_layers: conv_forward_naive ----------------------------------------------
        M("conv_no_bias", C, conv_out, "out[n, f, i, j] = np.sum(window * w[f])", "the bias forgotten"),
        M("conv_flipped_filter", C, conv_out, "out[n, f, i, j] = np.sum(window * w[f, :, ::-1, ::-1]) + b[f]",
          "a true convolution: the filter flipped"),
        M("conv_ignores_stride", C, conv_window, "window = xp[n, :, i:i + HH, j:j + WW]",
          "windows every pixel whatever the stride"),
        M("conv_ignores_padding", C, conv_window,
          "window = zero_pad(x, 0)[n, :, i * stride:i * stride + HH, j * stride:j * stride + WW]",
          "reads x instead of the padded xp"),
        M("conv_one_channel", C, conv_out, "out[n, f, i, j] = np.sum(window[0] * w[f, 0]) + b[f]",
          "only the first channel summed"),
        M("conv_window_transposed", C, conv_window,
          "window = xp[n, :, j * stride:j * stride + HH, i * stride:i * stride + WW]",
          "i and j swapped: rows stepped by j"),
        # ---- conv_layers: conv_backward_naive ---------------------------------------------
        M("conv_dx_assigned", C, "dxp[n, :, rows, cols] += g * w[f]", "dxp[n, :, rows, cols] = g * w[f]",
          "dx assigned, not accumulated, where windows overlap"),
        M("conv_dw_missing_g", C, "dw[f] += g * xp[n, :, rows, cols]", "dw[f] += xp[n, :, rows, cols]",
          "dw summed without the upstream derivative"),
        M("conv_db_once", C, "db[f] += g", "db[f] = g", "db holds the last derivative only"),
        M("conv_dx_no_stride", C, "rows = slice(i * stride, i * stride + HH)\n                    cols = slice(j * stride, j * stride + WW)",
          "rows = slice(i, i + HH)\n                    cols = slice(j, j + WW)", "the backward windows ignore the stride"),
        M("conv_dw_from_w", C, "dw[f] += g * xp[n, :, rows, cols]", "dw[f] += g * w[f]",
          "dw from the filter instead of the input window"),
        # ---- conv_layers: max pooling -----------------------------------------------------
        M("pool_mean", C, pool_out,
          "out[n, c, i, j] = x[n, c, i * stride:i * stride + ph, j * stride:j * stride + pw].mean()",
          "average pooling"),
        M("pool_ignores_stride", C, pool_out, "out[n, c, i, j] = x[n, c, i:i + ph, j:j + pw].max()",
          "windows every pixel whatever the stride"),
        M("pool_height_width_swapped", C, pool_out,
          "out[n, c, i, j] = x[n, c, i * stride:i * stride + pw, j * stride:j * stride + ph].max()",
          "pool_height and pool_width swapped"),
        M("pool_back_spread", C, "k, l = np.unravel_index(np.argmax(window), window.shape)\n"
          "                    " + pool_back,
          "dx[n, c, i * stride:i * stride + ph, j * stride:j * stride + pw] += dout[n, c, i, j] / window.size",
          "the gradient spread over the window (average pooling's)"),
        M("pool_back_row_col_swapped", C, "k, l = np.unravel_index(np.argmax(window), window.shape)",
          "l, k = np.unravel_index(np.argmax(window), window.shape)", "the maximum's row and column swapped"),
        M("pool_back_assigned", C, pool_back, "dx[n, c, i * stride + k, j * stride + l] = dout[n, c, i, j]",
          "assigned, not accumulated, where windows overlap"),
        M("pool_back_last_max", C, "k, l = np.unravel_index(np.argmax(window), window.shape)",
          "k, l = np.unravel_index(window.size - 1 - np.argmax(window.ravel()[::-1]), window.shape)",
          "ties go to the LAST maximum"),
        M("pool_back_all_max", C, "k, l = np.unravel_index(np.argmax(window), window.shape)\n"
          "                    " + pool_back,
          "dx[n, c, i * stride:i * stride + ph, j * stride:j * stride + pw] += dout[n, c, i, j] * (window == window.max())",
          "every tied maximum gets the whole gradient"),
        # ---- classifiers/cnn: ConvNet.loss ------------------------------------------------
        M("cnn_l2_without_filters", K, cnn_l2,
          'squares = sum(float(np.sum(self.params[f"W{i}"] ** 2)) for i in range(n_conv + 1, L + 1))',
          "the filters left out of the L2 term",
          ('            for i in range(1, L + 1):\n                grads[f"W{i}"] = grads[f"W{i}"] + self.reg * self.params[f"W{i}"]',
           '            for i in range(n_conv + 1, L + 1):\n                grads[f"W{i}"] = grads[f"W{i}"] + self.reg * self.params[f"W{i}"]')),
        M("cnn_l2_no_half", K, "loss = loss + 0.5 * self.reg * squares", "loss = loss + self.reg * squares",
          "reg * sum(W**2): the 0.5 dropped"),
        M("cnn_l2_with_biases", K, cnn_l2,
          "squares = sum(float(np.sum(v ** 2)) for v in self.params.values())", "the biases regularised too"),
        M("cnn_grads_without_reg", K, '                grads[f"W{i}"] = grads[f"W{i}"] + self.reg * self.params[f"W{i}"]',
          '                grads[f"W{i}"] = grads[f"W{i}"]', "reg * W missing from the gradients"),
        M("cnn_relu_after_last_layer", K, 'scores, cache = affine_forward(h, self.params[f"W{L}"], self.params[f"b{L}"])',
          'scores, cache = affine_relu_forward(h, self.params[f"W{L}"], self.params[f"b{L}"])',
          "a ReLU after the last affine layer (and its backward kept plain)"),
        M("cnn_wrong_cache", K, "upstream, dW, db = backward(upstream, caches[i - 1])",
          "upstream, dW, db = backward(upstream, caches[max(i - 2, 0)] if i > n_conv + 1 else caches[i - 1])",
          "a hidden layer's backward pass given the previous layer's cache"),
        M("cnn_forgets_last_bias_grad", K, 'grads.update({f"W{L}": dW, f"b{L}": db})',
          'grads.update({f"W{L}": dW, f"b{L}": np.zeros_like(db)})', "the last layer's bias gradient zeroed"),
    ]

    accepted = [
        M("ok_mse_squared_mean", R, "loss = np.mean(diff ** 2)", "loss = np.sum(diff * diff) / diff.size",
          "the same mean written as a sum over the size"),
        M("ok_count_prod_shape", A, "count += int(np.size(value))", "count += int(np.prod(np.shape(value)))",
          "np.prod of the shape (1 for a 0-d array)"),
        M("ok_grad_norm_linalg", A, "squares += float(np.sum(np.square(g, dtype=np.float64)))\n    norm = np.sqrt(squares)",
          "squares += float(np.linalg.norm(np.ravel(g)) ** 2)\n    norm = np.sqrt(squares)",
          "each array's norm squared, then the root of the sum"),
        M("ok_pca_via_eigh", A, "_, S, Vt = np.linalg.svd(Xc, full_matrices=False)\n    components = Vt[:k]",
          "evals, evecs = np.linalg.eigh(Xc.T @ Xc)\n    order = np.argsort(evals)[::-1]\n"
          "    S = np.sqrt(np.clip(evals[order], 0, None))\n    components = evecs[:, order[:k]].T",
          "the eigenvectors of Xc^T Xc (other signs)"),
        M("ok_pca_flipped_signs", A, "components = Vt[:k]", "components = -Vt[:k]", "every component's sign flipped"),
        M("ok_interpolate_difference", A, "params[name] = (1 - alpha) * theta1 + alpha * params2[name]",
          "params[name] = theta1 + alpha * (params2[name] - theta1)", "theta1 + alpha (theta2 - theta1)"),
        M("ok_sensitivity_linalg", A, "norm = np.sqrt(np.sum(np.square(dX, dtype=np.float64)))",
          "norm = np.linalg.norm(np.ravel(dX))", "np.linalg.norm of the flattened dX"),
        M("ok_conv_tensordot", C, conv_out, "out[n, f, i, j] = np.tensordot(window, w[f], axes=3) + b[f]",
          "tensordot over the three axes"),
        M("ok_pool_np_max", C, pool_out,
          "out[n, c, i, j] = np.max(x[n, c, i * stride:i * stride + ph, j * stride:j * stride + pw])", "np.max"),
        M("ok_cnn_l2_vdot", K, cnn_l2,
          'squares = sum(float(np.vdot(self.params[f"W{i}"], self.params[f"W{i}"])) for i in range(1, L + 1))',
          "vdot instead of sum of squares"),
    ]
    return mutants, accepted
