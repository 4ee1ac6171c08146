"""``SqliteStore``: the embedded store, one SQLite file per tenant in a data directory.

``admin.db`` holds the tenant registry and the admin tenant's data; every other tenant
lives in ``tenant_<slug>.db``. Files run in WAL mode with ``synchronous=FULL`` by
default, so a committed transaction survives a power cut. Each file has a writer
connection and a reader connection (WAL lets reads proceed while a write commits);
an asyncio lock per connection keeps one transaction at a time on each, because
statements of interleaved coroutines on one connection would share a transaction.

The writer runs a transaction's statements inline, on the event loop: under the write
lock nothing can block them, and each takes microseconds, where a hop to a thread and
back costs ~50 µs of CPU (a publish of 10 events made ~10 hops). What can wait runs on
the writer's own thread: taking the write lock while another process holds it, and the
commit's flush to disk. Reads may be long (listing pages): they run on the reader's
thread (aiosqlite).
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager, suppress
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from neoactions.domain.errors import AlreadyExists, Internal, InvalidArgument, NeoActionsError, Unavailable
from neoactions.domain.model import ADMIN_TENANT, Tenant, utcnow
from neoactions.server.persistence.codec import (
    SQLITE,
    Row,
    UniqueViolation,
    as_utc,
    check_new_slug,
    is_slug,
    tenant_not_found,
    to_micros,
)
from neoactions.server.persistence.migrations import ADMIN_TRACK, TENANT_TRACK, load, split_statements
from neoactions.server.persistence.sqlstore import SqlStore
from neoactions.server.persistence.statements import Statements

SYNCHRONOUS_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")
_STATEMENTS = Statements.build("", SQLITE)
_PARAM = re.compile(r"\$(\d+)")
_UNIQUE = {"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"}
# errors that mean "the database cannot be used right now", worth a retry by the caller
_UNAVAILABLE = {"SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_FULL"}


@lru_cache(maxsize=512)
def _numbered(sql: str) -> str:
    """``$n`` parameters as SQLite's ``?n``."""
    return _PARAM.sub(r"?\1", sql)


@lru_cache(maxsize=64)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _regexp(pattern: str, value: str | None) -> bool:
    """``value REGEXP pattern``, which SQLite leaves to the application."""
    return value is not None and _compiled(pattern).search(value) is not None


@contextmanager
def _translated() -> Iterator[None]:
    """sqlite3 errors as the core's errors."""
    try:
        yield
    except NeoActionsError:
        raise
    except sqlite3.Error as exc:
        name = getattr(exc, "sqlite_errorname", "")
        if any(name.startswith(prefix) for prefix in _UNAVAILABLE):
            raise Unavailable(f"embedded store unavailable: {exc}") from exc
        raise Internal(f"embedded store error: {exc}") from exc


class _Fetching:
    """``fetchrow`` and ``execute`` in terms of a transaction's ``fetch``."""

    __slots__ = ()

    async def fetch(self, sql: str, *args: Any) -> Sequence[Row]:
        raise NotImplementedError

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def execute(self, sql: str, *args: Any) -> None:
        await self.fetch(sql, *args)


class _Tx(_Fetching):
    """A transaction on one connection (the ``Tx`` of :mod:`sqlstore`)."""

    __slots__ = ("_conn",)

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def fetch(self, sql: str, *args: Any) -> Sequence[Row]:
        try:
            return list(await self._conn.execute_fetchall(_numbered(sql), args))
        except sqlite3.IntegrityError as exc:
            raise _unique(exc) from exc

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        try:
            cursor = await self._conn.executemany(_numbered(sql), rows)
        except sqlite3.IntegrityError as exc:
            raise _unique(exc) from exc
        await cursor.close()


def _unique(exc: sqlite3.IntegrityError) -> Exception:
    return UniqueViolation(str(exc)) if getattr(exc, "sqlite_errorname", "") in _UNIQUE else exc


