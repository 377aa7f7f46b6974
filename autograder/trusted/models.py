"""Accuracy of a submission's saved models, computed by the grader.

A saved model (``nnkit.solver.save_model``) is an ``.npz`` of plain arrays plus
``__nnkit__``, a JSON string ``{"format": 1, "class": ..., "config": {...}}``.
Here it is read with ``allow_pickle=False``, its class and configuration are
checked against what the assignment expects, the reference model is rebuilt
from the configuration, the student's weights are put in, and the accuracy
is computed with the REFERENCE forward pass on the grader's own data split.
No code from the submission runs.
"""
from __future__ import annotations

import io
import json
import math
import os
import stat
import zipfile
from functools import lru_cache
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from .reference import reference_module

#: Config keys each class accepts (anything else is refused before the reference sees it).
#: ``activation`` is TwoLayerNet's hidden nonlinearity (its get_config writes it when not "relu").
_CONFIG_KEYS = {
    "TwoLayerNet": {"input_dim", "hidden_dim", "num_classes", "weight_scale", "reg", "activation"},
    "FullyConnectedNet": {"hidden_dims", "input_dim", "num_classes", "dropout_keep_ratio", "reg",
                          "weight_scale", "dtype", "seed", "normalization"},
    "SoftmaxRegression": {"input_dim", "num_classes", "weight_scale", "reg"},
    "ConvNet": {"input_dim", "num_filters", "filter_size", "hidden_dims", "num_classes", "pad", "weight_scale",
                "reg", "dtype", "seed"},
}
#: The reference module of each class a saved model may hold.
_CLASS_MODULES = {"TwoLayerNet": "classifiers.fc_net", "FullyConnectedNet": "classifiers.fc_net",
                  "SoftmaxRegression": "classifiers.linear", "ConvNet": "classifiers.cnn"}
#: TwoLayerNet's accepted activations (nnkit.classifiers.fc_net.ACTIVATIONS).
_ACTIVATIONS = ("relu", "sigmoid")

# Budgets, all checked BEFORE the bytes they guard are read or the memory they imply is allocated.
# The assignments' reference models are TwoLayerNet(3072, 200, 10) (616,610 parameters),
# TwoLayerNet(154, 500, 10) (82,510) and FullyConnectedNet([256, 128], 3072) (820,874) in fcnets;
# SoftmaxRegression(784, 10) (7,850) and sigmoid TwoLayerNet(784, 128, 10) (101,770) in mnist_mlp.
#: Parameters a saved model may have: about 5 times the largest reference model (32 MB in float64).
MAX_PARAMS = 4_000_000
#: Units of one hidden layer (8 times the reference's widest, 500).
MAX_UNITS = 4096
#: Hidden layers of a FullyConnectedNet (the reference has 2; CS231n's deepest experiments about 9).
MAX_LAYERS = 16
#: Zip members: one per parameter plus __nnkit__.
MAX_MEMBERS = 2 * (MAX_LAYERS + 1) + 1
#: Bytes of the zip's central directory (a member's entry is about 100 bytes).
MAX_DIRECTORY_BYTES = 64 << 10
#: Bytes of one .npy header (numpy writes about 128).
MAX_NPY_HEADER_BYTES = 4096
#: Characters of the __nnkit__ JSON (save_model writes about 250).
MAX_META_CHARS = 16 << 10
#: Uncompressed bytes of all members together, from the zip directory.
MAX_UNCOMPRESSED_BYTES = MAX_PARAMS * 8 + MAX_MEMBERS * MAX_NPY_HEADER_BYTES + 4 * MAX_META_CHARS
#: Bytes of the file on disk (a stored, uncompressed model is at most MAX_UNCOMPRESSED_BYTES plus the zip's own).
MAX_MODEL_BYTES = MAX_UNCOMPRESSED_BYTES + (1 << 20)
META_KEY = "__nnkit__"


class ModelFileError(ValueError):
    """The saved model is malformed, over a budget, or not what the assignment asks for."""


