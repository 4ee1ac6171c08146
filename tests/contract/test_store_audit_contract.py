"""The ``AuditStore`` role: every store appends, filters and pages the audit log alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from store_backends import ContractStore

from neoactions.domain.audit import REDACTED, AuditEntry
from neoactions.domain.errors import InvalidArgument, NotFound
from neoactions.domain.model import Tenant
from neoactions.server.store import AuditFilter

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def entry(kind: str, target: str, minute: int, principal: str = "key_a", **change: object) -> AuditEntry:
    return AuditEntry(
        kind=kind,
        target=target,
        change=dict(change),
        principal=principal,
        principal_name=f"name of {principal}",
        request_id=f"req-{minute}",
        at=T0 + timedelta(minutes=minute),
    )


async def _all(store: ContractStore, flt: AuditFilter, page_size: int, tenant: str = "admin") -> list[str]:
    seen: list[str] = []
    token = ""
    while True:
        page = await store.list_audit(tenant, flt, page_size=page_size, page_token=token)
        assert len(page.items) <= page_size
        seen += [f"{e.kind}:{e.target}" for e in page.items]
        token = page.next_page_token
        if not token:
            return seen


async def test_an_entry_comes_back_as_stored_with_its_change_redacted(store: ContractStore) -> None:
    stored = await store.append_audit(
        "admin",
        entry(
            "secret.set",
            "stripe",
            0,
            value="sk_live_123",
            handler={"config": {"token": "abc", "url": "https://x", "auth": "{{ secrets.stripe }}"}},
        ),
    )
    assert stored.id and stored.tenant == "admin"
    page = await store.list_audit("admin", AuditFilter())
    assert page.items == [stored]
    got = page.items[0]
    assert (got.kind, got.target, got.principal, got.principal_name, got.request_id) == (
        "secret.set",
        "stripe",
        "key_a",
        "name of key_a",
        "req-0",
    )
    assert got.at == T0
    assert got.change == {
        "value": REDACTED,
        "handler": {"config": {"token": REDACTED, "url": "https://x", "auth": "{{ secrets.stripe }}"}},
    }
    assert "sk_live_123" not in repr(got)


async def test_filters_and_pages_newest_first(store: ContractStore) -> None:
    kinds = ["action.create", "action.update", "action.delete", "key.create", "action.enable", "tenant.create"]
    for minute, kind in enumerate(kinds):
        await store.append_audit("admin", entry(kind, f"obj{minute % 2}", minute, principal=f"key_{minute % 3}"))
    everything = [f"{k}:obj{i % 2}" for i, k in reversed(list(enumerate(kinds)))]
    for page_size in (1, 2, 50):
        assert await _all(store, AuditFilter(), page_size) == everything
        assert await _all(store, AuditFilter(kind="action"), page_size) == [
            "action.enable:obj0",
            "action.delete:obj0",
            "action.update:obj1",
            "action.create:obj0",
        ]
        assert await _all(store, AuditFilter(kind="action.*"), page_size) == await _all(
            store, AuditFilter(kind="action"), page_size
        )
        assert await _all(store, AuditFilter(kind="action.delete"), page_size) == ["action.delete:obj0"]
        # a prefix is whole words: "act" is not "action"
        assert await _all(store, AuditFilter(kind="act"), page_size) == []
        assert await _all(store, AuditFilter(principal="key_1"), page_size) == [
            "action.enable:obj0",
            "action.update:obj1",
        ]
        assert await _all(store, AuditFilter(target="obj1", kind="action"), page_size) == ["action.update:obj1"]
        window = AuditFilter(since=T0 + timedelta(minutes=2), until=T0 + timedelta(minutes=4))
        assert await _all(store, window, page_size) == ["key.create:obj1", "action.delete:obj0"]


async def test_same_time_entries_page_without_overlap(store: ContractStore) -> None:
    for i in range(7):
        await store.append_audit("admin", entry("action.create", f"a{i}", 0))
    seen = await _all(store, AuditFilter(), 3)
    assert sorted(seen) == sorted(f"action.create:a{i}" for i in range(7))


async def test_tenants_have_their_own_logs(store: ContractStore) -> None:
    await store.create_tenant(Tenant("shop", "Shop"))
    await store.append_audit("shop", entry("action.create", "a", 0))
    assert await _all(store, AuditFilter(), 10, tenant="shop") == ["action.create:a"]
    assert await _all(store, AuditFilter(), 10, tenant="admin") == []
    with pytest.raises(NotFound):
        await store.list_audit("nobody", AuditFilter())


async def test_bad_filters_and_entries_are_refused_naming_the_field(store: ContractStore) -> None:
    with pytest.raises(InvalidArgument) as bad_kind:
        await store.list_audit("admin", AuditFilter(kind="Action;drop"))
    assert bad_kind.value.violations[0].field == "filter.kind"
    with pytest.raises(InvalidArgument) as bad_token:
        await store.list_audit("admin", AuditFilter(), page_token="nonsense")
    assert bad_token.value.violations[0].field == "page_token"
    with pytest.raises(InvalidArgument):
        await store.append_audit("admin", entry("Not A Kind", "x", 0))
    assert (await store.list_audit("admin", AuditFilter())).items == []
