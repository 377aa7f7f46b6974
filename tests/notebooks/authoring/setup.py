# Setup (read-only): run this cell first. It works locally, in Jupyter and in Colab.
import os
import subprocess
import sys
import warnings
from pathlib import Path

IN_COLAB = "google.colab" in sys.modules
if IN_COLAB:
    # Colab starts in /content: go to the assignment (a Drive folder, or a fresh clone).
    folder = globals().get("COLAB_ASSIGNMENT_DIR")
    if folder:
        from google.colab import drive
        drive.mount("/content/drive")
        os.chdir(Path("/content/drive/MyDrive") / folder)
    else:
        # The course's student repository holds the release (at its root, or in
        # assignments/fcnets/); never the kit's own repository, whose source/ holds solutions.
        url = globals().get("COLAB_REPO_URL")
        if not url:
            raise RuntimeError("set COLAB_ASSIGNMENT_DIR or COLAB_REPO_URL in the cell above, then run again")
        clone = Path("/content/fcnets")
        if not clone.exists():
            subprocess.run(["git", "clone", "--depth", "1", url, str(clone)], check=True)
        release = clone / "assignments" / "fcnets"
        os.chdir(release if release.is_dir() else clone)
    requirements = Path("requirements.txt")
    packages = ["-r", str(requirements)] if requirements.is_file() else ["numpy", "matplotlib", "ipywidgets", "tqdm"]
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", *packages], check=True)
    from google.colab import output
    output.enable_custom_widget_manager()  # the sliders of the explorers

# nnkit sits beside the notebooks (student release) or one folder up (instructor source).
for _root in (Path.cwd(), Path.cwd().parent):
    if (_root / "nnkit" / "__init__.py").is_file():
        if str(_root) not in sys.path:
            sys.path.insert(0, str(_root))
        break
else:
    raise RuntimeError(f"no nnkit/ folder in {Path.cwd()} or its parent: open this notebook from the assignment folder")

# %autoreload picks up your edits to nnkit/*.py. IPython's autoreload imports the module
# `imp`, which Python 3.12 (Colab) no longer has: give it a small stand-in.
import importlib
import importlib.util
import types
if "imp" not in sys.modules and importlib.util.find_spec("imp") is None:
    sys.modules["imp"] = types.ModuleType("imp")
    sys.modules["imp"].reload = importlib.reload
try:
    get_ipython().run_line_magic("load_ext", "autoreload")
    get_ipython().run_line_magic("autoreload", "2")
    get_ipython().run_line_magic("matplotlib", "inline")
except Exception as exc:  # autoreload is a convenience: never stop here because of it
    print(f"(autoreload is off: {exc}; restart the kernel after editing nnkit)")

import numpy as np
import matplotlib.pyplot as plt

# A harmless warning on stderr would make the grader score a passing check 0.
warnings.filterwarnings("ignore")
np.seterr(all="ignore")
plt.rcParams["figure.figsize"] = (10.0, 6.0)

from nnkit import data_utils
from nnkit.gradient_check import eval_numerical_gradient, eval_numerical_gradient_array, rel_error

DATASET = data_utils.dataset_name()  # env NNKIT_DATASET; the grader chooses it, not you
if IN_COLAB and DATASET != "embedded":
    # datasets/fetch.py downloads and checks the dataset once; later runs find it and return.
    subprocess.run([sys.executable, str(data_utils.dataset_dir() / "fetch.py"), DATASET], check=True)
GRADING = bool(os.environ.get("NBGRADER_EXECUTION"))  # set by nbgrader: long cells skip themselves
MODELS = Path("models")
MODELS.mkdir(exist_ok=True)


def _show(a):
    return np.array2string(np.asarray(a), precision=6, threshold=12, edgeitems=2).replace("\n", " ")


def check_close(what, got, expected, tol, cause=""):
    """Assert got ~ expected (same shape, relative error < tol), with a message that explains."""
    expected = np.asarray(expected, dtype=np.float64)
    assert got is not None, f"{what}: got None. Did you assign the result before returning it?"
    got = np.asarray(got)
    assert got.shape == expected.shape, (
        f"{what}: expected shape {expected.shape}, got {got.shape}. {cause}")
    assert np.all(np.isfinite(got)), (
        f"{what}: expected {_show(expected)}, got non-finite values (nan or inf): {_show(got)}. {cause}")
    err = rel_error(got.astype(np.float64), expected)
    assert err < tol, (
        f"{what}: relative error {err:.2e}, more than the {tol:.0e} allowed.\n"
        f"  expected {_show(expected)}\n  got      {_show(got)}\n  {cause}")


print(f"nnkit from {sys.path[0]}; dataset {DATASET!r}; grading: {GRADING}")
