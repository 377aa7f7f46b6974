"""Every gate fails closed: a leak planted in a copy of the mini-source stops the release
with a message naming the gate, the file and the line, and the old release is untouched."""
import json
import shutil
from pathlib import Path

import pytest

from autograder.release.build import build_release
from autograder.release.plan import plan_release
from autograder.release.selfgrade import open_course, run_reference, self_grade
from autograder.release.shared import ReleaseError
from autograder.release.stage import stage
from autograder.release.gates import GateFailure, SourceLines, check_hidden_files, check_markers

from .helpers import edit_notebook, grade_cell, line_containing, mini_repo

OLD = "an old release that must survive a failed build\n"


def fail(repo: Path, tamper=None, **kw) -> ReleaseError:
    """Build the mini release expecting a ReleaseError; check nothing changed on disk."""
    out = repo / "assignments" / "mini"
    out.mkdir(parents=True, exist_ok=True)
    (out / "OLD.txt").write_text(OLD)
    with pytest.raises(ReleaseError) as info:
        build_release("mini", root=repo, output=out, tamper=tamper, **kw)
    assert sorted(p.name for p in out.iterdir()) == ["OLD.txt"] and (out / "OLD.txt").read_text() == OLD
    assert sorted(p.name for p in out.parent.iterdir()) == ["mini"]  # no staging folder left behind
    return info.value


def assert_names(err: ReleaseError, gate: str, path: str, line: int, *words: str) -> None:
    text = str(err)
    assert err.gate == gate and err.path == path and err.line == line, text
    assert text.startswith(f"gate {gate} failed: {path}:{line}: "), text
    for w in words:
        assert w in text, text


# ---------------------------------------------------------------- markers

MARKERS = [
    "### BEGIN SOLUTION", "### END SOLUTION", "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS",
    "=== BEGIN MARK SCHEME ===", "=== END MARK SCHEME ===",
    "# ~~START DELETE~~", "# ~~END DELETE~~", "x = 1  # ~~DELETE LINE~~",
]


@pytest.mark.parametrize("marker", MARKERS)
def test_markers_gate_finds_every_dialect(tmp_path, marker):
    (tmp_path / "nnkit").mkdir()
    (tmp_path / "nnkit" / "a.py").write_text("x = 1\n\n" + marker + "\n")
    with pytest.raises(GateFailure) as info:
        check_markers(tmp_path)
    assert str(info.value).startswith("gate markers failed: nnkit/a.py:3: ") and "marker" in str(info.value)


def test_markers_in_a_shipped_file_stop_the_release(tmp_path):
    repo = mini_repo(tmp_path)
    fetch = repo / "datasets" / "fetch.py"  # shipped verbatim
    fetch.write_text(fetch.read_text() + "\n# ~~START DELETE~~\n")
    err = fail(repo)
    assert_names(err, "markers", "datasets/fetch.py", line_containing(fetch, "~~START DELETE~~"), "CS231n release marker")


def test_cs231n_marker_in_a_notebook_cell(tmp_path):
    repo = mini_repo(tmp_path)

    def plant(nb):
        nb["cells"][0]["source"] = "# Mini assignment\n**TA Answer:** 42 # ~~DELETE LINE~~\n"
    edit_notebook(repo / "source/mini/01_ops.ipynb", plant)
    err = fail(repo)
    # The line of the released notebook's JSON that holds the planted text.
    released_line = err.line
    assert_names(err, "markers", "01_ops.ipynb", released_line, "CS231n release marker", "~~DELETE LINE~~")
    assert released_line > 1


def test_marker_word_in_a_provided_module_stops_the_stripper(tmp_path):
    repo = mini_repo(tmp_path)
    helpers = repo / "source/nnkit/helpers.py"
    helpers.write_text(helpers.read_text().replace('"""Provided', '"""Provided (### END SOLUTION)'))
    assert_names(fail(repo), "strip", "source/nnkit/helpers.py", 1, "inside a string or docstring")


# ---------------------------------------------------------------- solution lines

