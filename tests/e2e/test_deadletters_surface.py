"""The dead-letter and dedup surface through a real server, on the embedded store and on
PostgreSQL: the Python client's ``list_dead_letters`` / ``requeue_dead_letters`` /
``cancel_execution`` / ``retry_execution``, the CLI's ``dlq list|requeue`` and
``executions cancel|retry``, and event deduplication at the gRPC API (idempotency key,
``request_id``, CloudEvents ``source`` + ``id``).

Every test works in a tenant of its own on one server per store (a server takes seconds
to start and stop). The handlers fail on purpose, so the circuit breaker is switched off
for the server: an open breaker would delay the retries these tests wait for.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from neoactions.client import AsyncClient, Execution, ExecutionStatus, FailedPrecondition, authorized_channel
from neoactions.domain.model import EventStatus
from neoactions.v1 import events_pb2, events_pb2_grpc, executions_pb2, executions_pb2_grpc
from tests.conftest import eventually as poll
from tests.conftest import eventually_sync as poll_sync
from tests.e2e.conftest import ServerProcess, module_server, tenant_client
from tests.e2e.test_cli_e2e import Cli

T = TypeVar("T")

#: one retry 50 ms after the first failure, then the dead-letter queue
RETRY_ONCE = {"max_retries": 1, "backoff": "fixed", "initial_delay_ms": 50, "jitter": False}
#: the retry after the first failure is ten minutes away: the execution sits in ``scheduled``
RETRY_MUCH_LATER = {
    "max_retries": 3,
    "backoff": "fixed",
    "initial_delay_ms": 600_000,
    "max_delay_ms": 600_000,
    "jitter": False,
}
#: how long any state in these tests may take to be reached (they need well under a second)
WITHIN = 20.0

S = ExecutionStatus


# --- the server ----------------------------------------------------------------------


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def shared_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server per store for the module, its breaker off and its store polled often."""
    env = {
        "NEOACTIONS_FLOW_CONTROL": json.dumps({"breaker": {"failure_threshold": 0}}),
        "NEOACTIONS_POLL_INTERVAL_SECONDS": "0.2",
    }
    with module_server(request.param, tmp_path_factory.mktemp("dlq-e2e"), env) as proc:
        yield proc


@pytest.fixture
async def client(shared_server: ServerProcess) -> AsyncIterator[AsyncClient]:
    """An async client working in a fresh tenant of its own."""
    async with tenant_client(shared_server.target) as c:
        yield c


# --- helpers -------------------------------------------------------------------------


def action(
    name: str, event_type: str, function: str, retry_policy: dict[str, Any] | None = None, **config: Any
) -> dict[str, Any]:
    """An ``async`` python action in the declarative form."""
    doc: dict[str, Any] = {
        "name": name,
        "trigger": {"event_types": [event_type]},
        "handler": {"type": "python", "config": {"function": function, **config}},
        "execution_mode": "async",
        "timeout_seconds": 10,
    }
    if retry_policy is not None:
        doc["retry_policy"] = retry_policy
    return doc


async def eventually(probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], within: float = WITHIN) -> T:
    """Poll ``probe`` until ``done(value)``; the last value is in the failure message."""
    value: T = await poll(probe, until=done, within=within, interval=0.1)
    return value


def eventually_sync(probe: Callable[[], T], done: Callable[[T], bool], within: float = WITHIN) -> T:
    value: T = poll_sync(probe, until=done, within=within, interval=0.1)
    return value


async def executions_of(client: AsyncClient, action_name: str) -> list[Execution]:
    return [x async for x in client.iter_executions(action=action_name, page_size=100)]


def statuses(executions: list[Execution]) -> list[S]:
    return [x.status for x in executions]


def series(execution: Execution) -> list[tuple[int, S]]:
    return [(a.number, a.status) for a in execution.attempts]


# --- 1. the Python client ------------------------------------------------------------


