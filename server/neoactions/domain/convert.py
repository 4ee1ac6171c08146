"""Protobuf ↔ domain translations. Servicers and the client both use these."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2

from neoactions.domain import names
from neoactions.domain.errors import InvalidArgument
from neoactions.domain.explain import ActionExplanation, ConditionExplanation, jsonable
from neoactions.domain.model import (
    JSON,
    Action,
    Attempt,
    CelCondition,
    Condition,
    ConditionGroup,
    Event,
    EventStatus,
    Execution,
    ExecutionError,
    ExecutionMode,
    ExecutionStatus,
    ExecutionUpdate,
    FieldCondition,
    HandlerSpec,
    InlineAction,
    Priority,
    RateLimit,
    RetryPolicy,
    Tenant,
    Trigger,
    UpdateKind,
)
from neoactions.v1 import actions_pb2, events_pb2, executions_pb2, tenants_pb2

# --- scalars -------------------------------------------------------------------


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ts(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    """``value`` (naive means UTC) as a Timestamp; by hand, as ``FromDatetime`` costs 3 µs."""
    if value is None:
        return None
    delta = (value if value.tzinfo is not None else value.replace(tzinfo=UTC)) - _EPOCH
    return timestamp_pb2.Timestamp(seconds=delta.days * 86_400 + delta.seconds, nanos=delta.microseconds * 1000)


def dt(value: timestamp_pb2.Timestamp, field: str = "time") -> datetime:
    """``value`` as an aware datetime; ``InvalidArgument`` naming ``field`` when it is out of range."""
    try:
        return value.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError) as exc:
        raise InvalidArgument.field(field, f"not a valid timestamp: {exc}", reason="INVALID_TIMESTAMP") from None


def opt_dt(msg: Any, field: str, path: str = "") -> datetime | None:
    """``msg.field`` as a datetime when set; errors name ``path`` (default: ``field``)."""
    return dt(getattr(msg, field), path or field) if msg.HasField(field) else None


def normalize(value: JSON) -> JSON:
    """Struct numbers are doubles; give integral ones back as ints."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize(v) for v in value]
    return value


def struct_to_dict(value: struct_pb2.Struct) -> dict[str, Any]:
    out = normalize(json_format.MessageToDict(value))
    assert isinstance(out, dict)
    return out


