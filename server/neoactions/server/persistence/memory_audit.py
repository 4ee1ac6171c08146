"""The audit log of :class:`~neoactions.server.persistence.memory.MemoryStore` (``AuditStore``),
kept as the rows the embedded store writes (as :mod:`.sql_audit` is of ``SqlStore``)."""

from __future__ import annotations

from neoactions.domain.audit import AuditEntry
from neoactions.domain.errors import AlreadyExists
from neoactions.server.persistence.codec import as_utc, page_limit, to_micros
from neoactions.server.persistence.memory_tables import DIALECT, Tables
from neoactions.server.persistence.sql_audit import (
    entry_from_row,
    entry_params,
    kind_range,
    next_token,
    page_position,
    prepared,
)
from neoactions.server.store import DEFAULT_PAGE_SIZE, AuditFilter, Page


class MemoryAudit:
    """``AuditStore`` over the tables of the concrete in-memory store."""

    async def _tables(self, tenant: str) -> Tables:
        raise NotImplementedError

    async def append_audit(self, tenant: str, entry: AuditEntry) -> AuditEntry:
        stored = prepared(tenant, entry)
        row = entry_params(tenant, stored, DIALECT)
        t = await self._tables(tenant)
        if any(r[0] == row[0] for r in t.audit):
            raise AlreadyExists(f"audit entry {stored.id!r} already exists")
        t.audit.append(row)
        return stored

    async def list_audit(
        self, tenant: str, filter: AuditFilter, page_size: int = DEFAULT_PAGE_SIZE, page_token: str = ""
    ) -> Page[AuditEntry]:
        limit = page_limit(page_size)
        after = page_position(page_token)
        kinds = kind_range(filter.kind)
        since = to_micros(as_utc(filter.since)) if filter.since is not None else None
        until = to_micros(as_utc(filter.until)) if filter.until is not None else None
        t = await self._tables(tenant)
        rows = [
            r
            for r in t.audit
            if (kinds is None or kinds.accepts(r[5]))
            and (not filter.principal or r[2] == filter.principal)
            and (not filter.target or r[6] == filter.target)
            and (since is None or r[1] >= since)
            and (until is None or r[1] < until)
            and (after is None or (r[1], r[0]) < after)
        ]
        rows.sort(key=lambda r: (r[1], r[0]), reverse=True)
        items = [entry_from_row(r, tenant, DIALECT) for r in rows[:limit]]
        return Page(items, next_token(items, len(rows) > limit))


__all__ = ["MemoryAudit"]
