"""`python -m autograder formgrader <assignment> --out OUT [--port P] [--db URL]`: manual grading.

Serves nbgrader 0.9.6's formgrader on a Jupyter server on loopback, with the
course root at OUT (the `--out` folder of `grade`): its `gradebook.db` (course
id `nnkit`) and the executed notebooks in `OUT/autograded/<student>/<assignment>/`,
which is where formgrader looks for them. A TA opens the printed URL, goes to
*Manual Grading*, opens a submission, reads the written answers and the
autograded cells, and sets scores and comments; they go straight into the
gradebook, where `grade` keeps them on every regrade (a manual score beats the
auto score) and `export` and `feedback` read them.

The formgrader pages are the same ones JupyterLab 4 / Notebook 7 show in their
*Formgrader* panel (an iframe of `/formgrader`); this server runs the
formgrader extension alone, because it is shown notebooks written by student
code. How it is configured (all in code, :func:`server_config`):

- *No config file is read or written.* The server runs with
  `JUPYTER_NO_CONFIG=1` and a private, empty `JUPYTER_CONFIG_DIR`,
  `JUPYTER_RUNTIME_DIR` and working directory (a temporary folder, removed on
  exit), so no `jupyter_server_config.*` and no `nbgrader_config.py` (nbgrader
  reloads it on every API call, from the config path and the working directory)
  can change the course root or run code; formgrader's `?path=` switch (load the
  config of another folder) is refused.
- *Loopback and a token*: `127.0.0.1`, a fresh random token unless `--token`, no
  browser opened, no remote access.
- *Nothing on the page can act*: student markdown (written answers) is rendered
  by nbconvert and then sanitised with the feedback pages' allow-list
  (`feedback.sanitize_fragment`, without `class`), outputs with nbconvert's
  `sanitize_html`; so no script, event handler or remote resource of a student
  runs in the TA's browser, where it would hold the server's token.
- *Nothing runs student code on this host*: no kernels (starting one is refused),
  no terminals, a read-only contents API, and formgrader's buttons that would
  run nbgrader on the host (autograde, generate/release/collect assignments,
  generate/release feedback) answer 403 with the kit's command to use instead.

The assignment's source notebooks are copied into `OUT/source/<assignment>/`
(formgrader lists an assignment's notebooks and their points from there).
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import sys
import tempfile
from pathlib import Path

COURSE_ID = "nnkit"
#: Never a kernelspec name: hides every kernel from /api/kernelspecs.
_NO_KERNEL = "no-kernels-in-the-nnkit-formgrader"

#: formgrader API routes that would run nbgrader on this host -> what to run instead.
REFUSED = {
    r"/formgrader/api/assignment/([^/]+)/assign": "python -m autograder release <assignment>",
    r"/formgrader/api/assignment/([^/]+)/unrelease": "the kit does not use nbgrader's exchange",
    r"/formgrader/api/assignment/([^/]+)/release": "python -m autograder release <assignment> --zip FILE",
    r"/formgrader/api/assignment/([^/]+)/collect": "python -m autograder grade <assignment> --submissions DIR --out OUT",
    r"/formgrader/api/assignment/([^/]+)/generate_feedback": "python -m autograder feedback <assignment> --out OUT",
    r"/formgrader/api/assignment/([^/]+)/release_feedback": "the pages in OUT/feedback/<student>/",
    r"/formgrader/api/assignment/([^/]+)/([^/]+)/generate_feedback": "python -m autograder feedback <assignment> --out OUT",
    r"/formgrader/api/assignment/([^/]+)/([^/]+)/release_feedback": "the pages in OUT/feedback/<student>/",
    r"/formgrader/api/submission/([^/]+)/([^/]+)/autograde": "python -m autograder grade <assignment> --submissions DIR --out OUT",
}


# ------------------------------------------------------------------------------- rendering


def clean_markdown_html(html: str) -> str:
    """The formgrader's `strip_files_prefix` filter, applied to every markdown cell it renders,
    followed by the feedback pages' sanitiser: no script, handler, form, frame or remote
    resource, images only as data: PNG/JPEG/GIF; `class` is dropped as well, so a written answer
    cannot dress itself up as the formgrader's own score boxes."""
    import re

    from nbconvert.filters import strip_files_prefix

    from .feedback import sanitize_fragment

    cleaned = sanitize_fragment(strip_files_prefix(html))
    return re.sub(r'\sclass="[^"]*"', "", cleaned)


