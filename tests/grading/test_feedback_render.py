"""autograder.grading.feedback: a hostile executed notebook becomes a page with no active content.

Each test attacks one promise of the feedback pipeline (issue 9, mechanisms 5, 6
and the rendering part of 9 and 10) and inspects the written page with its own
parser (`html.parser`), not the module's audit.
"""
from __future__ import annotations

import base64
import html
import json
import os
import re
import sys
import tempfile
import time
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

from autograder.grading import feedback, outputs
from autograder.sandbox import bwrap as sandbox

HIDDEN_LINE = "assert nnkit_secret_value == 424242"
BLOB = base64.b64encode(zlib.compress(("### BEGIN HIDDEN TESTS\n" + HIDDEN_LINE + "\n").encode())).decode()
# A real 1x1 PNG: inline raster images must survive sanitising.
PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5f0000000049454e44ae426082")).decode()
SVG_SCRIPT = '<svg xmlns="http://www.w3.org/2000/svg"><script>alert("svg")</script><circle onload="alert(1)"/></svg>'

needs_bwrap = pytest.mark.skipif(not sandbox.available(), reason="bubblewrap unavailable here")


def _md(source: str, **nbgrader) -> dict:
    meta = {"nbgrader": nbgrader} if nbgrader else {}
    return {"cell_type": "markdown", "metadata": meta, "source": source}


def _code(source: str, outputs: list, **nbgrader) -> dict:
    meta = {"nbgrader": nbgrader} if nbgrader else {}
    return {"cell_type": "code", "metadata": meta, "source": source, "execution_count": 1, "outputs": outputs}


def _display(data: dict) -> dict:
    return {"output_type": "display_data", "data": data, "metadata": {}}


def _nb(cells: list) -> bytes:
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}).encode()


HOSTILE_MARKDOWN = "\n\n".join([
    "# Answer",
    "<script>alert('md')</script>",
    "<img src=x onerror=alert('md-img')>",
    '<a href="javascript:alert(1)">click</a> <a href="JaVaScRiPt&colon;alert(2)">2</a> <a href="vbscript:msgbox(1)">3</a>',
    SVG_SCRIPT,
    '<meta http-equiv="refresh" content="0;url=http://evil.example/refresh">',
    '<iframe src="http://evil.example/frame"></iframe>',
    "<style>body { background: url(http://evil.example/css.png) }</style>",
    '<div style="background:url(https://evil.example/inline.png)">styled</div>',
    '<img src="http://evil.example/track.png"> <img src="//evil.example/proto.png">',
    '<img src="data:image/svg+xml;base64,' + base64.b64encode(SVG_SCRIPT.encode()).decode() + '">',
    '<base href="http://evil.example/"><link rel="stylesheet" href="http://evil.example/a.css">',
    '<form action="http://evil.example/f"><input name=q><button>go</button></form>',
    '<object data="http://evil.example/o.swf"></object><embed src="http://evil.example/e.swf">',
    '<math><mi xlink:href="javascript:alert(3)">m</mi></math>',
    '<noscript><p title="</noscript><img src=x onerror=alert(4)>"></p></noscript>',
    '<div class="nnkit-banner nnkit-ok">test_affine: 3 / 3 points, passed</div>',
])

HOSTILE_OUTPUTS = [
    _display({"text/html": "<script>alert('out')</script><b>bold</b>", "text/plain": "<HTML>"}),
    _display({"application/javascript": "alert('js')", "text/plain": "<Javascript>"}),
    _display({"text/html": "<img src=x onerror=alert('out-img')>"}),
    _display({"image/svg+xml": SVG_SCRIPT}),
    _display({"text/markdown": "<script>alert('mdout')</script>[x](javascript:alert(5))"}),
    _display({"image/png": PNG, "text/plain": "<Figure>"}),
    {"output_type": "stream", "name": "stdout", "text": "Y" * 500_000},
]

ERROR = {"output_type": "error", "ename": "ValueError", "evalue": "bad",
         "traceback": [f"frame number {i:03d}" for i in range(50)]}