async def test_client_dead_letters_listed_by_filter_and_requeued_succeed(client: AsyncClient, tmp_path: Path) -> None:
    flag = tmp_path / "fixed"
    await client.create_action(
        action("flaky", "orders.created", "shop.reliability:fail_until", RETRY_ONCE, flag=str(flag))
    )
    await client.create_action(action("broken", "orders.created", "shop.reliability:always_fail", RETRY_ONCE))
    published = [await client.publish("orders.created", {"order_id": i}) for i in range(2)]
    assert all(len(p.executions) == 2 for p in published)

    async def everything() -> list[Execution]:
        return [x async for x in client.iter_executions(page_size=100)]

    settled = await eventually(everything, lambda xs: len(xs) == 4 and all(x.status.is_final for x in xs))
    assert set(statuses(settled)) == {S.DEAD_LETTERED}
    flaky_ids = {x.id for x in settled if x.action_name == "flaky"}
    broken_ids = {x.id for x in settled if x.action_name == "broken"}
    assert len(flaky_ids) == len(broken_ids) == 2

    # the queue, filtered by action and error type, and paged
    flaky = await client.list_dead_letters(action="flaky")
    assert {x.id for x in flaky.items} == flaky_ids and not flaky.next_page_token
    for x in flaky.items:
        assert x.status is S.DEAD_LETTERED and x.attempt_count == 2
        assert x.error is not None and (x.error.type, x.error.retryable) == ("Refused", True)
    assert {x.id for x in (await client.list_dead_letters(action="broken")).items} == broken_ids
    assert (await client.list_dead_letters(error_type="no_such_error")).items == []
    first = await client.list_dead_letters(page_size=3)
    assert len(first.items) == 3 and first.next_page_token
    rest = await client.list_dead_letters(page_size=3, page_token=first.next_page_token)
    assert {x.id for x in first.items + rest.items} == flaky_ids | broken_ids and not rest.next_page_token

    # a filter matching nothing requeues nothing and changes nothing
    assert await client.requeue_dead_letters(action="flaky", error_type="timeout") == 0
    assert set(statuses(await executions_of(client, "flaky"))) == {S.DEAD_LETTERED}

    flag.write_text("fixed")
    assert await client.requeue_dead_letters(action="flaky", error_type="Refused") == 2

    flaky_after = await eventually(
        lambda: executions_of(client, "flaky"), lambda xs: all(x.status.is_final for x in xs)
    )
    assert statuses(flaky_after) == [S.SUCCEEDED] * 2
    before = {x.id: x for x in settled}
    for listed in flaky_after:
        x = await client.get_execution(listed.id)
        # the same execution (id, idempotency key) ran again: the old series is kept, numbers go on
        assert x.idempotency_key == before[x.id].idempotency_key
        assert series(x) == [(1, S.FAILED), (2, S.FAILED), (3, S.SUCCEEDED)]
        assert x.output == {"ok": True, "attempt": 3} and x.error is None
    assert (await client.list_dead_letters(action="flaky")).items == []
    # the filter left the other action's dead letters alone
    assert {x.id for x in (await client.list_dead_letters()).items} == broken_ids
    broken_now = await executions_of(client, "broken")
    assert all(x.attempt_count == 2 for x in broken_now) and set(statuses(broken_now)) == {S.DEAD_LETTERED}
    # the requeue reopened the events (processing); each still has a dead letter (broken), so
    # each settles as failed again rather than staying open
    for p in published:
        event = await client.get_event(p.event.id)
        assert event.status is EventStatus.FAILED, event


