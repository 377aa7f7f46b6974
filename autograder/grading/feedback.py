"""Feedback pages: one executed notebook becomes one static, sanitised HTML page.

Everything in an executed notebook is hostile: the student wrote the markdown and
the code, and the kernel (student code) wrote the outputs. So the page is made in
three steps, and only the middle one touches nbconvert:

1. **Prepare, on the host, as plain data.** The notebook JSON (bytes the grader
   already read under a size budget) is rebuilt from scratch into a minimal
   notebook: known cell types and fields only, no student metadata, any
   ``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS`` region cut from every
   source, outputs dropped entirely when ``show_outputs`` is False (the grader
   uses that whenever the kernel saw hidden tests: then nothing the kernel
   printed may reach the student), otherwise kept only in safe MIME types and cut
   to the budgets below (text per cell, traceback frames, image sizes, the page).
2. **Render, in the sandbox.** This very file is copied into a fresh
   world-readable folder and run as ``python -I`` under bubblewrap (no network,
   nothing of the host but the Python environment and that folder, a private
   size-capped ``/tmp``, an unprivileged uid when the grader is root), with a
   wall, CPU, memory and output budget. It reads the prepared notebooks from
   stdin, one JSON line each (during grading each is handed over as soon as
   nbgrader has written it, while the later notebooks still run), and writes
   nbconvert's HTML (``basic`` template: body only, nothing remote) to stdout.
   A random nonce, the grader's, marks where each cell starts.
3. **Sanitise and assemble, on the host.** Whatever came back is hostile too. Each
   cell's fragment is cleaned by ``nh3`` with an allow-list (text, tables, code,
   images only as ``data:image/png|jpeg|gif``; no script, handler, link, form,
   frame, SVG, style or remote URL). The grader then writes the page itself:
   a Content-Security-Policy meta tag first in the head, its own CSS, a summary
   of the grade, and after every graded cell a banner with the score that
   counts and its message, taken from the grader's rows, so the page never
   contradicts the grade.

A render that overruns its budget (e.g. 100,000 markdown cells) raises
:class:`FeedbackError`; the caller then writes :func:`notice_page` instead.

This module imports only the standard library at the top: it is also the
sandboxed renderer script (see :func:`_renderer_main`).
"""
from __future__ import annotations

import hashlib
import html
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from html.parser import HTMLParser
from pathlib import Path

# ------------------------------------------------------------------------------------- budgets

#: The largest page the renderer may return (its stdout); past it the render fails.
PAGE_BYTES = 16 << 20
#: Cells in one notebook; a notebook with more is not rendered at all (course notebooks hold ~200).
MAX_CELLS = 5000
#: Characters of one cell's source that are shown, and of all sources of a page together.
SOURCE_CHARS = 64 << 10
SOURCE_CHARS_PER_PAGE = 2 << 20
#: Characters of text output (streams, text/plain, text/html, error text) shown per code cell.
OUTPUT_CHARS_PER_CELL = 20_000
#: Output items kept per code cell.
OUTPUTS_PER_CELL = 30
#: Traceback entries kept per error (the last ones: where it failed).
TRACEBACK_FRAMES = 3
#: Base64 characters of one image, and of all images of a page together.
IMAGE_CHARS = 2 << 20
IMAGE_CHARS_PER_PAGE = 8 << 20
#: Text output characters of the whole page.
OUTPUT_CHARS_PER_PAGE = 2 << 20

#: The policy of every page: nothing loads or runs; images only inline, styles only inline.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

#: Output MIME types that are kept (everything else, e.g. application/javascript,
#: image/svg+xml, widget views, is dropped before rendering).
TEXT_MIMES = ("text/html", "text/markdown", "text/plain")
IMAGE_MIMES = ("image/png", "image/jpeg", "image/gif")

_BASE64 = re.compile(r"^[A-Za-z0-9+/=\s]*$")
_DATA_IMAGE = re.compile(r"^data:image/(png|jpeg|gif);base64,[A-Za-z0-9+/=\s]*$", re.IGNORECASE)


class FeedbackError(Exception):
    """The page could not be rendered within its budgets; the message says why (safe to show)."""


# ----------------------------------------------------------------------------- 1. preparation


def strip_hidden_tests(source: str) -> str:
    """``source`` without any hidden-test region.

    nbgrader's rule, a little wider: a line that contains ``BEGIN HIDDEN TESTS``
    anywhere (any case) starts a region, one that contains ``END HIDDEN TESTS``
    ends it, both removed; an unterminated region runs to the end of the cell.
    """
    if "hidden tests" not in source.lower():
        return source
    kept, hiding = [], False
    for line in source.splitlines(keepends=True):
        upper = line.upper()
        if not hiding and "BEGIN HIDDEN TESTS" in upper:
            hiding = True
            kept.append("# (hidden tests removed)\n")
        elif hiding:
            hiding = "END HIDDEN TESTS" not in upper
        else:
            kept.append(line)
    return "".join(kept)


