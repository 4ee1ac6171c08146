"""EventService: publish, get and list events."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from neoactions.domain import convert, names
from neoactions.domain.errors import InvalidArgument, NeoActionsError
from neoactions.domain.model import Event
from neoactions.domain.status import status_code
from neoactions.server.api.callers import caller_of
from neoactions.server.api.errors import failure_of, streaming, unary
from neoactions.server.engine import Engine, Published
from neoactions.server.store import EventFilter
from neoactions.v1 import events_pb2, events_pb2_grpc


class EventServicer(events_pb2_grpc.EventServiceServicer):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._max_bytes = engine.settings.max_event_bytes
        self._max_batch = engine.settings.max_batch_events

    def _event(self, msg: events_pb2.Event, tenant: str, path: str) -> Event:
        size = len(msg.data_json) + len(msg.metadata_json)
        if size > self._max_bytes:
            raise InvalidArgument.field(
                f"{path}.data_json",
                f"event is {size} bytes; the limit is {self._max_bytes}",
                reason="PAYLOAD_TOO_LARGE",
            )
        return convert.event_from_pb(msg, tenant, path)

    @unary
    async def PublishEvent(
        self, request: events_pb2.PublishEventRequest, context: grpc.aio.ServicerContext
    ) -> events_pb2.PublishEventResponse:
        tenant = names.parse_tenant(request.parent)
        event = self._event(request.event, tenant, "event")
        if not event.idempotency_key and request.request_id:
            event.idempotency_key = request.request_id
        [published] = await self._engine.publish(caller_of(context), tenant, [event], wait=request.wait)
        return _response(published)

    @unary
    async def PublishEvents(
        self, request: events_pb2.PublishEventsRequest, context: grpc.aio.ServicerContext
    ) -> events_pb2.PublishEventsResponse:
        tenant = names.parse_tenant(request.parent)
        if not request.events:
            raise InvalidArgument.field("events", "at least one event is required")
        if len(request.events) > self._max_batch:
            raise InvalidArgument.field("events", f"at most {self._max_batch} events per batch")
        events = [self._event(m, tenant, f"events[{i}]") for i, m in enumerate(request.events)]
        published = await self._engine.publish(caller_of(context), tenant, events)
        return events_pb2.PublishEventsResponse(results=[_response(p) for p in published])

    @unary
    async def GetEvent(
        self, request: events_pb2.GetEventRequest, context: grpc.aio.ServicerContext
    ) -> events_pb2.Event:
        tenant, event_id = names.parse_child(request.name, "events")
        return convert.event_to_pb(await self._engine.get_event(caller_of(context), tenant, event_id))

    @unary
    async def ListEvents(
        self, request: events_pb2.ListEventsRequest, context: grpc.aio.ServicerContext
    ) -> events_pb2.ListEventsResponse:
        tenant = names.parse_tenant(request.parent)
        flt = EventFilter(
            type_pattern=request.type_pattern,
            correlation_id=request.correlation_id,
            status=convert.event_status_from_pb(request.status),
            start_time=convert.opt_dt(request, "start_time"),
            end_time=convert.opt_dt(request, "end_time"),
        )
        page = await self._engine.list_events(caller_of(context), tenant, flt, request.page_size, request.page_token)
        return events_pb2.ListEventsResponse(
            events=[convert.event_to_pb(e) for e in page.items], next_page_token=page.next_page_token
        )

    @streaming
    async def StreamEvents(
        self, request_iterator: AsyncIterator[events_pb2.StreamEventsRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[events_pb2.StreamEventsResponse]:
        requests = aiter(request_iterator)
        first = await anext(requests, None)
        if first is None:
            return
        tenant = names.parse_tenant(first.parent)

        async def batches() -> AsyncIterator[list[Event] | Exception]:
            request: events_pb2.StreamEventsRequest | None = first
            while request is not None:
                try:
                    yield self._stream_batch(request, tenant)
                except NeoActionsError as exc:
                    yield exc
                request = await anext(requests, None)

        answers = self._engine.publish_stream(caller_of(context), tenant, batches())
        sequence = 0
        try:
            async for answer in answers:
                yield _stream_response(sequence, answer, context)
                sequence += 1
        finally:
            await answers.aclose()

    def _stream_batch(self, request: events_pb2.StreamEventsRequest, tenant: str) -> list[Event]:
        if request.parent and request.parent != f"tenants/{tenant}":
            raise InvalidArgument.field("parent", "one stream publishes to one tenant")
        if not request.events:
            raise InvalidArgument.field("events", "at least one event is required")
        if len(request.events) > self._max_batch:
            raise InvalidArgument.field("events", f"at most {self._max_batch} events per request")
        return [self._event(m, tenant, f"events[{i}]") for i, m in enumerate(request.events)]


def _stream_response(
    sequence: int, answer: list[Published] | Exception, context: grpc.aio.ServicerContext
) -> events_pb2.StreamEventsResponse:
    if isinstance(answer, Exception):
        error = failure_of("EventService.StreamEvents", answer)
        return events_pb2.StreamEventsResponse(
            sequence=sequence,
            error_code=status_code(error).value[0],
            error_reason=error.reason,
            error_message=error.message,
        )
    return events_pb2.StreamEventsResponse(
        sequence=sequence,
        event_ids=[p.event.id for p in answer],
        duplicates=[p.duplicate for p in answer],
    )


def _response(p: Published) -> events_pb2.PublishEventResponse:
    event = convert.event_to_pb(p.event)
    # a matched execution's input is the event's data: written as JSON once
    return events_pb2.PublishEventResponse(
        event=event,
        executions=[
            convert.execution_to_pb(e, event.data_json if e.input is p.event.data else None) for e in p.executions
        ],
        duplicate=p.duplicate,
    )
