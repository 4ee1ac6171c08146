"""Property tests: the index returns exactly what a naive evaluation of every action returns.

Random actions (patterns, nested conditions, context filters, EventBridge patterns,
priorities and creation times with ties) go through random create / update /
disable / enable / delete sequences; after each step, random events must match the
same actions, in the same order, in the indexed Matcher and in NaiveMatcher, and
explain must mark exactly those actions as matched.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from neoactions.domain import model
from neoactions.server.matching import Matcher, NaiveMatcher

T0 = datetime(2025, 1, 1, tzinfo=UTC)
NAMES = [f"act{i}" for i in range(8)]
TYPES = ["users.created", "users.deleted", "users.profile.updated", "orders.created", "orders"]

scalars = st.sampled_from([0, 1, 1.0, 2, -3.5, "1", "a", "ab", "b", "é", True, False, None])
values = st.one_of(scalars, st.lists(scalars, max_size=3))
patterns = st.sampled_from(
    ["users.created", "users.*", "users.**", "*", "**.created", "orders", "orders.**", "*.*", "users.*.updated"]
)
fields = st.sampled_from(["data.a", "data.b", "data.l", "data.n.x", "metadata.m", "source", "subject"])


@st.composite
def field_conditions(draw: st.DrawFn) -> model.FieldCondition:
    operator = draw(
        st.sampled_from(
            [
                "equals",
                "not_equals",
                "in",
                "not_in",
                "contains",
                "gt",
                "gte",
                "lt",
                "lte",
                "between",
                "exists",
                "not_exists",
                "starts_with",
                "ends_with",
                "equals_ignore_case",
                "regex",
                "cidr",
            ]
        )
    )
    field = draw(fields)
    value: Any
    if operator in ("equals", "not_equals", "contains"):
        value = draw(values)
    elif operator in ("in", "not_in"):
        value = draw(st.lists(scalars, max_size=4))
    elif operator in ("gt", "gte", "lt", "lte"):
        value = draw(st.sampled_from([0, 1, 1.5, "1", "a", "b"]))
    elif operator == "between":
        value = draw(st.sampled_from([[0, 1], [-5, 0], ["a", "b"]]))
    elif operator in ("exists", "not_exists"):
        value = draw(st.sampled_from([None, True, False]))
    elif operator == "regex":
        value = draw(st.sampled_from(["^a", "1$", "é", "[0-9]"]))
    elif operator == "cidr":
        value = draw(st.sampled_from(["10.0.0.0/8", ["192.168.0.0/16", "::1/128"]]))
    else:
        value = draw(st.sampled_from(["a", "A", "1", "é"]))
    return model.FieldCondition(field, operator, value)


conditions = st.recursive(
    st.one_of(
        field_conditions(),
        field_conditions(),
        st.sampled_from(["data.a == 1", "size(data) > 1", 'source == "svc"']).map(model.CelCondition),
    ),
    lambda children: st.one_of(
        st.builds(model.ConditionGroup, st.sampled_from(["all", "any"]), st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda c: model.ConditionGroup("not", [c]), children),
    ),
    max_leaves=4,
)

eb_values = st.lists(
    st.one_of(
        scalars,
        st.sampled_from([{"prefix": "a"}, {"numeric": [">", 0]}, {"exists": True}, {"anything-but": "a"}]),
    ),
    min_size=1,
    max_size=3,
)
eb_literals = st.lists(scalars, min_size=1, max_size=3)  # what the index can file EventBridge arrays under
event_patterns = st.one_of(
    st.none(),
    st.none(),
    st.none(),
    st.builds(lambda v: {"detail": {"a": v}}, eb_values),
    st.builds(lambda v: {"detail": {"a": v}}, eb_literals),
    st.builds(lambda v: {"detail": {"l": v}}, eb_literals),
    st.builds(lambda v, w: {"detail": {"l": v}, "metadata": {"m": w}}, eb_values, eb_values),
    st.builds(lambda v, w: {"$or": [{"detail": {"a": v}}, {"source": w}]}, eb_values, eb_values),
)


@st.composite
def actions(draw: st.DrawFn, name: str) -> model.Action:
    pattern = draw(event_patterns)
    types = draw(st.lists(patterns, min_size=0 if pattern else 1, max_size=3))
    return model.Action(
        name=name,
        tenant="t",
        trigger=model.Trigger(
            event_types=types,
            # Often unconditional, so that several actions match and their order is tested.
            conditions=draw(st.one_of(st.just([]), st.lists(conditions, max_size=3))),
            context_filters=draw(
                st.one_of(st.just({}), st.just({}), st.dictionaries(st.sampled_from(["m", "k.x"]), scalars, max_size=1))
            ),
            event_pattern=pattern,
        ),
        handler=model.HandlerSpec("python"),
        priority=draw(st.sampled_from(list(model.Priority))),
        enabled=draw(st.sampled_from([True, True, True, False])),
        created_at=T0 + timedelta(seconds=draw(st.integers(0, 2))),
    )


@st.composite
def events(draw: st.DrawFn) -> model.Event:
    data: dict[str, Any] = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "a": values,
                "b": values,
                "l": st.lists(scalars, max_size=3),
                "n": st.fixed_dictionaries({}, optional={"x": values}),
            },
        )
    )
    metadata = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "m": st.one_of(scalars, st.sampled_from(["10.1.1.1", "192.168.0.9", "::1"])),
                "k": st.fixed_dictionaries({"x": scalars}),
            },
        )
    )
    return model.Event(
        id="e",
        tenant="t",
        type=draw(st.sampled_from(TYPES)),
        data=data,
        metadata=metadata,
        source=draw(st.sampled_from(["svc", "a", "10.2.3.4"])),
        subject=draw(st.sampled_from(["", "ab"])),
    )


@st.composite
def operations(draw: st.DrawFn) -> list[tuple[str, str, model.Action | None]]:
    ops: list[tuple[str, str, model.Action | None]] = []
    for _ in range(draw(st.integers(1, 14))):
        kind = draw(st.sampled_from(["put", "put", "put", "remove", "toggle"]))
        name = draw(st.sampled_from(NAMES))
        ops.append((kind, name, draw(actions(name)) if kind == "put" else None))
    return ops


def assert_same(matcher: Matcher, naive: NaiveMatcher, sample: list[model.Event]) -> None:
    for event in sample:
        indexed = matcher.match("t", event)
        reference = naive.match("t", event)
        assert [a.name for a in indexed] == [a.name for a in reference]
        assert all(x is y for x, y in zip(indexed, reference, strict=True))
        explained = [e.action for e in matcher.explain("t", event) if e.matched]
        assert sorted(explained) == sorted(a.name for a in reference)


@settings(max_examples=80, deadline=None)
@given(operations(), st.lists(events(), min_size=1, max_size=6))
def test_index_equals_naive_through_changes(
    ops: list[tuple[str, str, model.Action | None]], sample: list[model.Event]
) -> None:
    matcher, naive = Matcher(), NaiveMatcher()
    current: dict[str, model.Action] = {}
    for kind, name, new in ops:
        if kind == "put":
            assert new is not None
            current[name] = new
            matcher.put(new)
            naive.put(new)
        elif kind == "remove":
            current.pop(name, None)
            matcher.remove("t", name)
            naive.remove("t", name)
        elif name in current:
            # toggle enabled on the stored object, as an Enable/DisableAction would
            toggled = current[name]
            toggled.enabled = not toggled.enabled
            matcher.put(toggled)
            naive.put(toggled)
        assert_same(matcher, naive, sample)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.sampled_from(NAMES), unique=True, min_size=1).flatmap(
        lambda names: st.tuples(*(actions(n) for n in names))
    ),
    st.lists(events(), min_size=1, max_size=6),
)
def test_load_equals_naive(loaded: tuple[model.Action, ...], sample: list[model.Event]) -> None:
    matcher, naive = Matcher(), NaiveMatcher()
    assert matcher.load("t", loaded) == {}
    for a in loaded:
        naive.put(a)
    assert_same(matcher, naive, sample)