@lru_cache(maxsize=4)
def _data(dataset, kind):
    """The grader's split of ``dataset`` as ``kind`` says (see ``spec.ModelCheck.inputs``)."""
    if kind == "features":
        return reference_module("features").load_feature_dataset(dataset)
    if kind == "flat":
        # 784-d rows in [0, 1]; the validation split is the reference's split_train_val with the
        # default seed, the split the notebooks train on; the test set is fixed.
        return reference_module("data_utils").load_flat_dataset(dataset)
    if kind == "images":
        return reference_module("data_utils").load_dataset(dataset)
    if kind == "gray":
        # One-channel digits (N, 1, 32, 32): the reference's analysis.load_digits, what the notebooks train on.
        return reference_module("analysis").load_digits(dataset)
    raise ValueError(f"unknown model inputs kind {kind!r} (images, flat or features)")


def _positive_int(value, what, limit=MAX_UNITS):
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        raise ModelFileError(f"config {what} must be an integer in [1, {limit}], got {str(value)[:40]}")
    return value


# ---------------------------------------------------------------------------
# Reading the .npz with budgets
# ---------------------------------------------------------------------------
def _open_zip(path):
    """(file, ZipFile, members by name) of a saved model whose zip directory is within budget.

    The file is opened without following links and must be a regular file; the number of
    members and the size of the central directory are read from its end record BEFORE
    zipfile parses the directory; every member's uncompressed size (from the directory,
    which also bounds what decompression may produce) is checked before anything is read.
    """
    name = path.name
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        raise ModelFileError(f"{name} is missing: the notebook saves it with nnkit.solver.save_model") from None
    f = os.fdopen(fd, "rb")
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ModelFileError(f"{name} is not a regular file")
        if st.st_size > MAX_MODEL_BYTES:
            raise ModelFileError(f"{name} is {st.st_size} bytes, more than the {MAX_MODEL_BYTES} allowed")
        end = zipfile._EndRecData(f)  # what ZipFile itself reads first; private but stable since Python 2
        if end is None:
            raise ModelFileError(f"{name} is not a readable .npz of plain arrays (not a zip archive)")
        if end[zipfile._ECD_ENTRIES_TOTAL] > MAX_MEMBERS or end[zipfile._ECD_SIZE] > MAX_DIRECTORY_BYTES:
            raise ModelFileError(f"{name} lists {end[zipfile._ECD_ENTRIES_TOTAL]} arrays in a "
                                 f"{end[zipfile._ECD_SIZE]}-byte directory; at most {MAX_MEMBERS} are allowed")
        z = zipfile.ZipFile(f)
    except ModelFileError:
        f.close()
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        f.close()
        raise ModelFileError(f"{name} is not a readable .npz of plain arrays ({exc})") from None
    try:
        return f, z, _members(z, name)
    except BaseException:
        z.close()
        f.close()
        raise


def _members(z, name):
    """Member name (without .npy) -> ZipInfo, every size and method checked."""
    infos = z.infolist()
    if len(infos) > MAX_MEMBERS:
        raise ModelFileError(f"{name} holds {len(infos)} entries; at most {MAX_MEMBERS} are allowed")
    members, total = {}, 0
    for info in infos:
        key = info.filename[:-4] if info.filename.endswith(".npy") else None
        if not key or key in members:
            raise ModelFileError(f"{name}: the entry {info.filename[:60]!r} is not one .npy array")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or info.flag_bits & 0x1:
            raise ModelFileError(f"{name}: {key!r} is encrypted or compressed with an unusual method")
        total += info.file_size
        if total > MAX_UNCOMPRESSED_BYTES:
            raise ModelFileError(f"{name} unpacks to more than {MAX_UNCOMPRESSED_BYTES} bytes "
                                 f"(a model of at most {MAX_PARAMS} parameters needs less)")
        members[key] = info
    return members


