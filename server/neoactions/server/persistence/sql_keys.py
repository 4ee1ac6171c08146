"""API keys in the SQL stores (``KeyStore``): one ``api_keys`` table in the admin tenant.

Keys are listed oldest first by ``(created_at, id)``; the page token holds that pair.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from neoactions.domain.keys import ApiKey, key_not_found
from neoactions.domain.model import ADMIN_TENANT
from neoactions.server.persistence import tokens
from neoactions.server.persistence.codec import Dialect, Row, as_utc, from_micros, page_limit, to_micros
from neoactions.server.persistence.statements import Statements
from neoactions.server.store import DEFAULT_PAGE_SIZE, Page

if TYPE_CHECKING:
    from neoactions.server.persistence.sqlstore import Tx

KEY_COLUMNS = (
    "id", "tenant", "name", "role", "created_at", "created_by", "last_used_at", "expires_at", "revoked_at",
    "publish_rate", "token_hash",
)  # fmt: skip
_SELECT = "SELECT " + ", ".join(KEY_COLUMNS) + " FROM {s}api_keys"
TOKEN_KIND = "api_keys"


def key_from_row(row: Row, d: Dialect) -> tuple[ApiKey, str]:
    key = ApiKey(
        id=row[0], tenant=row[1], name=row[2], role=row[3], created_at=d.dec_time(row[4]), created_by=row[5],
        last_used_at=d.dec_opt_time(row[6]), expires_at=d.dec_opt_time(row[7]), revoked_at=d.dec_opt_time(row[8]),
        publish_rate=float(row[9]),
    )  # fmt: skip
    return key, str(row[10])


def key_params(key: ApiKey, token_hash: str, d: Dialect) -> tuple[Any, ...]:
    return (
        key.id, key.tenant, key.name, key.role, d.enc_time(as_utc(key.created_at)), key.created_by,
        d.opt_time(key.last_used_at), d.opt_time(key.expires_at), d.opt_time(key.revoked_at), key.publish_rate,
        token_hash,
    )  # fmt: skip


def page_position(page_token: str) -> tuple[int, str] | None:
    after = tokens.decode(TOKEN_KIND, page_token, (int, str))
    return None if after is None else (int(after[0]), str(after[1]))


def next_token(items: list[ApiKey], more: bool) -> str:
    return tokens.encode(TOKEN_KIND, [to_micros(items[-1].created_at), items[-1].id]) if more and items else ""


class SqlKeysMixin:
    """``KeyStore`` over the admin tenant's transaction of the concrete SQL store."""

    dialect: Dialect

    def _tx(self, tenant: str, *, write: bool) -> AbstractAsyncContextManager[tuple[Tx, Statements]]:
        raise NotImplementedError

    async def create_api_key(self, key: ApiKey, token_hash: str, *, only_if_none: bool = False) -> bool:
        d = self.dialect
        placeholders = ", ".join(f"${i}" for i in range(1, len(KEY_COLUMNS) + 1))
        async with self._tx(ADMIN_TENANT, write=True) as (tx, q):
            table = f"{q.prefix}api_keys"
            if only_if_none:
                if d.name == "postgres":
                    # processes starting together: one of them creates the first key
                    await tx.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
                if await tx.fetchrow(f"SELECT 1 FROM {table} LIMIT 1") is not None:
                    return False
            await tx.execute(
                f"INSERT INTO {table} ({', '.join(KEY_COLUMNS)}) VALUES ({placeholders})",
                *key_params(key, token_hash, d),
            )
        return True

    async def get_api_key(self, key_id: str) -> tuple[ApiKey, str] | None:
        async with self._tx(ADMIN_TENANT, write=False) as (tx, q):
            row = await tx.fetchrow(_SELECT.replace("{s}", q.prefix) + " WHERE id = $1", key_id)
        return None if row is None else key_from_row(row, self.dialect)

    async def list_api_keys(
        self, tenant: str, page_size: int = DEFAULT_PAGE_SIZE, page_token: str = ""
    ) -> Page[ApiKey]:
        d = self.dialect
        limit = page_limit(page_size)
        after = page_position(page_token)
        params: list[Any] = []
        where: list[str] = []
        if tenant:
            params.append(tenant)
            where.append(f"tenant = ${len(params)}")
        if after is not None:
            params += [d.enc_time(from_micros(after[0])), after[1]]
            where.append(f"(created_at, id) > (${len(params) - 1}, ${len(params)})")
        params.append(limit + 1)
        clause = " WHERE " + " AND ".join(where) if where else ""
        async with self._tx(ADMIN_TENANT, write=False) as (tx, q):
            sql = _SELECT.replace("{s}", q.prefix) + f"{clause} ORDER BY created_at, id LIMIT ${len(params)}"
            rows = await tx.fetch(sql, *params)
        items = [key_from_row(r, d)[0] for r in rows[:limit]]
        return Page(items, next_token(items, len(rows) > limit))

    async def revoke_api_key(self, key_id: str, at: datetime) -> ApiKey:
        d = self.dialect
        async with self._tx(ADMIN_TENANT, write=True) as (tx, q):
            table = f"{q.prefix}api_keys"
            await tx.execute(
                f"UPDATE {table} SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL", key_id, d.enc_time(at)
            )
            row = await tx.fetchrow(_SELECT.replace("{s}", q.prefix) + " WHERE id = $1", key_id)
        if row is None:
            raise key_not_found(key_id)
        return key_from_row(row, d)[0]

    async def touch_api_keys(self, used: dict[str, datetime]) -> None:
        if not used:
            return
        d = self.dialect
        async with self._tx(ADMIN_TENANT, write=True) as (tx, q):
            await tx.executemany(
                f"UPDATE {q.prefix}api_keys SET last_used_at = $2 WHERE id = $1",
                [(key_id, d.enc_time(at)) for key_id, at in sorted(used.items())],
            )


__all__ = ["KEY_COLUMNS", "SqlKeysMixin", "key_not_found"]
