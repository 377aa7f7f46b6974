"""The assignment's registration in the real gradebook, which a run does beside its first submissions,
and the absolute folders it and the template are built from."""
from __future__ import annotations

import os

import pytest

from autograder.grading.gradebook import Registration, RegistrationError
from autograder.grading.pool import worker_context
from autograder.grading.template import locate

from .conftest import TOY_MANIFEST, TOY_REPO


def _contents(db_url: str) -> dict:
    """What nbgrader's generate_assignment wrote: per notebook, its grade cells (name, type,
    points) and its source cells (name, checksum)."""
    from nbgrader.api import Gradebook

    with Gradebook(db_url, "nnkit") as gb:
        return {nb.name: (sorted((c.name, c.cell_type, float(c.max_score)) for c in nb.grade_cells),
                          sorted((c.name, c.checksum) for c in nb.source_cells))
                for nb in gb.find_assignment("toy").notebooks}


def test_locate_returns_absolute_folders_whatever_the_working_folder(monkeypatch):
    # nbgrader's converters chdir into their course folder while other threads of a run read these.
    monkeypatch.chdir(TOY_REPO)
    a = locate(os.path.relpath(TOY_MANIFEST, TOY_REPO), release_dir="assignments/toy")
    assert a.source_dir.is_absolute() and a.release_dir.is_absolute()
    assert a.source_dir == TOY_MANIFEST.parent.resolve()
    assert a.release_dir == (TOY_REPO / "assignments" / "toy").resolve()


def test_a_registration_in_a_worker_server_process_writes_what_one_here_writes(tmp_path):
    a = locate(TOY_MANIFEST)
    here, there = f"sqlite:///{tmp_path / 'here.db'}", f"sqlite:///{tmp_path / 'there.db'}"
    cwd = os.getcwd()
    away = Registration(a, there, tmp_path / "there", worker_context())
    Registration(a, here, tmp_path / "here").wait()
    away.wait()
    away.wait()  # a second wait returns at once (every commit of a run calls it)
    assert os.getcwd() == cwd
    got = _contents(there)
    assert got == _contents(here)
    grade_cells, source_cells = got["01_toy"]
    assert ("test_add", "code", 2.0) in grade_cells and len(source_cells) >= len(grade_cells)


@pytest.mark.parametrize("ctx", [None, "worker server"])
def test_a_registration_that_fails_says_why(tmp_path, ctx):
    a = locate(TOY_MANIFEST)
    bad = "sqlite:////proc/nnkit-no-such-folder/gradebook.db"  # nobody can create a file there

    def register():
        r = Registration(a, bad, tmp_path / "reg", worker_context() if ctx else None)
        r.wait()

    with pytest.raises(RegistrationError) as got:
        register()
    assert "could not be registered in the gradebook" in str(got.value)
    assert "unable to open database file" in str(got.value)
