"""Read the runner's stdout: frames written by a process that runs student code.

The runner (``runner.py``) writes its results as frames on a private copy of
its stdout, but the student's code runs in the same process and can write
frames too, so every byte here is hostile. ``parse_stream`` checks each budget
BEFORE allocating anything for it:

- the whole stream is at most ``MAX_STREAM_BYTES`` (the sandbox kills the
  runner past that many bytes of output, and the plain-subprocess mode stops
  reading there);
- a frame header is at most ``MAX_HEADER_BYTES`` of JSON;
- an array's dtype is one of ``runner.WIRE_DTYPES`` (numbers, little-endian or
  byte-order free, no objects, no structured types), its shape a list of at
  most ``MAX_NDIM`` non-negative ints, and ``prod(shape) * itemsize`` equals
  the declared ``nbytes``, fits in what is left of the array budget and in
  the bytes that actually follow;
- a call has at most ``MAX_ARRAYS_PER_CALL`` arrays, each name once.

The frames must come as ``begin i, array*, end i`` for i = first, first + 1,
... then ``done``. An outcome counts only once the next ``begin`` (or
``done``) confirms it. Anything else is a *violation*: the stream is not what
the runner wrote, so nothing of this launch is believed (see ``Parsed``).
The end of the data in the middle of a call (the runner was killed) is not a
violation: that call is the one that died.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np

from .compare import Outcome
from .runner import HEADER_LENGTH, MAGIC, WIRE_DTYPES

#: Bytes of runner output read at most (the sandbox's ``Limits.output_bytes``). The reference's
#: whole output is about 0.6 MB (largest call 0.2 MB): 16 MiB leaves a margin of 25 times.
MAX_STREAM_BYTES = 16 << 20
#: Bytes of one frame header (the reference's largest end record is about 2.5 KB).
MAX_HEADER_BYTES = 64 << 10
#: Arrays in one call's result (the reference's most is 30).
MAX_ARRAYS_PER_CALL = 256
MAX_NDIM = 32
MAX_NAME_CHARS = 200
MAX_ERROR_CHARS = 2000
MAX_TYPE_CHARS = 120
#: The kinds a description may give (``runner.describe``); anything else counts as "other".
KINDS = frozenset({"ndarray", "subclass", "scalar", "none", "other"})
STATUSES = frozenset({"ok", "raised", "timeout"})


class Violation(ValueError):
    """The stream breaks the format or a budget: some frame in it was not written by the runner."""


class Truncated(Exception):
    """The data ends inside a frame (the runner was killed while writing)."""


@dataclass
class Parsed:
    """What one launch's stream says.

    Attributes
    ----------
    outcomes : dict
        Call index -> Outcome, for the calls confirmed by the frame after them.
        Empty when there was a violation: a stream with foreign frames is believed in nothing.
    affected : int or None
        The call that was running (or the last one ended but not confirmed) when the
        stream stopped; None when no call had begun, or after ``done``.
    done : bool
        The stream ended with ``done`` after the last call, and nothing followed.
    violation : str or None
        Why the stream is not the runner's (then ``outcomes`` is empty).
    """

    outcomes: dict = field(default_factory=dict)
    affected: int | None = None
    done: bool = False
    violation: str | None = None


def _frames(data, budget):
    """Yield ``(header dict, payload ndarray or None)`` per frame; raises Violation or Truncated."""
    view = memoryview(data)
    pos, left = 0, budget
    if len(view) > budget:
        raise Violation(f"the runner printed more than {budget} bytes")
    while pos < len(view):
        if len(view) - pos < len(MAGIC) + HEADER_LENGTH.size:
            raise Truncated()
        if bytes(view[pos:pos + len(MAGIC)]) != MAGIC:
            raise Violation(f"bytes that are not a frame at offset {pos}")
        (size,) = HEADER_LENGTH.unpack_from(view, pos + len(MAGIC))
        pos += len(MAGIC) + HEADER_LENGTH.size
        if size > MAX_HEADER_BYTES:
            raise Violation(f"a frame header of {size} bytes (at most {MAX_HEADER_BYTES})")
        if len(view) - pos < size:
            raise Truncated()
        try:
            header = json.loads(bytes(view[pos:pos + size]).decode("utf-8"))
        except (ValueError, RecursionError) as exc:
            raise Violation(f"a frame header that is not JSON ({type(exc).__name__})") from None
        pos += size
        if not isinstance(header, dict):
            raise Violation("a frame header that is not a JSON object")
        payload = None
        if header.get("t") == "array":
            dtype, shape, nbytes = _array_layout(header, left)
            if len(view) - pos < nbytes:
                raise Truncated()
            payload = np.frombuffer(view, dtype=dtype, count=math.prod(shape), offset=pos).reshape(shape).copy()
            pos += nbytes
            left -= nbytes
        yield header, payload


def _array_layout(header, left):
    """(dtype, shape, nbytes) of an array frame, checked against the budget before anything is allocated."""
    dtype, shape, nbytes = header.get("dtype"), header.get("shape"), header.get("nbytes")
    if not isinstance(dtype, str) or dtype not in WIRE_DTYPES:
        raise Violation(f"an array of dtype {str(dtype)[:40]!r}, not one of the plain numeric dtypes")
    if (not isinstance(shape, list) or len(shape) > MAX_NDIM
            or not all(type(n) is int and n >= 0 for n in shape)):
        raise Violation(f"an array shape that is not a list of at most {MAX_NDIM} non-negative ints")
    dtype = np.dtype(dtype)
    want = math.prod(shape) * dtype.itemsize
    if type(nbytes) is not int or nbytes != want:
        raise Violation(f"an array whose nbytes {str(nbytes)[:40]} is not prod(shape) * itemsize = {want}")
    if want > left:
        raise Violation(f"an array of {want} bytes, more than the {left} bytes left of the budget")
    return dtype, tuple(shape), want


def _text(value, limit, what):
    if value is None:
        return None
    if not isinstance(value, str):
        raise Violation(f"{what} is not a string")
    return value[:limit]


def _name(value, what="an output name"):
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME_CHARS:
        raise Violation(f"{what} that is not a string of 1 to {MAX_NAME_CHARS} characters")
    return value


def _end_record(header, arrays):
    """The Outcome of an ``end`` frame and the arrays sent before it, every field checked."""
    status = header.get("status")
    if status not in STATUSES:
        raise Violation(f"a call status {str(status)[:40]!r}")
    error = _text(header.get("error"), MAX_ERROR_CHARS, "the error text")
    infos, keys, mutated = header.get("infos", {}), header.get("keys", {}), header.get("mutated", [])
    if not isinstance(infos, dict) or not isinstance(keys, dict) or not isinstance(mutated, list):
        raise Violation("an end record whose infos, keys or mutated have the wrong type")
    if len(infos) > MAX_ARRAYS_PER_CALL or len(keys) > MAX_ARRAYS_PER_CALL or len(mutated) > MAX_ARRAYS_PER_CALL:
        raise Violation("an end record with too many entries")
    clean_infos = {}
    for name, info in infos.items():
        if not isinstance(info, dict):
            raise Violation("an output description that is not an object")
        kind = info.get("kind")
        # Only the kind and the type's name are kept: a description can only make a verdict stricter.
        clean_infos[_name(name)] = {"kind": kind if kind in KINDS else "other",
                                    "type": _text(info.get("type"), MAX_TYPE_CHARS, "a type name") or "?"}
    clean_keys = {}
    for name, listed in keys.items():
        if not isinstance(listed, list) or len(listed) > MAX_ARRAYS_PER_CALL:
            raise Violation("a key list that is not a short list")
        clean_keys[_name(name)] = sorted(_name(k, "a dict key") for k in listed)
    mutated = sorted(_name(m, "an input name") for m in mutated)
    if status != "ok":
        return Outcome(status, error or status)
    return Outcome("ok", error, clean_infos, arrays, clean_keys, mutated)


def _index(header):
    i = header.get("i")
    if type(i) is not int:
        raise Violation("a frame without an integer call index")
    return i


def parse_stream(data, first, n_calls, budget=MAX_STREAM_BYTES):
    """Read one launch's stdout.

    Parameters
    ----------
    data : bytes
        What the runner printed (at most ``budget`` bytes are accepted).
    first : int
        The index of the first call this launch ran.
    n_calls : int
        Calls in the plan.
    budget : int
        Bytes of stream, and of array payload, accepted at most.

    Returns
    -------
    Parsed
    """
    parsed = Parsed()
    expected, current, arrays, pending = first, None, {}, None

    def stopped():
        return current if current is not None else (pending[0] if pending is not None else None)

    try:
        for header, payload in _frames(data, budget):
            if parsed.done:
                raise Violation("frames after the end of the stream")
            kind = header.get("t")
            if kind == "begin":
                i = _index(header)
                if current is not None or i != expected or i >= n_calls:
                    raise Violation(f"call {i} begins out of order (expected {expected} of {n_calls})")
                if pending is not None:
                    parsed.outcomes[pending[0]] = pending[1]
                    pending = None
                current, arrays = i, {}
            elif kind == "array":
                if current is None or _index(header) != current:
                    raise Violation(f"an array of call {header.get('i')!s:.20} outside that call")
                name = _name(header.get("name"))
                if name in arrays or len(arrays) >= MAX_ARRAYS_PER_CALL:
                    raise Violation(f"array {name!r} sent twice, or more than {MAX_ARRAYS_PER_CALL} arrays")
                arrays[name] = payload
            elif kind == "end":
                if current is None or _index(header) != current:
                    raise Violation(f"the end of call {header.get('i')!s:.20} outside that call")
                pending = (current, _end_record(header, arrays))
                current, arrays, expected = None, {}, current + 1
            elif kind == "done":
                if current is not None or expected != n_calls:
                    raise Violation("the end of the stream before the last call")
                if pending is not None:
                    parsed.outcomes[pending[0]] = pending[1]
                    pending = None
                parsed.done = True
            else:
                raise Violation(f"a frame of unknown type {str(kind)[:40]!r}")
    except Truncated:
        pass
    except Violation as exc:
        parsed.affected = stopped() if not parsed.done else n_calls - 1
        parsed.outcomes, parsed.done, parsed.violation = {}, False, str(exc)
        return parsed
    if not parsed.done:
        parsed.affected = stopped()
    return parsed
