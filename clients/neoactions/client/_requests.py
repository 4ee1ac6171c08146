"""Request building and response reading shared by the async and the sync client.

Everything here is pure (no I/O), so both clients are thin: build a request,
call the stub, convert the response with ``neoactions.domain.convert``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeAlias

from neoactions.client.declarative import ActionDocument, parse_action
from neoactions.client.results import ActionTest, PublishResult, StreamedUpdate
from neoactions.domain import convert, names
from neoactions.domain.errors import InvalidArgument
from neoactions.domain.model import (
    JSON,
    Action,
    Event,
    EventStatus,
    ExecutionStatus,
    HandlerSpec,
    InlineAction,
)
from neoactions.v1 import actions_pb2, events_pb2, executions_pb2

#: an action to save: a domain :class:`Action`, a parsed :class:`ActionDocument`,
#: or a mapping in the YAML form of the declarative file
ActionInput: TypeAlias = Action | ActionDocument | Mapping[str, Any]
#: an event for ``publish_many``: a domain :class:`Event` or a mapping with its fields
EventInput: TypeAlias = Event | Mapping[str, Any]
#: what ``execute`` runs: a stored action's name, or an inline handler
#: (``{"type": "python", "config": {...}}``, a :class:`HandlerSpec` or an :class:`InlineAction`)
ExecuteTarget: TypeAlias = str | HandlerSpec | InlineAction | Mapping[str, Any]

_EVENT_KEYS = frozenset(
    {
        "type",
        "data",
        "metadata",
        "source",
        "subject",
        "aggregate_type",
        "aggregate_id",
        "time",
        "correlation_id",
        "causation_id",
        "idempotency_key",
    }
)


def parent(tenant: str) -> str:
    return names.tenant_name(tenant)


def action_resource(tenant: str, name: str) -> str:
    """An action's resource name; a full ``tenants/.../actions/...`` name passes through."""
    return name if name.startswith("tenants/") else names.action_name(tenant, name)


def event_resource(tenant: str, event_id: str) -> str:
    return event_id if event_id.startswith("tenants/") else names.event_name(tenant, event_id)


def execution_resource(tenant: str, execution_id: str) -> str:
    if execution_id.startswith("tenants/"):
        return execution_id
    return names.execution_name(tenant, execution_id)


# --- events ----------------------------------------------------------------------


def event_pb(
    type: str,
    data: Mapping[str, Any],
    *,
    metadata: Mapping[str, Any] | None = None,
    source: str = "",
    subject: str = "",
    aggregate_type: str = "",
    aggregate_id: str = "",
    time: datetime | None = None,
    correlation_id: str = "",
    causation_id: str = "",
    idempotency_key: str = "",
) -> events_pb2.Event:
    """A publishable event."""
    return events_pb2.Event(
        type=type,
        data_json=convert.encode_json(dict(data), "data"),
        metadata_json=convert.encode_json(dict(metadata), "metadata") if metadata else "",
        source=source,
        subject=subject,
        aggregate_type=aggregate_type,
        aggregate_id=aggregate_id,
        time=convert.ts(time),
        correlation_id=correlation_id,
        causation_id=causation_id,
        idempotency_key=idempotency_key,
    )


def event_input_pb(event: EventInput, path: str) -> events_pb2.Event:
    if isinstance(event, Event):
        return event_pb(
            event.type,
            event.data,
            metadata=event.metadata,
            source=event.source,
            subject=event.subject,
            aggregate_type=event.aggregate_type,
            aggregate_id=event.aggregate_id,
            time=event.time,
            correlation_id=event.correlation_id,
            causation_id=event.causation_id,
            idempotency_key=event.idempotency_key,
        )
    unknown = sorted(set(event) - _EVENT_KEYS)
    if unknown:
        raise InvalidArgument.field(
            f"{path}.{unknown[0]}", f"unknown event field (allowed: {', '.join(sorted(_EVENT_KEYS))})"
        )
    if "type" not in event:
        raise InvalidArgument.field(f"{path}.type", "an event needs a type")
    fields = {k: v for k, v in event.items() if k not in ("type", "data")}
    return event_pb(str(event["type"]), event.get("data") or {}, **fields)


