"""EventBridge patterns agree with AWS Event Ruler's documented semantics on arrays, empty arrays and nulls.

The oracle below is written straight from Ruler's definition, independently of the
compiler: the event is flattened into (path, leaf value, array membership) fields,
the pattern is expanded into its ``$or``-free sub-rules, and a sub-rule matches when
each of its fields is satisfied by one event field with all the chosen fields in the
same element of every array they share ("any two fields within JSON objects in
different elements of the same array" never match together); ``exists: false`` asks
that the event has no field at that path at all. Hypothesis holds the compiled
patterns, the index (``Matcher``) and ``NaiveMatcher`` to it.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neoactions.domain import model
from neoactions.domain.errors import InvalidArgument
from neoactions.server.matching import Matcher, NaiveMatcher, compile_event_pattern

Path = tuple[str, ...]
Membership = dict[int, int]


# --- the oracle ---------------------------------------------------------------------


def flatten(value: Any, path: Path, membership: Membership, out: list[tuple[Path, Any, Membership]]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            flatten(item, (*path, key), membership, out)
    elif isinstance(value, list):
        array = id(value)  # the array's identity (the event is alive throughout)
        for index, item in enumerate(value):
            flatten(item, path, {**membership, array: index}, out)
    else:
        out.append((path, value, membership))


def sub_rules(pattern: dict[str, Any], prefix: Path = ()) -> list[list[tuple[Path, list[Any]]]]:
    """The pattern's DNF: each sub-rule lists (path, value array) fields."""
    per_key: list[list[list[tuple[Path, list[Any]]]]] = []
    for key, value in pattern.items():
        if key == "$or":
            per_key.append([rule for branch in value for rule in sub_rules(branch, prefix)])
            continue
        name = {"detail": "data", "detail-type": "type"}.get(key, key) if not prefix else key
        if isinstance(value, list):
            per_key.append([[((*prefix, name), value)]])
        else:
            per_key.append(sub_rules(value, (*prefix, name)))
    return [[field for part in combination for field in part] for combination in itertools.product(*per_key)]


def same_type_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    return type(a) is type(b) and a == b


def value_matches(matcher: Any, value: Any) -> bool:
    if not isinstance(matcher, dict):
        return same_type_equal(matcher, value)
    ((kind, operand),) = matcher.items()
    if kind == "prefix":
        return isinstance(value, str) and value.startswith(operand)
    if kind == "numeric":
        op, bound = operand
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        return number and {">": value > bound, "<": value < bound, "=": value == bound}[op]
    if kind == "anything-but":
        if isinstance(operand, dict):  # {"prefix": ...}: only strings can be excluded
            return not (isinstance(value, str) and value.startswith(operand["prefix"]))
        excluded = operand if isinstance(operand, list) else [operand]
        return not any(same_type_equal(e, value) for e in excluded)
    raise AssertionError(kind)


def consistent(a: Membership, b: Membership) -> Membership | None:
    for array, index in b.items():
        if a.get(array, index) != index:
            return None
    return {**a, **b}


def oracle(pattern: dict[str, Any], envelope: dict[str, Any]) -> bool:
    fields: list[tuple[Path, Any, Membership]] = []
    flatten(envelope, (), {}, fields)
    for rule in sub_rules(pattern):
        todo: list[tuple[Path, list[Any]]] = []
        ok = True
        for path, values in rule:
            absent = not any(p == path for p, _, _ in fields)
            if absent and {"exists": False} in values:
                continue  # satisfied by the absence, whatever the rest chooses
            if not any(v != {"exists": False} for v in values):
                ok = False
                break
            todo.append((path, values))
        if ok and _choose(todo, fields, {}):
            return True
    return False


def _choose(todo: list[tuple[Path, list[Any]]], fields: list[tuple[Path, Any, Membership]], so_far: Membership) -> bool:
    if not todo:
        return True
    (path, values), rest = todo[0], todo[1:]
    for p, value, membership in fields:
        if p != path:
            continue
        if not any(m == {"exists": True} or (m != {"exists": False} and value_matches(m, value)) for m in values):
            continue
        merged = consistent(so_far, membership)
        if merged is not None and _choose(rest, fields, merged):
            return True
    return False