def _npy_header(f, what):
    """(shape, fortran_order, dtype, header bytes) of the .npy stream ``f``, reading at most
    ``MAX_NPY_HEADER_BYTES`` of it (numpy's own reader would first read whatever length the
    header claims, up to 4 GB in format 2.0)."""
    magic = f.read(npy_format.MAGIC_LEN)
    if len(magic) != npy_format.MAGIC_LEN or magic[:6] != npy_format.MAGIC_PREFIX or magic[6:] not in (b"\x01\x00",
                                                                                                  b"\x02\x00"):
        raise ModelFileError(f"{what} is not a .npy array of format 1.0 or 2.0")
    length_size = 2 if magic[6] == 1 else 4
    length_bytes = f.read(length_size)
    length = int.from_bytes(length_bytes, "little")
    if len(length_bytes) != length_size or length > MAX_NPY_HEADER_BYTES:
        raise ModelFileError(f"{what} has a .npy header of {length} bytes (at most {MAX_NPY_HEADER_BYTES})")
    header = f.read(length)
    read = (npy_format.read_array_header_1_0 if length_size == 2 else npy_format.read_array_header_2_0)
    try:
        shape, fortran, dtype = read(io.BytesIO(length_bytes + header), max_header_size=MAX_NPY_HEADER_BYTES)
    except Exception as exc:  # numpy's parser on hostile text: ValueError, SyntaxError, RecursionError...
        raise ModelFileError(f"{what} has no readable .npy header ({type(exc).__name__})") from None
    return shape, fortran, dtype, npy_format.MAGIC_LEN + length_size + length


def _member_header(z, info):
    """(shape, fortran_order, dtype) of one .npy member, from its header only.

    The member must be a plain numeric (or, for __nnkit__, string) array whose data is exactly
    as long as the header says: nothing but the header has been decompressed yet.
    """
    what = f"{info.filename[:-4]!r}"
    try:
        with z.open(info) as f:
            shape, fortran, dtype, offset = _npy_header(f, what)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        if isinstance(exc, ModelFileError):
            raise
        raise ModelFileError(f"{what} cannot be read ({str(exc)[:200]})") from None
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in "biufU":
        raise ModelFileError(f"{what} is not one of the plain arrays a model holds (dtype {dtype})")
    if offset + math.prod(shape) * dtype.itemsize != info.file_size:
        raise ModelFileError(f"{what}: {info.file_size - offset} bytes of data for a {dtype}{shape} array")
    return shape, fortran, dtype


def _read_member(z, info, header):
    """The data of one member whose ``header`` (from ``_member_header``) was checked: a C-ordered copy."""
    shape, fortran, dtype = header
    nbytes = math.prod(shape) * dtype.itemsize
    what = f"{info.filename[:-4]!r}"
    try:
        with z.open(info) as f:
            _npy_header(f, what)
            data = f.read(nbytes)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        if isinstance(exc, ModelFileError):
            raise
        raise ModelFileError(f"{what} cannot be read ({str(exc)[:200]})") from None
    if len(data) != nbytes:
        raise ModelFileError(f"{what} is truncated")
    flat = np.frombuffer(data, dtype=dtype, count=math.prod(shape))
    return np.array(flat.reshape(shape, order="F" if fortran else "C"), order="C")


def _read_meta(z, members, headers, name):
    """The __nnkit__ JSON of a saved model, its size checked from the header first."""
    if META_KEY not in members:
        raise ModelFileError(f"{name} has no __nnkit__ entry: save it with nnkit.solver.save_model")
    shape, _, dtype = headers[META_KEY]
    if shape != () or dtype.kind != "U" or dtype.itemsize > 4 * MAX_META_CHARS:
        raise ModelFileError(f"{name}: __nnkit__ must be one string of at most {MAX_META_CHARS} characters")
    text = str(_read_member(z, members[META_KEY], headers[META_KEY]))
    try:
        meta = json.loads(text)
    except (ValueError, RecursionError):
        raise ModelFileError(f"{name}: __nnkit__ is not JSON") from None
    if not isinstance(meta, dict) or meta.get("format") != 1:
        found = meta.get("format") if isinstance(meta, dict) else meta
        raise ModelFileError(f"{name}: unknown format {str(found)[:40]}")
    return meta


# ---------------------------------------------------------------------------
# Checking the configuration
# ---------------------------------------------------------------------------
def _hidden_widths(cls, config, name):
    """The hidden layer widths a config asks for, each capped (none for SoftmaxRegression)."""
    if cls == "SoftmaxRegression":
        return []
    if cls == "TwoLayerNet":
        return [_positive_int(config.get("hidden_dim", 100), "hidden_dim")]
    hidden = config.get("hidden_dims")
    if not isinstance(hidden, list) or not 1 <= len(hidden) <= MAX_LAYERS:
        raise ModelFileError(f"{name}: hidden_dims must be a list of 1 to {MAX_LAYERS} sizes")
    return [_positive_int(h, "hidden_dims entry") for h in hidden]