class _InlineTx(_Fetching):
    """A write transaction whose statements run inline on the writer connection."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def fetch(self, sql: str, *args: Any) -> Sequence[Row]:
        try:
            return self._conn.execute(_numbered(sql), args).fetchall()
        except sqlite3.IntegrityError as exc:
            raise _unique(exc) from exc

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        try:
            self._conn.executemany(_numbered(sql), rows)
        except sqlite3.IntegrityError as exc:
            raise _unique(exc) from exc


_T = TypeVar("_T")
#: how long the writer waits for another process's write lock
_BUSY_MS = 5000


async def _settled(work: Awaitable[_T]) -> _T:
    """``work``'s result, waiting for its end even if the caller is cancelled meanwhile (then the
    cancellation is raised once it ended). For statements handed to a connection's thread: they
    run there anyway, and whoever uses the connection next must find them finished."""
    future = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        while not future.done():
            with suppress(asyncio.CancelledError):
                await asyncio.wait({future})
        raise


class _Writer:
    """The writer connection and its thread (for the waits: a busy lock, the commit's flush)."""

    def __init__(self, conn: sqlite3.Connection, thread: ThreadPoolExecutor) -> None:
        self.conn = conn
        self._thread = thread

    @classmethod
    async def open(cls, path: Path, synchronous: str) -> _Writer:
        thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sqlite-{path.stem}")
        try:
            conn = await asyncio.get_running_loop().run_in_executor(thread, _connect_writer, path, synchronous)
        except BaseException:
            thread.shutdown(wait=False)
            raise
        return cls(conn, thread)

    async def call(self, fn: Callable[..., _T], *args: Any) -> _T:
        """``fn(*args)`` on the writer's thread; once started it runs to its end, and so does the
        wait for it, even if the caller is cancelled meanwhile (the connection must not be used
        by two threads at once)."""
        return await _settled(asyncio.get_running_loop().run_in_executor(self._thread, fn, *args))

    async def begin(self) -> None:
        """``BEGIN IMMEDIATE``: the write lock up front, so a write never fails half-way on BUSY.
        Inline when the lock is free (it nearly always is); on the thread when it must wait."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorname", "") != "SQLITE_BUSY":
                raise
            await self.call(_begin_waiting, self.conn)

    async def close(self) -> None:
        try:
            await self.call(self.conn.close)
        finally:
            self._thread.shutdown(wait=False)


def _connect_writer(path: Path, synchronous: str) -> sqlite3.Connection:
    # isolation_level=None: no implicit transactions, BEGIN/COMMIT are issued explicitly
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
        # inline statements must never wait: a busy lock is waited for on the thread (_begin_waiting)
        conn.execute("PRAGMA busy_timeout = 0")
        conn.create_function("regexp", 2, _regexp, deterministic=True)
    except BaseException:
        conn.close()
        raise
    return conn


def _begin_waiting(conn: sqlite3.Connection) -> None:
    conn.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
    try:
        conn.execute("BEGIN IMMEDIATE")
    finally:
        conn.execute("PRAGMA busy_timeout = 0")


def _migrate(conn: sqlite3.Connection, tracks: Sequence[str]) -> None:
    """Apply the pending migrations of ``tracks`` (on the writer's thread)."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (track TEXT NOT NULL, version INTEGER NOT NULL,"
        " name TEXT NOT NULL, applied_at INTEGER NOT NULL, PRIMARY KEY (track, version))"
    )
    for track in tracks:
        for migration in load("sqlite", track):
            _begin_waiting(conn)
            try:
                # checked under the write lock: another process may have just applied it
                done = conn.execute(
                    "SELECT 1 FROM schema_migrations WHERE track = ? AND version = ?", (track, migration.version)
                ).fetchall()
                if not done:
                    for statement in split_statements(migration.sql):
                        conn.execute(statement)
                    conn.execute(
                        "INSERT INTO schema_migrations VALUES (?, ?, ?, ?)",
                        (track, migration.version, migration.name, to_micros(utcnow())),
                    )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise


class _TenantFile:
    """One tenant's database file and its two connections."""

    def __init__(self, path: Path, synchronous: str) -> None:
        self.path = path
        self._synchronous = synchronous
        self._writer: _Writer | None = None
        self._reader: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()
        self._read_lock = asyncio.Lock()

    async def open(self, tracks: Sequence[str]) -> None:
        """Connect and apply the pending migrations of ``tracks``."""
        self._writer = await _Writer.open(self.path, self._synchronous)
        await self._writer.call(_migrate, self._writer.conn, tracks)
        self._reader = await self._connect()

    async def _connect(self) -> aiosqlite.Connection:
        # isolation_level=None: no implicit transactions, this class issues BEGIN/COMMIT itself
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            await conn.execute_fetchall(f"PRAGMA synchronous = {self._synchronous}")
            await conn.execute_fetchall("PRAGMA foreign_keys = ON")
            # another process (a CLI, a second server) may hold the write lock briefly
            await conn.execute_fetchall("PRAGMA busy_timeout = 5000")
            await conn.create_function("regexp", 2, _regexp, deterministic=True)
        except BaseException:
            await conn.close()
            raise
        return conn

    async def close(self) -> None:
        reader, writer, self._reader, self._writer = self._reader, self._writer, None, None
        if reader is not None:
            await reader.close()
        if writer is not None:
            await writer.close()

    @asynccontextmanager
    async def transaction(self, *, write: bool) -> AsyncIterator[_Tx | _InlineTx]:
        if write:
            async with self._write_lock, self._writing() as tx:
                yield tx
            return
        async with self._read_lock:
            conn = self._reader
            if conn is None:
                raise Unavailable("the embedded store is closed")
            # BEGIN, COMMIT and ROLLBACK run on the reader's thread whether or not their caller
            # is still waiting: each is awaited to its end, and a cancelled BEGIN is rolled back,
            # so the next transaction never finds this one still open
            try:
                await _settled(conn.execute_fetchall("BEGIN"))
                yield _Tx(conn)
                await _settled(conn.execute_fetchall("COMMIT"))
            except BaseException:
                if conn.in_transaction:
                    await _settled(conn.execute_fetchall("ROLLBACK"))
                raise

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[_InlineTx]:
        writer = self._writer
        if writer is None:
            raise Unavailable("the embedded store is closed")
        try:
            # inside the try: a begin cancelled while it waited on the thread has begun all the same
            await writer.begin()
            yield _InlineTx(writer.conn)
            await writer.call(writer.conn.execute, "COMMIT")
        except BaseException:
            if writer.conn.in_transaction:
                writer.conn.execute("ROLLBACK")
            raise


class SqliteStore(SqlStore):
    """The embedded store in ``data_dir`` (created if missing).

    ``synchronous`` is SQLite's ``PRAGMA synchronous``: ``FULL`` (default) makes every
    commit durable; ``NORMAL`` may lose the last commits on power loss, never corrupts.
    """

    dialect = SQLITE

    def __init__(self, data_dir: str | Path, *, synchronous: str = "FULL") -> None:
        if synchronous.upper() not in SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be one of {SYNCHRONOUS_MODES}, not {synchronous!r}")
        self.data_dir = Path(data_dir)
        self._synchronous = synchronous.upper()
        self._files: dict[str, _TenantFile] = {}
        self._opening = asyncio.Lock()

    def path_of(self, slug: str) -> Path:
        """The file holding tenant ``slug``."""
        return self.data_dir / f"{Tenant(slug).schema}.db"

    async def open(self) -> None:
        with _translated():
            try:
                await asyncio.to_thread(self.data_dir.mkdir, parents=True, exist_ok=True)
            except OSError as exc:
                raise Unavailable(f"cannot create the data directory {self.data_dir}: {exc}") from exc
            try:
                await self._open_file(ADMIN_TENANT, (ADMIN_TRACK, TENANT_TRACK))
                async with self._tx(ADMIN_TENANT, write=True) as (tx, q):
                    await tx.execute(q.tenant_ensure, ADMIN_TENANT, "Admin", to_micros(utcnow()))
                    slugs = [row[0] for row in await tx.fetch(q.tenant_slugs)]
                for slug in slugs:
                    if slug != ADMIN_TENANT:
                        await self._open_file(slug, (TENANT_TRACK,))
            except BaseException:
                await self.close()
                raise

    async def close(self) -> None:
        files, self._files = list(self._files.values()), {}
        for file in files:
            await file.close()

    async def _open_file(self, slug: str, tracks: Sequence[str]) -> _TenantFile:
        file = _TenantFile(self.path_of(slug), self._synchronous)
        try:
            await file.open(tracks)
        except BaseException:
            await file.close()
            raise
        self._files[slug] = file
        return file

    async def create_tenant(self, tenant: Tenant) -> Tenant:
        check_new_slug(tenant.slug)
        created = Tenant(tenant.slug, tenant.display_name, as_utc(tenant.created_at))
        async with self._opening, self._tx(ADMIN_TENANT, write=True) as (tx, q):
            try:
                await tx.execute(q.tenant_insert, created.slug, created.display_name, to_micros(created.created_at))
            except UniqueViolation:
                raise AlreadyExists(
                    f"tenant {tenant.slug!r} already exists",
                    reason="TENANT_ALREADY_EXISTS",
                    metadata={"tenant": tenant.slug},
                ) from None
            # created inside the registry's transaction: a failed migration un-registers the tenant
            with _translated():
                await self._open_file(created.slug, (TENANT_TRACK,))
        return created

    async def delete_tenant(self, slug: str) -> None:
        if slug == ADMIN_TENANT:
            raise InvalidArgument.field("name", "the admin tenant cannot be deleted", reason="INVALID_TENANT_ID")
        if not is_slug(slug):
            raise tenant_not_found(slug)
        async with self._opening:
            with _translated():
                async with self._files[ADMIN_TENANT].transaction(write=True) as tx:
                    if await tx.fetchrow(_STATEMENTS.tenant_get, slug) is None:
                        raise tenant_not_found(slug)
                    await tx.execute("DELETE FROM tenants WHERE slug = $1", slug)
                    await tx.execute("DELETE FROM api_keys WHERE tenant = $1", slug)
            file = self._files.pop(slug, None)
            if file is not None:
                await file.close()
            path = self.path_of(slug)
            for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
                await asyncio.to_thread(leftover.unlink, missing_ok=True)

    async def _file(self, tenant: str) -> _TenantFile:
        file = self._files.get(tenant)
        if file is not None:
            return file
        if ADMIN_TENANT not in self._files:
            raise Unavailable("the embedded store is not open")
        if not is_slug(tenant):
            raise tenant_not_found(tenant)
        async with self._opening:
            file = self._files.get(tenant)
            if file is None:
                # another process sharing the data directory may have created it
                async with self._files[ADMIN_TENANT].transaction(write=False) as tx:
                    row = await tx.fetchrow(_STATEMENTS.tenant_get, tenant)
                if row is None:
                    raise tenant_not_found(tenant)
                file = await self._open_file(tenant, (TENANT_TRACK,))
            return file

    @asynccontextmanager
    async def _tx(self, tenant: str, *, write: bool) -> AsyncIterator[tuple[_Tx | _InlineTx, Statements]]:
        with _translated():
            file = await self._file(tenant)
            async with file.transaction(write=write) as tx:
                yield tx, _STATEMENTS


__all__ = ["SYNCHRONOUS_MODES", "SqliteStore"]
