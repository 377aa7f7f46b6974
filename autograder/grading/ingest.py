"""Turn one submission (`<student_id>.zip` or a folder `<student_id>/`) into a safe working copy.

Only the files the assignment's manifest allows (`Manifest.submission_files`:
the notebooks, the student-edited `nnkit` modules, the saved models) are taken;
everything else is ignored and listed. A submission is *refused* (nothing of it
is graded, the reason is recorded) when it holds something no honest tool makes
and a grader must never unpack: a path with `..` or an absolute path, a symlink,
a device file, a name that is not valid UTF-8 or holds control characters, too
many files, a file or archive over the size caps, or a member whose compression
ratio is that of a zip bomb. An allowed notebook that is not valid notebook JSON
is refused on its own (that notebook is not graded; the rest is).

A submission's name is its student id only when it matches `STUDENT_ID`;
`discover` files any other name (newline, ESC, U+202E, `=HYPERLINK(...)`, 251
characters, bytes that are not UTF-8) under a surrogate id `invalid-<hash>`, and
`ingest` refuses it with the name escaped (`ascii()`) in the reason. No raw name
ever reaches a path, a CSV cell or the gradebook, and none stops the run.

The submission itself is only ever read: the working copy is written to a fresh
folder, and zip members are streamed with a byte cap, so a member that lies
about its size stops at the cap instead of filling the disk.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterable

#: A student id is one path component of letters, digits, `_`, `-` and `.`
#: (not leading), at most 64 characters: it names folders in the course, files in
#: `results/` and rows in the gradebook and the CSV files.
STUDENT_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}\Z")

#: Ids the grader makes for submissions whose name is not a valid id; reserved, so a
#: submission named like one is invalid too (it cannot take another's surrogate).
SURROGATE_PREFIX = "invalid-"

#: How much of an invalid name (escaped) a reason quotes.
MAX_QUOTED_NAME = 120

#: Folders archivers add that are never part of a submission.
JUNK_PARTS = {"__MACOSX", ".ipynb_checkpoints", "__pycache__", ".DS_Store"}


@dataclass(frozen=True)
class IngestLimits:
    """Caps on what one submission may hold (defaults fit a CS231n notebook set with outputs)."""

    max_file_bytes: int = 32 << 20  # one file, uncompressed
    max_total_bytes: int = 128 << 20  # the whole submission, uncompressed
    max_archive_bytes: int = 64 << 20  # the zip file itself
    max_members: int = 2000  # entries in the zip / files in the folder, junk included
    max_ratio: float = 100.0  # uncompressed / compressed, for members over `ratio_floor_bytes`
    ratio_floor_bytes: int = 1 << 20  # small members may compress as well as they like


@dataclass
class Ingested:
    """What ingest made of one submission.

    Attributes
    ----------
    student_id : from the zip's or folder's name.
    source : the submitted zip or folder (never modified).
    workdir : the working copy (files at their manifest paths), or None when refused.
    files : manifest paths taken into the working copy.
    refused : why the whole submission was refused (empty when it was accepted).
    refused_files : {manifest path: reason} for allowed files refused on their own.
    ignored : paths present in the submission but not allowed by the manifest.
    """

    student_id: str
    source: Path
    workdir: Path | None = None
    files: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    refused_files: dict[str, str] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return not self.refused


class Refused(Exception):
    """The submission holds something that must never be unpacked; the message says what."""


def is_valid_id(name: str) -> bool:
    """True when a submission's name may serve as a student id as it is (STUDENT_ID, not reserved)."""
    return bool(STUDENT_ID.match(name)) and not name.startswith(SURROGATE_PREFIX)


def surrogate_id(name: str) -> str:
    """The safe id filed for a submission whose name is not valid: `invalid-` + 10 hex of its sha256.

    Hashes the name's bytes as on disk (`os.fsencode`), so names that are not UTF-8
    get an id too, and two different names (`x y.zip`, `x y/`) get two ids.
    """
    return SURROGATE_PREFIX + hashlib.sha256(os.fsencode(name)).hexdigest()[:10]


