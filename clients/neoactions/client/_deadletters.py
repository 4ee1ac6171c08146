"""Requests of the cancel / retry / dead-letter calls, shared by the async and sync clients."""

from __future__ import annotations

from datetime import datetime

from neoactions.client import _requests as rq
from neoactions.client.results import Page
from neoactions.domain import convert
from neoactions.domain.model import Execution
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


def list_request(
    tenant: str,
    action: str,
    error_type: str,
    start_time: datetime | None,
    end_time: datetime | None,
    page_size: int,
    page_token: str,
) -> executions_pb2.ListDeadLettersRequest:
    return executions_pb2.ListDeadLettersRequest(
        parent=rq.parent(tenant),
        filter=dead_letter_filter(action, error_type, start_time, end_time),
        page_size=page_size,
        page_token=page_token,
    )


def page(response: executions_pb2.ListDeadLettersResponse) -> Page[Execution]:
    return Page([convert.execution_from_pb(e) for e in response.executions], response.next_page_token)


def requeue_request(
    tenant: str, action: str, error_type: str, start_time: datetime | None, end_time: datetime | None
) -> executions_pb2.RequeueDeadLettersRequest:
    return executions_pb2.RequeueDeadLettersRequest(
        parent=rq.parent(tenant), filter=dead_letter_filter(action, error_type, start_time, end_time)
    )


__all__ = ["cancel_request", "dead_letter_filter", "list_request", "page", "requeue_request", "retry_request"]
