"""The event store's tools against a real server (embedded store): CloudEvents in the client
and the CLI, StreamEvents under a slow reader, replay and backtest from the CLI."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from neoactions.client import AsyncClient, Client, authorized_channel
from neoactions.client.cli import app
from neoactions.domain.errors import FailedPrecondition, InvalidArgument
from neoactions.v1 import events_pb2, events_pb2_grpc
from tests.e2e.conftest import ServerProcess

ACTIONS = """
actions:
  - name: big-order
    trigger:
      event_types: ["orders.*"]
      conditions:
        - {field: data.amount, operator: gt, value: 100}
    handler:
      type: python
      config: {function: "shop.handlers:alert"}
"""


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("event-store-e2e")
    proc = ServerProcess(str(base / "data"), base / "server.log")
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
async def client(sqlite_server: ServerProcess) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(sqlite_server.target, timeout=30) as admin:
        tenant = await admin.create_tenant(f"t_{uuid.uuid4().hex[:12]}")
    async with AsyncClient(sqlite_server.target, tenant=tenant.slug, timeout=30) as c:
        yield c


def cloudevent(**extra: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"ce-{uuid.uuid4().hex[:8]}",
        "source": "/shop/checkout",
        "type": "orders.created",
        "subject": "order-17",
        "time": "2026-12-01T10:00:00Z",
        "datacontenttype": "application/json",
        "data": {"amount": 250},
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "shard": "7",
        **extra,
    }


async def test_a_cloudevent_round_trips_and_a_redelivery_is_a_duplicate(client: AsyncClient) -> None:
    doc = cloudevent()
    first = await client.publish_cloudevent(doc)
    assert not first.duplicate
    assert first.event.source == "/shop/checkout" and first.event.subject == "order-17"
    assert await client.get_cloudevent(first.event.id) == doc
    again = await client.publish_cloudevent({**doc, "data": {"amount": 1}})
    assert again.duplicate and again.event.id == first.event.id
    batch = await client.publish_cloudevents([cloudevent(), cloudevent()])
    assert len({r.event.id for r in batch}) == 2
    with pytest.raises(InvalidArgument) as bad:
        await client.publish_cloudevent({**doc, "specversion": "0.3"})
    assert bad.value.violations[0].field == "cloudevents[0].specversion"


async def test_event_stream_answers_each_send_with_its_id(client: AsyncClient) -> None:
    async with client.event_stream(max_in_flight=8) as stream:
        ids = await asyncio.gather(*(stream.send({"type": "orders.created", "data": {"i": i}}) for i in range(200)))
        batch = await stream.send_batch([{"type": "orders.paid", "data": {}}] * 3)
        with pytest.raises(InvalidArgument):
            await stream.send({"type": "Not A Type", "data": {}})
        # the stream goes on after a refused request
        last = await stream.send({"type": "orders.created", "data": {"last": True}})
    assert len(set(ids)) == 200 and len(set(batch)) == 3
    stored = await client.get_event(last)
    assert stored.data == {"last": True}
    assert (await client.get_event(ids[17])).data == {"i": 17}


def test_the_blocking_client_has_no_event_stream(sqlite_server: ServerProcess) -> None:
    with Client(sqlite_server.target) as sync, pytest.raises(FailedPrecondition):
        sync.event_stream()


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.slow
async def test_stream_events_with_a_slow_reader_acknowledges_each_event_once(
    sqlite_server: ServerProcess, client: AsyncClient
) -> None:
    """20,000 events (4 KiB each: 80 MB in all, 20 per request) sent as fast as the transport takes
    them while the answers are read slowly: the server holds a bounded number of requests (its
    RSS grows by far less than the events' size), answers each once, in order, and stores each
    once."""
    n, per_request, payload = 20_000, 20, "x" * 4096
    requests_sent = 0

    async def requests() -> AsyncIterator[events_pb2.StreamEventsRequest]:
        nonlocal requests_sent
        for start in range(0, n, per_request):
            requests_sent += 1
            yield events_pb2.StreamEventsRequest(
                parent=f"tenants/{client.tenant}" if start == 0 else "",
                events=[
                    events_pb2.Event(type="load.tested", data_json=json.dumps({"i": i, "pad": payload}))
                    for i in range(start, start + per_request)
                ],
            )

    before = _rss_kib(sqlite_server.pid)
    peak = before
    ids: list[str] = []
    answered = 0
    async with authorized_channel(sqlite_server.target) as channel:
        call = events_pb2_grpc.EventServiceStub(channel).StreamEvents(requests())
        async for answer in call:
            assert answer.sequence == answered and not answer.error_code, answer
            answered += 1
            ids.extend(answer.event_ids)
            if answered % 25 == 0:
                peak = max(peak, _rss_kib(sqlite_server.pid))
                # the slow reader: meanwhile the producer may only get as far as flow control lets it
                await asyncio.sleep(0.05)
                # what the transport's windows hold (a few MB) plus the server's few in work; 1,000 in all
                assert requests_sent - answered < 400, "the server kept reading requests it had not answered"
    assert len(ids) == len(set(ids)) == n
    grown_mib = (peak - before) / 1024
    assert grown_mib < 64, f"server RSS grew by {grown_mib:.0f} MiB for 80 MB of events"
    listed = [e async for e in client.iter_events(type_pattern="load.tested", page_size=1000)]
    assert len(listed) == n


class Cli:
    def __init__(self, target: str, tenant: str) -> None:
        self.runner = CliRunner(env={"NEOACTIONS_SERVER": None, "NEOACTIONS_TENANT": None, "COLUMNS": "200"})
        self.target, self.tenant = target, tenant

    def __call__(self, *args: str, input: str | None = None) -> Any:
        return self.runner.invoke(app, ["--server", self.target, "--tenant", self.tenant, *args], input=input)

    def json(self, *args: str, input: str | None = None) -> Any:
        result = self(*args, "--json", input=input)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)


async def test_cli_publishes_cloudevents_replays_and_backtests(
    sqlite_server: ServerProcess, client: AsyncClient, tmp_path: Path
) -> None:
    cli = Cli(sqlite_server.target, client.tenant)
    docs = [cloudevent(data={"amount": a}) for a in (50, 150, 300)]
    published = await asyncio.to_thread(cli.json, "publish", "--cloudevent", "-", input=json.dumps(docs))
    assert [p["duplicate"] for p in published] == [False] * 3
    event_id = published[1]["event"]["id"]
    shown = await asyncio.to_thread(cli.json, "events", "get", event_id, "--cloudevent")
    assert shown == docs[1]
    listed = await asyncio.to_thread(cli.json, "events", "list", "--type", "orders.*")
    assert {e["id"] for e in listed} == {p["event"]["id"] for p in published}

    (tmp_path / "a.yaml").write_text(ACTIONS)
    [tested] = (
        await asyncio.to_thread(
            cli.json, "actions", "test", "-f", str(tmp_path / "a.yaml"), "--against-history", "--since", "3650d"
        )
    )["results"]
    assert (tested["action"], tested["matched"]) == ("big-order", 2)
    assert tested["near_misses"][0]["event_id"] == published[0]["event"]["id"]

    assert (await asyncio.to_thread(cli, "apply", "-f", str(tmp_path / "a.yaml"))).exit_code == 0
    dry = await asyncio.to_thread(cli.json, "events", "replay", "--type", "orders.*", "--dry-run")
    assert [(a["action"], a["events"]) for a in dry["actions"]] == [("big-order", 2)]
    done = await asyncio.to_thread(cli.json, "events", "replay", "--type", "orders.*", "--action", "big-order")
    assert (done["state"], done["executions_created"]) == ("succeeded", 2)
    again = await asyncio.to_thread(cli.json, "events", "replay", "--type", "orders.*")
    assert (again["executions_created"], again["already_replayed"]) == (0, 2)
    human = await asyncio.to_thread(cli, "events", "replay", "--type", "orders.*", "--dry-run")
    assert human.exit_code == 0 and "big-order" in human.stdout

    replayed = [x async for x in client.iter_executions() if x.replay_of]
    assert sorted(x.replay_of for x in replayed) == sorted(p["event"]["id"] for p in published[1:])
    retention = await asyncio.to_thread(cli.json, "events", "retention", "--events", "30d", "--executions", "90d")
    assert (retention["events_seconds"], retention["executions_seconds"]) == (30 * 86400, 90 * 86400)
