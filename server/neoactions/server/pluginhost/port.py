"""``PluginStore``: the store role that keeps installed plugins (admin data, every process reads it)."""

from __future__ import annotations

from typing import Protocol

from neoactions.plugins.installed import InstalledPlugin


class PluginStore(Protocol):
    """Installed plugin versions and their artifacts (by sha256), kept with the admin tenant."""

    async def put_plugin(self, plugin: InstalledPlugin, artifact: bytes) -> None:
        """Store an installed version (replacing the same name and version) and its artifact."""

    async def list_plugins(self, name: str = "") -> list[InstalledPlugin]:
        """Every installed version (of ``name``), ordered by name then install time."""

    async def get_plugin_artifact(self, sha256: str) -> bytes:
        """The artifact with that digest. ``NotFound`` (PLUGIN_ARTIFACT_NOT_FOUND)."""

    async def delete_plugin(self, name: str, version: str = "") -> int:
        """Remove one version (or every version) of ``name`` and the artifacts no version uses
        any more; returns how many versions were removed."""


__all__ = ["PluginStore"]
