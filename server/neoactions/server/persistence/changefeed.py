"""The PostgreSQL action-change feed (LISTEN/NOTIFY), the adapter behind
:class:`~neoactions.server.changes.ActionChangeFeed` for processes sharing one database."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg

from neoactions.server.changes import CHANNEL, ActionChangeFeed, LocalChangeFeed, OnChange

log = logging.getLogger(__name__)


class PostgresChangeFeed:
    """LISTEN/NOTIFY on a dedicated connection, reconnecting with a full reload."""

    def __init__(self, dsn: str, reconnect_seconds: float = 1.0) -> None:
        self._dsn = dsn
        self._origin = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._reconnect = reconnect_seconds
        self._listener: asyncpg.Connection | None = None
        self._sender: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def start(self, on_change: OnChange, loaded_tenants: Callable[[], list[str]]) -> None:
        connected = asyncio.Event()
        self._task = asyncio.create_task(self._listen(on_change, loaded_tenants, connected), name="action-changes")
        await asyncio.wait({self._task, asyncio.ensure_future(connected.wait())}, return_when=asyncio.FIRST_COMPLETED)

    async def _listen(self, on_change: OnChange, loaded_tenants: Callable[[], list[str]], ready: asyncio.Event) -> None:
        queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()

        def received(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
            origin, _, rest = payload.partition(" ")
            tenant, _, name = rest.partition(" ")
            if origin != self._origin and tenant:
                queue.put_nowait((tenant, name))

        first = True
        while True:
            try:
                conn = await asyncpg.connect(self._dsn)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("action change feed cannot connect (%s); retrying", exc)
                await asyncio.sleep(self._reconnect)
                continue
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _c, lost=lost: lost.set())
            try:
                await conn.add_listener(CHANNEL, received)
                self._listener = conn
                ready.set()
                if not first:
                    # notifications may have been missed while we were away
                    for tenant in loaded_tenants():
                        await on_change(tenant, "")
                first = False
                while not lost.is_set():
                    getter = asyncio.ensure_future(queue.get())
                    waiter = asyncio.ensure_future(lost.wait())
                    done, _ = await asyncio.wait({getter, waiter}, return_when=asyncio.FIRST_COMPLETED)
                    if getter in done:
                        waiter.cancel()
                        tenant, name = getter.result()
                        try:
                            await on_change(tenant, name)
                        except Exception:
                            log.exception("reloading action %s/%s failed", tenant, name)
                    else:
                        getter.cancel()
            finally:
                self._listener = None
                with contextlib.suppress(Exception):
                    await conn.close(timeout=2)
            log.warning("action change feed lost its connection; reconnecting")
            await asyncio.sleep(self._reconnect)

    async def publish(self, tenant: str, name: str) -> None:
        async with self._lock:
            for _ in range(2):
                if self._sender is None or self._sender.is_closed():
                    self._sender = await asyncpg.connect(self._dsn)
                try:
                    await self._sender.execute("SELECT pg_notify($1, $2)", CHANNEL, f"{self._origin} {tenant} {name}")
                    return
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    self._sender = None
            log.warning("could not announce the change of action %s/%s to other processes", tenant, name)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._sender is not None:
            with contextlib.suppress(Exception):
                await self._sender.close(timeout=2)


def change_feed_for(store_url: str) -> ActionChangeFeed:
    if store_url.startswith(("postgresql://", "postgres://")):
        return PostgresChangeFeed(store_url)
    return LocalChangeFeed()


__all__ = ["PostgresChangeFeed", "change_feed_for"]
