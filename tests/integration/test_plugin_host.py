"""``PluginHost`` over the in-memory store and the real wasm runner: what an operator's
``allow_unsigned_plugins`` allows and what it never does, and a second host on the same data
following an install (as a second process does when told by the change feed)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from neoactions.domain.errors import FailedPrecondition, InvalidArgument
from neoactions.plugins import authoring, registry, signing
from neoactions.plugins.manifest import read_manifest
from neoactions.plugins.registry import Unreachable
from neoactions.sandboxes.wasm import register as register_wasm
from neoactions.server.persistence.memory import MemoryStore
from neoactions.server.persistence.memory_tables import MemoryData
from neoactions.server.pluginhost.host import PluginHost
from neoactions.server.runners import HandlerRegistry


@pytest.fixture
async def handler_registry(tmp_path: Path) -> AsyncIterator[HandlerRegistry]:
    reg = HandlerRegistry({"data_dir": str(tmp_path / "data"), "wasm_warm": ()})
    register_wasm(reg)
    try:
        yield reg
    finally:
        await reg.aclose()


def _publish(tmp_path: Path, name: str, key: Path | None) -> Path:
    plugin = authoring.init(name, "wasm", tmp_path / "src")
    authoring.build(plugin)
    if key is not None:
        authoring.sign_plugin(plugin, key)
        registry.publish(plugin, tmp_path / "registry")
    else:  # publish refuses unsigned plugins: write the registry entry by hand
        folder = tmp_path / "registry" / name / "0.1.0"
        folder.mkdir(parents=True)
        doc = read_manifest(plugin).document
        (folder / registry.MANIFEST_JSON).write_text(json.dumps(doc))
        (folder / f"{name}.wasm").write_bytes((plugin / f"{name}.wasm").read_bytes())
        index_path = tmp_path / "registry" / "index.json"
        index = json.loads(index_path.read_text()) if index_path.exists() else {"plugins": {}}
        index["plugins"][name] = {
            "versions": {
                "0.1.0": {"manifest": f"{name}/0.1.0/{registry.MANIFEST_JSON}", "artifact": f"{name}/0.1.0/{name}.wasm"}
            }
        }
        index_path.write_text(json.dumps(index))
    return tmp_path / "registry"


async def test_unsigned_plugins_install_only_when_the_operator_allows_it(
    tmp_path: Path, handler_registry: HandlerRegistry
) -> None:
    where = str(_publish(tmp_path, "loose", None))
    strict = PluginHost(await _store(), handler_registry, registries=[where])
    with pytest.raises(FailedPrecondition) as refused:
        await strict.install("loose")
    assert refused.value.reason == "PLUGIN_UNSIGNED"
    assert "loose" not in handler_registry

    lenient = PluginHost(await _store(), handler_registry, registries=[where], allow_unsigned=True)
    row = await lenient.install("loose")
    assert row.signed_by == "" and "loose" in handler_registry


async def test_a_bad_signature_is_refused_even_when_unsigned_plugins_are_allowed(
    tmp_path: Path, handler_registry: HandlerRegistry
) -> None:
    private, _ = signing.keygen(tmp_path / "keys")
    where = _publish(tmp_path, "forged", private)
    manifest = where / "forged" / "0.1.0" / registry.MANIFEST_JSON
    doc = json.loads(manifest.read_text())
    doc["description"] = "changed after signing"
    manifest.write_text(json.dumps(doc))
    host = PluginHost(
        await _store(),
        handler_registry,
        registries=[str(where)],
        trusted_keys=[str(tmp_path / "keys" / signing.PUBLIC_FILE)],
        allow_unsigned=True,
    )
    with pytest.raises(FailedPrecondition) as refused:
        await host.install("forged")
    assert refused.value.reason == "PLUGIN_BAD_SIGNATURE"
    assert host.listed(include_builtin=False) == []


async def test_another_host_on_the_same_data_follows_installs(
    tmp_path: Path, handler_registry: HandlerRegistry
) -> None:
    private, public = signing.keygen(tmp_path / "keys")
    where = str(_publish(tmp_path, "shared", private))
    data = MemoryData()
    first = PluginHost(await _store(data), handler_registry, registries=[where], trusted_keys=[str(public)])
    other_registry = HandlerRegistry({"data_dir": str(tmp_path / "other"), "wasm_warm": ()})
    register_wasm(other_registry)
    try:
        second = PluginHost(await _store(data), other_registry, registries=[where], trusted_keys=[str(public)])
        await first.install("shared")
        assert "shared" not in other_registry
        await second.on_change("shared")
        assert other_registry.get("shared").version == "0.1.0"
        await first.uninstall("shared")
        await second.on_change("shared")
        assert "shared" not in other_registry
    finally:
        await other_registry.aclose()


async def _store(data: MemoryData | None = None) -> MemoryStore:
    store = MemoryStore(data)
    await store.open()
    return store


async def test_search_answers_from_the_registries_that_can_be_read(
    tmp_path: Path, handler_registry: HandlerRegistry
) -> None:
    private, public = signing.keygen(tmp_path / "keys")
    where = str(_publish(tmp_path, "reachable", private))
    down = str(tmp_path / "no-such-registry")
    host = PluginHost(await _store(), handler_registry, registries=[down, where], trusted_keys=[str(public)])
    assert [e.name for e in await host.search()] == ["reachable"]  # (the dashboard asks this way)
    unreachable: list[Unreachable] = []
    assert [e.name for e in await host.search("reach", unreachable=unreachable)] == ["reachable"]
    assert [u.registry for u in unreachable] == [down]
    with pytest.raises(InvalidArgument) as unknown:
        await host.search(registry="http://example.invalid/")
    assert unknown.value.reason == "UNKNOWN_REGISTRY"
    row = await host.install("reachable")  # the registry that is down is skipped
    assert row.registry == where