def _text(value, limit: int) -> str:
    """A notebook text field (str or list of str) as one str of at most ``limit`` characters."""
    if isinstance(value, list):
        parts, size = [], 0
        for piece in value:
            if not isinstance(piece, str):
                continue
            parts.append(piece)
            size += len(piece)
            if size > limit:
                break
        value = "".join(parts)
    if not isinstance(value, str):
        return ""
    if len(value) > limit:
        return value[:limit] + f"\n[... {len(value) - limit} more characters not shown]"
    return value


class _Budget:
    """What is left of the page's text and image budgets while preparing a notebook."""

    def __init__(self):
        self.text = OUTPUT_CHARS_PER_PAGE
        self.images = IMAGE_CHARS_PER_PAGE
        self.source = SOURCE_CHARS_PER_PAGE


def _clean_output(out, cell_left: int, budget: _Budget) -> tuple[dict | None, int]:
    """One output in a safe minimal form and the text characters it used, or (None, 0)."""
    if not isinstance(out, dict):
        return None, 0
    kind = out.get("output_type")
    room = max(0, min(cell_left, budget.text))
    if kind == "stream":
        text = _text(out.get("text"), room)
        name = "stderr" if out.get("name") == "stderr" else "stdout"
        return {"output_type": "stream", "name": name, "text": text}, len(text)
    if kind == "error":
        frames = out.get("traceback") if isinstance(out.get("traceback"), list) else []
        frames = [_text(f, 2000) for f in frames[-TRACEBACK_FRAMES:]]
        tb = _text("\n".join(frames), room)
        ename, evalue = _text(out.get("ename"), 200), _text(out.get("evalue"), 1000)
        return {"output_type": "error", "ename": ename, "evalue": evalue, "traceback": [tb]}, len(tb + ename + evalue)
    if kind not in ("display_data", "execute_result") or not isinstance(out.get("data"), dict):
        return None, 0
    data, used = {}, 0
    for mime in TEXT_MIMES:
        if mime in out["data"]:
            text = _text(out["data"][mime], max(0, room - used))
            data[mime] = text
            used += len(text)
    for mime in IMAGE_MIMES:
        value = out["data"].get(mime)
        value = _text(value, IMAGE_CHARS + 1)
        if value and len(value) <= min(IMAGE_CHARS, budget.images) and _BASE64.match(value):
            data[mime] = value
            budget.images -= len(value)
    if not data:
        return None, 0
    cleaned = {"output_type": kind, "data": data, "metadata": {}}
    if kind == "execute_result":
        count = out.get("execution_count")
        cleaned["execution_count"] = count if isinstance(count, int) and not isinstance(count, bool) else None
    return cleaned, used


def _clean_outputs(outputs, budget: _Budget) -> list[dict]:
    """The outputs of one code cell within the per-cell and page budgets, with a note for what was cut."""
    kept, left, dropped = [], OUTPUT_CHARS_PER_CELL, 0
    for out in outputs if isinstance(outputs, list) else []:
        if len(kept) >= OUTPUTS_PER_CELL or left <= 0 or budget.text <= 0:
            dropped += 1
            continue
        cleaned, used = _clean_output(out, left, budget)
        if cleaned is None:
            dropped += 1
            continue
        kept.append(cleaned)
        left -= used
        budget.text -= used
    if dropped:
        kept.append({"output_type": "stream", "name": "stdout",
                     "text": f"[{dropped} output(s) not shown: over the feedback budget or of a type pages do not show]\n"})
    return kept


