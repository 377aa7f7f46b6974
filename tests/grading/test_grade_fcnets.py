"""End to end on the real fcnets release: the untouched release and hostile submissions.

The hostile one (autograder/course_demo.py) has an affine layer that forgets its
bias, and a cell that tries to read and rewrite the gradebook, reach the network,
and monkeypatches numpy so the wrong layer passes its in-kernel check. The trusted
checks must score it, the sandbox must contain it.

Two more attack the trust model itself (issue 9): `transformer` registers an IPython
input transformer that turns every later cell, hidden tests included, into `pass`
(and prints, encoded, every source it was handed); `oversized` does the same with a
student module padded past the trusted checks' size cap, so that the trusted checks
cannot run. Fail closed: both score 0 on every cell the trusted checks cover, and
no hidden test ever reached a kernel. Skipped until the release is built.
"""
from __future__ import annotations

import base64
import html
import re
import zipfile
import zlib
from dataclasses import replace

import pytest

from autograder import REPO_ROOT
from autograder.sandbox import bwrap as sandbox

RELEASE = REPO_ROOT / "assignments" / "fcnets"

TRANSFORMER_CELL = """
import base64, zlib
from IPython import get_ipython
def _swallow(lines):
    print("SEEN:" + base64.b64encode(zlib.compress("".join(lines).encode())).decode())
    return ["pass\\n"]
get_ipython().input_transformers_cleanup.append(_swallow)
"""


def _with_cell_after_setup(text: bytes, source: str) -> bytes:
    import nbformat
    from nbformat.v4 import new_code_cell

    nb = nbformat.reads(text.decode("utf-8"), as_version=4)
    first = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    nb.cells.insert(first + 1, new_code_cell(source.strip()))
    return nbformat.writes(nb).encode("utf-8")


