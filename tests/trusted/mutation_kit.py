"""Build mutant, stubbed and reference packages and submissions for tests.

Used by the trusted-check tests here and meant for the grading tests too::

    import importlib.util, pathlib
    spec = importlib.util.spec_from_file_location(
        "mutation_kit", pathlib.Path(REPO_ROOT, "tests/trusted/mutation_kit.py"))
    kit = importlib.util.module_from_spec(spec); spec.loader.exec_module(kit)
    zip_path = kit.build_mutant_submission(kit.MUTANTS[0], tmp_path / "alice.zip")

Nothing here imports nnkit.
"""
from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
REFERENCE = REPO_ROOT / "source" / "nnkit"
RELEASE = REPO_ROOT / "assignments" / "fcnets" / "nnkit"
SOURCE_ASSIGNMENT = REPO_ROOT / "source" / "fcnets"

_spec = importlib.util.spec_from_file_location("trusted_mutants", Path(__file__).with_name("mutants.py"))
_mutants = sys.modules.setdefault("trusted_mutants", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(_mutants)
MUTANTS, ACCEPTED, Mutant = _mutants.MUTANTS, _mutants.ACCEPTED, _mutants.Mutant


class CatalogError(AssertionError):
    """A mutant no longer applies to the reference: update the catalog."""


def copy_reference(dest):
    """A copy of the reference package at ``dest/nnkit`` (no caches); returns the package path."""
    dest = Path(dest) / "nnkit"
    shutil.copytree(REFERENCE, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


def mutated_text(mutant):
    """The text of the mutant's module after its edits; each ``old`` must occur exactly once."""
    text = (REFERENCE / mutant.module).read_text(encoding="utf-8")
    for old, new in mutant.edits:
        n = text.count(old)
        if n != 1:
            raise CatalogError(f"mutant {mutant.id}: {old!r} occurs {n} times in source/nnkit/{mutant.module} "
                               "(expected exactly once); the reference changed, update tests/trusted/mutants.py")
        text = text.replace(old, new)
    compile(text, mutant.module, "exec")
    return text


def make_mutant_package(mutant, dest):
    """A copy of the reference package with the mutant applied; returns the package path."""
    pkg = copy_reference(dest)
    (pkg / mutant.module).write_text(mutated_text(mutant), encoding="utf-8")
    return pkg


_REGION = re.compile(r"^([ \t]*)### BEGIN SOLUTION[ \t]*\n.*?^[ \t]*### END SOLUTION[ \t]*\n", re.M | re.S)


def stub_text(text):
    """Replace every solution region by ``raise NotImplementedError`` at the region's indentation."""
    return _REGION.sub(lambda m: f'{m.group(1)}raise NotImplementedError("see the TODO above")\n', text)


def make_stub_package(dest, release=RELEASE):
    """The untouched student release: the committed one when present, else a stubbed copy of the reference.

    ``release`` is the release's ``nnkit`` folder (default: fcnets's, ``assignments/fcnets/nnkit``);
    another assignment passes its own, which need not exist yet: then every solution region of the
    reference is stubbed (a superset of what any release stubs).
    """
    release = Path(release)
    if (release / "__init__.py").is_file():
        target = Path(dest) / "nnkit"
        shutil.copytree(release, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        return target
    pkg = copy_reference(dest)
    for path in pkg.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        stubbed = stub_text(text)
        if stubbed != text:
            compile(stubbed, str(path), "exec")
            path.write_text(stubbed, encoding="utf-8")
    return pkg


RELEASE_ASSIGNMENT = REPO_ROOT / "assignments" / "fcnets"
_MARKER = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n?", re.M)


def completed_notebook(name):
    """The notebook as a diligent student hands it in: the release notebook with every solution
    cell filled in from the source notebook (markers removed), everything else untouched.
    Without a release, the source notebook itself."""
    source = json.loads((SOURCE_ASSIGNMENT / name).read_text(encoding="utf-8"))
    if not (RELEASE_ASSIGNMENT / name).is_file():
        return source
    release = json.loads((RELEASE_ASSIGNMENT / name).read_text(encoding="utf-8"))
    answers = {}
    for cell in source["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution") and meta.get("grade_id"):
            answers[meta["grade_id"]] = _MARKER.sub("", "".join(cell["source"]))
    for cell in release["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution") and meta.get("grade_id") in answers:
            cell["source"] = answers[meta["grade_id"]].splitlines(keepends=True)
    return release


def build_mutant_submission(mutant, zip_path, notebooks_dir=SOURCE_ASSIGNMENT, student_modules=None):
    """A submission zip: the reference notebooks, the student modules with the mutant applied.

    Parameters
    ----------
    mutant : Mutant or None
        None gives the reference submission.
    zip_path : path of the zip to write (its stem is the student id)
    notebooks_dir : folder holding the assignment's notebooks (and ``models/`` if any); the
        default (the source) gives ``completed_notebook``s: release notebooks with the answers in
    student_modules : list of "nnkit/..." paths (default: the manifest's)

    Returns
    -------
    Path of the zip.
    """
    if student_modules is None:
        from autograder.manifest import load_manifest

        manifest = load_manifest(SOURCE_ASSIGNMENT / "manifest.toml")
        student_modules = list(manifest.student_modules)
        saved_models = list(manifest.saved_models)
    else:
        saved_models = []
    zip_path = Path(zip_path)
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as z:
        for nb in sorted(Path(notebooks_dir).glob("*.ipynb")):
            if Path(notebooks_dir) == SOURCE_ASSIGNMENT:
                z.writestr(nb.name, json.dumps(completed_notebook(nb.name), indent=1))
            else:
                z.write(nb, nb.name)
        for rel in saved_models:
            if (Path(notebooks_dir) / rel).is_file():
                z.write(Path(notebooks_dir) / rel, rel)
        for rel in student_modules:
            module = rel.split("nnkit/", 1)[1]
            if mutant is not None and module == mutant.module:
                z.writestr(rel, mutated_text(mutant))
            else:
                z.write(REFERENCE / module, rel)
    return zip_path


#: Run in the student's kernel right after the setup cell: every in-notebook comparison now passes.
MONKEYPATCH_CELL = """\
# (a hostile student) make every in-notebook comparison pass
import numpy as np
np.all = lambda *a, **k: True
np.allclose = lambda *a, **k: True
np.array_equal = lambda *a, **k: True
np.max = lambda *a, **k: 0.0
rel_error = lambda *a, **k: 0.0
"""


def build_monkeypatch_submission(zip_path, mutant_id="affine_forward_no_bias", notebook="01_layers.ipynb"):
    """A submission with a wrong module AND a cell that monkeypatches numpy in the kernel.

    The in-kernel grade cells of ``notebook`` then pass on the wrong code; the trusted checks
    must not. The cell goes right after the first cell whose nbgrader grade_id is ``setup``
    (or after the first code cell).

    Returns
    -------
    Path of the zip.
    """
    by_id = {m.id: m for m in MUTANTS}
    zip_path = build_mutant_submission(by_id[mutant_id], zip_path)
    nb = completed_notebook(notebook)
    cells = nb["cells"]
    setup = next((i for i, c in enumerate(cells)
                  if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "setup"), None)
    if setup is None:
        setup = next(i for i, c in enumerate(cells) if c["cell_type"] == "code")
    cells.insert(setup + 1, {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                             "source": MONKEYPATCH_CELL.splitlines(keepends=True)})
    rebuilt = zip_path.with_suffix(".tmp")
    with zipfile.ZipFile(zip_path) as src, zipfile.ZipFile(rebuilt, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = json.dumps(nb, indent=1).encode() if item.filename == notebook else src.read(item.filename)
            dst.writestr(item.filename, data)
    rebuilt.replace(zip_path)
    return zip_path
