"""EventBridge-style JSON event patterns: every supported matcher, the mapping, and refusals."""

from __future__ import annotations

from typing import Any

import pytest

from neoactions.domain import model
from neoactions.domain.errors import InvalidArgument
from neoactions.server.matching import compile_event_pattern, compile_trigger


def envelope(data: dict[str, Any], **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"type": "orders.created", "source": "shop", "metadata": {}, "data": data}
    return base | fields


def passes(pattern: dict[str, Any], env: dict[str, Any]) -> bool:
    compiled = compile_event_pattern(pattern)
    return all(node.test(env) for node in compiled.nodes)


def detail(value: Any) -> dict[str, Any]:
    """A pattern on data.v."""
    return {"detail": {"v": value}}


CASES: list[tuple[Any, dict[str, Any], bool]] = [
    # exact values (strings, numbers, booleans, null), OR within the array
    (["a", "b"], {"v": "b"}, True),
    (["a"], {"v": "A"}, False),
    ([5], {"v": 5.0}, True),
    ([5], {"v": "5"}, False),
    ([True], {"v": True}, True),
    ([None], {"v": None}, True),
    ([None], {}, False),
    (["a"], {}, False),
    # an array in the event matches if any element matches
    (["a"], {"v": ["x", "a"]}, True),
    (["a"], {"v": ["x"]}, False),
    (["a"], {"v": []}, False),
    ([{"prefix": "ord"}], {"v": ["x", "order"]}, True),
    # prefix / suffix, with and without equals-ignore-case
    ([{"prefix": "ord"}], {"v": "order"}, True),
    ([{"prefix": "ord"}], {"v": "Order"}, False),
    ([{"prefix": {"equals-ignore-case": "ORD"}}], {"v": "order"}, True),
    ([{"prefix": "1"}], {"v": 12}, False),
    ([{"suffix": ".png"}], {"v": "a.png"}, True),
    ([{"suffix": {"equals-ignore-case": ".PNG"}}], {"v": "a.png"}, True),
    ([{"suffix": ".png"}], {"v": "a.jpg"}, False),
    # equals-ignore-case
    ([{"equals-ignore-case": "ALICE"}], {"v": "alice"}, True),
    ([{"equals-ignore-case": "ALICE"}], {"v": "bob"}, False),
    # wildcard
    ([{"wildcard": "dir/*.png"}], {"v": "dir/a/b.png"}, True),
    ([{"wildcard": "dir/*.png"}], {"v": "dir/a.jpg"}, False),
    ([{"wildcard": "a\\*b"}], {"v": "a*b"}, True),
    ([{"wildcard": "a\\*b"}], {"v": "axb"}, False),
    ([{"wildcard": "a.c"}], {"v": "abc"}, False),  # '.' is literal
    ([{"wildcard": "*"}], {"v": "line1\nline2"}, True),
    # anything-but: present values outside the list
    ([{"anything-but": "cancelled"}], {"v": "paid"}, True),
    ([{"anything-but": "cancelled"}], {"v": "cancelled"}, False),
    ([{"anything-but": "cancelled"}], {}, False),
    ([{"anything-but": "cancelled"}], {"v": None}, True),  # null is a value other than "cancelled"
    ([{"anything-but": ["a", "b"]}], {"v": "c"}, True),
    ([{"anything-but": [1, 2]}], {"v": 2.0}, False),
    ([{"anything-but": {"prefix": "test-"}}], {"v": "prod-1"}, True),
    ([{"anything-but": {"prefix": "test-"}}], {"v": "test-1"}, False),
    ([{"anything-but": {"prefix": "test-"}}], {"v": 5}, True),  # only strings can start with it
    ([{"anything-but": {"suffix": ".tmp"}}], {"v": "a.txt"}, True),
    ([{"anything-but": {"wildcard": ["*.tmp", "*.bak"]}}], {"v": "a.bak"}, False),
    ([{"anything-but": {"equals-ignore-case": ["X", "Y"]}}], {"v": "z"}, True),
    ([{"anything-but": {"equals-ignore-case": ["X", "Y"]}}], {"v": "x"}, False),
    # numeric: JSON numbers only
    ([{"numeric": [">", 0, "<=", 5]}], {"v": 5}, True),
    ([{"numeric": [">", 0, "<=", 5]}], {"v": 0}, False),
    ([{"numeric": [">", 0, "<=", 5]}], {"v": "3"}, False),
    ([{"numeric": [">", 0]}], {"v": True}, False),
    ([{"numeric": ["=", 3.5]}], {"v": 3.5}, True),
    ([{"numeric": ["<", 0]}], {"v": -0.5}, True),
    # exists: leaves only
    ([{"exists": True}], {"v": "x"}, True),
    ([{"exists": True}], {"v": None}, True),
    ([{"exists": True}], {}, False),
    ([{"exists": True}], {"v": {"nested": 1}}, False),
    ([{"exists": False}], {}, True),
    ([{"exists": False}], {"v": 1}, False),
    # cidr
    ([{"cidr": "10.0.0.0/24"}], {"v": "10.0.0.9"}, True),
    ([{"cidr": "10.0.0.0/24"}], {"v": "10.0.1.9"}, False),
    # mixed OR of kinds
    (["exact", {"prefix": "pre"}, {"numeric": [">", 100]}], {"v": 101}, True),
    (["exact", {"prefix": "pre"}, {"numeric": [">", 100]}], {"v": "prefix"}, True),
    (["exact", {"prefix": "pre"}, {"numeric": [">", 100]}], {"v": "other"}, False),
]


