"""Comparisons of a student's outputs with the reference, with readable verdicts.

A verifier is a function ``verify(ref, got) -> str | None`` taking two
:class:`Outcome` objects (the reference's and the student's results of the
same call); it returns None when the check passes and otherwise a message
saying what was expected, what came back, how far apart they are and the
likely cause.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Outcome:
    """What one call produced, on either side.

    Attributes
    ----------
    status : str
        ``"ok"``, ``"raised"`` (error holds the exception), ``"timeout"`` or ``"error"``
        (the runner died before finishing the call).
    infos : dict
        Output name -> description from ``runner.describe``: ``kind`` and ``type`` only. For a
        student's outcome it may only make a verdict stricter (``none``, ``subclass``, ``other``,
        a number where an array is due); dtype and shape always come from ``arrays``.
    arrays : dict
        Output name -> plain ndarray actually received (outputs that are arrays or numbers).
    keys : dict
        Output name -> sorted key list, for outputs that were dicts.
    mutated : list of str
        Input names the call changed in place.
    """

    status: str
    error: str | None = None
    infos: dict = field(default_factory=dict)
    arrays: dict = field(default_factory=dict)
    keys: dict = field(default_factory=dict)
    mutated: list = field(default_factory=list)


def _fmt(x):
    return np.array2string(np.asarray(x), precision=6, threshold=6, edgeitems=2, separator=", ")


def received(got, name, want_scalar=False):
    """The array received for output ``name`` and None, or None and why it is not acceptable.

    Only the array itself says what was returned; the description (``got.infos``) can only
    refuse more: ``none``, ``subclass``, ``other``, or a Python number where an array is due.
    A description without an array is "not returned".
    """
    info = got.infos.get(name) or {}
    kind, what = info.get("kind"), info.get("type", "?")
    if kind == "none":
        return None, f"`{name}` is None: the code that should set it did not run or did not assign it"
    if kind == "subclass":
        return None, f"`{name}` must be a plain numpy.ndarray, got an instance of the subclass {what}"
    if kind == "other":
        return None, f"`{name}` must be a {'number' if want_scalar else 'numpy.ndarray of floats'}, got {what}"
    array = got.arrays.get(name)
    if not isinstance(array, np.ndarray):
        return None, f"`{name}` was not returned (the call gave no such output)"
    if want_scalar and array.shape != ():
        return None, f"`{name}` must be a single number, got an array of shape {array.shape}"
    if not want_scalar and kind == "scalar":
        return None, f"`{name}` must be a numpy.ndarray, got {what}"
    return array, None


def float_problem(got, name, want_scalar=False):
    """Why the received output `name` is not an acceptable float array/number, or None."""
    array, problem = received(got, name, want_scalar)
    if problem:
        return problem
    if array.dtype.kind != "f":
        return f"`{name}` must hold floats, got dtype {array.dtype} (integer results lose the fractional part)"
    return None


def array_error(expected, got):
    """Largest absolute difference divided by the largest expected magnitude (robust near zeros)."""
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    diff = float(np.max(np.abs(got.astype(np.float64) - expected))) if expected.size else 0.0
    return diff / max(scale, 1e-12)


def _factor_hint(expected, got):
    """If `got` is a constant multiple of `expected`, say so (a missing 0.5, 1/N, 2...)."""
    e = expected.ravel().astype(np.float64)
    g = got.ravel().astype(np.float64)
    denom = float(e @ e)
    if denom == 0.0:
        return ""
    c = float(e @ g) / denom
    if abs(c - 1) > 1e-3 and np.max(np.abs(g - c * e)) <= 1e-6 * max(np.max(np.abs(g)), 1e-12):
        return f"; got is {c:.6g} times the expected values (a missing or extra factor)"
    return ""


def compare_arrays(expected, got, name, tol, hint=""):
    """Message for the first difference between two arrays of the same shape, or None."""
    bad = np.isfinite(expected) & ~np.isfinite(got)
    if bad.any():
        i = np.unravel_index(np.argmax(bad), bad.shape)
        msg = (f"`{name}` has {int(bad.sum())} non-finite values (nan/inf) where the expected values are "
               f"finite, e.g. at {tuple(int(k) for k in i)}: expected {expected[i]:.6g}, got {got[i]}")
        return msg + ("; " + hint if hint else "; likely an overflow (exp of a large number) or a division by 0")
    finite = np.isfinite(expected)
    if not np.array_equal(np.isfinite(got), finite) or not np.array_equal(
            np.where(finite, 0, got), np.where(finite, 0, expected)):
        return f"`{name}`: the non-finite entries differ from the expected ones"
    e = np.where(finite, expected, 0.0)
    g = np.where(finite, got, 0.0)
    err = array_error(e, g)
    if err <= tol:
        return None
    d = np.abs(g.astype(np.float64) - e)
    i = np.unravel_index(np.argmax(d), d.shape) if d.ndim else ()
    where = f" (worst at index {tuple(int(k) for k in i)}: expected {e[i]:.6g}, got {g[i]:.6g})" if d.ndim else ""
    msg = (f"`{name}` is wrong: max error {err:.3g} relative to the largest expected magnitude "
           f"(tolerance {tol:g}){where}; expected {_fmt(e)}, got {_fmt(g)}{_factor_hint(e, g)}")
    return msg + (f". Likely cause: {hint}" if hint else "")


# ---------------------------------------------------------------------------
# Verifier builders
# ---------------------------------------------------------------------------
def same_array(name, tol=1e-7, hint="", shape_hint="", ref_name=None):
    """The output `name` equals the reference array within `tol` (exact type, shape, float dtype).

    ``ref_name`` compares with another reference entry (an accepted variant such as
    epsilon inside the square root) instead of the one of the same name.
    """
    def verify(ref, got):
        problem = float_problem(got, name)
        if problem:
            return problem
        e, g = ref.arrays[ref_name or name], got.arrays[name]
        if e.shape != g.shape:
            msg = f"`{name}` has shape {g.shape}, expected {e.shape}"
            if len(g.shape) == len(e.shape) + 1 and g.shape[0] == 1 and g.shape[1:] == e.shape:
                msg += "; sum without keepdims so a bias gradient is (M,), not (1, M)"
            elif shape_hint:
                msg += "; " + shape_hint
            return msg
        return compare_arrays(e, g, name, tol, hint)
    return verify


def same_scalar(name, tol=1e-7, hint=""):
    """The output `name` is a finite number equal to the reference's within a relative `tol`."""
    def verify(ref, got):
        problem = float_problem(got, name, want_scalar=True)
        if problem:
            return problem
        e, g = float(ref.arrays[name]), float(got.arrays[name])
        if np.isfinite(e) and not np.isfinite(g):
            return f"`{name}` is {g}, expected the finite value {e:.8g}" + (
                f". Likely cause: {hint}" if hint else "")
        err = abs(g - e) / max(abs(e), 1e-12)
        if err <= tol:
            return None
        ratio = f"; got/expected = {g / e:.6g}" if e else ""
        return (f"`{name}` is {g:.8g}, expected {e:.8g} (relative error {err:.3g}, tolerance {tol:g}){ratio}"
                + (f". Likely cause: {hint}" if hint else ""))
    return verify


