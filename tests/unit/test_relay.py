"""The relay's wire form of an update: what one process encodes, another decodes the same."""

from __future__ import annotations

from neoactions.domain.model import ExecutionError, ExecutionStatus, ExecutionUpdate, UpdateKind
from neoactions.server.relay import decode, encode


def test_an_update_survives_the_trip_between_processes() -> None:
    update = ExecutionUpdate(
        tenant="shop",
        kind=UpdateKind.FAILED,
        execution_id="x1",
        action_name="notify",
        event_id="e1",
        correlation_id="c1",
        status=ExecutionStatus.FAILED,
        attempt=3,
        message="gave up",
        progress=0.5,
        output={"partial": [1, 2]},
        error=ExecutionError("http_error", "503", retryable=True, retry_after_ms=1500),
        sequence=41,
    )
    origin, back = decode(encode(update, "process-a"))
    assert origin == "process-a"
    update.sequence = 0  # a position on the sender's bus, not carried
    assert back == update


def test_an_update_without_status_or_error() -> None:
    update = ExecutionUpdate(tenant="shop", kind=UpdateKind.EVENT_ACCEPTED, event_id="e1", message="matched 0")
    assert decode(encode(update, "b").encode())[1] == update
