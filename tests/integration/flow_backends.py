"""The flow-control implementations under contract test, and a clock tests control.

``FlowBackend.workers(n, config)`` gives ``n`` "workers": for Redis, ``n``
independent ``RedisFlowControl`` instances (each its own connection pool) over
one unique key prefix; in-process, the one instance a process has. Everything a
test made is closed, and every Redis key under its prefix deleted, afterwards.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from redis.asyncio import Redis

from neoactions.server.flow import FlowControl, FlowControlConfig, InProcessFlowControl
from neoactions.server.flow.redis_flow import RedisFlowControl
from tests.conftest import REDIS_URL


@dataclass(slots=True)
class ManualClock:
    """Seconds that move only when the test says so."""

    now: float = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def unique_prefix() -> str:
    return f"neoactions-test:flow:{uuid.uuid4().hex}"


async def delete_prefix(client: Redis, prefix: str) -> int:
    """Delete every key under ``prefix``; returns how many there were."""
    keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=500)]
    if keys:
        await client.delete(*keys)
    return len(keys)


@dataclass(slots=True)
class FlowBackend:
    kind: str
    prefix: str = field(default_factory=unique_prefix)
    made: list[FlowControl] = field(default_factory=list)

    def workers(
        self, n: int, config: FlowControlConfig | None = None, clock: Callable[[], float] | None = None
    ) -> list[FlowControl]:
        """``n`` workers sharing one set of limits (see the module docstring)."""
        config = dataclasses.replace(config or FlowControlConfig(), key_prefix=self.prefix)
        if self.kind == "inprocess":
            shared = InProcessFlowControl(config, clock=clock) if clock else InProcessFlowControl(config)
            self.made.append(shared)
            return [shared] * n
        out: list[FlowControl] = [RedisFlowControl.from_url(REDIS_URL, config, clock=clock) for _ in range(n)]
        self.made.extend(out)
        return out

    def worker(self, config: FlowControlConfig | None = None, clock: Callable[[], float] | None = None) -> FlowControl:
        return self.workers(1, config, clock)[0]

    async def aclose(self) -> None:
        for flow in self.made:
            await flow.aclose()
        if self.kind == "redis":
            client = Redis.from_url(REDIS_URL)
            try:
                await delete_prefix(client, self.prefix)
            finally:
                await client.aclose()