def parameter_count(input_dim, widths, num_classes):
    """Weights and biases of affine layers ``input_dim -> widths... -> num_classes``."""
    sizes = [input_dim, *widths, num_classes]
    return sum(a * b + b for a, b in zip(sizes, sizes[1:]))


def _checked_config(name, cls, config, allowed, input_dim, num_classes):
    """The config as the reference may receive it, or ModelFileError (no allocation happens here)."""
    if cls not in allowed:
        raise ModelFileError(f"{name} holds a {str(cls)[:40]!r}; this check expects {' or '.join(allowed)}")
    if cls == "ConvNet":
        return _checked_conv_config(name, config, input_dim, num_classes)
    if not isinstance(config, dict) or not set(config) <= _CONFIG_KEYS[cls]:
        extra = sorted(set(config) - _CONFIG_KEYS[cls]) if isinstance(config, dict) else config
        raise ModelFileError(f"{name}: unexpected config entries {str(extra)[:200]}")
    config = dict(config)
    if config.get("input_dim") != input_dim or config.get("num_classes") != num_classes:
        raise ModelFileError(f"{name}: the model takes input_dim={str(config.get('input_dim'))[:20]} and has "
                             f"num_classes={str(config.get('num_classes'))[:20]}; the data here needs "
                             f"{input_dim} and {num_classes}")
    widths = _hidden_widths(cls, config, name)
    count = parameter_count(input_dim, widths, num_classes)
    if count > MAX_PARAMS:
        raise ModelFileError(f"{name}: hidden sizes {widths} make {count} parameters; at most {MAX_PARAMS} "
                             "are accepted (the reference models have under 1 million)")
    if cls == "FullyConnectedNet":
        if config.get("dtype", "float32") not in ("float32", "float64"):
            raise ModelFileError(f"{name}: dtype must be float32 or float64")
        if config.get("normalization") is not None:
            raise ModelFileError(f"{name}: normalization is not supported")
        seed = config.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32):
            raise ModelFileError(f"{name}: config seed must be None or an integer in [0, 2**32)")
    if cls == "TwoLayerNet" and config.get("activation", "relu") not in _ACTIVATIONS:
        raise ModelFileError(f"{name}: config activation must be one of {', '.join(_ACTIVATIONS)}, got "
                             f"{str(config.get('activation'))[:40]!r}")
    for key in ("weight_scale", "reg", "dropout_keep_ratio"):
        if key in config and (isinstance(config[key], bool) or not isinstance(config[key], (int, float))):
            raise ModelFileError(f"{name}: config {key} must be a number")
    return config


#: A ConvNet's budgets (besides MAX_PARAMS), per image: the multiply-adds of its forward pass, the
#: entries of one layer's activations and of one convolution's im2col matrix (what evaluating a
#: batch of 500 images allocates), its blocks and its filter size. The reference LeNet-5 on 1 x 32 x 32
#: digits takes 0.42 M multiply-adds, 4,704 activations and 19,600 im2col entries at most.
MAX_CONV_MACS = 20_000_000
MAX_CONV_ACTIVATIONS = 65_536
MAX_CONV_BLOCKS = 4
MAX_FILTER_SIZE = 11


