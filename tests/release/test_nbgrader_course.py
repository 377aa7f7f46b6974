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


def test_cell_metadata_is_validated_by_one_validator_per_schema_with_jsonschemas_errors():
    """nbgrader's cell-metadata check, with its schema's validator built once (make_api): it accepts
    and refuses what ``jsonschema.validate`` does, with the same error."""
    import jsonschema
    from nbformat.v4 import new_code_cell
    from nbgrader.nbgraderformat import MetadataValidator, ValidationError, common

    nc._one_validator_per_schema()
    nc._one_validator_per_schema()  # once is enough: not wrapped twice
    assert isinstance(common.jsonschema, nc._SchemaValidators)
    assert not isinstance(common.jsonschema._jsonschema, nc._SchemaValidators)
    validator = MetadataValidator()
    good = new_code_cell("x = 1")
    good.metadata["nbgrader"] = {"schema_version": 3, "grade": True, "grade_id": "t", "locked": True,
                                 "points": 2, "solution": False}
    validator.validate_cell(good)
    for broken in ({"points": "two"}, {"grade_id": 7}, {"surprise": True}):
        cell = new_code_cell("x = 1")
        cell.metadata["nbgrader"] = {**good.metadata["nbgrader"], **broken}
        with pytest.raises(ValidationError) as ours:
            validator.validate_cell(cell)
        with pytest.raises(jsonschema.ValidationError) as theirs:
            jsonschema.validate(cell.metadata["nbgrader"], validator.schema)
        assert str(ours.value) == str(theirs.value)