async def test_client_cancel_a_scheduled_execution_and_retry_failed_ones(client: AsyncClient, tmp_path: Path) -> None:
    flag = tmp_path / "fixed"
    await client.create_action(action("later", "jobs.later", "shop.reliability:always_fail", RETRY_MUCH_LATER))
    await client.create_action(action("once", "jobs.once", "shop.reliability:fail_until", flag=str(flag)))

    # cancel: an execution waiting ten minutes for its retry
    [scheduled] = (await client.publish("jobs.later", {})).executions
    waiting = await eventually(
        lambda: client.get_execution(scheduled.id), lambda x: x.status is S.SCHEDULED and x.attempt_count == 1
    )
    assert series(waiting) == [(1, S.FAILED)]
    # when the retry is due is visible: ten minutes after the failed attempt
    assert waiting.next_attempt_at is not None and waiting.attempts[0].finished_at is not None
    assert (waiting.next_attempt_at - waiting.attempts[0].finished_at).total_seconds() == pytest.approx(600, abs=1)
    cancelled = await client.cancel_execution(scheduled.id, "the customer withdrew")
    assert cancelled.id == scheduled.id and cancelled.status is S.CANCELLED
    assert cancelled.error is not None and cancelled.error.message == "the customer withdrew"
    stored = await client.get_execution(scheduled.id)
    assert stored.status is S.CANCELLED and stored.attempt_count == 1 and stored.finished_at is not None
    assert stored.next_attempt_at is None
    with pytest.raises(FailedPrecondition) as info:
        await client.cancel_execution(scheduled.id)
    assert info.value.reason == "EXECUTION_FINISHED"
    assert (await client.list_dead_letters()).items == [], "a cancelled execution is no dead letter"

    # retry: a failed execution (no retry policy: one attempt) runs again and succeeds
    once = await client.publish("jobs.once", {"n": 1})
    [failing] = once.executions
    failed = await eventually(lambda: client.get_execution(failing.id), lambda x: x.status.is_final)
    assert failed.status is S.FAILED and series(failed) == [(1, S.FAILED)]
    await eventually(lambda: client.get_event(once.event.id), lambda e: e.status is EventStatus.FAILED)
    with pytest.raises(FailedPrecondition):
        await client.cancel_execution(failing.id)
    flag.write_text("fixed")
    retried = await client.retry_execution(failing.id)
    assert retried.id == failing.id and retried.status is S.PENDING
    done = await eventually(lambda: client.get_execution(failing.id), lambda x: x.status.is_final)
    assert done.status is S.SUCCEEDED and series(done) == [(1, S.FAILED), (2, S.SUCCEEDED)]
    assert done.idempotency_key == failed.idempotency_key
    # the event was reopened by the retry and is completed now
    await eventually(lambda: client.get_event(once.event.id), lambda e: e.status is EventStatus.COMPLETED)
    with pytest.raises(FailedPrecondition) as info:
        await client.retry_execution(failing.id)
    assert info.value.reason == "EXECUTION_NOT_RETRYABLE"

    # retry of the cancelled one: a new series, which fails and waits for its retry again
    again = await client.retry_execution(scheduled.id)
    assert again.status is S.PENDING
    rescheduled = await eventually(
        lambda: client.get_execution(scheduled.id), lambda x: x.status is S.SCHEDULED and x.attempt_count == 2
    )
    assert [a.number for a in rescheduled.attempts] == [1, 2]
    assert (await client.cancel_execution(scheduled.id)).status is S.CANCELLED


async def test_client_cancel_pending_and_running_executions(client: AsyncClient) -> None:
    """With ``max_concurrency: 1`` one execution runs (a minute-long handler) and the next
    waits for the slot; cancelling the running one stops its attempt and frees the slot."""
    busy = action("busy", "jobs.busy", "shop.handlers:quick", sleep=60)
    await client.create_action({**busy, "max_concurrency": 1, "timeout_seconds": 120})

    async def busy_executions() -> list[Execution]:
        return sorted(await executions_of(client, "busy"), key=lambda x: x.created_at)

    def one_running_one_waiting(xs: list[Execution]) -> bool:
        return sorted(statuses(xs)) in ([S.PENDING, S.RUNNING], [S.RUNNING, S.SCHEDULED])

    for n in range(2):
        await client.publish("jobs.busy", {"n": n})
    both = await eventually(busy_executions, one_running_one_waiting)
    [running] = [x for x in both if x.status is S.RUNNING]
    [waiting] = [x for x in both if x.status is not S.RUNNING]
    assert waiting.attempt_count == 0

    first = await client.cancel_execution(waiting.id, "never mind")
    assert (first.status, first.attempt_count, first.attempts) == (S.CANCELLED, 0, [])
    second = await client.cancel_execution(running.id)
    assert second.status is S.CANCELLED and second.error is not None and second.error.type == "cancelled"
    assert [(a.number, a.status) for a in second.attempts] == [(1, S.CANCELLED)]

    # the stopped attempt gave its slot back: a third execution runs long before the minute is up
    third = (await client.publish("jobs.busy", {"n": 2})).executions[0]
    await eventually(lambda: client.get_execution(third.id), lambda x: x.status is S.RUNNING)
    for x in (waiting, running):
        stored = await client.get_execution(x.id)
        assert stored.status is S.CANCELLED and stored.finished_at is not None, stored
    assert (await client.get_execution(waiting.id)).attempts == [], "the cancelled waiting one never ran"
    await client.cancel_execution(third.id)


