"""Authoring errors name the place and the fix: the notebook, the line of the .ipynb, the cell
(index and grade_id), or file:line of a module; never an nbgrader traceback.

Each test breaks a copy of the mini-source the way an author does by hand and expects the
release to stop before nbgrader runs (gate `notebook`, `strip` or `manifest`), or, for what
only nbgrader knows, with nbgrader's own message and the notebook named (gate `generate`).
"""
from pathlib import Path

import pytest

from .helpers import assert_names, edit_notebook, expect_failure, line_containing, mini_repo

NB = "source/mini/01_ops.ipynb"


def _cell(nb: dict, gid: str) -> dict:
    return next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == gid)


def _set_source(cell: dict, text: str) -> None:
    cell["source"] = text.splitlines(keepends=True)  # nbformat's layout: one JSON string per line


def _edit_source(repo: Path, gid: str, old: str, new: str) -> None:
    def edit(nb):
        cell = _cell(nb, gid)
        src = "".join(cell["source"])
        assert old in src, src
        _set_source(cell, src.replace(old, new))
    edit_notebook(repo / NB, edit)


def _no_traceback(err) -> None:
    text = str(err)
    assert "Traceback" not in text and 'File "' not in text and "NbGraderException" not in text, text


def test_an_unclosed_solution_region_in_a_notebook(tmp_path):
    repo = mini_repo(tmp_path)
    _edit_source(repo, "train", "\n### END SOLUTION", "")
    err = expect_failure(repo)
    assert_names(err, "notebook", NB, line_containing(repo / NB, "### BEGIN SOLUTION"),
                 "cell 2 (grade_id 'train')", "unclosed solution region", "line 3 of the cell",
                 "fix: add '### END SOLUTION' on its own line where the region ends")
    _no_traceback(err)


def test_an_unclosed_hidden_test_region(tmp_path):
    repo = mini_repo(tmp_path)
    _edit_source(repo, "test_add", "### END HIDDEN TESTS", "")
    err = expect_failure(repo)
    assert_names(err, "notebook", NB, line_containing(repo / NB, "### BEGIN HIDDEN TESTS"),
                 "cell 3 (grade_id 'test_add')", "unclosed hidden tests region", "'### END HIDDEN TESTS'")
    _no_traceback(err)


def test_an_end_marker_without_its_begin(tmp_path):
    repo = mini_repo(tmp_path)
    _edit_source(repo, "train", "### BEGIN SOLUTION\n", "")
    err = expect_failure(repo)
    assert_names(err, "notebook", NB, line_containing(repo / NB, "### END SOLUTION"),
                 "cell 2 (grade_id 'train')", "'### END SOLUTION' at line 5 of the cell without a '### BEGIN SOLUTION'")


@pytest.mark.parametrize("typo", ["### BEGIN SOLUTON", "## BEGIN SOLUTION", "### begin solution", "# BEGIN_SOLUTION"])
def test_a_marker_typo_in_a_notebook(tmp_path, typo):
    # nbgrader ignores a misspelt marker: the cell would be replaced whole (a solution cell)
    # or ship its solution (any other cell).
    repo = mini_repo(tmp_path)
    _edit_source(repo, "train", "### BEGIN SOLUTION", typo)
    err = expect_failure(repo)
    assert "looks like a marker but is not one" in str(err) or "is not exactly a marker" in str(err), str(err)
    assert_names(err, "notebook", NB, line_containing(repo / NB, typo), "cell 2 (grade_id 'train')",
                 "fix: write exactly '### BEGIN SOLUTION'")


def test_a_marker_with_other_text_on_its_line(tmp_path):
    repo = mini_repo(tmp_path)
    _edit_source(repo, "train", "### BEGIN SOLUTION", "### BEGIN SOLUTION (the weights)")
    err = expect_failure(repo)
    assert_names(err, "notebook", NB, line_containing(repo / NB, "(the weights)"), "cell 2 (grade_id 'train')",
                 "holds a marker with other text", "write '### BEGIN SOLUTION' alone on its line")


def test_a_marker_typo_in_a_student_module(tmp_path):
    repo = mini_repo(tmp_path)
    ops = repo / "source/nnkit/ops.py"
    ops.write_text(ops.read_text().replace("        ### END SOLUTION\n        return self.n",
                                           "        ### END SOLUTON\n        return self.n"))
    err = expect_failure(repo)
    assert_names(err, "strip", "source/nnkit/ops.py", line_containing(ops, "END SOLUTON"),
                 "looks like a solution marker but is not one", "write exactly '### END SOLUTION'")


def test_a_grade_cell_without_points_when_the_manifest_has_none(tmp_path):
    repo = mini_repo(tmp_path)
    m = repo / "source/mini/manifest.toml"
    m.write_text(m.read_text().split("[points]")[0])
    edit_notebook(repo / NB, lambda nb: _cell(nb, "test_square")["metadata"]["nbgrader"].pop("points"))
    err = expect_failure(repo)
    assert_names(err, "notebook", NB, line_containing(repo / NB, "assert extra.square(3) == 9"),
                 "cell 4 (grade_id 'test_square')", "a grade cell without points, and the manifest's [points] "
                 "gives it none either", '"points": N', "`test_square = N` under [points] in source/mini/manifest.toml")
    _no_traceback(err)


