"""The ``sidecar`` runner (see the package docstring)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from neoactions.sandboxes.sidecar.client import HandlerClient, HandlerUnavailable, reserve_for
from neoactions.server.model import JSON, JSONObject
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
            "description": "where the Handler server listens: host:port, [ipv6]:port or unix:/path",
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
    """Calls Handler servers at configured addresses, one reused channel per address."""

    def __init__(self, *, health_interval: float = 5.0) -> None:
        self.health_interval = health_interval
        self._clients: dict[tuple[str, int], HandlerClient] = {}

    def client(self, address: str) -> HandlerClient:
        """The channel to ``address`` for the running event loop (channels are loop-bound)."""
        key = (address, id(asyncio.get_running_loop()))
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = HandlerClient(address, health_interval=self.health_interval)
        return client

    async def execute(self, config: JSONObject, data: JSON, ctx: ExecutionContext) -> AsyncIterator[RunnerUpdate]:
        address = str(config["address"])
        client = self.client(address)
        handler_config: JSONObject = dict(config.get("config") or {})
        budget = ctx.remaining_seconds()
        try:
            if config.get("check_health", True):
                await client.ensure_healthy(budget)
            if config.get("validate_config", True):
                problem = await client.validate_config(handler_config, max(0.05, min(5.0, budget)))
                if problem is not None:
                    yield Failure.of("invalid_config", f"handler config: {problem}")
                    return
        except HandlerUnavailable as exc:
            yield Failure.of("handler_unavailable", str(exc), retryable=True)
            return
        except Exception as exc:  # a Describe that failed: unreachable, or a broken server
            yield Failure.of(
                "handler_unavailable", f"handler at {address}: {type(exc).__name__}: {exc}", retryable=True
            )
            return
        async for update in client.execute(handler_config, data, ctx, reserve=reserve_for(ctx)):
            yield update

    async def aclose(self) -> None:
        """Close the channels of the running loop; forget those of loops already gone."""
        here = id(asyncio.get_running_loop())
        clients, self._clients = self._clients, {}
        for (_address, loop_id), client in clients.items():
            if loop_id == here:
                await client.close()


def register(registry: HandlerRegistry) -> None:
    """Entry point of the built-in ``sidecar`` handler type."""
    runner = SidecarRunner(health_interval=float(registry.settings.get("sidecar_health_interval", 5.0)))
    registry.register(
        HandlerType(
            name="sidecar",
            runner=runner,
            config_schema=CONFIG_SCHEMA,
            description="A Handler gRPC server at an address, in any language (neoactions.handler.v1)",
            close=runner.aclose,
        )
    )


__all__ = ["CONFIG_SCHEMA", "SidecarRunner", "register"]