@pytest.mark.parametrize("leak, origin", [
    ("squared_value = v * v", "source/nnkit/sub/extra.py:8"),  # package solution
    ("assert np.allclose(ops.add([0.5], [0.25]), [0.75])", "source/mini/01_ops.ipynb"),  # hidden test
    ("weights_from_reference = np.array([1.0, 2.0, 3.0])", "source/mini/01_ops.ipynb"),  # notebook solution
])
def test_a_solution_or_hidden_test_line_in_a_shipped_file(tmp_path, leak, origin):
    repo = mini_repo(tmp_path)
    fetch = repo / "datasets" / "fetch.py"
    fetch.write_text(fetch.read_text() + f"    {leak}   \n")  # other whitespace: still found
    err = fail(repo)
    assert_names(err, "solution-lines", "datasets/fetch.py", line_containing(fetch, leak), leak, origin)


def test_a_stripper_that_keeps_the_solution_is_caught(tmp_path):
    repo = mini_repo(tmp_path)

    def keep_solution(staging):
        # A broken stripper: markers dropped, solution code kept.
        src = (repo / "source/nnkit/ops.py").read_text()
        (staging / "nnkit/ops.py").write_text("\n".join(l for l in src.split("\n") if "SOLUTION" not in l))
    err = fail(repo, tamper=keep_solution)
    # Source line 14 of ops.py; line 13 once the marker line above it is dropped.
    assert_names(err, "solution-lines", "nnkit/ops.py", 13, "total = as_array(a) + as_array(b)", "source/nnkit/ops.py:14")


def test_trivial_lines_and_lines_that_also_occur_outside_regions_are_not_fingerprints():
    lines = SourceLines()
    for text in ("return out", "x = np.maximum(0, x)", "dx = dout * (x > 0)", "pass"):
        lines.add_region_line(text, ("f.py", 1))
    lines.add_outside_line("  x = np.maximum(0, x)  ")
    assert set(lines.fingerprints()) == {"dx = dout * (x > 0)"}


# ---------------------------------------------------------------- outputs, hidden files, allow-list

def test_notebook_outputs_and_execution_counts(tmp_path):
    repo = mini_repo(tmp_path)

    def add_output(staging):
        def edit(nb):
            cell = next(c for c in nb["cells"] if c.get("id") == "test_square")
            cell["outputs"] = [{"name": "stdout", "output_type": "stream", "text": "9\n"}]
        edit_notebook(staging / "01_ops.ipynb", edit)
    err = fail(repo, tamper=add_output)
    nb = repo / "assignments/mini/01_ops.ipynb"
    assert_names(err, "outputs", "01_ops.ipynb", err.line, "has outputs")

    def add_count(staging):
        edit_notebook(staging / "01_ops.ipynb", lambda nb: nb["cells"][1].__setitem__("execution_count", 7))
    err = fail(repo, tamper=add_count)
    assert_names(err, "outputs", "01_ops.ipynb", err.line, "execution_count 7")


def test_outputs_gate_names_the_line_of_the_cell(tmp_path):
    repo = mini_repo(tmp_path)
    seen = {}

    def add_count(staging):
        edit_notebook(staging / "01_ops.ipynb", lambda nb: nb["cells"][1].__setitem__("execution_count", 3))
        seen["line"] = line_containing(staging / "01_ops.ipynb", '"id": "setup"')
    err = fail(repo, tamper=add_count)
    assert_names(err, "outputs", "01_ops.ipynb", seen["line"], "code cell 1")


def test_outputs_in_the_source_notebook_are_cleared_not_shipped(tmp_path):
    repo = mini_repo(tmp_path)

    def with_output(nb):
        cell = next(c for c in nb["cells"] if c.get("id") == "test_square")
        cell["outputs"] = [{"name": "stdout", "output_type": "stream", "text": "secret 9\n"}]
        cell["execution_count"] = 5
    edit_notebook(repo / "source/mini/01_ops.ipynb", with_output)
    report = build_release("mini", root=repo, output=tmp_path / "out", self_grade_gate=False)
    assert "secret 9" not in (tmp_path / "out" / "01_ops.ipynb").read_text()
    assert report.files


@pytest.mark.parametrize("planted", [
    ".ipynb_checkpoints/01_ops-checkpoint.ipynb", "nnkit/__pycache__/ops.cpython-311.pyc", "nnkit/.DS_Store",
    ".env", "nnkit/ops.pyc",
])
def test_hidden_files_gate_finds_checkpoints_caches_and_hidden_files(tmp_path, planted):
    (tmp_path / planted).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / planted).write_text("anything")
    with pytest.raises(GateFailure) as info:
        check_hidden_files(tmp_path)
    assert str(info.value).startswith(f"gate hidden-files failed: {planted}:1: ")


