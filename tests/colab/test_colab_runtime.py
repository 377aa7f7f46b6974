"""The release notebooks in a Colab-like runtime, on Python 3.12 and 3.13.

Colab today (../shared/research/landscape_2026.md, "Colab today"): Python 3.13 since
2026-08 (3.12 before), IPython pinned at 7.34 (its autoreload imports the removed `imp`),
ipywidgets 7.7.1 preinstalled, numpy 2.x, matplotlib 3.10. Here, for each Python:

- a venv with exactly those versions (``build/venvs/colab-<python>``, made once and reused
  while its pins are the same; the test is skipped when that Python is not on the machine);
- a stand-in ``google.colab`` (``drive.mount`` links ``/content/drive/MyDrive`` to a temporary
  "Drive" folder; ``output.enable_custom_widget_manager`` is recorded), imported at kernel
  start as Colab does;
- the kernel runs in bubblewrap with its own ``/content`` (Colab's wiped-at-reset disk), so
  the test sees everything the notebooks write outside Drive;
- the release (built from the current source) with the reference filled in, in the Drive
  folder; DATASET = "embedded" and COLAB_ASSIGNMENT_DIR set in each notebook's first cell.

It checks: notebook 01 fails its affine_forward check on the stub, the stub is replaced on
disk, the same check passes under %autoreload; then all four notebooks run without an
error; nothing Colab preinstalled was upgraded; every edit, model and cache is in Drive and
nothing but the mount point is in /content; make_submission.py in Drive zips the worked
notebooks and the models; the clone route (COLAB_REPO_URL) copies the assignment into Drive.
"""
from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import nbformat
import pytest

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("student_release", HERE / "student_release.py")
kit = sys.modules.setdefault("student_release", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(kit)

REPO = kit.REPO
VENVS = REPO / "build" / "venvs"
#: What Colab ships (backend-info's pip-freeze, as of the research note), per Python.
COLAB_PINS = {
    "3.12": ["ipython==7.34.0", "ipykernel==6.17.1", "ipywidgets==7.7.1", "numpy==2.0.2",
             "matplotlib==3.10.0", "tqdm==4.67.1", "jupyter-client==7.4.9"],
    "3.13": ["ipython==7.34.0", "ipykernel==6.17.1", "ipywidgets==7.7.1", "numpy==2.1.3",
             "matplotlib==3.10.0", "tqdm==4.67.1", "jupyter-client==7.4.9"],
}
NOTEBOOKS = ["01_layers.ipynb", "02_two_layer_net.ipynb", "03_features.ipynb", "04_fully_connected_nets.ipynb"]
MODELS = ["models/two_layer_net.npz", "models/features_net.npz", "models/fc_net.npz"]

STANDIN = {
    "google/__init__.py": "__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n",
    "google/colab/__init__.py": "from . import drive, output  # noqa: F401\n",
    "google/colab/_log.py": textwrap.dedent("""\
        import json, os
        def log(*event):
            with open(os.environ["NNKIT_STANDIN_LOG"], "a") as f:
                f.write(json.dumps(event) + "\\n")
        """),
    "google/colab/drive.py": textwrap.dedent("""\
        \"\"\"Stand-in for google.colab.drive: the "Drive" is a folder outside /content.\"\"\"
        import os
        from pathlib import Path
        from ._log import log

        def mount(mountpoint, force_remount=False, timeout_ms=120000, readonly=False):
            link = Path(mountpoint) / "MyDrive"
            if link.is_symlink():
                print(f"Drive already mounted at {mountpoint}; to attempt to forcibly remount, "
                      'call drive.mount("' + str(mountpoint) + '", force_remount=True).')
            else:
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(os.environ["NNKIT_STANDIN_DRIVE"], target_is_directory=True)
                print(f"Mounted at {mountpoint}")
            log("drive.mount", str(mountpoint))
        """),
    "google/colab/output.py": textwrap.dedent("""\
        \"\"\"Stand-in for google.colab.output.\"\"\"
        from ._log import log

        def enable_custom_widget_manager():
            log("output.enable_custom_widget_manager")
        """),
}


# ---------------------------------------------------------------- the runtime


def colab_venv(version: str) -> Path:
    """The venv with Colab's versions for `version`, made (about 30 s) unless it exists with these pins."""
    exe = kit.find_python(version)
    if exe is None:
        pytest.skip(f"Python {version} is not on this machine (looked in pyenv's versions and PATH): "
                    f"install it (e.g. `pyenv install {version}`) to run the Colab-like test on it")
    venv = VENVS / f"colab-{version}"
    stamp = venv / "nnkit-colab-pins.json"
    pins = COLAB_PINS[version]
    VENVS.mkdir(parents=True, exist_ok=True)
    with open(VENVS / f".colab-{version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.is_file() and json.loads(stamp.read_text()) == pins and (venv / "bin" / "python").is_file():
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([exe, "-m", "venv", str(venv)], check=True, timeout=300)
        proc = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *pins],
                              capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            pytest.fail(f"pip could not install Colab's versions on Python {version}:\n{proc.stderr[-3000:]}")
        stamp.write_text(json.dumps(pins))
    return venv


def installed(venv: Path) -> dict[str, str]:
    code = ("import importlib.metadata as m, json; print(json.dumps({d: m.version(d) for d in "
            "('ipython', 'ipykernel', 'ipywidgets', 'numpy', 'matplotlib', 'tqdm')}))")
    return json.loads(subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True,
                                     check=True).stdout)


