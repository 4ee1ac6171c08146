"""The event store as a tool: replay stored events, backtest an action against history,
stream publishes with flow control, and apply each tenant's retention.

The store side of it is the :class:`~neoactions.server.eventstore.port.EventArchive` role of
the store port; the engine reaches the rest through its one door (``Engine.replay_events``,
``Engine.backtest``, ``Engine.publish_stream``, ``Engine.set_retention`` ...).
"""

from __future__ import annotations

from neoactions.server.eventstore.port import (
    Cursor,
    EventArchive,
    EventSelection,
    ReplayJobRecord,
    ReplayState,
    RetentionPolicy,
    StoreUsage,
    TableUsage,
)

__all__ = [
    "Cursor",
    "EventArchive",
    "EventSelection",
    "ReplayJobRecord",
    "ReplayState",
    "RetentionPolicy",
    "StoreUsage",
    "TableUsage",
]
