"""The audit log in the SQL stores (``AuditStore``): one ``audit_entries`` table per tenant.

Entries are listed newest first by ``(at, id)``; the page token holds that pair of the
last entry, as the event and execution lists do. A kind filter is a dotted prefix
(``action`` lists ``action.create``, ``action.delete``...), tested as a byte range so
the ``(kind, at, id)`` index serves it.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from neoactions.domain.audit import KIND, AuditEntry, redact
from neoactions.domain.errors import InvalidArgument
from neoactions.domain.ids import new_id
from neoactions.server.persistence import tokens
from neoactions.server.persistence.codec import (
    Dialect,
    Row,
    as_utc,
    canonical_id,
    dec_id,
    from_micros,
    page_limit,
    to_micros,
)
from neoactions.server.persistence.statements import Statements
from neoactions.server.store import DEFAULT_PAGE_SIZE, AuditFilter, Page

if TYPE_CHECKING:
    from neoactions.server.persistence.sqlstore import Tx

AUDIT_COLUMNS = ("id", "at", "principal", "principal_name", "request_id", "kind", "target", "change")
#: the page-token kind of the audit list
TOKEN_KIND = "audit"


@dataclass(frozen=True, slots=True)
class KindRange:
    """A kind filter as a test: ``kind = exact`` or ``low <= kind < high`` (its dotted children)."""

    exact: str
    low: str
    high: str

    def accepts(self, kind: str) -> bool:
        return kind == self.exact or self.low <= kind < self.high


def kind_range(kind: str) -> KindRange | None:
    """``None`` for every kind; ``action`` (or ``action.*``) also covers ``action.create``...
    ('.' < '/' in byte order, and a kind's characters all sort after '/')."""
    prefix = kind.removesuffix(".*").removesuffix("*").rstrip(".")
    if not prefix:
        return None
    if not KIND.match(prefix):
        raise InvalidArgument.field("filter.kind", f"not a kind or a prefix of one: {kind!r} (e.g. action.create)")
    return KindRange(prefix, prefix + ".", prefix + "/")


def entry_params(tenant: str, entry: AuditEntry, d: Dialect) -> tuple[Any, ...]:
    return (
        canonical_id(entry.id, "entry.id"), d.enc_time(as_utc(entry.at)), entry.principal, entry.principal_name,
        entry.request_id, entry.kind, entry.target, d.enc_json(entry.change),
    )  # fmt: skip


def entry_from_row(row: Row, tenant: str, d: Dialect) -> AuditEntry:
    change = d.dec_json(row[7])
    return AuditEntry(
        id=dec_id(row[0]), at=d.dec_time(row[1]), principal=row[2], principal_name=row[3], request_id=row[4],
        kind=row[5], target=row[6], change=change if isinstance(change, dict) else {}, tenant=tenant,
    )  # fmt: skip


def prepared(tenant: str, entry: AuditEntry) -> AuditEntry:
    """The entry as it is stored: an id, the tenant, UTC time, a redacted change."""
    if not KIND.match(entry.kind):
        raise InvalidArgument.field("entry.kind", f"not a kind: {entry.kind!r} (dotted lowercase words)")
    change = redact(dict(entry.change))
    return replace(entry, id=entry.id or new_id(), tenant=tenant, at=as_utc(entry.at), change=change if change else {})


def page_position(page_token: str) -> tuple[int, str] | None:
    after = tokens.decode(TOKEN_KIND, page_token, (int, str))
    if after is None:
        return None
    return int(after[0]), canonical_id(str(after[1]), "page_token")


def next_token(items: list[AuditEntry], more: bool) -> str:
    return tokens.encode(TOKEN_KIND, [to_micros(items[-1].at), items[-1].id]) if more and items else ""


def audit_query(
    prefix: str, d: Dialect, f: AuditFilter, after: tuple[int, str] | None, limit: int
) -> tuple[str, list[Any]]:
    """SELECT of up to ``limit`` entries matching ``f`` after the page position ``after``."""
    params: list[Any] = []

    def param(value: Any) -> str:
        params.append(value)
        return f"${len(params)}"

    where: list[str] = []
    kinds = kind_range(f.kind)
    if kinds is not None:
        where.append(f"(kind = {param(kinds.exact)} OR (kind >= {param(kinds.low)} AND kind < {param(kinds.high)}))")
    if f.principal:
        where.append(f"principal = {param(f.principal)}")
    if f.target:
        where.append(f"target = {param(f.target)}")
    if f.since is not None:
        where.append(f"at >= {param(d.enc_time(as_utc(f.since)))}")
    if f.until is not None:
        where.append(f"at < {param(d.enc_time(as_utc(f.until)))}")
    if after is not None:
        where.append(f"(at, id) < ({param(d.enc_time(from_micros(after[0])))}, {param(after[1])})")
    clause = " WHERE " + " AND ".join(where) if where else ""
    columns = ", ".join(AUDIT_COLUMNS)
    sql = f"SELECT {columns} FROM {prefix}audit_entries{clause} ORDER BY at DESC, id DESC LIMIT {param(limit)}"
    return sql, params


class SqlAuditMixin:
    """``AuditStore`` over the transaction of the concrete SQL store."""

    dialect: Dialect

    def _tx(self, tenant: str, *, write: bool) -> AbstractAsyncContextManager[tuple[Tx, Statements]]:
        raise NotImplementedError

    async def append_audit(self, tenant: str, entry: AuditEntry) -> AuditEntry:
        stored = prepared(tenant, entry)
        d = self.dialect
        async with self._tx(tenant, write=True) as (tx, q):
            columns = ", ".join(AUDIT_COLUMNS)
            values = ", ".join(f"${i}" for i in range(1, len(AUDIT_COLUMNS) + 1))
            await tx.execute(
                f"INSERT INTO {q.prefix}audit_entries ({columns}) VALUES ({values})", *entry_params(tenant, stored, d)
            )
        return stored

    async def list_audit(
        self, tenant: str, filter: AuditFilter, page_size: int = DEFAULT_PAGE_SIZE, page_token: str = ""
    ) -> Page[AuditEntry]:
        limit = page_limit(page_size)
        after = page_position(page_token)
        async with self._tx(tenant, write=False) as (tx, q):
            sql, params = audit_query(q.prefix, self.dialect, filter, after, limit + 1)
            rows = await tx.fetch(sql, *params)
        items = [entry_from_row(r, tenant, self.dialect) for r in rows[:limit]]
        return Page(items, next_token(items, len(rows) > limit))


__all__ = [
    "AUDIT_COLUMNS",
    "KindRange",
    "SqlAuditMixin",
    "audit_query",
    "entry_from_row",
    "entry_params",
    "kind_range",
    "next_token",
    "page_position",
    "prepared",
]
