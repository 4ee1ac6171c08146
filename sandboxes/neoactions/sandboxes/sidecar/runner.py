"""The ``sidecar`` runner (see the package docstring)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from neoactions.domain.errors import InvalidArgument
from neoactions.domain.model import JSON, JSONObject
from neoactions.sandboxes.sidecar.address import SidecarAddressRefused, SidecarPolicy, SidecarUnresolvable
from neoactions.sandboxes.sidecar.client import HandlerClient, HandlerUnavailable, reserve_for, unavailable_message
from neoactions.server.runners import (
    ExecutionContext,
    Failure,
    HandlerRegistry,
    HandlerType,
    RunnerUpdate,
)

CONFIG_SCHEMA: JSONObject = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["address"],
    "properties": {
        "address": {
            "type": "string",
            "minLength": 1,
            "pattern": r"^(unix:.+|[A-Za-z0-9._\-]+:[0-9]{1,5}|\[[0-9A-Fa-f:.]+\]:[0-9]{1,5})$",
            "description": "where the Handler server listens: host:port or [ipv6]:port that the address "
            "policy allows (no loopback or private networks unless the operator allows them), or an "
            "endpoint the operator registered (which may be unix:/path)",
        },
        "config": {
            "type": "object",
            "description": "the handler's own config, sent as config_json",
        },
        "check_health": {
            "type": "boolean",
            "default": True,
            "description": "Check the server before calling it (at most every health_interval)",
        },
        "validate_config": {
            "type": "boolean",
            "default": True,
            "description": "validate `config` against the schema the handler's Describe returns",
        },
    },
    "additionalProperties": False,
}


class SidecarRunner:
    """Calls Handler servers at configured addresses, one reused channel per address.

    Addresses pass :class:`SidecarPolicy` (the http runner's address policy, or
    the operator's registered endpoints) before a channel is made. Channels
    unused for ``idle_seconds`` are closed (a cached channel to a server that
    went away would otherwise keep reconnecting for ever), and at most
    ``max_channels`` are kept per event loop, the least recently used idle ones
    closed first.
    """

    def __init__(
        self,
        *,
        health_interval: float = 5.0,
        policy: SidecarPolicy | None = None,
        idle_seconds: float = 60.0,
        max_channels: int = 256,
    ) -> None:
        self.health_interval = health_interval
        self.policy = policy or SidecarPolicy()
        self.idle_seconds = idle_seconds
        self.max_channels = max(1, max_channels)
        self._clients: dict[tuple[str, int], HandlerClient] = {}
        self._reapers: dict[int, asyncio.Task[None]] = {}

    def validate(self, config: JSONObject) -> None:
        """At save: registered endpoints pass; unix sockets and refused IP literals do not."""
        try:
            self.policy.check_saved(str(config.get("address", "")))
        except SidecarAddressRefused as exc:
            raise InvalidArgument.field("address", f"refused: {exc}", reason="ADDRESS_REFUSED") from None

    def client(self, address: str) -> HandlerClient:
        """The open channel to ``address`` of the running event loop (``KeyError`` if none)."""
        return self._clients[(address, id(asyncio.get_running_loop()))]

    def channels(self) -> int:
        """Channels open for the running event loop."""
        here = id(asyncio.get_running_loop())
        return sum(1 for _, loop_id in self._clients if loop_id == here)

    async def connect(self, address: str) -> HandlerClient:
        """The channel to ``address`` for the running loop, made once the address passed the policy.

        The client comes counted as in use (``active``): the caller decrements it when
        done, so no idle or over-the-cap sweep closes it meanwhile. Raises
        :class:`SidecarAddressRefused` or :class:`SidecarUnresolvable`.
        """
        loop_id = id(asyncio.get_running_loop())
        key = (address, loop_id)
        client = self._clients.get(key)
        if client is None:
            target = await self.policy.target(address)
            client = self._clients.get(key)  # another task may have connected meanwhile
            if client is None:
                client = HandlerClient(address, health_interval=self.health_interval, target=target)
                self._clients[key] = client
                if loop_id not in self._reapers:
                    self._reapers[loop_id] = asyncio.ensure_future(self._reap(loop_id))
        client.active += 1
        await self._make_room(loop_id)
        return client

    async def execute(self, config: JSONObject, data: JSON, ctx: ExecutionContext) -> AsyncIterator[RunnerUpdate]:
        address = str(config["address"])
        try:
            client = await self.connect(address)
        except SidecarAddressRefused as exc:
            yield Failure.of("address_refused", f"sidecar address refused: {exc}")
            return
        except SidecarUnresolvable:
            yield Failure.of("handler_unavailable", unavailable_message(address), retryable=True)
            return
        try:
            async for update in self._execute(client, config, data, ctx):
                yield update
        finally:
            client.active -= 1
            client.last_used = time.monotonic()

    async def _execute(
        self, client: HandlerClient, config: JSONObject, data: JSON, ctx: ExecutionContext
    ) -> AsyncIterator[RunnerUpdate]:
        handler_config: JSONObject = dict(config.get("config") or {})
        budget = ctx.remaining_seconds()
        try:
            # a server never seen answering is checked first whatever the config says, so a
            # closed port, a blackhole and a non-gRPC port all fail in Check with one message
            if config.get("check_health", True) or not client.proven:
                await client.ensure_healthy(budget)
            if config.get("validate_config", True):
                problem = await client.validate_config(handler_config, max(0.05, min(5.0, budget)))
                if problem is not None:
                    yield Failure.of("invalid_config", f"handler config: {problem}")
                    return
        except HandlerUnavailable as exc:
            yield Failure.of("handler_unavailable", str(exc), retryable=True)
            return
        except Exception:  # a Describe that failed: unreachable, or not a Handler server
            yield Failure.of("handler_unavailable", unavailable_message(client.address), retryable=True)
            return
        async for update in client.execute(handler_config, data, ctx, reserve=reserve_for(ctx)):
            yield update

    async def close_idle(self, now: float | None = None) -> int:
        """Close the running loop's channels unused for ``idle_seconds``; how many were closed."""
        now = time.monotonic() if now is None else now
        here = id(asyncio.get_running_loop())
        idle = [
            key
            for key, c in self._clients.items()
            if key[1] == here and c.active == 0 and now - c.last_used >= self.idle_seconds
        ]
        await self._close(idle)
        return len(idle)

    async def _make_room(self, loop_id: int) -> None:
        mine = [(c.last_used, key) for key, c in self._clients.items() if key[1] == loop_id and c.active == 0]
        excess = sum(1 for key in self._clients if key[1] == loop_id) - self.max_channels
        if excess > 0:
            await self._close([key for _, key in sorted(mine)[:excess]])

    async def _close(self, keys: list[tuple[str, int]]) -> None:
        clients = [self._clients.pop(key) for key in keys if key in self._clients]
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)

    async def _reap(self, loop_id: int) -> None:
        while True:
            await asyncio.sleep(max(0.05, min(self.idle_seconds / 2, 10.0)))
            await self.close_idle()

    async def aclose(self) -> None:
        """Stop the reapers, close the channels of the running loop; forget those of loops already gone."""
        here = id(asyncio.get_running_loop())
        for loop_id, task in list(self._reapers.items()):
            task.cancel()
            if loop_id == here:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._reapers.clear()
        clients, self._clients = self._clients, {}
        for (_address, loop_id), client in clients.items():
            if loop_id == here:
                await client.close()


def register(registry: HandlerRegistry) -> None:
    """Entry point of the built-in ``sidecar`` handler type.

    Settings: ``sidecar_health_interval`` (5 s), ``sidecar_idle_seconds`` (60),
    ``sidecar_max_channels`` (256), ``sidecar_endpoints`` (addresses actions may
    use unchecked) and the http runner's ``http_allow_networks``.
    """
    settings = registry.settings
    runner = SidecarRunner(
        health_interval=float(settings.get("sidecar_health_interval", 5.0)),
        policy=SidecarPolicy.from_settings(settings),
        idle_seconds=float(settings.get("sidecar_idle_seconds", 60.0)),
        max_channels=int(settings.get("sidecar_max_channels", 256)),
    )
    registry.register(
        HandlerType(
            name="sidecar",
            runner=runner,
            config_schema=CONFIG_SCHEMA,
            description="A Handler gRPC server at an address, in any language (neoactions.handler.v1)",
            validate=runner.validate,
            close=runner.aclose,
        )
    )


__all__ = ["CONFIG_SCHEMA", "SidecarRunner", "register"]
