"""Per-student seeds: HMAC-SHA256(secret, student_id), never the same for two students."""
import hashlib
import hmac

import pytest

from autograder.trusted.seeds import DEV_SECRET, SecretError, derive_seed, resolve_secret


def test_seed_is_the_hmac_of_the_student_id():
    expected = int.from_bytes(hmac.new(b"s3cret", b"alice", hashlib.sha256).digest()[:16], "big")
    assert derive_seed("alice", "s3cret") == expected


def test_students_and_secrets_give_different_seeds():
    seeds = {derive_seed(f"student{i}", "course-A") for i in range(500)}
    assert len(seeds) == 500
    assert derive_seed("alice", "course-A") != derive_seed("alice", "course-B")
    assert derive_seed("alice", "course-A") == derive_seed("alice", "course-A")


def test_secret_from_env_then_file(monkeypatch, tmp_path):
    monkeypatch.delenv("NNKIT_COURSE_SECRET", raising=False)
    monkeypatch.delenv("NNKIT_COURSE_SECRET_FILE", raising=False)
    assert resolve_secret() == (DEV_SECRET, False)
    f = tmp_path / "secret"
    f.write_text("from-file\n")
    monkeypatch.setenv("NNKIT_COURSE_SECRET_FILE", str(f))
    assert resolve_secret() == (b"from-file", True)
    monkeypatch.setenv("NNKIT_COURSE_SECRET", "from-env")
    assert resolve_secret() == (b"from-env", True)
    assert derive_seed("bob") == derive_seed("bob", "from-env")


def test_missing_or_empty_secret_file_is_a_clear_error(tmp_path):
    with pytest.raises(SecretError, match="cannot read the course secret file"):
        resolve_secret(tmp_path / "nope")
    (tmp_path / "empty").write_text("")
    with pytest.raises(SecretError, match="empty"):
        resolve_secret(tmp_path / "empty")
