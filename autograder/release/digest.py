"""RELEASE_DIGEST: what built a release, and `release_freshness`, which says in milliseconds,
without building, whether a release is still what source/ would build.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from .. import REPO_ROOT
from ..manifest import ManifestError, load_manifest
from .gates import GateFailure, release_files
from .shared import RELEASE_FILES, ReleaseError, _skip, _tree, functions_asked_elsewhere


#: The file of every release that says what built it (its format: `write_digest`).
DIGEST_FILE = "RELEASE_DIGEST"


#: Bumped when what a release is built from changes meaning (then every older release is stale).
DIGEST_FORMAT = 1


def release_inputs(assignment: str, root: Path = REPO_ROOT) -> dict[str, Path]:
    """What a release of `assignment` is built from, by the name RELEASE_DIGEST gives it.

    - ``source/<assignment>/manifest.toml``, the notebooks and the files it lists;
    - the package modules it ships (``[package]``, with their folders' ``__init__.py``),
      stripped or copied;
    - ``datasets/fetch.py`` and ``datasets/embedded/``, shipped as they are;
    - ``release_files/*`` (the kit's ``autograder/release/files/``: the student README
      template, ``requirements.txt``, ``make_submission.py``).

    Plus, as a line of its own, the nbgrader version (its generate_assignment writes the
    notebooks). The kit's own code (the stripper, this module) is not an input: a change
    there that changes the release is caught by CI's rebuild of the committed release.
    Raises ManifestError when the manifest cannot be read.
    """
    root = Path(root).resolve()
    m = load_manifest(assignment, root)
    src = f"source/{assignment}"
    names = [f"{src}/manifest.toml"] + [f"{src}/{nb}" for nb in m.notebooks] + [f"{src}/{f}" for f in m.files]
    for rel in m.package or {}:
        parts = Path(rel).parts
        names += ["source/" + "/".join(parts[:k]) + "/__init__.py" for k in range(1, len(parts))
                  if (root / "source" / "/".join(parts[:k]) / "__init__.py").is_file()]
        names.append(f"source/{rel}")
    names = sorted(set(names), key=names.index)
    names.append("datasets/fetch.py")
    if (root / "datasets" / "embedded").is_dir():
        names += ["datasets/embedded/" + p for p in _tree(root / "datasets" / "embedded")]
    out = {name: root / name for name in names}
    out.update({f"release_files/{p}": RELEASE_FILES / p for p in _tree(RELEASE_FILES)})
    return out


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def _builder() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"nbgrader {version('nbgrader')}"
    except PackageNotFoundError:
        return "nbgrader none"


#: The input that is not a file: what the other assignments have students write (stubbed here too).
ELSEWHERE_INPUT = "source/*/manifest.toml [package] of the other assignments"


def _elsewhere_hash(assignment: str, root: Path) -> str:
    try:
        asked = functions_asked_elsewhere(assignment, root)
    except ReleaseError as exc:  # an unreadable manifest: stale until it reads (the release says why)
        return hashlib.sha256(f"unreadable: {exc}".encode()).hexdigest()
    text = json.dumps({m: sorted(f) for m, f in sorted(asked.items())}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def input_hashes(assignment: str, root: Path = REPO_ROOT) -> dict[str, str | None]:
    """sha256 of every input (`release_inputs`, None for a listed file that is missing), and of
    what the other assignments ask for (`ELSEWHERE_INPUT`): editing another assignment's
    notebooks or thresholds leaves this release fresh; changing what it stubs does not."""
    out = {name: _sha256(path) for name, path in sorted(release_inputs(assignment, root).items())}
    out[ELSEWHERE_INPUT] = _elsewhere_hash(assignment, Path(root).resolve())
    return dict(sorted(out.items()))


def digest_text(assignment: str, inputs: dict[str, str | None], release: Path) -> str:
    """The RELEASE_DIGEST of the staged release `release` built from `inputs`."""
    out = [f"# What built this release; written by `python -m autograder release {assignment}`.\n",
           "# `grade` checks it (autograder.release.digest.release_freshness): the release is stale when an\n",
           "# input below changed since, or a file of the release was edited. sha256, two spaces, path.\n",
           f"format {DIGEST_FORMAT}\n", f"builder {_builder()}\n"]
    out += [f"input {h or '-'}  {name}\n" for name, h in sorted(inputs.items())]
    out += [f"file {_sha256(release / rel)}  {rel}\n" for rel in release_files(release) if rel != DIGEST_FILE]
    return "".join(out)


@dataclass
class Digest:
    format: int
    builder: str
    inputs: dict[str, str]
    files: dict[str, str]


def read_digest(path: Path) -> Digest:
    """Parse a RELEASE_DIGEST; ValueError naming the line when it is not one."""
    fmt, builder, inputs, files = None, None, {}, {}
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").split("\n"), start=1):
        if not line or line.startswith("#"):
            continue
        kind, _, rest = line.partition(" ")
        if kind == "format" and rest.isdigit():
            fmt = int(rest)
        elif kind == "builder":
            builder = rest
        elif kind in ("input", "file") and "  " in rest:
            h, name = rest.split("  ", 1)
            (inputs if kind == "input" else files)[name] = h
        else:
            raise ValueError(f"{path}:{n}: not a line of a release digest: {line[:80]!r}")
    if fmt is None or builder is None:
        raise ValueError(f"{path}: no `format` or `builder` line")
    return Digest(fmt, builder, inputs, files)


def _names(paths: list[str], limit: int = 6) -> str:
    shown = ", ".join(paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


def release_freshness(assignment: str, release_dir: Path, root: Path = REPO_ROOT) -> str | None:
    """None when the release at `release_dir` is what the current `source/` would build;
    else one paragraph saying what differs and the fix.

    Nothing is built: the inputs (`release_inputs`) and the release's files are hashed
    and compared with the release's RELEASE_DIGEST (a few milliseconds for an assignment of four notebooks).
    """
    root = Path(root).resolve()
    release_dir = Path(release_dir)
    try:
        shown = release_dir.resolve().relative_to(root).as_posix()
    except ValueError:
        shown = str(release_dir)
    default = (root / "assignments" / assignment).resolve() == release_dir.resolve()
    command = f"python -m autograder release {assignment}" + ("" if default else f" --output {shown}")
    fix = (f"Rebuild it with `{command}` (and commit it, if students get it from the repository); to grade "
           "against this release on purpose, name it with `--release`.")
    digest_path = release_dir / DIGEST_FILE
    if not digest_path.is_file():
        return (f"The release at {shown} has no {DIGEST_FILE}, so nothing says it matches source/{assignment}/: it "
                f"was not built by `python -m autograder release` (or by a kit older than release digests). {fix}")
    try:
        recorded = read_digest(digest_path)
    except (ValueError, UnicodeDecodeError) as exc:
        return f"The release at {shown} has an unreadable {DIGEST_FILE} ({exc}). {fix}"
    try:
        current = input_hashes(assignment, root)
    except ManifestError as exc:
        return f"The release at {shown} cannot be checked against source/{assignment}/: {exc}. {fix}"
    problems = []
    if recorded.format != DIGEST_FORMAT:
        problems.append(f"it was built by another release format ({recorded.format}, this kit writes {DIGEST_FORMAT})")
    if recorded.builder != _builder():
        problems.append(f"it was built with {recorded.builder}, this grader has {_builder()}")
    changed = sorted(n for n in recorded.inputs.keys() & current.keys() if recorded.inputs[n] != (current[n] or "-"))
    added = sorted(n for n in current.keys() - recorded.inputs.keys())
    removed = sorted(n for n in recorded.inputs.keys() - current.keys())
    if changed:
        problems.append(f"{_names(changed)} changed since it was built")
    if added:
        problems.append(f"{_names(added)} {'is' if len(added) == 1 else 'are'} new")
    if removed:
        problems.append(f"{_names(removed)} {'is' if len(removed) == 1 else 'are'} gone")
    if release_dir.is_dir():
        present = [f for f in release_files(release_dir) if f != DIGEST_FILE and not _skip(tuple(f.split("/")))]
    else:
        present = []
    edited = sorted(f for f in recorded.files if _sha256(release_dir / f) != recorded.files[f])
    extra = sorted(set(present) - set(recorded.files))
    if edited:
        problems.append(f"{_names(edited)} of the release {'was' if len(edited) == 1 else 'were'} edited or "
                        "removed after the build")
    if extra:
        problems.append(f"{_names(extra)} {'is' if len(extra) == 1 else 'are'} in the release but not from the build")
    if not problems:
        return None
    return (f"The release at {shown} is stale: " + "; ".join(problems) + ". Grading with it would score students "
            f"against other notebooks, thresholds or points than source/{assignment}/ says now. {fix}")


def check_digest(release: Path) -> None:
    """Gate `digest`: the staged release's files are exactly those its RELEASE_DIGEST lists."""
    recorded = read_digest(release / DIGEST_FILE)
    present = [f for f in release_files(release) if f != DIGEST_FILE]
    for rel in present:
        if recorded.files.get(rel) != _sha256(release / rel):
            raise GateFailure("digest", rel, 1, f"changed after {DIGEST_FILE} was written (something wrote into the "
                                                "staged release)")
    for rel in sorted(set(recorded.files) - set(present)):
        raise GateFailure("digest", rel, 1, f"listed in {DIGEST_FILE} but gone from the staged release")