def dict_to_struct(value: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(value)
    return out


#: deepest nesting of arrays and objects accepted in JSON a request carries
MAX_JSON_DEPTH = 64


def parse_json(text: str, field: str, *, default: JSON = None, want_object: bool = False) -> JSON:
    """``text`` parsed; ``InvalidArgument`` naming ``field`` when it is not JSON, nests deeper
    than :data:`MAX_JSON_DEPTH`, or holds a string that is not Unicode text (a lone surrogate)."""
    if not text:
        return {} if want_object else default
    try:
        value = json.loads(text)
    except RecursionError:
        raise _too_deep(field) from None
    except ValueError as exc:
        raise InvalidArgument.field(field, f"malformed JSON: {exc}", reason="MALFORMED_JSON") from None
    # each check walks the text once in C; only text that may fail them is looked at closer
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and json_depth(value) > MAX_JSON_DEPTH:
        raise _too_deep(field)
    if ("\\ud" in text or "\\uD" in text) and not _is_text(value):
        raise InvalidArgument.field(
            field,
            "holds a lone surrogate (\\ud800-\\udfff escape without its pair); send Unicode text",
            reason="MALFORMED_JSON",
        )
    if want_object and not isinstance(value, dict):
        raise InvalidArgument.field(field, "must be a JSON object", reason="INVALID_EVENT_DATA")
    return value


def _too_deep(field: str) -> InvalidArgument:
    return InvalidArgument.field(
        field, f"nests deeper than {MAX_JSON_DEPTH} levels of arrays and objects", reason="JSON_TOO_DEEP"
    )


def json_depth(value: JSON) -> int:
    """How deeply ``value`` nests arrays and objects (a scalar is 0), level by level, without
    recursion; stops counting past :data:`MAX_JSON_DEPTH`."""
    level = [value] if type(value) is dict or type(value) is list else []
    depth = 0
    while level:
        depth += 1
        if depth > MAX_JSON_DEPTH:
            break
        below: list[Any] = []
        for item in level:
            for child in item.values() if type(item) is dict else item:
                kind = type(child)
                if kind is dict or kind is list:
                    below.append(child)
        level = below
    return depth


def _is_text(value: JSON) -> bool:
    """Whether every string in ``value`` (keys too) encodes as UTF-8."""
    try:
        _JSON.encode(value).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def dump_json(value: JSON) -> str:
    return "" if value is None else _JSON.encode(value)


def encode_json(value: JSON, field: str) -> str:
    """``value`` as JSON for a request (client side); ``InvalidArgument`` naming ``field`` when it
    nests too deeply to encode or holds a string that is not Unicode text."""
    try:
        text = dump_json(value)
    except RecursionError:
        raise _too_deep(field) from None
    except (TypeError, ValueError) as exc:
        raise InvalidArgument.field(field, f"cannot be sent as JSON: {exc}", reason="MALFORMED_JSON") from None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgument.field(
            field, "holds a lone surrogate (a string that is not Unicode text)", reason="MALFORMED_JSON"
        ) from None
    return text


# --- enums ---------------------------------------------------------------------

_PRIORITY_TO_PB = {p: getattr(actions_pb2, f"PRIORITY_{p.name}") for p in Priority}
_PRIORITY_FROM_PB = {v: k for k, v in _PRIORITY_TO_PB.items()}
_MODE_TO_PB = {m: getattr(actions_pb2, f"EXECUTION_MODE_{m.name}") for m in ExecutionMode}
_MODE_FROM_PB = {v: k for k, v in _MODE_TO_PB.items()}
_EXEC_STATUS_TO_PB = {s: getattr(executions_pb2, f"EXECUTION_STATUS_{s.name}") for s in ExecutionStatus}
_EXEC_STATUS_FROM_PB = {v: k for k, v in _EXEC_STATUS_TO_PB.items()}
_EVENT_STATUS_TO_PB = {s: getattr(events_pb2, f"EVENT_STATUS_{s.name}") for s in EventStatus}
_EVENT_STATUS_FROM_PB = {v: k for k, v in _EVENT_STATUS_TO_PB.items()}
_KIND_TO_PB = {k: getattr(executions_pb2.ExecutionUpdate, f"KIND_{k.name}") for k in UpdateKind}
_KIND_FROM_PB = {v: k for k, v in _KIND_TO_PB.items()}


def execution_status_from_pb(value: int) -> ExecutionStatus | None:
    return _EXEC_STATUS_FROM_PB.get(value)


def event_status_from_pb(value: int) -> EventStatus | None:
    return _EVENT_STATUS_FROM_PB.get(value)


# --- tenants -------------------------------------------------------------------


def tenant_to_pb(t: Tenant) -> tenants_pb2.Tenant:
    return tenants_pb2.Tenant(name=names.tenant_name(t.slug), display_name=t.display_name, create_time=ts(t.created_at))


def tenant_from_pb(msg: tenants_pb2.Tenant) -> Tenant:
    return Tenant(
        slug=names.parse_tenant(msg.name, "name"), display_name=msg.display_name, created_at=dt(msg.create_time)
    )


# --- events --------------------------------------------------------------------


#: longest accepted value of an event's text fields, in characters
EVENT_FIELD_LIMITS = {
    "type": 256,
    "source": 1024,
    "subject": 1024,
    "aggregate_type": 256,
    "aggregate_id": 512,
    "correlation_id": 512,
    "causation_id": 512,
    "idempotency_key": 512,
    "id": 512,
}


def check_lengths(msg: Any, path: str, limits: dict[str, int]) -> None:
    """``InvalidArgument`` naming the first of ``msg``'s text fields longer than its limit."""
    for name, limit in limits.items():
        value = getattr(msg, name, "")
        if len(value) > limit:
            raise InvalidArgument.field(
                f"{path}.{name}", f"is {len(value)} characters; the limit is {limit}", reason="FIELD_TOO_LONG"
            )


def event_from_pb(msg: events_pb2.Event, tenant: str, path: str = "event") -> Event:
    """A publishable event (server-assigned fields are ignored)."""
    check_lengths(msg, path, EVENT_FIELD_LIMITS)
    event = Event(
        id="",
        tenant=tenant,
        type=msg.type,
        data=parse_json(msg.data_json, f"{path}.data_json", want_object=True),
        source=msg.source,
        subject=msg.subject,
        aggregate_type=msg.aggregate_type,
        aggregate_id=msg.aggregate_id,
        metadata=parse_json(msg.metadata_json, f"{path}.metadata_json", want_object=True),
        correlation_id=msg.correlation_id,
        causation_id=msg.causation_id,
        idempotency_key=msg.idempotency_key,
        # a producer's own id (CloudEvents `id`): with `source`, what deduplicates a redelivery
        source_id=msg.id,
    )
    if msg.HasField("time"):
        event.time = dt(msg.time, f"{path}.time")
    return event


def event_to_pb(e: Event) -> events_pb2.Event:
    return events_pb2.Event(
        name=names.event_name(e.tenant, e.id),
        id=e.id,
        type=e.type,
        source=e.source,
        subject=e.subject,
        aggregate_type=e.aggregate_type,
        aggregate_id=e.aggregate_id,
        time=ts(e.time),
        data_json=dump_json(e.data),
        metadata_json=dump_json(e.metadata) if e.metadata else "",
        correlation_id=e.correlation_id,
        causation_id=e.causation_id,
        idempotency_key=e.idempotency_key,
        status=_EVENT_STATUS_TO_PB[e.status],
        received_at=ts(e.received_at),
    )


def event_from_stored_pb(msg: events_pb2.Event) -> Event:
    """A stored event as returned by the server (client side)."""
    tenant, _ = names.parse_child(msg.name, "events")
    event = event_from_pb(msg, tenant)
    event.id, event.source_id = msg.id, ""
    event.status = _EVENT_STATUS_FROM_PB.get(msg.status, EventStatus.PENDING)
    event.received_at = dt(msg.received_at)
    return event


# --- actions -------------------------------------------------------------------


def condition_from_pb(msg: actions_pb2.Condition, path: str) -> Condition:
    forms = [
        name
        for name, present in (
            ("field", bool(msg.field or msg.operator)),
            ("all", len(msg.all) > 0),
            ("any", len(msg.any) > 0),
            ("not", msg.HasField("negate")),
            ("cel", bool(msg.cel)),
        )
        if present
    ]
    if len(forms) != 1:
        raise InvalidArgument.field(
            path,
            "a condition needs exactly one of {field, operator, value}, all, any, not, cel"
            + (f" (got {', '.join(forms)})" if forms else ""),
            reason="INVALID_CONDITION",
        )
    form = forms[0]
    if form == "all":
        return ConditionGroup("all", [condition_from_pb(c, f"{path}.all[{i}]") for i, c in enumerate(msg.all)])
    if form == "any":
        return ConditionGroup("any", [condition_from_pb(c, f"{path}.any[{i}]") for i, c in enumerate(msg.any)])
    if form == "not":
        return ConditionGroup("not", [condition_from_pb(msg.negate, f"{path}.not")])
    if form == "cel":
        return CelCondition(msg.cel)
    value = normalize(json_format.MessageToDict(msg.value)) if msg.HasField("value") else None
    return FieldCondition(field=msg.field, operator=msg.operator, value=value)


def condition_to_pb(c: Condition) -> actions_pb2.Condition:
    if isinstance(c, FieldCondition):
        out = actions_pb2.Condition(field=c.field, operator=c.operator)
        if c.value is not None:
            json_format.ParseDict(c.value, out.value)
        return out
    if isinstance(c, CelCondition):
        return actions_pb2.Condition(cel=c.expression)
    if c.kind == "not":
        return actions_pb2.Condition(negate=condition_to_pb(c.conditions[0]))
    out = actions_pb2.Condition()
    getattr(out, c.kind).extend(condition_to_pb(x) for x in c.conditions)
    return out


def trigger_from_pb(msg: actions_pb2.Trigger) -> Trigger:
    return Trigger(
        event_types=list(msg.event_types),
        conditions=[condition_from_pb(c, f"trigger.conditions[{i}]") for i, c in enumerate(msg.conditions)],
        context_filters=struct_to_dict(msg.context_filters),
        event_pattern=struct_to_dict(msg.event_pattern) if msg.HasField("event_pattern") else None,
    )


def trigger_to_pb(t: Trigger) -> actions_pb2.Trigger:
    out = actions_pb2.Trigger(event_types=t.event_types, conditions=[condition_to_pb(c) for c in t.conditions])
    if t.context_filters:
        out.context_filters.update(t.context_filters)
    if t.event_pattern is not None:
        out.event_pattern.update(t.event_pattern)
    return out


def retry_policy_from_pb(msg: actions_pb2.RetryPolicy) -> RetryPolicy:
    return RetryPolicy(
        max_retries=msg.max_retries,
        backoff=msg.backoff or "exponential",
        initial_delay_ms=msg.initial_delay_ms,
        max_delay_ms=msg.max_delay_ms or 60_000,
        jitter=msg.jitter,
        max_age_seconds=msg.max_age_seconds,
    )


def action_from_pb(msg: actions_pb2.Action, tenant: str, name: str) -> Action:
    """A client-supplied action (output-only fields ignored)."""
    action = Action(
        name=name,
        tenant=tenant,
        description=msg.description,
        trigger=trigger_from_pb(msg.trigger),
        handler=handler_from_pb(msg.handler),
        priority=_PRIORITY_FROM_PB.get(msg.priority) or Priority.NORMAL,
        execution_mode=_MODE_FROM_PB.get(msg.execution_mode) or ExecutionMode.ASYNC,
        timeout_seconds=msg.timeout_seconds or 30.0,
        max_concurrency=msg.max_concurrency,
        tags=list(msg.tags),
    )
    if msg.HasField("retry_policy"):
        action.retry_policy = retry_policy_from_pb(msg.retry_policy)
    if msg.HasField("rate_limit"):
        action.rate_limit = RateLimit(per_minute=msg.rate_limit.per_minute, per_hour=msg.rate_limit.per_hour)
    return action


def action_to_pb(a: Action) -> actions_pb2.Action:
    rp = a.retry_policy
    return actions_pb2.Action(
        name=names.action_name(a.tenant, a.name),
        uid=a.id,
        description=a.description,
        trigger=trigger_to_pb(a.trigger),
        handler=handler_to_pb(a.handler),
        priority=_PRIORITY_TO_PB[a.priority],
        execution_mode=_MODE_TO_PB[a.execution_mode],
        timeout_seconds=a.timeout_seconds,
        retry_policy=actions_pb2.RetryPolicy(
            max_retries=rp.max_retries,
            backoff=rp.backoff,
            initial_delay_ms=rp.initial_delay_ms,
            max_delay_ms=rp.max_delay_ms,
            jitter=rp.jitter,
            max_age_seconds=rp.max_age_seconds,
        ),
        rate_limit=actions_pb2.RateLimit(per_minute=a.rate_limit.per_minute, per_hour=a.rate_limit.per_hour),
        max_concurrency=a.max_concurrency,
        enabled=a.enabled,
        tags=a.tags,
        version=a.version,
        create_time=ts(a.created_at),
        update_time=ts(a.updated_at),
    )


def action_from_stored_pb(msg: actions_pb2.Action) -> Action:
    """An action as returned by the server (client side)."""
    tenant, name = names.parse_child(msg.name, "actions")
    action = action_from_pb(msg, tenant, name)
    action.retry_policy = retry_policy_from_pb(msg.retry_policy)
    action.id, action.enabled, action.version = msg.uid, msg.enabled, msg.version
    action.created_at, action.updated_at = dt(msg.create_time), dt(msg.update_time)
    return action


UPDATABLE_ACTION_FIELDS = (
    "description",
    "trigger",
    "handler",
    "priority",
    "execution_mode",
    "timeout_seconds",
    "retry_policy",
    "rate_limit",
    "max_concurrency",
    "tags",
)


def apply_update_mask(current: Action, patch: Action, paths: Iterable[str]) -> Action:
    """``current`` with the masked fields taken from ``patch`` (every updatable field when empty)."""
    chosen = list(paths) or list(UPDATABLE_ACTION_FIELDS)
    for i, path in enumerate(chosen):
        if path not in UPDATABLE_ACTION_FIELDS:
            raise InvalidArgument.field(
                f"update_mask.paths[{i}]",
                f"{path!r} cannot be updated (updatable: {', '.join(UPDATABLE_ACTION_FIELDS)})",
            )
        setattr(current, path, getattr(patch, path))
    return current


# --- executions ----------------------------------------------------------------


def error_to_pb(e: ExecutionError | None) -> executions_pb2.ExecutionError | None:
    if e is None:
        return None
    return executions_pb2.ExecutionError(
        type=e.type, message=e.message, stack=e.stack, retryable=e.retryable, retry_after_ms=e.retry_after_ms or 0
    )


def error_from_pb(msg: Any, field: str = "error") -> ExecutionError | None:
    if not msg.HasField(field):
        return None
    e = getattr(msg, field)
    return ExecutionError(
        type=e.type, message=e.message, stack=e.stack, retryable=e.retryable, retry_after_ms=e.retry_after_ms or None
    )


def attempt_to_pb(a: Attempt) -> executions_pb2.Attempt:
    return executions_pb2.Attempt(
        number=a.number,
        runner=a.runner,
        status=_EXEC_STATUS_TO_PB[a.status],
        start_time=ts(a.started_at),
        end_time=ts(a.finished_at),
        duration_ms=a.duration_ms,
        output_json=dump_json(a.output),
        error=error_to_pb(a.error),
    )


def execution_to_pb(e: Execution, input_json: str | None = None) -> executions_pb2.Execution:
    """``input_json``: ``e.input`` already as JSON, when the caller has it."""
    return executions_pb2.Execution(
        name=names.execution_name(e.tenant, e.id),
        id=e.id,
        action=names.action_name(e.tenant, e.action_name) if e.action_name else "",
        action_version=e.action_version,
        handler_type=e.handler_type,
        event_id=e.event_id,
        status=_EXEC_STATUS_TO_PB[e.status],
        input_json=dump_json(e.input) if input_json is None else input_json,
        output_json=dump_json(e.output),
        error=error_to_pb(e.error),
        idempotency_key=e.idempotency_key,
        correlation_id=e.correlation_id,
        causation_id=e.causation_id,
        parent_execution=names.execution_name(e.tenant, e.parent_execution_id) if e.parent_execution_id else "",
        priority=_PRIORITY_TO_PB[e.priority],
        mode=_MODE_TO_PB[e.mode],
        attempt_count=e.attempt_count,
        attempts=[attempt_to_pb(a) for a in e.attempts],
        create_time=ts(e.created_at),
        update_time=ts(e.updated_at),
        start_time=ts(e.started_at),
        end_time=ts(e.finished_at),
        next_attempt_time=ts(e.next_attempt_at if e.status in _DUE_STATUSES else None),
        action_id=e.action_id,
        handler_version=e.handler_version,
        replay_of=e.replay_of,
    )


#: statuses whose ``next_attempt_at`` says when the execution goes on
_DUE_STATUSES = frozenset({ExecutionStatus.SCHEDULED, ExecutionStatus.WAITING})


def execution_from_pb(msg: executions_pb2.Execution) -> Execution:
    """Client side: the domain execution of a server response."""
    tenant, _ = names.parse_child(msg.name, "executions")
    action = msg.action.rsplit("/", 1)[-1] if msg.action else ""
    return Execution(
        id=msg.id,
        tenant=tenant,
        action_id=msg.action_id,
        action_name=action,
        action_version=msg.action_version,
        handler_type=msg.handler_type,
        handler_version=msg.handler_version,
        replay_of=msg.replay_of,
        input=parse_json(msg.input_json, "input_json"),
        event_id=msg.event_id,
        status=_EXEC_STATUS_FROM_PB.get(msg.status, ExecutionStatus.PENDING),
        output=parse_json(msg.output_json, "output_json"),
        error=error_from_pb(msg),
        idempotency_key=msg.idempotency_key,
        correlation_id=msg.correlation_id,
        causation_id=msg.causation_id,
        parent_execution_id=msg.parent_execution.rsplit("/", 1)[-1] if msg.parent_execution else "",
        priority=_PRIORITY_FROM_PB.get(msg.priority) or Priority.NORMAL,
        mode=_MODE_FROM_PB.get(msg.mode) or ExecutionMode.ASYNC,
        attempt_count=msg.attempt_count,
        created_at=dt(msg.create_time),
        updated_at=dt(msg.update_time),
        started_at=opt_dt(msg, "start_time"),
        finished_at=opt_dt(msg, "end_time"),
        next_attempt_at=opt_dt(msg, "next_attempt_time"),
        attempts=[
            Attempt(
                number=a.number,
                runner=a.runner,
                status=_EXEC_STATUS_FROM_PB.get(a.status, ExecutionStatus.RUNNING),
                started_at=dt(a.start_time),
                finished_at=opt_dt(a, "end_time"),
                output=parse_json(a.output_json, "output_json"),
                error=error_from_pb(a),
            )
            for a in msg.attempts
        ],
    )


def handler_from_pb(msg: actions_pb2.Handler) -> HandlerSpec:
    return HandlerSpec(type=msg.type, config=struct_to_dict(msg.config), version=msg.version)


def handler_to_pb(h: HandlerSpec) -> actions_pb2.Handler:
    return actions_pb2.Handler(type=h.type, config=dict_to_struct(h.config), version=h.version)


def inline_from_pb(msg: executions_pb2.InlineAction) -> InlineAction:
    return InlineAction(
        handler=handler_from_pb(msg.handler),
        timeout_seconds=msg.timeout_seconds or 30.0,
    )


def update_to_pb(u: ExecutionUpdate, token: str) -> executions_pb2.ExecutionUpdate:
    return executions_pb2.ExecutionUpdate(
        kind=_KIND_TO_PB[u.kind],
        execution=names.execution_name(u.tenant, u.execution_id) if u.execution_id else "",
        execution_id=u.execution_id,
        action=names.action_name(u.tenant, u.action_name) if u.action_name else "",
        event_id=u.event_id,
        correlation_id=u.correlation_id,
        status=_EXEC_STATUS_TO_PB[u.status] if u.status else executions_pb2.EXECUTION_STATUS_UNSPECIFIED,
        attempt=u.attempt,
        message=u.message,
        progress=u.progress,
        output_json=dump_json(u.output),
        error=error_to_pb(u.error),
        time=ts(u.time),
        resume_token=token,
        step=u.step,
    )


def update_from_pb(msg: executions_pb2.ExecutionUpdate, tenant: str) -> ExecutionUpdate:
    return ExecutionUpdate(
        tenant=tenant,
        kind=_KIND_FROM_PB.get(msg.kind, UpdateKind.LOG),
        execution_id=msg.execution_id,
        action_name=msg.action.rsplit("/", 1)[-1] if msg.action else "",
        event_id=msg.event_id,
        correlation_id=msg.correlation_id,
        status=_EXEC_STATUS_FROM_PB.get(msg.status),
        attempt=msg.attempt,
        message=msg.message,
        progress=msg.progress,
        output=parse_json(msg.output_json, "output_json"),
        error=error_from_pb(msg),
        time=dt(msg.time),
        step=msg.step,
    )


# --- explanations (TestAction) ---------------------------------------------------


def test_event_from_pb(msg: actions_pb2.TestEvent, tenant: str) -> Event:
    check_lengths(msg, "event", EVENT_FIELD_LIMITS)
    return Event(
        id="",
        tenant=tenant,
        type=msg.type,
        data=parse_json(msg.data_json, "event.data_json", want_object=True),
        source=msg.source,
        subject=msg.subject,
        metadata=parse_json(msg.metadata_json, "event.metadata_json", want_object=True),
        correlation_id=msg.correlation_id,
    )


def condition_outcome_to_pb(c: ConditionExplanation) -> actions_pb2.ConditionOutcome:
    return actions_pb2.ConditionOutcome(
        location=c.location,
        kind=c.kind,
        matched=c.matched,
        field=c.field,
        operator=c.operator,
        expected_json=dump_json(jsonable(c.expected)),
        actual_json=dump_json(jsonable(c.actual)) if c.present else "",
        present=c.present,
        error=c.error,
        children=[condition_outcome_to_pb(x) for x in c.children],
    )


def explanation_to_pb(tenant: str, e: ActionExplanation) -> actions_pb2.ActionTestResult:
    return actions_pb2.ActionTestResult(
        action=names.action_name(tenant, e.action),
        matched=e.matched,
        reason=e.reason,
        enabled=e.enabled,
        priority=_PRIORITY_TO_PB[Priority.parse(e.priority)],
        patterns=[actions_pb2.PatternOutcome(pattern=p.pattern, matched=p.matched) for p in e.patterns],
        conditions=[condition_outcome_to_pb(c) for c in e.conditions],
        error=e.error,
    )
