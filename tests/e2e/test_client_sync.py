"""The blocking client against a real server (embedded store): the same calls, no event loop."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from neoactions.client import ApplyOutcome, AsyncClient, Client, InvalidArgument, NotFound
from neoactions.domain.model import ExecutionStatus, UpdateKind
from tests.e2e.conftest import ServerProcess

ALERT: dict[str, Any] = {
    "name": "big-order-alert",
    "trigger": {
        "event_types": ["orders.created"],
        "conditions": [{"field": "data.amount", "operator": "gt", "value": 100}],
    },
    "handler": {"type": "python", "config": {"function": "shop.handlers:alert"}},
    "priority": "high",
    "execution_mode": "sync",
    "timeout_seconds": 10,
}


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("sync-client-e2e")
    proc = ServerProcess(str(base / "data"), base / "server.log")
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def client(sqlite_server: ServerProcess) -> Iterator[Client]:
    with Client(sqlite_server.target, timeout=30) as admin:
        tenant = admin.create_tenant(f"t_{uuid.uuid4().hex[:12]}")
    with Client(sqlite_server.target, tenant=tenant.slug, timeout=30) as c:
        yield c


def test_apply_publish_and_list(client: Client, tmp_path: Path) -> None:
    assert [r.outcome for r in client.apply({"actions": [ALERT]})] == [ApplyOutcome.CREATED]
    assert [r.outcome for r in client.apply([ALERT])] == [ApplyOutcome.UNCHANGED]

    results = [client.publish("orders.created", {"amount": 100 + i}, wait=True) for i in range(1, 4)]
    assert all(r.executions[0].status is ExecutionStatus.SUCCEEDED for r in results)

    page = client.list_executions(action="big-order-alert", page_size=2)
    assert len(page) == 2 and page.next_page_token
    every = list(client.iter_executions(action="big-order-alert", page_size=2))
    assert sorted(e.id for e in every) == sorted(r.executions[0].id for r in results)
    assert len(list(client.iter_events(type_pattern="orders.*", page_size=1))) == 3

    disabled = client.disable_action("big-order-alert")
    assert not disabled.enabled
    assert client.publish("orders.created", {"amount": 500}).executions == []
    assert client.enable_action("big-order-alert").enabled
    client.delete_action("big-order-alert")
    with pytest.raises(NotFound) as info:
        client.get_action("big-order-alert")
    assert info.value.reason == "ACTION_NOT_FOUND"


def test_execute_stream_and_watch_resume(client: Client) -> None:
    client.create_action(ALERT)
    updates = list(client.execute("big-order-alert", {"amount": 1, "order_id": 3}))
    assert updates[-1].kind is UpdateKind.SUCCEEDED and updates[-1].output["amount"] == 1
    execution_id = updates[-1].execution_id

    # the watch stream never ends by itself: read what the token leaves, then stop early
    replay = []
    for update in client.watch_executions(execution_id=execution_id, resume_token=updates[0].resume_token):
        replay.append(update)
        if update.kind.is_final:
            break
    assert [u.kind for u in replay] == [u.kind for u in updates[1:]]

    execution = client.run({"type": "python", "config": {"function": "shop.handlers:boom"}}, {})
    assert execution.status is ExecutionStatus.FAILED and execution.attempt_count == 1
    assert client.get_execution(execution.id).error is not None


def test_errors_are_typed(client: Client) -> None:
    bad = {**ALERT, "handler": {"type": "no-such-runner", "config": {}}}
    with pytest.raises(InvalidArgument) as info:
        client.create_action(bad)
    assert [v.field for v in info.value.violations] == ["handler.type"]
    with pytest.raises(InvalidArgument) as unknown_key:
        client.create_action({**ALERT, "prio": "high"})
    assert "'prio'" in unknown_key.value.message
    with pytest.raises(NotFound):
        client.get_execution(str(uuid.uuid4()))


def test_sync_and_async_clients_offer_the_same_calls() -> None:
    """The two clients are written side by side; keep their surfaces identical."""

    def surface(cls: type) -> dict[str, list[tuple[str, Any, Any]]]:
        return {
            name: [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]
            for name, fn in vars(cls).items()
            if callable(fn) and not name.startswith("_")
        }

    assert surface(Client) == surface(AsyncClient)
