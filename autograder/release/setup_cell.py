# Setup (read-only): run this cell first, after the cell above. It works locally, in Jupyter and in Colab.
import contextlib
import os
import subprocess
import sys
import warnings
from pathlib import Path

# One BLAS thread: on a busy machine several threads make training many times slower.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
GRADING = bool(os.environ.get("NBGRADER_EXECUTION"))  # set by nbgrader: long cells skip themselves

IN_COLAB = "google.colab" in sys.modules
if IN_COLAB:
    # Colab's own disk (/content) is wiped when the runtime resets: the assignment lives in Google
    # Drive, so your edits of nnkit/ and your saved models stay there.
    folder = globals().get("COLAB_ASSIGNMENT_DIR")
    if not folder:
        raise RuntimeError('set COLAB_ASSIGNMENT_DIR in the cell above (a folder of your Google Drive, e.g. '
                           '"nnkit/{{ASSIGNMENT}}"), run that cell, then this one again')
    from google.colab import drive
    drive.mount("/content/drive")
    folder = Path("/content/drive/MyDrive") / folder
    if not (folder / "nnkit" / "__init__.py").is_file():
        url = globals().get("COLAB_REPO_URL")
        if not url:
            raise RuntimeError(f"{folder} holds no assignment: upload the assignment folder there, or set "
                               "COLAB_REPO_URL in the cell above (your course's student repository) to copy it there")
        import shutil
        clone = Path("/content/{{ASSIGNMENT}}-clone")
        if not clone.exists():
            subprocess.run(["git", "clone", "--depth", "1", url, str(clone)], check=True)
        release = clone / "assignments" / "{{ASSIGNMENT}}"
        shutil.copytree(release if release.is_dir() else clone, folder, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(".git"))
        print(f"Copied the assignment into {folder}. Open its notebooks from there (File > Open notebook > "
              "Google Drive) and work in them: make_submission.py zips the notebooks of that folder.")
    os.chdir(folder)
    # Colab preinstalls numpy, matplotlib, ipywidgets 7, tqdm and PyYAML: install only what is missing,
    # never upgrade what Colab ships (its widgets need ipywidgets 7).
    import importlib.util
    _wanted = {"numpy": "numpy", "matplotlib": "matplotlib", "ipywidgets": "ipywidgets", "tqdm": "tqdm", "yaml": "pyyaml"}
    _missing = [pip for module, pip in _wanted.items() if importlib.util.find_spec(module) is None]
    if _missing:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", *_missing], check=True)
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
    if not GRADING:  # the grader edits nothing, and autoreload's check before every cell costs it time
        get_ipython().run_line_magic("load_ext", "autoreload")
        get_ipython().run_line_magic("autoreload", "2")
        # IPython 9's "deduper" reloader makes tracebacks point at the wrong lines after an edit:
        # keep the classic reloader.
        _reloader = getattr(get_ipython().magics_manager.registry.get("AutoreloadMagics"), "_reloader", None)
        if getattr(_reloader, "deduper_reloader", None) is not None:
            _reloader.deduper_reloader.enabled = False
        get_ipython().run_line_magic("matplotlib", "inline")
except Exception as exc:  # autoreload is a convenience: never stop here because of it
    print(f"(autoreload is off: {exc}; restart the kernel after editing nnkit)")

import numpy as np
if GRADING:
    class _Pyplot:
        """The grader draws nothing (plot cells skip themselves): matplotlib, 0.7 s to import with
        pyplot, is imported only if a cell uses `plt` (the kernel already chose the inline backend)."""

        def __getattr__(self, name):
            import matplotlib.pyplot
            return getattr(matplotlib.pyplot, name)

    plt = _Pyplot()
else:
    import matplotlib.pyplot as plt
    plt.rcParams["figure.figsize"] = (10.0, 6.0)

# A harmless warning on stderr would make the grader score a passing check 0.
warnings.filterwarnings("ignore")
np.seterr(all="ignore")

from nnkit import data_utils, vis_utils
from nnkit.gradient_check import eval_numerical_gradient, eval_numerical_gradient_array, rel_error

if not GRADING:  # (nobody reads the grader's bars; this would import tqdm and ipywidgets in every graded kernel)
    vis_utils.use_notebook_progress_bars()  # progress bars that still read well in a saved notebook

# The dataset: the grader's choice (NNKIT_DATASET) always wins; otherwise DATASET from the cell above.
if os.environ.pop("NNKIT_DATASET_FROM_NOTEBOOK", None):  # set by an earlier run of this cell, not by you
    os.environ.pop("NNKIT_DATASET", None)
_chosen = globals().get("DATASET")
if os.environ.get("NNKIT_DATASET"):
    _why = "set by the environment variable NNKIT_DATASET"
elif os.environ.get("NBGRADER_EXECUTION") == "autograde":
    _why = "the grader's default"
elif _chosen:
    if str(_chosen).strip().lower() not in data_utils.DATASETS:
        raise ValueError(f'DATASET = {_chosen!r} in the cell above: choose {{DATASETS}}')
    os.environ["NNKIT_DATASET"], os.environ["NNKIT_DATASET_FROM_NOTEBOOK"] = str(_chosen).strip().lower(), "1"
    _why = "chosen in the cell above"
else:
    _why = "the default: run the cell above to use the DATASET you chose there"
DATASET = data_utils.dataset_name()
if DATASET == "cifar10" and not GRADING:
    _where = data_utils.dataset_dir()
    if not ((_where / data_utils.CIFAR_DIR / "test_batch").is_file()
            or (_where / data_utils.CACHE_DIR / "cifar10.npz").is_file()):
        _fetch = _where / "fetch.py"
        if IN_COLAB:  # datasets/fetch.py downloads and checks CIFAR-10 once, into Drive
            subprocess.run([sys.executable, str(_fetch), "cifar10"], check=True)
        else:
            _fetch = _fetch.relative_to(Path.cwd()) if _fetch.is_relative_to(Path.cwd()) else _fetch
            print(f"CIFAR-10 is not downloaded yet. Download it once (170 MB) with\n"
                  f"    !python {_fetch} cifar10\n"
                  f"in a cell of this notebook (or the same command without the ! in a terminal, in {Path.cwd()}).\n"
                  f'To work offline meanwhile, set DATASET = "embedded" in the cell above and run both cells again.')
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


@contextlib.contextmanager
def explain(error, cause):
    """Inside `with explain(ValueError, "Likely cause: ...")`, an `error` (numpy's own, say) fails the check
    with that cause; any other exception passes unchanged."""
    try:
        yield
    except error as exc:
        raise AssertionError(f"{type(exc).__name__}: {exc}\n  {cause}") from None


def read_thresholds(dataset):
    """The accuracy thresholds of `dataset` in manifest.toml (tomllib; a small reader on Python 3.10)."""
    text = Path("manifest.toml").read_text(encoding="utf-8")
    try:
        import tomllib
        tables = tomllib.loads(text).get("thresholds", {})
    except ModuleNotFoundError:  # Python 3.10: the [thresholds.<name>] tables hold only `key = number`
        tables, section = {}, None
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            if line.startswith("["):
                section = line.strip("[] ")
            elif section and section.startswith("thresholds.") and "=" in line:
                key, value = (s.strip() for s in line.split("=", 1))
                tables.setdefault(section[len("thresholds."):], {})[key] = float(value)
    assert dataset in tables, f"manifest.toml has no accuracy thresholds for the dataset {dataset!r}"
    return tables[dataset]


print(f"nnkit from {sys.path[0]}; dataset {DATASET!r} ({_why}); grading: {GRADING}")