def publish_result(resp: events_pb2.PublishEventResponse) -> PublishResult:
    return PublishResult(
        event=convert.event_from_stored_pb(resp.event),
        executions=[convert.execution_from_pb(e) for e in resp.executions],
        duplicate=resp.duplicate,
    )


def list_events_request(
    tenant: str,
    *,
    type_pattern: str,
    correlation_id: str,
    status: EventStatus | str | None,
    start_time: datetime | None,
    end_time: datetime | None,
    page_size: int,
    page_token: str,
) -> events_pb2.ListEventsRequest:
    return events_pb2.ListEventsRequest(
        parent=parent(tenant),
        page_size=page_size,
        page_token=page_token,
        type_pattern=type_pattern,
        correlation_id=correlation_id,
        status=event_status_pb(status),
        start_time=convert.ts(start_time),
        end_time=convert.ts(end_time),
    )


def event_status_pb(status: EventStatus | str | None) -> str | None:
    """The protobuf enum name of an event status filter (``None``: any)."""
    if status is None or status == "":
        return None
    return f"EVENT_STATUS_{EventStatus(status).name}"


# --- actions ---------------------------------------------------------------------


def action_message(action: ActionInput, tenant: str) -> tuple[str, actions_pb2.Action]:
    """(name, protobuf) of an action to create or update; ``name`` is set to its resource name."""
    if isinstance(action, Action):
        message = convert.action_to_pb(action)
        name = action.name
    else:
        doc = action if isinstance(action, ActionDocument) else parse_action(action)
        message = actions_pb2.Action()
        message.CopyFrom(doc.action)
        name = doc.name
    message.name = action_resource(tenant, name)
    return name, message


def desired_action(doc: ActionDocument, tenant: str) -> Action:
    """The domain action a document describes (as the server would read it)."""
    return convert.action_from_pb(doc.action, tenant, doc.name)


def changed_fields(desired: Action, current: Action) -> list[str]:
    """The spec fields in which two actions differ (empty: same spec)."""
    want, have = desired.spec(), current.spec()
    return [key for key in want if want[key] != have.get(key)]


# --- executions ------------------------------------------------------------------


def execution_status_pb(status: ExecutionStatus | str | None) -> str | None:
    """The protobuf enum name of an execution status filter (``None``: any)."""
    if status is None or status == "":
        return None
    return f"EXECUTION_STATUS_{ExecutionStatus(status).name}"


def inline_pb(
    target: HandlerSpec | InlineAction | Mapping[str, Any], timeout_seconds: float
) -> executions_pb2.InlineAction:
    if isinstance(target, InlineAction):
        handler, timeout = target.handler, target.timeout_seconds
    elif isinstance(target, HandlerSpec):
        handler, timeout = target, timeout_seconds
    else:
        unknown = sorted(set(target) - {"type", "config", "timeout_seconds"})
        if unknown or not isinstance(target.get("type"), str):
            raise InvalidArgument.field(
                "inline", "an inline handler is {type, config[, timeout_seconds]}", reason="INVALID_HANDLER"
            )
        handler = HandlerSpec(type=target["type"], config=dict(target.get("config") or {}))
        timeout = float(target.get("timeout_seconds", timeout_seconds))
    return executions_pb2.InlineAction(
        handler=actions_pb2.Handler(type=handler.type, config=convert.dict_to_struct(handler.config)),
        timeout_seconds=timeout,
    )


def execute_request(
    tenant: str,
    target: ExecuteTarget,
    input: JSON,
    *,
    correlation_id: str,
    idempotency_key: str,
    timeout_seconds: float,
) -> executions_pb2.ExecuteRequest:
    request = executions_pb2.ExecuteRequest(
        parent=parent(tenant),
        input_json=convert.encode_json(input if input is not None else {}, "input"),
        correlation_id=correlation_id,
        idempotency_key=idempotency_key,
    )
    if isinstance(target, str):
        request.action = target
    else:
        request.inline.CopyFrom(inline_pb(target, timeout_seconds))
    return request


