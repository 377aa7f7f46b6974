"""Structural checks of the fcnets source notebooks (no kernel is started).

They hold what the release, the grader and CI rely on: the contract's grade ids,
each exactly once, with the manifest's points; locked, tagged grade cells that
assert; clean notebooks; valid nbgrader metadata; well-formed nbval markers.
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbgrader.nbgraderformat import MetadataValidator

from autograder.manifest import load_manifest

REPO = Path(__file__).resolve().parents[2]
FCNETS = REPO / "source" / "fcnets"

# The contract (/work/briefs/contracts.md, "Grade ids"): notebook -> (autograded ids, manual ids).
CONTRACT = {
    "01_layers.ipynb": (
        ["test_affine_forward", "test_affine_backward", "test_relu", "test_sigmoid", "test_leaky_relu",
         "test_sandwich_layers", "test_svm_loss", "test_softmax_loss"],
        ["answer_activations"]),
    "02_two_layer_net.ipynb": (
        ["test_two_layer_init", "test_two_layer_loss", "test_two_layer_gradcheck", "test_solver",
         "test_two_layer_accuracy"],
        ["answer_train_test_gap"]),
    "03_features.ipynb": (
        ["test_linear_svm_loss", "test_linear_softmax_loss", "test_linear_classifier", "test_features_accuracy"],
        ["answer_misclassifications"]),
    "04_fully_connected_nets.ipynb": (
        ["test_fc_init_loss", "test_fc_gradcheck", "test_fc_overfit", "test_sgd_momentum", "test_rmsprop",
         "test_adam", "test_fc_accuracy"],
        ["answer_initialisation", "answer_adagrad"]),
}
ACCURACY_IDS = {"test_two_layer_accuracy", "test_features_accuracy", "test_fc_accuracy"}


def _nbgrader(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def _load(name: str):
    path = FCNETS / name
    if not path.is_file():
        pytest.fail(f"{path} is missing: every notebook of the manifest must exist")
    return nbformat.read(path, as_version=4)


@pytest.fixture(scope="module")
def manifest():
    return load_manifest("fcnets")


@pytest.fixture(scope="module", params=sorted(CONTRACT))
def notebook(request):
    return request.param, _load(request.param)


def test_manifest_lists_the_contract_notebooks(manifest):
    assert list(manifest.notebooks) == sorted(CONTRACT)


def test_manifest_points_cover_exactly_the_contract_ids(manifest):
    ids = {i for auto, manual in CONTRACT.values() for i in auto + manual}
    assert set(manifest.points) == ids, (
        f"manifest [points] differs from the contract: missing {sorted(ids - set(manifest.points))}, "
        f"extra {sorted(set(manifest.points) - ids)}")
    assert all(p > 0 for p in manifest.points.values())


def test_grade_ids_appear_once_with_manifest_points(notebook, manifest):
    name, nb = notebook
    auto, manual = CONTRACT[name]
    graded = [c for c in nb.cells if _nbgrader(c).get("grade")]
    ids = [_nbgrader(c)["grade_id"] for c in graded]
    assert sorted(ids) == sorted(auto + manual), f"{name}: graded ids {ids}, contract {auto + manual}"
    for cell in graded:
        meta = _nbgrader(cell)
        assert meta["points"] == manifest.points[meta["grade_id"]], (
            f"{name}: {meta['grade_id']} has {meta['points']} points, the manifest says "
            f"{manifest.points[meta['grade_id']]}")
    # No contract id may hide in another notebook either.
    for other, (o_auto, o_manual) in CONTRACT.items():
        if other != name:
            assert not set(ids) & set(o_auto + o_manual), f"{name} holds grade ids of {other}"


def test_autograded_cells_are_locked_tagged_and_assert(notebook):
    name, nb = notebook
    auto, _ = CONTRACT[name]
    for cell in nb.cells:
        meta = _nbgrader(cell)
        if not meta.get("grade") or meta.get("solution"):
            continue
        gid = meta["grade_id"]
        assert gid in auto, f"{name}: autograded cell {gid} is not in the contract"
        assert cell.cell_type == "code"
        assert meta == {"grade": True, "grade_id": gid, "locked": True, "points": meta["points"],
                        "schema_version": 3, "solution": False, "task": False}, f"{name}: {gid} metadata {meta}"
        assert f"nnkit:test:{gid}" in cell.metadata.get("tags", []), f"{name}: {gid} lacks its tag"
        src = cell.source
        assert re.search(r"^\s*(assert |check_close\()", src, re.M), f"{name}: {gid} never asserts"
        assert src.count("### BEGIN HIDDEN TESTS") == 1 and src.count("### END HIDDEN TESTS") == 1, (
            f"{name}: {gid} needs exactly one hidden-test region")
        assert src.index("### BEGIN HIDDEN TESTS") < src.index("### END HIDDEN TESTS")
        visible = src.split("### BEGIN HIDDEN TESTS")[0]
        assert re.search(r"^\s*(assert |check_close\()", visible, re.M), (
            f"{name}: {gid} asserts only in its hidden tests: students would see a check that never fails")
        assert "BEGIN SOLUTION" not in src


def test_manual_answers_are_markdown_solution_grade_cells(notebook):
    name, nb = notebook
    _, manual = CONTRACT[name]
    cells = {_nbgrader(c).get("grade_id"): c for c in nb.cells}
    for gid in manual:
        cell = cells[gid]
        meta = _nbgrader(cell)
        assert cell.cell_type == "markdown"
        assert meta["grade"] and meta["solution"] and not meta["locked"]


def test_notebook_is_clean_valid_and_has_stable_ids(notebook):
    name, nb = notebook
    assert (nb.nbformat, nb.nbformat_minor) == (4, 5)
    nbformat.validate(nb)
    MetadataValidator().validate_nb(nb)  # nbgrader's own rules (grade ids, points, markdown cells)
    ids = [c.get("id") for c in nb.cells]
    assert all(ids) and len(set(ids)) == len(ids), f"{name}: cell ids missing or repeated"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, (
                f"{name}: cell {cell.id} has outputs; commit notebooks cleared")


def test_setup_cell_is_first_code_cell_after_colab_config_and_locked(notebook):
    name, nb = notebook
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].id == "colab_config" and code[1].id == "setup"
    assert _nbgrader(code[1]) == {"grade": False, "grade_id": "setup", "locked": True,
                                  "schema_version": 3, "solution": False, "task": False}
    src = code[1].source
    for needed in ('warnings.filterwarnings("ignore")', 'np.seterr(all="ignore")', 'sys.modules["imp"]',
                   '"autoreload"', "deduper_reloader", "NBGRADER_EXECUTION", "fetch.py", "google.colab",
                   "def read_thresholds", "use_notebook_progress_bars"):
        assert needed in src, f"{name}: setup cell lacks {needed}"
    # The one place a student chooses the dataset: the first code cell.
    assert re.search(r'^DATASET = "cifar10"$', code[0].source, re.M), f"{name}: the first code cell must set DATASET"


def test_every_check_cell_says_to_run_the_setup_first(notebook):
    """A check run before the setup cell says so, instead of a bare NameError."""
    name, nb = notebook
    for cell in nb.cells:
        meta = _nbgrader(cell)
        if meta.get("grade") and cell.cell_type == "code":
            first = cell.source.splitlines()[0]
            assert first.startswith('assert "check_close" in globals()'), f"{name}: {cell.id} starts with {first!r}"


def test_solution_regions_only_in_solution_cells(notebook):
    name, nb = notebook
    for cell in nb.cells:
        src = cell.source
        if "### BEGIN SOLUTION" in src or "### END SOLUTION" in src:
            assert _nbgrader(cell).get("solution"), f"{name}: solution region in non-solution cell {cell.id}"
            assert src.count("### BEGIN SOLUTION") == src.count("### END SOLUTION")
        if "HIDDEN TESTS" in src:
            meta = _nbgrader(cell)
            assert meta.get("grade") and not meta.get("solution"), f"{name}: hidden tests outside a grade cell"


def test_accuracy_cells_read_thresholds_from_the_manifest(notebook):
    name, nb = notebook
    for cell in nb.cells:
        if _nbgrader(cell).get("grade_id") in ACCURACY_IDS:
            src = cell.source
            assert "read_thresholds(data_utils.dataset_name())" in src, (
                f"{name}: {cell.id} must read its threshold from manifest.toml for the dataset in use")
            assert "import tomllib" not in src, f"{name}: {cell.id} imports tomllib, which Python 3.10 lacks"
            assert "load_model(" in src, f"{name}: {cell.id} must evaluate the saved model file"


def test_nbval_markers_are_bare(notebook):
    name, nb = notebook
    for cell in nb.cells:
        for line in cell.source.splitlines():
            if "NBVAL_" in line:
                assert re.fullmatch(r"\s*#\s*NBVAL_(CHECK_OUTPUT|IGNORE_OUTPUT|SKIP|RAISES_EXCEPTION)\s*", line), (
                    f"{name}: nbval ignores a marker with other text on its line: {line!r}")


def test_expensive_cells_skip_during_grading(notebook):
    """Training and searches run only outside nbgrader (their cells test GRADING first)."""
    name, nb = notebook
    for cell in nb.cells:
        src = cell.source
        if ".train()" in src and _nbgrader(cell).get("grade_id") not in {
                "test_solver", "test_fc_overfit", "test_linear_classifier", "test_features_accuracy",
                "linear_final"}:
            assert "GRADING" in src, f"{name}: cell {cell.id} trains but does not skip itself during grading"


def test_release_version_of_every_cell_compiles(notebook):
    """After nbgrader's own ClearSolutions and ClearHiddenTests, every code cell is valid Python
    and no solution or hidden-test text is left."""
    from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions

    name, nb = notebook
    nb = nbformat.from_dict(nb)
    resources = {}
    nb, resources = ClearSolutions().preprocess(nb, resources)
    nb, resources = ClearHiddenTests().preprocess(nb, resources)
    for cell in nb.cells:
        assert "BEGIN SOLUTION" not in cell.source and "HIDDEN TESTS" not in cell.source
        if cell.cell_type == "code":
            compile(cell.source, f"{name}:{cell.id}", "exec")
    stubs = [c.id for c in nb.cells if "raise NotImplementedError()" in c.source]
    assert stubs or name == "01_layers.ipynb", f"{name}: no solution cell was stubbed"


def test_everything_the_trusted_checks_grade_is_asked_for_and_visibly_checked():
    """Issue 15, point 1: each function, class and option a trusted check calls for a grade id
    is named in the VISIBLE part of that grade id's check cell (and so in the notebook's text):
    no hidden requirement."""
    from autograder.trusted.checks import build_plan

    calls, checks = build_plan(0)
    by_call = {c.id: c for c in calls}
    visible = {}
    for name in CONTRACT:
        for cell in _load(name).cells:
            gid = _nbgrader(cell).get("grade_id")
            if _nbgrader(cell).get("grade") and cell.cell_type == "code":
                visible[gid] = cell.source.split("### BEGIN HIDDEN TESTS")[0]
    missing = set()
    for check in checks:
        params = by_call[check.call].params
        names = [params.get(k) for k in ("fn", "cls") if params.get(k)]
        if params.get("backward") and "backward" in check.id:  # the forward pass is graded elsewhere
            names = [params["backward"]]
        names += [k for k in params.get("kwargs") or {} if k in ("dropout_keep_ratio", "alpha")]
        if by_call[check.call].procedure == "solver":
            names.append("Solver(")
        for n in names:
            if n not in visible.get(check.grade_id, ""):
                missing.add((check.grade_id, n))
    assert not missing, f"graded by the trusted checks but not visibly checked in that cell: {sorted(missing)}"
