"""Authorization: every RPC has a rule (deny by default), roles grant what SPEC §9 says, a key
sees only its tenant, and the key ring refuses unknown, revoked and expired keys."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from google.protobuf import descriptor_pool

from neoactions.domain.errors import NotFound, PermissionDenied, ResourceExhausted, Unauthenticated
from neoactions.domain.keys import read_token_file, token_hash
from neoactions.domain.model import ADMIN_TENANT, utcnow
from neoactions.server import keys as keys_module
from neoactions.server.access import Caller, Permission, Role
from neoactions.server.api.authz import OPEN_SERVICES, RPC_PERMISSIONS
from neoactions.server.api.servicers import SERVICE_NAMES
from neoactions.server.keys import KeyAccess, KeyRing, bootstrap, new_key
from neoactions.server.persistence.memory import MemoryStore
from neoactions.v1 import (  # noqa: F401  (imported for their descriptors in the pool)
    actions_pb2,
    events_pb2,
    executions_pb2,
    keys_pb2,
    tenants_pb2,
)


def _methods() -> list[str]:
    pool = descriptor_pool.Default()
    out = []
    for service in SERVICE_NAMES:
        descriptor = pool.FindServiceByName(service)
        out += [f"{service}/{m.name}" for m in descriptor.methods]
    return out


def test_every_rpc_of_every_service_has_an_authorization_rule() -> None:
    methods = _methods()
    assert len(methods) >= 25
    missing = [m for m in methods if m not in RPC_PERMISSIONS]
    assert not missing, f"RPCs without an authorization rule (denied to everyone until given one): {missing}"


def test_every_rule_names_a_served_rpc() -> None:
    stale = sorted(set(RPC_PERMISSIONS) - set(_methods()))
    assert not stale, f"rules for RPCs the server does not serve: {stale}"


def test_only_health_and_reflection_are_open() -> None:
    assert {"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} == OPEN_SERVICES
    assert not OPEN_SERVICES & set(SERVICE_NAMES)


ROLE_GRANTS = {
    Role.ADMIN: {Permission.READ, Permission.PUBLISH, Permission.WRITE, Permission.MANAGE},
    Role.WRITER: {Permission.READ, Permission.PUBLISH, Permission.WRITE},
    Role.READER: {Permission.READ},
    Role.PUBLISHER: {Permission.PUBLISH},
}


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("permission", list(Permission))
def test_a_role_may_do_exactly_what_it_grants_in_its_own_tenant(role: Role, permission: Permission) -> None:
    caller = Caller(principal="k1", home_tenant="shop", role=role)
    if permission in ROLE_GRANTS[role]:
        KeyAccess().check(caller, "shop", permission)
    else:
        with pytest.raises(PermissionDenied) as raised:
            KeyAccess().check(caller, "shop", permission)
        assert raised.value.reason == "ROLE_NOT_ALLOWED"


@pytest.mark.parametrize("role", list(Role))
def test_another_tenant_does_not_exist_for_a_key(role: Role) -> None:
    caller = Caller(principal="k1", home_tenant="shop", role=role)
    for tenant in ("other", ADMIN_TENANT):
        with pytest.raises(NotFound) as raised:
            KeyAccess().check(caller, tenant, Permission.READ)
        assert raised.value.reason == "TENANT_NOT_FOUND"


def test_only_the_admin_tenants_admin_acts_in_every_tenant() -> None:
    KeyAccess().check(Caller(home_tenant=ADMIN_TENANT, role=Role.ADMIN), "shop", Permission.MANAGE)
    with pytest.raises(NotFound):
        KeyAccess().check(Caller(home_tenant=ADMIN_TENANT, role=Role.WRITER), "shop", Permission.READ)


def test_a_caller_without_a_key_is_unauthenticated_with_a_hint() -> None:
    with pytest.raises(Unauthenticated) as raised:
        KeyAccess().check(Caller(), "shop", Permission.READ)
    assert "NEOACTIONS_API_KEY" in raised.value.message


async def _ring_with(**kwargs: object) -> tuple[MemoryStore, KeyRing, str, str]:
    store = MemoryStore()
    await store.open()
    key, token = new_key("shop", "svc", "writer", **kwargs)  # type: ignore[arg-type]
    await store.create_api_key(key, token_hash(token))
    return store, KeyRing(store), token, key.id


async def test_a_valid_token_becomes_its_keys_caller() -> None:
    _, ring, token, key_id = await _ring_with()
    caller = await ring.authenticate(token, "req-1")
    assert (caller.principal, caller.home_tenant, caller.role, caller.principal_name, caller.request_id) == (
        key_id,
        "shop",
        Role.WRITER,
        "svc",
        "req-1",
    )


async def test_missing_malformed_unknown_and_tampered_tokens_are_refused() -> None:
    _, ring, token, _ = await _ring_with()
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    for bad, reason in (("", "API_KEY_MISSING"), ("hello", "API_KEY_INVALID"), (tampered, "API_KEY_INVALID")):
        with pytest.raises(Unauthenticated) as raised:
            await ring.authenticate(bad)
        assert raised.value.reason == reason
    unknown = "nak_" + "a" * 20 + "_" + token.rsplit("_", 1)[1][-43:].rjust(43, "x")
    with pytest.raises(Unauthenticated):
        await ring.authenticate(unknown)


async def test_a_revoked_key_is_refused_once_its_cache_entry_is_older_than_the_recheck(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(keys_module, "RECHECK_SECONDS", 0.05)
    store, ring, token, key_id = await _ring_with()
    await ring.authenticate(token)
    await store.revoke_api_key(key_id, utcnow())  # as another process would
    await asyncio.sleep(0.1)
    with pytest.raises(Unauthenticated) as raised:
        await ring.authenticate(token)
    assert "revoked" in raised.value.message


async def test_an_expired_key_is_refused() -> None:
    store = MemoryStore()
    await store.open()
    key, token = new_key("shop", "svc", "reader", expires_at=utcnow() + timedelta(milliseconds=50))
    await store.create_api_key(key, token_hash(token))
    ring = KeyRing(store)
    await ring.authenticate(token)
    await asyncio.sleep(0.1)
    with pytest.raises(Unauthenticated) as raised:
        await ring.authenticate(token)
    assert "expired" in raised.value.message


async def test_a_keys_publish_rate_is_enforced() -> None:
    _, ring, token, _ = await _ring_with(publish_rate=5.0)
    caller = await ring.authenticate(token)
    ring.charge_publish(caller, 5)
    with pytest.raises(ResourceExhausted) as raised:
        ring.charge_publish(caller, 5)
    assert raised.value.reason == "PUBLISH_RATE_EXCEEDED"


async def test_last_use_is_recorded_when_flushed() -> None:
    store, ring, token, key_id = await _ring_with()
    await ring.authenticate(token)
    await ring.flush()
    found = await store.get_api_key(key_id)
    assert found is not None and found[0].last_used_at is not None


async def test_bootstrap_creates_one_admin_key_only_in_an_empty_store(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "admin.key"
    store = MemoryStore()
    await store.open()
    created = await bootstrap(store, path)
    assert created is not None and created[1] == path
    assert path.stat().st_mode & 0o777 == 0o600
    token = read_token_file(path)
    assert token == created[0]
    caller = await KeyRing(store).authenticate(token)
    assert (caller.home_tenant, caller.role) == (ADMIN_TENANT, Role.ADMIN)
    assert await bootstrap(store, path) is None  # a key exists: nothing more
    page = await store.list_api_keys("")
    assert len(page.items) == 1


async def test_bootstrap_takes_the_token_an_operator_put_in_the_file(tmp_path: object) -> None:
    from pathlib import Path

    from neoactions.domain.keys import new_token

    path = Path(str(tmp_path)) / "given.key"
    chosen = new_token()[0]
    path.write_text(chosen + "\n")
    store = MemoryStore()
    await store.open()
    assert await bootstrap(store, path) == (chosen, path)
    assert (await KeyRing(store).authenticate(chosen)).role is Role.ADMIN


def test_the_services_own_work_passes_the_key_policy_in_every_tenant() -> None:
    from neoactions.server.access import SERVICE

    for tenant in ("shop", ADMIN_TENANT):
        for permission in Permission:
            KeyAccess().check(SERVICE, tenant, permission)


def test_the_roles_clients_know_are_the_roles_the_server_grants() -> None:
    from neoactions.domain.keys import ROLES

    assert tuple(role.value for role in Role) == ROLES