def prepare_notebook(nb: dict, show_outputs: bool, key: int = 0) -> tuple[dict, list[str | None]]:
    """The minimal notebook the renderer gets, and the grade_id of each of its cells (or None).

    Built from scratch so that no field of the student's notebook but the cell
    types, sources and (cleaned) outputs reaches nbconvert. ``key`` numbers the
    notebook in a batch (it goes into the renderer's cell markers).
    """
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(cells, list):
        raise FeedbackError("the notebook has no list of cells")
    if len(cells) > MAX_CELLS:
        raise FeedbackError(f"the notebook has {len(cells)} cells, over the {MAX_CELLS}-cell feedback budget")
    budget = _Budget()
    out_cells, grade_ids = [], []
    for index, cell in enumerate(cells):
        cell = cell if isinstance(cell, dict) else {}
        kind = cell.get("cell_type") if cell.get("cell_type") in ("code", "markdown", "raw") else "raw"
        # Cut after removing hidden tests: a cut must never leave half a hidden region behind.
        source = _text(strip_hidden_tests(_text(cell.get("source"), 2 * SOURCE_CHARS)),
                       max(0, min(SOURCE_CHARS, budget.source)))
        budget.source -= len(source)
        new = {"id": f"c{index}", "cell_type": kind, "source": source, "metadata": {"nnkit_index": f"{key}:{index}"}}
        if kind == "code":
            count = cell.get("execution_count")
            new["execution_count"] = count if isinstance(count, int) and not isinstance(count, bool) else None
            new["outputs"] = _clean_outputs(cell.get("outputs"), budget) if show_outputs else []
        out_cells.append(new)
        meta = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
        nbg = meta.get("nbgrader") if isinstance(meta.get("nbgrader"), dict) else {}
        gid = nbg.get("grade_id")
        grade_ids.append(gid if isinstance(gid, str) else None)
    notebook = {"cells": out_cells, "nbformat": 4, "nbformat_minor": 5,
                "metadata": {"language_info": {"name": "python"},
                             "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}}
    return notebook, grade_ids


def _load(nb_bytes: bytes) -> dict:
    try:
        return json.loads(nb_bytes.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise FeedbackError(f"the notebook is not readable JSON ({type(exc).__name__})") from None


# ---------------------------------------------------------------------------------- 2. rendering

#: The renderer's template: nbconvert's body-only template, with a marker before every
#: cell (the nonce is the grader's, unknown to the student) and raw cells shown as text.
_TEMPLATE = """{%- extends 'basic/index.html.j2' -%}
{%- block any_cell scoped -%}
<!--{{ resources.nnkit_nonce }}:{{ cell.metadata.nnkit_index }}-->
{{ super() }}
{%- endblock any_cell -%}
{% block rawcell scoped %}<pre class="raw_cell">{{ cell.source | escape_html }}</pre>{% endblock rawcell %}
"""


def skip_slow_optional_imports() -> None:
    """Keep jsonschema from importing ``rfc3987_syntax``, an optional checker of the "iri"
    string format that builds a grammar on import: 1.6 s of the renderer's 1.9 s start-up
    (and of every nbgrader import), for a format no notebook schema uses. jsonschema then
    leaves that format unchecked. (The same function as ``autograder.skip_slow_optional_imports``:
    this file runs on its own in the sandbox and imports nothing of the kit.)"""
    sys.modules.setdefault("rfc3987_syntax", None)


def _renderer_main() -> int:
    """The sandboxed side: prepared notebooks as JSON on stdin, their HTML bodies on stdout.

    Each cell's HTML follows its marker ``<!--<nonce>:<notebook>:<cell>-->``; a
    notebook nbconvert could not render is marked ``<!--<nonce>:<notebook>:failed-->``.
    """
    if sys.argv[1:2] == ["--rlimits"]:  # the unsandboxed path: the budgets bwrap would have set
        import resource

        memory, cpu = int(sys.argv[2]), int(sys.argv[3])
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # Import nbconvert and compile its templates and lexer first, then wait for the notebooks:
    # a renderer started ahead of time (``Renderer``) has done that work by the time they come.
    skip_slow_optional_imports()
    import nbformat

    exporter = _exporter()
    warm_up, _ = prepare_notebook(_WARM_UP, True)
    exporter.from_notebook_node(nbformat.from_dict(warm_up), resources={"nnkit_nonce": "0" * 32})
    # JSON lines (``_line``): the nonce first, then one prepared notebook per line, each
    # rendered as it comes (``Renderer.feed`` hands notebooks over while later ones still run).
    first = sys.stdin.buffer.readline()
    if not first.strip():
        return 0  # a renderer started for pages that did not come
    nonce = json.loads(first)["nonce"]
    if not re.fullmatch(r"[0-9a-f]{32}", nonce):
        raise SystemExit("bad nonce")
    for raw in sys.stdin.buffer:
        item = json.loads(raw)
        key, notebook = int(item["key"]), item["notebook"]
        try:
            body, _ = exporter.from_notebook_node(nbformat.from_dict(notebook), resources={"nnkit_nonce": nonce})
        except Exception as exc:  # one malformed notebook must not cost the others their page
            print(f"notebook {key}: {type(exc).__name__}", file=sys.stderr)
            body = f"<!--{nonce}:{int(key)}:failed-->"
        sys.stdout.buffer.write(body.encode("utf-8", "replace"))
    sys.stdout.flush()
    return 0


class _PassThroughSoup:
    """Stands in for BeautifulSoup in nbconvert's HTMLExporter: the page as it is.

    nbconvert re-parses the whole page with BeautifulSoup only to add alt texts and
    tabindex attributes; on a large notebook that is four fifths of the render time.
    """

    def __init__(self, markup, features=None):
        self.markup = markup

    def select(self, selector):
        return []

    def __str__(self):
        return self.markup


#: The renderer's warm-up notebook (the grader's own): a code cell with an output and a
#: markdown cell, so that every template and the Python lexer are compiled before real input.
_WARM_UP = {"cells": [{"cell_type": "code", "source": "x = 1\nprint(x)", "execution_count": 1, "metadata": {},
                       "outputs": [{"output_type": "stream", "name": "stdout", "text": "1\n"}]},
                      {"cell_type": "markdown", "source": "# A *title*", "metadata": {}}]}


def _exporter():
    """nbconvert's HTMLExporter on our template, without its two costly passes.

    Its ``clean_html`` filter (bleach, in pure Python) and its BeautifulSoup pass
    are skipped: every fragment is sanitised by nh3 and audited on the host, so
    they add time, not safety (measured: 45 s -> 8.5 s on a notebook at the budgets).
    """
    import nbconvert.exporters.html as html_exporter
    from jinja2 import DictLoader

    html_exporter.BeautifulSoup = _PassThroughSoup
    exporter = html_exporter.HTMLExporter(
        template_name="basic", template_file="nnkit.html.j2",
        extra_loaders=[DictLoader({"nnkit.html.j2": _TEMPLATE})])
    exporter.register_filter("clean_html", lambda value: value)
    return exporter


def _renderer_dir() -> Path:
    """A fresh world-readable folder holding only a copy of this file (the renderer script).

    World-readable because, when the grader is root, the sandbox runs as an
    unprivileged uid; a copy because the sandbox must see nothing else of the repo.
    """
    folder = Path(tempfile.mkdtemp(prefix="nnkit-render-"))
    os.chmod(folder, 0o755)
    script = folder / "nnkit_feedback_renderer.py"
    shutil.copyfile(__file__, script)
    os.chmod(script, 0o644)
    return folder


def _limits(wall_seconds: float, pages: int = 1):
    from ..sandbox.limits import renderer_limits

    return renderer_limits(wall_seconds, PAGE_BYTES * max(1, pages))


def _launch(script: Path, stdin, wall_seconds: float, *, sandbox: bool, pages: int = 1,
            cancel: threading.Event | None = None) -> tuple[int, bytes, bytes, str | None]:
    """Run ``python -I script`` (sandboxed or plain) with the render budgets: (rc, stdout, stderr, reason).

    `stdin` is bytes, or a callable returning them or an iterable of chunks once known
    (``Renderer``); setting `cancel` stops the renderer (reason "timeout")."""
    argv = [sys.executable, "-I", str(script)]
    limits = _limits(wall_seconds, pages)
    if sandbox:
        from ..sandbox import bwrap as sb

        got = sb.run(argv, readable=[script.parent], writable=[], cwd="/tmp", limits=limits, stdin=stdin,
                     cancel=cancel)
        return got.returncode, got.stdout, got.stderr, got.reason
    return _run_plain(argv, stdin, limits, cwd=script.parent, cancel=cancel)


def _line(item: dict) -> bytes:
    """One line of the renderer's input (JSON escapes every newline inside it)."""
    return json.dumps(item).encode("utf-8") + b"\n"


class Renderer:
    """A sandboxed renderer started before its notebooks exist, for one submission's pages.

    It imports nbconvert and compiles its templates (a warm-up render of a built-in
    notebook) while the submission's kernels run. ``feed`` hands it a notebook nbgrader has
    finished while later ones still run, and it renders that one at once; ``run`` hands it
    the rest and collects every page. Each submission gets its own (no state is shared
    between students); ``close`` ends one that was not run.
    """

    def __init__(self, wall_seconds: float, *, sandbox: bool, pages: int = 1):
        import queue
        from concurrent.futures import Future

        #: The markers' nonce, fixed now: notebooks fed early are rendered with it.
        self.nonce = secrets.token_hex(16)
        self._input: queue.Queue = queue.Queue()
        self._cancel = threading.Event()
        self._done: Future = Future()
        self._ended = False
        self._fed: dict[int, tuple[bytes, list[str | None]]] = {}  # key -> (sha256 of nb_bytes, grade ids)
        folder = _renderer_dir()

        def lines():
            yield _line({"nonce": self.nonce})
            while (chunk := self._input.get()) is not None:
                yield chunk

        def launch() -> None:
            try:
                self._done.set_result(_launch(folder / "nnkit_feedback_renderer.py", lines, wall_seconds,
                                              sandbox=sandbox, pages=pages, cancel=self._cancel))
            except BaseException as exc:  # handed to the caller of run()
                self._done.set_exception(exc)
            finally:
                shutil.rmtree(folder, ignore_errors=True)

        threading.Thread(target=launch, name="feedback-renderer", daemon=True).start()

    def feed(self, key: int, nb_bytes: bytes, show_outputs: bool) -> bool:
        """Prepare the executed notebook ``nb_bytes`` as notebook ``key`` and hand it over now, to
        be rendered while later notebooks run. False, and nothing sent, when it cannot be
        prepared, is over the per-notebook input budget, or the renderer has its last batch
        already: ``render_notebooks`` then deals with it among the rest."""
        if self._ended or key in self._fed:
            return False
        try:
            prepared, grade_ids = prepare_notebook(_load(nb_bytes), show_outputs, key)
        except FeedbackError:
            return False
        line = _line({"key": int(key), "notebook": prepared})
        if len(line) > 2 * PAGE_BYTES:
            return False
        self._fed[key] = (hashlib.sha256(nb_bytes).digest(), grade_ids)
        self._input.put(line)
        return True

    def fed(self, key: int, nb_bytes: bytes) -> list[str | None] | None:
        """The grade ids of notebook ``key`` if it was fed; None if it was not.

        Raises
        ------
        FeedbackError : it was fed other bytes than ``nb_bytes`` (its page would not be theirs).
        """
        if key not in self._fed:
            return None
        digest, grade_ids = self._fed[key]
        if digest != hashlib.sha256(nb_bytes).digest():
            raise FeedbackError("the executed notebook changed after it was handed to the renderer")
        return grade_ids

    def run(self, stdin: bytes, seconds: float) -> tuple[int, bytes, bytes, str | None]:
        """(rc, stdout, stderr, reason) of rendering what was fed and the lines `stdin`; stopped
        after `seconds` (reason "timeout")."""
        if self._ended:
            raise RuntimeError("a Renderer renders one batch")
        self._ended = True
        if stdin:
            self._input.put(stdin)
        self._input.put(None)
        try:
            return self._done.result(timeout=seconds)
        except TimeoutError:
            self._cancel.set()
            try:
                self._done.result(timeout=30)  # the sandbox kills it within its 20 ms poll
            except TimeoutError:
                pass
            return -9, b"", b"", "timeout"

    def close(self) -> None:
        """End a renderer that was not run (it renders what it was fed and exits); a run one has ended already."""
        if not self._ended:
            self._ended = True
            self._input.put(None)


def _run_plain(argv: list[str], stdin, limits, cwd: Path,
               cancel: threading.Event | None = None) -> tuple[int, bytes, bytes, str | None]:
    """The ``--unsafe-no-sandbox`` path: a plain subprocess, minimal environment, same budgets.

    Not isolated (it sees the host as the grader's user), but it runs no student
    code: only nbconvert on the prepared notebook.
    """
    from ..sandbox.bwrap import feed_pipe

    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(cwd), "TMPDIR": str(cwd),
           "PYTHONDONTWRITEBYTECODE": "1", "JUPYTER_PLATFORM_DIRS": "1"}
    # The renderer sets its own memory and CPU limits from these (no preexec_fn: the
    # grader has threads, and a fork with them must exec at once).
    argv = [*argv, "--rlimits", str(int(limits.memory_bytes)), str(int(limits.cpu_seconds))]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=cwd, env=env, start_new_session=True)
    chunks: dict[str, list[bytes]] = {"out": [], "err": []}
    over = threading.Event()

    def read(pipe, key, keep):
        size = 0
        while data := pipe.read(1 << 16):
            size += len(data)
            if size > keep:
                over.set()
                _kill(proc)
                return
            chunks[key].append(data)

    threads = [threading.Thread(target=read, args=(proc.stdout, "out", limits.output_bytes), daemon=True),
               threading.Thread(target=read, args=(proc.stderr, "err", 1 << 20), daemon=True),
               threading.Thread(target=feed_pipe, args=(proc.stdin, stdin), daemon=True)]
    for t in threads:
        t.start()
    reason = None
    deadline = time.monotonic() + limits.wall_seconds
    while True:
        try:
            proc.wait(timeout=0.02)
            break
        except subprocess.TimeoutExpired:
            if time.monotonic() > deadline or (cancel is not None and cancel.is_set()):
                reason = "timeout"
                _kill(proc)
                proc.wait()
                break
    for t in threads[:2]:
        t.join(5)
    if over.is_set():
        reason = "output"
    return proc.returncode, b"".join(chunks["out"]), b"".join(chunks["err"]), reason


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, 9)
    except (ProcessLookupError, PermissionError):
        pass


