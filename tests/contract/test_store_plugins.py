"""The ``PluginStore`` role: every store keeps installed plugin versions and artifacts alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from store_backends import Backend, ContractStore

from neoactions.domain.errors import NotFound
from neoactions.plugins.installed import InstalledPlugin

T0 = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def _plugin(version: str, sha: str, at: datetime = T0) -> InstalledPlugin:
    return InstalledPlugin(
        name="text-tools",
        version=version,
        manifest={"name": "text-tools", "version": version, "handler_types": [{"name": "text.template"}]},
        artifact_sha256=sha,
        grants=["secret:TOKEN"],
        registry="/srv/registry",
        signed_by="0123456789abcdef",
        installed_by="key_admin",
        installed_at=at,
    )


async def test_put_list_artifact_delete(store: ContractStore) -> None:
    a, b = "a" * 64, "b" * 64
    await store.put_plugin(_plugin("1.0.0", a), b"\x00asm-one\xff")
    await store.put_plugin(_plugin("1.1.0", b, T0 + timedelta(seconds=1)), b"\x00asm-two")
    other = _plugin("0.1.0", a)
    other.name = "another"
    await store.put_plugin(other, b"\x00asm-one\xff")

    listed = await store.list_plugins()
    assert [(p.name, p.version) for p in listed] == [
        ("another", "0.1.0"),
        ("text-tools", "1.0.0"),
        ("text-tools", "1.1.0"),
    ]
    first = listed[1]
    assert first == _plugin("1.0.0", a)
    assert [p.version for p in await store.list_plugins("text-tools")] == ["1.0.0", "1.1.0"]
    assert await store.get_plugin_artifact(a) == b"\x00asm-one\xff"
    assert await store.get_plugin_artifact(b) == b"\x00asm-two"

    # the same version again replaces it
    again = _plugin("1.0.0", a)
    again.grants = []
    await store.put_plugin(again, b"\x00asm-one\xff")
    assert (await store.list_plugins("text-tools"))[0].grants == []

    assert await store.delete_plugin("text-tools", "1.1.0") == 1
    with pytest.raises(NotFound) as gone:
        await store.get_plugin_artifact(b)  # no version uses it any more
    assert gone.value.reason == "PLUGIN_ARTIFACT_NOT_FOUND"
    assert await store.delete_plugin("text-tools") == 1
    # still used by another plugin
    assert await store.get_plugin_artifact(a) == b"\x00asm-one\xff"
    assert [p.name for p in await store.list_plugins()] == ["another"]
    assert await store.delete_plugin("missing") == 0


async def test_every_process_sees_an_install(backend: Backend, store: ContractStore) -> None:
    other = backend.make()
    await other.open()
    try:
        await store.put_plugin(_plugin("2.0.0", "c" * 64), b"module")
        seen = await other.list_plugins("text-tools")
        assert [p.version for p in seen] == ["2.0.0"]
        assert await other.get_plugin_artifact("c" * 64) == b"module"
    finally:
        await other.close()
