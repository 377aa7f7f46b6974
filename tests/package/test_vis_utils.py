"""Tests of nnkit.vis_utils (Agg backend, figures closed after each test)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from nnkit.vis_utils import plot_curves, plot_image_grid, show_net_weights, visualize_grid  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_visualize_grid_shape_and_tiles():
    # 5 images of 2x3x1 -> ceil(sqrt(5)) = 3 tiles a side, padding 1:
    # height 3*2 + 2*1 = 8, width 3*3 + 2*1 = 11.
    Xs = np.arange(5 * 2 * 3, dtype=float).reshape(5, 2, 3, 1)
    grid = visualize_grid(Xs, ubound=10.0, padding=1)
    assert grid.shape == (8, 11, 1)
    # Each tile is its image scaled to [0, 10]: values 0..5 -> 0, 2, ..., 10.
    tile = 10.0 * np.arange(6, dtype=float).reshape(2, 3, 1) / 5.0
    starts = {0: (0, 0), 1: (0, 4), 2: (0, 8), 3: (3, 0), 4: (3, 4)}
    for i, (y0, x0) in starts.items():
        assert np.allclose(grid[y0:y0 + 2, x0:x0 + 3], tile), i
    # Padding rows/cols and the unused tile (row 1, col 2) and row 2 stay 0.
    assert np.all(grid[2] == 0) and np.all(grid[:, 3] == 0) and np.all(grid[:, 7] == 0)
    assert np.all(grid[3:5, 8:11] == 0)
    assert np.all(grid[6:8] == 0)


def test_visualize_grid_constant_image_is_zero_not_nan():
    Xs = np.full((1, 2, 2, 3), 7.0)
    grid = visualize_grid(Xs)
    assert grid.shape == (2, 2, 3)
    assert np.all(grid == 0)


def test_visualize_grid_rejects_wrong_rank():
    with pytest.raises(ValueError, match=r"\(N, H, W, C\)"):
        visualize_grid(np.zeros((3, 4, 4)))


def test_plot_curves_draws_the_histories():
    loss = [2.3, 2.0, 1.5, 1.2]
    tr, va = [0.1, 0.5, 0.8], [0.1, 0.4, 0.6]
    fig = plot_curves(loss, tr, val_acc=va)
    assert len(fig.axes) == 2
    ax_loss, ax_acc = fig.axes
    assert np.allclose(ax_loss.lines[0].get_ydata(), loss)
    assert [list(l.get_ydata()) for l in ax_acc.lines] == [tr, va]


def test_plot_curves_into_given_axes_with_val_loss():
    fig, axes = plt.subplots(1, 2)
    out = plot_curves([3.0, 2.0, 1.0], [0.2, 0.9], val_loss=[2.5, 1.5], ax=axes)
    assert out is fig
    assert len(axes[0].lines) == 2
    assert np.allclose(axes[0].lines[1].get_xdata(), [1.0, 3.0])  # stretched to iterations


def test_show_net_weights_unflattens_channels_first():
    rng = np.random.RandomState(0)
    H, W, C, M = 4, 5, 3, 6
    imgs = rng.rand(M, H, W, C)
    # What the first layer sees for channels-first inputs: (C, H, W) flattened.
    W1 = imgs.transpose(0, 3, 1, 2).reshape(M, -1).T
    fig = show_net_weights(W1, image_shape=(H, W, C), padding=2)
    assert len(fig.axes) == 1
    shown = np.asarray(fig.axes[0].images[0].get_array())
    expected = visualize_grid(imgs, padding=2).astype(np.uint8)
    # 6 units -> 3x3 tiles of 4x5 with padding 2.
    assert shown.shape == (3 * 4 + 2 * 2, 3 * 5 + 2 * 2, 3)
    assert np.array_equal(shown, expected)

    W1_hwc = imgs.reshape(M, -1).T
    fig2 = show_net_weights(W1_hwc, image_shape=(H, W, C), channels_first=False, padding=2)
    assert np.array_equal(np.asarray(fig2.axes[0].images[0].get_array()), expected)


def test_show_net_weights_rejects_wrong_size():
    with pytest.raises(ValueError, match="3072"):
        show_net_weights(np.zeros((100, 5)))


def test_plot_image_grid_one_axis_per_image_with_titles():
    rng = np.random.RandomState(1)
    images = rng.rand(10, 6, 6, 3) * 255
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    preds = labels.copy()
    preds[[2, 5]] = 0
    names = ["cat", "dog", "ship"]
    fig = plot_image_grid(images, labels, names, predictions=preds, ncols=4)
    assert len(fig.axes) == 10
    assert fig.axes[0].get_title() == "cat / cat"
    assert fig.axes[2].get_title() == "ship / cat"
    assert mcolors.same_color(fig.axes[2].title.get_color(), "red")
    assert mcolors.same_color(fig.axes[0].title.get_color(), "black")
    # Each image min-max scaled to [0, 1] for display.
    shown = np.asarray(fig.axes[3].images[0].get_array())
    img = images[3]
    assert np.allclose(shown, (img - img.min()) / (img.max() - img.min()))


def test_plot_image_grid_channels_first_and_max_images():
    images = np.zeros((5, 3, 4, 7))
    images[:, 0] = 1.0  # red channel on
    fig = plot_image_grid(images, np.zeros(5, int), ["a"], max_images=3, channels_first=True)
    assert len(fig.axes) == 3
    shown = np.asarray(fig.axes[0].images[0].get_array())
    assert shown.shape == (4, 7, 3)
    assert np.all(shown[..., 0] == 1) and np.all(shown[..., 1:] == 0)
    assert fig.axes[0].get_title() == "a"


def test_plot_image_grid_checks_lengths():
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        plot_image_grid(np.zeros((3, 4, 4)), [0, 1], ["a", "b"])