# --- 2. the CLI ----------------------------------------------------------------------

CLI_ACTIONS = """
actions:
  - name: flaky
    trigger: {{event_types: ["orders.created"]}}
    handler: {{type: python, config: {{function: "shop.reliability:fail_until", flag: "{flag}"}}}}
    execution_mode: async
    retry_policy: {{max_retries: 1, backoff: fixed, initial_delay_ms: 50, jitter: false}}
  - name: broken
    trigger: {{event_types: ["orders.created"]}}
    handler: {{type: python, config: {{function: "shop.reliability:always_fail"}}}}
    execution_mode: async
    retry_policy: {{max_retries: 1, backoff: fixed, initial_delay_ms: 50, jitter: false}}
  - name: later
    trigger: {{event_types: ["jobs.later"]}}
    handler: {{type: python, config: {{function: "shop.reliability:always_fail"}}}}
    execution_mode: async
    retry_policy: {{max_retries: 3, backoff: fixed, initial_delay_ms: 600000, max_delay_ms: 600000, jitter: false}}
  - name: once
    trigger: {{event_types: ["jobs.once"]}}
    handler: {{type: python, config: {{function: "shop.reliability:fail_until", flag: "{flag}"}}}}
    execution_mode: async
"""


#: the statuses an execution ends in, as the CLI's JSON spells them
FINAL = {s.value for s in S if s.is_final}


@pytest.fixture
def cli(shared_server: ServerProcess) -> Cli:
    runner = Cli(shared_server.target)
    created = runner("tenants", "create", runner.tenant, tenant="admin")
    assert created.exit_code == 0, created.output
    return runner


def cli_error(cli: Cli, *args: str) -> dict[str, Any]:
    """Runs a command expected to fail; its ``--json`` error document (stderr)."""
    result = cli(*args, "--json")
    assert result.exit_code == 1, result.output
    error: dict[str, Any] = json.loads(result.stderr)["error"]
    return error


