"""The audit log through a real server (embedded store and PostgreSQL): every action change
is listed with who made it and the request id; reading it needs the admin role; the CLI
shows it as a table and as JSON."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2
from typer.testing import CliRunner

from neoactions.client import AsyncClient, PermissionDenied
from neoactions.client.cli import app
from neoactions.v1 import actions_pb2, actions_pb2_grpc
from tests.e2e.conftest import ServerProcess, tenant_client


def _alert(**changes: Any) -> dict[str, Any]:
    return {
        "name": "big-order-alert",
        "trigger": {"event_types": ["orders.created"]},
        "handler": {"type": "python", "config": {"function": "shop.handlers:alert"}},
        **changes,
    }


async def _create_with_request_id(target: str, tenant: str, request_id: str) -> None:
    """CreateAction through a raw stub, sending ``x-request-id`` as a caller's own client would."""
    metadata = (("authorization", f"Bearer {os.environ['NEOACTIONS_API_KEY']}"), ("x-request-id", request_id))
    config = struct_pb2.Struct()
    config.update({"function": "shop.handlers:alert"})
    action = actions_pb2.Action(
        trigger=actions_pb2.Trigger(event_types=["orders.created"]),
        handler=actions_pb2.Handler(type="python", config=config),
    )
    async with grpc.aio.insecure_channel(target) as channel:
        stub = actions_pb2_grpc.ActionServiceStub(channel)
        request = actions_pb2.CreateActionRequest(
            parent=f"tenants/{tenant}", action_id="big-order-alert", action=action
        )
        await stub.CreateAction(request, metadata=metadata, timeout=30)


async def test_action_changes_are_listed_with_who_and_the_request(server: ServerProcess) -> None:
    request_id = f"req-{uuid.uuid4().hex[:8]}"
    async with tenant_client(server.target) as client:
        tenant = client.tenant
        await _create_with_request_id(server.target, tenant, request_id)
        await client.update_action(_alert(description="pages the on-call"))
        await client.disable_action("big-order-alert")
        await client.enable_action("big-order-alert")
        await client.delete_action("big-order-alert")

        entries = [e async for e in client.iter_audit_entries(page_size=2)]
        assert [e.kind for e in entries] == [
            "action.delete",
            "action.enable",
            "action.disable",
            "action.update",
            "action.create",
        ]
        assert {e.target for e in entries} == {"big-order-alert"} and {e.tenant for e in entries} == {tenant}
        principals = {(e.principal, e.principal_name) for e in entries}
        assert len(principals) == 1 and "" not in next(iter(principals))
        created = entries[-1]
        assert created.request_id == request_id
        assert created.change["spec"]["handler"]["config"] == {"function": "shop.handlers:alert"}
        assert entries[-2].change["spec"]["description"] == "pages the on-call"

        only = (await client.list_audit_entries(kind="action.disable")).items
        assert [e.kind for e in only] == ["action.disable"]
        assert (await client.list_audit_entries(kind="action", principal="nobody")).items == []

        # the tenant's creation is in the admin tenant's log, not in the tenant's
        assert "tenant.create" not in {e.kind for e in entries}
        admin_log = await client.list_audit_entries(kind="tenant.create", target=tenant, tenant="admin")
        assert [(e.kind, e.target) for e in admin_log.items] == [("tenant.create", tenant)]

        _, reader_key = await client.create_api_key("auditor", "reader")
    async with AsyncClient(server.target, tenant=tenant, api_key=reader_key, timeout=30) as reader:
        with pytest.raises(PermissionDenied):
            await reader.list_audit_entries()


# the stores are held to the log above; the CLI only renders it: the embedded store is enough
@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_the_cli_lists_the_audit_log(server: ServerProcess, tmp_path: Path) -> None:
    runner = CliRunner(env={"NEOACTIONS_SERVER": None, "NEOACTIONS_TENANT": None, "COLUMNS": "200"})
    tenant = f"t_{uuid.uuid4().hex[:12]}"

    def cli(*args: str) -> str:
        done = runner.invoke(app, ["--server", server.target, *args])
        assert done.exit_code == 0, done.output
        return done.output

    cli("tenants", "create", tenant)
    declared = tmp_path / "actions.yaml"
    declared.write_text(
        "actions:\n  - name: big-order-alert\n    trigger: {event_types: [orders.created]}\n"
        '    handler: {type: python, config: {function: "shop.handlers:alert"}}\n'
    )
    cli("--tenant", tenant, "apply", "-f", str(declared))
    cli("--tenant", tenant, "actions", "disable", "big-order-alert")

    table = cli("--tenant", tenant, "audit", "list", "--since", "1h")
    assert "action.disable" in table and "action.create" in table and "big-order-alert" in table
    listed = json.loads(cli("audit", "list", "--kind", "action", "--json", "--tenant", tenant))
    assert [e["kind"] for e in listed] == ["action.disable", "action.create"]
    assert json.loads(cli("--tenant", tenant, "audit", "list", "--since", "2030-01-01T00:00:00", "--json")) == []
    bad = runner.invoke(app, ["--server", server.target, "--tenant", tenant, "audit", "list", "--since", "yesterday"])
    assert bad.exit_code == 2 and "--since" in bad.output
