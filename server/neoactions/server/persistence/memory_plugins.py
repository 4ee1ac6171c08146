"""Installed plugins in ``MemoryStore`` (as :mod:`.sql_plugins` is for the SQL stores)."""

from __future__ import annotations

import copy
from typing import Any

from neoactions.plugins.installed import InstalledPlugin
from neoactions.server.persistence.codec import from_micros, to_micros
from neoactions.server.persistence.memory_tables import MemoryData
from neoactions.server.persistence.sql_plugins import artifact_not_found


class MemoryPlugins:
    """The ``PluginStore`` methods over the data the concrete store shares."""

    data: MemoryData

    async def _round_trip(self) -> None:
        raise NotImplementedError

    def _plugin_tables(self) -> tuple[dict[tuple[str, str], InstalledPlugin], dict[str, bytes]]:
        tables: dict[str, Any] = self.data.plugins
        return tables.setdefault("versions", {}), tables.setdefault("artifacts", {})

    async def put_plugin(self, plugin: InstalledPlugin, artifact: bytes) -> None:
        await self._round_trip()
        versions, artifacts = self._plugin_tables()
        artifacts.setdefault(plugin.artifact_sha256, bytes(artifact))
        stored = copy.deepcopy(plugin)
        stored.installed_at = from_micros(to_micros(plugin.installed_at))  # as the SQL stores keep it
        versions[(plugin.name, plugin.version)] = stored

    async def list_plugins(self, name: str = "") -> list[InstalledPlugin]:
        await self._round_trip()
        versions, _ = self._plugin_tables()
        found = [p for p in versions.values() if not name or p.name == name]
        found.sort(key=lambda p: (p.name, p.installed_at, p.version))
        return [copy.deepcopy(p) for p in found]

    async def get_plugin_artifact(self, sha256: str) -> bytes:
        await self._round_trip()
        _, artifacts = self._plugin_tables()
        if sha256 not in artifacts:
            raise artifact_not_found(sha256)
        return artifacts[sha256]

    async def delete_plugin(self, name: str, version: str = "") -> int:
        await self._round_trip()
        versions, artifacts = self._plugin_tables()
        gone = [k for k in versions if k[0] == name and (not version or k[1] == version)]
        for key in gone:
            del versions[key]
        used = {p.artifact_sha256 for p in versions.values()}
        for sha in [s for s in artifacts if s not in used]:
            del artifacts[sha]
        return len(gone)


__all__ = ["MemoryPlugins"]