# ------------------------------------------------------------------------------- server pieces


def _contents_manager_class():
    from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
    from tornado import web

    class ReadOnlyContentsManager(AsyncLargeFileManager):
        """The course folder, readable only: the formgrader writes grades to the gradebook, never files."""

        def _refuse(self, *args, **kwargs):
            raise web.HTTPError(403, "the nnkit formgrader serves the course folder read-only")

        save = delete_file = rename_file = create_checkpoint = restore_checkpoint = delete_checkpoint = _refuse

    return ReadOnlyContentsManager


def _kernel_manager_class():
    from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
    from tornado import web

    class NoKernels(AsyncMappingKernelManager):
        """No kernel ever starts here: student notebooks must not run on the instructor's machine."""

        async def start_kernel(self, *args, **kwargs):
            raise web.HTTPError(403, "the nnkit formgrader starts no kernels (grade in the sandbox with "
                                     "`python -m autograder grade`)")

    return NoKernels


def _guard_handlers():
    from jupyter_server.base.handlers import JupyterHandler
    from nbgrader.server_extensions.formgrader.handlers import FormgraderHandler
    from tornado import web

    class Refused(JupyterHandler):
        def initialize(self, instead: str) -> None:
            self.instead = instead

        @web.authenticated
        def post(self, *args):
            self.set_status(403)
            self.set_header("Content-Type", "application/json")
            message = f"disabled in the nnkit formgrader (it would run nbgrader on this host); use: {self.instead}"
            self.finish(json.dumps({"success": False, "error": message, "log": message}))

        get = put = post

    class NoOtherCourse(FormgraderHandler):
        def get(self):
            if self.get_argument("path", ""):
                raise web.HTTPError(403, "the nnkit formgrader serves one course folder; ?path= is refused")
            return super().get()

    handlers = [(r"/formgrader/?", NoOtherCourse, {})]
    handlers += [(pattern, Refused, {"instead": instead}) for pattern, instead in REFUSED.items()]
    return handlers


def _jupyter_server_extension_points():
    return [{"module": "autograder.grading.formgrader"}]


def _load_jupyter_server_extension(serverapp) -> None:
    """Load nbgrader's formgrader behind the kit's guards (registered first, so they win)."""
    from jupyter_server.utils import url_path_join
    from nbgrader.server_extensions.formgrader import formgrader

    webapp = serverapp.web_app
    base = webapp.settings["base_url"]
    webapp.add_handlers(".*$", [(url_path_join(base, p.lstrip("/")), h, kw) for p, h, kw in _guard_handlers()])
    formgrader.load_jupyter_server_extension(serverapp)


# ------------------------------------------------------------------------------- configuration


def server_config(out: Path, *, port: int, token: str, db_url: str, private: Path):
    """The whole configuration of the formgrader's Jupyter server and of nbgrader, in code."""
    from traitlets.config import Config

    c = Config()
    c.ServerApp.ip = "127.0.0.1"
    c.ServerApp.port = int(port)
    c.ServerApp.port_retries = 0
    c.ServerApp.open_browser = False
    c.ServerApp.answer_yes = True  # one Ctrl-C stops it (no "shut down? y/n" prompt)
    c.ServerApp.allow_remote_access = False
    c.ServerApp.root_dir = str(out)
    c.ServerApp.allow_root = True
    c.ServerApp.terminals_enabled = False
    c.ServerApp.jpserver_extensions = {"autograder.grading.formgrader": True}
    c.ServerApp.contents_manager_class = _contents_manager_class()
    c.ServerApp.kernel_manager_class = _kernel_manager_class()
    c.KernelSpecManager.allowed_kernelspecs = {_NO_KERNEL}
    c.IdentityProvider.token = token
    c.ContentsManager.allow_hidden = False
    # nbgrader
    c.CourseDirectory.root = str(out)
    c.CourseDirectory.course_id = COURSE_ID
    c.CourseDirectory.db_url = db_url
    c.Exchange.root = str(private / "exchange")
    c.Exchange.path_includes_course = False
    c.FormgradeExtension.debug = False  # would print this config on the Manage Assignments page
    c.HTMLExporter.sanitize_html = True
    c.HTMLExporter.filters = {"strip_files_prefix": clean_markdown_html}
    return c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def copy_source(out: Path, assignment: str, source_dir: Path, notebooks) -> Path:
    """`OUT/source/<assignment>/<notebook>` for each of the manifest's notebooks (fresh copies)."""
    dest = out / "source" / assignment
    dest.mkdir(parents=True, exist_ok=True)
    for nb in notebooks:
        shutil.copyfile(source_dir / nb, dest / Path(nb).name)
    return dest


