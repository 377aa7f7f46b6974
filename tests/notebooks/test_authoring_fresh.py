"""The committed notebooks of every assignment are exactly what its authoring cell files build.

Someone who edits `source/<assignment>/*.ipynb` in Jupyter must carry the change back
into `source/<assignment>/authoring/*.cells` (or the next build silently undoes it);
someone who edits a `.cells` file must rebuild. Either slip fails here.
"""
import pytest

from autograder.manifest import list_assignments
from autograder.release.authoring import authored, stale_notebooks


@pytest.mark.parametrize("assignment", list_assignments())
def test_committed_notebooks_equal_a_fresh_build(assignment):
    if not authored(assignment):
        pytest.skip(f"source/{assignment} has no authoring/ folder: its notebooks are edited directly")
    stale = stale_notebooks(assignment)
    assert not stale, (
        f"source/{assignment}/{', '.join(stale)} differ from what authoring/*.cells builds: run "
        f"`.venv/bin/python -m autograder build-notebooks {assignment}` (after carrying any notebook edit "
        "into the .cells file)")


def test_a_missing_cell_file_is_named(tmp_path):
    from autograder.manifest import load_manifest
    from autograder.release.authoring import AuthoringError, build

    (tmp_path / "source" / "toy").mkdir(parents=True)
    (tmp_path / "source" / "toy" / "manifest.toml").write_text(
        'assignment = "toy"\ntitle = "t"\nnotebooks = ["01_a.ipynb"]\nstudent_modules = []\n'
        'saved_models = []\ndatasets = ["embedded"]\n')
    with pytest.raises(AuthoringError, match=r"authoring/01_a\.cells: no cell file for the notebook 01_a\.ipynb"):
        build(load_manifest("toy", tmp_path), "01_a.ipynb")
