"""Pictures of images, weights and training curves.

The plotting functions create their figure with pyplot, so Jupyter shows it at
the end of the cell, and return it. Assign the result (``fig = plot_curves(...)``)
when it is the last line of a cell, or Jupyter shows the figure twice.
They never call ``plt.show()``. Matplotlib is imported on first use, so
``visualize_grid`` works without it.

``use_notebook_progress_bars()`` (called by the notebooks' setup cell) makes the
widget progress bars of ``tqdm.auto`` turn into a line of text when they finish.
"""

from math import ceil, sqrt

import numpy as np

__all__ = ["visualize_grid", "plot_curves", "show_net_weights", "plot_image_grid",
           "use_notebook_progress_bars", "plot_lines", "plot_fits", "plot_pca_paths", "plot_loss_and_accuracy"]


def visualize_grid(Xs, ubound=255.0, padding=1):
    """Tile images into one image, each scaled to ``[0, ubound]``.

    Parameters
    ----------
    Xs : array, (N, H, W, C)
        The images. Each is min-max scaled on its own (a constant image
        becomes 0).
    ubound : float
        The largest value of the output.
    padding : int
        Pixels of 0 between neighbouring tiles.

    Returns
    -------
    grid : array, (G*H + (G-1)*padding, G*W + (G-1)*padding, C)
        ``G = ceil(sqrt(N))`` tiles per side, filled row by row; unused
        tiles stay 0.
    """
    Xs = np.asarray(Xs)
    if Xs.ndim != 4:
        raise ValueError(f"visualize_grid: Xs must be (N, H, W, C), got shape {Xs.shape}.")
    N, H, W, C = Xs.shape
    grid_size = int(ceil(sqrt(N)))
    grid_height = H * grid_size + padding * (grid_size - 1)
    grid_width = W * grid_size + padding * (grid_size - 1)
    grid = np.zeros((grid_height, grid_width, C))
    for i in range(N):
        row, col = divmod(i, grid_size)
        y0, x0 = row * (H + padding), col * (W + padding)
        img = Xs[i]
        low, high = np.min(img), np.max(img)
        if high > low:
            grid[y0:y0 + H, x0:x0 + W] = ubound * (img - low) / (high - low)
    return grid