def test_a_checkpoint_in_the_release_stops_it(tmp_path):
    repo = mini_repo(tmp_path)

    def plant(staging):
        (staging / ".ipynb_checkpoints").mkdir()
        shutil.copy(repo / "source/mini/01_ops.ipynb", staging / ".ipynb_checkpoints/01_ops-checkpoint.ipynb")
    err = fail(repo, tamper=plant)
    assert_names(err, "hidden-files", ".ipynb_checkpoints/01_ops-checkpoint.ipynb", 1, "must never ship")


def test_a_file_outside_the_allow_list(tmp_path):
    repo = mini_repo(tmp_path)
    err = fail(repo, tamper=lambda staging: (staging / "nnkit" / "solutions_backup.txt").write_text("x"))
    assert_names(err, "allow-list", "nnkit/solutions_backup.txt", 1, "outside the release's allow-list")


def test_a_missing_file(tmp_path):
    repo = mini_repo(tmp_path)
    err = fail(repo, tamper=lambda staging: (staging / "make_submission.py").unlink())
    assert_names(err, "allow-list", "make_submission.py", 1, "missing from the release")


# ---------------------------------------------------------------- stubs compile, import and raise

def test_a_stub_swallowed_by_a_decorator_is_caught(tmp_path):
    repo = mini_repo(tmp_path)
    ops = repo / "source/nnkit/ops.py"
    ops.write_text(ops.read_text().replace(
        "def scale(", "def _quiet(fn):\n    @functools.wraps(fn)\n    def inner(*a, **k):\n        try:\n"
                     "            return fn(*a, **k)\n        except NotImplementedError:\n            return 0\n"
                     "    return inner\n\n\n@_quiet\ndef scale(").replace("import numpy as np", "import functools\nimport numpy as np"))
    err = fail(repo)
    # scale's region opens at source line 22; 12 lines are inserted above it (an import and
    # the 11-line decorator) and add's 3-line region becomes 1 stub line: 22 + 12 - 2.
    stub_line = 32
    assert_names(err, "stubs", "nnkit/ops.py", stub_line, "scale", "returned 0 instead of raising NotImplementedError")


def test_a_stubbed_module_that_fails_on_import(tmp_path):
    repo = mini_repo(tmp_path)
    ops = repo / "source/nnkit/ops.py"
    ops.write_text(ops.read_text() + "\n\nDOUBLED = scale([1.0])\n")
    err = fail(repo)
    # In the release, each of ops.py's three 3-line regions is one stub line: 6 lines fewer.
    assert_names(err, "stubs", "nnkit/ops.py", line_containing(ops, "DOUBLED = scale") - 6, "import nnkit.ops failed",
                 "NotImplementedError")


def test_a_release_module_that_does_not_compile(tmp_path):
    repo = mini_repo(tmp_path)

    def break_it(staging):
        p = staging / "nnkit/helpers.py"
        p.write_text(p.read_text() + "\ndef broken(:\n")
    err = fail(repo, tamper=break_it)
    line = len((repo / "source/nnkit/helpers.py").read_text().split("\n")) + 1
    assert_names(err, "stubs", "nnkit/helpers.py", line, "SyntaxError")


def test_stub_that_does_not_raise(tmp_path):
    repo = mini_repo(tmp_path)

    def weaken(staging):
        p = staging / "nnkit/sub/extra.py"
        p.write_text(p.read_text().replace('raise NotImplementedError("square: not implemented yet, see the TODO above")',
                                           "return 0"))
    err = fail(repo, tamper=weaken)
    assert_names(err, "stubs", "nnkit/sub/extra.py", 7, "square", "not a raise NotImplementedError")


def test_a_region_whose_stub_does_not_compile_stops_the_release(tmp_path):
    repo = mini_repo(tmp_path)
    extra = repo / "source/nnkit/sub/extra.py"
    extra.write_text(extra.read_text() + "\n\ndef cube(v):\n    return max(\n        ### BEGIN SOLUTION\n"
                                         "        v ** 3, 0\n        ### END SOLUTION\n    )\n")
    m = repo / "source/mini/manifest.toml"
    m.write_text(m.read_text().replace('"nnkit/sub/extra.py" = ["square"]', '"nnkit/sub/extra.py" = ["square", "cube"]'))
    err = fail(repo)
    # extra.py has 10 lines; the appended cube() starts at line 13 and its region at 15.
    assert_names(err, "strip", "source/nnkit/sub/extra.py", 15, "does not compile")


