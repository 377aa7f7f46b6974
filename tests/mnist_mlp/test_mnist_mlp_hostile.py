"""Attacks on mnist_mlp's trusted checks that its new procedures and models must contain.

A generator that never ends or yields a batch of a billion numbers, a loop that keeps
calling the model it is given (or swallows the errors that stop it), numpy patched in the
module, and saved models built to exhaust the grader: each test runs one the way a
student's code would and asserts the outcome (statuses, messages, no points for it, the
rest of the package still graded, the grader's memory under a stated figure).
"""
import json
import struct
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

from autograder import REPO_ROOT
from autograder.trusted import check_models, check_package
from autograder.trusted.models import MAX_MODEL_BYTES

ASSIGNMENT = "mnist_mlp"
SEED = 880011
#: Peak RSS (MiB) of a process that runs check_models on every hostile model here. Measured on this
#: machine (2026-12): 148 MiB, against 75 MiB for check_models on the three reference models alone; the
#: difference is about what the largest accepted net (3.25 M float64 parameters, 26 MB) costs to read and run.
PEAK_RSS_MIB = 300

GENERATOR = ("    order = rng.permutation(len(X)) if shuffle else np.arange(len(X))\n"
             "    for start in range(0, len(X), batch_size):\n"
             "        batch = order[start:start + batch_size]\n"
             "        yield X[batch], y[batch]\n")


def edit(pkg, module, old, new):
    path = pkg / module
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} not found once in {module}"
    path.write_text(text.replace(old, new))


def rows(report, prefix):
    return {c["id"]: c for c in report["checks"] if c["id"].startswith(prefix)}


def full_marks_elsewhere(report, *spoiled):
    """Every grade id but the spoiled ones kept its points: the attack cost only its own calls."""
    return {g for g, row in report["grade_ids"].items() if row["points"] < row["max_points"]} <= set(spoiled)


def test_a_generator_that_never_ends_is_stopped_by_the_batch_budget(kit, tmp_path, use_sandbox):
    pkg = kit.copy_reference(tmp_path)
    edit(pkg, "training.py", GENERATOR, "    while True:\n        yield X[:batch_size], y[:batch_size]\n")
    started = time.perf_counter()
    r = check_package(pkg, ASSIGNMENT, seed=SEED, sandbox=use_sandbox)
    seconds = time.perf_counter() - started
    batched = rows(r, "batched.")
    assert batched and all(c["status"] == "failed" for c in batched.values())
    assert all("batches for N =" in c["message"] and "stopped there" in c["message"] for c in batched.values())
    # train_epoch steps through that generator: the trusted model stops the epoch.
    epoch = rows(r, "train_epoch.")
    assert all(c["status"] == "failed" and "more than" in c["message"] for c in epoch.values()), epoch
    assert full_marks_elsewhere(r, "test_batched_data", "test_train_epoch")
    assert seconds < 20, seconds  # stopped by the budget, not by a timeout


def test_a_batch_of_a_billion_numbers_is_refused_before_it_is_copied(kit, tmp_path, use_sandbox):
    pkg = kit.copy_reference(tmp_path)
    # Broadcast views: a billion rows that cost no memory until someone copies them.
    edit(pkg, "training.py", GENERATOR,
         "    yield np.broadcast_to(X[:1], (10**9,) + X.shape[1:]), np.broadcast_to(y[:1], (10**9,))\n")
    r = check_package(pkg, ASSIGNMENT, seed=SEED, sandbox=use_sandbox)
    batched = rows(r, "batched.")
    assert all(c["status"] == "failed" and "numbers in all" in c["message"] for c in batched.values()), batched
    assert full_marks_elsewhere(r, "test_batched_data", "test_train_epoch")


def test_an_allocation_past_the_runner_memory_costs_only_its_call(kit, tmp_path, use_sandbox):
    pkg = kit.copy_reference(tmp_path)
    edit(pkg, "training.py", "    total_loss, correct = 0.0, 0\n",
         "    hog = np.ones((10**10,))\n    total_loss, correct = 0.0, 0\n")
    r = check_package(pkg, ASSIGNMENT, seed=SEED, sandbox=use_sandbox)
    ev = rows(r, "evaluate.")
    assert all(c["status"] in ("failed", "error") and c["points"] == 0 for c in ev.values())
    assert any("MemoryError" in c["message"] or "memory" in c["message"] for c in ev.values())
    assert full_marks_elsewhere(r, "test_evaluate")


