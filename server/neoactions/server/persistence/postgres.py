"""``PostgresStore``: PostgreSQL through an asyncpg pool, one schema per tenant.

The admin tenant lives in schema ``admin`` (with the ``tenants`` registry), every other
tenant in ``tenant_<slug>``, each created from the same versioned migrations. A schema
name is built only from a slug that matched ``[a-z][a-z0-9_]{0,40}`` and is always
quoted. Statements are schema-qualified texts fixed per schema, so asyncpg's
per-connection statement cache prepares each once per schema and connection.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from typing import Any

import asyncpg

from neoactions.domain.errors import (
    Aborted,
    AlreadyExists,
    Internal,
    InvalidArgument,
    NeoActionsError,
    Unavailable,
)
from neoactions.domain.model import ADMIN_TENANT, Tenant, utcnow
from neoactions.server.persistence import pg_partitions
from neoactions.server.persistence.arrays import AppendForm, ArrayForm, append_form, array_forms
from neoactions.server.persistence.codec import (
    POSTGRES,
    Row,
    UniqueViolation,
    as_utc,
    check_new_slug,
    dump_json,
    is_slug,
    tenant_not_found,
)
from neoactions.server.persistence.migrations import ADMIN_TRACK, TENANT_TRACK, load
from neoactions.server.persistence.sqlstore import SqlStore
from neoactions.server.persistence.statements import Statements
from neoactions.server.store import TRANSACTION_CONFLICT

#: pg_advisory_xact_lock key serializing migrations and tenant creation across processes
_MIGRATION_LOCK = 0x6E656F61_6374696F


def quote_ident(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _statements_for(slug: str) -> Statements:
    if not is_slug(slug):  # never build SQL from anything but a valid slug
        raise Internal(f"refusing schema for invalid tenant slug {slug!r}")
    return Statements.build(quote_ident(Tenant(slug).schema) + ".", POSTGRES)


def _dumps(value: Any) -> str:
    text = dump_json(value)
    assert text is not None  # asyncpg sends None as NULL without calling the encoder
    return text


async def _init_connection(conn: Any) -> None:
    # jsonb in and out as Python values, so the codec passes JSON through untouched
    await conn.set_type_codec("jsonb", encoder=_dumps, decoder=json.loads, schema="pg_catalog")


async def _keep_session(conn: Any) -> None:
    """A connection goes back to the pool as it is: the store keeps no session state (no
    LISTEN, session settings, cursors or session locks), and asyncpg still rolls back a
    transaction left open. Skipping the default reset query saves a round trip per use."""


_UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
)


@contextmanager
def _translated() -> Iterator[None]:
    """asyncpg errors as the core's errors."""
    try:
        yield
    except NeoActionsError:
        raise
    except _UNAVAILABLE as exc:
        raise Unavailable(f"PostgreSQL unavailable: {exc}") from exc
    except asyncpg.DataError as exc:
        raise InvalidArgument(f"value refused by PostgreSQL: {exc}") from exc
    except asyncpg.InterfaceError as exc:
        if isinstance(exc, ValueError):  # a parameter the driver could not encode
            raise InvalidArgument(f"value refused by the PostgreSQL driver: {exc}") from exc
        raise Unavailable(f"PostgreSQL connection unusable: {exc}") from exc
    except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError) as exc:
        raise Aborted(f"PostgreSQL aborted the transaction: {exc}", reason=TRANSACTION_CONFLICT) from exc
    except asyncpg.PostgresError as exc:
        raise Internal(f"PostgreSQL error: {exc}") from exc


