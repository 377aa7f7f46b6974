"""The solution-fragments gate: a distinctive fragment of a solution region copied anywhere
into the release (docstring, comment, Markdown, an output, inside a longer line, laid out
differently) stops the release naming the release file and line and the solution line;
ordinary code is no fragment; what students see on purpose is allowed by name.

Every plant here is one the whole-line gate (`solution-lines`) lets through: the copy also
occurs outside the regions in the source, or sits inside a longer line.
"""
import shutil
import tomllib
from pathlib import Path

import pytest

from autograder import REPO_ROOT
from autograder.release.gates import SolutionFragments, find_fragments, fragment_tokens, show_tokens
from autograder.release.build import build_release
from autograder.release.plan import plan_release
from autograder.release.selfgrade import open_course
from autograder.release.stage import stage

from .helpers import assert_names, edit_notebook, expect_failure, line_containing, mini_repo

NB = "source/mini/01_ops.ipynb"


def _append_to_docstring(path: Path, function: str, text: str) -> None:
    """Add `text` (indented lines) at the end of `function`'s docstring."""
    src = path.read_text()
    head = src.index(f"def {function}(")
    start = src.index('"""', head) + 3
    end = src.index('"""', start)
    path.write_text(src[:end].rstrip() + "\n\n" + text.rstrip() + "\n    " + src[end:])


def _staged_copy(repo: Path, tmp: Path, plant=None):
    """A tamper hook that plants (optionally) and keeps a copy of the staged release, so a test
    can find the line the gate must name in the release that was refused."""
    keep = tmp / "staged"

    def tamper(staging: Path):
        if plant:
            plant(staging)
        shutil.copytree(staging, keep)
    return tamper, keep


# ---------------------------------------------------------------- copies the gate must find

@pytest.mark.parametrize("form, text, origin", [
    ("docstring", "    Example: total = as_array(a) + as_array(b)", "source/nnkit/ops.py:14"),
    ("longer line", "    The sum (as in `total = as_array(a) + as_array(b)`, elementwise) of both arrays.",
     "source/nnkit/ops.py:14"),
    ("sub-expression", "    It returns as_array(a) + as_array(b) for you.", "source/nnkit/ops.py:14"),
    ("short computation", "    squared_value = v * v  (a doctest-like note)", "source/nnkit/sub/extra.py:8"),
    ("reformatted", "    weights_from_reference =\n        np.array( [1.0,2.0,\n   3.0] )", NB),
    ("other quotes", "    np.save('models/w.npy', weights_from_reference) is what the notebook does", NB),
])
def test_a_copy_in_a_provided_modules_docstring(tmp_path, form, text, origin):
    repo = mini_repo(tmp_path)
    helpers = repo / "source/nnkit/helpers.py"  # shipped verbatim: its lines are the release's
    _append_to_docstring(helpers, "as_array", text)
    err = expect_failure(repo)
    first = next(l for l in text.split("\n") if l.strip())
    assert_names(err, "solution-fragments", "nnkit/helpers.py", line_containing(helpers, first.strip()[:12]),
                 "is a fragment of the solution at " + origin, "[release.allow] in source/mini/manifest.toml")


def test_a_copy_in_a_comment_of_a_student_module(tmp_path):
    repo = mini_repo(tmp_path)
    ops = repo / "source/nnkit/ops.py"
    # Above every region: the stubbed module keeps the line where it is.
    ops.write_text(ops.read_text().replace("from .helpers import as_array\n",
                                           "from .helpers import as_array\n# note:   total=as_array(a)+as_array(b)\n"))
    err = expect_failure(repo)
    assert_names(err, "solution-fragments", "nnkit/ops.py", line_containing(ops, "# note:"),
                 "is a fragment of the solution at source/nnkit/ops.py:15")


def test_a_copy_in_a_markdown_cell(tmp_path):
    repo = mini_repo(tmp_path)

    def plant(nb):
        nb["cells"][0]["source"] += ["\n", "Hint: the weights are\n", "`weights_from_reference = np.array([1.0, 2.0, 3.0])`.\n"]
    edit_notebook(repo / NB, plant)
    tamper, staged = _staged_copy(repo, tmp_path)
    err = expect_failure(repo, tamper=tamper)
    solution = line_containing(repo / NB, '"weights_from_reference = np')
    assert_names(err, "solution-fragments", "01_ops.ipynb", line_containing(staged / "01_ops.ipynb", "weights_from_reference ="),
                 f"is a fragment of the solution at {NB}:{solution}")


