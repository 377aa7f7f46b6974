"""What every part of the release shares: its error, its constants, the file tree rule, and
what the other assignments of the kit ask students to write.
"""
from __future__ import annotations

from pathlib import Path

from ..files import is_hidden
from ..manifest import ManifestError, list_assignments, load_manifest


RELEASE_FILES = Path(__file__).resolve().parent / "files"


#: Environment of every kernel the release starts: the embedded dataset, no way to import
#: the reference through PYTHONPATH, and no bytecode caches written into copies.
KERNEL_ENV = {"NNKIT_DATASET": "embedded", "PYTHONPATH": None, "PYTHONDONTWRITEBYTECODE": "1",
              "MPLBACKEND": "Agg", "OPENBLAS_NUM_THREADS": "1"}


#: Per-cell timeout (s) when executing notebooks for validate and the self-grade.
CELL_TIMEOUT = 600


class ReleaseError(Exception):
    """The release stopped; `str()` names the gate and `file:line`."""

    def __init__(self, gate: str, path: str | Path, line: int, message: str):
        self.gate, self.path, self.line = gate, str(path), int(line)
        super().__init__(f"gate {gate} failed: {path}:{line}: {message}")


def _skip(rel_parts: tuple[str, ...]) -> bool:
    """Caches, checkpoints and hidden files are never part of a source tree's release."""
    return is_hidden(rel_parts)


def _tree(root: Path) -> list[str]:
    """The files of a source tree as sorted POSIX relative paths, without caches/hidden files."""
    return sorted(
        p.relative_to(root).as_posix() for p in root.rglob("*")
        if p.is_file() and not _skip(p.relative_to(root).parts)
    )


def functions_asked_elsewhere(assignment: str, root: Path) -> dict[str, set[str]]:
    """module -> the functions the other assignments of the kit have students write there.

    Their solutions must not ship complete in this release (they are stubbed with a
    message that says so): a student of one assignment could otherwise read another's.
    """
    out: dict[str, set[str]] = {}
    for other in list_assignments(root):
        if other == assignment:
            continue
        try:
            m = load_manifest(other, root)
        except ManifestError as exc:
            raise ReleaseError("manifest", f"source/{other}/manifest.toml", 1,
                               f"another assignment's manifest cannot be read, so this release cannot tell which "
                               f"solutions to keep out: {exc}") from None
        for module, functions in (m.package or {}).items():
            out.setdefault(module, set()).update(functions)
    return out