def plot_curves(train_loss, train_acc, val_loss=None, val_acc=None, ax=None):
    """Loss and accuracy curves side by side.

    Parameters
    ----------
    train_loss : sequence of float, (T,)
        Loss per iteration (``solver.loss_history``).
    train_acc : sequence of float, (E,)
        Train accuracy per check (``solver.train_acc_history``).
    val_loss : sequence of float or None
        Validation loss per check, drawn on the loss panel against the
        iteration axis stretched to the same range.
    val_acc : sequence of float or None, (E,)
        Validation accuracy per check (``solver.val_acc_history``).
    ax : pair of matplotlib Axes or None
        Where to draw (loss, accuracy); a new 1x2 figure when None.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    if ax is None:
        fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(12, 4))
    else:
        try:
            ax_loss, ax_acc = ax
        except (TypeError, ValueError):
            raise ValueError("plot_curves: ax must be a pair of Axes (loss, accuracy).") from None
        fig = ax_loss.figure

    train_loss = np.asarray(train_loss, dtype=float)
    ax_loss.plot(np.arange(1, len(train_loss) + 1), train_loss, ".", ms=3, alpha=0.5,
                 label="train (per iteration)")
    if val_loss is not None and len(val_loss):
        val_loss = np.asarray(val_loss, dtype=float)
        x = np.linspace(1, max(len(train_loss), 1), len(val_loss))
        ax_loss.plot(x, val_loss, "o-", label="val")
    ax_loss.set(title="Loss", xlabel="Iteration", ylabel="Loss")
    ax_loss.legend()

    epochs = np.arange(len(train_acc))
    ax_acc.plot(epochs, train_acc, "o-", label="train")
    if val_acc is not None:
        ax_acc.plot(np.arange(len(val_acc)), val_acc, "o-", label="val")
    ax_acc.set(title="Accuracy", xlabel="Check (epoch)", ylabel="Accuracy")
    ax_acc.legend()
    fig.tight_layout()
    return fig


def show_net_weights(W1, image_shape=(32, 32, 3), channels_first=True, padding=3):
    """Show the first-layer weights of a net as a grid of images.

    Parameters
    ----------
    W1 : array, (D, M)
        One column per hidden unit; ``D = H * W * C``.
    image_shape : tuple (H, W, C)
        The shape of one input image.
    channels_first : bool
        How the D inputs are ordered: ``(C, H, W)`` flattened (True, what
        ``load_dataset`` gives by default) or ``(H, W, C)`` flattened.
    padding : int
        Pixels between tiles.

    Returns
    -------
    fig : matplotlib.figure.Figure
        One Axes showing the ``visualize_grid`` of the M weight images.
    """
    import matplotlib.pyplot as plt

    W1 = np.asarray(W1)
    H, W, C = image_shape
    if W1.ndim != 2 or W1.shape[0] != H * W * C:
        raise ValueError(f"show_net_weights: W1 must be (D, M) with D = {H}*{W}*{C} = {H * W * C}, "
                         f"got shape {W1.shape}.")
    if channels_first:
        imgs = W1.T.reshape(-1, C, H, W).transpose(0, 2, 3, 1)
    else:
        imgs = W1.T.reshape(-1, H, W, C)
    grid = visualize_grid(imgs, ubound=255.0, padding=padding).astype(np.uint8)
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.imshow(grid.squeeze(-1) if C == 1 else grid, cmap="gray" if C == 1 else None)
    ax.axis("off")
    ax.set_title(f"First-layer weights ({W1.shape[1]} units)")
    return fig


def plot_image_grid(images, labels, class_names, predictions=None, ncols=8,
                    max_images=None, channels_first=False, figsize_per_image=1.6):
    """Images in a grid, titled with their class (and the prediction).

    To look at mistakes, pass the misclassified ones::

        wrong = np.flatnonzero(y_pred != y_test)[:32]
        plot_image_grid(raw_images[wrong], y_test[wrong], class_names,
                        predictions=y_pred[wrong])

    Parameters
    ----------
    images : array, (N, H, W, C), (N, H, W) or with ``channels_first`` (N, C, H, W)
        Any scale: each image is min-max scaled for display.
    labels : array, (N,) int
        True labels.
    class_names : sequence of str
        Name of each label.
    predictions : array, (N,) int or None
        When given, titles read ``true / pred`` and wrong ones are red.
    ncols : int
        Images per row.
    max_images : int or None
        Show at most this many (the first ones).
    channels_first : bool
        Whether images are (N, C, H, W).

    Returns
    -------
    fig : matplotlib.figure.Figure
        One Axes per image shown.
    """
    import matplotlib.pyplot as plt

    images = np.asarray(images)
    labels = np.asarray(labels)
    if channels_first:
        if images.ndim != 4:
            raise ValueError(f"plot_image_grid: channels_first images must be (N, C, H, W), "
                             f"got shape {images.shape}.")
        images = images.transpose(0, 2, 3, 1)
    if images.ndim not in (3, 4):
        raise ValueError(f"plot_image_grid: images must be (N, H, W, C) or (N, H, W), "
                         f"got shape {images.shape}.")
    if len(labels) != len(images):
        raise ValueError(f"plot_image_grid: {len(images)} images but {len(labels)} labels.")
    if predictions is not None and len(predictions) != len(images):
        raise ValueError(f"plot_image_grid: {len(images)} images but {len(predictions)} predictions.")
    n = len(images) if max_images is None else min(len(images), max_images)
    if n == 0:
        raise ValueError("plot_image_grid: no images to show.")
    ncols = max(1, min(ncols, n))
    nrows = int(ceil(n / ncols))
    fig = plt.figure(figsize=(figsize_per_image * ncols, figsize_per_image * 1.25 * nrows))
    for i in range(n):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        img = images[i].astype(float)
        low, high = img.min(), img.max()
        img = (img - low) / (high - low) if high > low else np.zeros_like(img)
        if img.ndim == 3 and img.shape[-1] == 1:
            img = img[..., 0]
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0.0, vmax=1.0)
        ax.axis("off")
        true_name = class_names[int(labels[i])]
        if predictions is None:
            ax.set_title(true_name, fontsize=8)
        else:
            pred = int(predictions[i])
            ax.set_title(f"{true_name} / {class_names[pred]}", fontsize=8,
                         color="red" if pred != int(labels[i]) else "black")
    fig.tight_layout()
    return fig


def use_notebook_progress_bars():
    """Make ``tqdm.auto``'s widget bars end as a line of text in the notebook.

    A widget bar lives in the kernel: in a notebook saved and opened again it
    shows "Error displaying widget: model not found". With this, every bar made
    through ``tqdm.auto`` afterwards (the Solver's, the searches', the feature
    extraction's, yours) is a widget while it runs and, once closed, is replaced
    in the notebook by its last text line (``Training: 100%|####| 70/70 ...``).

    Returns
    -------
    bool
        True when ``tqdm.auto`` makes notebook bars (it is then patched, once);
        False elsewhere (a terminal, no ipywidgets), where nothing changes.
    """
    try:
        import tqdm.auto
        from IPython.display import Pretty, display
        from tqdm.notebook import tqdm as notebook_tqdm
    except ImportError:
        return False
    base = tqdm.auto.tqdm
    if getattr(base, "_nnkit_text_when_done", False):
        return True
    if not (isinstance(base, type) and issubclass(base, notebook_tqdm)):
        return False

    class tqdm_notebook_text(base):
        """A ``tqdm.auto`` notebook bar that leaves its text behind when closed."""

        _nnkit_text_when_done = True

        def __init__(self, *args, **kwargs):
            show = kwargs.pop("display", True)
            self._nnkit_handle = None
            super().__init__(*args, display=False, **kwargs)
            container = getattr(self, "container", None)
            if show and container is not None and not self.disable:
                self._nnkit_handle = display(container, display_id=True)
                self.displayed = True

        def close(self):
            was_open = not self.disable
            super().close()
            handle, self._nnkit_handle = self._nnkit_handle, None
            if was_open and handle is not None:
                try:
                    line = str(self) if self.leave else ""
                except Exception:  # a bar that cannot format itself: leave the widget
                    return
                handle.update(Pretty(line))

    tqdm_notebook_text.__name__ = base.__name__
    tqdm.auto.tqdm = tqdm_notebook_text
    try:
        import tqdm.autonotebook

        tqdm.autonotebook.tqdm = tqdm_notebook_text
    except ImportError:
        pass
    return True


# ---------------------------------------------------------------------------
# Curves of the generalisation experiments
# ---------------------------------------------------------------------------
def plot_lines(x, series, *, xlabel="", ylabel="", title=None, logx=False, logy=False, marker=None, ax=None):
    """Several curves against the same x (or each against its own).

    Parameters
    ----------
    x : sequence of float, (T,), or dict label -> (T_label,)
        The abscissae, shared or one per curve.
    series : dict label -> sequence of float, (T,) or (T_label,)
        One curve per entry, labelled in the legend.
    xlabel, ylabel, title : str
    logx, logy : bool
        Logarithmic axes.
    marker : str or None
        A matplotlib marker for every point (e.g. "o" for a sweep).
    ax : matplotlib Axes or None
        Where to draw; a new figure when None.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 4))
    else:
        fig = ax.figure
    for label, y in series.items():
        xs = x[label] if isinstance(x, dict) else x
        ax.plot(np.asarray(xs, dtype=float), np.asarray(y, dtype=float), marker=marker, label=str(label))
    ax.set(xlabel=xlabel, ylabel=ylabel)
    if title:
        ax.set_title(title)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    if len(series) > 1:
        ax.legend()
    fig.tight_layout()
    return fig


