"""Retries and the dead-letter queue across processes, with real PostgreSQL and Redis.

(5) Retry delays follow the policy within the jitter bounds (measured from stored attempt
times). (6) Dead letters requeued by filter run again and succeed; others stay put.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import timestamp_pb2

from neoactions.client import authorized_channel
from neoactions.v1 import actions_pb2_grpc, events_pb2, events_pb2_grpc, executions_pb2, executions_pb2_grpc
from tests.e2e.cluster import Cluster, wait_for
from tests.e2e.test_pipeline import action
from tests.e2e.test_reliability_queued import database_url  # noqa: F401 - the fixture

E = executions_pb2
#: these handlers fail on purpose: keep the circuit breaker of their target out of the way
NO_BREAKER = {"breaker": {"failure_threshold": 0}}
#: stated tolerance on top of the policy's upper bound: the wake-up, a queue round trip and a claim
SLACK_SECONDS = 1.0


async def _executions(stub: Any, **filters: Any) -> list[executions_pb2.Execution]:
    out, token = [], ""
    while True:
        page = await stub.ListExecutions(
            E.ListExecutionsRequest(parent="tenants/admin", page_size=1000, page_token=token, **filters)
        )
        out += list(page.executions)
        token = page.next_page_token
        if not token:
            return out


@pytest.mark.slow
async def test_retry_delays_follow_the_policy(database_url: str, tmp_path: Path) -> None:  # noqa: F811
    cluster = Cluster(database_url, tmp_path, workers=2, flow_control=NO_BREAKER)
    cluster.start()
    try:
        async with authorized_channel(cluster.api.target) as ch:
            policy = {"max_retries": 3, "backoff": "exponential", "initial_delay_ms": 400, "jitter": True}
            for mode in ("EXECUTION_MODE_QUEUED", "EXECUTION_MODE_ASYNC"):
                await actions_pb2_grpc.ActionServiceStub(ch).CreateAction(
                    action(
                        f"flaky-{mode[15:].lower()}",
                        ["jobs.flaky"],
                        "shop.reliability:always_fail",
                        execution_mode=mode,
                        retry_policy=policy,
                    )
                )
            events = events_pb2_grpc.EventServiceStub(ch)
            for i in range(3):
                await events.PublishEvent(
                    events_pb2.PublishEventRequest(
                        parent="tenants/admin",
                        event=events_pb2.Event(type="jobs.flaky", data_json=json.dumps({"i": i})),
                    )
                )
            executions = executions_pb2_grpc.ExecutionServiceStub(ch)

            async def all_dead() -> bool:
                found = await _executions(executions)
                return len(found) == 6 and all(x.status == E.EXECUTION_STATUS_DEAD_LETTERED for x in found)

            await wait_for(all_dead, within=90)
            for listed in await _executions(executions):
                x = await executions.GetExecution(E.GetExecutionRequest(name=listed.name))
                assert [a.number for a in x.attempts] == [1, 2, 3, 4], x.attempts
                assert x.error.type == "Refused" and x.error.retryable
                for a, b in zip(x.attempts, x.attempts[1:], strict=False):
                    base = 0.4 * 2 ** (a.number - 1)
                    gap = b.start_time.ToDatetime().timestamp() - a.end_time.ToDatetime().timestamp()
                    # never sooner than the policy's delay, never later than delay + jitter (delay/4) + slack
                    assert base <= gap <= base * 1.25 + SLACK_SECONDS, (x.action, a.number, gap)
    finally:
        cluster.stop()


@pytest.mark.slow
async def test_dead_letters_requeued_by_filter_run_again_and_succeed(
    database_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    flag = tmp_path / "fixed"
    cluster = Cluster(database_url, tmp_path, workers=2, flow_control=NO_BREAKER)
    cluster.start()
    try:
        async with authorized_channel(cluster.api.target) as ch:
            policy = {"max_retries": 1, "initial_delay_ms": 100, "jitter": False}
            actions = actions_pb2_grpc.ActionServiceStub(ch)
            await actions.CreateAction(
                action(
                    "flaky",
                    ["orders.created"],
                    "shop.reliability:fail_until",
                    config={"flag": str(flag)},
                    execution_mode="EXECUTION_MODE_QUEUED",
                    retry_policy=policy,
                )
            )
            await actions.CreateAction(
                action("broken", ["orders.created"], "shop.reliability:always_fail", retry_policy=policy)
            )
            await actions.CreateAction(
                action("plain", ["orders.created"], "shop.reliability:always_fail")  # no retry policy
            )
            events = events_pb2_grpc.EventServiceStub(ch)
            for i in range(5):
                await events.PublishEvent(
                    events_pb2.PublishEventRequest(
                        parent="tenants/admin",
                        event=events_pb2.Event(type="orders.created", data_json=json.dumps({"i": i})),
                    )
                )
            executions = executions_pb2_grpc.ExecutionServiceStub(ch)

            async def settled() -> bool:
                found = await _executions(executions)
                return len(found) == 15 and all(
                    x.status in (E.EXECUTION_STATUS_DEAD_LETTERED, E.EXECUTION_STATUS_FAILED) for x in found
                )

            await wait_for(settled, within=60)
            # without a retry policy nothing was exhausted: failed, not dead-lettered
            plain = await _executions(executions, action="plain")
            assert {x.status for x in plain} == {E.EXECUTION_STATUS_FAILED}

            dlq = await executions.ListDeadLetters(E.ListDeadLettersRequest(parent="tenants/admin", page_size=4))
            assert len(dlq.executions) == 4 and dlq.next_page_token
            rest = await executions.ListDeadLetters(
                E.ListDeadLettersRequest(parent="tenants/admin", page_size=100, page_token=dlq.next_page_token)
            )
            assert len(dlq.executions) + len(rest.executions) == 10
            flaky_dlq = await executions.ListDeadLetters(
                E.ListDeadLettersRequest(parent="tenants/admin", filter=E.DeadLetterFilter(action="flaky"))
            )
            assert len(flaky_dlq.executions) == 5
            assert {x.error.type for x in flaky_dlq.executions} == {"Refused"}

            # filters that match nothing requeue nothing
            past = timestamp_pb2.Timestamp(seconds=1)
            for flt in (
                E.DeadLetterFilter(action="flaky", error_type="timeout"),
                E.DeadLetterFilter(action="flaky", end_time=past),
            ):
                none = await executions.RequeueDeadLetters(
                    E.RequeueDeadLettersRequest(parent="tenants/admin", filter=flt)
                )
                assert none.requeued_count == 0

            flag.write_text("fixed")
            requeued = await executions.RequeueDeadLetters(
                E.RequeueDeadLettersRequest(
                    parent="tenants/admin", filter=E.DeadLetterFilter(action="flaky", error_type="Refused")
                )
            )
            assert requeued.requeued_count == 5

            async def flaky_succeeded() -> bool:
                found = await _executions(executions, action="flaky")
                return all(x.status == E.EXECUTION_STATUS_SUCCEEDED for x in found)

            await wait_for(flaky_succeeded, within=60)
            for x in await _executions(executions, action="flaky"):
                full = await executions.GetExecution(E.GetExecutionRequest(name=x.name))
                # the first series (2 failed attempts) is kept; the new one succeeded at once
                assert [(a.number, a.status) for a in full.attempts] == [
                    (1, E.EXECUTION_STATUS_FAILED),
                    (2, E.EXECUTION_STATUS_FAILED),
                    (3, E.EXECUTION_STATUS_SUCCEEDED),
                ]
            broken = await _executions(executions, action="broken")
            assert {x.status for x in broken} == {E.EXECUTION_STATUS_DEAD_LETTERED}, "the filter left others alone"

            # RetryExecution: one execution, a new series; a succeeded one cannot be retried
            one = broken[0]
            retried = await executions.RetryExecution(E.RetryExecutionRequest(name=one.name))
            assert retried.status == E.EXECUTION_STATUS_PENDING and retried.id == one.id
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await executions.RetryExecution(E.RetryExecutionRequest(name=x.name))
            assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION

            async def retried_dead_again() -> bool:
                again = await executions.GetExecution(E.GetExecutionRequest(name=one.name))
                return again.status == E.EXECUTION_STATUS_DEAD_LETTERED and again.attempt_count == 4

            await wait_for(retried_dead_again, within=30)
    finally:
        cluster.stop()
