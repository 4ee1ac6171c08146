"""The ``SecretStore`` role: every store keeps sealed secrets alike, per tenant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from store_backends import ContractStore

from neoactions.domain.errors import NotFound
from neoactions.domain.model import Tenant

T0 = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


async def test_put_get_list_delete(store: ContractStore) -> None:
    first = await store.put_secret("admin", "api_token", b"\x00sealed-1\xff", "key_1", T0)
    assert (first.name, first.ciphertext, first.version, first.created_by) == (
        "api_token",
        b"\x00sealed-1\xff",
        1,
        "key_1",
    )
    assert first.created_at == first.updated_at == T0

    later = T0 + timedelta(seconds=5)
    second = await store.put_secret("admin", "api_token", b"sealed-2", "key_2", later)
    # a new value: version + 1, updated now; created and its creator stay
    assert (second.ciphertext, second.version, second.created_by) == (b"sealed-2", 2, "key_1")
    assert (second.created_at, second.updated_at) == (T0, later)

    await store.put_secret("admin", "b_other", b"sealed-b", "key_1", T0)
    assert [s.name for s in await store.list_secrets("admin")] == ["api_token", "b_other"]
    found = await store.get_secrets("admin", ["api_token", "missing", "api_token"])
    assert list(found) == ["api_token"] and found["api_token"] == second
    assert await store.get_secrets("admin", []) == {}

    await store.delete_secret("admin", "api_token")
    assert [s.name for s in await store.list_secrets("admin")] == ["b_other"]
    with pytest.raises(NotFound) as refused:
        await store.delete_secret("admin", "api_token")
    assert refused.value.reason == "SECRET_NOT_FOUND"


async def test_reseal_replaces_only_what_is_still_the_old_ciphertext(store: ContractStore) -> None:
    await store.put_secret("admin", "a", b"old-a", "k", T0)
    await store.put_secret("admin", "b", b"old-b", "k", T0)
    done = await store.reseal_secrets(
        "admin", [("a", b"old-a", b"new-a"), ("b", b"stale", b"new-b"), ("c", b"x", b"y")]
    )
    assert done == 1
    secrets = {s.name: s for s in await store.list_secrets("admin")}
    assert secrets["a"].ciphertext == b"new-a" and secrets["a"].version == 1 and secrets["a"].updated_at == T0
    assert secrets["b"].ciphertext == b"old-b"


async def test_secrets_are_per_tenant(store: ContractStore) -> None:
    await store.create_tenant(Tenant("shop", "Shop"))
    await store.put_secret("shop", "token", b"shop-sealed", "k", T0)
    assert await store.list_secrets("admin") == []
    assert await store.get_secrets("admin", ["token"]) == {}
    with pytest.raises(NotFound):
        await store.delete_secret("admin", "token")
    assert [s.ciphertext for s in await store.list_secrets("shop")] == [b"shop-sealed"]