def test_the_model_answer_copied_into_another_markdown_cell(tmp_path):
    repo = mini_repo(tmp_path)

    def plant(nb):
        nb["cells"][0]["source"] += ["\n", "(Spoiler: because floating-point addition of two numbers is commutative.)"]
    edit_notebook(repo / NB, plant)
    tamper, staged = _staged_copy(repo, tmp_path)
    err = expect_failure(repo, tamper=tamper)
    assert_names(err, "solution-fragments", "01_ops.ipynb", line_containing(staged / "01_ops.ipynb", "Spoiler"),
                 f"{NB}:{line_containing(repo / NB, 'Because floating-point')}")


def test_a_copy_in_an_output(tmp_path):
    repo = mini_repo(tmp_path)

    def plant(staging):
        def edit(nb):
            cell = next(c for c in nb["cells"] if c.get("id") == "test_square")
            cell["outputs"] = [{"name": "stdout", "output_type": "stream",
                                "text": ["checking...\n", "ok: self.n = self.n + k (counter)\n"]}]
        edit_notebook(staging / "01_ops.ipynb", edit)
    tamper, staged = _staged_copy(repo, tmp_path, plant)
    err = expect_failure(repo, tamper=tamper)
    # The fragment gate runs before the outputs gate, so it names the copied line itself.
    assert_names(err, "solution-fragments", "01_ops.ipynb", line_containing(staged / "01_ops.ipynb", "ok: self.n"),
                 "source/nnkit/ops.py:37")


def test_a_copy_in_a_file_the_kit_adds(tmp_path):
    repo = mini_repo(tmp_path)

    def plant(staging):
        readme = staging / "README.md"
        readme.write_text(readme.read_text() + "\nFAQ: write `np.save(\"models/w.npy\",\n weights_from_reference)`.\n")
    tamper, staged = _staged_copy(repo, tmp_path, plant)
    err = expect_failure(repo, tamper=tamper)
    assert_names(err, "solution-fragments", "README.md", line_containing(staged / "README.md", "FAQ:"), NB)


def test_every_copy_is_counted_in_the_message(tmp_path):
    repo = mini_repo(tmp_path)
    helpers = repo / "source/nnkit/helpers.py"
    _append_to_docstring(helpers, "as_array", "    total = as_array(a) + as_array(b)\n    self.n = self.n + k")
    err = expect_failure(repo)
    assert "(and 1 more: nnkit/helpers.py:" in str(err), str(err)


# ---------------------------------------------------------------- what is not a fragment

def test_ordinary_code_gives_no_fingerprint():
    f = SolutionFragments()
    f.add_code("return out\ndx = None\npass\nN = X.shape[0]\ncache = (x, w, b)\nout = affine_forward(x, w, b)\n"
               "np.random.seed(0)\nfor i in range(num_train):\n    loss += 1\n", "f.py", lambda k: k)
    assert f.fingerprints == {}


def test_distinctive_code_gives_fingerprints_with_their_line():
    f = SolutionFragments()
    f.add_code("    # the mask comes from x > 0\n    dx = dout * (x > 0)\n    out = x.reshape(x.shape[0], -1) @ w + b\n",
               "layers.py", lambda k: 40 + k)
    shown = {show_tokens(k): v for k, v in f.fingerprints.items()}
    assert shown["dx = dout * (x > 0"] == ("layers.py", 42)
    assert {v for k, v in shown.items() if k.startswith("x.reshape(x.shape[0], - 1) @")} == {("layers.py", 43)}
    assert not any("mask comes" in k for k in shown)  # comments are the author's notes


def test_tokens_ignore_layout_quotes_and_comment_marks():
    assert fragment_tokens("# out = x.reshape( x.shape[0],-1 ) @ w") == \
        fragment_tokens("`out = x.reshape(x.shape[0], -1) @ w`")
    assert fragment_tokens("d['W1'] ** 2 + 1e-3") == ["d", "[", '"', "W1", '"', "]", "**", "2", "+", "1e-3"]


# ---------------------------------------------------------------- allowing on purpose

ALLOW = '\n[release.allow]\n"total = as_array(a) + as_array(b)" = "the docstring shows the one-line sum on purpose"\n'