def bwrap_prefix(content: Path) -> list[str]:
    """bubblewrap with the host's file system and network, but its own /content (Colab's disk)."""
    args = ["bwrap", "--die-with-parent", "--tmpfs", "/"]
    for name in sorted(os.listdir("/")):
        path = "/" + name
        if name == "content":
            continue
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--dev-bind", path, path]
    return args + ["--bind", str(content), "/content", "--chdir", "/content"]


class Runtime:
    """One Colab-like runtime: a Drive folder, a /content, a kernelspec, the stand-in."""

    def __init__(self, venv: Path, tmp: Path):
        self.tmp, self.venv = tmp, venv
        self.drive, self.content = tmp / "drive", tmp / "content"
        self.drive.mkdir()
        self.content.mkdir()
        self.log = tmp / "standin.log"
        standin = tmp / "standin"
        for rel, text in STANDIN.items():
            (standin / rel).parent.mkdir(parents=True, exist_ok=True)
            (standin / rel).write_text(text)
        ipython_dir = tmp / "ipython"
        (ipython_dir / "profile_default" / "startup").mkdir(parents=True)
        (ipython_dir / "profile_default" / "startup" / "00-google-colab.py").write_text("import google.colab\n")
        spec_dir = tmp / "jupyter" / "kernels" / "colab"
        spec_dir.mkdir(parents=True)
        spec = {"argv": bwrap_prefix(self.content) + [str(venv / "bin" / "python"), "-m", "ipykernel_launcher",
                                                       "-f", "{connection_file}"],
                "display_name": "Colab-like", "language": "python",
                "env": {"IPYTHONDIR": str(ipython_dir), "PYTHONPATH": str(standin),
                        "NNKIT_STANDIN_DRIVE": str(self.drive), "NNKIT_STANDIN_LOG": str(self.log),
                        "OPENBLAS_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1",
                        "MPLBACKEND": "module://matplotlib_inline.backend_inline"}}
        (spec_dir / "kernel.json").write_text(json.dumps(spec))
        self.jupyter_path = str(tmp / "jupyter")

    def client(self, nb):
        from nbclient import NotebookClient

        return NotebookClient(nb, timeout=600, kernel_name="colab", allow_errors=True,
                              resources={"metadata": {"path": str(self.content)}})

    def events(self) -> list:
        return [json.loads(l) for l in self.log.read_text().splitlines()] if self.log.is_file() else []


def text_of(cell) -> str:
    parts = []
    for o in cell.get("outputs", []):
        if o.output_type == "stream":
            parts.append(o.text)
        elif o.output_type == "error":
            parts.append(f"{o.ename}: {o.evalue}")
        elif o.output_type in ("display_data", "execute_result"):
            parts.append(o.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def errors_of(nb) -> list[str]:
    return [f"{c.get('id')}: {o.ename}: {o.evalue}" for c in nb.cells for o in c.get("outputs", [])
            if o.output_type == "error"]


def files_outside_symlinks(root: Path) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):  # os.walk does not follow the MyDrive link
        found += [str(Path(dirpath, f).relative_to(root)) for f in filenames]
        found += [str(Path(dirpath, d).relative_to(root)) + "/" for d in dirnames if not Path(dirpath, d).is_symlink()]
    return sorted(found)


# ---------------------------------------------------------------- the test
@pytest.fixture
def runtime_env(monkeypatch):
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap (bwrap) is missing: `make test` installs it as root (package `bubblewrap`); "
                    "the Colab-like kernel needs it for its own /content")
    for var in ("NNKIT_DATASET", "NNKIT_DATA_DIR", "NBGRADER_EXECUTION", "PYTHONPATH"):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


