"""Shared fixtures for the grading tests: the toy assignment, its nbgrader release, submissions.

The toy assignment (fixtures/toy_repo) mirrors fcnets at a tiny scale so that a
whole class grades in seconds. `make_submission` builds a submission folder from
the release (the untouched student version) plus edits.
"""
from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).parent / "fixtures"
TOY_REPO = FIXTURES / "toy_repo"
TOY_MANIFEST = TOY_REPO / "source" / "toy" / "manifest.toml"
REFERENCE_OPS = (TOY_REPO / "reference" / "nnkit" / "ops.py").read_text()
STUB_OPS = (TOY_REPO / "assignments" / "toy" / "nnkit" / "ops.py").read_text()
# Points in the toy notebook (fixtures/make_toy.py): autograded cells and their points.
TOY_POINTS = {"test_add": 2.0, "test_double": 1.0, "test_scale": 1.0, "test_model": 1.0, "test_noisy": 1.0}
SOLUTION_DOUBLE = "def double(x):\n    return 2 * x\n"


@pytest.fixture(scope="session")
def toy_release(tmp_path_factory) -> Path:
    """The toy release folder made by nbgrader's generate_assignment (notebook + stub package)."""
    from autograder import nbgrader_course as nc

    root = tmp_path_factory.mktemp("toy_course")
    cfg = nc.build_config(root, assignment="toy", exclude_overwriting=["nnkit/ops.py"])
    api = nc.make_api(cfg)
    src = nc.put_source(cfg, "toy", TOY_REPO / "source" / "toy", ["01_toy.ipynb"])
    nc.copy_tree(TOY_REPO / "assignments" / "toy", src)
    return nc.generate_assignment(api, "toy")


def read_nb(path):
    import nbformat

    return nbformat.read(str(path), as_version=4)


def write_nb(nb, path):
    import nbformat

    nbformat.write(nb, str(path))


def cell_by_id(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def make_submission(release: Path, dest: Path, *, ops: str | None = REFERENCE_OPS, double: str | None = SOLUTION_DOUBLE,
                    edit=None, model=True, answer: str | None = "Because twice is nice.") -> Path:
    """A submission folder: the release notebook (optionally solved and edited) and nnkit/ops.py.

    edit : callable(nb) -> None applied to the notebook last (to delete or tamper with cells).
    """
    dest.mkdir(parents=True)
    nb = read_nb(release / "01_toy.ipynb")
    if double is not None:
        cell_by_id(nb, "double_impl").source = double
    if answer is not None:
        cell_by_id(nb, "answer_why").source = answer
    if edit is not None:
        edit(nb)
    write_nb(nb, dest / "01_toy.ipynb")
    (dest / "nnkit").mkdir()
    if ops is not None:
        (dest / "nnkit" / "ops.py").write_text(ops)
    if model:
        (dest / "models").mkdir()
        np.save(dest / "models" / "w.npy", np.array([1.0, 2.0, 3.0]))
    return dest


def zip_folder(folder: Path, zip_path: Path) -> Path:
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(folder).as_posix())
    return zip_path