@pytest.mark.parametrize(("values", "data", "expected"), CASES)
def test_value_matchers(values: Any, data: dict[str, Any], expected: bool) -> None:
    assert passes(detail(values), envelope(data)) is expected


def test_nested_objects_and_envelope_fields() -> None:
    pattern = {
        "source": ["shop", "pos"],
        "detail-type": ["orders.created"],
        "detail": {"customer": {"tier": ["gold"]}, "total": [{"numeric": [">=", 100]}]},
        "metadata": {"region": [{"prefix": "eu-"}]},
    }
    env = envelope({"customer": {"tier": "gold"}, "total": 120}, metadata={"region": "eu-west"})
    assert passes(pattern, env)
    assert not passes(pattern, env | {"source": "web"})
    assert not passes(pattern, env | {"type": "orders.deleted"})
    assert not passes(pattern, envelope({"customer": {"tier": "gold"}, "total": 99}, metadata={"region": "eu-west"}))


def test_or_at_top_and_nested_levels() -> None:
    pattern = {
        "source": ["shop"],
        "$or": [{"detail": {"a": [1]}}, {"detail": {"b": [2]}, "metadata": {"vip": [True]}}],
    }
    assert passes(pattern, envelope({"a": 1}))
    assert passes(pattern, envelope({"b": 2}, metadata={"vip": True}))
    assert not passes(pattern, envelope({"b": 2}))
    nested = {"detail": {"$or": [{"c": [{"numeric": ["<", 0]}]}, {"d": [{"exists": True}]}]}}
    assert passes(nested, envelope({"c": -1}))
    assert passes(nested, envelope({"d": 0}))
    assert not passes(nested, envelope({"c": 1}))


def test_keys_with_dots_are_single_keys() -> None:
    assert passes({"detail": {"a.b": ["x"]}}, envelope({"a.b": "x"}))
    assert not passes({"detail": {"a.b": ["x"]}}, envelope({"a": {"b": "x"}}))


def test_literal_detail_type_becomes_the_type_patterns() -> None:
    trigger = model.Trigger([], event_pattern={"detail-type": ["orders.created", "orders.updated"]})
    assert compile_trigger(trigger).patterns == ("orders.created", "orders.updated")
    trigger = model.Trigger([], event_pattern={"detail-type": [{"prefix": "orders."}]})
    assert compile_trigger(trigger).patterns == ("*",)
    trigger = model.Trigger(["orders.*"], event_pattern={"detail-type": ["orders.created"]})
    assert compile_trigger(trigger).patterns == ("orders.*",)


BAD: list[tuple[Any, str]] = [
    ({"account": ["123"]}, "trigger.event_pattern.account"),
    ({"payload": ["x"]}, "trigger.event_pattern.payload"),
    ({"detail": {"a": "x"}}, "trigger.event_pattern.detail.a"),
    ({"detail": {"a": []}}, "trigger.event_pattern.detail.a"),
    ({"detail": {"a": [["x"]]}}, "trigger.event_pattern.detail.a[0]"),
    ({"detail": {"a": [{"prefix": 1}]}}, "trigger.event_pattern.detail.a[0].prefix"),
    ({"detail": {"a": [{"bogus": 1}]}}, "trigger.event_pattern.detail.a[0]"),
    ({"detail": {"a": [{"prefix": "x", "suffix": "y"}]}}, "trigger.event_pattern.detail.a[0]"),
    ({"detail": {"a": [{"numeric": [">", "1"]}]}}, "trigger.event_pattern.detail.a[0].numeric[1]"),
    ({"detail": {"a": [{"numeric": ["~", 1]}]}}, "trigger.event_pattern.detail.a[0].numeric[0]"),
    ({"detail": {"a": [{"numeric": [">", 1, ">", 2]}]}}, "trigger.event_pattern.detail.a[0].numeric"),
    ({"detail": {"a": [{"numeric": ["=", 1, "<", 2]}]}}, "trigger.event_pattern.detail.a[0].numeric"),
    ({"detail": {"a": [{"exists": "yes"}]}}, "trigger.event_pattern.detail.a[0].exists"),
    ({"detail": {"a": [{"wildcard": "a**b"}]}}, "trigger.event_pattern.detail.a[0].wildcard"),
    ({"detail": {"a": [{"wildcard": "a\\b"}]}}, "trigger.event_pattern.detail.a[0].wildcard"),
    ({"detail": {"a": [{"anything-but": {"numeric": [">", 1]}}]}}, "trigger.event_pattern.detail.a[0].anything-but"),
    ({"detail": {"a": [{"anything-but": [{"x": 1}]}]}}, "trigger.event_pattern.detail.a[0].anything-but[0]"),
    ({"detail": {"a": [{"cidr": "300.0.0.0/8"}]}}, "trigger.event_pattern.detail.a[0].cidr"),
    ({"source": {"x": ["y"]}}, "trigger.event_pattern.source"),
    ({"$or": []}, "trigger.event_pattern.$or"),
    ({"$or": [{"source": ["a"]}, "x"]}, "trigger.event_pattern.$or[1]"),
    ({}, "trigger.event_pattern"),
    ([], "trigger.event_pattern"),
]


@pytest.mark.parametrize(("pattern", "field"), BAD)
def test_invalid_patterns_name_the_field(pattern: Any, field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        compile_trigger(model.Trigger([], event_pattern=pattern))
    assert info.value.reason == "INVALID_EVENT_PATTERN"
    assert info.value.violations[0].field == field


def test_nesting_limit() -> None:
    pattern: dict[str, Any] = {"x": ["y"]}
    for _ in range(12):
        pattern = {"k": pattern}
    with pytest.raises(InvalidArgument, match="nested too deeply"):
        compile_event_pattern({"detail": pattern})
