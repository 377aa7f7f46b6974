"""Make the submission zip of this assignment: exactly the files that are graded.

    python make_submission.py            # writes submission.zip
    python make_submission.py --check    # first runs the public checks of the notebooks once
    python make_submission.py --check --dataset cifar10   # ... on that dataset, whatever the notebooks chose
    python make_submission.py --out my_id.zip

The graded files are listed in `manifest.toml`: the notebooks, the nnkit modules you
edit (`student_modules`) and the models your notebooks save (`saved_models`).
Datasets, caches, checkpoints and every other file are left out; the script prints
what it included and what it left out, and what still looks unfinished: functions that
still raise the release's NotImplementedError stub, written answers not given yet, and
notebooks saved with an error in a cell. Standard library only (works in Colab).
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed entry times: the same files give the same zip
NEVER = ("datasets", "__pycache__", ".ipynb_checkpoints")
#: The message of the release's stubs (the kit's strip tool); other NotImplementedErrors are by design,
#: e.g. an abstract method that its subclasses override.
STUB_TEXT = "not implemented yet"
#: What nbgrader leaves in a written answer (a markdown solution cell) of the release.
UNANSWERED = {"", "YOUR ANSWER HERE"}
DATASET_LINE = re.compile(r"dataset '([A-Za-z0-9_]+)'(?: \(([^)]*)\))?")


def read_manifest(folder: Path) -> dict:
    """The lists of manifest.toml (tomllib when available, else a small reader for its arrays)."""
    text = (folder / "manifest.toml").read_text(encoding="utf-8")
    try:
        import tomllib
        return tomllib.loads(text)
    except ImportError:  # Python < 3.11
        data = {}
        for key in ("assignment", "title"):
            m = re.search(rf'^{key}\s*=\s*"(.*)"\s*$', text, re.M)
            if m:
                data[key] = json.loads(f'"{m.group(1)}"')
        for key in ("notebooks", "student_modules", "saved_models"):
            m = re.search(rf"^{key}\s*=\s*\[(.*?)\]", text, re.M | re.S)
            data[key] = [json.loads(s) for s in re.findall(r'"(?:[^"\\]|\\.)*"', m.group(1))] if m else []
        return data


def graded_files(manifest: dict) -> list[str]:
    return list(manifest.get("notebooks", [])) + list(manifest.get("student_modules", [])) + list(manifest.get("saved_models", []))


def _is_stub_raise(stmt) -> bool:
    """`raise NotImplementedError("<name>: not implemented yet, ...")`, the release's stub."""
    if not isinstance(stmt, ast.Raise) or stmt.exc is None:
        return False
    exc = stmt.exc.func if isinstance(stmt.exc, ast.Call) else stmt.exc
    if not (isinstance(exc, ast.Name) and exc.id == "NotImplementedError"):
        return False
    args = stmt.exc.args if isinstance(stmt.exc, ast.Call) else []
    return any(isinstance(a, ast.Constant) and isinstance(a.value, str) and STUB_TEXT in a.value for a in args)