def list_actions_request(
    tenant: str,
    *,
    enabled: bool | None,
    handler_type: str,
    tag: str,
    search: str,
    page_size: int,
    page_token: str,
) -> actions_pb2.ListActionsRequest:
    request = actions_pb2.ListActionsRequest(
        parent=parent(tenant),
        handler_type=handler_type,
        tag=tag,
        search=search,
        page_size=page_size,
        page_token=page_token,
    )
    if enabled is not None:
        request.enabled = enabled
    return request


def list_executions_request(
    tenant: str,
    *,
    action: str,
    status: ExecutionStatus | str | None,
    event_id: str,
    correlation_id: str,
    start_time: datetime | None,
    end_time: datetime | None,
    page_size: int,
    page_token: str,
) -> executions_pb2.ListExecutionsRequest:
    return executions_pb2.ListExecutionsRequest(
        parent=parent(tenant),
        page_size=page_size,
        page_token=page_token,
        action=action,
        status=execution_status_pb(status),
        event_id=event_id,
        correlation_id=correlation_id,
        start_time=convert.ts(start_time),
        end_time=convert.ts(end_time),
    )


def watch_request(
    tenant: str,
    *,
    action: str,
    event_id: str,
    correlation_id: str,
    execution_id: str,
    resume_token: str,
) -> executions_pb2.WatchExecutionsRequest:
    return executions_pb2.WatchExecutionsRequest(
        parent=parent(tenant),
        action=action,
        event_id=event_id,
        correlation_id=correlation_id,
        execution_id=execution_id,
        resume_token=resume_token,
    )


def streamed(msg: executions_pb2.ExecutionUpdate, tenant: str) -> StreamedUpdate:
    return StreamedUpdate.of(convert.update_from_pb(msg, tenant), msg.resume_token)


__all__ = [
    "ActionInput",
    "EventInput",
    "ExecuteTarget",
]


def _outcome(c: actions_pb2.ConditionOutcome) -> dict[str, Any]:
    out: dict[str, Any] = {"location": c.location, "kind": c.kind, "matched": c.matched}
    if c.field:
        out.update(field=c.field, operator=c.operator, present=c.present)
        out["expected"] = convert.parse_json(c.expected_json, "expected_json")
        out["actual"] = convert.parse_json(c.actual_json, "actual_json")
    if c.error:
        out["error"] = c.error
    if c.children:
        out["children"] = [_outcome(x) for x in c.children]
    return out


def test_action_request(
    tenant: str, type: str, data: Any, metadata: Any, source: str, action: str | None, execute: bool
) -> actions_pb2.TestActionRequest:
    return actions_pb2.TestActionRequest(
        parent=parent(tenant),
        event=actions_pb2.TestEvent(
            type=type,
            source=source,
            data_json=convert.encode_json(data if data is not None else {}, "data"),
            metadata_json=convert.encode_json(metadata, "metadata") if metadata else "",
        ),
        action=action or "",
        execute=execute,
    )


def action_tests(resp: actions_pb2.TestActionResponse) -> list[ActionTest]:
    return [
        ActionTest(
            action=r.action.rsplit("/", 1)[-1],
            matched=r.matched,
            reason=r.reason,
            enabled=r.enabled,
            priority=actions_pb2.Priority.Name(r.priority).removeprefix("PRIORITY_").lower(),
            patterns=[{"pattern": p.pattern, "matched": p.matched} for p in r.patterns],
            conditions=[_outcome(c) for c in r.conditions],
            error=r.error,
            execution_id=r.execution.rsplit("/", 1)[-1] if r.execution else "",
            execution_status=r.execution_status,
            output=convert.parse_json(r.output_json, "output_json"),
        )
        for r in resp.results
    ]
