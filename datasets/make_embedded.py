"""Build the committed embedded dataset from scikit-learn's bundled 8x8 digits.

Run once by an instructor (needs scikit-learn; nnkit itself never does)::

    python datasets/make_embedded.py            # writes datasets/embedded/digits8x8.npz

The output holds two arrays and nothing else (no pickles):

- ``images``: (1797, 8, 8) uint8, the 0..16 pixel counts scaled to 0..255
  with ``round(v * 255 / 16)`` (round half to even, as ``np.rint``)
- ``labels``: (1797,) uint8, the digit 0..9

The order is scikit-learn's (``load_digits()``), which ``nnkit.data_utils``
relies on for its deterministic split. Provenance and licence: datasets/README.md.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "embedded" / "digits8x8.npz"


def build_arrays() -> tuple[np.ndarray, np.ndarray]:
    """Return ``(images, labels)``: (1797, 8, 8) uint8 0..255 and (1797,) uint8."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        sys.exit("make_embedded.py needs scikit-learn: pip install scikit-learn")
    digits = load_digits()
    raw = np.asarray(digits.images)
    if raw.shape != (1797, 8, 8) or raw.min() < 0 or raw.max() > 16:
        sys.exit(f"unexpected digits data: shape {raw.shape}, range {raw.min()}..{raw.max()}")
    images = np.rint(raw * (255.0 / 16.0)).astype(np.uint8)
    labels = np.asarray(digits.target).astype(np.uint8)
    return images, labels


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(OUT), help=f"output file (default: {OUT})")
    out = Path(parser.parse_args(argv).out)
    images, labels = build_arrays()
    out.parent.mkdir(parents=True, exist_ok=True)
    # Write beside the target and rename, so a crash never leaves half a file.
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".tmp.npz")
    os.close(fd)
    try:
        np.savez_compressed(tmp, images=images, labels=labels)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    print(f"wrote {out} ({out.stat().st_size} bytes): images {images.shape} {images.dtype}, "
          f"labels {labels.shape}, counts per class {np.bincount(labels).tolist()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