def _checked_conv_config(name, config, input_dim, num_classes):
    """A ConvNet config within budgets (computed from the config alone, before anything is built)."""
    if not isinstance(config, dict) or not set(config) <= _CONFIG_KEYS["ConvNet"]:
        extra = sorted(set(config) - _CONFIG_KEYS["ConvNet"]) if isinstance(config, dict) else config
        raise ModelFileError(f"{name}: unexpected config entries {str(extra)[:200]}")
    config = dict(config)
    shape = config.get("input_dim")
    if not isinstance(shape, list) or len(shape) != 3:
        raise ModelFileError(f"{name}: config input_dim must be [C, H, W]")
    C, H, W = (_positive_int(v, "input_dim entry", 1 << 12) for v in shape)
    if C * H * W != input_dim or config.get("num_classes") != num_classes:
        raise ModelFileError(f"{name}: the model takes images {shape} and has num_classes="
                             f"{str(config.get('num_classes'))[:20]}; the data here needs {input_dim} numbers per "
                             f"image and {num_classes} classes")
    filters, hidden = config.get("num_filters", [6, 16]), config.get("hidden_dims", [120, 84])
    if not isinstance(filters, list) or not 1 <= len(filters) <= MAX_CONV_BLOCKS:
        raise ModelFileError(f"{name}: num_filters must be a list of 1 to {MAX_CONV_BLOCKS} sizes")
    if not isinstance(hidden, list) or len(hidden) > MAX_LAYERS:
        raise ModelFileError(f"{name}: hidden_dims must be a list of at most {MAX_LAYERS} sizes")
    filters = [_positive_int(f, "num_filters entry") for f in filters]
    hidden = [_positive_int(h, "hidden_dims entry") for h in hidden]
    k = _positive_int(config.get("filter_size", 5), "filter_size", MAX_FILTER_SIZE)
    pad = config.get("pad", 0)
    if isinstance(pad, bool) or not isinstance(pad, int) or not 0 <= pad < k:
        raise ModelFileError(f"{name}: config pad must be an integer in [0, filter_size)")
    count, macs, activations = 0, 0, C * H * W
    for F in filters:  # conv k x k stride 1 - relu - 2 x 2 max pool stride 2 (cnn.ConvNet's blocks)
        H, W = H + 2 * pad - k + 1, W + 2 * pad - k + 1
        if H < 2 or W < 2:
            raise ModelFileError(f"{name}: the images become too small for the filters and pools of this config")
        count += F * C * k * k + F
        macs += F * C * k * k * H * W
        activations = max(activations, F * H * W, C * k * k * H * W)  # the layer's output, its im2col matrix
        C, H, W = F, 1 + (H - 2) // 2, 1 + (W - 2) // 2
    count += parameter_count(C * H * W, hidden, num_classes)
    macs += parameter_count(C * H * W, hidden, num_classes)
    if count > MAX_PARAMS or macs > MAX_CONV_MACS or activations > MAX_CONV_ACTIVATIONS:
        raise ModelFileError(f"{name}: this ConvNet has {count} parameters, {macs} multiply-adds and up to "
                             f"{activations} activations per image; at most {MAX_PARAMS}, {MAX_CONV_MACS} and "
                             f"{MAX_CONV_ACTIVATIONS} are accepted (the reference LeNet-5: 61,706, 0.42 M, 19,600)")
    if config.get("dtype", "float64") not in ("float32", "float64"):
        raise ModelFileError(f"{name}: dtype must be float32 or float64")
    seed = config.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32):
        raise ModelFileError(f"{name}: config seed must be None or an integer in [0, 2**32)")
    for key in ("weight_scale", "reg"):
        value = config.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ModelFileError(f"{name}: config {key} must be a number")
    return config


def load_saved_model(path, allowed, input_dim, num_classes):
    """Rebuild a reference model from a saved file after checking everything in it, within budgets.

    Order: the file (regular, size), the zip directory (members, uncompressed sizes), every
    member's .npy header (plain dtype, data length), the __nnkit__ JSON, the config (keys,
    widths, parameter count), the reference model built from it, every header against that
    model's parameter (shape, dtype), and only then the arrays' data.

    Returns
    -------
    model : reference TwoLayerNet, FullyConnectedNet, SoftmaxRegression or ConvNet with the saved params
    """
    path = Path(path)
    name = path.name
    f, z, members = _open_zip(path)
    with f, z:
        headers = {key: _member_header(z, info) for key, info in members.items()}
        meta = _read_meta(z, members, headers, name)
        cls = meta.get("class")
        config = _checked_config(name, cls, meta.get("config"), allowed, input_dim, num_classes)
        module = reference_module(_CLASS_MODULES[cls])
        state = np.random.get_state()
        try:
            model = getattr(module, cls)(**config)
        except Exception as exc:
            raise ModelFileError(f"{name}: the reference {cls} refused this config ({str(exc)[:200]})") from None
        finally:
            np.random.set_state(state)
        arrays = set(members) - {META_KEY}
        if arrays != set(model.params):
            raise ModelFileError(f"{name} holds {sorted(arrays)[:40]}; a {cls} with this config has "
                                 f"{sorted(model.params)}")
        for key in sorted(arrays):
            want, (shape, _, dtype) = model.params[key], headers[key]
            if shape != want.shape or dtype != want.dtype:
                raise ModelFileError(f"{name}: {key} is {dtype}{shape}, expected {want.dtype}{want.shape}")
        for key in sorted(arrays):
            value = _read_member(z, members[key], headers[key])
            if not np.all(np.isfinite(value)):
                raise ModelFileError(f"{name}: {key} holds nan or inf")
            model.params[key] = value
    return model