class _Tx:
    """A transaction on one pooled connection (the ``Tx`` of :mod:`sqlstore`)."""

    __slots__ = ("_conn", "_forms")

    def __init__(self, conn: Any, forms: dict[str, ArrayForm]) -> None:
        self._conn = conn
        self._forms = forms

    async def fetch(self, sql: str, *args: Any) -> Sequence[Row]:
        try:
            rows: Sequence[Row] = await self._conn.fetch(sql, *args)
        except asyncpg.UniqueViolationError as exc:
            raise UniqueViolation(str(exc)) from exc
        return rows

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        try:
            return await self._conn.fetchrow(sql, *args)
        except asyncpg.UniqueViolationError as exc:
            raise UniqueViolation(str(exc)) from exc

    async def execute(self, sql: str, *args: Any) -> None:
        try:
            await self._conn.execute(sql, *args)
        except asyncpg.UniqueViolationError as exc:
            raise UniqueViolation(str(exc)) from exc

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        form = self._forms.get(sql) if len(rows) > 1 else None
        try:
            if form is not None:  # one statement for the batch (see persistence.arrays)
                await self._conn.execute(form.sql, *form.arrays(rows))
            else:
                # asyncpg pipelines every row of an executemany: one round trip for the batch
                await self._conn.executemany(sql, rows)
        except asyncpg.UniqueViolationError as exc:
            raise UniqueViolation(str(exc)) from exc


async def _migrate_schema(conn: Any, schema: str, tracks: Sequence[str]) -> None:
    """Create ``schema`` if needed and apply its pending migrations (inside the caller's transaction)."""
    s = quote_ident(schema)
    await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
    await conn.execute(
        f"CREATE TABLE IF NOT EXISTS {s}.schema_migrations (track text NOT NULL, version integer NOT NULL,"
        " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (track, version))"
    )
    applied = {(r[0], r[1]) for r in await conn.fetch(f"SELECT track, version FROM {s}.schema_migrations")}
    pending = [m for t in tracks for m in load("postgres", t) if (m.track, m.version) not in applied]
    if not pending:
        return
    # migrations are written unqualified; they run with only this schema on the path
    await conn.execute(f"SET LOCAL search_path TO {s}")
    for m in pending:
        await conn.execute(m.sql)
        await conn.execute(
            f"INSERT INTO {s}.schema_migrations (track, version, name) VALUES ($1, $2, $3)",
            m.track,
            m.version,
            m.name,
        )
    await conn.execute("SET LOCAL search_path TO DEFAULT")


