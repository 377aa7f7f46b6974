"""The committed notebooks are exactly what the authoring cell files build.

Someone who edits `source/fcnets/*.ipynb` in Jupyter must carry the change back
into `tests/notebooks/authoring/*.cells` (or the next build silently undoes it);
someone who edits a `.cells` file must rebuild. Either slip fails here.
"""
import importlib.util
from pathlib import Path

import nbformat
import pytest

AUTHORING = Path(__file__).resolve().parent / "authoring"


def _build_module():
    spec = importlib.util.spec_from_file_location("fcnets_authoring_build", AUTHORING / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BUILD = _build_module()


@pytest.mark.parametrize("name", BUILD.NOTEBOOKS)
def test_committed_notebook_equals_a_fresh_build(name):
    committed = (BUILD.OUT / f"{name}.ipynb").read_text(encoding="utf-8")
    fresh = nbformat.writes(BUILD.build(name)) + "\n"
    assert committed == fresh, (
        f"source/fcnets/{name}.ipynb differs from what authoring/{name}.cells builds: "
        "run `.venv/bin/python tests/notebooks/authoring/build.py` (after carrying any notebook edit into the .cells file)"
    )
