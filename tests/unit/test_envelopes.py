"""Envelope reads of claimed executions, gathered into one store read, over the in-memory store
recording its reads."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from neoactions.domain.errors import NotFound, Unavailable
from neoactions.domain.ids import new_id
from neoactions.domain.model import Event, Tenant
from neoactions.server.engine.envelopes import EnvelopeLoader
from neoactions.server.persistence.memory import MemoryStore


class _Store(MemoryStore):
    """Each ``get_events`` takes a little while and is recorded by the names of its events;
    ``down`` makes the database unreachable."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[list[str]] = []
        self.down = False
        self.ids: dict[str, str] = {}
        self.names: dict[str, str] = {}

    def id_of(self, name: str) -> str:
        if name not in self.ids:
            self.ids[name] = new_id()
            self.names[self.ids[name]] = name
        return self.ids[name]

    async def get_events(self, tenant: str, event_ids: Sequence[str]) -> dict[str, Event]:
        await asyncio.sleep(0.01)
        if self.down:
            raise Unavailable("database down")
        self.reads.append([self.names[i] for i in event_ids])
        return await super().get_events(tenant, event_ids)


async def _store(*known: str) -> _Store:
    store = _Store()
    await store.open()
    await store.create_tenant(Tenant("t"))
    events = [Event(id=store.id_of(n), tenant="t", type="orders.created", data={"i": n}) for n in known]
    await store.append("t", events, [])
    return store


async def test_reads_wanted_meanwhile_share_one_query_and_one_answer_per_event() -> None:
    store = await _store("a", "b", "c")
    loader = EnvelopeLoader(store)
    first = await loader.load("t", store.id_of("a"))
    assert first["data"] == {"i": "a"} and first["type"] == "orders.created"
    got = await asyncio.gather(*(loader.load("t", store.id_of(n)) for n in ["b", "c", "b", "a"]))
    assert [g["id"] for g in got] == [store.id_of(n) for n in ["b", "c", "b", "a"]]
    assert store.reads == [["a"], ["b", "c", "a"]]


async def test_an_unknown_event_and_a_failed_read_reach_their_callers() -> None:
    store = await _store("a")
    loader = EnvelopeLoader(store)
    results = await asyncio.gather(
        loader.load("t", store.id_of("a")), loader.load("t", store.id_of("gone")), return_exceptions=True
    )
    assert isinstance(results[0], dict) and isinstance(results[1], NotFound)
    store.down = True
    with pytest.raises(Unavailable):
        await loader.load("t", store.id_of("a"))


async def test_one_caller_leaving_does_not_cancel_the_read_for_the_others() -> None:
    store = await _store("a")
    loader = EnvelopeLoader(store)
    leaving = asyncio.create_task(loader.load("t", store.id_of("a")))
    staying = asyncio.create_task(loader.load("t", store.id_of("a")))
    await asyncio.sleep(0)
    leaving.cancel()
    assert (await staying)["id"] == store.id_of("a")
