"""autograder.grading.repair: grade cells restored from the release by grade_id and nnkit:test tag."""
import copy

import pytest

from autograder.grading.repair import TAG_PREFIX, repair_notebook
from .conftest import cell_by_id, read_nb

GRADED = ["intro", "setup", "double_impl", "test_add", "test_double", "test_scale", "question",
          "answer_why", "test_model", "test_noisy"]  # every release cell with a grade_id, in order


@pytest.fixture
def release_nb(toy_release):
    return read_nb(toy_release / "01_toy.ipynb")


def _ids(nb):
    return [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells if c.metadata.get("nbgrader")]


def _kinds(repairs):
    return sorted((r.grade_id, r.kind) for r in repairs)


def test_untouched_release_needs_no_repair(release_nb):
    fixed, repairs = repair_notebook(release_nb, release_nb, "01_toy.ipynb")
    assert repairs == [] and fixed == release_nb


def test_deleted_grade_cell_after_a_read_only_cell_is_reinserted(release_nb):
    # nbgrader's add_missing_cells crashes exactly here: the cell before test_model is the
    # answer cell and before that a read-only cell.
    sub = copy.deepcopy(release_nb)
    sub.cells = [c for c in sub.cells if c.metadata["nbgrader"]["grade_id"] not in ("test_model", "question")]
    fixed, repairs = repair_notebook(sub, release_nb, "01_toy.ipynb")
    assert _kinds(repairs) == [("question", "missing"), ("test_model", "missing")]
    assert _ids(fixed) == GRADED
    assert cell_by_id(fixed, "test_model").source == cell_by_id(release_nb, "test_model").source
    assert len({c.id for c in fixed.cells}) == len(fixed.cells)


def test_duplicated_grade_cell_keeps_one_copy_and_the_rest_become_plain(release_nb):
    sub = copy.deepcopy(release_nb)
    i = next(k for k, c in enumerate(sub.cells) if c.metadata["nbgrader"]["grade_id"] == "test_add")
    dup = copy.deepcopy(sub.cells[i])
    dup.id = "dupcell"
    dup.source = "print('my experiment')"
    sub.cells.insert(i + 1, dup)
    fixed, repairs = repair_notebook(sub, release_nb, "01_toy.ipynb")
    assert _kinds(repairs) == [("test_add", "duplicate")]
    assert _ids(fixed) == GRADED
    plain = next(c for c in fixed.cells if c.id == "dupcell")
    assert "nbgrader" not in plain.metadata and TAG_PREFIX + "test_add" not in plain.metadata.get("tags", [])


def test_duplicated_answer_cell_keeps_the_last_copy(release_nb):
    sub = copy.deepcopy(release_nb)
    i = next(k for k, c in enumerate(sub.cells) if c.metadata["nbgrader"]["grade_id"] == "answer_why")
    sub.cells[i].source = "first draft"
    second = copy.deepcopy(sub.cells[i])
    second.id, second.source = "second", "final answer"
    sub.cells.insert(i + 1, second)
    fixed, _ = repair_notebook(sub, release_nb, "01_toy.ipynb")
    assert cell_by_id(fixed, "answer_why").source == "final answer"


def test_renamed_grade_id_is_recognised_by_its_tag(release_nb):
    sub = copy.deepcopy(release_nb)
    cell_by_id(sub, "test_scale").metadata["nbgrader"]["grade_id"] = "my_test"
    fixed, repairs = repair_notebook(sub, release_nb, "01_toy.ipynb")
    assert ("test_scale", "renamed") in _kinds(repairs)
    assert _ids(fixed) == GRADED and all(r.suspicious for r in repairs if r.kind == "renamed")


def test_renamed_grade_id_without_tag_becomes_plain_and_the_original_is_reinserted(release_nb):
    sub = copy.deepcopy(release_nb)
    cell = cell_by_id(sub, "test_double")
    cell.metadata["nbgrader"]["grade_id"] = "whatever"
    cell.metadata.pop("tags")
    cell.source = "pass  # edited"
    fixed, repairs = repair_notebook(sub, release_nb, "01_toy.ipynb")
    assert _kinds(repairs) == [("test_double", "missing"), ("whatever", "renamed")]
    assert _ids(fixed) == GRADED


