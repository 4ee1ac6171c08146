"""Action changes between server processes that share one database.

Every process keeps its tenants' actions in an in-memory matcher. When an action
is created, updated, enabled, disabled or deleted through one process, the others
must follow: on PostgreSQL the changing process sends ``NOTIFY neoactions_actions``
with ``<origin> <tenant> <name>`` and every process ``LISTEN``s on a dedicated
connection, reloading just that action — typically within milliseconds. Because a
notification sent while a listener is reconnecting is lost, a listener that had to
reconnect reloads every tenant it holds. The embedded store is one process, so it
needs no feed. The PostgreSQL feed is an adapter:
:mod:`neoactions.server.persistence.changefeed`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

CHANNEL = "neoactions_actions"

#: called with (tenant, action name) for a change made elsewhere, or (tenant, "") to reload a tenant
OnChange = Callable[[str, str], Awaitable[None]]


class ActionChangeFeed(Protocol):
    async def start(self, on_change: OnChange, loaded_tenants: Callable[[], list[str]]) -> None: ...

    async def publish(self, tenant: str, name: str) -> None: ...

    async def close(self) -> None: ...


class LocalChangeFeed:
    """One process: nothing to tell anyone."""

    async def start(self, on_change: OnChange, loaded_tenants: Callable[[], list[str]]) -> None:
        return None

    async def publish(self, tenant: str, name: str) -> None:
        return None

    async def close(self) -> None:
        return None


__all__ = ["CHANNEL", "ActionChangeFeed", "LocalChangeFeed", "OnChange"]
