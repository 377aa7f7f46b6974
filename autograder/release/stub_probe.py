"""The stub probe: imports every module of a release's package and calls every stub.

Run by ``gates.check_stubs`` as ``python -I -B stub_probe.py ROOT MODULES_JSON STUBS_JSON``
in a fresh isolated interpreter (``-I``: no PYTHONPATH, no user site, and not this
script's folder on sys.path), so only the release's nnkit (under ROOT) can be
imported. Prints one JSON list of problems ``{"path", "line", "message"}`` as its
last line: a module that does not import, a stub line that is not a ``raise
NotImplementedError``, a stub outside the function it names, or a stubbed
function that, called with dummy arguments, does anything but raise
NotImplementedError. Imports only the standard library.
"""
import ast, importlib, inspect, json, sys, traceback
root, modules, stubs = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
sys.path.insert(0, root)
problems = []
def report(rel, line, msg):
    problems.append({"path": rel, "line": line, "message": msg})
for rel in modules:
    name = rel[:-3].replace("/", ".")
    if name.endswith(".__init__"):
        name = name[: -len(".__init__")]
    try:
        mod = importlib.import_module(name)
    except BaseException as exc:
        tb = traceback.extract_tb(exc.__traceback__)
        # The outermost frame in the module: the module-level line the import died on.
        line = next((f.lineno for f in tb if f.filename.endswith(rel)), 1)
        if isinstance(exc, SyntaxError) and (exc.filename or "").endswith(rel):
            line = exc.lineno or 1
        elif isinstance(exc, SyntaxError) and exc.filename:
            rel = exc.filename[len(root) + 1:] if exc.filename.startswith(root) else exc.filename
            line = exc.lineno or 1
        report(rel, line, f"import {name} failed: {type(exc).__name__}: {exc}")
        continue
    if not (mod.__file__ or "").startswith(root):
        report(rel, 1, f"import {name} resolved to {mod.__file__}, not the release")
def dummy_call(fn, bound_self=None):
    sig = inspect.signature(fn)
    args, kwargs = [], {}
    params = list(sig.parameters.values())
    if bound_self is not None:
        args.append(bound_self)
        params = params[1:]
    for p in params:
        if p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.kind == p.KEYWORD_ONLY:
            kwargs[p.name] = None
        else:
            args.append(None)
    return fn(*args, **kwargs)
for s in stubs:
    rel, line, qualname, whole = s["path"], s["line"], s["function"], s["whole_body"]
    src = open(f"{root}/{rel}", encoding="utf-8").read()
    lines = src.split("\n")
    if "raise NotImplementedError(" not in lines[line - 1]:
        report(rel, line, f"{qualname}: the stub line is not a raise NotImplementedError")
        continue
    # The stub must sit inside the function it names.
    tree = ast.parse(src)
    found = False
    def visit(node, prefix):
        global found
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                q = prefix + child.name
                if q == qualname and child.lineno <= line <= child.end_lineno:
                    found = True
                visit(child, q + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")
            else:
                visit(child, prefix)
    visit(tree, "")
    if not found:
        report(rel, line, f"{qualname}: the stub is not inside that function")
        continue
    if not whole:
        continue  # code runs before the stub; dummy arguments could fail there first
    name = rel[:-3].replace("/", ".")
    try:
        obj = importlib.import_module(name)
    except BaseException:
        continue  # reported above
    owner, target = None, obj
    try:
        for part in qualname.split("."):
            owner, target = target, inspect.getattr_static(target, part)
    except AttributeError:
        continue  # a nested function: only the static check applies
    if inspect.ismodule(owner) or owner is None:
        call, bound = target, None
    elif isinstance(target, staticmethod):
        call, bound = target.__func__, None
    elif isinstance(target, classmethod):
        call, bound = target.__func__, owner
    elif isinstance(target, property):
        call, bound = target.fget, object.__new__(owner) if owner.__new__ is object.__new__ else owner.__new__(owner)
    elif inspect.isclass(owner):
        try:
            inst = owner.__new__(owner)
        except BaseException:
            inst = object.__new__(owner)
        call, bound = target, inst
    else:
        continue
    if not callable(call):
        continue
    try:
        # The decorated object, as students call it: a decorator that swallows the
        # NotImplementedError would hide an unimplemented function, so it must fail here.
        result = dummy_call(call, bound) if bound is not None else dummy_call(call)
    except NotImplementedError:
        continue
    except BaseException as exc:
        report(rel, line, f"{qualname}: called with dummy arguments it raised {type(exc).__name__}: {exc} "
                          "instead of NotImplementedError")
        continue
    report(rel, line, f"{qualname}: called with dummy arguments it returned {result!r} instead of raising "
                      "NotImplementedError")
print(json.dumps(problems))
