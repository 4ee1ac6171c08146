"""Updates across processes: what one process announces, watchers on the others see.

With several processes (``processes`` > 1, or api and worker processes), an execution
runs in one process and its watcher may be connected to another. ``RelayedUpdateBus``
wraps the in-process bus and relays through Redis pub/sub, but only for tenants someone
watches: a process with watchers of a tenant keeps the key ``<prefix>:watching:<tenant>:
<instance>`` alive (``_WATCH_TTL``) and listens on the tenant's channel; every process
reads which tenants are watched every ``_REFRESH_SECONDS`` and publishes their updates.
Nobody watching costs one set lookup per update.

What a relay does not change: resume tokens still name one process's bus (a watcher that
reconnects to another process re-reads with ``ListExecutions``), and a watcher's first
``_REFRESH_SECONDS`` may miss updates from other processes, which have not yet seen that
it watches. A relayed update is best-effort: Redis down means local updates only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Coroutine
from datetime import datetime
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from neoactions.domain.model import ExecutionError, ExecutionStatus, ExecutionUpdate, UpdateKind
from neoactions.server.bus import InProcessUpdateBus, Subscription, UpdateFilter
from neoactions.server.redis_client import redis_from_url

log = logging.getLogger(__name__)

#: how often the watched tenants are read, and a local watch is announced again
_REFRESH_SECONDS = 1.0
#: a process's watch announcement outlives it this long
_WATCH_TTL_SECONDS = 5
#: updates per PUBLISH pipeline at most
_BATCH = 512


def encode(update: ExecutionUpdate, origin: str) -> str:
    return json.dumps(
        {
            "o": origin,
            "t": update.tenant,
            "k": update.kind.value,
            "x": update.execution_id,
            "a": update.action_name,
            "e": update.event_id,
            "c": update.correlation_id,
            "s": update.status.value if update.status is not None else None,
            "n": update.attempt,
            "m": update.message,
            "p": update.progress,
            "out": update.output,
            "err": update.error.to_dict() if update.error is not None else None,
            "w": update.time.isoformat(),
        },
        separators=(",", ":"),
    )


def decode(text: str | bytes) -> tuple[str, ExecutionUpdate]:
    d: dict[str, Any] = json.loads(text)
    update = ExecutionUpdate(
        tenant=d["t"],
        kind=UpdateKind(d["k"]),
        execution_id=d["x"],
        action_name=d["a"],
        event_id=d["e"],
        correlation_id=d["c"],
        status=ExecutionStatus(d["s"]) if d["s"] is not None else None,
        attempt=d["n"],
        message=d["m"],
        progress=d["p"],
        output=d["out"],
        error=ExecutionError.from_dict(d["err"]) if d["err"] is not None else None,
        time=datetime.fromisoformat(d["w"]),
    )
    return d["o"], update


class RelayedUpdateBus:
    """An :class:`~neoactions.server.bus.UpdateBus`: the local bus, plus Redis between processes."""

    def __init__(self, local: InProcessUpdateBus, redis_url: str, prefix: str) -> None:
        self._local = local
        self._url = redis_url
        self._prefix = prefix
        self._origin = uuid.uuid4().hex
        self._redis: Redis | None = None
        #: tenants some other process watches (read from Redis)
        self._watched: set[str] = set()
        #: local watchers per tenant
        self._watching: dict[str, int] = {}
        self._outgoing: list[tuple[str, str]] = []
        self._sending: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._pubsub: Any = None
        self._background: set[asyncio.Task[None]] = set()

    # --- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        self._redis = redis_from_url(self._url, socket_connect_timeout=2.0)
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        self._tasks = [
            asyncio.create_task(self._refresh_forever(), name="relay-refresh"),
            asyncio.create_task(self._listen_forever(), name="relay-listen"),
        ]

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._sending is not None:
            await asyncio.gather(self._sending, return_exceptions=True)
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.aclose()
        if self._redis is not None:
            if self._watching:
                with contextlib.suppress(RedisError, OSError):
                    await self._redis.delete(*[self._watch_key(t) for t in self._watching])
            await self._redis.aclose()

    # --- the UpdateBus -------------------------------------------------------------------
    def publish(self, update: ExecutionUpdate) -> None:
        self._local.publish(update)
        if update.tenant in self._watched and self._redis is not None:
            self._outgoing.append((self._channel(update.tenant), encode(update, self._origin)))
            if self._sending is None:
                self._sending = asyncio.create_task(self._send(), name="relay-publish")

    def token(self, update: ExecutionUpdate) -> str:
        return self._local.token(update)

    def subscribe(self, filter: UpdateFilter, resume_token: str = "") -> Subscription:
        sub = self._local.subscribe(filter, resume_token)
        tenant = filter.tenant
        self._watching[tenant] = self._watching.get(tenant, 0) + 1
        if self._watching[tenant] == 1:
            self._spawn(self._watch(tenant))

        def closed(_sub: Subscription) -> None:
            left = self._watching.get(tenant, 0) - 1
            if left > 0:
                self._watching[tenant] = left
            else:
                self._watching.pop(tenant, None)
                self._spawn(self._unwatch(tenant))

        sub.also_on_close(closed)
        return sub

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- Redis -----------------------------------------------------------------------------
    def _channel(self, tenant: str) -> str:
        return f"{self._prefix}:updates:{tenant}"

    def _watch_key(self, tenant: str) -> str:
        return f"{self._prefix}:watching:{tenant}:{self._origin}"

    async def _watch(self, tenant: str) -> None:
        assert self._redis is not None
        try:
            await self._pubsub.subscribe(self._channel(tenant))
            await self._redis.set(self._watch_key(tenant), "1", ex=_WATCH_TTL_SECONDS)
        except (RedisError, OSError) as exc:
            log.warning("cannot relay updates of tenant %s from other processes: %s", tenant, exc)

    async def _unwatch(self, tenant: str) -> None:
        assert self._redis is not None
        if tenant in self._watching:  # watched again meanwhile
            return
        try:
            await self._pubsub.unsubscribe(self._channel(tenant))
            await self._redis.delete(self._watch_key(tenant))
        except (RedisError, OSError) as exc:
            log.debug("unwatching tenant %s: %s", tenant, exc)

    async def _send(self) -> None:
        assert self._redis is not None
        try:
            while self._outgoing:
                batch, self._outgoing = self._outgoing[:_BATCH], self._outgoing[_BATCH:]
                pipe = self._redis.pipeline(transaction=False)
                for channel, message in batch:
                    pipe.publish(channel, message)
                try:
                    await pipe.execute()
                except (RedisError, OSError) as exc:
                    log.warning("relaying %d updates failed: %s", len(batch), exc)
        finally:
            self._sending = None

    async def _refresh_forever(self) -> None:
        assert self._redis is not None
        pattern = f"{self._prefix}:watching:*"
        while True:
            try:
                for tenant in list(self._watching):
                    await self._redis.expire(self._watch_key(tenant), _WATCH_TTL_SECONDS)
                watched: set[str] = set()
                async for key in self._redis.scan_iter(match=pattern, count=1000):
                    name = key.decode() if isinstance(key, bytes) else key
                    tenant, _, origin = name[len(pattern) - 1 :].rpartition(":")
                    if origin != self._origin:  # watchers here get the local bus's updates already
                        watched.add(tenant)
                self._watched = watched
            except (RedisError, OSError) as exc:
                log.warning("reading the watched tenants failed: %s", exc)
            await asyncio.sleep(_REFRESH_SECONDS)

    async def _listen_forever(self) -> None:
        while True:
            if not self._pubsub.subscribed:
                await asyncio.sleep(0.1)
                continue
            try:
                message = await self._pubsub.get_message(timeout=1.0)
            except (RedisError, OSError) as exc:
                log.warning("relay listener: %s", exc)
                await asyncio.sleep(1.0)
                continue
            if message is None or message.get("type") != "message":
                continue
            try:
                origin, update = decode(message["data"])
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("dropping a malformed relayed update: %s", exc)
                continue
            if origin != self._origin:
                self._local.publish(update)


__all__ = ["RelayedUpdateBus", "decode", "encode"]