def still_stubbed(path: Path) -> list[str]:
    """Functions of a module whose body still raises the release's NotImplementedError stub
    (a NotImplementedError with another message, such as an abstract method's, is by design)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError) as exc:
        return [f"(the file does not parse: {exc})"]
    names = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if any(_is_stub_raise(stmt) for stmt in ast.walk(child)):
                    names.append(prefix + child.name)
                visit(child, prefix + child.name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")
    visit(tree, "")
    return names


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def notebook_problems(folder: Path, notebooks: list[str]) -> list[str]:
    """Lines naming what a notebook still lacks, read from the saved files (nothing is run):
    written answers not given, solution cells still raising NotImplementedError, cells saved
    with an error."""
    lines = []
    for name in notebooks:
        path = folder / name
        if not path.is_file():
            continue
        try:
            nb = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            lines.append(f"  {name}: not a readable notebook ({exc})")
            continue
        for cell in nb.get("cells", []):
            meta = cell.get("metadata", {}).get("nbgrader", {})
            gid = meta.get("grade_id") or cell.get("id") or "?"
            src = _source(cell).strip()
            if meta.get("solution") and cell.get("cell_type") == "markdown" and meta.get("grade"):
                if src in UNANSWERED:
                    lines.append(f"  {name} {gid}: written answer not given yet")
            elif meta.get("solution") and cell.get("cell_type") == "code" and "raise NotImplementedError()" in src:
                lines.append(f"  {name} {gid}: still `raise NotImplementedError()` (your code goes there)")
            errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
            if errors:
                e = errors[0]
                lines.append(f"  {name} {gid}: saved with an error: {e.get('ename')}: {_short(e.get('evalue'))}")
    return lines


def _short(text, limit=300) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def left_out(folder: Path, included: set[str], out: Path) -> list[str]:
    """Lines describing every file not submitted (whole folders such as datasets/ in one line)."""
    lines, skipped_dirs = [], {}
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        rel_dir = Path(dirpath).relative_to(folder)
        for d in list(dirnames):
            if d in NEVER or d.startswith("."):
                p = (rel_dir / d).as_posix()
                count = sum(len(f) for _, _, f in os.walk(Path(dirpath) / d))
                skipped_dirs[p] = count
                dirnames.remove(d)
        for name in sorted(filenames):
            rel = (rel_dir / name).as_posix()
            if rel in included or (Path(dirpath) / name).resolve() == out.resolve():
                continue
            why = "provided file, restored by the grader" if rel.startswith("nnkit/") else "not graded"
            if name.startswith(".") or name.endswith((".pyc", ".pyo")):
                why = "hidden or cache file"
            lines.append(f"  {rel}  ({why})")
    for d, count in sorted(skipped_dirs.items()):
        lines.append(f"  {d}/  ({count} files; datasets, caches and checkpoints are never submitted)")
    return lines


def write_zip(folder: Path, files: list[str], out: Path) -> None:
    tmp = out.with_name(out.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for rel in sorted(files):
            info = zipfile.ZipInfo(rel, date_time=ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, (folder / rel).read_bytes())
    os.replace(tmp, out)


def run_checks(folder: Path, notebooks: list[str], dataset: str | None = None) -> int:
    """Run each notebook once in a scratch copy and report its check cells; returns #failures.

    A cell that is not a check but fails (loading the data, say) is reported as the cause of
    the checks that fail after it. The dataset each notebook used is read from its setup cell.
    """
    try:
        import nbclient
        import nbformat
    except ImportError:
        print("The public checks need Jupyter's nbclient (pip install nbclient ipykernel). Without it:\n"
              "open each notebook, choose Run All, and make sure every check cell finishes without an error.")
        return 0
    failures, used = 0, {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "work"
        shutil.copytree(folder, work, ignore=shutil.ignore_patterns(*NEVER, ".*", "*.zip"))
        env_before = dict(os.environ)
        os.environ.setdefault("NNKIT_DATA_DIR", str(folder / "datasets"))
        if dataset:
            os.environ["NNKIT_DATASET"] = dataset
        # As nbgrader's validate does: expensive cells may skip themselves.
        os.environ["NBGRADER_EXECUTION"] = "validate"
        try:
            for name in notebooks:
                if not (work / name).is_file():
                    print(f"  {name}: missing")
                    failures += 1
                    continue
                nb = nbformat.read(str(work / name), as_version=4)
                kernel = nb.metadata.get("kernelspec", {}).get("name", "python3")
                client = nbclient.NotebookClient(nb, timeout=600, kernel_name=kernel, allow_errors=True,
                                                 resources={"metadata": {"path": str(work)}})
                try:
                    client.execute()
                except Exception as exc:  # a dead kernel or a timeout: report and go on
                    print(f"  {name}: the notebook stopped: {type(exc).__name__}: {exc}")
                    failures += 1
                    continue
                cause = None  # the first cell that is not a check and failed
                for cell in nb.cells:
                    if cell.cell_type != "code":
                        continue
                    meta = cell.get("metadata", {}).get("nbgrader", {})
                    gid = meta.get("grade_id") or cell.get("id") or "?"
                    text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")
                    found = DATASET_LINE.search(text) if gid == "setup" else None
                    if found:
                        used[name] = (found.group(1), found.group(2))
                    errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
                    if not meta.get("grade"):
                        if errors and cause is None:
                            cause = (gid, errors[0])
                            print(f"  ERROR {name} {gid} (not a check; the checks after it need it): "
                                  f"{errors[0].get('ename')}: {_short(errors[0].get('evalue'), 800)}")
                        continue
                    if errors:
                        failures += 1
                        line = f"  FAIL {name} {gid}: {errors[0].get('ename')}: {_short(errors[0].get('evalue'))}"
                        if cause is not None:
                            line += f"  (after the error in {cause[0]} above: fix that first)"
                        print(line)
                    else:
                        print(f"  ok   {name} {gid}")
        finally:
            os.environ.clear()
            os.environ.update(env_before)
    if used:
        names = sorted({d for d, _ in used.values()})
        why = sorted({w for _, w in used.values() if w})
        print(f"The checks ran on the dataset {' and '.join(repr(n) for n in names)}"
              + (f" ({'; '.join(why)})" if why else "") + ". The grader evaluates your saved models on "
              "its own dataset (CIFAR-10 unless your course says otherwise).")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="submission.zip", help="the zip to write (default: submission.zip)")
    parser.add_argument("--check", action="store_true", help="run the public checks of the notebooks once first")
    parser.add_argument("--dataset", default=None,
                        help="with --check: the dataset to run them on (default: what each notebook chose)")
    parser.add_argument("--folder", default=str(HERE), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    folder = Path(args.folder).resolve()
    out = Path(args.out)
    if not out.is_absolute():
        out = folder / out
    manifest = read_manifest(folder)
    wanted = graded_files(manifest)

    if args.check:
        print("Running the public checks once (this executes every notebook):")
        failed = run_checks(folder, list(manifest.get("notebooks", [])), args.dataset)
        print(f"{failed} check(s) failed." if failed else "Every public check passed.")
    else:
        print("(Run `python make_submission.py --check` to run the public checks first.)")

    included = [f for f in wanted if (folder / f).is_file()]
    missing = [f for f in wanted if f not in included]
    write_zip(folder, included, out)

    print(f"\nWrote {out} with {len(included)} file(s):")
    for f in included:
        print(f"  {f}")
    if missing:
        print("\nMISSING (graded, but not found; run the notebook that creates it):")
        for f in missing:
            print(f"  {f}")
    stubs = {m: still_stubbed(folder / m) for m in manifest.get("student_modules", []) if (folder / m).is_file()}
    stubs = {m: s for m, s in stubs.items() if s}
    if stubs:
        print("\nStill raising NotImplementedError (not implemented yet):")
        for m, names in stubs.items():
            print(f"  {m}: {', '.join(names)}")
    todo = notebook_problems(folder, list(manifest.get("notebooks", [])))
    if todo:
        print("\nIn the notebooks as saved:")
        print("\n".join(todo))
    print("\nLeft out (never submitted):")
    print("\n".join(left_out(folder, set(included), out)) or "  nothing")
    return 0


if __name__ == "__main__":
    sys.exit(main())
