"""``RedisStreamQueue``: the work queue over Redis Streams consumer groups.

Layout (``{p}`` is the key prefix, one per deployment):

- ``{p}:q:{tenant}:{priority}`` — one stream per tenant and priority band; entries
  carry the execution id only (the store holds the rest);
- ``{p}:tenants`` — the set of tenants that have streams (workers discover them here);
- ``{p}:epoch`` — a marker written once; its absence means Redis lost its data (a
  restart without persistence), so the outbox must enqueue again.

One consumer group (``workers``) per stream; every worker process is a consumer.
``consume`` reads bands highest first and, per band, at most an even share of the
batch from each tenant, starting at a rotating tenant — fairness without a central
scheduler. Acknowledged entries are deleted (XACK + XDEL), so streams hold only the
backlog and what is in flight.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from neoactions.domain.errors import Unavailable
from neoactions.server.queue.port import BANDS, Delivery, QueueItem, fair_share
from neoactions.server.redis_client import redis_from_url

GROUP = "workers"
#: how long the tenant set is trusted before it is read again
_TENANTS_TTL = 1.0


class RedisStreamQueue:
    def __init__(self, url: str, prefix: str = "neoactions", *, client: aioredis.Redis | None = None) -> None:
        self._url = url
        self._prefix = prefix
        self._redis: aioredis.Redis | None = client
        self._tenants: list[str] = []
        self._tenants_read = 0.0
        self._groups: set[str] = set()
        self._rotation = 0

    # --- plumbing ------------------------------------------------------------------
    @property
    def _r(self) -> Any:
        # redis-py's command stubs type every call as "Awaitable | value" (sync and async share
        # them); the adapter treats the client as untyped and checks what it reads instead
        if self._redis is None:
            raise Unavailable("the Redis work queue is not open")
        return self._redis

    @asynccontextmanager
    async def _translated(self) -> AsyncIterator[None]:
        """redis-py errors as the core's ``Unavailable`` (the caller backs off and retries)."""
        try:
            yield
        except ResponseError as exc:
            if str(exc).startswith("NOGROUP"):
                # the stream or its group vanished (Redis restarted empty): recreate on next use
                self._groups.clear()
                self._tenants_read = 0.0
            raise Unavailable(f"Redis refused a queue command: {exc}") from exc
        except (RedisError, OSError) as exc:
            raise Unavailable(f"Redis unavailable: {exc}") from exc

    def stream(self, tenant: str, priority: int) -> str:
        return f"{self._prefix}:q:{tenant}:{priority}"

    def _item(self, stream: str, fields: dict[str, str]) -> QueueItem:
        head, priority = stream.rsplit(":", 1)
        tenant = head[len(self._prefix) + 3 :]
        return QueueItem(tenant, fields["x"], int(priority))

    async def open(self) -> None:
        if self._redis is None:
            self._redis = redis_from_url(
                self._url, decode_responses=True, socket_connect_timeout=2.0, socket_timeout=10.0
            )
        async with self._translated():
            await self._r.ping()

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    # --- producing -----------------------------------------------------------------
    async def enqueue(self, items: Sequence[QueueItem]) -> None:
        if not items:
            return
        async with self._translated():
            pipe = self._r.pipeline(transaction=False)
            for tenant in {i.tenant for i in items}:
                pipe.sadd(f"{self._prefix}:tenants", tenant)
            for item in items:
                pipe.xadd(self.stream(item.tenant, item.priority), {"x": item.execution_id})
            await pipe.execute()

    # --- consuming -----------------------------------------------------------------
    async def _known_streams(self) -> list[str]:
        """Every tenant's streams, rotated one tenant per call; creates missing groups."""
        now = time.monotonic()
        if now - self._tenants_read > _TENANTS_TTL:
            self._tenants = sorted(await self._r.smembers(f"{self._prefix}:tenants"))
            self._tenants_read = now
        missing = [self.stream(t, b) for t in self._tenants for b in BANDS if self.stream(t, b) not in self._groups]
        if missing:
            pipe = self._r.pipeline(transaction=False)
            for key in missing:
                # from id 0: entries added before the group existed are delivered too
                pipe.xgroup_create(key, GROUP, id="0", mkstream=True)
            for key, result in zip(missing, await pipe.execute(raise_on_error=False), strict=True):
                if isinstance(result, Exception) and "BUSYGROUP" not in str(result):
                    raise result
                self._groups.add(key)
        return [self.stream(t, b) for b in BANDS for t in self._tenants]

    def _rotated(self) -> list[str]:
        if not self._tenants:
            return []
        self._rotation = (self._rotation + 1) % len(self._tenants)
        return self._tenants[self._rotation :] + self._tenants[: self._rotation]

    def _deliveries(self, reply: Any) -> list[Delivery]:
        out: list[Delivery] = []
        for stream, entries in reply or []:
            for entry_id, fields in entries:
                if fields:  # an entry deleted while pending comes back without fields
                    out.append(Delivery(self._item(stream, fields), entry_id))
        return out

    async def consume(self, consumer: str, count: int, block_seconds: float = 0.0) -> list[Delivery]:
        async with self._translated():
            await self._known_streams()
            order = self._rotated()
            if not order:
                # no stream exists yet: wait as promised (a consumer loop must not spin), then
                # let the caller look again (the tenant set is re-read by then)
                await asyncio.sleep(min(block_seconds, _TENANTS_TTL))
                return []
            # Everything XREADGROUP returns is delivered to this consumer (it sits in its pending
            # list): it is all returned, never cut to ``count`` — an entry dropped here would wait
            # for the visibility timeout. So each read asks for no more than is still wanted.
            out: list[Delivery] = []
            for band in BANDS:
                # one round trip per band: an even share from each tenant's stream of this band
                share = fair_share(count - len(out), len(order))
                reply = await self._r.xreadgroup(
                    GROUP, consumer, {self.stream(t, band): ">" for t in order}, count=share
                )
                out.extend(self._deliveries(reply))
                if len(out) >= count:
                    break
            if out or block_seconds <= 0:
                return out
            streams = {self.stream(t, b): ">" for b in BANDS for t in order}
            share = fair_share(count, len(streams))
            reply = await self._r.xreadgroup(
                GROUP, consumer, streams, count=share, block=max(1, int(block_seconds * 1000))
            )
            return self._deliveries(reply)

    async def reclaim(self, consumer: str, min_idle_seconds: float, count: int) -> list[Delivery]:
        async with self._translated():
            streams = await self._known_streams()
            if not streams:
                return []
            pipe = self._r.pipeline(transaction=False)
            for key in streams:
                pipe.xautoclaim(key, GROUP, consumer, int(min_idle_seconds * 1000), "0-0", count=count)
            out: list[Delivery] = []
            for key, result in zip(streams, await pipe.execute(), strict=True):
                claimed = result[1]
                out.extend(self._deliveries([(key, claimed)]))
            return out  # all of it: what XAUTOCLAIM took is this consumer's now

    async def touch(self, consumer: str, deliveries: Sequence[Delivery]) -> None:
        if not deliveries:
            return
        async with self._translated():
            pipe = self._r.pipeline(transaction=False)
            for key, ids in _by_stream(self, deliveries).items():
                pipe.xclaim(key, GROUP, consumer, 0, ids, justid=True)
            await pipe.execute()

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        if not deliveries:
            return
        async with self._translated():
            pipe = self._r.pipeline(transaction=False)
            for key, ids in _by_stream(self, deliveries).items():
                pipe.xack(key, GROUP, *ids)
                pipe.xdel(key, *ids)
            await pipe.execute()

    async def lost_contents(self) -> bool:
        async with self._translated():
            return bool(await self._r.set(f"{self._prefix}:epoch", uuid.uuid4().hex, nx=True))

    async def delete_all(self) -> None:
        """Remove every key under the prefix (tests and tear-down)."""
        async with self._translated():
            keys = [k async for k in self._r.scan_iter(match=f"{self._prefix}:*", count=500)]
            if keys:
                await self._r.delete(*keys)


def _by_stream(queue: RedisStreamQueue, deliveries: Sequence[Delivery]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for d in deliveries:
        grouped.setdefault(queue.stream(d.item.tenant, d.item.priority), []).append(d.entry_id)
    return grouped


__all__ = ["GROUP", "RedisStreamQueue"]
