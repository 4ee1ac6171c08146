"""Installed plugins in the SQL stores: ``plugins`` and ``plugin_artifacts`` in the admin
tenant (admin migration 0003); artifacts are kept once per digest."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from neoactions.domain.errors import NotFound
from neoactions.domain.model import ADMIN_TENANT
from neoactions.plugins.installed import InstalledPlugin
from neoactions.server.persistence.codec import Dialect, Row
from neoactions.server.persistence.statements import Statements

if TYPE_CHECKING:
    from neoactions.server.persistence.sqlstore import Tx

_COLUMNS = "name, version, manifest, artifact_sha256, grants, registry, signed_by, installed_by, installed_at, status"


def artifact_not_found(sha256: str) -> NotFound:
    return NotFound(f"no stored plugin artifact sha256:{sha256}", reason="PLUGIN_ARTIFACT_NOT_FOUND")


class SqlPluginsMixin:
    """The ``PluginStore`` methods over the transaction of the concrete store."""

    dialect: Dialect

    def _tx(self, tenant: str, *, write: bool) -> AbstractAsyncContextManager[tuple[Tx, Statements]]:
        raise NotImplementedError

    def _plugin(self, row: Row) -> InstalledPlugin:
        d = self.dialect
        manifest: Any = d.dec_json(row[2])
        grants: Any = d.dec_json(row[4])
        return InstalledPlugin(
            name=row[0],
            version=row[1],
            manifest=dict(manifest),
            artifact_sha256=row[3],
            grants=list(grants or []),
            registry=row[5],
            signed_by=row[6],
            installed_by=row[7],
            installed_at=d.dec_time(row[8]),
            status=row[9],
        )

    async def put_plugin(self, plugin: InstalledPlugin, artifact: bytes) -> None:
        d = self.dialect
        async with self._tx(ADMIN_TENANT, write=True) as (tx, q):
            await tx.execute(
                f"INSERT INTO {q.prefix}plugin_artifacts (sha256, data) VALUES ($1, $2)"
                " ON CONFLICT (sha256) DO NOTHING",
                plugin.artifact_sha256,
                artifact,
            )
            await tx.execute(
                f"INSERT INTO {q.prefix}plugins ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                " ON CONFLICT (name, version) DO UPDATE SET manifest = excluded.manifest,"
                " artifact_sha256 = excluded.artifact_sha256, grants = excluded.grants,"
                " registry = excluded.registry, signed_by = excluded.signed_by,"
                " installed_by = excluded.installed_by, installed_at = excluded.installed_at, status = excluded.status",
                plugin.name,
                plugin.version,
                d.enc_json(plugin.manifest),
                plugin.artifact_sha256,
                d.enc_json(list(plugin.grants)),
                plugin.registry,
                plugin.signed_by,
                plugin.installed_by,
                d.enc_time(plugin.installed_at),
                plugin.status,
            )

    async def list_plugins(self, name: str = "") -> list[InstalledPlugin]:
        async with self._tx(ADMIN_TENANT, write=False) as (tx, q):
            rows = await tx.fetch(
                f"SELECT {_COLUMNS} FROM {q.prefix}plugins WHERE ($1 = '' OR name = $1)"
                " ORDER BY name, installed_at, version",
                name,
            )
        return [self._plugin(r) for r in rows]

    async def get_plugin_artifact(self, sha256: str) -> bytes:
        async with self._tx(ADMIN_TENANT, write=False) as (tx, q):
            row = await tx.fetchrow(f"SELECT data FROM {q.prefix}plugin_artifacts WHERE sha256 = $1", sha256)
        if row is None:
            raise artifact_not_found(sha256)
        return bytes(row[0])

    async def delete_plugin(self, name: str, version: str = "") -> int:
        async with self._tx(ADMIN_TENANT, write=True) as (tx, q):
            rows = await tx.fetch(
                f"DELETE FROM {q.prefix}plugins WHERE name = $1 AND ($2 = '' OR version = $2) RETURNING version",
                name,
                version,
            )
            await tx.execute(
                f"DELETE FROM {q.prefix}plugin_artifacts WHERE sha256 NOT IN"
                f" (SELECT artifact_sha256 FROM {q.prefix}plugins)"
            )
        return len(rows)


__all__ = ["SqlPluginsMixin", "artifact_not_found"]