def test_a_loop_that_keeps_calling_the_model_is_stopped_by_its_budget(kit, tmp_path, use_sandbox):
    pkg = kit.copy_reference(tmp_path)
    edit(pkg, "training.py", "    total_loss, correct = 0.0, 0\n",
         "    while True:\n        model.loss(X[:batch_size])\n    total_loss, correct = 0.0, 0\n")
    # train_step's loop keeps stepping and swallows what goes wrong: `except Exception` cannot
    # swallow the trusted model's budget.
    edit(pkg, "training.py",
         "    loss, grads = model.loss(X_batch, y_batch)\n    for name in model.params:",
         "    while True:\n        try:\n            loss, grads = model.loss(X_batch, y_batch)\n"
         "        except Exception:\n            pass\n    for name in model.params:")
    started = time.perf_counter()
    r = check_package(pkg, ASSIGNMENT, seed=SEED, sandbox=use_sandbox)
    assert time.perf_counter() - started < 20
    for prefix in ("evaluate.", "train_step.", "train_epoch."):
        got = rows(r, prefix)
        assert got and all(c["status"] == "failed" and "more than" in c["message"] for c in got.values()), got
    assert full_marks_elsewhere(r, "test_evaluate", "test_train_step", "test_train_epoch")


def test_a_bare_except_around_the_budget_still_scores_nothing(kit, tmp_path, use_sandbox):
    """Swallowing the budget's BaseException only delays it: the model stays over its budget, so the
    real work that follows fails (an endless loop of that kind is cut by the runner's wall time)."""
    pkg = kit.copy_reference(tmp_path)
    edit(pkg, "training.py", "    total_loss, correct = 0.0, 0\n",
         "    for _ in range(10**4):\n        try:\n            model.loss(X[:batch_size])\n"
         "        except BaseException:\n            pass\n    total_loss, correct = 0.0, 0\n")
    r = check_package(pkg, ASSIGNMENT, seed=SEED, sandbox=use_sandbox, call_timeout=5.0)
    ev = rows(r, "evaluate.")
    assert ev and all(c["points"] == 0 and "more than" in c["message"] for c in ev.values()), ev
    assert full_marks_elsewhere(r, "test_evaluate")


def test_batches_that_are_not_plain_array_pairs_fail_with_a_message(kit, tmp_path, use_sandbox):
    pkg = kit.copy_reference(tmp_path)
    edit(pkg, "training.py", "        yield X[batch], y[batch]\n",
         "        class Sneaky(np.ndarray):\n            pass\n        yield X[batch].view(Sneaky), y[batch]\n")
    r = check_package(pkg, ASSIGNMENT, seed=SEED, sandbox=use_sandbox)
    batched = rows(r, "batched.")
    assert all(c["status"] == "failed" and "must be numpy arrays" in c["message"] for c in batched.values())


def test_monkeypatching_numpy_in_the_module_does_not_fool_the_checks(kit, tmp_path, use_sandbox):
    pkg = kit.copy_reference(tmp_path)
    edit(pkg, "data_utils.py", "X = images.reshape(len(images), -1) / 255.0", "X = images.reshape(len(images), -1) / 256.0")
    edit(pkg, "data_utils.py", "import numpy as np\n",
         "import numpy as np\nnp.allclose = lambda *a, **k: True\nnp.array_equal = lambda *a, **k: True\n"
         "np.testing.assert_allclose = lambda *a, **k: None\n")
    r = check_package(pkg, ASSIGNMENT, seed=SEED, sandbox=use_sandbox)
    flatten = rows(r, "flatten_and_scale.")
    assert flatten and all(c["status"] == "failed" for c in flatten.values())
    assert "times the expected values" in flatten["flatten_and_scale.values"]["message"]


