"""The flat-input data path of nnkit.data_utils: flatten_and_scale, split_train_val and
load_flat_dataset, on tiny MNIST files written in the real formats (IDX, gzipped or
not, and pjreddie's header-less CSV) and on the embedded digits.

Expected values come from the definitions: pixel / 255, row-major flattening, the
permutation np.random.RandomState(seed).permutation(N), never from the loader's output.
"""
import numpy as np
import pytest

from nnkit import data_utils as du
from test_data_utils import mnist_arrays, write_csv, write_idx


# ---------------------------------------------------------------- flatten_and_scale
def test_flatten_and_scale_by_hand():
    images = np.array([[[0, 255], [51, 102]], [[255, 255], [0, 204]]], dtype=np.uint8)
    X = du.flatten_and_scale(images)
    assert X.dtype == np.float64 and X.shape == (2, 4)
    np.testing.assert_allclose(X, [[0.0, 1.0, 0.2, 0.4], [1.0, 1.0, 0.0, 0.8]], rtol=0, atol=1e-15)
    assert images[0, 0, 1] == 255  # the input is unchanged


def test_flatten_and_scale_reads_rows_in_order_and_takes_float_images():
    images = np.arange(2 * 3 * 4, dtype=np.float64).reshape(2, 3, 4)
    X = du.flatten_and_scale(images)
    np.testing.assert_allclose(X[1], np.arange(12, 24) / 255)
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        du.flatten_and_scale(np.zeros(5))


# ---------------------------------------------------------------- split_train_val
def test_split_is_the_seeds_permutation_with_labels_kept():
    X = np.arange(10)[:, None] * np.ones((1, 3))  # row i holds i
    y = np.arange(10) + 100
    X_tr, y_tr, X_va, y_va = du.split_train_val(X, y, 3, seed=5)
    order = np.random.RandomState(5).permutation(10)
    np.testing.assert_array_equal(X_va[:, 0], order[:3])
    np.testing.assert_array_equal(X_tr[:, 0], order[3:])
    np.testing.assert_array_equal(y_va, order[:3] + 100)
    np.testing.assert_array_equal(y_tr, order[3:] + 100)
    assert sorted(np.concatenate([y_tr, y_va]).tolist()) == list(range(100, 110))


def test_split_depends_on_the_seed_only_and_takes_the_extremes():
    X, y = np.arange(20).reshape(20, 1), np.arange(20)
    a, b = du.split_train_val(X, y, 5, seed=1), du.split_train_val(X, y, 5, seed=1)
    c = du.split_train_val(X, y, 5, seed=2)
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    assert not np.array_equal(a[3], c[3])
    X_tr, y_tr, X_va, y_va = du.split_train_val(X, y, 0)
    assert X_va.shape == (0, 1) and len(y_tr) == 20
    X_tr, y_tr, X_va, y_va = du.split_train_val(X, y, 20)
    assert X_tr.shape == (0, 1) and len(y_va) == 20


@pytest.mark.parametrize("bad", [-1, 11, 2.0, True, None])
def test_split_refuses_impossible_sizes(bad):
    with pytest.raises(ValueError, match="num_validation must be an integer from 0 to N = 10"):
        du.split_train_val(np.zeros((10, 2)), np.zeros(10), bad)


# ---------------------------------------------------------------- load_flat_dataset on MNIST files
def expected_flat(images, labels, test_images, test_labels, n_val, seed):
    """The flat dataset by its definition."""
    order = np.random.RandomState(seed).permutation(len(images))
    rows = images.reshape(len(images), -1) / 255.0
    return {"X_train": rows[order[n_val:]], "y_train": labels[order[n_val:]],
            "X_val": rows[order[:n_val]], "y_val": labels[order[:n_val]],
            "X_test": test_images.reshape(len(test_images), -1) / 255.0, "y_test": test_labels}


