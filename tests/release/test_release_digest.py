"""Releases that cannot go stale: every release carries RELEASE_DIGEST (sha256 of what built it
and of its own files), and `release_freshness` compares it with the current source without
building anything."""
import shutil
import time

import pytest

from autograder import REPO_ROOT
from autograder.release import build, digest, plan, selfgrade
from autograder.release import stage as staging
from autograder.release.build import build_release
from autograder.release.digest import DIGEST_FILE, digest_text, read_digest, release_freshness, release_inputs
from autograder.release.plan import plan_release
from autograder.release.shared import ReleaseError
from autograder.release.selfgrade import open_course
from autograder.release.stage import stage

from .helpers import mini_repo


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A mini repository and its release at the default place, built once (no self-grade)."""
    tmp = tmp_path_factory.mktemp("digest")
    repo = mini_repo(tmp)
    build_release("mini", root=repo, self_grade_gate=False)
    return repo, repo / "assignments" / "mini"


@pytest.fixture
def copy(built, tmp_path):
    """A fresh copy of the built repository and release, to edit."""
    repo, _ = built
    dest = tmp_path / "repo"
    shutil.copytree(repo, dest)
    return dest, dest / "assignments" / "mini"


def test_a_fresh_release_is_fresh(built):
    repo, out = built
    assert release_freshness("mini", out, repo) is None


def test_the_digest_lists_every_input_and_release_file(built):
    repo, out = built
    d = read_digest(out / DIGEST_FILE)
    assert set(d.inputs) - {digest.ELSEWHERE_INPUT} == set(release_inputs("mini", repo)) == {
        "source/mini/manifest.toml", "source/mini/01_ops.ipynb", "source/nnkit/__init__.py", "source/nnkit/helpers.py",
        "source/nnkit/ops.py", "source/nnkit/sub/__init__.py", "source/nnkit/sub/extra.py", "datasets/fetch.py",
        "datasets/embedded/tiny.txt", "release_files/README.md", "release_files/make_submission.py",
        "release_files/requirements.txt"}
    assert sorted(d.files) == sorted(p for p in ("01_ops.ipynb", "README.md", "make_submission.py", "manifest.toml",
                                                 "requirements.txt", "datasets/fetch.py", "datasets/embedded/tiny.txt",
                                                 "nnkit/__init__.py", "nnkit/helpers.py", "nnkit/ops.py",
                                                 "nnkit/sub/__init__.py", "nnkit/sub/extra.py"))
    assert d.builder.startswith("nbgrader ") and d.format == digest.DIGEST_FORMAT


def test_an_edited_threshold_makes_the_release_stale(copy):
    repo, out = copy
    m = repo / "source/mini/manifest.toml"
    m.write_text(m.read_text().replace("acc = 0.5", "acc = 0.6"))
    msg = release_freshness("mini", out, repo)
    assert msg and msg.startswith("The release at assignments/mini is stale: source/mini/manifest.toml changed "
                                  "since it was built"), msg
    assert "`python -m autograder release mini`" in msg and "--release" in msg and "\n" not in msg
    m.write_text(m.read_text().replace("acc = 0.6", "acc = 0.5"))
    assert release_freshness("mini", out, repo) is None  # back to what built it


def _edit(path, old, new):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_a_module_no_manifest_ships_does_not_make_the_release_stale(copy):
    repo, out = copy
    (repo / "source/nnkit/unshipped.py").write_text("X = 1\n")
    assert release_freshness("mini", out, repo) is None


@pytest.mark.parametrize("edit, named", [
    (lambda repo, out: (repo / "source/nnkit/ops.py").write_text((repo / "source/nnkit/ops.py").read_text() + "\n"),
     "source/nnkit/ops.py changed since it was built"),
    (lambda repo, out: ((repo / "source/nnkit/new_helper.py").write_text("X = 1\n"),
                        _edit(repo / "source/mini/manifest.toml", '"nnkit/helpers.py" = []',
                              '"nnkit/helpers.py" = []\n"nnkit/new_helper.py" = []')),
     "source/nnkit/new_helper.py is new"),
    (lambda repo, out: (repo / "source/other").mkdir() or (repo / "source/other/manifest.toml").write_text(
        'assignment = "other"\ntitle = "o"\nnotebooks = []\nsaved_models = []\ndatasets = ["embedded"]\n'
        '[package]\n"nnkit/helpers.py" = ["as_array"]\n'),
     "[package] of the other assignments changed since it was built"),
    (lambda repo, out: (repo / "source/nnkit/sub/__init__.py").unlink(),
     "source/nnkit/sub/__init__.py is gone"),
    (lambda repo, out: (repo / "datasets/embedded/tiny.txt").write_text("other data\n"),
     "datasets/embedded/tiny.txt changed"),
    (lambda repo, out: (out / "nnkit/helpers.py").write_text("# edited by hand\n"),
     "nnkit/helpers.py of the release was edited or removed after the build"),
    (lambda repo, out: (out / "01_ops.ipynb").unlink(), "01_ops.ipynb of the release was edited or removed"),
    (lambda repo, out: (out / "models").mkdir() or (out / "models/w.npy").write_bytes(b"reference weights"),
     "models/w.npy is in the release but not from the build"),
])
def test_what_makes_a_release_stale(copy, edit, named):
    repo, out = copy
    edit(repo, out)
    msg = release_freshness("mini", out, repo)
    assert msg and named in msg, msg


def test_caches_in_the_release_do_not_make_it_stale(copy):
    repo, out = copy
    (out / "nnkit/__pycache__").mkdir()
    (out / "nnkit/__pycache__/ops.cpython-311.pyc").write_bytes(b"\0")
    assert release_freshness("mini", out, repo) is None


def test_a_release_without_a_digest(copy):
    repo, out = copy
    (out / DIGEST_FILE).unlink()
    msg = release_freshness("mini", out, repo)
    assert msg and f"has no {DIGEST_FILE}" in msg and "`python -m autograder release mini`" in msg, msg


def test_a_release_elsewhere_gets_the_fix_with_its_output(copy, tmp_path):
    repo, out = copy
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(out, elsewhere)
    assert release_freshness("mini", elsewhere, repo) is None
    (repo / "source/nnkit/ops.py").write_text("changed\n")
    msg = release_freshness("mini", elsewhere, repo)
    assert f"`python -m autograder release mini --output {elsewhere}`" in msg, msg


def test_freshness_builds_nothing(copy, monkeypatch):
    repo, out = copy

    def no(*a, **k):
        raise AssertionError("release_freshness must not build")
    for module, name in ((plan, "plan_release"), (selfgrade, "open_course"), (staging, "stage"),
                         (build, "build_release"), (selfgrade, "run_reference"), (selfgrade, "self_grade")):
        monkeypatch.setattr(module, name, no)
    t = time.perf_counter()
    assert release_freshness("mini", out, repo) is None
    assert time.perf_counter() - t < 2


def test_a_digest_that_disagrees_with_the_staged_release_stops_it(tmp_path):
    repo = mini_repo(tmp_path)
    out = tmp_path / "out"
    calls = []

    def late_write(staging):  # something writes into the staging folder after the digest
        calls.append(1)
        (staging / "nnkit/helpers.py").write_text((staging / "nnkit/helpers.py").read_text() + "\n# late\n")
    with pytest.raises(ReleaseError) as info:
        build_release("mini", root=repo, output=out, self_grade_gate=False, tamper=late_write)
    assert calls and str(info.value).startswith("gate digest failed: nnkit/helpers.py:1: changed after RELEASE_DIGEST"), \
        str(info.value)
    assert not out.exists()


def test_fcnets_release_goes_stale_when_a_threshold_changes(tmp_path):
    """The fcnets inputs, digested as `release` does, with a threshold edited in a copy of source/."""
    repo = tmp_path / "repo"
    shutil.copytree(REPO_ROOT / "source", repo / "source", ignore=shutil.ignore_patterns(".*", "__pycache__"))
    (repo / "datasets").mkdir()
    shutil.copy(REPO_ROOT / "datasets/fetch.py", repo / "datasets/fetch.py")
    shutil.copytree(REPO_ROOT / "datasets/embedded", repo / "datasets/embedded")
    plan = plan_release("fcnets", repo)
    course, generated = open_course(plan, tmp_path / "course")
    out = repo / "assignments" / "fcnets"
    out.mkdir(parents=True)
    stage(plan, out, generated)
    (out / DIGEST_FILE).write_text(digest_text("fcnets", plan.inputs, out))
    assert release_freshness("fcnets", out, repo) is None
    m = repo / "source/fcnets/manifest.toml"
    text = m.read_text()
    assert "two_layer_val = 0.95" in text
    m.write_text(text.replace("two_layer_val = 0.95", "two_layer_val = 0.96"))
    msg = release_freshness("fcnets", out, repo)
    assert msg and "source/fcnets/manifest.toml changed since it was built" in msg \
        and "`python -m autograder release fcnets`" in msg, msg