# ---------------------------------------------------------------------------
# Saved models built to exhaust the grader
# ---------------------------------------------------------------------------
def npy_header(shape, descr="<f8"):
    text = repr({"descr": descr, "fortran_order": False, "shape": tuple(shape)}).encode()
    text += b" " * (63 - len(text) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text


def meta_npy(cls, config):
    out = np.array(json.dumps({"format": 1, "class": cls, "config": config}))
    return npy_header((), out.dtype.str) + out.tobytes()


def write_zip(path, members):
    """members: name -> bytes, or name -> (header bytes, zero bytes streamed after it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            if isinstance(data, tuple):
                header, zeros = data
                with z.open(name, "w", force_zip64=True) as f:
                    f.write(header)
                    chunk = bytes(1 << 20)
                    for _ in range(zeros >> 20):
                        f.write(chunk)
            else:
                z.writestr(name, data)


SOFTMAX = {"input_dim": 784, "num_classes": 10, "weight_scale": 0.001, "reg": 0.0}
SIGMOID = {"input_dim": 784, "hidden_dim": 64, "num_classes": 10, "weight_scale": 0.05, "reg": 0.0,
           "activation": "sigmoid"}


def hostile_models(root):
    """Submission folders with one hostile model each: {case: (folder, grade id, words)}."""
    cases = {}

    def case(name, file, grade_id, words, members=None):
        folder = root / name
        path = folder / "models" / file
        if members is None:  # a sparse file just over the size budget
            path.parent.mkdir(parents=True)
            with open(path, "wb") as f:
                f.truncate(MAX_MODEL_BYTES + 1)
        else:
            write_zip(path, members)
        cases[name] = (folder, grade_id, words)

    softmax = {"W.npy": npy_header((784, 10)) + bytes(784 * 80), "b.npy": npy_header((10,)) + bytes(80),
               "__nnkit__.npy": meta_npy("SoftmaxRegression", SOFTMAX)}
    case("over_the_file_budget", "best_net.npz", "test_grid_accuracy", "bytes, more than")
    bomb = dict(softmax, **{"W.npy": (npy_header((784, 10)), 1 << 30)})  # 1 GiB of zeros, about 1 MB on disk
    case("compressed_zeros", "softmax.npz", "test_softmax_accuracy", "unpacks to more than", bomb)
    lying = dict(softmax, **{"W.npy": npy_header((10**6, 10**6)) + bytes(64)})
    case("header_claims_a_trillion", "softmax.npz", "test_softmax_accuracy", "bytes of data for a", lying)
    wide = {"__nnkit__.npy": meta_npy("TwoLayerNet", {**SIGMOID, "hidden_dim": 60000})}
    case("huge_hidden_dim", "two_layer_net.npz", "test_two_layer_accuracy", "hidden_dim must be an integer", wide)
    tall = {"__nnkit__.npy": meta_npy("SoftmaxRegression", {**SOFTMAX, "input_dim": 10**9})}
    case("huge_input_dim", "softmax.npz", "test_softmax_accuracy", "input_dim=1000000000", tall)
    odd = {"__nnkit__.npy": meta_npy("TwoLayerNet", {**SIGMOID, "activation": "x" * 10**5})}
    case("long_activation", "best_net.npz", "test_grid_accuracy", "at most", odd)
    many = {f"a{k}.npy": npy_header((0,)) for k in range(2000)}
    case("two_thousand_members", "best_net.npz", "test_grid_accuracy", "arrays in a", many)
    return cases


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    return hostile_models(tmp_path_factory.mktemp("hostile_models"))


def test_hostile_saved_models_are_refused_with_a_reason(hostile):
    for name, (folder, grade_id, words) in hostile.items():
        row = next(c for c in check_models(folder, ASSIGNMENT, "embedded")["checks"] if c["grade_id"] == grade_id)
        assert row["status"] == "failed" and words in row["message"], (name, row["message"])


def test_the_grader_stays_small_on_hostile_models(hostile, tmp_path):
    """Peak RSS of a fresh process that runs check_models on every hostile file above and on the
    largest sigmoid net the budgets accept (784 -> 4096 -> 10, 3.25 M parameters), measured by its
    parent with RUSAGE_CHILDREN."""
    folders = [str(folder) for folder, _, _ in hostile.values()]
    biggest = tmp_path / "biggest"
    H = 4096
    arrays = {"W1": (784, H), "b1": (H,), "W2": (H, 10), "b2": (10,)}
    members = {f"{k}.npy": npy_header(s) + bytes(8 * int(np.prod(s))) for k, s in arrays.items()}
    members["__nnkit__.npy"] = meta_npy("TwoLayerNet", {**SIGMOID, "hidden_dim": H})
    write_zip(biggest / "models" / "two_layer_net.npz", members)
    folders.append(str(biggest))
    script = ("from autograder.trusted import check_models\n"
              f"for folder in {folders!r}:\n"
              f"    r = check_models(folder, {ASSIGNMENT!r}, 'embedded')\n"
              "    print([c['message'][:60] for c in r['checks'] if c['grade_id'] == 'test_two_layer_accuracy'][0])\n")
    measure = ("import resource, subprocess, sys\n"
               f"subprocess.run([sys.executable, '-c', {script!r}], check=True)\n"
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)\n")
    proc = subprocess.run([sys.executable, "-c", measure], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert "accuracy" in lines[-2]  # the biggest accepted model was evaluated, not refused
    print(f"peak RSS of check_models over the hostile models: {lines[-1]} MiB")
    assert int(lines[-1]) < PEAK_RSS_MIB, proc.stdout


@pytest.mark.parametrize("target", ["/dev/zero", "fifo"])
def test_a_linked_or_special_model_file_is_never_opened(tmp_path, target):
    import os

    path = tmp_path / "models" / "softmax.npz"
    path.parent.mkdir()
    if target == "fifo":
        os.mkfifo(path)  # opening a FIFO for reading would block forever
    else:
        os.symlink(target, path)
    row = next(c for c in check_models(tmp_path, ASSIGNMENT, "embedded")["checks"]
               if c["grade_id"] == "test_softmax_accuracy")
    assert row["status"] == "failed" and row["points"] == 0
