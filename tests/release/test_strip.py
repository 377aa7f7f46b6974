"""The .py solution stripper (autograder.release.strip): expected outputs written out by hand."""
import textwrap

import pytest

from autograder.release.strip import StripError, find_regions, strip_source, marker_typo

B, E = "### BEGIN SOLUTION", "### END SOLUTION"


def src(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n").replace("#B", B).replace("#E", E)


def stub(indent: str, name: str) -> str:
    return f'{indent}raise NotImplementedError("{name}: not implemented yet, see the TODO above")'


def test_region_before_return_keeps_signature_docstring_todo_and_return():
    text = src('''
        import numpy as np


        def affine_forward(x, w, b):
            """Affine layer.

            x: (N, D), w: (D, M), b: (M,); returns out (N, M) and cache (x, w, b).
            """
            # TODO: compute out.
            #B
            out = x.reshape(x.shape[0], -1) @ w + b
            #E
            cache = (x, w, b)
            return out, cache
        ''')
    expected = src('''
        import numpy as np


        def affine_forward(x, w, b):
            """Affine layer.

            x: (N, D), w: (D, M), b: (M,); returns out (N, M) and cache (x, w, b).
            """
            # TODO: compute out.
        ''') + stub("    ", "affine_forward") + "\n" + "    cache = (x, w, b)\n    return out, cache\n"
    result = strip_source(text, "layers.py")
    assert result.text == expected
    assert result.stubs == ((10, "affine_forward", True),)


def test_decorators_methods_properties_and_nested_functions_get_qualified_names():
    text = src('''
        import functools


        def deco(fn):
            @functools.wraps(fn)
            def inner(*a, **k):
                return fn(*a, **k)
            return inner


        class Net:
            @deco
            def loss(self, X, y=None):
                """Loss."""
                scores = X
                #B
                scores = scores * 2
                #E
                return scores

            @property
            def size(self):
                #B
                return 3
                #E

            @staticmethod
            def make():
                def helper(v):
                    # TODO
                    #B
                    return v + 1
                    #E
                return helper
        ''')
    result = strip_source(text, "fc_net.py")
    names = [(name, whole) for _, name, whole in result.stubs]
    # loss has `scores = X` before its region; size and helper are all region.
    assert names == [("Net.loss", False), ("Net.size", True), ("Net.make.helper", True)]
    lines = result.text.split("\n")
    assert lines[11] == "    @deco" and lines[12] == "    def loss(self, X, y=None):"
    assert lines[15] == stub("        ", "Net.loss")
    assert lines[18] == "    @property" and lines[19] == "    def size(self):"
    assert lines[20] == stub("        ", "Net.size")
    assert lines[25] == "            # TODO"
    assert lines[26] == stub("            ", "Net.make.helper")
    assert lines[27] == "        return helper"
    assert "scores * 2" not in result.text and "v + 1" not in result.text


def test_tabs_are_kept_and_the_stub_uses_the_begin_lines_tab():
    text = "def f(x):\n\t# TODO\n\t" + B + "\n\ty = x\n\t" + E + "\n\treturn y\n"
    out = strip_source(text, "tabs.py").text
    assert out == "def f(x):\n\t# TODO\n" + stub("\t", "f") + "\n\treturn y\n"


def test_crlf_line_endings_are_preserved_on_every_line_including_the_stub():
    text = "def f(x):\r\n    \"\"\"Doc.\"\"\"\r\n    " + B + "\r\n    y = x\r\n    " + E + "\r\n    return y\r\n"
    out = strip_source(text, "crlf.py").text
    assert out == "def f(x):\r\n    \"\"\"Doc.\"\"\"\r\n" + stub("    ", "f") + "\r\n    return y\r\n"
    assert "\n" not in out.replace("\r\n", "")


def test_non_ascii_text_and_unicode_line_separators_do_not_shift_lines():
    # U+2028 inside a string is not a line break for Python; str.splitlines would split there.
    text = 'def f(x):\n    """Ölçek — 尺度: x (N,)."""\n    s = "a\u2028b"\n    ' + B + "\n    y = x * 2  # ×2\n    " + E + "\n    return y, s\n"
    out = strip_source(text, "uni.py").text
    assert out == 'def f(x):\n    """Ölçek — 尺度: x (N,)."""\n    s = "a\u2028b"\n' + stub("    ", "f") + "\n    return y, s\n"


def test_module_level_region_is_an_error_with_its_line():
    text = "import numpy as np\n" + B + "\nCONSTANT = 3\n" + E + "\n"
    with pytest.raises(StripError, match=r"^mod\.py:2: a solution region outside any function"):
        strip_source(text, "mod.py")


def test_class_body_region_is_an_error():
    text = "class A:\n    " + B + "\n    x = 1\n    " + E + "\n"
    with pytest.raises(StripError, match=r"^cls\.py:2: a solution region outside any function"):
        strip_source(text, "cls.py")


@pytest.mark.parametrize("text, line, message", [
    ("def f():\n    " + B + "\n    " + B + "\n    x = 1\n    " + E + "\n",
     3, "nested solution region: the region opened at line 2"),
    ("def f():\n    x = 0\n    " + B + "\n    x = 1\n", 3, "unclosed solution region"),
    ("def f():\n    x = 1\n    " + E + "\n", 3, "an END marker without a BEGIN marker"),
    ('def f():\n    """Replace\n    ' + B + '\n    here."""\n', 3, "inside a string or docstring"),
    ("def f():\n    s = '" + B + "'\n", 2, "inside a string or docstring"),
    ("def f():\n    x = 1  " + B + "\n    " + E + "\n", 2, "must be alone on its line"),
    ("def f():\n    # BEGIN SOLUTION\n    x = 1\n    # END SOLUTION\n", 2, "malformed solution marker"),
    ("def f():\n    " + B + " here\n    x = 1\n    " + E + "\n", 2, "malformed solution marker"),
    ("def f():\n    if True:\n        " + B + "\n        x = 1\n    " + E + "\n", 5, "indented differently"),
    ("def f(:\n    pass\n", 1, "the source does not compile"),
])
def test_bad_markers_and_sources_are_errors_with_file_and_line(text, line, message):
    with pytest.raises(StripError) as info:
        strip_source(text, "pkg/bad.py")
    assert info.value.path == "pkg/bad.py" and info.value.line == line
    assert str(info.value).startswith(f"pkg/bad.py:{line}: ") and message in str(info.value)


def test_a_result_that_does_not_compile_is_an_error_naming_the_source_line():
    # The region holds part of an expression: its stub cannot stand in the call.
    text = "def f():\n    return max(\n        " + B + "\n        1, 2\n        " + E + "\n    )\n"
    with pytest.raises(StripError, match=r"^pkg/expr\.py:3: the stubbed module does not compile"):
        strip_source(text, "pkg/expr.py")


def test_everything_outside_regions_is_kept_byte_for_byte():
    text = src('''
        def a(x):
            # TODO a
            #B
            y = 1
            z = 2
            #E
            return y


        def b(x):
            #B
            return 2
            #E
        ''')
    regions = find_regions(text, "m.py")
    assert [(r.begin, r.end) for r in regions] == [(3, 6), (11, 13)]
    source_lines = text.split("\n")
    kept = [line for n, line in enumerate(source_lines, start=1)
            if not any(r.begin <= n <= r.end for r in regions)]
    out_lines = [line for line in strip_source(text, "m.py").text.split("\n") if "NotImplementedError" not in line]
    assert out_lines == kept


def test_marker_words_in_an_ordinary_comment_are_an_error_not_silently_kept():
    # "end solution" in prose would leave a marker-like line in the release: refuse it.
    text = "def f():\n    # the end solution is below\n    return 1\n"
    with pytest.raises(StripError, match=r":2: malformed solution marker"):
        strip_source(text, "prose.py")


@pytest.mark.parametrize("line, meant", [
    ("### BEGIN SOLUTON", "### BEGIN SOLUTION"), ("## END SOLUTION", "### END SOLUTION"),
    ("    ### begin solution", "### BEGIN SOLUTION"), ("###BEGIN SOLUTION", "### BEGIN SOLUTION"),
    ("# BEGIN_SOLUTION", "### BEGIN SOLUTION"), ("### END SOLUTIONS", "### END SOLUTION"),
    ("### END HIDDEN TEST", "### END HIDDEN TESTS"), ("### BEGN HIDDEN TESTS", "### BEGIN HIDDEN TESTS"),
    ("### BEGIN SOLUTION", None), ("### END HIDDEN TESTS", None), ("=== BEGIN MARK SCHEME ===", None),
    ("# TODO: the whole body is yours.", None), ("# and the solution follows", None),
    ("We begin the solution with the forward pass.", None), ("return begin + end", None),
])
def test_marker_typos(line, meant):
    assert marker_typo(line) == meant


def test_a_misspelt_marker_comment_stops_the_stripper():
    src = "def f(x):\n    ### BEGIN SOLUTON\n    return x\n    ### END SOLUTION\n"
    with pytest.raises(StripError) as info:
        strip_source(src, "m.py")
    assert str(info.value) == ("m.py:2: '### BEGIN SOLUTON' looks like a solution marker but is not one; "
                               "write exactly '### BEGIN SOLUTION'")