# --- strategies ------------------------------------------------------------------------

KEYS = ["o", "p", "q"]
scalars = st.sampled_from(["a", "ab", "b", "", 0, 1, 1.0, -1, 2.5, True, False, None])
events_data = st.recursive(
    st.one_of(scalars, st.just([])),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(KEYS), inner, max_size=3),
    ),
    max_leaves=10,
).map(lambda v: v if isinstance(v, dict) else {"o": v})

matchers = st.one_of(
    scalars,
    st.sampled_from(
        [
            {"prefix": "a"},
            {"numeric": [">", 0]},
            {"numeric": ["<", 0]},
            {"numeric": ["=", 1]},
            {"exists": True},
            {"exists": False},
            {"anything-but": "a"},
            {"anything-but": ["a", "b"]},
            {"anything-but": [0, 1]},
            {"anything-but": {"prefix": "a"}},
        ]
    ),
)
value_arrays = st.lists(matchers, min_size=1, max_size=2)


def objects(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    leaf_or_child = (
        value_arrays if depth >= 3 else st.one_of(value_arrays, value_arrays, st.deferred(lambda: objects(depth + 1)))
    )
    plain = st.dictionaries(st.sampled_from(KEYS), leaf_or_child, min_size=1, max_size=2)
    if depth >= 3:
        return plain
    with_or = st.builds(
        lambda fields, branches: {**fields, "$or": branches},
        st.dictionaries(st.sampled_from(KEYS), leaf_or_child, max_size=1),
        st.lists(st.deferred(lambda: objects(depth + 1)), min_size=2, max_size=2),
    )
    return st.one_of(plain, plain, plain, with_or)


def well_formed(pattern: dict[str, Any]) -> bool:
    """No sub-rule names a path twice or a path inside another (only ``$or`` can do that, and
    Ruler leaves it undefined)."""
    for rule in sub_rules(pattern):
        paths = [p for p, _ in rule]
        for a, b in itertools.permutations(paths, 2):
            if a == b[: len(a)]:
                return False
    return True


patterns = st.builds(lambda obj: {"detail": obj}, objects(1)).filter(well_formed)


def envelope_of(data: dict[str, Any]) -> dict[str, Any]:
    return {"type": "orders.created", "source": "shop", "metadata": {}, "data": data}


def compiled_matches(pattern: dict[str, Any], env: dict[str, Any]) -> bool:
    compiled = compile_event_pattern(pattern)
    tested = all(node.test(env) for node in compiled.nodes)
    assert tested is all(node.tester()(env) for node in compiled.nodes)
    assert tested is all(node.explain(env).matched for node in compiled.nodes)
    return tested


@settings(max_examples=600, deadline=None)
@given(patterns, events_data)
def test_patterns_agree_with_the_ruler_definition(pattern: dict[str, Any], data: dict[str, Any]) -> None:
    env = envelope_of(data)
    assert compiled_matches(pattern, env) is oracle(pattern, env), json.dumps([pattern, data])


@settings(max_examples=60, deadline=None)
@given(st.lists(patterns, min_size=1, max_size=6), st.lists(events_data, min_size=1, max_size=6))
def test_index_and_naive_agree_with_the_ruler_definition(
    pattern_list: list[dict[str, Any]], sample: list[dict[str, Any]]
) -> None:
    matcher, naive = Matcher(), NaiveMatcher()
    for i, pattern in enumerate(pattern_list):
        action = model.Action(
            name=f"a{i}",
            tenant="t",
            trigger=model.Trigger([], event_pattern=pattern),
            handler=model.HandlerSpec("python"),
            created_at=datetime(2025, 1, 1, tzinfo=UTC),
        )
        matcher.put(action)
        naive.put(action)
    for data in sample:
        event = model.Event(id="e", tenant="t", type="orders.created", data=data, source="shop")
        env = event.envelope()
        expected = sorted(f"a{i}" for i, p in enumerate(pattern_list) if oracle(p, env))
        assert sorted(a.name for a in matcher.match("t", event)) == expected
        assert sorted(a.name for a in naive.match("t", event)) == expected


# --- the rules the issue names, one by one ---------------------------------------------


def passes(pattern: dict[str, Any], data: dict[str, Any]) -> bool:
    return compiled_matches({"detail": pattern}, envelope_of(data))


RULES: list[tuple[dict[str, Any], dict[str, Any], bool]] = [
    # an empty array has no value: exists is false there
    ({"b": [{"exists": True}]}, {"b": []}, False),
    ({"b": [{"exists": False}]}, {"b": []}, True),
    ({"b": [{"exists": True}]}, {"b": [[], [[]]]}, False),
    ({"b": [{"exists": True}]}, {"b": [None]}, True),
    ({"b": [{"exists": True}]}, {"b": None}, True),
    ({"b": [{"exists": True}]}, {"b": [{}]}, False),  # objects are not leaves
    ({"b": [{"exists": False}]}, {"b": {"c": 1}}, True),
    # anything-but: null is "anything but" a string or a number
    ({"b": [{"anything-but": "x"}]}, {"b": None}, True),
    ({"b": [{"anything-but": [1, 2]}]}, {"b": None}, True),
    ({"b": [{"anything-but": "x"}]}, {"b": ["x", None]}, True),
    ({"b": [{"anything-but": "x"}]}, {"b": ["x"]}, False),
    ({"b": [{"anything-but": "x"}]}, {"b": []}, False),
    ({"b": [{"anything-but": "x"}]}, {}, False),
    ({"b": [{"anything-but": {"prefix": "x"}}]}, {"b": None}, True),
    # numeric: null is not a number; an array passes if a number in it does
    ({"b": [{"numeric": [">", 0]}]}, {"b": None}, False),
    ({"b": [{"numeric": [">", 0]}]}, {"b": [None, 3]}, True),
    ({"b": [{"numeric": [">", 0]}]}, {"b": [None]}, False),
    ({"b": [None]}, {"b": [1, None]}, True),
    # arrays of objects: a field inside any element
    ({"o": {"p": [{"prefix": "alpha"}]}}, {"o": [{"p": "alphabet"}, {"q": -1}]}, True),
    ({"o": {"q": [{"numeric": ["<", 0]}]}}, {"o": [{"p": "alphabet"}, {"q": -1}]}, True),
    # ...and several fields of one array of objects within the same element
    ({"o": {"p": [{"prefix": "alpha"}], "q": [{"numeric": ["<", 0]}]}}, {"o": [{"p": "alphabet"}, {"q": -1}]}, False),
    (
        {"o": {"p": [{"prefix": "alpha"}], "q": [{"numeric": ["<", 0]}]}},
        {"o": [{"p": "x"}, {"p": "alpha", "q": -1}]},
        True,
    ),
    ({"o": {"p": ["a"], "q": [{"exists": True}]}}, {"o": [{"p": "a"}, {"q": 1}]}, False),
    ({"o": {"p": {"x": ["1"]}, "q": ["b"]}}, {"o": [{"p": [{"x": "1"}, {"x": "2"}], "q": "b"}]}, True),
    ({"o": {"p": {"x": ["1"]}, "q": ["b"]}}, {"o": [{"p": [{"x": "1"}]}, {"q": "b"}]}, False),
    ({"o": {"p": ["a"], "q": ["b"]}}, {"o": [[{"p": "a", "q": "b"}]]}, True),  # nested arrays flatten
    # exists: false is about the whole event, not the element
    ({"o": {"p": ["a"], "q": [{"exists": False}]}}, {"o": [{"p": "a"}, {"p": "b", "q": 1}]}, False),
    ({"o": {"p": ["a"], "q": [{"exists": False}]}}, {"o": [{"p": "a"}, {"p": "b"}]}, True),
    # $or branches naming the same array of objects as their siblings
    ({"o": {"p": ["a"]}, "$or": [{"o": {"q": ["b"]}}, {"x": [1]}]}, {"o": [{"p": "a"}, {"q": "b"}]}, False),
    ({"o": {"p": ["a"]}, "$or": [{"o": {"q": ["b"]}}, {"x": [1]}]}, {"o": [{"p": "a", "q": "b"}]}, True),
    ({"o": {"p": ["a"]}, "$or": [{"o": {"q": ["b"]}}, {"x": [1]}]}, {"o": [{"p": "a"}, {"q": "b"}], "x": 1}, True),
]


@pytest.mark.parametrize(("pattern", "data", "expected"), RULES)
def test_ruler_rules(pattern: dict[str, Any], data: dict[str, Any], expected: bool) -> None:
    assert passes(pattern, data) is expected
    assert oracle({"detail": pattern}, envelope_of(data)) is expected  # the oracle reads Ruler alike


def test_too_many_overlapping_or_combinations_are_refused() -> None:
    """Branches naming the same array of objects are multiplied out; the product is bounded."""

    def pattern(n: int) -> dict[str, Any]:
        # "detail" and "data" are one field: two $or groups at one level, every branch naming "o"
        return {
            "detail": {"$or": [{"o": {"p": [i]}} for i in range(n)]},
            "data": {"$or": [{"o": {"q": [i]}} for i in range(n)]},
        }

    compile_event_pattern(pattern(16))  # 256 alternatives
    with pytest.raises(InvalidArgument, match=r"combinations of \$or branches") as info:
        compile_event_pattern(pattern(17))
    assert info.value.violations[0].field == "trigger.event_pattern"
    env = envelope_of({"o": [{"p": 3}, {"q": 5}]})
    assert not compiled_matches(pattern(16), env)
    assert compiled_matches(pattern(16), envelope_of({"o": [{"p": 3}, {"p": 3, "q": 5}]}))


# --- a second opinion: the event-ruler package -------------------------------------------
# It implements a subset (exact values, exists, anything-but lists) and reads numbers its
# own way, so it is asked only about strings, booleans and null.

string_scalars = st.sampled_from(["a", "ab", "b", "", True, False, None])
string_events = st.recursive(
    st.one_of(string_scalars, st.just([])),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=3)),
    max_leaves=10,
).map(lambda v: v if isinstance(v, dict) else {"o": v})
string_arrays = st.one_of(  # it takes exists and anything-but only alone in their array
    st.lists(string_scalars, min_size=1, max_size=2),
    # Not exists, where it departs from Ruler's documentation: {"o": [{"exists": true}],
    # "p": [{"exists": false}]} does not match {"o": "a"} there, and {"o": [{"exists": true}]}
    # matches {"o": [{"o": "a"}]}, whose "o" holds no leaf ("exists only works on leaf nodes").
    st.sampled_from([[{"anything-but": ["a"]}], [{"anything-but": ["a", "b"]}]]),
)
string_patterns = st.recursive(
    string_arrays, lambda inner: st.dictionaries(st.sampled_from(KEYS), inner, min_size=1, max_size=2), max_leaves=4
).filter(lambda v: isinstance(v, dict))


