"""Structural checks of every assignment's source notebooks (no kernel is started).

They hold what the release, the grader and CI rely on: the graded cells and the
manifest's [points] are the same set, each grade id exactly once, with the manifest's
points; locked, tagged grade cells that assert; clean notebooks; valid nbgrader
metadata; well-formed nbval markers.

No grade id is written here: the manifest lists the notebooks and the points of every
graded cell, and a cell's type says who grades it (code: nbgrader, markdown: a TA), so
adding a graded cell needs only the cell, its line under [points] and its trusted spec
(README, "Changing the assignment").
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbgrader.nbgraderformat import MetadataValidator

from autograder.manifest import list_assignments, load_manifest

REPO = Path(__file__).resolve().parents[2]
ASSIGNMENTS = list_assignments()


def _nbgrader(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def _load(assignment: str, name: str):
    path = REPO / "source" / assignment / name
    if not path.is_file():
        pytest.fail(f"{path} is missing: every notebook of the manifest must exist")
    return nbformat.read(path, as_version=4)


def _graded_ids(assignment: str, name: str) -> tuple[list[str], list[str]]:
    """(autograded ids, manually graded ids) of a notebook, in cell order."""
    path = REPO / "source" / assignment / name
    if not path.is_file():
        return [], []
    cells = [c for c in nbformat.read(path, as_version=4).cells if _nbgrader(c).get("grade")]
    return ([_nbgrader(c)["grade_id"] for c in cells if c.cell_type == "code"],
            [_nbgrader(c)["grade_id"] for c in cells if c.cell_type == "markdown"])


#: assignment -> notebook -> (autograded ids, manual ids), read from the manifests' notebooks:
#: what the tests below check against the manifests' [points] (never a list written by hand).
CONTRACTS = {a: {name: _graded_ids(a, name) for name in load_manifest(a).notebooks} for a in ASSIGNMENTS}


@pytest.fixture(scope="module", params=ASSIGNMENTS)
def manifest(request):
    return load_manifest(request.param)


@pytest.fixture(scope="module", params=[(a, n) for a in ASSIGNMENTS for n in load_manifest(a).notebooks],
                ids=lambda p: f"{p[0]}/{p[1]}")
def notebook(request):
    """(shown name "assignment/notebook", the notebook, its assignment's manifest)."""
    assignment, name = request.param
    return f"{assignment}/{name}", _load(assignment, name), load_manifest(assignment)


def test_manifest_lists_existing_notebooks_in_order(manifest):
    folder = manifest.path.parent
    for name in manifest.notebooks:
        assert (folder / name).is_file(), f"the manifest lists {name}, but {folder / name} does not exist"
    assert list(manifest.notebooks) == sorted(manifest.notebooks), "notebooks are listed in the order students work"
    stray = sorted(p.name for p in folder.glob("*.ipynb") if p.name not in manifest.notebooks)
    assert not stray, f"{folder} holds notebooks the manifest does not list: {stray}"


def test_manifest_points_cover_exactly_the_graded_cells(manifest):
    contract = CONTRACTS[manifest.assignment]
    ids = [i for auto, manual in contract.values() for i in auto + manual]
    assert sorted(set(manifest.points)) == sorted(set(ids)), (
        f"manifest [points] differs from the notebooks' graded cells: cells without points "
        f"{sorted(set(ids) - set(manifest.points))}, points without a cell {sorted(set(manifest.points) - set(ids))}")
    assert all(p > 0 for p in manifest.points.values())
    assert any(auto for auto, _ in contract.values()), "no autograded cell at all"


def test_grade_ids_appear_once_with_manifest_points(notebook):
    name, nb, manifest = notebook
    graded = [c for c in nb.cells if _nbgrader(c).get("grade")]
    ids = [_nbgrader(c)["grade_id"] for c in graded]
    assert len(ids) == len(set(ids)), f"{name}: a grade id twice in {ids}"
    for cell in graded:
        meta = _nbgrader(cell)
        assert meta["grade_id"] in manifest.points, f"{name}: {meta['grade_id']} is not under [points] in the manifest"
        assert meta["points"] == manifest.points[meta["grade_id"]], (
            f"{name}: {meta['grade_id']} has {meta['points']} points, the manifest says "
            f"{manifest.points[meta['grade_id']]}")
    # No grade id may appear in another notebook too ([points] and the trusted checks key on it).
    for other, (o_auto, o_manual) in CONTRACTS[manifest.assignment].items():
        if f"{manifest.assignment}/{other}" != name:
            assert not set(ids) & set(o_auto + o_manual), f"{name} holds grade ids of {other}"


def test_autograded_cells_are_locked_tagged_and_assert(notebook):
    name, nb, manifest = notebook
    for cell in nb.cells:
        meta = _nbgrader(cell)
        if not meta.get("grade") or meta.get("solution"):
            continue
        gid = meta["grade_id"]
        assert gid in manifest.points, f"{name}: autograded cell {gid} is not under [points] in the manifest"
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
    """A TA grades exactly the markdown grade cells: written answers the student edits."""
    name, nb, manifest = notebook
    for cell in nb.cells:
        meta = _nbgrader(cell)
        if meta.get("grade") and (cell.cell_type == "markdown" or meta.get("solution")):
            assert cell.cell_type == "markdown", f"{name}: {meta['grade_id']}: a graded solution cell must be markdown"
            assert meta["grade"] and meta["solution"] and not meta["locked"], f"{name}: {meta['grade_id']} metadata {meta}"


def test_notebook_is_clean_valid_and_has_stable_ids(notebook):
    name, nb, manifest = notebook
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
    name, nb, manifest = notebook
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].id == "colab_config" and code[1].id == "setup"
    assert _nbgrader(code[1]) == {"grade": False, "grade_id": "setup", "locked": True,
                                  "schema_version": 3, "solution": False, "task": False}
    src = code[1].source
    for needed in ('warnings.filterwarnings("ignore")', 'np.seterr(all="ignore")', 'sys.modules["imp"]',
                   '"autoreload"', "deduper_reloader", "NBGRADER_EXECUTION", "fetch.py", "google.colab",
                   "def read_thresholds", "use_notebook_progress_bars"):
        assert needed in src, f"{name}: setup cell lacks {needed}"
    # The one place a student chooses the dataset: the first code cell, one of the manifest's.
    chosen = re.search(r'^DATASET = "(\w+)"$', code[0].source, re.M)
    assert chosen and chosen.group(1) in manifest.datasets, f"{name}: the first code cell must set DATASET"


