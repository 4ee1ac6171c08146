"""The field operators: each compiles its operand once into a test of the value seen.

A test receives the resolved field value, possibly :data:`~.paths.MISSING`. The
semantics for missing fields, nulls and mismatched types are in ``docs/matching.md``;
in short: every operator is False on a missing field except ``not_exists``,
``not_equals`` and ``not_in`` (the exact negations of ``exists``, ``equals`` and
``in``), and a value of the wrong type never matches (it is not an error).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

import re2

from neoactions.domain.errors import InvalidArgument

from . import limits
from .paths import MISSING
from .values import as_number, is_number, is_scalar, json_equal, scalar_key

Test = Callable[[Any], bool]
_REASON = "INVALID_CONDITION"


def _bad(where: str, description: str) -> InvalidArgument:
    return InvalidArgument.field(where, description, reason=_REASON)


def _string_operand(value: Any, where: str, operator: str) -> str:
    if not isinstance(value, str):
        raise _bad(where, f"{operator} needs a string value")
    if len(value) > limits.MAX_STRING_LENGTH:
        raise _bad(where, f"string longer than {limits.MAX_STRING_LENGTH} characters")
    return value


def _list_operand(value: Any, where: str, operator: str) -> list[Any]:
    if not isinstance(value, list):
        raise _bad(where, f"{operator} needs a list value")
    if len(value) > limits.MAX_LIST_ITEMS:
        raise _bad(where, f"list longer than {limits.MAX_LIST_ITEMS} items")
    return value


def _check_json(value: Any, where: str, depth: int = 0) -> None:
    """Operands must be plain JSON (they are stored and compared as JSON)."""
    if depth > limits.MAX_DEPTH:
        raise _bad(where, f"value nested deeper than {limits.MAX_DEPTH}")
    if isinstance(value, str) and len(value) > limits.MAX_STRING_LENGTH:
        raise _bad(where, f"string longer than {limits.MAX_STRING_LENGTH} characters")
    if is_scalar(value):
        if isinstance(value, float) and not is_number(value):
            raise _bad(where, "NaN is not a JSON value")
        return
    if isinstance(value, list):
        if len(value) > limits.MAX_LIST_ITEMS:
            raise _bad(where, f"list longer than {limits.MAX_LIST_ITEMS} items")
        for item in value:
            _check_json(item, where, depth + 1)
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise _bad(where, "object keys must be strings")
            _check_json(v, where, depth + 1)
        return
    raise _bad(where, f"{type(value).__name__} is not a JSON value")


# --- equality ------------------------------------------------------------------


def _equals(value: Any, where: str) -> Test:
    _check_json(value, where)
    key = scalar_key(value)
    if key is not None:
        # The hot path: scalar operands compare through their keys (one tuple compare).
        return lambda v: scalar_key(v) == key
    return lambda v: v is not MISSING and json_equal(v, value)


def _not_equals(value: Any, where: str) -> Test:
    equals = _equals(value, where)
    return lambda v: not equals(v)


def _in(value: Any, where: str) -> Test:
    items = _list_operand(value, where, "in")
    _check_json(items, where)
    keys = {scalar_key(i) for i in items}
    structured = [i for i in items if scalar_key(i) is None]
    keys.discard(None)

    def test(v: Any) -> bool:
        if v is MISSING:
            return False
        key = scalar_key(v)
        if key is not None:
            return key in keys
        return any(json_equal(v, i) for i in structured)

    return test


def _not_in(value: Any, where: str) -> Test:
    within = _in(value, where)
    return lambda v: not within(v)


def _equals_ignore_case(value: Any, where: str) -> Test:
    folded = _string_operand(value, where, "equals_ignore_case").casefold()
    return lambda v: isinstance(v, str) and v.casefold() == folded


# --- strings -------------------------------------------------------------------


def _contains(value: Any, where: str) -> Test:
    _check_json(value, where)
    if isinstance(value, str):
        needle = value

        def test(v: Any) -> bool:
            if isinstance(v, str):
                return needle in v
            if isinstance(v, list):
                return any(json_equal(item, needle) for item in v)
            return False

        return test
    # A non-string operand can only be an element of a list.
    return lambda v: isinstance(v, list) and any(json_equal(item, value) for item in v)


def _starts_with(value: Any, where: str) -> Test:
    prefix = _string_operand(value, where, "starts_with")
    return lambda v: isinstance(v, str) and v.startswith(prefix)


def _ends_with(value: Any, where: str) -> Test:
    suffix = _string_operand(value, where, "ends_with")
    return lambda v: isinstance(v, str) and v.endswith(suffix)


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a refused pattern is reported to the caller, not to stderr
_RE2_OPTIONS.never_capture = True  # conditions only ask "does it match"; captures cost memory


def compile_regex(pattern: Any, where: str, *, reason: str = _REASON, full: bool = False) -> Test:
    """A test "is ``v`` a string matched by ``pattern``" compiled with RE2.

    RE2 runs in linear time (no backtracking, so no ReDoS). ``full`` anchors at both
    ends; otherwise the pattern may match anywhere (search).
    """
    _validate_regex(pattern, where, reason)
    # An RE2::Set of one pattern answers "does it match" without building match
    # objects: several times faster than the wrapper's search() on the hot path.
    matcher = re2.Set.FullMatchSet(_RE2_OPTIONS) if full else re2.Set.SearchSet(_RE2_OPTIONS)
    try:
        matcher.Add(pattern)
        matcher.Compile()
    except re2.error as exc:  # e.g. over RE2's memory budget
        raise InvalidArgument.field(where, f"regex refused by RE2: {exc}", reason=reason) from None
    match = matcher.Match
    return lambda v: isinstance(v, str) and match(v) is not None


def _validate_regex(pattern: Any, where: str, reason: str) -> None:
    """Parse with re2.compile first: it says what is wrong, RE2::Set only that it failed."""
    if not isinstance(pattern, str):
        raise InvalidArgument.field(where, "regex needs a string value", reason=reason)
    if len(pattern) > limits.MAX_REGEX_LENGTH:
        raise InvalidArgument.field(where, f"regex longer than {limits.MAX_REGEX_LENGTH} characters", reason=reason)
    try:
        re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        detail = exc.args[0] if exc.args else exc
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        raise InvalidArgument.field(where, f"invalid regex: {detail}", reason=reason) from None


def _regex(value: Any, where: str) -> Test:
    return compile_regex(value, where)


# --- numbers and ordering ------------------------------------------------------


def _ordering_operand(value: Any, where: str, operator: str) -> int | float | str:
    if is_number(value):
        return value  # type: ignore[no-any-return]
    if isinstance(value, str):
        return _string_operand(value, where, operator)
    raise _bad(where, f"{operator} needs a number or a string value")


def _comparable(operand: int | float | str) -> Callable[[Any], int | float | str | None]:
    """How the seen value is read: as a number (numeric strings too) or as a string."""
    if isinstance(operand, str):
        return lambda v: v if isinstance(v, str) else None
    return as_number


def _ordering(name: str, compare: Callable[[Any, Any], bool]) -> Callable[[Any, str], Test]:
    def build(value: Any, where: str) -> Test:
        operand = _ordering_operand(value, where, name)
        read = _comparable(operand)

        def test(v: Any) -> bool:
            seen = read(v)
            return seen is not None and compare(seen, operand)

        return test

    return build


def _between(value: Any, where: str) -> Test:
    bounds = _list_operand(value, where, "between")
    if len(bounds) != 2:
        raise _bad(where, "between needs [low, high]")
    low = _ordering_operand(bounds[0], f"{where}[0]", "between")
    high = _ordering_operand(bounds[1], f"{where}[1]", "between")
    if isinstance(low, str) != isinstance(high, str):
        raise _bad(where, "between bounds must both be numbers or both be strings")
    if low > high:  # type: ignore[operator]
        raise _bad(where, "between needs low <= high")
    read = _comparable(low)

    def test(v: Any) -> bool:
        seen = read(v)
        return seen is not None and low <= seen <= high  # type: ignore[operator]

    return test


# --- presence and addresses ----------------------------------------------------


def _presence_flag(value: Any, where: str, operator: str) -> bool:
    if value is None:
        return True
    if not isinstance(value, bool):
        raise _bad(where, f"{operator} takes no value, or true/false")
    return value


def _exists(value: Any, where: str) -> Test:
    if _presence_flag(value, where, "exists"):
        return lambda v: v is not MISSING
    return lambda v: v is MISSING


def _not_exists(value: Any, where: str) -> Test:
    if _presence_flag(value, where, "not_exists"):
        return lambda v: v is MISSING
    return lambda v: v is not MISSING


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(value: Any, where: str, *, reason: str = _REASON) -> tuple[IPNetwork, ...]:
    """One CIDR block or a list of them (host bits are allowed and ignored)."""
    items = value if isinstance(value, list) else [value]
    if not items or len(items) > limits.MAX_LIST_ITEMS:
        raise InvalidArgument.field(where, "cidr needs 1 to 1000 networks", reason=reason)
    networks = []
    for i, item in enumerate(items):
        at = f"{where}[{i}]" if isinstance(value, list) else where
        if not isinstance(item, str):
            raise InvalidArgument.field(at, "cidr needs a network such as 10.0.0.0/8", reason=reason)
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise InvalidArgument.field(at, f"invalid network: {exc}", reason=reason) from None
    return tuple(networks)


def address_in(networks: tuple[IPNetwork, ...], v: Any) -> bool:
    if not isinstance(v, str) or len(v) > 64:
        return False
    try:
        address = ipaddress.ip_address(v)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        # ::ffff:10.1.2.3 is how dual-stack servers report IPv4 peers.
        mapped = address.ipv4_mapped
        return any(mapped in n for n in networks if n.version == 4) or any(
            address in n for n in networks if n.version == 6
        )
    return any(address in n for n in networks)


def _cidr(value: Any, where: str) -> Test:
    networks = parse_networks(value, where)
    return lambda v: address_in(networks, v)


OPERATORS: dict[str, Callable[[Any, str], Test]] = {
    "equals": _equals,
    "not_equals": _not_equals,
    "in": _in,
    "not_in": _not_in,
    "contains": _contains,
    "starts_with": _starts_with,
    "ends_with": _ends_with,
    "equals_ignore_case": _equals_ignore_case,
    "regex": _regex,
    "gt": _ordering("gt", lambda a, b: a > b),
    "gte": _ordering("gte", lambda a, b: a >= b),
    "lt": _ordering("lt", lambda a, b: a < b),
    "lte": _ordering("lte", lambda a, b: a <= b),
    "between": _between,
    "exists": _exists,
    "not_exists": _not_exists,
    "cidr": _cidr,
}


def compile_operator(operator: Any, value: Any, operator_where: str, value_where: str) -> Test:
    """The test for ``operator`` with operand ``value``; errors name the field at fault."""
    build = OPERATORS.get(operator) if isinstance(operator, str) else None
    if build is None:
        known = ", ".join(sorted(OPERATORS))
        raise _bad(operator_where, f"unknown operator {operator!r} (one of: {known})")
    return build(value, value_where)


def literal_keys(operator: str, value: Any) -> frozenset[Any] | None:
    """The scalar keys an ``equals`` / ``in`` condition can match, for the index; else None."""
    if operator == "equals":
        key = scalar_key(value)
        return None if key is None else frozenset([key])
    if operator == "in" and isinstance(value, list):
        keys = [scalar_key(i) for i in value]
        if not keys or any(k is None for k in keys):
            return None
        return frozenset(keys)
    return None