def survey(db_url: str, assignment: str, out: Path) -> tuple[list[str], list[str]]:
    """(students with a submission in the gradebook, `student/notebook` whose executed notebook is missing)."""
    import warnings

    from nbgrader.api import Gradebook, MissingEntry

    students, missing = [], []
    with warnings.catch_warnings(), Gradebook(db_url, COURSE_ID) as gb:
        warnings.simplefilter("ignore")
        try:
            submissions = gb.find_assignment(assignment).submissions
        except MissingEntry:
            return [], []
        for sub in submissions:
            students.append(sub.student.id)
            for nb in sub.notebooks:
                if not (out / "autograded" / sub.student.id / assignment / f"{nb.name}.ipynb").is_file():
                    missing.append(f"{sub.student.id}/{nb.name}")
    return sorted(students), sorted(missing)


def serve(out: Path, *, port: int, token: str, db_url: str, private: Path, announce=None) -> None:
    """Run the server in this process until interrupted. Sets this process's Jupyter environment."""
    from jupyter_server.serverapp import ServerApp

    for sub in ("config", "runtime", "data", "exchange", "cwd"):
        (private / sub).mkdir(parents=True, exist_ok=True)
    os.environ.update(JUPYTER_NO_CONFIG="1", JUPYTER_CONFIG_DIR=str(private / "config"),
                      JUPYTER_RUNTIME_DIR=str(private / "runtime"), JUPYTER_DATA_DIR=str(private / "data"),
                      JUPYTER_PLATFORM_DIRS="1")
    os.environ.pop("JUPYTER_CONFIG_PATH", None)
    os.environ.pop("JUPYTER_PATH", None)
    # nbgrader loads `nbgrader_config.py` from the working directory on every request: make it empty.
    os.chdir(private / "cwd")
    app = ServerApp.instance(config=server_config(out, port=port, token=token, db_url=db_url, private=private))
    app.initialize(argv=[], find_extensions=False)
    if announce:
        announce(app)
    app.start()


def formgrader_command(assignment: str, out: str, port: int | None = None, db: str | None = None,
                       token: str | None = None) -> int:
    """`python -m autograder formgrader <assignment> --out OUT [--port P] [--db URL] [--token T]`."""
    from ..manifest import ManifestError, load_manifest

    try:
        manifest = load_manifest(assignment)
    except ManifestError as exc:
        print(f"formgrader: {exc}", file=sys.stderr)
        return 2
    out_dir = Path(out).resolve()
    db_url = db or f"sqlite:///{out_dir / 'gradebook.db'}"
    if db is None and not (out_dir / "gradebook.db").is_file():
        print(f"formgrader: no gradebook at {out_dir / 'gradebook.db'}: run "
              f"`python -m autograder grade {manifest.assignment} --submissions DIR --out {out}` first", file=sys.stderr)
        return 2
    students, missing = survey(db_url, manifest.assignment, out_dir)
    if not students:
        print(f"formgrader: the gradebook has no submission of {manifest.assignment}: grade them first", file=sys.stderr)
        return 2
    copy_source(out_dir, manifest.assignment, manifest.path.parent, manifest.notebooks)
    port = port or free_port()
    from ..config import formgrader_token

    token = token or formgrader_token() or secrets.token_hex(24)
    private = Path(tempfile.mkdtemp(prefix="nnkit-formgrader-"))
    print(f"formgrader: {manifest.assignment}, {len(students)} submissions in {db_url}", flush=True)
    if missing:
        print(f"formgrader: WARNING: {len(missing)} executed notebooks are missing (regrade them to grade by hand): "
              + ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else ""), flush=True)

    def announce(app):
        print(f"formgrader: open http://127.0.0.1:{port}/formgrader/?token={token}\n"
              f"formgrader: Manual Grading > {manifest.assignment} > a notebook > a submission; Ctrl-C stops it",
              flush=True)

    try:
        serve(out_dir, port=port, token=token, db_url=db_url, private=private, announce=announce)
    except KeyboardInterrupt:
        pass
    finally:
        shutil.rmtree(private, ignore_errors=True)
    return 0
