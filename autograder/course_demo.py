"""The whole instructor flow on the embedded dataset, end to end: `run_demo(assignment, workdir=None)`.

1. **Release.** The committed student release `assignments/<assignment>/` when it
   is there, else one built into the work folder (`autograder.release`).
2. **Reference run.** The source notebooks executed once with the reference
   package (`release.run_reference`): that is where the saved models come from.
3. **Submissions**, written as zips to `<work>/submissions/`:
   `reference` (the instructor's solution), `untouched_release` (a student who
   did nothing), `typical_bugs` (the bugs of the manifest's `[demo] bugs`, e.g. an
   SVM loss that counts the correct class and an affine layer that forgets its
   bias) and `hostile` (the same bugs, plus a cell that tries to read and rewrite
   the gradebook, reach the network and other files, and monkeypatches numpy so
   that a wrong layer passes its cell).
4. **Grading** with `autograder.grading` (sandboxed; 2 workers), which also writes the
   feedback and the exports into `<work>/out/`.
5. **The grade table**, and a check of what must hold: the reference gets every
   autograded point, the untouched release none, the buggy one fewer than the
   reference, and the hostile one is flagged and scored by the trusted checks.

Without bubblewrap the hostile submission is not graded (it would run as you);
the other three are, unsandboxed, with a warning.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
import zipfile
from dataclasses import replace
from pathlib import Path

from . import REPO_ROOT


HOSTILE_CELL = r'''
# A hostile student: try to escape, then cheat in the kernel.
import os, socket, sqlite3
for path in ["../../../gradebook.db", "../../gradebook.db", "../../../source", "../../../submitted", "/work"]:
    print("can see" if os.path.exists(path) else "cannot see", path)
try:
    con = sqlite3.connect("file:../../../gradebook.db?mode=rw", uri=True)
    con.execute("UPDATE grade SET auto_score = 100")
    con.commit()
    print("rewrote the gradebook")
except Exception as exc:
    print("gradebook write failed:", type(exc).__name__)
try:
    socket.create_connection(("pypi.org", 443), timeout=2)
    print("network reached")
except OSError as exc:
    print("network blocked:", type(exc).__name__)
import numpy as np
np.max = lambda *a, **k: 0.0          # every max-error check now reads 0
np.allclose = lambda *a, **k: True
'''


def _zip(zip_path: Path, files: dict[str, Path | bytes]) -> Path:
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        for rel, src in sorted(files.items()):
            if isinstance(src, bytes):
                zf.writestr(rel, src)
            else:
                zf.write(src, rel)
    return zip_path


def solved_notebook(release_nb: Path, source_nb: Path) -> bytes:
    """The release notebook with every solution cell filled in from the source notebook.

    That is what a student who solved everything hands in: the release's cells and
    metadata (nothing for the grader to repair), the instructor's answers.
    """
    import nbformat

    nb = nbformat.read(str(release_nb), as_version=4)
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source
               for c in nbformat.read(str(source_nb), as_version=4).cells
               if c.metadata.get("nbgrader", {}).get("solution")}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and meta.get("grade_id") in answers:
            cell.source = answers[meta["grade_id"]]
    return nbformat.writes(nb).encode("utf-8")


def _hostile_notebook(text: bytes) -> bytes:
    """The notebook with HOSTILE_CELL inserted after its first code cell (the setup cell)."""
    import nbformat
    from nbformat.v4 import new_code_cell

    nb = nbformat.reads(text.decode("utf-8"), as_version=4)
    first = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    cell = new_code_cell(HOSTILE_CELL.strip())
    if nb.nbformat_minor < 5:
        cell.pop("id", None)
    nb.cells.insert(first + 1, cell)
    return nbformat.writes(nb).encode("utf-8")


def make_submissions(dest: Path, manifest, source_dir: Path, release_dir: Path, reference_run: Path,
                     hostile: bool = True) -> dict[str, Path]:
    """Write the demo's submission zips into `dest`; returns {student_id: zip path}.

    Always `reference` (the source notebooks' solutions in the release notebooks, the reference
    student modules, the saved models of `reference_run`) and `untouched_release`; with the
    manifest's `[demo] bugs`, also `typical_bugs` and (`hostile`) `hostile`.
    """
    ref_modules = {m: REPO_ROOT / "source" / m for m in manifest.student_modules}
    models = {m: reference_run / m for m in manifest.saved_models if (reference_run / m).is_file()}
    notebooks = {nb: solved_notebook(release_dir / nb, source_dir / nb) for nb in manifest.notebooks}
    out = {}
    out["reference"] = _zip(dest / "reference.zip", {**notebooks, **ref_modules, **models})
    out["untouched_release"] = _zip(dest / "untouched_release.zip", {
        **{nb: release_dir / nb for nb in manifest.notebooks},
        **{m: release_dir / m for m in manifest.student_modules}})
    if manifest.demo_bugs is None:  # an assignment without [demo]: the reference and the release only
        return out
    buggy: dict[str, bytes] = {}
    applied = []
    for module, old, new in manifest.demo_bugs:
        text = buggy.get(module, ref_modules[module].read_bytes()).decode("utf-8")
        if text.count(old) == 1:
            buggy[module] = text.replace(old, new).encode("utf-8")
            applied.append(old.strip())
    if not applied:
        raise RuntimeError(f"demo: none of [demo] bugs in {manifest.path} matches source/nnkit any more; update them")
    out["typical_bugs"] = _zip(dest / "typical_bugs.zip", {**notebooks, **ref_modules, **models, **buggy})
    if hostile:
        first_nb = manifest.notebooks[0]
        out["hostile"] = _zip(dest / "hostile.zip", {**notebooks, **ref_modules, **models, **buggy,
                                                      first_nb: _hostile_notebook(notebooks[first_nb])})
    return out


def _auto(r: dict) -> float:
    return sum(c.get("final_score") or 0.0 for c in r.get("cells", []) if c["kind"] == "auto")


def _auto_max(r: dict) -> float:
    return sum(c["max_score"] for c in r.get("cells", []) if c["kind"] == "auto")


def expectations(results: dict[str, dict]) -> list[tuple[bool, str]]:
    """What the demo promises, each as (holds, sentence)."""
    ref = results.get("reference")
    checks = []
    if ref:
        checks.append((ref["status"] == "graded" and _auto(ref) == _auto_max(ref) > 0,
                       f"the reference gets every autograded point ({_auto(ref):g}/{_auto_max(ref):g})"))
    rel = results.get("untouched_release")
    if rel:
        checks.append((_auto(rel) == 0.0, f"the untouched release gets no autograded point ({_auto(rel):g})"))
    bug = results.get("typical_bugs")
    if bug and ref:
        checks.append((_auto(bug) < _auto(ref), f"the buggy submission loses points ({_auto(bug):g} < {_auto(ref):g})"))
    hos = results.get("hostile")
    if hos and ref:
        checks.append(("suspicious" in hos["flags"], "the hostile submission is flagged suspicious"))
        checks.append((_auto(hos) < _auto(ref), f"the hostile submission's wrong layer still loses points ({_auto(hos):g})"))
    return checks


def demo_assignment(assignment: str | None = None) -> str:
    """`assignment`, or the kit's demo assignment: the first of `source/` whose manifest has a `[demo]` table."""
    from .manifest import list_assignments, load_manifest

    if assignment is not None:
        return assignment
    for name in list_assignments():
        if load_manifest(name).demo_bugs is not None:
            return name
    raise RuntimeError("no assignment of source/ has a [demo] table in its manifest: name one, "
                       "`python -m autograder demo ASSIGNMENT`, after adding `[demo] bugs = [...]` to it")


