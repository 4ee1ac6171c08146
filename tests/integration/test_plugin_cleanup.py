"""What an update and an uninstall leave behind: ``PluginHost`` over the in-memory store and
the real wasm runner (and a real python-sidecar virtual environment). An update keeps the
previous version and removes the older ones nothing uses; an uninstall removes the stored
artifacts and this process's local files."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from neoactions.domain.errors import NotFound
from neoactions.plugins import authoring, registry, signing
from neoactions.plugins.manifest import MANIFEST_FILE
from neoactions.sandboxes.wasm import register as register_wasm
from neoactions.server.persistence.memory import MemoryStore
from neoactions.server.pluginhost.cleanup import archive_image_id
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


def _publish(tmp_path: Path, name: str, version: str, kind: str, key: Path) -> None:
    plugin = authoring.init(name, kind, tmp_path / "src" / version)
    manifest = plugin / MANIFEST_FILE
    doc = yaml.safe_load(manifest.read_text())
    doc["version"] = version
    manifest.write_text(yaml.safe_dump(doc, sort_keys=False))
    if kind == "python":
        pyproject = plugin / "pyproject.toml"
        pyproject.write_text(pyproject.read_text().replace('version = "0.1.0"', f'version = "{version}"'))
    authoring.build(plugin)
    authoring.sign_plugin(plugin, key)
    registry.publish(plugin, tmp_path / "registry")


class InUse:
    """What the engine would answer: unfinished executions' versions, enabled actions' ranges."""

    def __init__(self) -> None:
        self.running: list[str] = []
        self.ranges: list[str] = []

    async def __call__(self, type_names: object) -> tuple[list[str], list[str]]:
        return list(self.running), list(self.ranges)


async def _host(tmp_path: Path, reg: HandlerRegistry, in_use: InUse) -> tuple[PluginHost, MemoryStore]:
    store = MemoryStore()
    await store.open()
    host = PluginHost(
        store,
        reg,
        registries=[str(tmp_path / "registry")],
        trusted_keys=[str(tmp_path / "keys" / signing.PUBLIC_FILE)],
        versions_in_use=in_use,
    )
    return host, store


async def test_an_update_keeps_the_previous_version_and_removes_older_ones_nothing_uses(
    tmp_path: Path, handler_registry: HandlerRegistry
) -> None:
    private, _ = signing.keygen(tmp_path / "keys")
    for version in ("0.1.0", "0.2.0", "0.3.0", "0.4.0", "0.5.0"):
        _publish(tmp_path, "hello", version, "wasm", private)
    in_use = InUse()
    host, store = await _host(tmp_path, handler_registry, in_use)
    await host.install("hello", "0.1.0")
    await host.update("hello", "0.2.0")
    assert host.installed_versions("hello") == ["0.1.0", "0.2.0"]  # the previous one stays

    in_use.running = ["0.1.0", "0.2.0"]  # an execution still runs on 0.1.0
    await host.update("hello", "0.3.0")
    assert host.installed_versions("hello") == ["0.1.0", "0.2.0", "0.3.0"]

    in_use.running = ["", "0.3.0"]  # one not resolved yet may take any version: nothing goes
    await host.update("hello", "0.4.0")
    assert host.installed_versions("hello") == ["0.1.0", "0.2.0", "0.3.0", "0.4.0"]

    in_use.running = []
    in_use.ranges = ["~0.2", "^0"]  # an action pinned to 0.2.x; one taking the newest
    await host.update("hello", "0.5.0")
    assert host.installed_versions("hello") == ["0.2.0", "0.4.0", "0.5.0"]
    assert sorted(p.version for p in await store.list_plugins("hello")) == ["0.2.0", "0.4.0", "0.5.0"]
    assert handler_registry.versions("hello") == ["0.2.0", "0.4.0", "0.5.0"]


async def test_uninstall_removes_the_virtual_environment_and_the_stored_artifact(
    tmp_path: Path, handler_registry: HandlerRegistry
) -> None:
    private, _ = signing.keygen(tmp_path / "keys")
    _publish(tmp_path, "pyecho", "0.1.0", "python", private)
    host, store = await _host(tmp_path, handler_registry, InUse())
    row = await host.install("pyecho")
    venv = tmp_path / "data" / "plugins" / "venvs" / row.artifact_sha256
    assert venv.is_dir()
    await host.uninstall("pyecho")
    assert not venv.exists()
    assert await store.list_plugins("pyecho") == []
    with pytest.raises(NotFound) as gone:
        await store.get_plugin_artifact(row.artifact_sha256)
    assert gone.value.reason == "PLUGIN_ARTIFACT_NOT_FOUND"


def test_the_image_id_of_a_saved_archive_is_its_config_digest(tmp_path: Path) -> None:
    digest = "ab" * 32
    for config in (f"{digest}.json", f"blobs/sha256/{digest}"):
        archive = tmp_path / "image.tar"
        with tarfile.open(archive, "w") as tar:
            data = json.dumps([{"Config": config, "RepoTags": ["x:1"], "Layers": []}]).encode()
            info = tarfile.TarInfo("manifest.json")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        assert archive_image_id(archive) == f"sha256:{digest}"
    (tmp_path / "junk.tar").write_bytes(b"not a tar")
    assert archive_image_id(tmp_path / "junk.tar") == ""
