"""datasets/fetch.py against a local HTTP server on 127.0.0.1 serving tiny files:
a correct download, a bad checksum, a truncated file, a resumed download, mirrors,
safe unpacking, and the offline message. The server lives for one test module and
stops by itself (daemon thread, shut down by the fixture, and a watchdog timer)."""
import gzip
import hashlib
import importlib.util
import io
import struct
import sys
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from nnkit import data_utils as du

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("nnkit_fetch", REPO / "datasets" / "fetch.py")
fetch = importlib.util.module_from_spec(spec)
sys.modules["nnkit_fetch"] = fetch  # dataclasses look their module up there
spec.loader.exec_module(fetch)


# ---------------------------------------------------------------------------
# the server
# ---------------------------------------------------------------------------
class Files:
    def __init__(self):
        self.content = {}      # path -> bytes
        self.behaviour = {}    # path -> "cut-first" (half, then close) | "no-range" | "404"
        self.requests = []     # (path, Range header or None)
        self.lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    files: Files = None

    def log_message(self, *args):  # keep pytest's output clean
        pass

    def do_GET(self):
        f = self.files
        rng = self.headers.get("Range")
        with f.lock:
            f.requests.append((self.path, rng))
            n_before = sum(1 for p, _ in f.requests if p == self.path) - 1
        body = f.content.get(self.path)
        how = f.behaviour.get(self.path)
        if body is None or how == "404":
            self.send_error(404)
            return
        start = 0
        if rng and how != "no-range":
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        payload = body[start:]
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if how == "cut-first" and n_before == 0:
            self.wfile.write(payload[: len(payload) // 2])   # then the connection drops
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(payload)


@pytest.fixture(scope="module")
def server():
    files = Files()
    handler = type("H", (Handler,), {"files": files})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    watchdog = threading.Timer(120, httpd.shutdown)  # never outlives a stuck test run
    watchdog.daemon = True
    watchdog.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield base, files
    watchdog.cancel()
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def md5(b):
    return hashlib.md5(b).hexdigest()


def quiet(*a, **k):
    pass


# ---------------------------------------------------------------------------
# tiny files in the real formats
# ---------------------------------------------------------------------------
def cifar_tarball(n=2, seed=0):
    """cifar-10-python.tar.gz layout: cifar-10-batches-py/{data_batch_1..5,test_batch,...}."""
    from test_data_utils import py2_cifar_batch_bytes
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    labels = {}
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-py")
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "readme.html"]:
            if name == "readme.html":
                blob = b"<html></html>"
            else:
                y = rng.integers(0, 10, n)
                labels[name] = y
                blob = py2_cifar_batch_bytes(y, rng.integers(0, 256, (n, 3072), dtype=np.uint8))
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return buf.getvalue(), labels


def mnist_gz_files(n_train=5, n_test=3, seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        X = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, n).astype(np.uint8)
        out[f"{prefix}-images-idx3-ubyte.gz"] = gzip.compress(struct.pack(">IIII", 2051, n, 28, 28) + X.tobytes())
        out[f"{prefix}-labels-idx1-ubyte.gz"] = gzip.compress(struct.pack(">II", 2049, n) + y.tobytes())
    return out


def one_file_source(base, route, blob, name="cifar10", size=None, md5sum=None):
    return {name: fetch.Source(
        files=(fetch.Remote("cifar-10-python.tar.gz", md5sum or md5(blob),
                            len(blob) if size is None else size, (base + route,)),),
        expected=tuple(f"cifar-10-batches-py/{n}" for n in
                       [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]),
        unpack=True, manual="get it by hand into {dir}")}


# ---------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------
def test_real_table_has_the_published_checksums():
    cifar = fetch.SOURCES["cifar10"].files[0]
    assert cifar.md5 == "c58f30108f718f92721af3b95e74349a" and cifar.size == 170498071
    assert cifar.urls == ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",)
    mn = {Path(r.path).name: r.md5 for r in fetch.SOURCES["mnist"].files}
    assert mn == {"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                  "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
                  "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
                  "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"}
    assert all(len(r.urls) >= 2 for r in fetch.SOURCES["mnist"].files)


def test_cifar_whole_flow(server, tmp_path):
    base, files = server
    blob, labels = cifar_tarball()
    files.content["/cifar-ok.tar.gz"] = blob
    dest = tmp_path / "datasets"
    fetch.fetch("cifar10", dest, sources=one_file_source(base, "/cifar-ok.tar.gz", blob), log=quiet)
    assert (dest / "cifar-10-batches-py" / "test_batch").is_file()
    assert not (dest / "cifar-10-python.tar.gz").exists()          # archive removed
    assert not list(dest.glob("*.part")) and not list(dest.glob(".unpack-*"))
    assert (dest / "cache" / "cifar10.npz").is_file()                # cache built
    d = du.load_dataset("cifar10", root=dest, num_training=8, num_validation=2, num_test=2)
    assert np.array_equal(d["y_test"], labels["test_batch"])
    # a second run finds everything and downloads nothing
    n = len(files.requests)
    fetch.fetch("cifar10", dest, sources=one_file_source(base, "/cifar-ok.tar.gz", blob), log=quiet)
    assert len(files.requests) == n


def test_bad_checksum_is_rejected(server, tmp_path):
    base, files = server
    blob, _ = cifar_tarball(seed=1)
    files.content["/cifar-bad.tar.gz"] = blob
    src = one_file_source(base, "/cifar-bad.tar.gz", blob, md5sum="0" * 32)
    with pytest.raises(fetch.FetchError) as e:
        fetch.fetch("cifar10", tmp_path, sources=src, log=quiet)
    msg = str(e.value)
    assert "md5" in msg and "0" * 32 in msg and "by hand" in msg
    assert not (tmp_path / "cifar-10-python.tar.gz").exists()
    assert not (tmp_path / "cifar-10-python.tar.gz.part").exists()
    assert not (tmp_path / "cifar-10-batches-py").exists()


def test_truncated_file_is_rejected_and_kept_for_resuming(server, tmp_path):
    base, files = server
    blob, _ = cifar_tarball(seed=2)
    files.content["/cifar-short.tar.gz"] = blob[:-100]                # the server only has this
    src = one_file_source(base, "/cifar-short.tar.gz", blob)
    with pytest.raises(fetch.FetchError) as e:
        fetch.fetch("cifar10", tmp_path, sources=src, log=quiet)
    assert f"of {len(blob)} bytes" in str(e.value)
    assert not (tmp_path / "cifar-10-python.tar.gz").exists()
    assert (tmp_path / "cifar-10-python.tar.gz.part").stat().st_size == len(blob) - 100


def test_resume_from_part_file_with_range(server, tmp_path):
    base, files = server
    blob, _ = cifar_tarball(seed=3)
    files.content["/cifar-resume.tar.gz"] = blob
    (tmp_path / "cifar-10-python.tar.gz.part").write_bytes(blob[:1000])
    fetch.fetch("cifar10", tmp_path, sources=one_file_source(base, "/cifar-resume.tar.gz", blob),
                cache=False, log=quiet)
    assert ("/cifar-resume.tar.gz", "bytes=1000-") in files.requests
    assert (tmp_path / "cifar-10-batches-py" / "data_batch_5").is_file()


def test_dropped_connection_resumes_automatically(server, tmp_path):
    base, files = server
    blob, _ = cifar_tarball(seed=4)
    files.content["/cifar-cut.tar.gz"] = blob
    files.behaviour["/cifar-cut.tar.gz"] = "cut-first"
    fetch.fetch("cifar10", tmp_path, sources=one_file_source(base, "/cifar-cut.tar.gz", blob),
                cache=False, log=quiet)
    seen = [r for p, r in files.requests if p == "/cifar-cut.tar.gz"]
    assert seen[0] is None and seen[1] == f"bytes={len(blob) // 2}-"
    assert (tmp_path / "cifar-10-batches-py" / "test_batch").is_file()


def test_server_ignoring_range_restarts_cleanly(server, tmp_path):
    base, files = server
    blob, _ = cifar_tarball(seed=5)
    files.content["/cifar-norange.tar.gz"] = blob
    files.behaviour["/cifar-norange.tar.gz"] = "no-range"
    (tmp_path / "cifar-10-python.tar.gz.part").write_bytes(b"x" * 500)   # stale partial
    fetch.fetch("cifar10", tmp_path, sources=one_file_source(base, "/cifar-norange.tar.gz", blob),
                cache=False, keep_archive=True, log=quiet)
    assert (tmp_path / "cifar-10-python.tar.gz").read_bytes() == blob


def test_mnist_with_a_dead_mirror(server, tmp_path):
    base, files = server
    gz = mnist_gz_files()
    for name, blob in gz.items():
        files.content[f"/m2/{name}"] = blob
    src = {"mnist": fetch.Source(
        files=tuple(fetch.Remote(f"mnist/{n}", md5(b), len(b), (f"{base}/m1/{n}", f"{base}/m2/{n}"))
                    for n, b in gz.items()),
        expected=tuple(f"mnist/{n}" for n in gz), manual="by hand")}
    fetch.fetch("mnist", tmp_path, sources=src, log=quiet)
    for n, b in gz.items():
        assert (tmp_path / "mnist" / n).read_bytes() == b
    assert (tmp_path / "cache" / "mnist.npz").is_file()
    d = du.load_dataset("mnist", root=tmp_path, num_training=4, num_validation=1, num_test=3)
    assert d["X_train"].shape == (4, 3, 32, 32)


def test_offline_fails_fast_with_instructions(tmp_path):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()                                    # nothing listens there: connection refused
    src = one_file_source(f"http://127.0.0.1:{port}", "/x.tar.gz", b"abc")
    t = time.monotonic()
    with pytest.raises(fetch.FetchError) as e:
        fetch.fetch("cifar10", tmp_path, sources=src, timeout=2, log=quiet)
    assert time.monotonic() - t < 10
    assert "cannot connect" in str(e.value) and "by hand" in str(e.value)


def test_cli_reports_offline_on_stderr(tmp_path, capsys, monkeypatch):
    def unreachable(*a, **k):
        raise fetch._Unreachable("cannot connect (no network)")
    monkeypatch.setattr(fetch, "_get", unreachable)
    assert fetch.main(["cifar10", "--dir", str(tmp_path), "--no-cache"]) == 1
    err = capsys.readouterr().err
    assert "cifar-10-python.tar.gz" in err and "c58f30108f718f92721af3b95e74349a" in err
    assert str(tmp_path) in err


def _tar_with(member: tarfile.TarInfo, data=b"x"):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        if member.isfile():
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
        else:
            tar.addfile(member)
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "hardlink"])
def test_unpacking_refuses_escapes(tmp_path, kind):
    if kind == "dotdot":
        m = tarfile.TarInfo("cifar-10-batches-py/../../evil.txt")
    elif kind == "absolute":
        m = tarfile.TarInfo(str(tmp_path / "evil.txt"))
    elif kind == "symlink":
        m = tarfile.TarInfo("cifar-10-batches-py/link")
        m.type, m.linkname = tarfile.SYMTYPE, "/etc/passwd"
    else:
        m = tarfile.TarInfo("cifar-10-batches-py/hard")
        m.type, m.linkname = tarfile.LNKTYPE, "/etc/passwd"
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(_tar_with(m))
    dest = tmp_path / "d" / "datasets"
    with pytest.raises(fetch.FetchError, match="refusing"):
        fetch.safe_extract(archive, dest)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "d" / "evil.txt").exists()
    assert list(dest.iterdir()) == []
