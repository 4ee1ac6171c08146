"""Requests of the cancel / retry / dead-letter calls, shared by the async and sync clients."""

from __future__ import annotations

from datetime import datetime

from neoactions.client import _requests as rq
from neoactions.server.api import convert
from neoactions.v1 import executions_pb2


def cancel_request(tenant: str, execution_id: str, reason: str = "") -> executions_pb2.CancelExecutionRequest:
    return executions_pb2.CancelExecutionRequest(name=rq.execution_resource(tenant, execution_id), reason=reason)


def retry_request(tenant: str, execution_id: str) -> executions_pb2.RetryExecutionRequest:
    return executions_pb2.RetryExecutionRequest(name=rq.execution_resource(tenant, execution_id))


def dead_letter_filter(
    action: str = "", error_type: str = "", start_time: datetime | None = None, end_time: datetime | None = None
) -> executions_pb2.DeadLetterFilter:
    """Which dead letters: the action, the last error's type, a creation-time range ``[start, end)``."""
    return executions_pb2.DeadLetterFilter(
        action=action, error_type=error_type, start_time=convert.ts(start_time), end_time=convert.ts(end_time)
    )


__all__ = ["cancel_request", "dead_letter_filter", "retry_request"]
