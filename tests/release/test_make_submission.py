"""The submission helper shipped in every release (autograder/release/files/make_submission.py)."""
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from autograder.release.shared import RELEASE_FILES

from .helpers import EXPECTED


@pytest.fixture
def release(tmp_path):
    """A release-shaped folder: the mini release's manifest and modules, a notebook, debris."""
    r = tmp_path / "mini"
    shutil.copytree(EXPECTED, r)
    shutil.copy(RELEASE_FILES / "make_submission.py", r / "make_submission.py")
    (r / "nnkit/__init__.py").write_text("")
    (r / "nnkit/helpers.py").write_text("def as_array(x):\n    return x\n")
    (r / "01_ops.ipynb").write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}\n')
    (r / "datasets/embedded").mkdir(parents=True)
    (r / "datasets/embedded/tiny.txt").write_text("data")
    (r / "datasets/cifar-10-batches-py").mkdir()
    (r / "datasets/cifar-10-batches-py/data_batch_1").write_bytes(b"\0" * 100)
    (r / "nnkit/__pycache__").mkdir()
    (r / "nnkit/__pycache__/ops.cpython-311.pyc").write_bytes(b"\0")
    (r / ".ipynb_checkpoints").mkdir()
    (r / ".ipynb_checkpoints/01_ops-checkpoint.ipynb").write_text("{}")
    (r / "notes.txt").write_text("mine")
    return r


