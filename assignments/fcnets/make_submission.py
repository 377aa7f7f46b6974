"""Make the submission zip of this assignment: exactly the files that are graded.

    python make_submission.py            # writes submission.zip
    python make_submission.py --check    # first runs the public checks of the notebooks once
    python make_submission.py --out my_id.zip

The graded files are listed in `manifest.toml`: the notebooks, the nnkit modules you
edit (`student_modules`) and the models your notebooks save (`saved_models`).
Datasets, caches, checkpoints and every other file are left out; the script prints
what it included and what it left out. Standard library only (works in Colab).
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


def still_stubbed(path: Path) -> list[str]:
    """Functions of a module whose body still raises NotImplementedError."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError) as exc:
        return [f"(the file does not parse: {exc})"]
    names = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for stmt in ast.walk(child):
                    if isinstance(stmt, ast.Raise) and stmt.exc is not None:
                        exc = stmt.exc.func if isinstance(stmt.exc, ast.Call) else stmt.exc
                        if isinstance(exc, ast.Name) and exc.id == "NotImplementedError":
                            names.append(prefix + child.name)
                            break
                visit(child, prefix + child.name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")
    visit(tree, "")
    return names


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


def run_checks(folder: Path, notebooks: list[str]) -> int:
    """Run each notebook once in a scratch copy and report its check cells; returns #failures."""
    try:
        import nbclient
        import nbformat
    except ImportError:
        print("The public checks need Jupyter's nbclient (pip install nbclient ipykernel). Without it:\n"
              "open each notebook, choose Run All, and make sure every check cell finishes without an error.")
        return 0
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "work"
        shutil.copytree(folder, work, ignore=shutil.ignore_patterns(*NEVER, ".*", "*.zip"))
        env_before = dict(os.environ)
        os.environ.setdefault("NNKIT_DATA_DIR", str(folder / "datasets"))
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
                for cell in nb.cells:
                    meta = cell.get("metadata", {}).get("nbgrader", {})
                    if cell.cell_type != "code" or not meta.get("grade"):
                        continue
                    errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
                    if errors:
                        failures += 1
                        print(f"  FAIL {name} {meta.get('grade_id')}: {errors[0].get('ename')}: {errors[0].get('evalue')}")
                    else:
                        print(f"  ok   {name} {meta.get('grade_id')}")
        finally:
            os.environ.clear()
            os.environ.update(env_before)
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="submission.zip", help="the zip to write (default: submission.zip)")
    parser.add_argument("--check", action="store_true", help="run the public checks of the notebooks once first")
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
        failed = run_checks(folder, list(manifest.get("notebooks", [])))
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
    print("\nLeft out (never submitted):")
    print("\n".join(left_out(folder, set(included), out)) or "  nothing")
    return 0


if __name__ == "__main__":
    sys.exit(main())
