"""Publishing: validate → store the event and its matched executions in one
transaction → announce → dispatch (``sync`` waited on when asked)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from neoactions.server.bus import UpdateBus
from neoactions.server.engine.catalog import ActionCatalog
from neoactions.server.engine.dispatcher import Dispatcher, Job
from neoactions.server.errors import InvalidArgument
from neoactions.server.ids import new_id
from neoactions.server.matching import Matcher, validate_event_type
from neoactions.server.model import (
    Action,
    Event,
    EventStatus,
    Execution,
    ExecutionMode,
    ExecutionStatus,
    ExecutionUpdate,
    UpdateKind,
    utcnow,
)
from neoactions.server.store import Store


@dataclass(slots=True)
class Published:
    event: Event
    executions: list[Execution]


class Publisher:
    def __init__(
        self, store: Store, matcher: Matcher, catalog: ActionCatalog, dispatcher: Dispatcher, bus: UpdateBus
    ) -> None:
        self._store = store
        self._matcher = matcher
        self._catalog = catalog
        self._dispatcher = dispatcher
        self._bus = bus

    async def publish(self, tenant: str, events: Sequence[Event], wait: bool = False) -> list[Published]:
        """Store ``events`` (one tenant) and schedule what they match.

        With ``wait``, returns after the matched ``sync`` executions have finished.
        """
        for i, event in enumerate(events):
            _validate(event, f"events[{i}]" if len(events) > 1 else "event")
        await self._catalog.ensure_loaded(tenant)
        results: list[Published] = []
        executions: list[Execution] = []
        for event in events:
            event.tenant = tenant
            event.id = new_id()
            event.received_at = utcnow()
            matched = self._matcher.match(tenant, event)
            planned = [_plan(event, action) for action in matched]
            event.status = EventStatus.PROCESSING if planned else EventStatus.COMPLETED
            executions.extend(planned)
            results.append(Published(event, planned))
        await self._store.append(tenant, events, executions)

        waits: list[asyncio.Future[Execution]] = []
        loop = asyncio.get_running_loop()
        for published in results:
            event = published.event
            self._bus.publish(
                ExecutionUpdate(
                    tenant=tenant,
                    kind=UpdateKind.EVENT_ACCEPTED,
                    event_id=event.id,
                    correlation_id=event.correlation_id,
                    message=f"{event.type} matched {len(published.executions)} action(s)",
                )
            )
            envelope = event.envelope()
            for ex in published.executions:
                self._bus.publish(
                    ExecutionUpdate(
                        tenant=tenant,
                        kind=UpdateKind.SCHEDULED,
                        execution_id=ex.id,
                        action_name=ex.action_name,
                        event_id=ex.event_id,
                        correlation_id=ex.correlation_id,
                        status=ex.status,
                    )
                )
                job = Job(ex, envelope)
                if wait and ex.mode is ExecutionMode.SYNC:
                    job.done = loop.create_future()
                    waits.append(job.done)
                self._dispatcher.submit(job)
        if waits:
            await asyncio.gather(*waits)
        return results


def _validate(event: Event, path: str) -> None:
    validate_event_type(event.type, f"{path}.type")
    if not isinstance(event.data, dict):
        raise InvalidArgument.field(f"{path}.data_json", "must be a JSON object", reason="INVALID_EVENT_DATA")
    if not isinstance(event.metadata, dict):
        raise InvalidArgument.field(f"{path}.metadata_json", "must be a JSON object", reason="INVALID_EVENT_DATA")


def _plan(event: Event, action: Action) -> Execution:
    execution_id = new_id()
    return Execution(
        id=execution_id,
        tenant=event.tenant,
        action_id=action.id,
        action_name=action.name,
        action_version=action.version,
        handler_type=action.handler.type,
        input=event.data,
        event_id=event.id,
        status=ExecutionStatus.PENDING,
        idempotency_key=execution_id,
        correlation_id=event.correlation_id or event.id,
        causation_id=event.id,
        priority=action.priority,
        mode=action.execution_mode,
    )


__all__ = ["Published", "Publisher"]
