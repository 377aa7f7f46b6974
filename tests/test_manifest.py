"""The manifest loader accepts the real manifest and names what is wrong in a broken one."""
import pytest

from autograder.manifest import ManifestError, load_manifest

GOOD = """
assignment = "a1"
title = "t"
notebooks = ["01.ipynb"]
student_modules = ["nnkit/layers.py"]
saved_models = ["models/m.npz"]
datasets = ["embedded"]
[thresholds.embedded]
acc = 0.5
[points]
test_x = 2
"""


def write(tmp_path, text):
    path = tmp_path / "manifest.toml"
    path.write_text(text)
    return path


def test_fcnets_manifest_loads_and_lists_the_four_notebooks():
    m = load_manifest("fcnets")
    assert m.assignment == "fcnets"
    assert [n[:2] for n in m.notebooks] == ["01", "02", "03", "04"]
    assert "embedded" in m.datasets and "cifar10" in m.datasets
    assert set(m.submission_files) >= set(m.notebooks) | set(m.student_modules)


def test_good_manifest_round_trips(tmp_path):
    m = load_manifest(write(tmp_path, GOOD))
    assert m.threshold("embedded", "acc") == 0.5
    assert m.points == {"test_x": 2.0}
    assert m.submission_files == ("01.ipynb", "nnkit/layers.py", "models/m.npz")


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda t: t.replace('notebooks = ["01.ipynb"]', 'notebooks = "01.ipynb"'), "`notebooks` must be a list"),
        (lambda t: t.replace('"nnkit/layers.py"', '"../evil.py"'), "relative path inside"),
        (lambda t: t.replace("acc = 0.5", "acc = 48"), "fraction in [0, 1]"),
        (lambda t: t.replace("test_x = 2", "test_x = -1"), "non-negative"),
        (lambda t: t.replace('datasets = ["embedded"]', 'datasets = ["cifar10"]'), "undeclared datasets"),
        (lambda t: t + "\n[[[", "not valid TOML"),
    ],
)
def test_broken_manifest_names_the_problem(tmp_path, edit, message):
    with pytest.raises(ManifestError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_manifest(write(tmp_path, edit(GOOD)))


def test_missing_threshold_and_manifest_say_what_to_do(tmp_path):
    m = load_manifest(write(tmp_path, GOOD))
    with pytest.raises(ManifestError, match=r"declare it under \[thresholds.embedded\]"):
        m.threshold("embedded", "nope")
    with pytest.raises(ManifestError, match="needs source/<assignment>/manifest.toml"):
        load_manifest("no_such_assignment", root=tmp_path)


def test_cli_lists_every_verb(capsys):
    from autograder.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    out = capsys.readouterr().out
    for verb in ("demo", "release", "grade", "check-package"):
        assert verb in out