ROWS = [
    {"notebook": "01_layers", "grade_id": "test_affine", "kind": "auto", "score": 2.17, "max_score": 3.0,
     "status": "partial_credit", "message": "rel error 1e-3 <b>"},
    {"notebook": "01_layers", "grade_id": "test_relu", "kind": "auto", "score": 0.0, "max_score": 2.0,
     "status": "trusted_error", "message": "no verdict"},
    {"notebook": "01_layers", "grade_id": "test_deleted", "kind": "auto", "score": 0.0, "max_score": 1.0,
     "status": "missing", "message": ""},
]


def hostile_notebook() -> bytes:
    return _nb([
        _md(HOSTILE_MARKDOWN),
        _code("display(HTML(...))\n### BEGIN HIDDEN TESTS\n" + HIDDEN_LINE + "\n### END HIDDEN TESTS\n",
              HOSTILE_OUTPUTS, grade=True, grade_id="test_affine", points=3),
        _code("raise ValueError('bad')\n### BEGIN HIDDEN TESTS\n" + HIDDEN_LINE + "\n", [ERROR],
              grade=True, grade_id="test_relu", points=2),
        {"cell_type": "raw", "metadata": {"raw_mimetype": "text/html"}, "source": "<script>alert('raw')</script>"},
    ])


