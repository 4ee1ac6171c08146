"""The ``StatsStore`` role: every store returns the executions that ended in a window alike
(final statuses only, by ``finished_at``, newest first, one action or all, capped)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from store_backends import ContractStore

from neoactions.domain.ids import new_id
from neoactions.domain.model import ADMIN_TENANT, Execution, ExecutionError, ExecutionStatus

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def ended(action: str, status: ExecutionStatus, minute: int, seconds: float | None = 2.0, error: str = "") -> Execution:
    finished = T0 + timedelta(minutes=minute)
    return Execution(
        id=new_id(),
        tenant=ADMIN_TENANT,
        action_id="",
        action_name=action,
        action_version=1,
        input={},
        handler_type="python",
        status=status,
        created_at=finished - timedelta(seconds=10),
        started_at=finished - timedelta(seconds=seconds) if seconds is not None else None,
        finished_at=finished if status.is_final else None,
        error=ExecutionError(error, f"{error} happened") if error else None,
    )


async def test_samples_are_the_executions_that_ended_in_the_window(store: ContractStore) -> None:
    executions = [
        ended("ship", ExecutionStatus.SUCCEEDED, 1, 1.5),
        ended("ship", ExecutionStatus.FAILED, 2, 0.5, error="ValueError"),
        ended("ship", ExecutionStatus.DEAD_LETTERED, 3, 4.0, error="timeout"),
        ended("ship", ExecutionStatus.CANCELLED, 4, None, error="cancelled"),
        ended("bill", ExecutionStatus.SUCCEEDED, 5, 0.25),
        ended("ship", ExecutionStatus.SUCCEEDED, 90),  # after the window
        ended("ship", ExecutionStatus.SUCCEEDED, -5),  # before it
        ended("ship", ExecutionStatus.SCHEDULED, 2),  # not ended
    ]
    await store.append(ADMIN_TENANT, [], executions)
    start, end = T0, T0 + timedelta(minutes=60)

    ship = await store.execution_samples(ADMIN_TENANT, start, end, "ship")
    assert [(s.action_name, s.status.value, s.duration_seconds) for s in ship] == [
        ("ship", "cancelled", None),
        ("ship", "dead_lettered", 4.0),
        ("ship", "failed", 0.5),
        ("ship", "succeeded", 1.5),
    ]
    assert [s.finished_at for s in ship] == [T0 + timedelta(minutes=m) for m in (4, 3, 2, 1)]
    assert ship[1].error == ExecutionError("timeout", "timeout happened")

    every = await store.execution_samples(ADMIN_TENANT, start, end)
    assert [s.action_name for s in every] == ["bill", "ship", "ship", "ship", "ship"]
    newest = await store.execution_samples(ADMIN_TENANT, start, end, limit=2)
    assert [(s.action_name, s.status.value) for s in newest] == [("bill", "succeeded"), ("ship", "cancelled")]
    assert await store.execution_samples(ADMIN_TENANT, start, end, "nothing") == []
    # the end of the window is excluded, its start included
    edge = await store.execution_samples(ADMIN_TENANT, T0 + timedelta(minutes=1), T0 + timedelta(minutes=2), "ship")
    assert [s.status.value for s in edge] == ["succeeded"]


async def test_an_executions_trace_context_is_kept(store: ContractStore) -> None:
    """Migration 0008: the traceparent of the span that scheduled an execution comes back from
    every read, claims included (a worker elsewhere joins the trace)."""
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    ex = ended("ship", ExecutionStatus.PENDING, 0)
    ex.trace_context = traceparent
    plain = ended("ship", ExecutionStatus.PENDING, 0)
    await store.append(ADMIN_TENANT, [], [ex, plain])
    assert (await store.get_execution(ADMIN_TENANT, ex.id)).trace_context == traceparent
    assert (await store.get_execution(ADMIN_TENANT, plain.id)).trace_context == ""
    claimed = await store.claim(ADMIN_TENANT, [ex.id], "worker-2", T0 + timedelta(days=3650))
    assert [c.trace_context for c in claimed] == [traceparent]