def test_every_check_cell_says_to_run_the_setup_first(notebook):
    """A check run before the setup cell says so, instead of a bare NameError."""
    name, nb, manifest = notebook
    for cell in nb.cells:
        meta = _nbgrader(cell)
        if meta.get("grade") and cell.cell_type == "code":
            first = cell.source.splitlines()[0]
            assert first.startswith('assert "check_close" in globals()'), f"{name}: {cell.id} starts with {first!r}"


def test_solution_regions_only_in_solution_cells(notebook):
    name, nb, manifest = notebook
    for cell in nb.cells:
        src = cell.source
        if "### BEGIN SOLUTION" in src or "### END SOLUTION" in src:
            assert _nbgrader(cell).get("solution"), f"{name}: solution region in non-solution cell {cell.id}"
            assert src.count("### BEGIN SOLUTION") == src.count("### END SOLUTION")
        if "HIDDEN TESTS" in src:
            meta = _nbgrader(cell)
            assert meta.get("grade") and not meta.get("solution"), f"{name}: hidden tests outside a grade cell"


def test_accuracy_cells_read_thresholds_from_the_manifest(notebook):
    """An accuracy check (a grade cell that evaluates a saved model of the manifest, or reads a
    threshold) does both."""
    name, nb, manifest = notebook
    saved = [Path(m).name for m in manifest.saved_models]
    for cell in nb.cells:
        src = cell.source
        evaluates = "load_model(" in src and any(s in src for s in saved)
        if _nbgrader(cell).get("grade") and (evaluates or "read_thresholds(" in src):
            assert "read_thresholds(data_utils.dataset_name())" in src, (
                f"{name}: {cell.id} must read its threshold from manifest.toml for the dataset in use")
            assert "import tomllib" not in src, f"{name}: {cell.id} imports tomllib, which Python 3.10 lacks"
            assert "load_model(" in src, f"{name}: {cell.id} must evaluate the saved model file"


def test_nbval_markers_are_bare(notebook):
    name, nb, manifest = notebook
    for cell in nb.cells:
        for line in cell.source.splitlines():
            if "NBVAL_" in line:
                assert re.fullmatch(r"\s*#\s*NBVAL_(CHECK_OUTPUT|IGNORE_OUTPUT|SKIP|RAISES_EXCEPTION)\s*", line), (
                    f"{name}: nbval ignores a marker with other text on its line: {line!r}")


