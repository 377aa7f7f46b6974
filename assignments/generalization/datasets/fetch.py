"""Download a dataset for nnkit, check its checksums, unpack it and build its cache.

    python datasets/fetch.py cifar10            # -> datasets/cifar-10-batches-py/
    python datasets/fetch.py mnist              # -> datasets/mnist/*.gz
    python datasets/fetch.py cifar10 --dir D    # another datasets folder (or env NNKIT_DATA_DIR)

Standard library only (students run it before anything is installed). A download
goes to ``<file>.part`` and resumes from there (HTTP Range) when interrupted; the
file gets its real name only once its size and md5 match. Archives are unpacked
without letting any member escape the target folder. Then, if nnkit can be
imported from beside this folder, the decoded dataset is cached as
``cache/<name>.npz`` so the first notebook run is fast (otherwise the first
load builds it).

Offline, it stops within seconds and says how to fetch the files by hand.
"""
from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import shutil
import socket
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHUNK = 1 << 20


@dataclass(frozen=True)
class Remote:
    """One file to download: where it goes (relative to the datasets folder), its md5 and size."""
    path: str
    md5: str
    size: int | None
    urls: tuple


@dataclass(frozen=True)
class Source:
    """A dataset: its files, whether they are an archive to unpack, what must exist afterwards."""
    files: tuple
    expected: tuple                      # paths (relative to the datasets folder) when done
    unpack: bool = False                 # each file is a .tar.gz to unpack into the folder
    manual: str = ""                     # how to do it by hand
    extra: dict = field(default_factory=dict)


_MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
_MNIST = (  # name, md5, size: as torchvision/datasets/mnist.py
    ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873", 9912422),
    ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432", 28881),
    ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3", 1648877),
    ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c", 4542),
)

