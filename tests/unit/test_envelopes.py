"""Envelope reads of claimed executions, gathered into one store read, over a store fake."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from neoactions.server.engine.envelopes import EnvelopeLoader
from neoactions.server.errors import NotFound, Unavailable
from neoactions.server.model import Event


class _Store:
    def __init__(self, known: Sequence[str]) -> None:
        self.known = set(known)
        self.reads: list[list[str]] = []
        self.down = False

    async def get_events(self, tenant: str, event_ids: Sequence[str]) -> dict[str, Event]:
        await asyncio.sleep(0.01)
        if self.down:
            raise Unavailable("database down")
        self.reads.append(list(event_ids))
        return {
            i: Event(id=i, tenant=tenant, type="orders.created", data={"i": i}) for i in event_ids if i in self.known
        }


async def test_reads_wanted_meanwhile_share_one_query_and_one_answer_per_event() -> None:
    store = _Store(["a", "b", "c"])
    loader = EnvelopeLoader(store)  # type: ignore[arg-type]
    first = await loader.load("t", "a")
    assert first["data"] == {"i": "a"} and first["type"] == "orders.created"
    got = await asyncio.gather(*(loader.load("t", i) for i in ["b", "c", "b", "a"]))
    assert [g["id"] for g in got] == ["b", "c", "b", "a"]
    assert store.reads == [["a"], ["b", "c", "a"]]


async def test_an_unknown_event_and_a_failed_read_reach_their_callers() -> None:
    store = _Store(["a"])
    loader = EnvelopeLoader(store)  # type: ignore[arg-type]
    results = await asyncio.gather(loader.load("t", "a"), loader.load("t", "gone"), return_exceptions=True)
    assert isinstance(results[0], dict) and isinstance(results[1], NotFound)
    store.down = True
    with pytest.raises(Unavailable):
        await loader.load("t", "a")


async def test_one_caller_leaving_does_not_cancel_the_read_for_the_others() -> None:
    store = _Store(["a"])
    loader = EnvelopeLoader(store)  # type: ignore[arg-type]
    leaving = asyncio.create_task(loader.load("t", "a"))
    staying = asyncio.create_task(loader.load("t", "a"))
    await asyncio.sleep(0)
    leaving.cancel()
    assert (await staying)["id"] == "a"
