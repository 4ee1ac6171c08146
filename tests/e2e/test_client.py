"""The async client against a real server (embedded store and PostgreSQL): tenants,
apply, publish with wait, execute, watch with resume, and typed errors."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from neoactions.client import (
    AlreadyExists,
    ApplyOutcome,
    AsyncClient,
    InvalidArgument,
    NotFound,
    StreamedUpdate,
)
from neoactions.domain.model import ExecutionStatus, Priority, UpdateKind
from tests.e2e.conftest import ServerProcess, module_server, tenant_client

ACTIONS = """
actions:
  - name: big-order-alert
    trigger:
      event_types: ["orders.created"]
      conditions:
        - {field: data.amount, operator: gt, value: 100}
    handler:
      type: python
      config: {function: "shop.handlers:alert", channel: "#sales"}
    priority: high
    execution_mode: sync
    timeout_seconds: 10
  - name: greeter
    trigger: {event_types: ["users.*"]}
    handler: {type: python, config: {function: "shop.handlers:Greeter"}}
"""


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def shared_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server per store for the whole module (a server takes seconds to stop);
    every test works in a tenant of its own."""
    with module_server(request.param, tmp_path_factory.mktemp("client-e2e")) as proc:
        yield proc


@pytest.fixture
async def client(shared_server: ServerProcess) -> AsyncIterator[AsyncClient]:
    """A client working in a fresh tenant of its own."""
    async with tenant_client(shared_server.target) as c:
        yield c


class LiveWatch:
    """A ``watch_executions`` stream known to be registered on the server.

    Probe events (type ``probe.ping``, matching nothing) are published with the
    watched correlation id until the first one comes back, so the test never
    relies on sleeping.
    """

    def __init__(self, client: AsyncClient, correlation_id: str, resume_token: str = "") -> None:
        self.client = client
        self.correlation_id = correlation_id
        self.queue: asyncio.Queue[StreamedUpdate] = asyncio.Queue()
        self.probes: set[str] = set()
        self._stream = client.watch_executions(correlation_id=correlation_id, resume_token=resume_token)
        self._task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        async for update in self._stream:
            await self.queue.put(update)

    async def ready(self) -> None:
        for _ in range(100):
            probe = await self.client.publish("probe.ping", {}, correlation_id=self.correlation_id)
            self.probes.add(probe.event.id)
            try:
                await asyncio.wait_for(self.queue.get(), 0.2)
                return
            except TimeoutError:
                continue
        raise AssertionError("the watch never delivered a probe")

    async def collect(self, done: Callable[[list[StreamedUpdate]], bool], within: float = 20.0) -> list[StreamedUpdate]:
        """Updates (probes left out) until ``done`` holds."""
        out: list[StreamedUpdate] = []
        async with asyncio.timeout(within):
            while not done(out):
                update = await self.queue.get()
                if update.event_id not in self.probes:
                    out.append(update)
        return out

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def test_tenants(client: AsyncClient) -> None:
    slug = f"shop_{uuid.uuid4().hex[:8]}"
    created = await client.create_tenant(slug, "The Shop")
    assert (created.slug, created.display_name) == (slug, "The Shop")
    slugs = [t.slug async for t in client.iter_tenants(page_size=1)]
    assert slugs.count(slug) == 1 and {"admin", client.tenant} <= set(slugs)

    with pytest.raises(AlreadyExists):
        await client.create_tenant(slug)
    with pytest.raises(InvalidArgument) as info:
        await client.create_tenant("Not A Slug")
    assert [v.field for v in info.value.violations] == ["tenant_id"]


async def test_apply_creates_then_leaves_unchanged_then_updates(client: AsyncClient, tmp_path: Path) -> None:
    shop = f"shop_{uuid.uuid4().hex[:8]}"
    await client.create_tenant(shop)
    path = tmp_path / "actions.yaml"
    path.write_text(ACTIONS)

    planned = await client.apply(path, dry_run=True, tenant=shop)
    assert [(r.outcome, r.dry_run) for r in planned] == [(ApplyOutcome.CREATED, True)] * 2
    with pytest.raises(NotFound):
        await client.get_action("greeter", tenant=shop)

    first = await client.apply(path, tenant=shop)
    assert [(r.name, r.outcome) for r in first] == [
        ("big-order-alert", ApplyOutcome.CREATED),
        ("greeter", ApplyOutcome.CREATED),
    ]
    alert = first[0].action
    assert (alert.tenant, alert.version, alert.priority, alert.enabled) == (shop, 1, Priority.HIGH, True)

    again = await client.apply(path, tenant=shop)
    assert [r.outcome for r in again] == [ApplyOutcome.UNCHANGED, ApplyOutcome.UNCHANGED]
    assert again[0].action.version == 1

    path.write_text(ACTIONS.replace("timeout_seconds: 10", "timeout_seconds: 20") + "    enabled: false\n")
    preview = await client.apply(path, dry_run=True, tenant=shop)
    assert [r.outcome for r in preview] == [ApplyOutcome.UPDATED, ApplyOutcome.UPDATED]
    assert (await client.get_action("big-order-alert", tenant=shop)).timeout_seconds == 10

    updated = await client.apply(path, tenant=shop)
    assert [(r.outcome, r.changed) for r in updated] == [
        (ApplyOutcome.UPDATED, ["timeout_seconds"]),
        (ApplyOutcome.UPDATED, ["enabled"]),
    ]
    current = await client.get_action("big-order-alert", tenant=shop)
    assert (current.version, current.timeout_seconds) == (2, 20)
    assert (await client.get_action("big-order-alert", 1, tenant=shop)).timeout_seconds == 10
    assert not (await client.get_action("greeter", tenant=shop)).enabled
    assert [r.outcome for r in await client.apply(path, tenant=shop)] == [ApplyOutcome.UNCHANGED] * 2

    # the actions live in that tenant only
    assert [a.name async for a in client.iter_actions()] == []
    assert sorted(a.name for a in await client.list_actions(tenant=shop)) == ["big-order-alert", "greeter"]


