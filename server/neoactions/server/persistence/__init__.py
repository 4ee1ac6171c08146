"""Persistence: the ``Store`` implementations and their migrations.

``SqliteStore`` (embedded, one file per tenant) and ``PostgresStore`` (one schema per
tenant) share their logic (:mod:`.sqlstore`), conversions (:mod:`.codec`) and page
tokens (:mod:`.tokens`). :func:`open_store` picks one from a configuration string.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from neoactions.server.persistence.postgres import PostgresStore
    from neoactions.server.persistence.sqlite import SqliteStore
    from neoactions.server.persistence.sqlstore import SqlStore
    from neoactions.server.store import Store

#: the adapters load (asyncpg, aiosqlite) only when a store of theirs is asked for
_HOMES = {"PostgresStore": "postgres", "SqliteStore": "sqlite", "SqlStore": "sqlstore"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def open_store(spec: str | Path) -> SqlStore:
    """The store ``spec`` names, not yet opened (``await store.open()``, or ``async with``).

    ``postgresql://...`` / ``postgres://...`` is a PostgreSQL DSN; anything else is the
    data directory of the embedded SQLite store.
    """
    text = str(spec)
    if text.startswith(("postgresql://", "postgres://")):
        from neoactions.server.persistence.postgres import PostgresStore

        return PostgresStore(text)
    from neoactions.server.persistence.sqlite import SqliteStore

    return SqliteStore(Path(text))


def _conforms(store: SqlStore) -> Store:
    # mypy checks here that both classes implement the Store protocol
    return store


__all__ = ["PostgresStore", "SqlStore", "SqliteStore", "open_store"]