def same_keys(name, hint=""):
    """The dict output `name` has exactly the reference's keys."""
    def verify(ref, got):
        want, have = ref.keys.get(name), got.keys.get(name)
        if have is None:
            return f"`{name}` must be a dict, but it was {got.infos.get(name, {}).get('type', 'not returned')}"
        if have != want:
            missing, extra = sorted(set(want) - set(have)), sorted(set(have) - set(want))
            return (f"`{name}` has keys {have}, expected {want}"
                    + (f"; missing {missing}" if missing else "") + (f"; unexpected {extra}" if extra else "")
                    + (f". {hint}" if hint else ""))
        return None
    return verify


def dict_arrays(name, tol=1e-7, hint="", shapes_only=False):
    """Every entry of the dict output `name` matches the reference (same keys first)."""
    def verify(ref, got):
        problem = same_keys(name)(ref, got)
        if problem:
            return problem
        for key in ref.keys[name]:
            full = f"{name}.{key}"
            if shapes_only:
                problem = float_problem(got, full)
                if not problem and got.arrays[full].shape != ref.arrays[full].shape:
                    shape = got.arrays[full].shape
                    problem = f"`{full}` has shape {shape}, expected {ref.arrays[full].shape}"
                    if shape == (1,) + ref.arrays[full].shape:
                        problem += "; sum without keepdims so a bias gradient is (M,), not (1, M)"
            elif ref.infos[full]["kind"] == "scalar":
                problem = same_scalar(full, tol, hint)(ref, got)
            else:
                problem = same_array(full, tol, hint)(ref, got)
            if problem:
                return problem
        return None
    return verify


def unchanged_inputs(hint="compute a new array (np.maximum, np.where, x * mask) instead of assigning into x"):
    """The call left its input arrays as they were."""
    def verify(ref, got):
        if got.mutated:
            return f"the input(s) {', '.join(got.mutated)} were modified in place; {hint}"
        return None
    return verify


def all_of(*verifiers):
    """Pass only when every verifier passes; report the first failure."""
    def verify(ref, got):
        for v in verifiers:
            problem = v(ref, got)
            if problem:
                return problem
        return None
    return verify


def any_of(*verifiers, explain=""):
    """Pass when one of the verifiers passes (accepted variants); report the first's failure otherwise."""
    def verify(ref, got):
        problems = [v(ref, got) for v in verifiers]
        if any(p is None for p in problems):
            return None
        return problems[0] + (f" ({explain})" if explain else "")
    return verify


# ---------------------------------------------------------------------------
# Verifiers written against a definition: a property function raises Fail(message)
# ---------------------------------------------------------------------------
class Fail(Exception):
    """Raised inside a property verifier with the message for the student."""


def property_verifier(fn):
    """A verifier from ``fn(ref, got)`` that raises ``Fail(message)`` when the property does not hold."""
    def verify(ref, got):
        try:
            fn(ref, got)
        except Fail as exc:
            return str(exc)
        return None
    return verify


def received_array(got, name, what=""):
    """The array received for ``name``, or Fail with why it is not acceptable."""
    array, problem = received(got, name)
    if problem:
        raise Fail(f"{what}{problem}")
    return array


def received_number(got, name, what=""):
    array, problem = received(got, name, want_scalar=True)
    if problem:
        raise Fail(f"{what}{problem}")
    if array.dtype.kind not in "iuf":
        raise Fail(f"{what}`{name}` must be a number, got dtype {array.dtype}")
    return float(array)
