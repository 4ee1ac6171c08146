"""Tenant isolation and crash safety through the real server."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import asyncpg
import grpc
import pytest

from neoactions.client import authorized_channel
from neoactions.domain.model import ExecutionStatus
from neoactions.server.persistence import open_store
from neoactions.server.store import EventFilter, ExecutionFilter, Store
from neoactions.v1 import (
    actions_pb2,
    actions_pb2_grpc,
    events_pb2,
    events_pb2_grpc,
    executions_pb2,
    executions_pb2_grpc,
    tenants_pb2,
    tenants_pb2_grpc,
)
from tests.conftest import eventually
from tests.e2e.conftest import ServerProcess
from tests.e2e.test_pipeline import action, collect_until


async def test_tenants_never_see_each_other(server: ServerProcess) -> None:
    async with authorized_channel(server.target) as ch:
        tenants = tenants_pb2_grpc.TenantServiceStub(ch)
        actions = actions_pb2_grpc.ActionServiceStub(ch)
        events = events_pb2_grpc.EventServiceStub(ch)
        executions = executions_pb2_grpc.ExecutionServiceStub(ch)
        for slug in ("acme", "globex"):
            await tenants.CreateTenant(tenants_pb2.CreateTenantRequest(tenant_id=slug))
            await actions.CreateAction(
                action(
                    "notify",
                    ["orders.created"],
                    "shop.handlers:alert",
                    parent=f"tenants/{slug}",
                    config={"channel": slug},
                    execution_mode="EXECUTION_MODE_SYNC",
                )
            )
        listed = await tenants.ListTenants(tenants_pb2.ListTenantsRequest())
        assert {t.name for t in listed.tenants} >= {"tenants/admin", "tenants/acme", "tenants/globex"}

        globex_watch = executions.WatchExecutions(executions_pb2.WatchExecutionsRequest(parent="tenants/globex"))
        acme_watch = executions.WatchExecutions(executions_pb2.WatchExecutionsRequest(parent="tenants/acme"))
        await asyncio.sleep(0.2)
        reply = await events.PublishEvent(
            events_pb2.PublishEventRequest(
                parent="tenants/acme",
                wait=True,
                event=events_pb2.Event(type="orders.created", data_json=json.dumps({"amount": 1})),
            )
        )
        assert len(reply.executions) == 1
        assert json.loads(reply.executions[0].output_json)["channel"] == "acme"
        assert json.loads(reply.executions[0].output_json)["tenant"] == "acme"
        K = executions_pb2.ExecutionUpdate
        await collect_until(acme_watch, lambda seen: any(u.kind == K.KIND_SUCCEEDED for u in seen))
        acme_watch.cancel()

        # globex saw nothing, stores nothing, and cannot read acme's resources by name
        with pytest.raises(asyncio.TimeoutError):
            await collect_until(globex_watch, lambda seen: True, within=0.5)
        globex_watch.cancel()
        assert len((await events.ListEvents(events_pb2.ListEventsRequest(parent="tenants/globex"))).events) == 0
        assert (
            len(
                (
                    await executions.ListExecutions(executions_pb2.ListExecutionsRequest(parent="tenants/globex"))
                ).executions
            )
            == 0
        )
        execution_id = reply.executions[0].id
        for name in (f"tenants/globex/executions/{execution_id}",):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await executions.GetExecution(executions_pb2.GetExecutionRequest(name=name))
            assert err.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await events.GetEvent(events_pb2.GetEventRequest(name=f"tenants/globex/events/{reply.event.id}"))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        globex_action = await actions.GetAction(actions_pb2.GetActionRequest(name="tenants/globex/actions/notify"))
        assert globex_action.handler.config["channel"] == "globex"

    if server.store_url.startswith("postgresql://"):
        conn = await asyncpg.connect(server.store_url)
        try:
            rows = await conn.fetch(
                "SELECT table_schema, count(*) AS n FROM information_schema.tables "
                "WHERE table_name = 'actions' GROUP BY table_schema"
            )
            assert {r["table_schema"] for r in rows} >= {"admin", "tenant_acme", "tenant_globex"}
            assert await conn.fetchval('SELECT count(*) FROM "tenant_acme".events') == 1
            assert await conn.fetchval('SELECT count(*) FROM "tenant_globex".events') == 0
        finally:
            await conn.close()


async def _all_events(store: Store) -> list[str]:
    ids, token = [], ""
    while True:
        page = await store.list_events("admin", EventFilter(), 1000, token)
        ids += [e.id for e in page.items]
        token = page.next_page_token
        if not token:
            return ids


async def _all_executions(store: Store) -> list[tuple[str, ExecutionStatus]]:
    rows, token = [], ""
    while True:
        page = await store.list_executions("admin", ExecutionFilter(), 1000, token)
        rows += [(e.event_id, e.status) for e in page.items]
        token = page.next_page_token
        if not token:
            return rows


@pytest.mark.slow
async def test_kill_9_mid_run_loses_nothing(server: ServerProcess) -> None:
    total, batch = 1000, 50
    accepted: set[str] = set()

    async def publish(start: int, stop: int) -> int:
        """Publish events start..stop in batches; returns where it stopped (the server may die)."""
        async with authorized_channel(server.target) as ch:
            events = events_pb2_grpc.EventServiceStub(ch)
            n = start
            while n < stop:
                request = events_pb2.PublishEventsRequest(
                    parent="tenants/admin",
                    events=[
                        events_pb2.Event(type="jobs.submitted", data_json=json.dumps({"n": i}))
                        for i in range(n, min(stop, n + batch))
                    ],
                )
                try:
                    reply = await events.PublishEvents(request, timeout=10)
                except grpc.aio.AioRpcError:
                    return n
                accepted.update(r.event.id for r in reply.results)
                n += len(request.events)
            return n

    async with authorized_channel(server.target) as ch:
        await actions_pb2_grpc.ActionServiceStub(ch).CreateAction(
            action("work", ["jobs.submitted"], "shop.handlers:quick", config={"sleep": 0.02})
        )

    publishing = asyncio.create_task(publish(0, total))
    await eventually(lambda: len(accepted) >= total // 2 or publishing.done(), within=60, interval=0.01)
    server.kill()
    reached = await publishing
    assert reached < total, "the kill came too late to cut the run"

    server.start()
    await publish(reached, total)

    store = open_store(server.store_url)
    await store.open()
    try:
        await eventually(
            lambda: _all_executions(store),
            until=lambda statuses: len(statuses) >= len(accepted) and all(s.is_final for _, s in statuses),
            within=60,
            interval=0.1,
            what="every accepted event's execution final",
        )
        event_ids = await _all_events(store)
        statuses = await _all_executions(store)
    finally:
        await store.close()

    assert accepted <= set(event_ids), "an accepted event was lost"
    per_event = Counter(event_id for event_id, _ in statuses)
    assert set(per_event) == set(event_ids), "every stored event has its execution"
    assert all(n == 1 for n in per_event.values()), "exactly one execution per event"
    assert Counter(s for _, s in statuses) == {ExecutionStatus.SUCCEEDED: len(event_ids)}
    assert len(event_ids) >= total