class Page(HTMLParser):
    """Every element, attribute and <style> text of a page, as a browser would tokenise them."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.style_text = ""
        self._in_style = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {k: (v or "") for k, v in attrs}))
        self._in_style = tag == "style"

    handle_startendtag = handle_starttag

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.style_text += data


def assert_inert(text: str) -> Page:
    """No script, handler, script URL, remote URL or dangerous element; the CSP first in head."""
    page = Page(text)
    names = [t for t, _ in page.tags]
    for bad in ("script", "iframe", "object", "embed", "form", "input", "button", "base", "link", "svg", "math",
                "frame", "frameset", "applet", "noscript"):
        assert bad not in names, f"<{bad}> in the page"
    for tag, attrs in page.tags:
        for name, value in attrs.items():
            assert not name.startswith("on"), f"handler {name} on <{tag}>"
            squashed = re.sub(r"[\s\x00-\x1f]", "", html.unescape(value)).lower()
            assert "javascript:" not in squashed and "vbscript:" not in squashed, (tag, name, value)
            assert name not in ("href", "action", "formaction", "data", "style", "srcset", "xlink:href"), (tag, name)
            if name == "src":
                assert re.match(r"^data:image/(png|jpeg|gif);base64,", value), (tag, value)
        if tag == "meta":
            assert attrs.get("http-equiv", "").lower() != "refresh"
    assert not re.search(r"url\s*\(|@import|https?:|//", page.style_text.replace("http://www.w3.org", ""))
    head = names[names.index("head") + 1]
    assert head == "meta" and page.tags[names.index("head") + 1][1]["http-equiv"] == "Content-Security-Policy"
    csp = page.tags[names.index("head") + 1][1]["content"]
    assert "default-src 'none'" in csp and "img-src data:" in csp and "script-src" not in csp
    return page


@pytest.fixture(scope="module")
def hostile_page(tmp_path_factory):
    """The hostile notebook rendered in the sandbox and written by outputs.write_feedback_pages."""
    if not sandbox.available():
        pytest.skip(f"bubblewrap unavailable: {sandbox.unavailable_reason()}")
    page = feedback.render_notebook(hostile_notebook(), ROWS, show_outputs=True, title="01_layers",
                                    wall_seconds=60)
    dest = tmp_path_factory.mktemp("fb") / "alice"
    assert outputs.write_feedback_pages(dest, {"01_layers.html": page}) == ["01_layers.html"]
    return (dest / "01_layers.html").read_text(encoding="utf-8")


def test_hostile_markdown_and_outputs_leave_no_active_content(hostile_page):
    page = assert_inert(hostile_page)
    # Script bodies and the Javascript output are gone, not merely inert (a tag the markdown
    # renderer escaped, or the raw cell, may still show as text: text runs nothing).
    for marker in ("'md'", "'out'", "'js'", "'mdout'", "svg\")"):
        assert marker not in html.unescape(re.sub(r"<[^>]+>", "", hostile_page.split("</h1>", 1)[1]))
    # Legitimate content is still there: text, bold output, the inline PNG.
    assert "bold" in hostile_page and any(t == "img" and a.get("src", "").startswith("data:image/png")
                                          for t, a in page.tags)


def test_page_shows_the_graders_scores_and_no_forged_banner(hostile_page):
    page = Page(hostile_page)
    banners = [a for t, a in page.tags if "nnkit-banner" in a.get("class", "")]
    assert len(banners) == 2  # test_affine and test_relu; the markdown's fake banner lost its class
    text = html.unescape(re.sub(r"<[^>]+>", " ", hostile_page))
    assert "2.17 / 3 points, partial credit" in re.sub(r"\s+", " ", text)
    assert "0 / 2 points, trusted error" in re.sub(r"\s+", " ", text)
    assert "cell not in this notebook" in text  # test_deleted: in the summary, not forgotten
    assert "rel error 1e-3 <b>" in text and "<b>\"" not in hostile_page.split("rel error 1e-3", 1)[1][:20]


def test_hidden_tests_outputs_and_tracebacks_are_cut(hostile_page):
    assert HIDDEN_LINE not in hostile_page and "nnkit_secret_value" not in hostile_page
    assert "Y" * feedback.OUTPUT_CHARS_PER_CELL not in hostile_page
    assert "Y" * 1000 in hostile_page and "more characters not shown" in hostile_page
    frames = re.findall(r"frame number (\d+)", hostile_page)
    assert frames == ["047", "048", "049"]


def test_show_outputs_false_drops_every_output_even_encoded_hidden_tests():
    nb = _nb([_code("import base64, zlib; print(base64.b64encode(zlib.compress(In[-1].encode())))",
                    [{"output_type": "stream", "name": "stdout", "text": BLOB + "\n"},
                     _display({"text/plain": HIDDEN_LINE})], grade=True, grade_id="test_affine", points=3)])
    shown = feedback.render_notebook(nb, ROWS[:1], show_outputs=True, title="t", wall_seconds=60, sandbox=False)
    assert BLOB in shown  # the channel exists when outputs are shown ...
    hidden = feedback.render_notebook(nb, ROWS[:1], show_outputs=False, title="t", wall_seconds=60,
                                      sandbox=sandbox.available())
    assert BLOB not in hidden and HIDDEN_LINE not in hidden  # ... and is closed when they are not
    assert "2.17 / 3 points" in re.sub(r"<[^>]+>", "", hidden)
    assert_inert(hidden)


def test_a_hundred_thousand_markdown_cells_end_with_feedback_error_quickly():
    nb = _nb([_md(f"## cell {i}\n\nsome *text*") for i in range(100_000)])
    start = time.monotonic()
    with pytest.raises(feedback.FeedbackError, match="cell"):
        feedback.render_notebook(nb, [], show_outputs=True, title="t", wall_seconds=30)
    assert time.monotonic() - start < 30


@needs_bwrap
def test_a_render_past_its_wall_budget_is_killed_with_feedback_error():
    heavy = "\n".join(f"* item **{j}** with `code` and [link](#x) and _more_" for j in range(40))
    nb = _nb([_md(heavy) for _ in range(feedback.MAX_CELLS)])
    start = time.monotonic()
    with pytest.raises(feedback.FeedbackError, match="longer than its 3 s budget"):
        feedback.render_notebook(nb, [], show_outputs=True, title="t", wall_seconds=3)
    assert time.monotonic() - start < 3 + 10  # killed at the budget, plus start-up and clean-up


def test_unreadable_notebooks_raise_feedback_error_and_notice_pages_are_inert(tmp_path):
    for bad in (b"\xff\xfe", b"[" * 100_000, b'{"cells": 3}'):
        with pytest.raises(feedback.FeedbackError):
            feedback.render_notebook(bad, [], show_outputs=True, title="t", wall_seconds=5)
    notice = feedback.notice_page("01 <script>", "feedback could not be rendered: <img src=x onerror=alert(1)>")
    assert_inert(notice)
    assert "<script>" not in notice and feedback.audit_page(notice) == []


@needs_bwrap
def test_the_renderers_sandbox_cannot_read_a_host_file_and_is_not_root(tmp_path):
    canary = Path(tempfile.mkdtemp(prefix="nnkit-canary-")) / "canary.txt"
    try:
        os.chmod(canary.parent, 0o755)
        canary.write_text("CANARY-CONTENT")
        os.chmod(canary, 0o644)  # world-readable: only the sandbox's mounts can hide it
        probe_dir = feedback._renderer_dir()
        probe = probe_dir / "probe.py"
        probe.write_text(
            "import os, sys\n"
            "try:\n    print('READ:' + open(sys.argv[1]).read())\n"
            "except OSError as e:\n    print('DENIED:' + type(e).__name__)\n"
            "print('UID:%d' % os.getuid())\n".replace("sys.argv[1]", repr(str(canary))))
        os.chmod(probe, 0o644)
        rc, out, err, reason = feedback._launch(probe, b"", 30, sandbox=True)
    finally:
        import shutil

        shutil.rmtree(canary.parent, ignore_errors=True)
        shutil.rmtree(probe_dir, ignore_errors=True)
    text = out.decode()
    assert rc == 0 and reason is None, err.decode()[-500:]
    assert "DENIED:" in text and "CANARY-CONTENT" not in text
    if os.geteuid() == 0:
        assert "UID:0" not in text  # the renderer never runs as root (issue 9, mechanism 10)


def test_the_unsandboxed_renderer_gets_a_minimal_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("NNKIT_COURSE_SECRET", "course-secret-xyz")
    probe_dir = feedback._renderer_dir()
    try:
        probe = probe_dir / "probe.py"
        probe.write_text("import os; print(sorted(os.environ.items()))\n")
        rc, out, _, _ = feedback._launch(probe, b"", 30, sandbox=False)
    finally:
        import shutil

        shutil.rmtree(probe_dir, ignore_errors=True)
    assert rc == 0 and b"course-secret-xyz" not in out and b"NNKIT_COURSE_SECRET" not in out


@needs_bwrap
def test_a_batch_renders_each_notebook_to_its_own_page_and_isolates_failures():
    good = _nb([_md("first page"), _code("x = 1", [], grade=True, grade_id="test_affine", points=3)])
    other = _nb([_md("second page")])
    got = feedback.render_notebooks([(good, ROWS[:1], "01_layers"), (b"not json", [], "02"), (other, [], "03")],
                                    show_outputs=True, wall_seconds=60)
    assert isinstance(got[1], feedback.FeedbackError)
    assert "first page" in got[0] and "second page" not in got[0] and "2.17 / 3" in got[0]
    assert "second page" in got[2] and "first page" not in got[2]
    for page in (got[0], got[2]):
        assert_inert(page)


@needs_bwrap
def test_notebooks_fed_while_later_ones_run_give_the_pages_of_one_batch():
    """Renderer.feed hands a finished notebook over early (grading does, while later notebooks
    run): the pages are those of one batch at the end, and a notebook fed other bytes than the
    page is asked for fails rather than show another notebook."""
    first = _nb([_md("first page"), _code("x = 1", [], grade=True, grade_id="test_affine", points=3)])
    second, third = _nb([_md("second page")]), _nb([_md("third page")])
    items = [(first, ROWS[:1], "01_layers"), (second, [], "02"), (third, [], "03")]
    at_the_end = feedback.render_notebooks(items, show_outputs=True, wall_seconds=60, keys=[4, 5, 6])
    renderer = feedback.Renderer(60, sandbox=True, pages=3)
    assert renderer.feed(4, first, show_outputs=True) and renderer.feed(5, second, show_outputs=True)
    assert not renderer.feed(4, first, show_outputs=True)  # once only
    assert not renderer.feed(6, b"not json", show_outputs=True)  # left for the end, which tells why
    early = feedback.render_notebooks(items, show_outputs=True, wall_seconds=60, renderer=renderer, keys=[4, 5, 6])
    assert all(isinstance(p, str) for p in at_the_end) and early == at_the_end
    assert "2.17 / 3" in early[0] and "third page" in early[2]

    swapped = feedback.Renderer(60, sandbox=True, pages=2)
    assert swapped.feed(0, second, show_outputs=True)
    got = feedback.render_notebooks(items[:2], show_outputs=True, wall_seconds=60, renderer=swapped, keys=[0, 1])
    assert isinstance(got[0], feedback.FeedbackError) and "changed" in str(got[0])
    assert "second page" in got[1] and "first page" not in got[1]


def test_the_unsandboxed_renderer_takes_notebooks_fed_early_too():
    """--unsafe-no-sandbox's plain subprocess reads the same JSON lines, fed as they come."""
    first, second = _nb([_md("first page")]), _nb([_md("second page")])
    renderer = feedback.Renderer(60, sandbox=False, pages=2)
    assert renderer.feed(3, first, show_outputs=True)
    got = feedback.render_notebooks([(first, [], "01"), (second, [], "02")], show_outputs=True, wall_seconds=60,
                                    sandbox=False, renderer=renderer, keys=[3, 7])
    assert "first page" in got[0] and "second page" not in got[0]
    assert "second page" in got[1] and "first page" not in got[1]


