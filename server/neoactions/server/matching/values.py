"""JSON value semantics shared by the operators, EventBridge patterns and the index.

* Equality is JSON equality: ``1 == 1.0``, but a boolean is never a number
  (``true != 1``), a string never equals a number (``"42" != 42``), and lists and
  objects compare structurally.
* :func:`scalar_key` gives scalars a hashable key such that two scalars are
  JSON-equal exactly when their keys are equal; the index relies on it.
"""

from __future__ import annotations

import math
import re
from typing import Any

_NUMBER_TYPES = (int, float)
# The JSON number grammar: what a "number given as a string" may look like.
_NUMERIC_STRING = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")

ScalarKey = tuple[str, Any]


def is_number(value: object) -> bool:
    """A JSON number: int or float, never bool, never NaN."""
    return type(value) in _NUMBER_TYPES and not (isinstance(value, float) and math.isnan(value))


def is_scalar(value: object) -> bool:
    return value is None or isinstance(value, (str, bool, int, float))


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality (see the module docstring)."""
    ta, tb = type(a), type(b)
    if ta is bool or tb is bool:
        return ta is tb and a == b
    if ta in _NUMBER_TYPES and tb in _NUMBER_TYPES:
        return bool(a == b)
    if ta is not tb:
        return False
    if ta is dict:
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if ta is list:
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def scalar_key(value: Any) -> ScalarKey | None:
    """A hashable key for a JSON scalar, or None for lists, objects, NaN and non-JSON values.

    Python already hashes ``1`` and ``1.0`` alike, so numbers need no conversion;
    the tag keeps ``True`` apart from ``1`` and ``"1"`` apart from ``1``.
    """
    t = type(value)
    if t is str:
        return ("s", value)
    if t is bool:
        return ("b", value)
    if t is int:
        return ("n", value)
    if t is float:
        return None if math.isnan(value) else ("n", value)
    if value is None:
        return ("z", None)
    return None


def as_number(value: Any) -> int | float | None:
    """A number, or a string spelling one in JSON number syntax; None otherwise.

    Ordering operators use this so that ``"42.5"`` (common in metadata, which is
    often copied from headers) compares as 42.5 against a numeric operand.
    """
    if type(value) in _NUMBER_TYPES:
        return None if isinstance(value, float) and math.isnan(value) else value
    if isinstance(value, str) and len(value) <= 64 and _NUMERIC_STRING.fullmatch(value):
        if "." in value or "e" in value or "E" in value:
            number = float(value)
            return number if math.isfinite(number) else None
        return int(value)
    return None