def plot_fits(x, target, predictions, *, title="Fitted functions", ax=None):
    """A target function and the predictions of several models.

    Parameters
    ----------
    x : array, (N,) or (N, 1)
        The inputs, in increasing order.
    target : array, (N,) or (N, 1)
        The true values, drawn as a thick gray curve.
    predictions : dict label -> array, (N,) or (N, 1)
    title : str
    ax : matplotlib Axes or None

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 4))
    else:
        fig = ax.figure
    x = np.asarray(x, dtype=float).ravel()
    ax.plot(x, np.asarray(target, dtype=float).ravel(), color="0.7", lw=4, label="target")
    for label, pred in predictions.items():
        ax.plot(x, np.asarray(pred, dtype=float).ravel(), label=str(label))
    ax.set(xlabel="x", ylabel="y", title=title)
    ax.legend()
    fig.tight_layout()
    return fig


def plot_pca_paths(Z, runs, labels=None, *, title="Training paths, first two principal components", ax=None):
    """Points in 2-D joined in order within each run: the paths of several trainings.

    Parameters
    ----------
    Z : array, (M, 2)
        The points (e.g. ``analysis.pca_project(snapshots, 2)[0]``).
    runs : array of int, (M,)
        The run of every point; each run's points are joined in the order they come.
    labels : sequence of str or None
        Text written next to every point (e.g. its epoch); None writes nothing.
    title : str
    ax : matplotlib Axes or None

    Returns
    -------
    fig : matplotlib.figure.Figure
        A circle marks where each run starts, a cross where it ends.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 5))
    else:
        fig = ax.figure
    Z = np.asarray(Z, dtype=float)
    runs = np.asarray(runs)
    if Z.ndim != 2 or Z.shape[1] != 2 or len(runs) != len(Z):
        raise ValueError(f"plot_pca_paths: Z must be (M, 2) and runs (M,); got {Z.shape} and {runs.shape}.")
    for r in dict.fromkeys(runs.tolist()):
        rows = np.flatnonzero(runs == r)
        line, = ax.plot(Z[rows, 0], Z[rows, 1], ".-", label=f"run {r}")
        ax.plot(Z[rows[0], 0], Z[rows[0], 1], "o", color=line.get_color())
        ax.plot(Z[rows[-1], 0], Z[rows[-1], 1], "x", color=line.get_color(), ms=10)
        if labels is not None:
            for i in rows:
                ax.annotate(str(labels[i]), Z[i], fontsize=7, color=line.get_color())
    ax.set(xlabel="component 1", ylabel="component 2", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_loss_and_accuracy(x, record, *, splits=("train", "test"), xlabel="", title=None, logx=False):
    """The loss (left axis, logarithmic) and the accuracy (right axis) of several splits against x.

    Parameters
    ----------
    x : sequence of float, (T,)
    record : dict
        ``<split>_loss`` and ``<split>_acc`` of every split: sequences of T floats (what
        ``analysis.record_training`` returns, or a sweep's results in the same form).
    splits : sequence of str
    xlabel, title : str
    logx : bool

    Returns
    -------
    fig : matplotlib.figure.Figure
        Losses solid, accuracies dashed, one colour per split.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    right = ax.twinx()
    x = np.asarray(x, dtype=float)
    for k, s in enumerate(splits):
        color = f"C{k}"
        ax.plot(x, np.asarray(record[f"{s}_loss"], dtype=float), "-", color=color, label=f"{s} loss")
        right.plot(x, np.asarray(record[f"{s}_acc"], dtype=float), "--", color=color, label=f"{s} accuracy")
    ax.set_yscale("log")
    ax.set(xlabel=xlabel, ylabel="loss (solid)")
    right.set(ylabel="accuracy (dashed)", ylim=(0, 1.02))
    if logx:
        ax.set_xscale("log")
    if title:
        ax.set_title(title)
    lines = ax.get_legend_handles_labels()
    more = right.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8, loc="center right")
    fig.tight_layout()
    return fig