@needs_bwrap
def test_a_renderer_started_ahead_renders_the_same_page_and_stops_at_its_budget():
    """A Renderer (started before the notebooks exist, as grading does) gives the page a fresh
    render gives, marker for marker; one given too little time is stopped, one never used ends."""
    nb = _nb([_md("# Part 1", grade_id="q1", solution=True), _code("print(1)", [
        {"output_type": "stream", "name": "stdout", "text": "1\n"}], grade_id="t1", grade=True, points=2)])
    rows = [{"notebook": "01", "grade_id": "t1", "kind": "auto", "max_score": 2, "score": 2, "status": "passed",
             "message": ""}]
    fresh = feedback.render_notebooks([(nb, rows, "01")], show_outputs=True, wall_seconds=60)[0]
    ahead = feedback.Renderer(60, sandbox=True)
    time.sleep(0.5)  # the notebooks are still running
    early = feedback.render_notebooks([(nb, rows, "01")], show_outputs=True, wall_seconds=60, renderer=ahead)[0]
    assert isinstance(fresh, str) and isinstance(early, str)
    assert early == fresh and "print" in early and "Part 1" in early

    with pytest.raises(RuntimeError, match="one batch"):
        ahead.run(b"{}", 5)  # one renderer per batch: never a second student's pages

    heavy = "\n".join(f"* item **{j}** with `code` and [link](#x) and _more_" for j in range(40))
    slow = feedback.Renderer(60, sandbox=True)
    start = time.monotonic()
    page = feedback.render_notebooks([(_nb([_md(heavy) for _ in range(feedback.MAX_CELLS)]), [], "02")],
                                     show_outputs=True, wall_seconds=3, renderer=slow)[0]
    assert isinstance(page, feedback.FeedbackError) and "longer than its 3 s budget" in str(page)
    assert time.monotonic() - start < 3 + 10  # stopped at the batch's budget, not the renderer's 60 s

    unused = feedback.Renderer(60, sandbox=True)
    unused.close()
    assert unused._done.result(timeout=30)[0] == 0  # it ended by itself, well before its 60 s