SOURCES = {
    "cifar10": Source(
        files=(Remote("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a", 170498071,
                      ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",)),),
        expected=tuple(f"cifar-10-batches-py/{n}" for n in
                       ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4",
                        "data_batch_5", "test_batch"]),
        unpack=True,
        manual=("download https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz (163 MB, md5 "
                "c58f30108f718f92721af3b95e74349a) with a browser, put it in {dir} and run this "
                "command again (it checks and unpacks it), or unpack it yourself there: "
                "tar -xzf cifar-10-python.tar.gz  -> {dir}/cifar-10-batches-py/"),
    ),
    "mnist": Source(
        files=tuple(Remote(f"mnist/{n}", md5, size, tuple(m + n for m in _MNIST_MIRRORS))
                    for n, md5, size in _MNIST),
        expected=tuple(f"mnist/{n}" for n, _, _ in _MNIST),
        manual=("download the four files " + ", ".join(n for n, _, _ in _MNIST) + " from "
                + _MNIST_MIRRORS[0] + " (or another MNIST mirror) into {dir}/mnist/ and run this "
                "command again to check them; mnist_train.csv and mnist_test.csv "
                "(label + 784 pixels per row) in {dir}/mnist/ work too"),
    ),
}


class FetchError(RuntimeError):
    """The dataset could not be fetched; the message says why and what to do."""


def md5_of(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _say(msg: str) -> None:
    print(msg, flush=True)


def download(remote: Remote, final: Path, *, timeout: float, attempts: int = 3, log=_say) -> None:
    """Download ``remote`` to ``final`` through ``final.part``, resuming, verifying size and md5.

    Tries each URL in turn; on each, resumes a short download up to ``attempts`` times.

    Raises
    ------
    FetchError : no URL gave a file with the right size and md5
    """
    part = final.with_name(final.name + ".part")
    final.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in remote.urls:
        for _ in range(attempts):
            have = part.stat().st_size if part.exists() else 0
            if remote.size is not None and have > remote.size:
                part.unlink()
                have = 0
            try:
                if remote.size is None or have < remote.size:
                    _get(url, part, have, remote.size, timeout, log)
            except _Unreachable as exc:
                errors.append(f"{url}: {exc}")
                break                                   # next mirror
            except _Interrupted as exc:
                errors.append(f"{url}: {exc}")
                continue                                # resume from the .part
            got = part.stat().st_size if part.exists() else 0
            if remote.size is not None and got < remote.size:
                errors.append(f"{url}: got {got} of {remote.size} bytes")
                continue                                # resume
            digest = md5_of(part)
            if digest != remote.md5:
                part.unlink()                           # bad bytes cannot be resumed
                errors.append(f"{url}: md5 {digest}, expected {remote.md5}")
                break
            os.replace(part, final)
            return
    raise FetchError(f"could not download {final.name}:\n  " + "\n  ".join(errors))


class _Unreachable(Exception):
    """The server cannot be reached or refuses the file: try another mirror."""


class _Interrupted(Exception):
    """The transfer stopped part way: resume."""


def _get(url: str, part: Path, have: int, size: int | None, timeout: float, log) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "nnkit-fetch/1"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:                    # nothing left to send: check what we have
            return
        raise _Unreachable(f"HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, socket.timeout, ConnectionError, OSError,
            http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise _Unreachable(f"cannot connect ({reason})") from None
    with response:
        mode = "ab"
        if have and response.status != 206:             # the server ignored Range: start over
            mode, have = "wb", 0
        total = size or (have + int(response.headers.get("Content-Length") or 0)) or None
        if have:
            log(f"  resuming {part.name[:-5]} at {have} bytes")
        shown = time.monotonic()
        try:
            with open(part, mode) as f:
                while True:
                    block = response.read(CHUNK)
                    if not block:
                        break
                    f.write(block)
                    have += len(block)
                    if total and time.monotonic() - shown > 2:
                        shown = time.monotonic()
                        log(f"  {part.name[:-5]}: {100 * have / total:5.1f}% of {total / 1e6:.1f} MB")
        except (socket.timeout, ConnectionError, OSError, urllib.error.URLError,
                http.client.HTTPException) as exc:
            raise _Interrupted(f"transfer interrupted after {have} bytes ({exc})") from None


def safe_extract(archive: Path, dest: Path) -> list:
    """Unpack a .tar(.gz) into ``dest``: regular files and folders only, every path inside ``dest``.

    Members are unpacked into a temporary folder inside ``dest`` and each top-level
    entry is then moved into place, so an interrupted unpack leaves nothing half done.

    Returns
    -------
    names : the top-level names created in ``dest``

    Raises
    ------
    FetchError : a member is a link, a device, absolute, or has a ``..`` component
    """
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    try:
        tar = tarfile.open(archive, "r:*")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise FetchError(f"{archive} is not a readable tar archive ({exc})") from None
    with tar:
        try:
            members = tar.getmembers()
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise FetchError(f"{archive} is damaged ({exc}); delete it and fetch again") from None
        for m in members:
            target = (root / m.name).resolve()
            if (os.path.isabs(m.name) or ".." in Path(m.name).parts
                    or not (target == root or root in target.parents)):
                raise FetchError(f"{archive}: member {m.name!r} would be written outside {dest}; "
                                 "refusing to unpack it")
            if not (m.isfile() or m.isdir()):
                raise FetchError(f"{archive}: member {m.name!r} is a link or special file; "
                                 "refusing to unpack it")
        tmp = Path(tempfile.mkdtemp(dir=dest, prefix=".unpack-"))
        try:
            for m in members:
                out = tmp / m.name
                if m.isdir():
                    out.mkdir(parents=True, exist_ok=True)
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                src = tar.extractfile(m)
                with src, open(out, "wb") as f:
                    shutil.copyfileobj(src, f, CHUNK)
            tops = sorted({Path(m.name).parts[0] for m in members if Path(m.name).parts})
            for top in tops:
                if (dest / top).exists():
                    if (dest / top).is_dir():
                        shutil.rmtree(dest / top)
                    else:
                        (dest / top).unlink()
                os.replace(tmp / top, dest / top)
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise FetchError(f"{archive} could not be unpacked ({exc}); delete it and fetch again") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return tops


def _build_cache(name: str, dest: Path, log) -> None:
    """Cache the decoded dataset with nnkit, if nnkit is importable from beside this folder."""
    for candidate in (dest.parent / "source", dest.parent, HERE.parent / "source", HERE.parent):
        if (candidate / "nnkit" / "data_utils.py").is_file():
            sys.path.insert(0, str(candidate))
            break
    try:
        from nnkit.data_utils import build_cache
    except ImportError as exc:
        log(f"(no cache built: nnkit cannot be imported here ({exc}); the first load builds it)")
        return
    try:
        path = build_cache(name, root=dest)
        log(f"cache: {path}")
    except Exception as exc:  # the download is fine; the first load will try again
        log(f"(no cache built: {exc}; the first load builds it)")


def fetch(name: str, dest: Path, *, sources=None, timeout: float = 10.0, keep_archive: bool = False,
          cache: bool = True, log=_say) -> None:
    """Make dataset ``name`` ready in ``dest``: download, check, unpack, cache.

    Parameters
    ----------
    name : a key of ``sources``
    dest : the datasets folder
    sources : the URL/md5 table (default ``SOURCES``; tests pass their own)
    timeout : seconds for connecting and for each read
    keep_archive : keep a downloaded archive after unpacking it
    cache : build nnkit's uint8 cache afterwards

    Raises
    ------
    FetchError : with the reason and how to get the files by hand
    """
    sources = SOURCES if sources is None else sources
    if name not in sources:
        raise FetchError(f"unknown dataset {name!r}; choose one of {', '.join(sources)}")
    src = sources[name]
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    manual = src.manual.format(dir=dest)
    if all((dest / p).is_file() for p in src.expected):
        log(f"{name}: already in {dest}")
    else:
        for remote in src.files:
            final = dest / remote.path
            if final.is_file() and md5_of(final) == remote.md5:
                log(f"{name}: {final.name} already downloaded and checked")
            else:
                if final.is_file():
                    log(f"{name}: {final} has the wrong md5; downloading it again")
                    final.unlink()
                log(f"{name}: downloading {final.name} ...")
                try:
                    download(remote, final, timeout=timeout, log=log)
                except FetchError as exc:
                    raise FetchError(f"{exc}\nTo do it by hand: {manual}") from None
                log(f"{name}: {final.name} ok (md5 {remote.md5})")
            if src.unpack:
                log(f"{name}: unpacking {final.name} ...")
                safe_extract(final, dest)
                if not keep_archive:
                    final.unlink()
        missing = [p for p in src.expected if not (dest / p).is_file()]
        if missing:
            raise FetchError(f"{name}: after fetching, still missing {', '.join(missing)}. "
                             f"To do it by hand: {manual}")
    if cache:
        _build_cache(name, dest, log)
    log(f"{name}: ready in {dest}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(SOURCES), help="the dataset")
    parser.add_argument("--dir", default=None,
                        help="the datasets folder (default: env NNKIT_DATA_DIR, else this script's folder)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for a server (default 10)")
    parser.add_argument("--keep-archive", action="store_true", help="keep the downloaded .tar.gz")
    parser.add_argument("--no-cache", action="store_true", help="do not build nnkit's cache")
    args = parser.parse_args(argv)
    dest = Path(args.dir or os.environ.get("NNKIT_DATA_DIR") or HERE)
    try:
        fetch(args.name, dest, timeout=args.timeout, keep_archive=args.keep_archive,
              cache=not args.no_cache)
    except FetchError as exc:
        print(f"fetch.py: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("fetch.py: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