@pytest.mark.parametrize("version", sorted(COLAB_PINS))
def test_release_notebooks_in_a_colab_like_runtime(version, runtime_env, tmp_path):
    venv = colab_venv(version)
    before = installed(venv)
    rt = Runtime(venv, tmp_path)
    runtime_env.setenv("JUPYTER_PATH", rt.jupyter_path)

    # The student's Drive: the release, worked through (the reference's answers), except that
    # affine_forward is still the stub: the first check fails, the student fixes it, re-checks.
    folder = kit.release_copy(rt.drive / "nnkit" / "fcnets")
    kit.fill_in(folder)
    for name in NOTEBOOKS:
        kit.set_first_cell(folder / name, DATASET="embedded", COLAB_ASSIGNMENT_DIR="nnkit/fcnets")
    stub_layers = (folder / "nnkit" / "layers.py").read_text()
    kit.use_reference(folder, kit.STUDENT_MODULES)
    (folder / "nnkit" / "layers.py").write_text(
        kit.with_function(kit.reference_text("layers.py"), "affine_forward", kit.function_of(stub_layers, "affine_forward")))

    # 01, cell by cell, with the edit-then-recheck under %autoreload.
    nb = nbformat.read(folder / NOTEBOOKS[0], as_version=4)
    client = rt.client(nb)
    rechecked = None
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            client.execute_cell(cell, index)
            if cell.get("id") == "setup":
                setup_text = text_of(cell)
            if cell.get("id") == "test_affine_forward":
                first = text_of(cell)
                assert "NotImplementedError: affine_forward: not implemented yet" in first, first
                kit.use_reference(folder, ["layers.py"])  # the student's fix, saved in Drive
                cell.outputs = []
                client.execute_cell(cell, index)
                rechecked = text_of(cell)
    assert "Mounted at /content/drive" in setup_text, setup_text
    assert "dataset 'embedded' (chosen in the cell above)" in setup_text, setup_text
    assert "autoreload is off" not in setup_text, setup_text
    assert rechecked is not None and "affine_forward: OK" in rechecked, rechecked
    assert not errors_of(nb), errors_of(nb)

    # 02-04 as a whole: training, progress bars, the explorer (ipywidgets 7), the saved models.
    for name in NOTEBOOKS[1:]:
        nb = nbformat.read(folder / name, as_version=4)
        rt.client(nb).execute()
        assert not errors_of(nb), (name, errors_of(nb))
        nbformat.write(nb, folder / name)  # the student saves the notebook (in Drive)
        if name == "02_two_layer_net.ipynb":
            explorer = next(c for c in nb.cells if c.get("id") == "explorer")
            views = [o for o in explorer.outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
            assert views and views[0]["data"]["application/vnd.jupyter.widget-view+json"]["version_major"] == 2

    # Nothing Colab preinstalled was upgraded (the old setup cell's pip install did it).
    assert installed(venv) == before
    assert before["ipywidgets"] == "7.7.1" and before["ipython"] == "7.34.0"
    events = rt.events()
    assert events.count(["output.enable_custom_widget_manager"]) == len(NOTEBOOKS)
    assert ["drive.mount", "/content/drive"] in events

    # Every edit and model is in Drive; Colab's own disk holds only the mount point.
    for rel in MODELS:
        assert (folder / rel).is_file(), f"{rel} is not in the Drive folder"
    assert kit.reference_text("layers.py") == (folder / "nnkit" / "layers.py").read_text()
    assert files_outside_symlinks(rt.content) == ["drive/"], files_outside_symlinks(rt.content)

    # make_submission.py, run in the Drive folder (Colab's `!python make_submission.py`), zips
    # the worked notebooks and the models, with Colab's Python and nothing else.
    proc = subprocess.run([str(venv / "bin" / "python"), "make_submission.py"], cwd=folder, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    with zipfile.ZipFile(folder / "submission.zip") as zf:
        names = set(zf.namelist())
        assert set(NOTEBOOKS) | set(MODELS) <= names
        saved = json.loads(zf.read("02_two_layer_net.ipynb"))
    tune = next(c for c in saved["cells"] if c.get("id") == "tune_two_layer")
    assert "random_search(" in "".join(tune["source"]) and tune.get("outputs"), "the zip holds the worked notebook"


@pytest.mark.parametrize("version", ["3.13"])
def test_the_clone_route_copies_the_assignment_into_drive(version, runtime_env, tmp_path):
    venv = colab_venv(version)
    rt = Runtime(venv, tmp_path)
    runtime_env.setenv("JUPYTER_PATH", rt.jupyter_path)
    # The course's student repository: the release at its root (a local one: git clones it the same way).
    repo = kit.release_copy(tmp_path / "student-repo")
    git = ["git", "-c", "user.name=course", "-c", "user.email=course@example.org", "-C", str(repo)]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-q", "-m", "release"], check=True)

    nb = nbformat.read(repo / NOTEBOOKS[0], as_version=4)
    keep = [c for c in nb.cells if c.get("id") in ("colab_config", "setup")]
    keep[0].source = keep[0].source.replace('COLAB_ASSIGNMENT_DIR = None', 'COLAB_ASSIGNMENT_DIR = "course/fcnets"')
    keep[0].source = keep[0].source.replace('COLAB_REPO_URL = None', f'COLAB_REPO_URL = {str(repo)!r}')
    keep[0].source = keep[0].source.replace('DATASET = "cifar10"', 'DATASET = "embedded"')
    keep.append(nbformat.v4.new_code_cell("print('CWD', Path.cwd()); print('MODELS', MODELS.resolve())"))
    nb.cells = keep
    rt.client(nb).execute()
    assert not errors_of(nb), errors_of(nb)
    out = "\n".join(text_of(c) for c in nb.cells)
    assert "Copied the assignment into /content/drive/MyDrive/course/fcnets" in out, out
    # (Colab's Drive is a mount; the stand-in's a link, which the working directory resolves.)
    assert f"CWD {(rt.drive / 'course' / 'fcnets').resolve()}" in out, out
    assert (rt.drive / "course" / "fcnets" / "nnkit" / "layers.py").is_file()
    assert (rt.drive / "course" / "fcnets" / "models").is_dir()
