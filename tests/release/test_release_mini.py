"""The golden mini-source and its expected release: content, self-grade, determinism, zip."""
import hashlib
import json
import shutil
import tomllib
import zipfile
from pathlib import Path

import pytest

from autograder.manifest import load_manifest
from autograder.release.build import build_release
from autograder.release.shared import RELEASE_FILES

from .helpers import EXPECTED, MINI, mini_repo

EXPECTED_FILES = sorted([
    "01_ops.ipynb", "README.md", "RELEASE_DIGEST", "make_submission.py", "manifest.toml", "requirements.txt",
    "datasets/fetch.py", "datasets/embedded/tiny.txt",
    "nnkit/__init__.py", "nnkit/helpers.py", "nnkit/ops.py", "nnkit/sub/__init__.py", "nnkit/sub/extra.py",
])


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mini")
    repo = mini_repo(tmp)
    # Debris an instructor's working copy carries: none of it may reach the release.
    (repo / "source/nnkit/__pycache__").mkdir()
    (repo / "source/nnkit/__pycache__/ops.cpython-311.pyc").write_bytes(b"\0compiled solution")
    (repo / "source/mini/.ipynb_checkpoints").mkdir()
    shutil.copy(repo / "source/mini/01_ops.ipynb", repo / "source/mini/.ipynb_checkpoints/01_ops-checkpoint.ipynb")
    (repo / "source/mini/models").mkdir()
    (repo / "source/mini/models/w.npy").write_bytes(b"reference model")
    (repo / "source/nnkit/.secret_notes").write_text("squared_value = v * v\n")
    report = build_release("mini", root=repo, output=tmp / "out" / "mini", zip_path=tmp / "mini.zip")
    return repo, report, tmp


def test_release_holds_exactly_the_expected_files(built):
    _, report, tmp = built
    files = sorted(str(p.relative_to(tmp / "out" / "mini")) for p in (tmp / "out" / "mini").rglob("*") if p.is_file())
    assert files == EXPECTED_FILES == report.files
    # No staging or scratch folder is left beside the output.
    assert sorted(p.name for p in (tmp / "out").iterdir()) == ["mini"]


def test_student_modules_are_stubbed_exactly_and_the_rest_copied(built):
    repo, _, tmp = built
    out = tmp / "out" / "mini"
    for rel in ("nnkit/ops.py", "nnkit/sub/extra.py", "manifest.toml"):
        assert (out / rel).read_bytes() == (EXPECTED / rel).read_bytes(), rel
    for rel in ("nnkit/__init__.py", "nnkit/helpers.py", "nnkit/sub/__init__.py"):
        assert (out / rel).read_bytes() == (repo / "source" / rel).read_bytes(), rel
    for rel in ("datasets/fetch.py", "datasets/embedded/tiny.txt"):
        assert (out / rel).read_bytes() == (repo / rel).read_bytes(), rel
    for rel in ("make_submission.py", "requirements.txt"):
        assert (out / rel).read_bytes() == (RELEASE_FILES / rel).read_bytes(), rel


def test_release_manifest_reads_back_as_the_source_manifest(built):
    repo, _, tmp = built
    a = load_manifest("mini", repo)
    b = load_manifest(tmp / "out" / "mini" / "manifest.toml")
    assert (a.assignment, a.title, a.notebooks, a.student_modules, a.saved_models, a.datasets, a.thresholds, a.points) == \
           (b.assignment, b.title, b.notebooks, b.student_modules, b.saved_models, b.datasets, b.thresholds, b.points)


def test_notebook_is_nbgraders_student_version_with_ids_kept(built):
    repo, _, tmp = built
    src = json.loads((repo / "source/mini/01_ops.ipynb").read_text())
    rel = json.loads((tmp / "out/mini/01_ops.ipynb").read_text())
    assert [c["id"] for c in rel["cells"]] == [c["id"] for c in src["cells"]]
    cells = {c["id"]: "".join(c["source"]) for c in rel["cells"]}
    # nbgrader's stubs (ClearSolutions defaults), at the region's indentation.
    assert cells["train"] == ('os.makedirs("models", exist_ok=True)\n# TODO: save your weights to models/w.npy\n'
                              "# YOUR CODE HERE\nraise NotImplementedError()")
    assert cells["answer_why"] == "Why does addition commute here?\n\nYOUR ANSWER HERE"
    # Hidden tests are gone; the visible test stays.
    assert cells["test_add"] == "assert np.allclose(ops.add([1, 2], [3, 4]), [4, 6])"
    for c in rel["cells"]:
        if c["cell_type"] == "code":
            assert c["outputs"] == [] and c["execution_count"] is None


def test_self_grade_reference_full_marks_release_zero(built):
    _, report, _ = built
    # Points written in the fixture notebook: test_add 2, test_square 1, test_model 1.
    assert {k: v[:2] for k, v in report.scores["reference"].items()} == {
        "test_add": (2.0, 2.0), "test_square": (1.0, 1.0), "test_model": (1.0, 1.0)}
    assert {k: v[:2] for k, v in report.scores["release"].items()} == {
        "test_add": (0.0, 2.0), "test_square": (0.0, 1.0), "test_model": (0.0, 1.0)}


def test_zip_bundle_is_sorted_timestamp_free_and_lists_sha256_of_every_file(built):
    _, _, tmp = built
    out = tmp / "out" / "mini"
    with zipfile.ZipFile(tmp / "mini.zip") as zf:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        assert names == sorted(names)
        assert sorted(names) == sorted(["mini/MANIFEST"] + [f"mini/{f}" for f in EXPECTED_FILES])
        assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
        manifest = zf.read("mini/MANIFEST").decode()
        for f in EXPECTED_FILES:
            assert zf.read(f"mini/{f}") == (out / f).read_bytes()
    expected = "".join(f"{hashlib.sha256((out / f).read_bytes()).hexdigest()}  {f}\n" for f in EXPECTED_FILES)
    assert manifest == expected


def test_same_source_gives_byte_identical_release_and_zip(built, tmp_path):
    repo, _, tmp = built
    build_release("mini", root=repo, output=tmp_path / "again", zip_path=tmp_path / "again.zip", self_grade_gate=False)
    for f in EXPECTED_FILES:
        assert (tmp_path / "again" / f).read_bytes() == (tmp / "out" / "mini" / f).read_bytes(), f
    assert (tmp_path / "again.zip").read_bytes() == (tmp / "mini.zip").read_bytes()


def test_requirements_are_the_student_extra():
    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    student = pyproject["project"]["optional-dependencies"]["student"]
    lines = [l.strip() for l in (RELEASE_FILES / "requirements.txt").read_text().splitlines()
             if l.strip() and not l.startswith("#")]
    assert lines == student


def test_a_new_release_replaces_the_old_one(tmp_path):
    repo = mini_repo(tmp_path)
    out = tmp_path / "assignments" / "mini"
    out.mkdir(parents=True)
    (out / "stale.txt").write_text("from an old release")
    build_release("mini", root=repo, output=out, self_grade_gate=False)
    assert not (out / "stale.txt").exists()
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == EXPECTED_FILES
    assert sorted(p.name for p in out.parent.iterdir()) == ["mini"]