def test_a_grade_cell_without_points_the_manifest_gives(tmp_path):
    repo = mini_repo(tmp_path)
    edit_notebook(repo / NB, lambda nb: _cell(nb, "test_add")["metadata"]["nbgrader"].pop("points"))
    err = expect_failure(repo)
    assert_names(err, "notebook", NB, line_containing(repo / NB, "assert np.allclose(ops.add([1, 2]"),
                 "cell 3 (grade_id 'test_add')", "(the manifest gives 'test_add' 2)", 'set its points to 2 ("points": 2')


def test_a_solution_region_in_a_cell_that_is_not_a_solution_cell(tmp_path):
    repo = mini_repo(tmp_path)
    _edit_source(repo, "setup", "import numpy as np\n", "### BEGIN SOLUTION\nimport numpy as np\n### END SOLUTION\n")
    err = expect_failure(repo)
    assert_names(err, "notebook", NB, line_containing(repo / NB, "### BEGIN SOLUTION"), "cell 1 (grade_id 'setup')",
                 "a solution region in a cell that is not an 'Autograded answer' or a 'Manually graded answer'",
                 '"solution": true')


def test_a_mark_scheme_outside_a_task_cell(tmp_path):
    repo = mini_repo(tmp_path)

    def plant(nb):
        _set_source(nb["cells"][0], "# Mini\n=== BEGIN MARK SCHEME ===\nfull marks for anything\n=== END MARK SCHEME ===\n")
    edit_notebook(repo / NB, plant)
    err = expect_failure(repo)
    assert_names(err, "notebook", NB, line_containing(repo / NB, "=== BEGIN MARK SCHEME ==="),
                 "cell 0 (grade_id 'intro')", "a mark scheme region", "a 'Manually graded task'")


def test_a_grade_id_used_twice(tmp_path):
    repo = mini_repo(tmp_path)

    def twice(nb):
        _cell(nb, "test_model")["metadata"]["nbgrader"]["grade_id"] = "test_square"
    edit_notebook(repo / NB, twice)
    err = expect_failure(repo)
    assert_names(err, "notebook", NB, line_containing(repo / NB, "assert np.load("),
                 "cell 5 (grade_id 'test_square')", "also the grade_id of cell 4")


def test_points_for_a_grade_id_no_cell_has(tmp_path):
    repo = mini_repo(tmp_path)
    m = repo / "source/mini/manifest.toml"
    m.write_text(m.read_text() + "test_gone = 3\n")
    err = expect_failure(repo)
    assert_names(err, "manifest", "source/mini/manifest.toml", line_containing(m, "test_gone"),
                 "no notebook has a graded cell with that grade_id")


def test_a_graded_cell_missing_from_points_names_the_cell(tmp_path):
    repo = mini_repo(tmp_path)
    m = repo / "source/mini/manifest.toml"
    m.write_text(m.read_text().replace("test_square = 1\n", ""))
    err = expect_failure(repo)
    assert_names(err, "manifest", "source/mini/manifest.toml", line_containing(m, "[points]"),
                 "'test_square' (1 points, cell 4 of source/mini/01_ops.ipynb, line "
                 f"{line_containing(repo / NB, 'assert extra.square(3) == 9')})", "add `test_square = 1` under [points]")


def test_a_notebook_that_is_not_json(tmp_path):
    repo = mini_repo(tmp_path)
    nb = repo / NB
    lines = nb.read_text().split("\n")
    lines[20] = lines[20] + " oops"
    nb.write_text("\n".join(lines))
    err = expect_failure(repo)
    assert_names(err, "notebook", NB, 21, "not valid JSON")


def test_what_only_nbgrader_knows_is_named_by_notebook_without_its_traceback(tmp_path):
    repo = mini_repo(tmp_path)

    def plant(nb):
        # A task cell whose mark scheme holds an attachment: the kit's checks pass it, nbgrader refuses.
        cell = _cell(nb, "answer_why")
        cell["metadata"]["nbgrader"].update(task=True, grade=False, solution=False)
        _set_source(cell, "Why?\n=== BEGIN MARK SCHEME ===\n![x](attachment:a.png)\n=== END MARK SCHEME ===\n")
    edit_notebook(repo / NB, plant)
    m = repo / "source/mini/manifest.toml"
    m.write_text(m.read_text().replace("answer_why = 1\n", ""))
    err = expect_failure(repo)
    assert_names(err, "generate", NB, 1, "nbgrader's generate_assignment refused this notebook",
                 "RuntimeError: Encountered an attachment in a marking scheme")
    _no_traceback(err)