def accuracy(model, X, y, batch_size=500):
    """Fraction of correct argmax predictions of the (reference) model."""
    correct = 0
    for start in range(0, len(X), batch_size):
        scores = model.loss(X[start:start + batch_size])
        correct += int(np.count_nonzero(np.argmax(scores, axis=1) == y[start:start + batch_size]))
    return correct / len(X)


def check_models(submission_dir, assignment, dataset, points=None, manifest=None):
    """Evaluate every saved model of the submission on the grader's split of ``dataset``.

    Parameters
    ----------
    submission_dir : path
        The folder holding ``models/``.
    assignment : str
    dataset : str
        ``"embedded"``, ``"cifar10"``, ... (the grading run's dataset, never the student's choice).
    points : dict or None
        grade_id -> points (default: the manifest's, else 1 each).
    manifest : autograder.manifest.Manifest or None
        Default: ``load_manifest(assignment)``; its thresholds and saved models are used,
        graded as the assignment's spec (``MODELS`` of its trusted_checks.py) says.

    Returns
    -------
    dict
        ``score``, ``max_score``, ``checks`` (one per saved model) and ``grade_ids``, as ``check_package``.
    """
    from ..manifest import load_manifest
    from .spec import load_spec

    if manifest is None:
        manifest = load_manifest(assignment)
    spec = load_spec(assignment)
    specs = spec.models if spec is not None else {}
    if points is None:
        points = {m.grade_id: float(manifest.points.get(m.grade_id, 1.0)) for m in specs.values()}
    rows, by_grade = [], {}
    for rel, model_check in specs.items():
        if rel not in manifest.saved_models:
            continue
        grade_id, allowed, kind, thresholds = (model_check.grade_id, model_check.classes, model_check.inputs,
                                               model_check.thresholds)
        max_points = float(points.get(grade_id, 1.0))
        status, message, accs = "failed", "", {}
        try:
            data = _data(dataset, kind)
            input_dim = int(np.prod(data["X_train"].shape[1:]))
            num_classes = int(max(data["y_train"].max(), data["y_val"].max(), data["y_test"].max()) + 1)
            model = load_saved_model(Path(submission_dir) / rel, allowed, input_dim, num_classes)
            short = []
            for key, split in thresholds:
                acc = accuracy(model, data[f"X_{split}"], data[f"y_{split}"])
                accs[split] = acc
                need = manifest.threshold(dataset, key)
                if acc < need:
                    short.append(f"{split} accuracy {acc:.4f} is below the threshold {need:.4f} ({key})")
            if short:
                message = "; ".join(short)
            else:
                status = "passed"
                message = ", ".join(f"{s} accuracy {a:.4f}" for s, a in accs.items())
        except ModelFileError as exc:
            message = str(exc)
        except Exception as exc:  # data missing etc.: the grader's problem, reported as an error
            status, message = "error", f"{type(exc).__name__}: {exc}"
        got = max_points if status == "passed" else 0.0
        rows.append({"id": f"model.{Path(rel).stem}", "grade_id": grade_id, "status": status, "points": got,
                     "max_points": max_points, "message": message, "accuracy": accs})
        by_grade[grade_id] = {"points": got, "max_points": max_points, "status": status}
    return {"score": sum(r["points"] for r in rows), "max_score": sum(r["max_points"] for r in rows),
            "checks": rows, "grade_ids": by_grade}
