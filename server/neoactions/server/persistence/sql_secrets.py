"""Secrets in the SQL stores: one ``secrets`` table per tenant (migration 0004), holding only
sealed values (see :mod:`neoactions.server.secrets.crypto`)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from neoactions.domain.errors import NotFound
from neoactions.server.persistence.codec import Dialect, Row
from neoactions.server.persistence.statements import Statements
from neoactions.server.store import StoredSecret

if TYPE_CHECKING:
    from neoactions.server.persistence.sqlstore import Tx

_COLUMNS = "name, ciphertext, created_at, updated_at, version, created_by"


def secret_not_found(tenant: str, name: str) -> NotFound:
    return NotFound(
        f"secret {name!r} not found", reason="SECRET_NOT_FOUND", metadata={"tenant": tenant, "secret": name}
    )


class SqlSecretsMixin:
    """The ``SecretStore`` methods over the transaction of the concrete store."""

    dialect: Dialect

    def _tx(self, tenant: str, *, write: bool) -> AbstractAsyncContextManager[tuple[Tx, Statements]]:
        raise NotImplementedError

    def _secret(self, row: Row) -> StoredSecret:
        d = self.dialect
        return StoredSecret(row[0], bytes(row[1]), d.dec_time(row[2]), d.dec_time(row[3]), int(row[4]), row[5])

    async def put_secret(self, tenant: str, name: str, ciphertext: bytes, by: str, at: datetime) -> StoredSecret:
        async with self._tx(tenant, write=True) as (tx, q):
            row = await tx.fetchrow(
                f"INSERT INTO {q.prefix}secrets AS s ({_COLUMNS}) VALUES ($1, $2, $3, $3, 1, $4)"
                " ON CONFLICT (name) DO UPDATE SET ciphertext = excluded.ciphertext,"
                f" updated_at = excluded.updated_at, version = s.version + 1 RETURNING {_COLUMNS}",
                name,
                ciphertext,
                self.dialect.enc_time(at),
                by,
            )
        assert row is not None
        return self._secret(row)

    async def get_secrets(self, tenant: str, names: Sequence[str]) -> dict[str, StoredSecret]:
        if not names:
            return {}
        d = self.dialect
        async with self._tx(tenant, write=False) as (tx, q):
            rows = await tx.fetch(
                f"SELECT {_COLUMNS} FROM {q.prefix}secrets WHERE name {d.in_texts('$1')}", d.enc_ids(sorted(set(names)))
            )
        return {row[0]: self._secret(row) for row in rows}

    async def list_secrets(self, tenant: str) -> list[StoredSecret]:
        async with self._tx(tenant, write=False) as (tx, q):
            rows = await tx.fetch(f"SELECT {_COLUMNS} FROM {q.prefix}secrets ORDER BY name")
        return [self._secret(row) for row in rows]

    async def delete_secret(self, tenant: str, name: str) -> None:
        async with self._tx(tenant, write=True) as (tx, q):
            rows = await tx.fetch(f"DELETE FROM {q.prefix}secrets WHERE name = $1 RETURNING name", name)
        if not rows:
            raise secret_not_found(tenant, name)

    async def reseal_secrets(self, tenant: str, changes: Sequence[tuple[str, bytes, bytes]]) -> int:
        done = 0
        async with self._tx(tenant, write=True) as (tx, q):
            for name, old, new in changes:
                rows: Sequence[Any] = await tx.fetch(
                    f"UPDATE {q.prefix}secrets SET ciphertext = $3 WHERE name = $1 AND ciphertext = $2 RETURNING name",
                    name,
                    old,
                    new,
                )
                done += len(rows)
        return done


__all__ = ["SqlSecretsMixin", "secret_not_found"]
