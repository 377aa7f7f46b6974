"""What a student meets before and around the checks (issue 15): the release README, the
dataset choice of the first cell, the error texts, Python 3.10, the kernel-side behaviour of
the setup cell (autoreload, progress bars, the explorer's errors).

The kernel tests run the source notebooks' own cells in a real IPython kernel (the main
venv's: IPython 9) inside a release-like folder with a stubbed nnkit; the Colab-like
runtime (IPython 7.34, ipywidgets 7) is tests/colab's, the browser tests/browser's.
"""
from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from nnkit import data_utils as du

REPO = Path(__file__).resolve().parents[2]
FCNETS = REPO / "source" / "fcnets"
RELEASE_FILES = REPO / "autograder" / "release" / "files"
REGION = re.compile(r"^([ \t]*)### BEGIN SOLUTION[ \t]*\n.*?^[ \t]*### END SOLUTION[ \t]*\n", re.M | re.S)


def cells(name: str) -> dict[str, str]:
    nb = nbformat.read(FCNETS / name, as_version=4)
    return {c.get("id"): c.source for c in nb.cells}


SETUP = cells("01_layers.ipynb")["setup"]


def stubbed_folder(root: Path) -> Path:
    """A release-like folder: stubbed nnkit (the strip tool's message), manifest, datasets."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO / "source" / "nnkit", root / "nnkit", ignore=shutil.ignore_patterns("__pycache__"))
    for py in (root / "nnkit").rglob("*.py"):
        text = py.read_text(encoding="utf-8")
        py.write_text(REGION.sub(lambda m: f'{m.group(1)}raise NotImplementedError("stub: not implemented yet")\n',
                                 text), encoding="utf-8")
    shutil.copy(FCNETS / "manifest.toml", root / "manifest.toml")
    (root / "datasets").mkdir()
    shutil.copytree(REPO / "datasets" / "embedded", root / "datasets" / "embedded")
    shutil.copy(REPO / "datasets" / "fetch.py", root / "datasets" / "fetch.py")
    return root


# ---------------------------------------------------------------- the release README
def test_release_readme_states_the_pythons_and_one_install_command_with_jupyter():
    text = (RELEASE_FILES / "README.md").read_text(encoding="utf-8")
    assert "Python 3.10, 3.11, 3.12 or 3.13" in text
    commands = [l.strip() for l in text.splitlines() if "pip install" in l]
    assert "python -m pip install -r requirements.txt jupyterlab" in commands, commands
    assert 'DATASET = "embedded"' in text and "COLAB_ASSIGNMENT_DIR" in text
    assert "NNKIT_DATASET=embedded" not in text  # the first cell is the one place to choose


# ---------------------------------------------------------------- error texts
def test_dataset_errors_name_the_fix_that_exists_in_the_release(tmp_path):
    messages = []
    for name in ("cifar10", "embedded"):
        with pytest.raises(du.DatasetNotFoundError) as info:
            du.load_dataset(name, root=tmp_path / "datasets")
        messages.append(str(info.value))
    cifar, embedded = messages
    assert "python datasets/fetch.py cifar10" in cifar and "!python datasets/fetch.py cifar10" in cifar
    assert 'DATASET = "embedded" in the first cell' in cifar
    for text in messages:
        # Not in the release: the kit's datasets/README.md and make_embedded.py; and no trap
        # (load_dataset('embedded') alone leaves the thresholds and notebook 03 on CIFAR-10).
        assert "README" not in text and "make_embedded" not in text and "load_dataset('embedded')" not in text
    with pytest.raises(ValueError, match="DATASET in a notebook's first cell"):
        du.load_dataset("cifar")


# ---------------------------------------------------------------- the setup cell's dataset choice
RESOLVE = """
import json, os, sys
os.chdir(sys.argv[1])
ns = {}
for chosen in json.loads(sys.argv[2]):
    if chosen is not None:
        ns["DATASET"] = chosen
    exec(compile(open(sys.argv[3]).read(), "setup", "exec"), ns)
    print("RESULT", json.dumps([ns["DATASET"], os.environ.get("NNKIT_DATASET")]))
    print("BLAS", os.environ.get("OPENBLAS_NUM_THREADS"), os.environ.get("OMP_NUM_THREADS"))
