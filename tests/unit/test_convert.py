"""Protobuf ↔ domain round trips (Hypothesis)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from google.protobuf import timestamp_pb2
from hypothesis import given, settings
from hypothesis import strategies as st

from neoactions.domain import convert
from neoactions.domain import names as resource_names
from neoactions.domain.errors import InvalidArgument
from neoactions.domain.model import (
    Action,
    CelCondition,
    Condition,
    ConditionGroup,
    Event,
    Execution,
    ExecutionError,
    ExecutionMode,
    ExecutionStatus,
    FieldCondition,
    HandlerSpec,
    Priority,
    RateLimit,
    RetryPolicy,
    Trigger,
)
from neoactions.v1 import events_pb2

names = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53) + 1, 2**53 - 1),
    st.text(max_size=10),
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer()),
)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(names, inner, max_size=3), max_leaves=8
)
times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)).map(
    lambda d: d.replace(microsecond=(d.microsecond // 1000) * 1000)
)

field_conditions = st.builds(
    FieldCondition,
    field=names.map(lambda n: f"data.{n}"),
    operator=st.sampled_from(["equals", "gt", "in"]),
    value=json_values.filter(lambda v: v is not None),
)
conditions: st.SearchStrategy[Condition] = st.recursive(
    field_conditions | st.builds(CelCondition, st.just("data.a > 1")),
    lambda inner: (
        st.builds(ConditionGroup, st.sampled_from(["all", "any"]), st.lists(inner, min_size=1, max_size=3))
        | st.builds(lambda c: ConditionGroup("not", [c]), inner)
    ),
    max_leaves=6,
)


@settings(max_examples=150, deadline=None)
@given(
    name=names,
    conds=st.lists(conditions, max_size=3),
    config=st.dictionaries(names, json_values, max_size=4),
    priority=st.sampled_from(list(Priority)),
    mode=st.sampled_from(list(ExecutionMode)),
    created=times,
    tags=st.lists(names, max_size=3),
)
def test_action_round_trip(
    name: str,
    conds: list[Condition],
    config: dict[str, object],
    priority: Priority,
    mode: ExecutionMode,
    created: datetime,
    tags: list[str],
) -> None:
    action = Action(
        name=name,
        tenant="acme",
        id="0190f0f0-0000-7000-8000-000000000000",
        trigger=Trigger(["orders.*"], conds, {"region": "eu"}),
        handler=HandlerSpec("python", config),
        priority=priority,
        execution_mode=mode,
        timeout_seconds=12.5,
        retry_policy=RetryPolicy(3, "linear", 10, 500, True, 60.0),
        rate_limit=RateLimit(5, 100),
        max_concurrency=2,
        tags=tags,
        version=4,
        created_at=created,
        updated_at=created,
        enabled=False,
    )
    assert convert.action_from_stored_pb(convert.action_to_pb(action)) == action


@settings(max_examples=100, deadline=None)
@given(data=st.dictionaries(names, json_values, max_size=5), when=times)
def test_event_round_trip(data: dict[str, object], when: datetime) -> None:
    event = Event(
        id="0190f0f0-0000-7000-8000-000000000001",
        tenant="acme",
        type="orders.created",
        data=data,
        source="shop",
        subject="order/1",
        time=when,
        received_at=when,
        metadata={"ip": "1.2.3.4"},
        correlation_id="c",
        causation_id="d",
        idempotency_key="k",
    )
    assert convert.event_from_stored_pb(convert.event_to_pb(event)) == event


@settings(max_examples=100, deadline=None)
@given(output=json_values, status=st.sampled_from(list(ExecutionStatus)), when=times)
def test_execution_round_trip(output: object, status: ExecutionStatus, when: datetime) -> None:
    ex = Execution(
        id="0190f0f0-0000-7000-8000-000000000002",
        tenant="acme",
        action_id="",
        action_name="notify",
        action_version=2,
        input={"a": 1},
        handler_type="python",
        event_id="e",
        status=status,
        output=output,
        error=ExecutionError("ValueError", "no", "trace", True),
        idempotency_key="k",
        correlation_id="c",
        priority=Priority.HIGH,
        mode=ExecutionMode.SYNC,
        attempt_count=1,
        created_at=when,
        updated_at=when,
        started_at=when,
        finished_at=None,
    )
    assert convert.execution_from_pb(convert.execution_to_pb(ex)) == ex


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 12, 2, 15, 47, 1, 123456, tzinfo=UTC),
        datetime(1969, 7, 20, 20, 17, 40, 1, tzinfo=UTC),  # before the epoch: negative seconds
        datetime(2026, 12, 2, 15, 47, 1, 999999),  # naive: UTC
        datetime(2026, 12, 2, 16, 47, 1, tzinfo=timezone(timedelta(hours=1))),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ],
)
def test_timestamps_are_what_protobuf_makes_of_the_datetime(value: datetime) -> None:
    expected = timestamp_pb2.Timestamp()
    expected.FromDatetime(value)
    assert convert.ts(value) == expected
    assert convert.dt(expected) == (value if value.tzinfo else value.replace(tzinfo=UTC))


# --- hostile input at the edge ------------------------------------------------------


def _refusal(text: str, field: str = "event.data_json", **kw: Any) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as err:
        convert.parse_json(text, field, **kw)
    assert [v.field for v in err.value.violations] == [field]
    return err.value


def test_json_nesting_is_limited_and_deep_input_never_raises_recursion_error() -> None:
    at_limit = "[" * convert.MAX_JSON_DEPTH + "]" * convert.MAX_JSON_DEPTH
    assert convert.parse_json(at_limit, "input_json") is not None
    over = "[" * (convert.MAX_JSON_DEPTH + 1) + "]" * (convert.MAX_JSON_DEPTH + 1)
    assert _refusal(over, "input_json").reason == "JSON_TOO_DEEP"
    assert _refusal("[" * 20_000 + "]" * 20_000).reason == "JSON_TOO_DEEP"
    assert _refusal('{"a":' * 900 + "1" + "}" * 900).reason == "JSON_TOO_DEEP"
    # many brackets, little depth: accepted
    wide = json.dumps({"items": [{"n": i, "tags": [str(i)]} for i in range(500)]})
    assert convert.parse_json(wide, "event.data_json", want_object=True)["items"][499]["n"] == 499


def test_json_depth_counts_arrays_and_objects() -> None:
    assert convert.json_depth(1) == 0
    assert convert.json_depth({}) == 1
    assert convert.json_depth({"a": [1, {"b": []}], "c": 2}) == 4


def test_lone_surrogates_are_refused_and_pairs_and_escaped_backslashes_accepted() -> None:
    assert _refusal('{"s": "\\ud800"}').reason == "MALFORMED_JSON"
    assert _refusal('{"\\udfff": 1}').reason == "MALFORMED_JSON"
    assert _refusal('["a\\uDBFF"]', "input_json").reason == "MALFORMED_JSON"
    assert convert.parse_json('{"s": "\\ud83d\\ude42"}', "f") == {"s": "🙂"}
    assert convert.parse_json('{"s": "\\\\ud800"}', "f") == {"s": "\\ud800"}


def test_client_side_encoding_names_the_argument() -> None:
    deep: Any = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(InvalidArgument) as err:
        convert.encode_json({"d": deep}, "data")
    assert err.value.reason == "JSON_TOO_DEEP" and err.value.violations[0].field == "data"
    with pytest.raises(InvalidArgument) as err:
        convert.encode_json({"s": "\ud800"}, "metadata")
    assert err.value.violations[0].field == "metadata"
    assert convert.encode_json({"a": 1}, "data") == '{"a":1}'


@pytest.mark.parametrize(("field", "length"), [("source", 1025), ("subject", 1025), ("type", 257), ("id", 513)])
def test_event_text_fields_are_limited(field: str, length: int) -> None:
    msg = events_pb2.Event(type="orders.created", data_json="{}")
    setattr(msg, field, "a" * (length - 1))
    convert.event_from_pb(msg, "admin")
    setattr(msg, field, "a" * length)
    with pytest.raises(InvalidArgument) as err:
        convert.event_from_pb(msg, "admin", "events[3]")
    assert err.value.reason == "FIELD_TOO_LONG" and err.value.violations[0].field == f"events[3].{field}"


def test_out_of_range_timestamps_name_their_field() -> None:
    msg = events_pb2.Event(type="orders.created", time=timestamp_pb2.Timestamp(seconds=253402300800))
    with pytest.raises(InvalidArgument) as err:
        convert.event_from_pb(msg, "admin")
    assert err.value.violations[0].field == "event.time"
    request = events_pb2.ListEventsRequest(start_time=timestamp_pb2.Timestamp(nanos=10**9))
    with pytest.raises(InvalidArgument) as err:
        convert.opt_dt(request, "start_time")
    assert err.value.reason == "INVALID_TIMESTAMP" and err.value.violations[0].field == "start_time"


@pytest.mark.parametrize("name", ["tenants/admin\n", "tenants/admin\r", "tenants/Admin", "tenants/", "tenant/admin"])
def test_tenant_names_are_matched_whole(name: str) -> None:
    with pytest.raises(InvalidArgument):
        resource_names.parse_tenant(name)
    assert not resource_names.is_tenant_slug(name.removeprefix("tenants/"))


def test_resource_names_are_bounded_and_quoted_short() -> None:
    with pytest.raises(InvalidArgument) as err:
        resource_names.parse_child("tenants/admin/actions/" + "a" * 10_000, "actions")
    assert err.value.reason == "FIELD_TOO_LONG" and len(err.value.message) < 200
    with pytest.raises(InvalidArgument) as err:
        resource_names.parse_tenant("x" * 10_000)
    assert len(err.value.message) < 200
    assert resource_names.parse_child("tenants/shop/actions/a1", "actions") == ("shop", "a1")