async def test_publish_with_wait_returns_the_sync_results(client: AsyncClient) -> None:
    await client.apply({"actions": [_alert_action()]})

    result = await client.publish("orders.created", {"amount": 250, "order_id": 7}, correlation_id="o-7", wait=True)
    assert result.event.type == "orders.created" and result.event.correlation_id == "o-7"
    [execution] = result.executions
    assert execution.action_name == "big-order-alert" and execution.event_id == result.event.id
    assert execution.status is ExecutionStatus.SUCCEEDED
    assert execution.output["alerted"] is True and execution.output["amount"] == 250

    small = await client.publish("orders.created", {"amount": 5})
    assert small.executions == []

    # a W3C trace context in the event's metadata reaches the handler (and runners' requests)
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    traced = await client.publish(
        "orders.created", {"amount": 300}, metadata={"traceparent": parent, "other": "x"}, wait=True
    )
    assert traced.executions[0].output["trace_context"] == {"traceparent": parent}

    stored = await client.get_event(result.event.id)
    assert stored.data == {"amount": 250, "order_id": 7}
    listed = await client.list_events(correlation_id="o-7")
    assert [e.id for e in listed] == [result.event.id]
    by_event = await client.list_executions(event_id=result.event.id)
    assert [e.id for e in by_event] == [execution.id]

    batch = await client.publish_many(
        [{"type": "orders.created", "data": {"amount": 500}}, {"type": "orders.created", "data": {"amount": 1}}]
    )
    assert [len(r.executions) for r in batch] == [1, 0]


async def test_execute_streams_updates_until_the_end(client: AsyncClient) -> None:
    await client.create_action(_alert_action())

    updates = [u async for u in client.execute("big-order-alert", {"amount": 3, "order_id": 9})]
    kinds = [u.kind for u in updates]
    assert kinds[0] is UpdateKind.STARTED or UpdateKind.STARTED in kinds
    assert UpdateKind.LOG in kinds and kinds[-1] is UpdateKind.SUCCEEDED
    assert updates[-1].output["amount"] == 3
    assert all(u.resume_token for u in updates)
    assert len({u.execution_id for u in updates}) == 1

    done = await client.run({"type": "python", "config": {"function": "shop.handlers:Greeter"}}, {"name": "ada"})
    assert done.status is ExecutionStatus.SUCCEEDED and done.output == {"message": "hello ada"}
    assert [a.number for a in done.attempts] == [1] and done.action_name == ""

    failed = await client.run({"type": "python", "config": {"function": "shop.handlers:boom"}}, {})
    assert failed.status is ExecutionStatus.FAILED
    assert failed.error is not None and "refused" in failed.error.message


async def test_watch_follows_the_fan_out_and_resumes(client: AsyncClient) -> None:
    await client.create_action(_alert_action(execution_mode="async"))
    correlation = f"order-{uuid.uuid4().hex[:8]}"
    watch = LiveWatch(client, correlation)
    try:
        await watch.ready()
        published = await client.publish("orders.created", {"amount": 900}, correlation_id=correlation)
        updates = await watch.collect(lambda got: any(u.kind is UpdateKind.SUCCEEDED for u in got))
    finally:
        await watch.close()
    kinds = [u.kind for u in updates]
    assert kinds[0] is UpdateKind.EVENT_ACCEPTED and updates[0].event_id == published.event.id
    assert {UpdateKind.SCHEDULED, UpdateKind.STARTED} <= set(kinds)
    assert all(u.correlation_id == correlation for u in updates)

    # resuming after the first update replays the rest, in order
    resumed = LiveWatch(client, correlation, resume_token=updates[0].resume_token)
    try:
        replay = await resumed.collect(lambda got: len(got) == len(updates) - 1, within=10)
    finally:
        await resumed.close()
    assert [(u.kind, u.execution_id) for u in replay] == [(u.kind, u.execution_id) for u in updates[1:]]


async def test_typed_errors(client: AsyncClient) -> None:
    with pytest.raises(NotFound) as missing:
        await client.get_action("no-such-action")
    assert missing.value.reason == "ACTION_NOT_FOUND"

    bad = _alert_action()
    bad["trigger"]["conditions"] = [{"field": "data.amount", "operator": "bigger_than", "value": 1}]
    with pytest.raises(InvalidArgument) as invalid:
        await client.create_action(bad)
    assert any(v.field.startswith("trigger.conditions[0]") for v in invalid.value.violations)

    with pytest.raises(InvalidArgument) as bad_type:
        await client.publish("Orders.Created!", {})
    assert [v.field for v in bad_type.value.violations] == ["event.type"]

    with pytest.raises(NotFound):
        await client.publish("orders.created", {}, tenant="nobody")
    with pytest.raises(NotFound):
        await client.delete_action("no-such-action")


def _alert_action(**extra: Any) -> dict[str, Any]:
    return {
        "name": "big-order-alert",
        "trigger": {
            "event_types": ["orders.created"],
            "conditions": [{"field": "data.amount", "operator": "gt", "value": 100}],
        },
        "handler": {"type": "python", "config": {"function": "shop.handlers:alert"}},
        "priority": "high",
        "execution_mode": "sync",
        "timeout_seconds": 10,
        **extra,
    }
