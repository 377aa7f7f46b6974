"""autograder.nbgrader_course on the golden mini-source: a real nbgrader round trip."""
from pathlib import Path

import numpy as np
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


def _course(tmp_path, exclude):
    cfg = nc.build_config(tmp_path / "course", assignment="mini", exclude_overwriting=exclude, timeout=30)
    api = nc.make_api(cfg)
    src = nc.put_source(cfg, "mini", FIXTURE / "source" / "mini")
    nc.copy_tree(FIXTURE / "source", src, MODULES)
    release = nc.generate_assignment(api, "mini")
    return cfg, api, src, release


def _stubbed(release: Path) -> None:
    """Replace the student modules nbgrader copied verbatim with failing stubs."""
    (release / "nnkit/ops.py").write_text(
        "def add(a, b):\n    raise NotImplementedError\n\ndef scale(x, factor=2.0):\n    raise NotImplementedError\n")
    (release / "nnkit/sub/extra.py").write_text("def square(v):\n    raise NotImplementedError\n")


def test_reference_full_marks_stub_zero_and_exclude_overwriting_matters(tmp_path):
    cfg, api, src, release = _course(tmp_path, STUDENT_MODULES)
    db = cfg.CourseDirectory.db_url

    ref = tmp_path / "ref"
    nc.copy_tree(src, ref)
    (ref / "models").mkdir()
    np.save(ref / "models" / "w.npy", np.array([1.0, 2.0, 3.0]))
    nc.submit(cfg, "mini", "reference", ref, files=["01_ops.ipynb", *STUDENT_MODULES, "models/w.npy"])
    nc.autograde(api, "mini", "reference")
    scores = {s.grade_id: s for s in nc.cell_scores(db, "mini", "reference")}
    # Points written in the fixture notebook: test_add 2, test_square 1, test_model 1.
    assert {k: s.auto_score for k, s in scores.items() if s.autograded} == {"test_add": 2.0, "test_square": 1.0, "test_model": 1.0}
    assert scores["answer_why"].cell_type == "markdown" and scores["answer_why"].needs_manual_grade

    _stubbed(release)
    nc.submit(cfg, "mini", "stub", release)
    nc.autograde(api, "mini", "stub")
    assert {s.grade_id: s.auto_score for s in nc.cell_scores(db, "mini", "stub") if s.autograded} == {
        "test_add": 0.0, "test_square": 0.0, "test_model": 0.0}

    # The same stub submission in a course WITHOUT exclude_overwriting: nbgrader copies the
    # reference modules over the student's, so the stubs score like the reference
    # (except the model, which no .py provides).
    cfg2, api2, _, _ = _course(tmp_path / "noexclude", [])
    nc.submit(cfg2, "mini", "stub", release)
    nc.autograde(api2, "mini", "stub")
    assert {s.grade_id: s.auto_score for s in nc.cell_scores(cfg2.CourseDirectory.db_url, "mini", "stub") if s.autograded} == {
        "test_add": 2.0, "test_square": 1.0, "test_model": 0.0}


def test_validate_invert_reports_passing_tests_and_accepts_stubs(tmp_path):
    _, _, _, release = _course(tmp_path, STUDENT_MODULES)
    # nbgrader's own release carries the reference .py verbatim: its tests pass.
    report = nc.validate_invert(release / "01_ops.ipynb")
    assert report is not None and "ops.add([1, 2], [3, 4])" in report and "extra.square(3)" in report
    _stubbed(release)
    assert nc.validate_invert(release / "01_ops.ipynb") is None


def test_environ_sets_and_restores(monkeypatch):
    monkeypatch.setenv("NNKIT_X", "old")
    monkeypatch.delenv("NNKIT_Y", raising=False)
    with nc.environ(NNKIT_X=None, NNKIT_Y="new"):
        import os
        assert "NNKIT_X" not in os.environ and os.environ["NNKIT_Y"] == "new"
    import os
    assert os.environ["NNKIT_X"] == "old" and "NNKIT_Y" not in os.environ
