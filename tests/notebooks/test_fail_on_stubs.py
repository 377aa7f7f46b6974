"""No autograded cell of a source notebook may pass on the stubbed package.

Each notebook runs, as the grader would run an untouched release
(NBGRADER_EXECUTION=autograde, no saved models), against a copy of nnkit whose
solution regions are replaced by ``raise NotImplementedError`` — the stub the
release tool writes. Every autograded cell must then end in an error.
(That they pass on the reference is what the nbval run of source/fcnets shows.)
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[2]
FCNETS = REPO / "source" / "fcnets"
NOTEBOOKS = sorted(p.name for p in FCNETS.glob("[0-9][0-9]_*.ipynb"))
REGION = re.compile(r"^([ \t]*)### BEGIN SOLUTION\n.*?^[ \t]*### END SOLUTION[ \t]*\n", re.M | re.S)


def stub_source(text: str) -> str:
    """Replace every solution region by a raise at the region's indentation."""
    return REGION.sub(lambda m: f'{m.group(1)}raise NotImplementedError("stub: see the TODO above")\n', text)


def test_stub_source_replaces_regions_at_their_indentation():
    src = "def f(x):\n    y = 1\n    ### BEGIN SOLUTION\n    y = x\n    ### END SOLUTION\n    return y\n"
    assert stub_source(src) == 'def f(x):\n    y = 1\n    raise NotImplementedError("stub: see the TODO above")\n    return y\n'


@pytest.fixture(scope="module")
def stub_course(tmp_path_factory):
    """A release-like folder: the notebooks' folder with a stubbed nnkit beside them."""
    root = tmp_path_factory.mktemp("stub_release")
    shutil.copytree(REPO / "source" / "nnkit", root / "nnkit",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for py in (root / "nnkit").rglob("*.py"):
        py.write_text(stub_source(py.read_text(encoding="utf-8")), encoding="utf-8")
    shutil.copy(FCNETS / "manifest.toml", root / "manifest.toml")
    return root


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_no_autograded_cell_passes_on_stubs(name, stub_course, monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    monkeypatch.setenv("NNKIT_DATASET", "embedded")
    monkeypatch.setenv("NNKIT_DATA_DIR", str(REPO / "datasets"))
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    nb = nbformat.read(FCNETS / name, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(stub_course)}}).execute()
    setup = next(c for c in nb.cells if c.get("id") == "setup")
    assert not [o for o in setup.outputs if o.output_type == "error"], "the setup cell must work on the stubs"
    graded = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"]
    assert graded
    passed = [c.metadata["nbgrader"]["grade_id"] for c in graded
              if not any(o.output_type == "error" for o in c.outputs)]
    assert not passed, f"{name}: these autograded cells pass on the stubbed package: {passed}"
