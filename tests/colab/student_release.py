"""The student's release, built from the current source, for the browser and Colab-like tests.

``release_copy(dest)`` copies a release of fcnets made by the real release tool
(``autograder.release.build.build_release``, every gate but the self-grade) from the current
source. The build is cached in ``build/student-release/<digest>/`` (the digest covers
every file the release is made from), so the tests of one run, and the next runs, build
it once (about 30 s).

``fill_in(folder)`` puts the reference's solution cells (and written answers) into the
release notebooks of ``folder`` — what a diligent student hands in (as
tests/trusted/mutation_kit.py's ``completed_notebook`` does for the committed release);
``use_reference(folder, modules)`` replaces stubbed modules by the reference's.

Nothing here imports nnkit.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "source"
CACHE = REPO / "build" / "student-release"
_INPUTS = ("source", "autograder", "datasets/fetch.py", "datasets/embedded")
_MARKER = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n?", re.M)


def _digest() -> str:
    h = hashlib.sha256()
    for top in _INPUTS:
        root = REPO / top
        paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for p in paths:
            rel = p.relative_to(REPO).as_posix()
            if "__pycache__" in rel or rel.endswith(".pyc") or "/models/" in rel or "/cache/" in rel:
                continue
            h.update(rel.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def built_release() -> Path:
    """The cached release folder (``.../fcnets``), built now if the source changed."""
    target = CACHE / _digest() / "fcnets"
    if (target / "manifest.toml").is_file():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time; the others wait and reuse it
        if not (target / "manifest.toml").is_file():
            import sys

            if str(REPO) not in sys.path:
                sys.path.insert(0, str(REPO))
            from autograder.release.build import build_release

            for old in CACHE.iterdir():  # keep only the newest build
                if old.is_dir() and old != target.parent:
                    shutil.rmtree(old, ignore_errors=True)
            build_release("fcnets", output=target, self_grade_gate=False)
    return target


def release_copy(dest: Path) -> Path:
    """A fresh copy of the release at ``dest`` (created); returns ``dest``."""
    shutil.copytree(built_release(), dest, ignore=shutil.ignore_patterns("models", "cache", "__pycache__"))
    return Path(dest)


def _answers(name: str) -> dict[str, str]:
    source = json.loads((SOURCE / "fcnets" / name).read_text(encoding="utf-8"))
    answers = {}
    for cell in source["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution") and meta.get("grade_id"):
            answers[meta["grade_id"]] = _MARKER.sub("", "".join(cell["source"]))
    return answers


def fill_in(folder: Path, names=None) -> None:
    """Fill the solution cells of the release notebooks in ``folder`` with the reference's."""
    folder = Path(folder)
    for path in sorted(folder.glob("[0-9][0-9]_*.ipynb")):
        if names is not None and path.name not in names:
            continue
        nb = json.loads(path.read_text(encoding="utf-8"))
        answers = _answers(path.name)
        for cell in nb["cells"]:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if meta.get("solution") and meta.get("grade_id") in answers:
                cell["source"] = answers[meta["grade_id"]].splitlines(keepends=True)
        path.write_text(json.dumps(nb, indent=1) + "\n", encoding="utf-8")


def set_first_cell(path: Path, **values) -> None:
    """Set variables of a notebook's first code cell (``DATASET="embedded"``, ...)."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    cell = next(c for c in nb["cells"] if c["cell_type"] == "code")
    src = "".join(cell["source"])
    for key, value in values.items():
        src, n = re.subn(rf"^{key} = .*$", f"{key} = {value!r}", src, flags=re.M)
        assert n == 1, f"{path.name}: no `{key} = ...` line in the first code cell"
    cell["source"] = src.splitlines(keepends=True)
    path.write_text(json.dumps(nb, indent=1) + "\n", encoding="utf-8")


def reference_text(module: str) -> str:
    """The reference module ``nnkit/<module>`` with its solution markers removed."""
    return _MARKER.sub("", (SOURCE / "nnkit" / module).read_text(encoding="utf-8"))


def use_reference(folder: Path, modules) -> None:
    """Write the reference version of each ``modules`` entry (e.g. "layers.py") into ``folder/nnkit``."""
    for module in modules:
        target = Path(folder) / "nnkit" / module
        target.write_text(reference_text(module), encoding="utf-8")
        # A new mtime even within the same second, so that %autoreload sees the edit.
        st = target.stat()
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


def function_of(text: str, name: str) -> str:
    """The source of top-level function ``name`` in module text ``text`` (up to the next def/class)."""
    m = re.search(rf"^def {name}\(.*?(?=^def |^class |^# -{{10}}|\Z)", text, re.M | re.S)
    assert m, f"no function {name}"
    return m.group(0)


def with_function(module_text: str, name: str, new_function: str) -> str:
    """``module_text`` with top-level function ``name`` replaced by ``new_function``."""
    old = function_of(module_text, name)
    return module_text.replace(old, new_function if new_function.endswith("\n\n\n") else new_function.rstrip("\n") + "\n\n\n", 1)


STUDENT_MODULES = ("layers.py", "layer_utils.py", "classifiers/fc_net.py", "classifiers/linear.py",
                   "optim.py", "solver.py")


def find_python(version: str):
    """A working interpreter of `version` ("3.10"): pyenv's versions first, then PATH."""
    candidates = sorted(Path(os.environ.get("PYENV_ROOT", "/root/.pyenv"), "versions").glob(f"{version}.*/bin/python3"))
    candidates += [Path(p) for p in [shutil.which(f"python{version}")] if p]
    for exe in candidates:
        try:
            out = subprocess.run([str(exe), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                 capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            continue
        if out == version:
            return str(exe)
    return None
