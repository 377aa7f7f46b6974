"""Which files of a tree count: caches, checkpoints, compiled and hidden files never do.

One rule for every tree the kit copies or ships (the release, nbgrader's courses, the grading
template): ``is_hidden(parts)`` of a path relative to the tree's root.
"""
from __future__ import annotations

from typing import Sequence

#: Folders editors and Python leave behind.
CACHE_NAMES = frozenset({"__pycache__", ".ipynb_checkpoints"})
COMPILED_SUFFIXES = (".pyc", ".pyo")


def is_hidden(parts: Sequence[str]) -> bool:
    """Whether the relative path `parts` is a cache, a checkpoint, compiled Python or hidden (a dot name)."""
    return (any(p.startswith(".") or p in CACHE_NAMES for p in parts)
            or bool(parts) and parts[-1].endswith(COMPILED_SUFFIXES))