def test_grading_hands_each_executed_notebook_over_once_as_nbgrader_wrote_it(tmp_path):
    """``submission._hand_over_executed`` (called as each notebook starts): every notebook named
    executed is read back from nbgrader's output and fed to its renderer once, with its key in
    the template; one not written, one not in the template, and a renderer that fails are
    skipped (the end renders them), never raised."""
    from types import SimpleNamespace

    from autograder.grading import submission

    class _Recorder:
        def __init__(self, fail=False):
            self.got, self.fail = [], fail

        def feed(self, key, nb_bytes, show_outputs):
            if self.fail:
                raise RuntimeError("renderer gone")
            self.got.append((key, nb_bytes, show_outputs))
            return True

    template = SimpleNamespace(notebooks=("01_a.ipynb", "02_b.ipynb", "03_c.ipynb"), kernel_sees_hidden=("02_b.ipynb",))
    shown, hidden = _Recorder(), _Recorder()
    run = SimpleNamespace(template=template, renderers={False: shown, True: hidden}, handed_over=set(),
                          autograded=tmp_path)
    (tmp_path / "01_a.ipynb").write_bytes(b"executed a")
    (tmp_path / "02_b.ipynb").write_bytes(b"executed b")
    submission._hand_over_executed(run, ["01_a"])
    submission._hand_over_executed(run, ["01_a", "02_b", "stray", "03_c"])  # 03_c: not written yet
    assert shown.got == [(0, b"executed a", True)]
    assert hidden.got == [(1, b"executed b", False)]  # the kernel saw hidden tests: no outputs
    run.renderers[False] = _Recorder(fail=True)
    (tmp_path / "03_c.ipynb").write_bytes(b"executed c")
    run.handed_over.discard("03_c.ipynb")
    submission._hand_over_executed(run, ["03_c"])  # a failing renderer costs nothing here