def test_an_allowed_copy_ships_and_the_allow_list_does_not(tmp_path):
    repo = mini_repo(tmp_path)
    _append_to_docstring(repo / "source/nnkit/helpers.py", "as_array", "    e.g. total = as_array(a) + as_array(b)")
    m = repo / "source/mini/manifest.toml"
    m.write_text(m.read_text() + ALLOW)
    build_release("mini", root=repo, output=tmp_path / "out", self_grade_gate=False)
    assert "total = as_array(a) + as_array(b)" in (tmp_path / "out/nnkit/helpers.py").read_text()
    shipped = (tmp_path / "out/manifest.toml").read_text()
    assert "release" not in tomllib.loads(shipped) and "as_array" not in shipped


def test_an_allowed_text_does_not_allow_other_fragments(tmp_path):
    repo = mini_repo(tmp_path)
    _append_to_docstring(repo / "source/nnkit/helpers.py", "as_array",
                         "    e.g. total = as_array(a) + as_array(b)\n    and self.n = self.n + k")
    m = repo / "source/mini/manifest.toml"
    m.write_text(m.read_text() + ALLOW)
    err = expect_failure(repo)
    assert_names(err, "solution-fragments", "nnkit/helpers.py",
                 line_containing(repo / "source/nnkit/helpers.py", "and self.n"), "source/nnkit/ops.py:37")


def test_an_allow_entry_that_allows_nothing_stops_the_release(tmp_path):
    repo = mini_repo(tmp_path)
    m = repo / "source/mini/manifest.toml"
    m.write_text(m.read_text() + ALLOW)
    err = expect_failure(repo)
    assert_names(err, "solution-fragments", "source/mini/manifest.toml", line_containing(m, '"total = as_array'),
                 "covers no fragment of a solution in the release; remove it")


def test_an_allow_entry_needs_its_reason(tmp_path):
    repo = mini_repo(tmp_path)
    m = repo / "source/mini/manifest.toml"
    m.write_text(m.read_text() + ALLOW.replace("the docstring shows the one-line sum on purpose", " "))
    err = expect_failure(repo)
    assert_names(err, "manifest", "source/mini/manifest.toml", line_containing(m, '"total = as_array'), "needs its reason")


# ---------------------------------------------------------------- the real assignment

#: What the fcnets release shows of its solutions on purpose, measured on the release built
#: from source/ (2026-11; 452 fingerprints, 8 copies in 4 texts): provided code that shares
#: a statement with a solution, and the regularisation gradient and reshape idiom its
#: docstrings and notebooks state. Used when
#: source/fcnets/manifest.toml does not carry its own [release.allow] yet.
FCNETS_ALLOW = """
[release.allow]
'w -= np.multiply(dw, config["learning_rate"], out=_scratch_like(w, dw))' = "sgd ships complete; sgd_momentum steps the same way"
"for p, w in self.model.params.items():" = "the provided Solver code walks the parameters the same way"
"X.reshape(X.shape[0], -1)" = "the flattening idiom the provided linear classifiers and the notebooks use"
"2 * reg * W" = "the gradient of the L2 term, stated by the linear-classifier docstrings and notebook 03"
"""


def test_fcnets_release_holds_no_fragment_but_a_handful_allowed_by_name(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(REPO_ROOT / "source", repo / "source", ignore=shutil.ignore_patterns(".*", "__pycache__"))
    (repo / "datasets").mkdir()
    shutil.copy(REPO_ROOT / "datasets/fetch.py", repo / "datasets/fetch.py")
    shutil.copytree(REPO_ROOT / "datasets/embedded", repo / "datasets/embedded")
    m = repo / "source/fcnets/manifest.toml"
    if "allow" not in tomllib.loads(m.read_text()).get("release", {}):
        m.write_text(m.read_text() + FCNETS_ALLOW)
    plan = plan_release("fcnets", repo)
    course, generated = open_course(plan, tmp_path / "course")
    staging = tmp_path / "staging"
    staging.mkdir()
    stage(plan, staging, generated)
    hits, unused = find_fragments(staging, plan.fragments, plan.allowed)
    assert not hits, "fragments of the solutions in the fcnets release, allowed by no entry:\n" + "\n".join(
        f"  {h.path}:{h.line}: {show_tokens(h.tokens)!r} from {h.origin[0]}:{h.origin[1]}" for h in hits)
    assert not unused, f"[release.allow] entries that allow nothing: {[a.text for a in unused]}"
    assert len(plan.allowed) <= 6, f"{len(plan.allowed)} allowed texts: more than a handful, tighten the notebooks"
    assert len(plan.fragments.fingerprints) > 300  # the rule has something to find