# ---------------------------------------------------------------- manifest agreement

def test_a_listed_function_without_a_solution_region(tmp_path):
    repo = mini_repo(tmp_path)
    m = repo / "source/mini/manifest.toml"
    m.write_text(m.read_text().replace('"nnkit/sub/extra.py" = ["square"]', '"nnkit/sub/extra.py" = ["square", "cube"]'))
    assert_names(fail(repo), "manifest", "source/mini/manifest.toml", line_containing(m, '"cube"'),
                 "lists cube of nnkit/sub/extra.py, which has no solution region there", "square")


def test_a_module_the_package_does_not_list_is_not_shipped_and_an_import_of_it_stops_the_release(tmp_path):
    repo = mini_repo(tmp_path)
    m = repo / "source/mini/manifest.toml"
    m.write_text(m.read_text().replace('"nnkit/helpers.py" = []\n', ""))
    # ops.py imports nnkit.helpers, which is now not shipped.
    ops = repo / "source/nnkit/ops.py"
    assert "from .helpers import" in ops.read_text()
    assert_names(fail(repo), "imports", "source/nnkit/ops.py", line_containing(ops, "from .helpers import"),
                 "imports nnkit.helpers, which this release does not ship", '"nnkit/helpers.py" = []')


def test_a_notebook_importing_a_module_not_shipped_stops_the_release(tmp_path):
    repo = mini_repo(tmp_path)
    (repo / "source/nnkit/extra_tools.py").write_text("def tool():\n    return 1\n")
    cell = {"cell_type": "code", "execution_count": None, "id": "extra", "metadata": {}, "outputs": [],
            "source": "%matplotlib inline\nfrom nnkit.extra_tools import tool"}
    edit_notebook(repo / "source/mini/01_ops.ipynb", lambda nb: nb["cells"].insert(1, cell))
    err = fail(repo)
    assert (err.gate, err.path) == ("imports", "source/mini/01_ops.ipynb"), str(err)
    assert "imports nnkit.extra_tools, which this release does not ship" in str(err)
    assert '"nnkit/extra_tools.py" = []' in str(err)


def test_a_region_no_assignment_asks_for_ships_complete_and_one_another_asks_for_is_stubbed(tmp_path):
    repo = mini_repo(tmp_path)
    m = repo / "source/mini/manifest.toml"
    m.write_text(m.read_text().replace('"nnkit/ops.py" = ["add", "scale", "Counter.bump"]', '"nnkit/ops.py" = ["add"]'))
    other = repo / "source/other"
    other.mkdir()
    (other / "manifest.toml").write_text('assignment = "other"\ntitle = "o"\nnotebooks = []\nsaved_models = []\n'
                                         'datasets = ["embedded"]\n[package]\n"nnkit/ops.py" = ["scale"]\n')
    plan = plan_release("mini", repo)
    text = plan.stripped["nnkit/ops.py"]
    assert 'raise NotImplementedError("add: not implemented yet' in text
    assert 'raise NotImplementedError("scale: not part of this assignment' in text
    assert "Counter.bump" not in text and "BEGIN SOLUTION" not in text  # provided here: ships complete
    source = (repo / "source/nnkit/ops.py").read_text()
    bump = source[source.index("def bump"):].split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0]
    assert bump.strip() and all(line in text for line in bump.strip().split("\n"))


def test_points_that_disagree_with_the_notebook(tmp_path):
    repo = mini_repo(tmp_path)
    m = repo / "source/mini/manifest.toml"
    m.write_text(m.read_text().replace("test_add = 2", "test_add = 3"))
    assert_names(fail(repo), "manifest", "source/mini/manifest.toml", line_containing(m, "test_add = 3"),
                 "'test_add' 3 points, the notebook 2")


# ---------------------------------------------------------------- validate --invert and the self-grade

def test_a_test_that_passes_on_the_release_fails_validate(tmp_path):
    repo = mini_repo(tmp_path)
    edit_notebook(repo / "source/mini/01_ops.ipynb",
                  lambda nb: nb["cells"].insert(5, grade_cell("test_free", "assert 1 + 1 == 2  # free point")))
    m = repo / "source/mini/manifest.toml"
    m.write_text(m.read_text() + "test_free = 1\n")
    err = fail(repo)
    released = err  # the line is in the (discarded) release notebook: the free test's source line
    assert_names(released, "validate", "01_ops.ipynb", err.line, "tests pass on the release", "assert 1 + 1 == 2")
    assert err.line > 1


