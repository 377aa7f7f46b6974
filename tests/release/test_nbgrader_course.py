"""autograder.nbgrader_course: the configuration it builds.

Its nbgrader round trip (generate, submit, autograde, per-cell scores, validate --invert,
exclude_overwriting) runs in the release tests' self-grade on the golden mini-source.
"""
from pathlib import Path

import pytest

from autograder import nbgrader_course as nc

FIXTURE = Path(__file__).parent / "fixtures" / "mini_repo"
MODULES = ["nnkit/__init__.py", "nnkit/helpers.py", "nnkit/ops.py", "nnkit/sub/__init__.py", "nnkit/sub/extra.py"]
STUDENT_MODULES = ["nnkit/ops.py", "nnkit/sub/extra.py"]


def test_config_is_built_in_code_and_never_reads_a_config_file(tmp_path):
    # A hostile nbgrader_config.py in the course root must have no effect.
    (tmp_path / "nbgrader_config.py").write_text("c = get_config()\nc.Execute.timeout = 1\nraise SystemExit('ran')\n")
    cfg = nc.build_config(tmp_path, assignment="mini", exclude_overwriting=STUDENT_MODULES, timeout=77,
                          extra_config={"Execute": {"execute_retries": 2}})
    api = nc.make_api(cfg)
    assert api.coursedir.root == str(tmp_path.resolve())
    assert cfg.Execute.timeout == 77 and cfg.Execute.execute_retries == 2
    assert cfg.Autograde.exclude_overwriting == {"mini": STUDENT_MODULES}
    assert cfg.LimitOutput.max_traceback == 3
    assert "nbgrader.preprocessors.ClearHiddenTests" in cfg.GenerateFeedback.preprocessors
    assert cfg.IgnorePattern.enabled


def test_environ_sets_and_restores(monkeypatch):
    monkeypatch.setenv("NNKIT_X", "old")
    monkeypatch.delenv("NNKIT_Y", raising=False)
    with nc.environ(NNKIT_X=None, NNKIT_Y="new"):
        import os
        assert "NNKIT_X" not in os.environ and os.environ["NNKIT_Y"] == "new"
    import os
    assert os.environ["NNKIT_X"] == "old" and "NNKIT_Y" not in os.environ


def test_config_for_manifest_excludes_exactly_the_student_modules(tmp_path):
    from autograder.manifest import load_manifest
    from .helpers import MINI

    m = load_manifest("mini", MINI)
    cfg = nc.config_for_manifest(tmp_path, m, timeout=5)
    # source/mini/manifest.toml lists these two student modules.
    assert cfg.Autograde.exclude_overwriting == {"mini": ["nnkit/ops.py", "nnkit/sub/extra.py"]}
    assert cfg.Execute.timeout == 5


def test_the_gradebook_migration_head_read_from_the_scripts_is_alembics_own():
    """New gradebooks are stamped with the head nnkit reads from nbgrader's migration scripts
    (instead of nbgrader's `alembic heads` subprocess): it must be the head alembic computes."""
    import nbgrader
    from alembic.script import ScriptDirectory

    import nbgrader.api as nbapi

    from autograder.nbgrader_course import _cache_alembic_head, alembic_head

    heads = ScriptDirectory(str(Path(nbgrader.__file__).parent / "alembic")).get_heads()
    assert len(heads) == 1 and alembic_head() == heads[0]
    _cache_alembic_head()
    assert nbapi.get_alembic_version() == heads[0]