def test_retyped_and_flag_flipped_cells_get_release_type_and_metadata(release_nb):
    sub = copy.deepcopy(release_nb)
    c = cell_by_id(sub, "test_add")
    c.cell_type = "markdown"
    del c["outputs"], c["execution_count"]
    c.metadata["nbgrader"]["solution"] = True  # nbgrader: "Inconsistent checksums" -> whole submission fails
    c.metadata["nbgrader"]["points"] = 100
    fixed, repairs = repair_notebook(sub, release_nb, "01_toy.ipynb")
    assert _kinds(repairs) == [("test_add", "metadata"), ("test_add", "retyped")]
    got = cell_by_id(fixed, "test_add")
    assert got.cell_type == "code" and got.outputs == []
    assert got.metadata["nbgrader"] == cell_by_id(release_nb, "test_add").metadata["nbgrader"]


def test_edited_grade_cell_gets_the_release_source_and_is_suspicious(release_nb):
    sub = copy.deepcopy(release_nb)
    cell_by_id(sub, "test_add").source = "pass"
    fixed, repairs = repair_notebook(sub, release_nb, "01_toy.ipynb")
    assert _kinds(repairs) == [("test_add", "edited")] and repairs[0].suspicious
    assert cell_by_id(fixed, "test_add").source == cell_by_id(release_nb, "test_add").source


def test_stripped_metadata_is_restored_by_tag_or_by_source(release_nb):
    # An editor that drops every unknown metadata key (Colab re-save, some VS Code versions).
    sub = copy.deepcopy(release_nb)
    solution = cell_by_id(sub, "double_impl")
    solution.source = "def double(x):\n    return x + x\n"
    for c in sub.cells:
        keep_tags = c.metadata.get("tags") if c.metadata.get("nbgrader", {}).get("grade_id") == "test_add" else None
        c.metadata = {"tags": keep_tags} if keep_tags else {}
    fixed, repairs = repair_notebook(sub, release_nb, "01_toy.ipynb")
    # Locked cells are found by tag (test_add) or by their unchanged source; the solution
    # cell keeps the student's code as a plain cell and its stub is NOT re-inserted (it
    # would shadow the student's function); the graded answer cell is.
    assert _ids(fixed)[:2] == ["intro", "setup"]
    assert sorted(_ids(fixed)) == sorted(g for g in GRADED if g != "double_impl")
    assert [c.source for c in fixed.cells].count("def double(x):\n    return x + x\n") == 1
    assert not any("NotImplementedError" in c.source for c in fixed.cells)
    kinds = {(r.grade_id, r.kind) for r in repairs}
    assert ("test_add", "metadata") in kinds and ("setup", "metadata") in kinds


def test_colab_resave_without_cell_ids_gets_no_ids_on_inserted_cells(release_nb):
    sub = copy.deepcopy(release_nb)
    sub.nbformat_minor = 0
    for c in sub.cells:
        c.pop("id", None)
    sub.cells = [c for c in sub.cells if c.metadata["nbgrader"]["grade_id"] != "test_noisy"]
    fixed, repairs = repair_notebook(sub, release_nb, "01_toy.ipynb")
    assert _kinds(repairs) == [("test_noisy", "missing")]
    assert all("id" not in c for c in fixed.cells)


def test_the_submission_object_is_not_modified(release_nb):
    sub = copy.deepcopy(release_nb)
    cell_by_id(sub, "test_add").source = "pass"
    before = copy.deepcopy(sub)
    repair_notebook(sub, release_nb, "01_toy.ipynb")
    assert sub == before


def test_locked_cells_from_an_older_release_are_updated_without_suspicion(release_nb):
    # The instructor fixed a test after releasing: students hold the old text.
    older = copy.deepcopy(release_nb)
    cell_by_id(older, "test_double").source = "assert double(3) == 6  # old wording"
    sub = copy.deepcopy(older)
    fixed, repairs = repair_notebook(sub, release_nb, "01_toy.ipynb", older)
    assert [(r.grade_id, r.kind) for r in repairs] == [("test_double", "updated")]
    assert not repairs[0].suspicious
    assert cell_by_id(fixed, "test_double").source == cell_by_id(release_nb, "test_double").source
    # Without the students' release the same text is an edit.
    _, repairs = repair_notebook(sub, release_nb, "01_toy.ipynb")
    assert [(r.grade_id, r.kind) for r in repairs] == [("test_double", "edited")] and repairs[0].suspicious