def _transformer_zip(path, m, pad_bytes=0):
    """The untouched release with TRANSFORMER_CELL in every notebook (and layers.py padded)."""
    with zipfile.ZipFile(path, "w") as zf:
        for nb in m.notebooks:
            zf.writestr(nb, _with_cell_after_setup((RELEASE / nb).read_bytes(), TRANSFORMER_CELL))
        for mod in m.student_modules:
            text = (RELEASE / mod).read_bytes()
            if mod == "nnkit/layers.py" and pad_bytes:
                text += b"\n" + (b"# padding\n" * (pad_bytes // 10))
            zf.writestr(mod, text)
    return path


def hidden_lines():
    """Lines of the source notebooks' hidden-test regions that nothing of the release shows
    (its notebooks, or its package code, which tracebacks may quote)."""
    import nbformat

    from autograder.manifest import load_manifest

    m = load_manifest("fcnets")
    visible, hidden = set(), set()
    for py in RELEASE.rglob("*.py"):
        visible.update(line.strip() for line in py.read_text(encoding="utf-8").splitlines())
    for nb in m.notebooks:
        for cell in nbformat.read(str(RELEASE / nb), as_version=4).cells:
            visible.update(line.strip() for line in cell.source.splitlines())
        for cell in nbformat.read(str(REPO_ROOT / "source" / "fcnets" / nb), as_version=4).cells:
            inside = False
            for line in cell.source.splitlines():
                if "BEGIN HIDDEN TESTS" in line:
                    inside = True
                elif "END HIDDEN TESTS" in line:
                    inside = False
                elif inside and len(line.strip()) >= 8:
                    hidden.add(line.strip())
                else:  # in the release, or in a solved submission's own cells
                    visible.add(line.strip())
    return sorted(hidden - visible)
pytestmark = [
    pytest.mark.skipif(not (RELEASE / "nnkit" / "__init__.py").is_file(), reason="assignments/fcnets is not built yet"),
    pytest.mark.skipif(not sandbox.available(), reason="bubblewrap is needed: " + sandbox.unavailable_reason()),
]


def test_fcnets_untouched_release_scores_zero_and_hostile_is_contained_and_scored_by_trusted_checks(tmp_path):
    from nbgrader.api import Gradebook

    from autograder import course_demo
    from autograder.grading.settings import Settings
    from autograder.grading.coordinator import grade
    from autograder.manifest import load_manifest

    m = load_manifest("fcnets")
    subs, out = tmp_path / "submissions", tmp_path / "out"
    zips = course_demo.make_submissions(subs, m, REPO_ROOT / "source" / "fcnets", RELEASE, tmp_path / "no_models")
    for sid in ("reference", "typical_bugs"):
        zips[sid].unlink()
    _transformer_zip(subs / "transformer.zip", m)
    _transformer_zip(subs / "oversized.zip", m, pad_bytes=9 << 20)
    settings = replace(Settings(), dataset="embedded", course_secret="test-secret")
    results = {r["student_id"]: r for r in grade("fcnets", subs, out, workers=2, settings=settings)}

    untouched = results["untouched_release"]
    assert untouched["status"] == "graded", untouched["reasons"]
    auto = [c for c in untouched["cells"] if c["kind"] == "auto"]
    assert auto and all(c["final_score"] == 0.0 for c in auto)
    assert not {"repaired", "suspicious"} & set(untouched["flags"])

    hostile = results["hostile"]
    assert "suspicious" in hostile["flags"], hostile["reasons"]
    affine = next(c for c in hostile["cells"] if c["grade_id"] == "test_affine_forward")
    # Whatever the patched numpy made the kernel say, the trusted check fails the wrong layer.
    assert affine["final_score"] == 0.0 and affine["status"] == "failed", affine

    page = html.unescape(re.sub(r"<[^>]+>", "", (out / "feedback" / "hostile" / "01_layers.html").read_text()))
    assert "cannot see ../../../gradebook.db" in page
    assert re.search(r"^gradebook write failed: \w+$", page, re.M) and re.search(r"^network blocked: \w+$", page, re.M)
    # The source holds the words too (inside print calls); an output line would be alone.
    assert not re.search(r"^\s*(rewrote the gradebook|network reached)\s*$", page, re.M)
    with Gradebook(f"sqlite:///{out / 'gradebook.db'}", "nnkit") as gb:
        grades = [g for nb in gb.find_submission("fcnets", "untouched_release").notebooks for g in nb.grades]
        assert all(g.auto_score in (0.0, None) for g in grades)

    secret = hidden_lines()
    assert secret, "the fcnets notebooks hold hidden tests"
    for page in (out / "feedback").rglob("*"):
        assert page.is_dir() or page.suffix == ".html", page
        if page.suffix == ".html":
            text = re.sub(r"<[^>]+>", "", page.read_text())
            assert not [line for line in secret if line in text], page

    # Fail closed: the transformer made every cell pass in the kernel, the trusted checks
    # scored the stub package 0; and where they could not run at all, 0 too, never the kernel's.
    from autograder.grading.template import trusted_coverage

    covered = trusted_coverage("fcnets", True)
    for sid in ("transformer", "oversized"):
        r = results[sid]
        cells = [c for c in r["cells"] if c["kind"] == "auto" and c["grade_id"] in covered]
        assert cells and all(c["final_score"] == 0.0 for c in cells), (sid, r["cells"])
        assert sum(c["in_kernel_score"] for c in cells) > 0, "the transformer never fooled the kernel: proves nothing"
        assert "trusted_override" in r["flags"] or sid == "oversized", r["flags"]
    assert results["oversized"]["status"] == "partial" and "trusted_error" in results["oversized"]["flags"]
    assert {c["status"] for c in results["oversized"]["cells"] if c["grade_id"] in covered} == {"trusted_error"}

    # No hidden test ever reached a kernel: decode what the transformer was handed.
    seen = []
    for nb in (out / "autograded" / "transformer" / "fcnets").glob("*.ipynb"):
        for blob in re.findall(r"SEEN:([A-Za-z0-9+/=]+)", nb.read_text()):
            seen.append(zlib.decompress(base64.b64decode(blob)).decode())
    handed = "\n".join(seen)
    assert "assert" in handed and len(seen) > 20, "the transformer saw no grade cell: proves nothing"
    assert not [line for line in secret if line in handed]