def check_flat(data, expected):
    for key, value in expected.items():
        assert data[key].shape == value.shape, key
        np.testing.assert_allclose(data[key], value, rtol=0, atol=1e-15, err_msg=key)
    assert data["X_train"].dtype == np.float64 and data["y_train"].dtype == np.int64
    assert data["image_shape"] == (28, 28) and data["class_names"] == tuple("0123456789")


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_idx_files_give_flat_rows_in_0_1_with_a_seeded_split(tmp_path, gz):
    Xtr, ytr = mnist_arrays(9, 1)
    Xte, yte = mnist_arrays(4, 2)
    write_idx(tmp_path / "mnist", "train", Xtr, ytr, gz)
    write_idx(tmp_path / "mnist", "t10k", Xte, yte, gz)
    data = du.load_flat_dataset("mnist", root=tmp_path, num_validation=3, seed=4)
    check_flat(data, expected_flat(Xtr, ytr, Xte, yte, 3, 4))
    assert data["name"] == "mnist" and data["X_train"].shape == (6, 784)
    assert data["X_train"].min() >= 0.0 and data["X_train"].max() <= 1.0


def test_pjreddie_csv_files_give_the_same_view(tmp_path):
    Xtr, ytr = mnist_arrays(8, 3)
    Xte, yte = mnist_arrays(3, 4)
    folder = tmp_path / "mnist"
    folder.mkdir()
    write_csv(folder / "mnist_train.csv", Xtr, ytr, header=False)  # pjreddie's copies have no header
    write_csv(folder / "mnist_test.csv", Xte, yte, header=False)
    data = du.load_flat_dataset("mnist", root=tmp_path, num_validation=2, seed=0)
    check_flat(data, expected_flat(Xtr, ytr, Xte, yte, 2, 0))


def test_subsets_take_the_first_shuffled_training_and_first_test_images(tmp_path):
    Xtr, ytr = mnist_arrays(10, 5)
    Xte, yte = mnist_arrays(5, 6)
    write_idx(tmp_path / "mnist", "train", Xtr, ytr, True)
    write_idx(tmp_path / "mnist", "t10k", Xte, yte, True)
    data = du.load_flat_dataset("mnist", root=tmp_path, num_training=4, num_validation=2, num_test=3, seed=1)
    full = expected_flat(Xtr, ytr, Xte, yte, 2, 1)
    np.testing.assert_allclose(data["X_train"], full["X_train"][:4])
    np.testing.assert_array_equal(data["y_test"], yte[:3])
    with pytest.raises(ValueError, match="num_training must be an integer from 0 to 8"):
        du.load_flat_dataset("mnist", root=tmp_path, num_training=9, num_validation=2)
    with pytest.raises(ValueError, match="num_validation must be an integer from 0 to 10"):
        du.load_flat_dataset("mnist", root=tmp_path)  # the default 10000 of the real MNIST


def test_missing_mnist_says_how_to_fetch_it(tmp_path):
    with pytest.raises(du.DatasetNotFoundError, match="fetch.py mnist"):
        du.load_flat_dataset("mnist", root=tmp_path)


# ---------------------------------------------------------------- the embedded digits
def test_embedded_digits_are_enlarged_to_28x28_with_a_seeded_split_and_a_fixed_test_set():
    images, labels = du.load_embedded()
    tr, va, te = du.embedded_split(labels)
    pool = np.sort(np.concatenate([tr, va]))
    data = du.load_flat_dataset("embedded", seed=3)
    assert (len(data["y_train"]), len(data["y_val"]), len(data["y_test"])) == (1266, 178, 353)
    big_pool = du.upsample_bilinear(images[pool], 28)
    big_test = du.upsample_bilinear(images[te], 28)
    check_flat(data, expected_flat(big_pool, labels[pool], big_test, labels[te], 178, 3))
    other = du.load_flat_dataset("embedded", seed=4)
    np.testing.assert_array_equal(other["X_test"], data["X_test"])
    assert not np.array_equal(other["y_val"], data["y_val"])


def test_the_dataset_comes_from_the_environment_and_cifar_is_refused(monkeypatch):
    monkeypatch.setenv("NNKIT_DATASET", "embedded")
    assert du.load_flat_dataset()["name"] == "embedded"
    monkeypatch.setenv("NNKIT_DATASET", "cifar10")
    with pytest.raises(ValueError, match="'mnist' or 'embedded', not 'cifar10'"):
        du.load_flat_dataset()