def test_cli_dlq_list_and_requeue_then_cancel_and_retry(cli: Cli, tmp_path: Path) -> None:
    flag = tmp_path / "fixed"
    (tmp_path / "actions.yaml").write_text(CLI_ACTIONS.format(flag=flag))
    applied = cli.json("apply", "-f", str(tmp_path / "actions.yaml"))
    assert [a["outcome"] for a in applied] == ["created"] * 4
    for i in range(2):
        assert len(cli.json("publish", "orders.created", "--data", json.dumps({"order_id": i}))["executions"]) == 2

    def listed(*filters: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = cli.json("executions", "list", "--limit", "0", *filters)
        return found

    dead = eventually_sync(listed, lambda xs: len(xs) == 4 and all(x["status"] in FINAL for x in xs))
    assert {x["status"] for x in dead} == {"dead_lettered"}
    flaky_ids = {x["id"] for x in dead if x["action_name"] == "flaky"}
    broken_ids = {x["id"] for x in dead if x["action_name"] == "broken"}

    # dlq list: filtered, limited, with the last error
    dlq = cli.json("dlq", "list", "--action", "flaky")
    assert {x["id"] for x in dlq} == flaky_ids
    assert {(x["status"], x["attempt_count"], x["error"]["type"]) for x in dlq} == {("dead_lettered", 2, "Refused")}
    assert {x["id"] for x in cli.json("dlq", "list")} == flaky_ids | broken_ids
    assert len(cli.json("dlq", "list", "--limit", "1")) == 1
    assert cli.json("dlq", "list", "--error-type", "timeout") == []
    human = cli("dlq", "list", "--action", "broken")
    assert human.exit_code == 0 and all(i in human.stdout for i in broken_ids), human.output

    # dlq requeue: nothing for a filter matching nothing, then the action's dead letters
    assert cli.json("dlq", "requeue", "--action", "flaky", "--error-type", "timeout") == {"requeued": 0}
    flag.write_text("fixed")
    assert cli.json("dlq", "requeue", "--action", "flaky") == {"requeued": 2}
    after = eventually_sync(lambda: listed("--action", "flaky"), lambda xs: all(x["status"] in FINAL for x in xs))
    assert {x["id"]: x["status"] for x in after} == dict.fromkeys(flaky_ids, "succeeded")
    for execution_id in flaky_ids:
        shown = cli.json("executions", "get", execution_id)
        assert [(a["number"], a["status"]) for a in shown["attempts"]] == [
            (1, "failed"),
            (2, "failed"),
            (3, "succeeded"),
        ]
        assert shown["output"] == {"ok": True, "attempt": 3}
    assert {x["id"] for x in cli.json("dlq", "list")} == broken_ids

    # executions cancel: the one waiting ten minutes for its retry
    [waiting] = cli.json("publish", "jobs.later", "--data", "{}")["executions"]
    eventually_sync(
        lambda: cli.json("executions", "get", waiting["id"]),
        lambda x: x["status"] == "scheduled" and x["attempt_count"] == 1,
    )
    cancelled = cli.json("executions", "cancel", waiting["id"], "--reason", "not needed")
    assert (cancelled["id"], cancelled["status"], cancelled["error"]["message"]) == (
        waiting["id"],
        "cancelled",
        "not needed",
    )
    assert cli.json("executions", "get", waiting["id"])["status"] == "cancelled"
    refused = cli_error(cli, "executions", "cancel", waiting["id"])
    assert (refused["code"], refused["reason"]) == ("FAILED_PRECONDITION", "EXECUTION_FINISHED")

    # executions retry: a failed one runs again and succeeds (the flag is there now)
    flag.unlink()
    [once] = cli.json("publish", "jobs.once", "--data", "{}")["executions"]
    failed = eventually_sync(lambda: cli.json("executions", "get", once["id"]), lambda x: x["status"] in FINAL)
    assert (failed["status"], failed["attempt_count"]) == ("failed", 1)
    flag.write_text("fixed")
    retried = cli.json("executions", "retry", once["id"])
    assert (retried["id"], retried["status"]) == (once["id"], "pending")
    done = eventually_sync(lambda: cli.json("executions", "get", once["id"]), lambda x: x["status"] in FINAL)
    assert done["status"] == "succeeded"
    assert [(a["number"], a["status"]) for a in done["attempts"]] == [(1, "failed"), (2, "succeeded")]
    refused = cli_error(cli, "executions", "retry", once["id"])
    assert (refused["code"], refused["reason"]) == ("FAILED_PRECONDITION", "EXECUTION_NOT_RETRYABLE")
    human = cli("executions", "retry", once["id"])
    assert human.exit_code == 1 and "EXECUTION_NOT_RETRYABLE" in human.stderr


# --- 3. event dedup at the API -------------------------------------------------------


async def test_publish_dedup_by_idempotency_key_request_id_and_cloudevents_id(
    client: AsyncClient, shared_server: ServerProcess
) -> None:
    await client.create_action(action("count", "orders.created", "shop.handlers:quick"))
    parent = f"tenants/{client.tenant}"
    async with authorized_channel(shared_server.target) as channel:
        events = events_pb2_grpc.EventServiceStub(channel)
        executions = executions_pb2_grpc.ExecutionServiceStub(channel)

        async def publish(data: dict[str, Any], request_id: str = "", **fields: Any) -> events_pb2.PublishEventResponse:
            event = events_pb2.Event(type="orders.created", data_json=json.dumps(data), **fields)
            response: events_pb2.PublishEventResponse = await events.PublishEvent(
                events_pb2.PublishEventRequest(parent=parent, event=event, request_id=request_id)
            )
            return response

        async def stored_executions(event_id: str = "") -> list[executions_pb2.Execution]:
            page = await executions.ListExecutions(
                executions_pb2.ListExecutionsRequest(parent=parent, page_size=1000, action="count", event_id=event_id)
            )
            assert not page.next_page_token
            return list(page.executions)

        async def stored_event_ids() -> list[str]:
            page = await events.ListEvents(events_pb2.ListEventsRequest(parent=parent, page_size=1000))
            return [e.id for e in page.events]

        def same(a: events_pb2.PublishEventResponse, b: events_pb2.PublishEventResponse) -> None:
            """``b`` is the duplicate of ``a``: the original event and executions, nothing new."""
            assert (b.event.id, b.event.name) == (a.event.id, a.event.name)
            assert b.event.data_json == a.event.data_json, "the duplicate's own payload was not stored"
            assert [x.id for x in b.executions] == [x.id for x in a.executions]
            assert b.duplicate and not a.duplicate

        # the idempotency key; the second publish carries another payload
        first = await publish({"n": 1}, idempotency_key="order-1")
        again = await publish({"n": 2}, idempotency_key="order-1")
        same(first, again)
        assert len(first.executions) == 1
        assert [x.id for x in await stored_executions(first.event.id)] == [first.executions[0].id]

        # request_id stands in for a missing idempotency key
        by_request = await publish({"n": 3}, request_id="req-1")
        same(by_request, await publish({"n": 4}, request_id="req-1"))
        assert by_request.event.idempotency_key == "req-1" and by_request.event.id != first.event.id

        # CloudEvents: the producer's `source` + `id`
        ce = await publish({"n": 5}, source="urn:shop:orders", id="ce-1")
        same(ce, await publish({"n": 6}, source="urn:shop:orders", id="ce-1"))
        assert ce.event.id != "ce-1", "the stored event gets an id of its own"
        other_source = await publish({"n": 7}, source="urn:shop:billing", id="ce-1")
        other_id = await publish({"n": 8}, source="urn:shop:orders", id="ce-2")
        new_ids = {ce.event.id, other_source.event.id, other_id.event.id}
        assert len(new_ids) == 3, "another source or another id is another event"

        # a duplicate inside one batch, and a key already known, in PublishEvents
        batch = await events.PublishEvents(
            events_pb2.PublishEventsRequest(
                parent=parent,
                events=[
                    events_pb2.Event(type="orders.created", data_json='{"n": 9}', idempotency_key="order-2"),
                    events_pb2.Event(type="orders.created", data_json='{"n": 10}', idempotency_key="order-2"),
                    events_pb2.Event(type="orders.created", data_json='{"n": 11}', idempotency_key="order-1"),
                ],
            )
        )
        b0, b1, b2 = batch.results
        same(b0, b1)
        same(first, b2)

        # each accepted event stored once, each with one execution
        accepted = {first.event.id, by_request.event.id, *new_ids, b0.event.id}
        assert len(accepted) == 6
        assert sorted(await stored_event_ids()) == sorted(accepted)
        stored = await stored_executions()
        assert sorted(x.event_id for x in stored) == sorted(accepted)

        # keys are per tenant: the same key in another tenant is another event
        elsewhere = f"t_{uuid.uuid4().hex[:12]}"
        await client.create_tenant(elsewhere)
        foreign = await events.PublishEvent(
            events_pb2.PublishEventRequest(
                parent=f"tenants/{elsewhere}",
                event=events_pb2.Event(type="orders.created", data_json="{}", idempotency_key="order-1"),
            )
        )
        assert foreign.event.id != first.event.id and foreign.event.name.startswith(f"tenants/{elsewhere}/")
        assert sorted(await stored_event_ids()) == sorted(accepted)
