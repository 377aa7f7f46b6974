"""The grader's environment is read in one place (autograder/config.py)."""
from pathlib import Path

from autograder.config import course_secret, grading_dataset
from autograder.trusted.seeds import DEV_SECRET, resolve_secret


def test_the_grading_dataset_defaults_to_embedded_and_follows_the_environment(monkeypatch):
    monkeypatch.delenv("NNKIT_DATASET", raising=False)
    assert grading_dataset() == "embedded"
    monkeypatch.setenv("NNKIT_DATASET", "mnist")
    assert grading_dataset() == "mnist"


def test_the_secret_comes_from_the_variable_then_the_file_then_the_dev_fallback(monkeypatch, tmp_path):
    monkeypatch.delenv("NNKIT_COURSE_SECRET", raising=False)
    monkeypatch.delenv("NNKIT_COURSE_SECRET_FILE", raising=False)
    assert course_secret() is None and resolve_secret(None) == (DEV_SECRET, False)
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-the-file\n")
    monkeypatch.setenv("NNKIT_COURSE_SECRET_FILE", str(secret_file))
    assert course_secret() == Path(secret_file)
    assert resolve_secret(None) == (b"from-the-file", True)
    monkeypatch.setenv("NNKIT_COURSE_SECRET", "from-the-variable")
    assert resolve_secret(None) == (b"from-the-variable", True)