def run_demo(assignment: str | None = None, workdir: str | os.PathLike | None = None) -> int:
    """Run the instructor flow on `assignment` (default: ``demo_assignment()``); keep everything
    in `workdir` if given. Returns 0 when every expectation holds."""
    from .release.build import build_release
    from .release.plan import plan_release
    from .release.selfgrade import run_reference
    from .sandbox import bwrap as sandbox
    from .grading.coordinator import grade
    from .grading.settings import Settings
    from .manifest import load_manifest
    from .config import SECRET_VAR
    from .grading.outputs import format_table

    keep = workdir is not None
    work = Path(workdir).resolve() if keep else Path(tempfile.mkdtemp(prefix="nnkit-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    def say(msg):
        print(f"[{time.perf_counter() - started:6.1f} s] {msg}", flush=True)

    assignment = demo_assignment(assignment)
    try:
        manifest = load_manifest(assignment)
        if manifest.demo_bugs is None:
            raise RuntimeError(f"{manifest.path} has no [demo] table: add `[demo] bugs = [[module, reference "
                               "text, replacement], ...]`, the typical bugs of the demo's buggy submission")
        source_dir = REPO_ROOT / "source" / assignment
        release_dir = REPO_ROOT / "assignments" / assignment
        if (release_dir / "nnkit" / "__init__.py").is_file():
            say(f"1. release: using the committed student release {release_dir.relative_to(REPO_ROOT)}/")
        else:
            release_dir = work / "release"
            say(f"1. release: building it into {release_dir}")
            build_release(assignment, output=release_dir, self_grade_gate=False, log=lambda s: None)
        say("2. executing the reference notebooks once (embedded dataset) for the saved models")
        plan = plan_release(assignment)
        ref_run = work / "reference_run"
        if ref_run.exists():
            shutil.rmtree(ref_run)
        os.environ.setdefault("NNKIT_DATASET", "embedded")
        run_reference(plan, ref_run)
        use_sandbox = sandbox.available()
        subs = work / "submissions"
        if subs.exists():
            shutil.rmtree(subs)
        zips = make_submissions(subs, manifest, source_dir, release_dir, ref_run, hostile=use_sandbox)
        say(f"3. submissions: {', '.join(sorted(zips))} -> {subs}")
        if not use_sandbox:
            print(f"WARNING: no sandbox ({sandbox.unavailable_reason()}); grading without it and leaving the "
                  "hostile submission out. Install bubblewrap to see it contained.", file=sys.stderr)
        out = work / "out"
        settings = replace(Settings(), sandbox=use_sandbox, dataset="embedded",
                           course_secret=os.environ.get(SECRET_VAR, "nnkit-demo-secret"))
        say(f"4. grading {len(zips)} submissions with 2 workers ({'sandboxed' if use_sandbox else 'NOT sandboxed'})")
        results = grade(assignment, subs, out, workers=2, settings=settings, release_dir=release_dir,
                        progress=lambda r: say(f"   graded {r['student_id']}: {r['status']}"))
        say("5. grades (feedback, grades.csv, grades_by_check.csv, results/*.json in " + str(out) + ")")
        print()
        print(format_table(results))
        print()
        by_id = {r["student_id"]: r for r in results}
        checks = expectations(by_id)
        for ok, sentence in checks:
            print(("  ok    " if ok else "  FAIL  ") + sentence)
        if keep:
            print(f"\nkept in {work}: submissions/ (zips), out/ (gradebook.db, grades, feedback, results)")
        return 0 if checks and all(ok for ok, _ in checks) else 1
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(run_demo(sys.argv[1] if len(sys.argv) > 1 else None))
