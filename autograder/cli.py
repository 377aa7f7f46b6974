"""The instructor command line: one verb, one function with keyword arguments.

Each verb's module is imported only when the verb runs, so a slow import
(nbgrader) never delays another verb and `--help` stays instant.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# verb -> (module, function, help). The function takes the parsed options as keyword
# arguments and returns a process exit code.
VERBS = {
    "demo": ("autograder.demo", "demo", "the whole instructor flow on the embedded dataset"),
    "build-notebooks": ("autograder.release.authoring", "build_notebooks_command",
                        "write an assignment's source notebooks from its authoring cell files"),
    "release": ("autograder.release.build", "release_command", "build the leak-free student release of an assignment"),
    "grade": ("autograder.grading.commands", "grade_command", "sandboxed, parallel autograding of a class"),
    "export": ("autograder.grading.commands", "export_command", "the whole class's grades from the gradebook"),
    "feedback": ("autograder.grading.commands", "feedback_command", "feedback pages again, with manual grades, after formgrader"),
    "formgrader": ("autograder.grading.formgrader", "formgrader_command", "manual grading in nbgrader's formgrader (a browser on loopback)"),
    "check-package": ("autograder.trusted", "check_package_command", "trusted checks of an nnkit package, outside the student's kernel"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    p = sub.add_parser("demo", help=VERBS["demo"][2])
    p.add_argument("assignment", nargs="?", default=None,
                   help="the assignment (default: the first of source/ whose manifest has a [demo] table)")
    p.add_argument("--workdir", default=None, help="keep the course folder here (default: a temporary folder)")
    p.add_argument("--package-only", action="store_true", help="only train and check the reference package")

    p = sub.add_parser("build-notebooks", help=VERBS["build-notebooks"][2])
    p.add_argument("assignment")
    p.add_argument("notebooks", nargs="*", help="only these notebooks (NN_name), default: every notebook of the manifest")

    p = sub.add_parser("release", help=VERBS["release"][2])
    p.add_argument("assignment")
    p.add_argument("--output", default=None, help="release folder (default: assignments/<assignment>/)")
    p.add_argument("--zip", dest="zip_path", default=None, help="also write the Colab-ready bundle here")

    p = sub.add_parser("grade", help=VERBS["grade"][2])
    p.add_argument("assignment")
    p.add_argument("--submissions", required=True, help="folder of <student_id>.zip files or <student_id>/ folders")
    p.add_argument("--out", required=True, help="where grades.csv, feedback/ and results/ go")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default: 1)")
    p.add_argument("--db", default=None, help="gradebook SQLAlchemy URL (default: SQLite in --out)")
    p.add_argument("--unsafe-no-sandbox", action="store_true", help="grade without bubblewrap (never on real students)")
    p.add_argument("--force", action="store_true", help="regrade every submission (default: skip unchanged ones)")
    p.add_argument("--scheduler", default=None, help="a dask.distributed scheduler address (default: local workers)")
    p.add_argument("--release", default=None, help="grade against this release folder (e.g. an older one)")
    p.add_argument("--timestamps", default=None,
                   help="CSV student_id,submitted_at from the LMS, for the manifest's deadline (default: zip entry times)")

    p = sub.add_parser("feedback", help=VERBS["feedback"][2])
    p.add_argument("assignment")
    p.add_argument("--out", required=True, help="the --out folder of `grade`")
    p.add_argument("--db", default=None, help="gradebook SQLAlchemy URL (default: SQLite in --out)")
    p.add_argument("--unsafe-no-sandbox", action="store_true", help="render without bubblewrap (never on real students)")

    p = sub.add_parser("export", help=VERBS["export"][2])
    p.add_argument("assignment")
    p.add_argument("--out", required=True, help="the --out folder of `grade`")
    p.add_argument("--db", default=None, help="gradebook SQLAlchemy URL (default: SQLite in --out)")

    p = sub.add_parser("formgrader", help=VERBS["formgrader"][2])
    p.add_argument("assignment")
    p.add_argument("--out", required=True, help="the --out folder of `grade` (its gradebook and autograded/ notebooks)")
    p.add_argument("--port", type=int, default=None, help="loopback port (default: a free one)")
    p.add_argument("--db", default=None, help="gradebook SQLAlchemy URL (default: SQLite in --out)")
    p.add_argument("--token", default=None, help="the server's token (default: $NNKIT_FORMGRADER_TOKEN or a random one)")

    p = sub.add_parser("check-package", help=VERBS["check-package"][2])
    p.add_argument("path", help="the nnkit package directory to check")
    p.add_argument("--assignment", required=True)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--seed", default=None, help="input seed (default: derived from the path)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = vars(build_parser().parse_args(argv))
    module, function, _ = VERBS[args.pop("verb")]
    try:
        run = getattr(importlib.import_module(module), function)
    except (ImportError, AttributeError) as exc:
        print(f"autograder: this verb is not available yet ({exc})", file=sys.stderr)
        return 2
    return int(run(**args) or 0)
