"""The Colab-ready zip of a release: deterministic (fixed timestamps), with a MANIFEST of hashes."""
from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

from .gates import release_files


#: Fixed timestamp of every zip entry (the earliest a zip can hold): deterministic bundles.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def write_zip(release: Path, zip_path: Path, assignment: str) -> None:
    """The Colab-ready bundle: every release file under `<assignment>/`, plus `<assignment>/MANIFEST`
    (one `sha256  path` line per file). Sorted entries, fixed timestamps and modes: deterministic."""
    files = release_files(release)
    manifest = "".join(f"{hashlib.sha256((release / f).read_bytes()).hexdigest()}  {f}\n" for f in files)
    entries = [(f, (release / f).read_bytes()) for f in files] + [("MANIFEST", manifest.encode())]
    zip_path = Path(zip_path)
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = zip_path.with_name(f".{zip_path.name}.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in sorted(entries):
            info = zipfile.ZipInfo(f"{assignment}/{name}", date_time=ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, whatever the host
            zf.writestr(info, data)
    os.replace(tmp, zip_path)
