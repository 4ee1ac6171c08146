"""Work queues for queued-mode executions: the port, an in-process implementation
(embedded mode) and Redis Streams consumer groups (scale-out)."""

from __future__ import annotations

from neoactions.server.queue.memory import InProcessWorkQueue
from neoactions.server.queue.port import BANDS, Delivery, QueueItem, WorkQueue, fair_share

__all__ = ["BANDS", "Delivery", "InProcessWorkQueue", "QueueItem", "WorkQueue", "fair_share"]
