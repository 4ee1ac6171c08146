"""The audit log: what an engine records for each configuration change, and what it never
records (a secret). An engine on the in-memory store, in-process; the stores themselves are
held to the log's contract in tests/contract/test_store_audit_contract.py."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from neoactions.domain.audit import REDACTED, AuditEntry, redact
from neoactions.domain.errors import PermissionDenied
from neoactions.domain.model import ADMIN_TENANT, Action, HandlerSpec, Tenant, Trigger
from neoactions.server.access import Caller, Permission
from neoactions.server.audit import Auditor
from neoactions.server.bus import InProcessUpdateBus
from neoactions.server.engine import Engine
from neoactions.server.persistence.memory import MemoryStore
from neoactions.server.runners import ExecutionContext, HandlerRegistry, HandlerType, Result, RunnerUpdate
from neoactions.server.settings import Settings
from neoactions.server.store import AuditFilter

ALICE = Caller(principal="key_alice", principal_name="alice-laptop", request_id="req-42", home_tenant=ADMIN_TENANT)


class _Noop:
    async def execute(self, config: dict[str, Any], data: Any, ctx: ExecutionContext) -> AsyncIterator[RunnerUpdate]:
        yield Result(None)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    store = MemoryStore()
    await store.open()
    registry = HandlerRegistry()
    registry.register(HandlerType("noop", _Noop()))
    try:
        yield Engine(store, registry, InProcessUpdateBus(), Settings(data_dir=tmp_path))
    finally:
        await store.close()


def _action(name: str = "ship", **config: Any) -> Action:
    return Action(
        name=name, trigger=Trigger(["order.created"]), handler=HandlerSpec("noop", config), tenant=ADMIN_TENANT
    )


async def _log(engine: Engine, tenant: str = ADMIN_TENANT, **flt: Any) -> list[AuditEntry]:
    return (await engine.list_audit_entries(ALICE, tenant, AuditFilter(**flt), 100, "")).items


async def test_every_action_change_is_recorded_with_who_and_the_request(engine: Engine) -> None:
    await engine.create_action(ALICE, _action(), validate_only=True)
    assert await _log(engine) == [], "a validation stores nothing and records nothing"
    await engine.create_action(ALICE, _action())
    changed = _action()
    changed.description = "ships orders"
    await engine.update_action(ALICE, changed, None)
    await engine.set_action_enabled(ALICE, ADMIN_TENANT, "ship", False)
    await engine.set_action_enabled(ALICE, ADMIN_TENANT, "ship", False)  # no change: nothing to record
    await engine.set_action_enabled(ALICE, ADMIN_TENANT, "ship", True)
    await engine.delete_action(ALICE, ADMIN_TENANT, "ship")

    entries = await _log(engine)
    assert [(e.kind, e.target) for e in entries] == [
        ("action.delete", "ship"),
        ("action.enable", "ship"),
        ("action.disable", "ship"),
        ("action.update", "ship"),
        ("action.create", "ship"),
    ]
    assert {(e.principal, e.principal_name, e.request_id, e.tenant) for e in entries} == {
        ("key_alice", "alice-laptop", "req-42", ADMIN_TENANT)
    }
    created, updated = entries[-1], entries[-2]
    assert created.change["version"] == 1 and created.change["spec"]["handler"]["type"] == "noop"
    assert updated.change["version"] == 2 and updated.change["spec"]["description"] == "ships orders"
    assert entries[1].change == {"version": 4}
    assert [e.kind for e in await _log(engine, kind="action.enable")] == ["action.enable"]


async def test_tenant_creation_is_recorded_in_the_admin_tenant(engine: Engine) -> None:
    await engine.create_tenant(ALICE, Tenant("shop", "The Shop"))
    assert [(e.kind, e.target, e.change) for e in await _log(engine)] == [
        ("tenant.create", "shop", {"display_name": "The Shop"})
    ]
    assert await _log(engine, tenant="shop") == []


async def test_a_credential_in_a_handler_config_is_never_recorded(engine: Engine) -> None:
    await engine.create_action(ALICE, _action(headers={"Authorization": "Bearer s3cr3t"}, password="hunter2"))
    (entry,) = await _log(engine)
    config = entry.change["spec"]["handler"]["config"]
    assert config == {"headers": {"Authorization": REDACTED}, "password": REDACTED}
    assert "s3cr3t" not in repr(entry) and "hunter2" not in repr(entry)


def test_redaction_masks_secret_fields_at_any_depth_and_keeps_references() -> None:
    change = {
        "name": "stripe",
        "value": "sk_live_1",
        "steps": [{"config": {"api_key": "k1", "url": "https://x"}}, {"note": "Bearer abc"}],
        "webhook_signing_secret": "whsec_2",
        "token": "{{ secrets.stripe }}",
        "nested": {"client_secret": {"a": ["x", 1]}},
        "count": 3,
        "idempotency_key": "order-7",
    }
    assert redact(change) == {
        "name": "stripe",
        "value": REDACTED,
        "steps": [{"config": {"api_key": REDACTED, "url": "https://x"}}, {"note": REDACTED}],
        "webhook_signing_secret": REDACTED,
        "token": "{{ secrets.stripe }}",
        "nested": {"client_secret": {"a": [REDACTED, REDACTED]}},
        "count": 3,
        "idempotency_key": "order-7",
    }


async def test_an_audit_log_that_cannot_be_written_is_logged_and_the_change_stands(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = MemoryStore()  # never opened: every call is Unavailable
    with caplog.at_level(logging.ERROR, logger="neoactions.server.audit"):
        assert await Auditor(store).record(ALICE, ADMIN_TENANT, "secret.set", "stripe", {"value": "x"}) is None
    assert "secret.set stripe" in caplog.text and "req-42" in caplog.text
    with pytest.raises(ValueError):
        await Auditor(store).record(ALICE, ADMIN_TENANT, "Secret Set", "stripe")


class _NoManage:
    def check(self, caller: Caller, tenant: str, permission: Permission) -> None:
        if permission is Permission.MANAGE:
            raise PermissionDenied("admins only")


async def test_reading_the_log_needs_the_manage_permission(engine: Engine) -> None:
    engine.access = _NoManage()
    with pytest.raises(PermissionDenied):
        await _log(engine)