def keys_once_per_path(value: Any, above: frozenset[str] = frozenset()) -> bool:
    """No key below one of the same name: the package mixes up ``{"o": [{"o": "a"}]}`` with ``{"o": "a"}``."""
    if isinstance(value, list):
        return all(keys_once_per_path(item, above) for item in value)
    if isinstance(value, dict):
        return all(k not in above and keys_once_per_path(v, above | {k}) for k, v in value.items())
    return True


@settings(max_examples=300, deadline=None)
@given(string_patterns.filter(keys_once_per_path), string_events.filter(keys_once_per_path))
def test_patterns_agree_with_the_event_ruler_package(pattern: dict[str, Any], data: dict[str, Any]) -> None:
    event_ruler = pytest.importorskip("event_ruler")
    theirs = event_ruler.test_event_pattern(json.dumps({"detail": data}), json.dumps({"detail": pattern}))
    assert passes(pattern, data) is theirs, json.dumps([pattern, data])


def test_deeply_nested_arrays_are_read_without_recursion() -> None:
    deep: Any = [{"p": "a", "q": "b"}]
    for _ in range(5000):
        deep = [deep]
    assert passes({"o": {"p": ["a"], "q": ["b"]}}, {"o": deep})
    assert passes({"o": [{"exists": True}]}, {"o": [[[[[[None]]]]]]})
    assert not passes({"o": {"p": ["a"], "q": ["c"]}}, {"o": deep})