"""


def resolve(folder: Path, choices: list, env: dict, tmp_path: Path) -> tuple[list, str]:
    setup = tmp_path / "setup_cell.py"
    setup.write_text(SETUP, encoding="utf-8")
    full = {k: v for k, v in os.environ.items()
            if k not in ("NNKIT_DATASET", "NBGRADER_EXECUTION", "NNKIT_DATA_DIR", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    full.update(env)
    proc = subprocess.run([sys.executable, "-c", RESOLVE, str(folder), json.dumps(choices), str(setup)],
                          capture_output=True, text=True, env=full, timeout=120)
    assert proc.returncode == 0, proc.stderr
    results = [json.loads(l.split(" ", 1)[1]) for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    return results, proc.stdout


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return stubbed_folder(tmp_path_factory.mktemp("release_like"))


def test_the_first_cell_chooses_the_dataset_and_a_rerun_follows_a_new_choice(folder, tmp_path):
    results, out = resolve(folder, ["embedded", "cifar10", "embedded"], {}, tmp_path)
    assert [r[0] for r in results] == ["embedded", "cifar10", "embedded"]
    assert "BLAS 1 1" in out  # one BLAS thread unless the student says otherwise: no collapse under load
    assert "dataset 'embedded' (chosen in the cell above)" in out
    # CIFAR-10 is not in this folder: the setup says how to get it, or how to work offline.
    assert "CIFAR-10 is not downloaded yet" in out and "!python datasets/fetch.py cifar10" in out
    assert 'DATASET = "embedded"' in out


def test_the_graders_environment_always_wins(folder, tmp_path):
    results, out = resolve(folder, ["embedded"], {"NNKIT_DATASET": "cifar10"}, tmp_path)
    assert results == [["cifar10", "cifar10"]] and "set by the environment variable NNKIT_DATASET" in out
    # Autograding without NNKIT_DATASET: the default, never the student's choice.
    results, out = resolve(folder, ["embedded"], {"NBGRADER_EXECUTION": "autograde"}, tmp_path)
    assert results == [["cifar10", None]] and "the grader's default" in out
    # Without a choice (the first cell not run): the default, and the setup says so.
    results, out = resolve(folder, [None], {}, tmp_path)
    assert results == [["cifar10", None]] and "run the cell above" in out


# ---------------------------------------------------------------- thresholds without tomllib
def _read_thresholds_source() -> str:
    tree = ast.parse(SETUP)
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "read_thresholds")
    return "from pathlib import Path\n" + ast.get_source_segment(SETUP, fn)


READER = """
import json, os, sys
if sys.argv[2] == "hide":
    sys.modules["tomllib"] = None  # as on Python 3.10
