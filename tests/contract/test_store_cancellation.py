"""A call cancelled half-way (a client's deadline, a disconnect) leaves the store usable:
the next transaction never finds the cancelled one still open."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from datetime import timedelta

import pytest

from neoactions.domain.ids import new_id
from neoactions.domain.model import Event, utcnow
from neoactions.server.persistence import SqliteStore, SqlStore
from neoactions.server.persistence import sqlite as sqlite_store
from neoactions.server.store import EventFilter


def keyed_event(key: str) -> Event:
    return Event(id=new_id(), tenant="admin", type="orders.created", data={"key": key}, idempotency_key=key)


async def publish(store: SqlStore, key: str) -> None:
    """What a publish with an idempotency key does: look for the key (a read), then append (a write)."""
    since = utcnow() - timedelta(hours=1)
    assert await store.find_duplicates("admin", [key], since) == {}
    await store.append("admin", [keyed_event(key)], [], dedup_since=since)


async def cancel_after(task: asyncio.Task[object], spins: int) -> None:
    """Let ``task`` run ``spins`` turns of the loop, then cancel it and wait for its end."""
    for _ in range(spins):
        await asyncio.sleep(0)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@pytest.mark.parametrize("spins", range(8))
async def test_a_cancelled_read_leaves_the_store_usable(store: SqlStore, spins: int) -> None:
    read = asyncio.create_task(store.list_events("admin", EventFilter(), 10))
    await cancel_after(read, spins)
    await publish(store, f"after-read-{spins}")
    page = await store.list_events("admin", EventFilter(), 10)
    assert [e.idempotency_key for e in page.items] == [f"after-read-{spins}"]


@pytest.mark.parametrize("spins", range(8))
async def test_a_cancelled_publish_leaves_the_store_usable(store: SqlStore, spins: int) -> None:
    first = asyncio.create_task(publish(store, "first"))
    await cancel_after(first, spins)
    await publish(store, "second")
    keys = {e.idempotency_key for e in (await store.list_events("admin", EventFilter(), 10)).items}
    assert "second" in keys and keys <= {"first", "second"}


async def test_concurrent_publishes_some_cancelled_all_others_succeed(store: SqlStore) -> None:
    """The load that showed the fault: many publishes at once, clients giving up on some."""
    tasks = [asyncio.create_task(publish(store, f"k{i}")) for i in range(200)]
    for i, task in enumerate(tasks):
        if i % 3 == 0:
            task.cancel()
        if i % 7 == 0:
            await asyncio.sleep(0)
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    failed = [o for o in outcomes if isinstance(o, BaseException) and not isinstance(o, asyncio.CancelledError)]
    assert failed == []
    await publish(store, "last")


async def test_a_publish_cancelled_while_waiting_for_another_process_lock(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedded writer waits for another process's write lock on its thread; cancelled
    meanwhile, the transaction it began there must be rolled back."""
    if not isinstance(store, SqliteStore):
        pytest.skip("the embedded store's writer")
    await publish(store, "warm")  # the file is open
    waits = threading.Event()
    begin_waiting = sqlite_store._begin_waiting

    def spied(conn: sqlite3.Connection) -> None:
        waits.set()
        begin_waiting(conn)

    monkeypatch.setattr(sqlite_store, "_begin_waiting", spied)
    other = sqlite3.connect(store.path_of("admin"), isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        waiting = asyncio.create_task(publish(store, "while-locked"))
        assert await asyncio.to_thread(waits.wait, 10.0), "the writer never waited for the lock"
        waiting.cancel()
        other.execute("ROLLBACK")
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
    finally:
        other.close()
    await publish(store, "after")
    keys = {e.idempotency_key for e in (await store.list_events("admin", EventFilter(), 10)).items}
    assert {"warm", "after"} <= keys and "while-locked" not in keys