class PostgresStore(SqlStore):
    """The PostgreSQL store at ``dsn`` (``postgresql://user@host:port/db``).

    ``min_size``/``max_size`` bound the pool; ``statement_cache_size`` is per connection
    and should exceed (tenants in use) x (about 40 statements).
    """

    dialect = POSTGRES

    def __init__(
        self,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        statement_cache_size: int = 2048,
        connect_timeout: float = 10.0,
    ) -> None:
        self._dsn = dsn
        self._pool_options: dict[str, Any] = {
            "min_size": min_size,
            "max_size": max_size,
            "statement_cache_size": statement_cache_size,
            "timeout": connect_timeout,
            # durability is not left to the server's default: a commit returns once it is on disk
            "server_settings": {"synchronous_commit": "on", "application_name": "neoactions"},
            "reset": _keep_session,
        }
        self._pool: Any = None
        self._statements: dict[str, Statements] = {}
        self._forms: dict[str, dict[str, ArrayForm]] = {}
        self._appends: dict[str, AppendForm] = {}

    async def open(self) -> None:
        if self._pool is not None:
            return
        with _translated():
            self._pool = await asyncpg.create_pool(self._dsn, init=_init_connection, **self._pool_options)
        admin = _statements_for(ADMIN_TENANT)
        try:
            with _translated():
                async with self._pool.acquire() as conn:
                    async with conn.transaction():
                        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
                        await _migrate_schema(conn, ADMIN_TENANT, (ADMIN_TRACK, TENANT_TRACK))
                        await conn.execute(admin.tenant_ensure, ADMIN_TENANT, "Admin", utcnow())
                    slugs = [r[0] for r in await conn.fetch(admin.tenant_slugs)]
                    for slug in slugs:
                        statements = _statements_for(slug)
                        if slug != ADMIN_TENANT:
                            async with conn.transaction():
                                await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
                                await _migrate_schema(conn, Tenant(slug).schema, (TENANT_TRACK,))
                        self._statements[slug] = statements
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        self._statements.clear()
        if pool is not None:
            await pool.close()

    async def create_tenant(self, tenant: Tenant) -> Tenant:
        check_new_slug(tenant.slug)
        created = Tenant(tenant.slug, tenant.display_name, as_utc(tenant.created_at))
        admin = await self._schema(ADMIN_TENANT)
        with _translated():
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
                try:
                    await conn.execute(admin.tenant_insert, created.slug, created.display_name, created.created_at)
                except asyncpg.UniqueViolationError:
                    raise AlreadyExists(
                        f"tenant {tenant.slug!r} already exists",
                        reason="TENANT_ALREADY_EXISTS",
                        metadata={"tenant": tenant.slug},
                    ) from None
                # DDL is transactional: the registry row and the schema commit together or not at all
                await _migrate_schema(conn, created.schema, (TENANT_TRACK,))
        self._statements[created.slug] = _statements_for(created.slug)
        return created

    async def delete_tenant(self, slug: str) -> None:
        if slug == ADMIN_TENANT:
            raise InvalidArgument.field("name", "the admin tenant cannot be deleted", reason="INVALID_TENANT_ID")
        if not is_slug(slug):
            raise tenant_not_found(slug)
        admin = await self._schema(ADMIN_TENANT)
        with _translated():
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
                if await conn.fetchrow(admin.tenant_get, slug) is None:
                    raise tenant_not_found(slug)
                await conn.execute(f"DELETE FROM {admin.prefix}tenants WHERE slug = $1", slug)
                await conn.execute(f"DELETE FROM {admin.prefix}api_keys WHERE tenant = $1", slug)
                await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(Tenant(slug).schema)} CASCADE")
        self._statements.pop(slug, None)

    async def maintain_event_partitions(self, tenant: str, now: datetime, before: datetime | None) -> int:
        """The weekly partitions of ``tenant``'s events kept (see :mod:`.pg_partitions`): the
        coming weeks created, with ``before`` the weeks ended by then dropped whole; the number
        of events dropped."""
        await self._schema(tenant)
        with _translated():
            async with self._pool.acquire() as conn:
                return await pg_partitions.maintain(conn, Tenant(tenant).schema, now, before)

    async def _schema(self, tenant: str) -> Statements:
        statements = self._statements.get(tenant)
        if statements is not None:
            return statements
        if self._pool is None:
            raise Unavailable("the PostgreSQL store is not open")
        if not is_slug(tenant):
            raise tenant_not_found(tenant)
        # another server process may have created it
        with _translated():
            row = await self._pool.fetchrow(_statements_for(ADMIN_TENANT).tenant_get, tenant)
        if row is None:
            raise tenant_not_found(tenant)
        statements = self._statements[tenant] = _statements_for(tenant)
        return statements

    async def _insert_rows(
        self,
        tenant: str,
        events: Sequence[Sequence[Any]],
        executions: Sequence[Sequence[Any]],
        attempts: Sequence[Sequence[Any]],
    ) -> None:
        statements = await self._schema(tenant)
        form = self._appends.get(statements.prefix)
        if form is None:
            form = self._appends[statements.prefix] = append_form(statements)
        with _translated():
            try:
                await self._pool.execute(form.sql, *form.arguments(events, executions, attempts))
            except asyncpg.UniqueViolationError as exc:
                raise AlreadyExists(f"append: an id is already stored ({exc})") from None

    def _array_forms(self, statements: Statements) -> dict[str, ArrayForm]:
        forms = self._forms.get(statements.prefix)
        if forms is None:
            forms = self._forms[statements.prefix] = array_forms(statements)
        return forms

    @asynccontextmanager
    async def _tx(self, tenant: str, *, write: bool) -> AsyncIterator[tuple[_Tx, Statements]]:
        statements = await self._schema(tenant)
        with _translated():
            async with self._pool.acquire() as conn:
                # reads see one snapshot across their statements (an execution and its attempts)
                tx = conn.transaction() if write else conn.transaction(isolation="repeatable_read", readonly=True)
                async with tx:
                    yield _Tx(conn, self._array_forms(statements)), statements

    @asynccontextmanager
    async def _one(self, tenant: str, *, write: bool) -> AsyncIterator[tuple[_Tx, Statements]]:
        statements = await self._schema(tenant)
        with _translated():
            async with self._pool.acquire() as conn:
                yield _Tx(conn, self._array_forms(statements)), statements


__all__ = ["PostgresStore", "quote_ident"]
