"""HTTP ingest: ``POST /v1/tenants/{tenant}/events`` (CloudEvents HTTP binding, API key) and
``POST /v1/webhooks/{source}`` (signed deliveries). Both publish through
:meth:`Engine.publish <neoactions.server.engine.Engine.publish>` with the limits, validation,
deduplication and durability of ``PublishEvents``; errors are RFC 9457 problems."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from neoactions.domain import convert, names
from neoactions.domain.errors import InvalidArgument, NeoActionsError, NotFound, Unauthenticated
from neoactions.domain.model import Event
from neoactions.server.access import Caller, Role
from neoactions.server.engine import Engine, Published
from neoactions.server.web import cloudevents_http
from neoactions.server.web.problems import problem, problem_of
from neoactions.server.web.webhooks import WebhookSource, delivery_event, verify
from neoactions.v1 import events_pb2

log = logging.getLogger(__name__)

#: the largest request body of a batch (the gRPC server's message limit)
MAX_BATCH_BODY_BYTES = 32 * 1024 * 1024
#: room for a single event's envelope attributes beside its data and metadata
_ENVELOPE_BYTES = 64 * 1024
REQUEST_ID = "x-request-id"
_MAX_REQUEST_ID = 128

Handler = Callable[[Any, Request], Awaitable[Response]]


def problems(handler: Handler) -> Handler:
    """Every error of ``handler`` as a problem response."""

    @functools.wraps(handler)
    async def wrapped(self: Any, request: Request) -> Response:
        try:
            return await handler(self, request)
        except NeoActionsError as exc:
            return problem_of(exc, request.url.path)
        except Exception:
            log.exception("HTTP %s %s failed", request.method, request.url.path)
            return problem(500, "INTERNAL", "internal error", instance=request.url.path)

    return wrapped


def request_id(request: Request) -> str:
    return request.headers.get(REQUEST_ID, "")[:_MAX_REQUEST_ID]


def bearer(authorization: str) -> str:
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("send an API key: Authorization: Bearer <key>", reason="API_KEY_MISSING")
    return token.strip()


async def authenticate(engine: Engine, token: str, rid: str) -> Caller:
    """The caller holding ``token`` (``Unauthenticated`` for a missing, wrong or revoked key)."""
    return await engine.authenticate(token, rid)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed ``limit`` bytes."""
    too_large = InvalidArgument.field("body", f"the request body exceeds {limit} bytes", reason="PAYLOAD_TOO_LARGE")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def published_json(p: Published) -> dict[str, Any]:
    e = p.event
    return {
        "event": {
            "name": names.event_name(e.tenant, e.id),
            "id": e.id,
            "type": e.type,
            "source": e.source,
            "time": e.time.isoformat(),
        },
        "duplicate": p.duplicate,
        "executions": [{"id": x.id, "action": x.action_name, "status": x.status.value} for x in p.executions],
    }


class Gateway:
    """The ingest endpoints over one engine."""

    def __init__(self, engine: Engine, sources: dict[str, WebhookSource]) -> None:
        self._engine = engine
        self._sources = sources
        self._max_event = engine.settings.max_event_bytes
        self._max_batch = engine.settings.max_batch_events

    def _event(self, msg: events_pb2.Event, tenant: str, path: str) -> Event:
        # the checks of EventService.PublishEvents, in its order
        size = len(msg.data_json) + len(msg.metadata_json)
        if size > self._max_event:
            raise InvalidArgument.field(
                f"{path}.data" if path else "data",
                f"event is {size} bytes; the limit is {self._max_event}",
                reason="PAYLOAD_TOO_LARGE",
            )
        return convert.event_from_pb(msg, tenant, path or "event")

    @problems
    async def ingest(self, request: Request) -> Response:
        tenant = names.parse_tenant("tenants/" + request.path_params["tenant"], "tenant")
        caller = await authenticate(self._engine, bearer(request.headers.get("authorization", "")), request_id(request))
        batch = cloudevents_http.media_type(request.headers.get("content-type", "")) == cloudevents_http.BATCH
        body = await read_body(request, MAX_BATCH_BODY_BYTES if batch else self._max_event + _ENVELOPE_BYTES)
        messages, batch = cloudevents_http.parse(request.headers, body, self._max_batch)
        events = [self._event(m, tenant, f"[{i}]" if batch else "") for i, m in enumerate(messages)]
        published = await self._engine.publish(caller, tenant, events)
        return JSONResponse({"results": [published_json(p) for p in published]}, status_code=202)

    @problems
    async def webhook(self, request: Request) -> Response:
        name = request.path_params["source"]
        source = self._sources.get(name)
        if source is None:
            raise NotFound(f"no webhook source {name[:64]!r} is configured", reason="WEBHOOK_SOURCE_NOT_FOUND")
        body = await read_body(request, self._max_event + _ENVELOPE_BYTES)
        delivery = verify(source, request.headers, body)
        msg = delivery_event(source, request.headers, body, delivery)
        event = self._event(msg, source.tenant, "")
        # the signature is the sender's credential: it may publish into its source's tenant, nothing else
        caller = Caller(
            principal=f"webhook:{source.name}",
            home_tenant=source.tenant,
            request_id=delivery[:_MAX_REQUEST_ID],
            principal_name=f"webhook {source.name}",
            role=Role.PUBLISHER,
        )
        [published] = await self._engine.publish(caller, source.tenant, [event])
        return JSONResponse(published_json(published), status_code=202)


__all__ = ["Gateway", "authenticate", "bearer", "problems", "published_json", "read_body", "request_id"]