def quoted_name(name: str) -> str:
    """`name` escaped for a reason (`ascii()`: no control, bidi or non-ASCII character) and truncated."""
    text = ascii(name)
    return text if len(text) <= MAX_QUOTED_NAME else text[: MAX_QUOTED_NAME - 3] + "..."


def discover(submissions_dir: str | Path) -> list[tuple[str, Path]]:
    """The submissions in a folder: `(student_id, path)` for each `<id>.zip` and `<id>/`, sorted by name.

    An entry whose name is not a valid student id (any length, any bytes: a
    newline, ESC, U+202E, `=HYPERLINK(...)`, 251 characters) comes back under
    :func:`surrogate_id`, never under its raw name, so the raw name reaches no
    output, file name or gradebook row; `ingest` then refuses it with the name
    escaped in the reason. Strays (a file that is not a zip, a symlink) are listed
    too, so that `ingest` refuses them with a reason rather than skipping them.
    Hidden entries (`.name`) are skipped.
    """
    root = Path(submissions_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"--submissions {root}: not a folder; give the folder holding <student_id>.zip files or <student_id>/ folders")
    found = []
    for entry in sorted(os.scandir(root), key=lambda e: os.fsencode(e.name)):
        if entry.name.startswith("."):
            continue
        if entry.name.endswith(".zip") and not entry.is_dir(follow_symlinks=False):
            sid = entry.name[: -len(".zip")]
        else:
            sid = entry.name
        found.append((sid if is_valid_id(sid) else surrogate_id(entry.name), Path(entry.path)))
    return found


def _check_name(student_id: str, path: Path) -> None:
    """Refused unless `path` is named by `student_id` (`<id>` or `<id>.zip`) and the id is valid.

    A surrogate id never matches its submission's name: this is where such a
    submission is refused, with its real name escaped.
    """
    name = path.name
    stem = name[: -len(".zip")] if name.endswith(".zip") else name
    if name not in (student_id, student_id + ".zip") and not is_valid_id(stem):
        raise Refused(f"the submission name {quoted_name(name)} is not a valid student id; name submissions "
                      "<id>.zip or <id>/ with letters, digits, '_', '-', '.' (at most 64 characters, not "
                      f"starting with '.' or '{SURROGATE_PREFIX}')")
    if not is_valid_id(student_id):
        raise Refused(f"bad student id {quoted_name(student_id)}: name submissions <id>.zip or <id>/ with letters, "
                      "digits, '_', '-', '.'")
    if name not in (student_id, student_id + ".zip"):
        raise Refused(f"the submission {quoted_name(name)} is not named after its id {student_id}")


def ingest(student_id: str, path: str | Path, allowed: Iterable[str], dest: str | Path,
           limits: IngestLimits = IngestLimits()) -> Ingested:
    """Copy the allowed files of one submission into `dest` (created fresh), refusing unsafe ones.

    Parameters
    ----------
    student_id : the id the submission is filed under, from `discover` (valid, and `path` is named after it).
    path : the `<id>.zip` file or `<id>/` folder.
    allowed : manifest paths a submission may contain (`Manifest.submission_files`).
    dest : the working-copy folder to create; removed again if the submission is refused.
    limits : size and count caps.

    Returns
    -------
    Ingested ; never raises for a bad submission (the reason is in `refused`).
    """
    path, dest = Path(path), Path(dest)
    result = Ingested(student_id=student_id, source=path)
    allowed = tuple(allowed)
    try:
        _check_name(student_id, path)
        if path.is_symlink():
            raise Refused(f"{path.name} is a symlink; submit a real zip file or folder")
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        if path.is_dir():
            _from_folder(path, allowed, dest, limits, result)
        elif path.is_file() and path.suffix == ".zip":
            _from_zip(path, allowed, dest, limits, result)
        else:
            raise Refused(f"{path.name} is neither a .zip file nor a folder")
        if not result.files:
            raise Refused("no file of the assignment found (expected e.g. " + ", ".join(allowed[:2]) + ")")
    except Refused as exc:
        result.refused.append(str(exc))
    if result.refused:
        shutil.rmtree(dest, ignore_errors=True)
        result.files.clear()
        result.workdir = None
        return result
    result.workdir = dest
    _check_notebooks(result)
    return result


