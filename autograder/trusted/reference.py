"""The reference package ``source/nnkit``, imported by path in the trusted process.

The trusted process computes every expected value with the reference; it
never imports a student's package (that only runs in the sandboxed runner).
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from .. import REPO_ROOT

REFERENCE_DIR = REPO_ROOT / "source" / "nnkit"


class ReferenceError(RuntimeError):
    """The reference package cannot be used in this process."""


def reference_module(name):
    """The module ``nnkit.<name>`` of the reference package.

    Raises
    ------
    ReferenceError
        When another ``nnkit`` (a student's) is already imported in this process.
    """
    pkg = sys.modules.get("nnkit")
    if pkg is None:
        spec = importlib.util.spec_from_file_location(
            "nnkit", REFERENCE_DIR / "__init__.py", submodule_search_locations=[str(REFERENCE_DIR)])
        pkg = importlib.util.module_from_spec(spec)
        sys.modules["nnkit"] = pkg
        try:
            spec.loader.exec_module(pkg)
        except BaseException:
            del sys.modules["nnkit"]
            raise
    else:
        where = Path(getattr(pkg, "__file__", "") or "").resolve().parent
        if where != REFERENCE_DIR.resolve():
            raise ReferenceError(
                f"this process already imported an nnkit package from {where}; the trusted checks compute "
                f"expected values with the reference at {REFERENCE_DIR} and must not mix the two. "
                "Run the checks in a process that never imports a student's nnkit."
            )
    return importlib.import_module("nnkit." + name)
