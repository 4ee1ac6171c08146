"""Every field operator's edge cases: missing fields, nulls, type mismatches, unicode, numeric strings."""

from __future__ import annotations

from typing import Any

import pytest

from neoactions.domain import model
from neoactions.server.matching import MISSING, compile_condition

ENVELOPE_BASE: dict[str, Any] = {"type": "t", "source": "svc", "metadata": {}}


def holds(operator: str, value: Any, seen: Any) -> bool:
    """Evaluate ``data.f <operator> value`` against an event whose data.f is ``seen`` (or absent)."""
    node = compile_condition(model.FieldCondition("data.f", operator, value), "c")
    data = {} if seen is MISSING else {"f": seen}
    return node.test({**ENVELOPE_BASE, "data": data})


CASES: list[tuple[str, Any, Any, bool]] = [
    # equals: JSON equality; no coercion between strings and numbers; bool is not a number
    ("equals", "a", "a", True),
    ("equals", "a", "A", False),
    ("equals", 1, 1.0, True),
    ("equals", 1, "1", False),
    ("equals", "1", 1, False),
    ("equals", 1, True, False),
    ("equals", True, 1, False),
    ("equals", True, True, True),
    ("equals", None, None, True),
    ("equals", None, MISSING, False),
    ("equals", "a", MISSING, False),
    ("equals", [1, "x"], [1.0, "x"], True),
    ("equals", {"a": [1]}, {"a": [1]}, True),
    ("equals", {"a": 1}, {"a": 1, "b": 2}, False),
    ("equals", "é", "é", True),
    ("equals", "é", "e\u0301", False),  # no Unicode normalisation
    # not_equals is the exact negation of equals (so a missing field is "not equal")
    ("not_equals", "a", "b", True),
    ("not_equals", "a", "a", False),
    ("not_equals", "a", MISSING, True),
    ("not_equals", None, None, False),
    ("not_equals", 1, "1", True),
    # in / not_in
    ("in", ["a", "b"], "b", True),
    ("in", ["a", "b"], "c", False),
    ("in", [1, 2], 2.0, True),
    ("in", [1, 2], "2", False),
    ("in", [1], True, False),
    ("in", [None], None, True),
    ("in", ["a"], MISSING, False),
    ("in", [[1, 2]], [1, 2], True),
    ("in", [], "a", False),
    ("not_in", ["a", "b"], "c", True),
    ("not_in", ["a", "b"], "a", False),
    ("not_in", ["a"], MISSING, True),
    # contains: substring of a string, or element of a list
    ("contains", "@corp.com", "ann@corp.com", True),
    ("contains", "@corp.com", "ann@CORP.com", False),
    ("contains", "ü", "München", True),
    ("contains", "x", ["x", "y"], True),
    ("contains", "x", ["xy"], False),
    ("contains", 2, [1, 2.0], True),
    ("contains", 2, "123", False),
    ("contains", "a", {"a": 1}, False),
    ("contains", "a", None, False),
    ("contains", "a", MISSING, False),
    # starts_with / ends_with: strings only
    ("starts_with", "ab", "abc", True),
    ("starts_with", "ab", "xabc", False),
    ("starts_with", "1", 12, False),
    ("starts_with", "ab", MISSING, False),
    ("ends_with", "@corp.com", "a@corp.com", True),
    ("ends_with", "é", "café", True),
    ("ends_with", "x", None, False),
    # equals_ignore_case: full Unicode case folding
    ("equals_ignore_case", "Straße", "STRASSE", True),
    ("equals_ignore_case", "abc", "ABC", True),
    ("equals_ignore_case", "abc", "abd", False),
    ("equals_ignore_case", "1", 1, False),
    ("equals_ignore_case", "a", MISSING, False),
    # regex (RE2, unanchored search)
    ("regex", r"^\d{3}-\d{4}$", "555-1234", True),
    ("regex", r"\d+", "abc42", True),
    ("regex", r"^\d+$", "abc42", False),
    ("regex", r"^\p{Greek}+$", "αβγ", True),
    ("regex", r"\d", 5, False),
    ("regex", r".*", MISSING, False),
    ("regex", r"(a+)+$", "a" * 50_000 + "b", False),  # linear time: no catastrophic backtracking
    # ordering: numbers, numeric strings against numeric operands, strings by code point
    ("gt", 18, 19, True),
    ("gt", 18, 18, False),
    ("gt", 18, 18.5, True),
    ("gt", 18, "19", True),
    ("gt", 18, "19.5e0", True),
    ("gt", 18, " 19", False),  # not JSON number syntax
    ("gt", 18, "0x20", False),
    ("gt", 18, "nan", False),
    ("gt", 18, True, False),
    ("gt", 18, None, False),
    ("gt", 18, MISSING, False),
    ("gt", 18, [19], False),
    ("gte", 18, 18, True),
    ("gte", 18.5, 18, False),
    ("lt", 100, 99.999, True),
    ("lt", 100, "100", False),
    ("lt", 0, -1, True),
    ("lte", 100, 100.0, True),
    ("lte", 100, "abc", False),
    ("gt", "2024-01-01", "2024-06-30T00:00:00Z", True),  # ISO dates compare as strings
    ("gt", "b", "a", False),
    ("gt", "a", 5, False),  # a string operand never reads numbers
    ("lt", "z", "é", False),  # code point order: 'é' (U+00E9) > 'z'
    ("gt", 10**20, 10**20 + 1, True),  # big integers stay exact
    # between: inclusive
    ("between", [1, 5], 1, True),
    ("between", [1, 5], 5, True),
    ("between", [1, 5], 5.01, False),
    ("between", [1, 5], "3", True),
    ("between", [1, 5], MISSING, False),
    ("between", ["a", "c"], "b", True),
    ("between", ["a", "c"], "d", False),
    # exists / not_exists: null is a present value
    ("exists", None, "x", True),
    ("exists", True, None, True),
    ("exists", True, MISSING, False),
    ("exists", False, MISSING, True),
    ("not_exists", True, MISSING, True),
    ("not_exists", None, None, False),
    ("not_exists", False, 1, True),
    # cidr: IPv4, IPv6, IPv4-mapped IPv6, lists
    ("cidr", "10.0.0.0/8", "10.1.2.3", True),
    ("cidr", "10.0.0.0/8", "11.1.2.3", False),
    ("cidr", "10.0.0.0/8", "::ffff:10.1.2.3", True),
    ("cidr", "2001:db8::/32", "2001:db8::1", True),
    ("cidr", "2001:db8::/32", "10.1.2.3", False),
    ("cidr", ["192.168.0.0/16", "10.0.0.0/8"], "192.168.4.4", True),
    ("cidr", "10.0.0.5/8", "10.200.0.1", True),  # host bits ignored
    ("cidr", "10.0.0.0/8", "not-an-ip", False),
    ("cidr", "10.0.0.0/8", 167772161, False),
    ("cidr", "10.0.0.0/8", MISSING, False),
]


@pytest.mark.parametrize(("operator", "value", "seen", "expected"), CASES)
def test_operator(operator: str, value: Any, seen: Any, expected: bool) -> None:
    assert holds(operator, value, seen) is expected


def test_every_operator_is_covered() -> None:
    from neoactions.server.matching import OPERATORS

    assert {c[0] for c in CASES} == set(OPERATORS)


def test_paths_walk_lists_by_index() -> None:
    node = compile_condition(model.FieldCondition("data.items.1.sku", "equals", "B"), "c")
    assert node.test({"data": {"items": [{"sku": "A"}, {"sku": "B"}]}})
    assert not node.test({"data": {"items": [{"sku": "A"}]}})
    assert not node.test({"data": {"items": "AB"}})


def test_paths_reach_string_envelope_fields() -> None:
    node = compile_condition(model.FieldCondition("source", "starts_with", "billing"), "c")
    assert node.test({"source": "billing-api", "data": {}})
    assert not node.test({"source": "auth", "data": {}})