def _render_bodies(notebooks: dict[int, dict], nonce: str, seconds_left: float, budget: float,
                   sandbox: bool, renderer: Renderer | None = None) -> str:
    """nbconvert's HTML of prepared notebooks, rendered in one separate (sandboxed) process.

    One process for all of a submission's notebooks: importing nbconvert costs
    about 2 s, rendering a course notebook a fraction of that. ``seconds_left`` is
    the renderer's wall limit, what is left of the caller's ``budget``. With ``renderer``
    (whose nonce is ``nonce``), its output also holds the notebooks fed to it before.
    """
    stdin = b"".join(_line({"key": k, "notebook": nb}) for k, nb in notebooks.items())
    if len(stdin) > 2 * PAGE_BYTES * len(notebooks):
        raise FeedbackError(f"the notebooks are too large to render ({len(stdin)} bytes after preparation)")
    if renderer is not None:
        rc, out, err, reason = renderer.run(stdin, seconds_left)
    else:
        folder = _renderer_dir()
        try:
            rc, out, err, reason = _launch(folder / "nnkit_feedback_renderer.py", _line({"nonce": nonce}) + stdin,
                                           seconds_left, sandbox=sandbox, pages=len(notebooks))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    if reason == "timeout":
        raise FeedbackError(f"feedback rendering took longer than its {budget:g} s budget")
    if reason == "output":
        raise FeedbackError(f"the feedback is larger than its {PAGE_BYTES >> 20} MiB budget per page")
    if reason == "memory":
        from ..sandbox.limits import RENDERER_MEMORY_BYTES

        raise FeedbackError(f"feedback rendering needed more than its {RENDERER_MEMORY_BYTES >> 20} MiB memory budget")
    if rc != 0 or reason:
        last = (err.decode("utf-8", "replace").strip().splitlines() or ["no message"])[-1]
        # ascii(): the message may quote the notebook; it must not carry control characters.
        raise FeedbackError(f"feedback rendering failed (exit {rc}{', ' + reason if reason else ''}): {ascii(last)[:300]}")
    return out.decode("utf-8", "replace")


