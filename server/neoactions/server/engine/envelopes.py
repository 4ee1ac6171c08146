"""The event envelopes of executions claimed without one, read many to a query.

An execution published in this process carries its event's envelope in memory. One
claimed from the store (a retry, work another process published, work recovered
after a crash) needs its event read back for templates and the runner's context.
Reads wanted while one is under way are gathered into the next: one query for every
event asked for meanwhile (a lone read goes at once), and callers asking for the
same event share its answer.
"""

from __future__ import annotations

import asyncio

from neoactions.domain.errors import NotFound
from neoactions.domain.model import JSONObject
from neoactions.server.store import EventStore

#: at most this many events per query
_MAX_BATCH = 1000


class EnvelopeLoader:
    def __init__(self, store: EventStore) -> None:
        self._store = store
        self._wanted: dict[str, dict[str, asyncio.Future[JSONObject]]] = {}
        self._reading: dict[str, asyncio.Task[None]] = {}

    async def load(self, tenant: str, event_id: str) -> JSONObject:
        """The envelope of event ``event_id``; ``NotFound`` when it is not stored."""
        wanted = self._wanted.setdefault(tenant, {})
        answer = wanted.get(event_id)
        if answer is None:
            answer = wanted[event_id] = asyncio.get_running_loop().create_future()
        if tenant not in self._reading:
            self._reading[tenant] = asyncio.create_task(self._read(tenant), name=f"envelopes-{tenant}")
        # shared by every caller of this event: one caller leaving must not cancel it for the others
        return await asyncio.shield(answer)

    async def _read(self, tenant: str) -> None:
        try:
            while wanted := self._wanted.pop(tenant, None):
                items = list(wanted.items())
                batch, rest = dict(items[:_MAX_BATCH]), dict(items[_MAX_BATCH:])
                if rest:
                    self._wanted.setdefault(tenant, {}).update(rest)
                try:
                    events = await self._store.get_events(tenant, list(batch))
                except Exception as exc:
                    for answer in batch.values():
                        _settle(answer, exc)
                    continue
                for event_id, answer in batch.items():
                    event = events.get(event_id)
                    if event is not None:
                        _settle(answer, event.envelope())
                    else:
                        _settle(answer, NotFound(f"event {event_id!r} not found", reason="EVENT_NOT_FOUND"))
        finally:
            self._reading.pop(tenant, None)


def _settle(answer: asyncio.Future[JSONObject], outcome: JSONObject | Exception) -> None:
    if answer.done():
        return
    if isinstance(outcome, Exception):
        answer.set_exception(outcome)
        answer.exception()  # retrieved: nobody may be waiting any more
    else:
        answer.set_result(outcome)


__all__ = ["EnvelopeLoader"]