# ---------------------------------------------------------------------------------------------
# names


def _clean_name(raw: str) -> PurePosixPath:
    """A member name as a safe relative path, or Refused saying why it is unsafe."""
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in raw):
        raise Refused(f"file name {raw.encode('utf-8', 'backslashreplace')!r} is not valid UTF-8; rename it")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in raw):
        raise Refused(f"file name {raw!r} holds control characters; rename it")
    name = raw.replace("\\", "/")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise Refused(f"absolute path {raw!r} in the submission; zip the assignment folder's contents with relative paths")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise Refused(f"path {raw!r} climbs out of the submission with '..'; such an archive is never unpacked")
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def _is_junk(rel: PurePosixPath) -> bool:
    return any(part in JUNK_PARTS or part.startswith("._") for part in rel.parts)


def _match(names: list[PurePosixPath], allowed: tuple[str, ...]) -> dict[PurePosixPath, str]:
    """Map member paths to manifest paths.

    Students zip either the folder's contents or the folder itself (`<assignment>/...`,
    `alice/...`): when every entry sits under one top-level folder, that folder is
    stripped if that matches more allowed files.
    """
    allowed_set = set(allowed)
    direct = {n: str(n) for n in names if str(n) in allowed_set}
    tops = {n.parts[0] for n in names if n.parts}
    if len(tops) == 1 and all(len(n.parts) > 1 for n in names):
        stripped = {n: str(PurePosixPath(*n.parts[1:])) for n in names}
        nested = {n: s for n, s in stripped.items() if s in allowed_set}
        if len(nested) > len(direct):
            return nested
    return direct


# ---------------------------------------------------------------------------------------------
# folders