def run(folder: Path, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-I", str(folder / "make_submission.py"), *args],
                          capture_output=True, text=True, cwd=folder, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_zips_exactly_the_graded_files_and_reports_the_rest(release):
    # The student implemented square and saved the model; ops.py is still the stub.
    (release / "nnkit/sub/extra.py").write_text("def square(v):\n    return v * v\n")
    (release / "models").mkdir()
    (release / "models/w.npy").write_bytes(b"weights")
    out = run(release)
    with zipfile.ZipFile(release / "submission.zip") as zf:
        # manifest.toml: notebooks + student_modules + saved_models, nothing else.
        assert sorted(zf.namelist()) == ["01_ops.ipynb", "models/w.npy", "nnkit/ops.py", "nnkit/sub/extra.py"]
        assert zf.read("nnkit/sub/extra.py") == b"def square(v):\n    return v * v\n"
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    included = out.split("Wrote")[1].split("\n\n")[0]
    assert "nnkit/ops.py" in included and "datasets" not in included
    left = out.split("Left out (never submitted):")[1]
    for item in ("nnkit/helpers.py", "notes.txt", "make_submission.py", "datasets/", "nnkit/__pycache__/",
                 ".ipynb_checkpoints/"):
        assert item in left, item
    # The stub scan names what still raises NotImplementedError.
    assert "nnkit/ops.py: add, scale, Counter.bump" in out
    assert "--check" in out  # says how to run the public checks


def test_missing_graded_files_are_listed(release):
    out = run(release)
    assert "MISSING" in out and "models/w.npy" in out.split("MISSING")[1]
    with zipfile.ZipFile(release / "submission.zip") as zf:
        assert "models/w.npy" not in zf.namelist()


def test_same_files_give_the_same_zip(release):
    run(release, "--out", "a.zip")
    run(release, "--out", "b.zip")
    assert (release / "a.zip").read_bytes() == (release / "b.zip").read_bytes()


def test_manifest_reader_without_tomllib_matches_tomllib(release):
    import importlib.util
    spec = importlib.util.spec_from_file_location("make_submission", release / "make_submission.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with_toml = mod.read_manifest(release)
    real_import = __builtins__["__import__"] if isinstance(__builtins__, dict) else __builtins__.__import__

    def no_tomllib(name, *a, **k):
        if name == "tomllib":
            raise ImportError(name)
        return real_import(name, *a, **k)
    import builtins
    builtins.__import__ = no_tomllib
    try:
        fallback = mod.read_manifest(release)
    finally:
        builtins.__import__ = real_import
    for key in ("assignment", "title", "notebooks", "student_modules", "saved_models"):
        assert fallback[key] == with_toml[key], key


def test_check_runs_the_public_checks_once_and_reports_each(release):
    from .helpers import MINI
    shutil.copy(MINI / "source/mini/01_ops.ipynb", release / "01_ops.ipynb")
    shutil.copy(MINI / "source/nnkit/helpers.py", release / "nnkit/helpers.py")
    (release / "nnkit/sub/__init__.py").write_text("")
    (release / "nnkit/sub/extra.py").write_text("def square(v):\n    return v * v\n")
    proc = subprocess.run([sys.executable, str(release / "make_submission.py"), "--check"],
                          capture_output=True, text=True, cwd=release, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    # ops.add is still the stub; square is implemented; the notebook's own cell saved the model.
    assert "FAIL 01_ops.ipynb test_add: NotImplementedError" in out
    assert "ok   01_ops.ipynb test_square" in out and "ok   01_ops.ipynb test_model" in out
    assert "1 check(s) failed." in out
    # The checks ran in a scratch copy: nothing was written into the student's folder.
    assert not (release / "models").exists()


def _notebook(cells: list[dict]) -> str:
    import json
    return json.dumps({"cells": cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                    "language": "python"}},
                       "nbformat": 4, "nbformat_minor": 5}, indent=1)


def _cell(kind, source, grade_id=None, grade=False, solution=False, outputs=None):
    cell = {"cell_type": kind, "id": grade_id or "c", "metadata": {}, "source": source}
    if kind == "code":
        cell.update(execution_count=None, outputs=outputs or [])
    if grade_id:
        cell["metadata"]["nbgrader"] = {"grade": grade, "grade_id": grade_id, "locked": not solution,
                                        "schema_version": 3, "solution": solution, "task": False,
                                        **({"points": 1} if grade else {})}
    return cell


def test_abstract_methods_are_not_unfinished_and_unanswered_work_is_listed(release):
    # An abstract method raises NotImplementedError by design; only the release's stubs count.
    (release / "nnkit/sub/extra.py").write_text(
        'class Base:\n    def loss(self):\n        raise NotImplementedError("Base.loss: use a subclass.")\n\n\n'
        'def square(v):\n    raise NotImplementedError("square: not implemented yet, see the TODO above")\n')
    error = {"output_type": "error", "ename": "AssertionError", "evalue": "relu_forward: expected ...",
             "traceback": []}
    (release / "01_ops.ipynb").write_text(_notebook([
        _cell("markdown", "YOUR ANSWER HERE", "answer_why", grade=True, solution=True),
        _cell("markdown", "Because it does.", "answer_how", grade=True, solution=True),
        _cell("code", "# YOUR CODE HERE\nraise NotImplementedError()", "train", solution=True),
        _cell("code", "assert False", "test_add", grade=True, outputs=[error]),
    ]))
    out = run(release)
    assert "nnkit/sub/extra.py: square" in out and "Base.loss" not in out
    notebooks = out.split("In the notebooks as saved:")[1].split("\n\n")[0]
    assert "01_ops.ipynb answer_why: written answer not given yet" in notebooks
    assert "answer_how" not in notebooks
    assert "01_ops.ipynb train: still `raise NotImplementedError()`" in notebooks
    assert "01_ops.ipynb test_add: saved with an error: AssertionError: relu_forward: expected ..." in notebooks


def test_check_reports_the_cause_and_the_dataset(release):
    (release / "01_ops.ipynb").write_text(_notebook([
        _cell("code", "print(\"nnkit from .; dataset 'embedded' (chosen in the cell above); grading: True\")", "setup"),
        _cell("code", "class DatasetNotFoundError(FileNotFoundError):\n    pass\n"
                      "raise DatasetNotFoundError('CIFAR-10 not found: expected datasets/cifar-10-batches-py')",
              "load_data"),
        _cell("code", "data['X_train']", "test_add", grade=True),
        _cell("code", "assert 1 + 1 == 2", "test_square", grade=True),
    ]))
    proc = subprocess.run([sys.executable, str(release / "make_submission.py"), "--check"],
                          capture_output=True, text=True, cwd=release, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert ("ERROR 01_ops.ipynb load_data (not a check; the checks after it need it): DatasetNotFoundError: "
            "CIFAR-10 not found") in out
    assert "FAIL 01_ops.ipynb test_add: NameError" in out and "after the error in load_data above" in out
    assert "ok   01_ops.ipynb test_square" in out and "1 check(s) failed." in out
    assert "The checks ran on the dataset 'embedded' (chosen in the cell above)" in out


def test_check_on_the_untouched_fcnets_release_without_cifar10(tmp_path):
    """Issue 15's run: the release as students get it, CIFAR-10 not downloaded. The load cell's
    DatasetNotFoundError is reported as the cause, the dataset is named, the abstract
    LinearClassifier.loss is not called unfinished, the written answers are listed."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "student_release", Path(__file__).resolve().parents[1] / "colab" / "student_release.py")
    kit = sys.modules.setdefault("student_release", importlib.util.module_from_spec(spec))
    spec.loader.exec_module(kit)
    folder = kit.release_copy(tmp_path / "fcnets")
    env = {k: v for k, v in __import__("os").environ.items()
           if k not in ("NNKIT_DATASET", "NNKIT_DATA_DIR", "NBGRADER_EXECUTION", "PYTHONPATH")}
    proc = subprocess.run([sys.executable, "make_submission.py", "--check"], capture_output=True, text=True,
                          cwd=folder, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "ERROR 02_two_layer_net.ipynb load_data (not a check; the checks after it need it): " \
           "DatasetNotFoundError: CIFAR-10 not found" in out, out
    assert 'DATASET = "embedded"' in out.split("ERROR 02_two_layer_net.ipynb load_data")[1].splitlines()[0]
    assert "after the error in load_data above" in out
    assert "The checks ran on the dataset 'cifar10' (chosen in the cell above)" in out, out
    stubs = out.split("Still raising NotImplementedError")[1].split("\n\n")[0]
    assert "LinearClassifier.train" in stubs and "LinearClassifier.loss" not in stubs, stubs
    saved = out.split("In the notebooks as saved:")[1].split("\n\n")[0]
    for answer in ("answer_activations", "answer_train_test_gap", "answer_misclassifications",
                   "answer_initialisation", "answer_adagrad"):
        assert f"{answer}: written answer not given yet" in saved, saved