# ------------------------------------------------------------------------- 3. sanitise, assemble

_TAGS = {"a", "abbr", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd", "del", "details",
         "div", "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img",
         "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "samp", "small", "span", "strong", "sub",
         "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "tt", "u", "ul", "var"}
#: Removed with everything inside them (a stripped tag otherwise keeps its text).
_CLEAN_CONTENT = {"script", "style", "iframe", "object", "embed", "noscript", "template", "svg", "math",
                  "textarea", "title", "select", "noembed", "noframes", "xmp", "frameset", "applet", "head"}
_ATTRIBUTES = {"*": {"class", "title"}, "img": {"src", "alt", "width", "height"},
               "td": {"colspan", "rowspan"}, "th": {"colspan", "rowspan"}, "ol": {"start"}}

_cleaner_cache: list = []


def _attribute_filter(tag: str, attr: str, value: str) -> str | None:
    """The last word on each attribute nh3 allowed: images only inline in safe raster types."""
    if attr == "src":
        return value if tag == "img" and _DATA_IMAGE.match(value) else None
    if attr == "class":
        # The grader's own classes (banners, summary) cannot be borrowed by the notebook.
        kept = [c for c in value.split() if not c.lower().startswith("nnkit")]
        return " ".join(kept) or None
    if attr in ("width", "height", "colspan", "rowspan", "start"):
        return value if re.fullmatch(r"\d{1,5}", value.strip()) else None
    return value


def _cleaner():
    if not _cleaner_cache:
        import nh3

        _cleaner_cache.append(nh3.Cleaner(tags=_TAGS, clean_content_tags=_CLEAN_CONTENT, attributes=_ATTRIBUTES,
                                          attribute_filter=_attribute_filter, strip_comments=True, link_rel=None,
                                          url_schemes={"data"}, url_relative="deny"))
    return _cleaner_cache[0]


def sanitize_fragment(fragment: str) -> str:
    """``fragment`` with only the allow-listed tags and attributes (see the module docstring)."""
    return _cleaner().clean(fragment)


def _split_cells(body: str, nonce: str) -> dict[int, dict[int, str] | None]:
    """{notebook: {cell index: that cell's HTML}, or None when it failed} from the renderer's output.

    Text before the first marker (the template's wrapper) is dropped. The markers
    carry the grader's nonce, so no notebook can forge one.
    """
    parts = re.split(r"<!--" + nonce + r":(\d+):(\d+|failed)-->", body)
    out: dict[int, dict[int, str] | None] = {}
    for i in range(1, len(parts) - 2, 3):
        key, cell, html_ = int(parts[i]), parts[i + 1], parts[i + 2]
        if cell == "failed":
            out[key] = None
        elif out.get(key, {}) is not None:
            cells = out.setdefault(key, {})
            cells[int(cell)] = cells.get(int(cell), "") + html_
    return out


def _score(x) -> str:
    return "-" if x is None else f"{float(x):g}"


def _counted(row: dict):
    return row.get("final_score", row.get("score"))


def _status_class(status) -> str:
    return {"passed": "ok", "failed": "bad", "partial_credit": "partial"}.get(status, "other")


def _banner(row: dict) -> str:
    """The grader's verdict on one graded cell (escaped: the message may quote student values)."""
    status = str(row.get("status", ""))
    message = str(row.get("message") or "")
    text = (f"<strong>{html.escape(str(row.get('grade_id', '')))}</strong>: "
            f"{_score(_counted(row))} / {_score(row.get('max_score'))} points, {html.escape(status.replace('_', ' '))}")
    if message:
        text += f'<div class="nnkit-message">{html.escape(message[:2000])}</div>'
    return f'<div class="nnkit-banner nnkit-{_status_class(status)}">{text}</div>'


def _summary(rows: list[dict], found: set[str]) -> str:
    lines = ['<table class="nnkit-summary"><thead><tr><th>check</th><th>points</th><th>status</th><th>message</th></tr></thead><tbody>']
    for row in rows:
        gid = str(row.get("grade_id", ""))
        status = str(row.get("status", "")).replace("_", " ") + ("" if gid in found else " (cell not in this notebook)")
        lines.append(f'<tr class="nnkit-{_status_class(row.get("status"))}"><td>{html.escape(gid)}</td>'
                     f"<td>{_score(_counted(row))} / {_score(row.get('max_score'))}</td>"
                     f"<td>{html.escape(status)}</td><td>{html.escape(str(row.get('message') or '')[:500])}</td></tr>")
    got = sum(float(_counted(r) or 0) for r in rows)
    out_of = sum(float(r.get("max_score") or 0) for r in rows)
    lines.append(f"</tbody><tfoot><tr><th>total</th><th>{got:g} / {out_of:g}</th><th></th><th></th></tr></tfoot></table>")
    return "\n".join(lines)


def _css() -> str:
    """The grader's own CSS (never the renderer's): layout, banners and pygments' colours."""
    try:
        from pygments.formatters import HtmlFormatter

        pygments_css = HtmlFormatter(style="default").get_style_defs(".highlight")
    except Exception:  # pygments ships with nbconvert; a page without colours is still a page
        pygments_css = ""
    return _BASE_CSS + pygments_css


_BASE_CSS = """
body { font-family: system-ui, sans-serif; max-width: 60em; margin: 1em auto; padding: 0 1em; color: #222; }
pre { white-space: pre-wrap; word-break: break-word; margin: 0; }
.cell { margin: 0.6em 0; }
.input_prompt, .prompt { color: #888; font-size: 85%; }
.input_area { background: #f6f6f6; border: 1px solid #ddd; padding: 0.3em 0.5em; }
.output_area pre, .raw_cell { background: #fff; padding: 0.2em 0.5em; }
.output_stderr pre, .output_error pre { background: #fdd; }
img { max-width: 100%; }
table { border-collapse: collapse; }
td, th { border: 1px solid #ccc; padding: 0.2em 0.5em; }
.nnkit-banner { border-left: 0.4em solid #888; background: #f2f2f2; padding: 0.4em 0.7em; margin: 0.3em 0 1em; }
.nnkit-banner.nnkit-ok { border-color: #2a2; background: #efe; }
.nnkit-banner.nnkit-bad { border-color: #c22; background: #fee; }
.nnkit-banner.nnkit-partial { border-color: #c80; background: #ffe; }
.nnkit-message { white-space: pre-wrap; font-family: monospace; margin-top: 0.2em; }
.nnkit-note { color: #555; }
"""


#: How every page the grader writes begins: the policy is the first thing in the head.
PAGE_HEAD = ('<!DOCTYPE html>\n<html lang="en">\n<head>\n'
             f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n')


def is_grader_page(page: str) -> bool:
    """True when ``page`` starts with the grader's own head (see :data:`PAGE_HEAD`)."""
    return isinstance(page, str) and page.startswith(PAGE_HEAD)


def _page(title: str, body: str) -> str:
    """A whole page around grader-made ``body``: the CSP first in the head, the grader's CSS."""
    return (PAGE_HEAD + '<meta charset="utf-8">\n<meta name="referrer" content="no-referrer">\n'
            f"<title>{html.escape(title)}</title>\n<style>{_css()}</style>\n</head>\n<body>\n"
            f"<h1>{html.escape(title)}</h1>\n{body}\n</body>\n</html>\n")


class _Audit(HTMLParser):
    """Lists what a finished page holds beyond the allow-list (an independent second look)."""

    HEAD = {"html": {"lang"}, "head": set(), "meta": {"http-equiv", "content", "charset", "name"},
            "title": set(), "style": set(), "body": set()}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.counts: dict[str, int] = {}

    def handle_starttag(self, tag, attrs):
        self.counts[tag] = self.counts.get(tag, 0) + 1
        allowed = self.HEAD.get(tag, _ATTRIBUTES.get(tag, set()) | _ATTRIBUTES["*"]) if (tag in _TAGS or tag in self.HEAD) else None
        if allowed is None:
            self.problems.append(f"tag <{tag}>")
            return
        for name, value in attrs:
            if name not in allowed:
                self.problems.append(f"attribute {name} on <{tag}>")
            elif name == "src" and not _DATA_IMAGE.match(value or ""):
                self.problems.append(f"src on <{tag}> that is not an inline raster image")

    handle_startendtag = handle_starttag


def audit_page(page: str) -> list[str]:
    """What in ``page`` is not allowed (empty for a clean page): unknown tags or attributes, a
    non-inline image, more head elements (meta, style, title) than the grader writes."""
    audit = _Audit()
    audit.feed(page)
    audit.close()
    for tag, most in (("meta", 3), ("style", 1), ("title", 1), ("html", 1), ("head", 1), ("body", 1)):
        if audit.counts.get(tag, 0) > most:
            audit.problems.append(f"{audit.counts[tag]} <{tag}> elements")
    if not is_grader_page(page):
        audit.problems.append("the page does not start with the grader's head and policy")
    return audit.problems


def notice_page(title: str, message: str) -> str:
    """The short page written instead of feedback that could not be rendered."""
    return _page(title, f'<p class="nnkit-note">{html.escape(message)}</p>')


def render_notebook(nb_bytes: bytes, cells: list[dict], *, show_outputs: bool, title: str,
                    wall_seconds: float, sandbox: bool = True) -> str:
    """One executed notebook as one self-contained, sanitised HTML page.

    Parameters
    ----------
    nb_bytes : the executed notebook, as read by the grader (under its size budget).
    cells : the grader's rows for this notebook's graded cells (``grade_id``, ``score``
        or ``final_score``, ``max_score``, ``status``, ``message``): a banner per cell
        and the summary table come from these only.
    show_outputs : False drops every code cell's outputs (use it whenever the kernel
        could see hidden tests).
    title : the page's title (escaped).
    wall_seconds : the budget of the whole render; past it :class:`FeedbackError`.
    sandbox : False only for ``--unsafe-no-sandbox``: a plain subprocess instead of bwrap.

    Raises
    ------
    FeedbackError : unreadable notebook, over a budget, or the renderer failed.
    """
    page = render_notebooks([(nb_bytes, cells, title)], show_outputs=show_outputs, wall_seconds=wall_seconds,
                            sandbox=sandbox)[0]
    if isinstance(page, FeedbackError):
        raise page
    return page


def render_notebooks(items: list[tuple[bytes, list[dict], str]], *, show_outputs: bool, wall_seconds: float,
                     sandbox: bool = True, renderer: Renderer | None = None,
                     keys: list[int] | None = None) -> list[str | FeedbackError]:
    """Several notebooks ``(nb_bytes, cells, title)`` of one submission, rendered in one sandbox run.

    Same pages as :func:`render_notebook`, about 2 s faster per extra notebook (one
    nbconvert start-up). Returns, in order, a page or the :class:`FeedbackError` of
    that notebook; ``wall_seconds`` is the budget of the whole batch (past it every
    notebook not yet returned fails). ``renderer``: one started ahead (``Renderer``), else a
    fresh one is started now. ``keys``: each item's key in the renderer's markers (default
    0, 1, ...); an item whose key was fed to ``renderer`` already (``Renderer.feed``) is not
    prepared or sent again (and fails if it was fed other bytes).
    """
    deadline = time.monotonic() + wall_seconds
    keys = list(range(len(items))) if keys is None else [int(k) for k in keys]
    if len(set(keys)) != len(items):
        raise ValueError("render_notebooks needs one distinct key per item")
    results: dict[int, str | FeedbackError] = {}
    prepared: dict[int, dict] = {}  # sent now
    grade_ids: dict[int, list[str | None]] = {}  # of every notebook rendered, fed earlier or sent now
    for key, (nb_bytes, _, _) in zip(keys, items):
        try:
            fed = renderer.fed(key, nb_bytes) if renderer is not None else None
            if fed is not None:
                grade_ids[key] = fed
                continue
            prepared[key], grade_ids[key] = prepare_notebook(_load(nb_bytes), show_outputs, key)
        except FeedbackError as exc:
            results[key] = exc
    if grade_ids:
        try:
            left = deadline - time.monotonic()
            if left <= 0.1:
                raise FeedbackError(f"feedback rendering took longer than its {wall_seconds:g} s budget")
            nonce = renderer.nonce if renderer is not None else secrets.token_hex(16)
            split = _split_cells(_render_bodies(prepared, nonce, left, wall_seconds, sandbox, renderer), nonce)
        except FeedbackError as exc:
            split = {k: exc for k in grade_ids}
        for key, ids in grade_ids.items():
            fragments = split.get(key)
            if isinstance(fragments, FeedbackError):
                results[key] = fragments
            elif fragments is None:
                results[key] = FeedbackError("nbconvert could not render this notebook")
            elif sum(len(f) for f in fragments.values()) > PAGE_BYTES:
                results[key] = FeedbackError(f"the feedback page is larger than its {PAGE_BYTES >> 20} MiB budget")
            else:
                _, cells, title = items[keys.index(key)]
                results[key] = _assemble(title, cells, ids, fragments, show_outputs)
    return [results[k] for k in keys]


def _assemble(title: str, cells: list[dict], grade_ids: list[str | None], fragments: dict[int, str],
              show_outputs: bool) -> str | FeedbackError:
    """The page: summary, each cell's sanitised HTML, a banner after each graded one; audited."""
    # Rows of kind "notice" (the grader's, e.g. the late penalty) are said above the table.
    notices = [r for r in cells if r.get("kind") == "notice"]
    cells = [r for r in cells if r.get("kind") != "notice"]
    rows = {str(r.get("grade_id")): r for r in cells}
    found = {g for g in grade_ids if g in rows}
    parts = [f'<p class="nnkit-note">{html.escape(str(n.get("message", ""))[:1000])}</p>' for n in notices]
    parts.append(_summary(list(cells), found))
    if not show_outputs:
        parts.append('<p class="nnkit-note">Outputs are withheld from this feedback page.</p>')
    for index, gid in enumerate(grade_ids):
        parts.append(sanitize_fragment(fragments.get(index, "")))
        if gid in rows:
            parts.append(_banner(rows[gid]))
    page = _page(title, "\n".join(parts))
    problems = audit_page(page)
    if problems:  # nh3 let something through that the allow-list forbids: publish nothing of it
        return FeedbackError("the sanitised page failed the grader's audit ("
                             + "; ".join(ascii(x) for x in problems[:3]) + ")")
    return page

if __name__ == "__main__":
    sys.exit(_renderer_main())