def _add_cell(repo: Path, grade_id: str, source: str) -> None:
    edit_notebook(repo / "source/mini/01_ops.ipynb", lambda nb: nb["cells"].insert(5, grade_cell(grade_id, source)))
    m = repo / "source/mini/manifest.toml"
    m.write_text(m.read_text() + f"{grade_id} = 1\n")


def test_a_cell_that_passes_on_the_release_only_under_autograde_fails_the_self_grade(tmp_path):
    repo = mini_repo(tmp_path)
    # Passes when executed plainly and during autograde whatever the student did, fails
    # under validate: only the self-grade can see it.
    _add_cell(repo, "test_env", 'assert os.environ.get("NBGRADER_EXECUTION") != "validate"')
    err = fail(repo)
    assert_names(err, "self-grade", "01_ops.ipynb", err.line, "the untouched release scores 1.0/1 on test_env")
    assert err.line > 1


def test_a_cell_the_reference_fails_under_autograde_stops_the_release(tmp_path):
    repo = mini_repo(tmp_path)
    # Passes when the reference notebooks are executed plainly, fails in nbgrader.
    _add_cell(repo, "test_plain", 'assert "NBGRADER_EXECUTION" not in os.environ')
    err = fail(repo)
    assert_names(err, "self-grade", "01_ops.ipynb", err.line, "the reference scores 0.0/1 on test_plain")


def test_a_reference_notebook_that_does_not_execute_stops_the_release(tmp_path):
    repo = mini_repo(tmp_path)
    _add_cell(repo, "test_wrong", "assert ops.add([1], [1])[0] == 3, 'one and one'")
    err = fail(repo)
    nb = repo / "source/mini/01_ops.ipynb"
    assert_names(err, "self-grade", "source/mini/01_ops.ipynb", line_containing(nb, "one and one"),
                 "the reference notebook fails to execute: AssertionError: one and one")


def test_without_exclude_overwriting_the_release_would_score_as_the_reference(tmp_path):
    repo = mini_repo(tmp_path)
    plan = plan_release("mini", repo)
    course, generated = open_course(plan, tmp_path / "course", exclude_overwriting=False)
    staging = tmp_path / "staging"
    staging.mkdir()
    stage(plan, staging, generated)
    reference = run_reference(plan, tmp_path / "reference")
    with pytest.raises(ReleaseError) as info:
        self_grade(plan, course, reference, staging)
    # nbgrader overwrote the release's stubs with the reference modules: the first
    # module-based check passes for the untouched release.
    assert info.value.gate == "self-grade" and "the untouched release scores 2.0/2 on test_add" in str(info.value)


# What nbgrader itself refuses in a source notebook: tests/release/test_release_authoring.py.


def _other_asks_for_scale(repo):
    other = repo / "source/other"
    other.mkdir()
    (other / "manifest.toml").write_text('assignment = "other"\ntitle = "o"\nnotebooks = []\nsaved_models = []\n'
                                         'datasets = ["embedded"]\n[package]\n"nnkit/ops.py" = ["scale"]\n')


def test_a_function_another_assignment_asks_for_ships_complete_only_when_provided_on_purpose(tmp_path):
    repo = mini_repo(tmp_path)
    _other_asks_for_scale(repo)
    m = repo / "source/mini/manifest.toml"
    m.write_text(m.read_text().replace('"nnkit/ops.py" = ["add", "scale", "Counter.bump"]', '"nnkit/ops.py" = ["add"]')
                 + '\n[release.provide]\n"nnkit/ops.py:scale" = "the mini notebook calls scale as provided code"\n')
    text = plan_release("mini", repo).stripped["nnkit/ops.py"]
    assert "not part of this assignment" not in text and "return as_array(x) * factor" in text


def test_a_provide_entry_that_provides_nothing_stops_the_release(tmp_path):
    repo = mini_repo(tmp_path)
    _other_asks_for_scale(repo)
    m = repo / "source/mini/manifest.toml"
    m.write_text(m.read_text() + '\n[release.provide]\n"nnkit/ops.py:Counter.bump" = "nobody else asks for it"\n')
    assert_names(fail(repo), "manifest", "source/mini/manifest.toml", line_containing(m, "Counter.bump\" ="),
                 "provides nothing", "no other assignment asks for that function")