#: Non-graded cells that train during grading on purpose: a grade cell below checks what they train.
TRAINED_FOR_A_CHECK = {"linear_final"}


def test_expensive_cells_skip_during_grading(notebook):
    """Training and searches run only outside nbgrader (their cells test GRADING first)."""
    name, nb, manifest = notebook
    for cell in nb.cells:
        src = cell.source
        # A grade cell must run under nbgrader (it is the test), and so must the cell that
        # trains what a grade cell then checks.
        if ".train()" in src and not _nbgrader(cell).get("grade") and _nbgrader(cell).get("grade_id") not in \
                TRAINED_FOR_A_CHECK:
            assert "GRADING" in src, f"{name}: cell {cell.id} trains but does not skip itself during grading"


def test_release_version_of_every_cell_compiles(notebook):
    """After nbgrader's own ClearSolutions and ClearHiddenTests, every code cell is valid Python
    and no solution or hidden-test text is left."""
    from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions

    name, original, manifest = notebook
    nb = nbformat.from_dict(original)
    resources = {}
    nb, resources = ClearSolutions().preprocess(nb, resources)
    nb, resources = ClearHiddenTests().preprocess(nb, resources)
    for cell in nb.cells:
        assert "BEGIN SOLUTION" not in cell.source and "HIDDEN TESTS" not in cell.source
        if cell.cell_type == "code":
            compile(cell.source, f"{name}:{cell.id}", "exec")
    stubs = [c.id for c in nb.cells if "raise NotImplementedError()" in c.source]
    solution_code = [c.id for c in original.cells if c.cell_type == "code" and _nbgrader(c).get("solution")]
    assert bool(stubs) == bool(solution_code), f"{name}: solution cells {solution_code}, stubbed {stubs}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_everything_the_trusted_checks_grade_is_asked_for_and_visibly_checked(assignment):
    """Issue 15, point 1: each function, class and option a trusted check calls for a grade id
    is named in the VISIBLE part of that grade id's check cell (and so in the notebook's text):
    no hidden requirement."""
    from autograder.trusted.spec import load_spec

    spec = load_spec(assignment)
    if spec is None:
        pytest.skip(f"{assignment} has no trusted checks")
    calls, checks = spec.build_plan(0)
    by_call = {c.id: c for c in calls}
    visible = {}
    for name in CONTRACTS[assignment]:
        for cell in _load(assignment, name).cells:
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


def test_the_trusted_checks_cover_every_autograded_cell(manifest):
    """Every autograded point of the kit's assignments comes from outside the student's kernel:
    a cell no trusted check covers could be faked (README, "Security model")."""
    from autograder.trusted import covered_grade_ids

    auto = {i for a, _ in CONTRACTS[manifest.assignment].values() for i in a}
    covered = covered_grade_ids(manifest.assignment)
    assert covered == auto, (
        f"{manifest.assignment}: autograded cells no trusted check covers {sorted(auto - covered)}, "
        f"trusted grade ids with no autograded cell {sorted(covered - auto)}; write them in "
        f"source/{manifest.assignment}/trusted_checks.py")


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_everything_the_trusted_checks_grade_is_a_function_students_write(assignment):
    """A trusted check grades only what the manifest's [package] has students write: a point
    lost for a provided or unshipped function would be a point the student could not earn."""
    from autograder.trusted.spec import load_spec

    spec = load_spec(assignment)
    if spec is None:
        pytest.skip(f"{assignment} has no trusted checks")
    from autograder.trusted.reference import reference_module

    manifest = load_manifest(assignment)
    calls, checks = spec.build_plan(0)
    by_call = {c.id: c for c in calls}
    outside = set()
    for check in checks:
        params = by_call[check.call].params
        module = params.get("module")
        if not module:
            continue
        written = manifest.student_functions("nnkit/" + module.replace(".", "/") + ".py")
        if params.get("fn") and params["fn"] not in written:
            outside.add((check.grade_id, f"{module}.{params['fn']}"))
        if params.get("cls"):  # a class: students write one of its methods (or of a base class's)
            owners = [c.__name__ for c in getattr(reference_module(module), params["cls"]).__mro__]
            if not any(f.split(".")[0] in owners for f in written if "." in f):
                outside.add((check.grade_id, f"{module}.{params['cls']}"))
    assert not outside, f"{assignment}: graded, but not a function [package] has students write: {sorted(outside)}"