os.chdir(sys.argv[1])
exec(sys.stdin.read())
print(json.dumps({d: read_thresholds(d) for d in ("embedded", "cifar10")}))
"""


# One definition of it, beside the Colab tests' other helpers.
_spec = importlib.util.spec_from_file_location(
    "student_release", Path(__file__).resolve().parents[1] / "colab" / "student_release.py")
_kit = sys.modules.setdefault("student_release", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(_kit)
find_python = _kit.find_python


def _python310():
    return find_python("3.10")


@pytest.mark.parametrize("python", ["this", "hidden-tomllib", "3.10"])
def test_thresholds_read_without_tomllib_equal_tomllib(python, folder):
    import tomllib

    expected = tomllib.loads((folder / "manifest.toml").read_text())["thresholds"]
    exe, mode = sys.executable, "keep"
    if python == "hidden-tomllib":
        mode = "hide"
    elif python == "3.10":
        exe = _python310()
        if exe is None:
            pytest.skip("no Python 3.10 here (pyenv's /root/.pyenv/versions/3.10*): the fallback is tested "
                        "with tomllib hidden instead")
    proc = subprocess.run([exe, "-c", READER, str(folder), mode], input=_read_thresholds_source(),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got == {d: expected[d] for d in ("embedded", "cifar10")}


def test_release_python_files_compile_on_python_310(tmp_path):
    exe = _python310()
    if exe is None:
        pytest.skip("no Python 3.10 here (pyenv's /root/.pyenv/versions/3.10*)")
    # Every module of the package, the release helpers, and every code cell of the notebooks.
    files = [str(p) for p in (REPO / "source" / "nnkit").rglob("*.py")]
    files += [str(RELEASE_FILES / "make_submission.py"), str(REPO / "datasets" / "fetch.py")]
    for nb in sorted(FCNETS.glob("*.ipynb")):
        for cell in nbformat.read(nb, as_version=4).cells:
            if cell.cell_type == "code":
                path = tmp_path / f"{nb.stem}__{cell.id}.py"
                path.write_text(cell.source, encoding="utf-8")
                files.append(str(path))
    check = "import sys, ast\nfor f in sys.argv[1:]:\n    ast.parse(open(f).read(), f)\n"
    proc = subprocess.run([exe, "-c", check, *files], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


# ---------------------------------------------------------------- in a real kernel
class Kernel:
    """A python3 kernel of the main venv started in `cwd`; `run(code)` returns the iopub messages."""

    def __init__(self, cwd: Path, env: dict):
        from jupyter_client.manager import start_new_kernel

        full = dict(os.environ)
        for k in ("NNKIT_DATASET", "NBGRADER_EXECUTION", "NNKIT_DATA_DIR"):
            full.pop(k, None)
        full.update(env)
        self.km, self.kc = start_new_kernel(kernel_name="python3", cwd=str(cwd), env=full)

    def run(self, code: str, timeout: float = 120) -> list[dict]:
        msgs = []
        reply = self.kc.execute_interactive(code, timeout=timeout, output_hook=msgs.append, allow_stdin=False)
        self.status = reply["content"]["status"]
        return msgs

    @staticmethod
    def text(msgs) -> str:
        parts = []
        for m in msgs:
            c = m["content"]
            if m["msg_type"] == "stream":
                parts.append(c["text"])
            elif m["msg_type"] == "error":
                parts.append("\n".join(c["traceback"]))
            elif m["msg_type"] in ("display_data", "update_display_data", "execute_result"):
                parts.append(c["data"].get("text/plain", ""))
        return re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(parts))

    def close(self):
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    root = stubbed_folder(tmp_path_factory.mktemp("kernel_release"))
    k = Kernel(root, {"OPENBLAS_NUM_THREADS": "1", "MPLBACKEND": "module://matplotlib_inline.backend_inline"})
    k.root = root
    nb02 = cells("02_two_layer_net.ipynb")
    first = k.run(nb02["colab_config"].replace('DATASET = "cifar10"', 'DATASET = "embedded"'))
    out = Kernel.text(first + k.run(nb02["setup"]))
    assert k.status == "ok", out
    assert "dataset 'embedded' (chosen in the cell above)" in out
    k.run(nb02["load_data"])
    assert k.status == "ok"
    yield k
    k.close()


def test_a_check_before_the_setup_says_to_run_it(tmp_path):
    k = Kernel(tmp_path, {})
    try:
        out = Kernel.text(k.run(cells("01_layers.ipynb")["test_relu"]))
    finally:
        k.close()
    assert "AssertionError: run the first two code cells of this notebook" in out and "NameError" not in out


def test_under_the_grader_pyplot_is_imported_only_by_a_cell_that_draws(tmp_path):
    # Half a second of every graded kernel; a cell that draws still gets the kernel's inline backend.
    k = Kernel(stubbed_folder(tmp_path / "release"),
               {"NBGRADER_EXECUTION": "autograde", "NNKIT_DATASET": "embedded", "MPLBACKEND": ""})
    probe = "import sys\nprint('pyplot imported:', 'matplotlib.pyplot' in sys.modules, 'matplotlib' in sys.modules)"
    try:
        out = Kernel.text(k.run(SETUP))
        assert k.status == "ok", out
        assert "pyplot imported: False False" in Kernel.text(k.run(probe))
        msgs = k.run("plt.plot([0, 1]); plt.show()\nimport matplotlib\nprint(matplotlib.get_backend())")
        assert k.status == "ok", Kernel.text(msgs)
        assert any("image/png" in m["content"].get("data", {}) for m in msgs if m["msg_type"] == "display_data")
        assert "inline" in Kernel.text(msgs)
        assert "pyplot imported: True True" in Kernel.text(k.run(probe))
    finally:
        k.close()


def test_under_the_grader_the_setup_cell_imports_no_progress_bar_widgets(tmp_path):
    # Nobody reads a graded kernel's bars; ipywidgets' import would cost every graded kernel 0.1 s.
    k = Kernel(stubbed_folder(tmp_path / "release"),
               {"NBGRADER_EXECUTION": "autograde", "NNKIT_DATASET": "embedded", "MPLBACKEND": ""})
    try:
        out = Kernel.text(k.run(SETUP))
        assert k.status == "ok", out
        probe = "import sys\nprint('imported:', 'ipywidgets' in sys.modules, 'tqdm' in sys.modules)"
        assert "imported: False False" in Kernel.text(k.run(probe))
        # A bar made anyway still works (a widget bar, since this is a notebook kernel).
        msgs = k.run("from tqdm.auto import tqdm\nbar = tqdm(total=2)\nbar.update(2)\nbar.close()\nprint('n', bar.n)")
        assert k.status == "ok" and "n 2" in Kernel.text(msgs), Kernel.text(msgs)
    finally:
        k.close()


def test_autoreload_without_deduper_points_tracebacks_at_the_edited_line(kernel):
    msgs = kernel.run("ip = get_ipython(); r = ip.magics_manager.registry['AutoreloadMagics']._reloader\n"
                      "print('deduper', getattr(getattr(r, 'deduper_reloader', None), 'enabled', 'absent'))\n"
                      "from nnkit.layers import relu_forward\nrelu_forward(np.ones(2))")
    out = Kernel.text(msgs)
    assert "deduper False" in out or "deduper absent" in out, out
    assert "NotImplementedError" in out
    # Insert lines above the function (a longer docstring, as students do): the traceback
    # must still point at the raise.
    layers = kernel.root / "nnkit" / "layers.py"
    text = layers.read_text()
    layers.write_text(text.replace('import numpy as np\n', 'import numpy as np\n\n# a note\n# another note\n# a third\n', 1))
    out = Kernel.text(kernel.run("relu_forward(np.ones(2))"))
    arrow = [l for l in out.splitlines() if re.match(r"\s*-+>\s*\d+ ", l)]
    edited = layers.read_text().splitlines()
    start = next(i for i, l in enumerate(edited) if l.startswith("def relu_forward"))
    line = next(i for i, l in enumerate(edited) if i > start and "raise NotImplementedError" in l) + 1
    # (With IPython 9's DeduperReloader on, the arrow stays on the old line number, 3 lines up.)
    assert len(arrow) == 2 and re.match(rf"\s*-+>\s*{line} ", arrow[-1]), (line, out)


def test_progress_bars_end_as_a_text_line(kernel):
    msgs = kernel.run("from tqdm.auto import tqdm\nbar = tqdm(total=3, desc='Training')\n"
                      "for _ in range(3):\n    bar.update(1)\nbar.close()")
    shown = [m for m in msgs if m["msg_type"] == "display_data"]
    updates = [m for m in msgs if m["msg_type"] == "update_display_data"]
    assert shown and "application/vnd.jupyter.widget-view+json" in shown[0]["content"]["data"]
    display_id = shown[0]["content"]["transient"]["display_id"]
    assert updates and updates[-1]["content"]["transient"]["display_id"] == display_id
    final = updates[-1]["content"]["data"]
    assert "application/vnd.jupyter.widget-view+json" not in final
    assert final["text/plain"].startswith("Training: 100%") and "3/3" in final["text/plain"]


def test_an_error_inside_the_explorers_train_button_is_shown_not_swallowed(kernel):
    kernel.run(cells("02_two_layer_net.ipynb")["explorer"].replace("display(make_explorer(data))", "pass"))
    assert kernel.status == "ok"
    msgs = kernel.run("ex = make_explorer(data)\nbutton, status = ex.children[2].children\nbutton.click()\n"
                      "print('STATUS', status.value)\nprint('ENABLED', not button.disabled)")
    out = Kernel.text(msgs)
    assert kernel.status == "ok", out  # the click's error stays in the widget, the cell goes on
    assert "STATUS training failed: NotImplementedError" in out and "ENABLED True" in out
    errors = [m for m in msgs if m["msg_type"] == "error"]
    assert errors and errors[0]["content"]["ename"] == "NotImplementedError"  # the traceback, for the widget


# ---------------------------------------------------------------- the documented search repeats itself
def test_random_search_with_the_same_seed_repeats_with_the_documented_builder():
    """The module docstring's build_model (TwoLayerNet draws from numpy's global generator)."""
    import numpy as np

    from nnkit.classifiers.fc_net import TwoLayerNet
    from nnkit.tuning import random_search

    rng = np.random.RandomState(0)
    centers = 3 * rng.randn(3, 12)
    y = rng.randint(3, size=120)
    data = {"X_train": centers[y[:90]] + rng.randn(90, 12), "y_train": y[:90],
            "X_val": centers[y[90:]] + rng.randn(30, 12), "y_val": y[90:]}

    def build_model(hidden_dim, reg):
        return TwoLayerNet(input_dim=12, hidden_dim=hidden_dim, num_classes=3, reg=reg)

    runs = []
    for state in (1, 2):  # whatever the global generator did before
        np.random.seed(state)
        results = random_search(build_model, data, {"learning_rate": ("log", 1e-3, 1e-1), "reg": ("log", 1e-4, 1e-1),
                                                    "hidden_dim": [8, 16]}, num_trials=3, seed=5, progress=False,
                                solver_kwargs={"num_epochs": 2, "batch_size": 30})
        runs.append(([r["loss"] for r in results.rows], results.best_model.params["W1"].copy()))
    assert runs[0][0] == runs[1][0]
    assert np.array_equal(runs[0][1], runs[1][1])