def _from_folder(root: Path, allowed: tuple[str, ...], dest: Path, limits: IngestLimits, result: Ingested) -> None:
    entries: list[tuple[PurePosixPath, Path]] = []
    count = 0
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            count += 1
            if count > limits.max_members:
                raise Refused(f"more than {limits.max_members} files; submit only the assignment's files")
            full = Path(dirpath) / name
            rel = _clean_name(str(full.relative_to(root)))
            if _is_junk(rel):
                continue
            st = full.lstat()
            if stat.S_ISLNK(st.st_mode):
                raise Refused(f"{rel} is a symlink; submit real files only")
            if stat.S_ISDIR(st.st_mode):
                continue
            if not stat.S_ISREG(st.st_mode):
                raise Refused(f"{rel} is a device, pipe or socket, not a file")
            entries.append((rel, full))
        dirnames[:] = [d for d in dirnames if d not in JUNK_PARTS]
    mapping = _match([rel for rel, _ in entries], allowed)
    total = 0
    for rel, full in entries:
        target = mapping.get(rel)
        if target is None:
            result.ignored.append(str(rel))
            continue
        size = full.lstat().st_size
        if size > limits.max_file_bytes:
            raise Refused(f"{rel} is {size} bytes, over the {limits.max_file_bytes}-byte cap per file")
        total += size
        if total > limits.max_total_bytes:
            raise Refused(f"the assignment's files exceed {limits.max_total_bytes} bytes in total")
        out = dest / target
        out.parent.mkdir(parents=True, exist_ok=True)
        # O_NOFOLLOW: the file cannot be swapped for a symlink between the check and the read.
        fd = os.open(full, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as src, open(out, "wb") as dst:
            _copy_capped(src, dst, min(limits.max_file_bytes, limits.max_total_bytes), str(rel))
        result.files.append(target)


# ---------------------------------------------------------------------------------------------
# zips


def _from_zip(path: Path, allowed: tuple[str, ...], dest: Path, limits: IngestLimits, result: Ingested) -> None:
    size = path.stat().st_size
    if size > limits.max_archive_bytes:
        raise Refused(f"{path.name} is {size} bytes, over the {limits.max_archive_bytes}-byte cap per archive")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise Refused(f"{path.name} is not a readable zip file ({exc}); re-create it with a zip tool") from None
    except UnicodeDecodeError:
        raise Refused(f"{path.name} holds a file name that is not valid UTF-8; rename it") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.max_members:
            raise Refused(f"{len(infos)} entries in the archive, over the cap of {limits.max_members}; zip only the assignment's files")
        members: list[tuple[PurePosixPath, zipfile.ZipInfo]] = []
        declared_total = 0
        for info in infos:
            rel = _clean_name(info.filename)
            mode = info.external_attr >> 16
            if info.create_system == 3 and stat.S_IFMT(mode):  # unix file-type bits are present
                if stat.S_ISLNK(mode):
                    raise Refused(f"{info.filename} is a symlink inside the archive; zip real files only")
                if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                    raise Refused(f"{info.filename} is a device, pipe or socket inside the archive")
            if info.is_dir() or _is_junk(rel) or rel == PurePosixPath("."):
                continue
            if info.flag_bits & 0x1:
                raise Refused(f"{info.filename} is encrypted; zip without a password")
            if info.file_size > limits.max_file_bytes:
                raise Refused(f"{info.filename} unpacks to {info.file_size} bytes, over the {limits.max_file_bytes}-byte cap per file")
            if info.file_size > limits.ratio_floor_bytes and info.file_size > limits.max_ratio * max(info.compress_size, 1):
                raise Refused(f"{info.filename} compresses {info.file_size / max(info.compress_size, 1):.0f}:1, a zip bomb's ratio; refused")
            declared_total += info.file_size
            members.append((rel, info))
        if declared_total > limits.max_total_bytes:
            raise Refused(f"the archive unpacks to {declared_total} bytes, over the {limits.max_total_bytes}-byte cap")
        mapping = _match([rel for rel, _ in members], allowed)
        seen: set[str] = set()
        for rel, info in members:
            target = mapping.get(rel)
            if target is None:
                result.ignored.append(str(rel))
                continue
            if target in seen:
                raise Refused(f"{target} appears twice in the archive")
            seen.add(target)
            out = dest / target
            out.parent.mkdir(parents=True, exist_ok=True)
            try:
                # Stream with a cap: a member whose header understates its size stops at the cap.
                with zf.open(info) as src, open(out, "wb") as dst:
                    _copy_capped(src, dst, min(info.file_size, limits.max_file_bytes), info.filename)
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
                raise Refused(f"{info.filename} cannot be unpacked ({exc})") from None
            result.files.append(target)


def _copy_capped(src, dst, cap: int, name: str) -> None:
    written = 0
    while True:
        chunk = src.read(1 << 16)
        if not chunk:
            return
        written += len(chunk)
        if written > cap:
            raise Refused(f"{name} holds more bytes than it declares or than the cap of {cap} bytes allows")
        dst.write(chunk)


# ---------------------------------------------------------------------------------------------
# notebooks


def _check_notebooks(result: Ingested) -> None:
    """Refuse (on its own) every notebook that is not notebook JSON nbformat can read."""
    import nbformat

    for rel in list(result.files):
        if not rel.endswith(".ipynb"):
            continue
        path = result.workdir / rel
        reason = None
        try:
            data = json.loads(path.read_bytes().decode("utf-8"))
            if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
                reason = "not a notebook (no list of cells)"
            elif data.get("nbformat") != 4:
                reason = f"nbformat {data.get('nbformat')!r}; save it as a version-4 notebook"
            else:
                nbformat.reads(json.dumps(data), as_version=4)
        except UnicodeDecodeError:
            reason = "not UTF-8 text"
        except json.JSONDecodeError as exc:
            reason = f"invalid JSON ({exc.msg} at line {exc.lineno})"
        except Exception as exc:  # nbformat's reader raises assorted errors on malformed notebooks
            reason = f"not a readable notebook ({type(exc).__name__}: {exc})"[:300]
        if reason:
            result.refused_files[rel] = reason
            result.files.remove(rel)
            path.unlink()
