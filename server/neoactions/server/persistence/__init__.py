"""Persistence: the ``Store`` implementations and their migrations.

``SqliteStore`` (embedded, one file per tenant) and ``PostgresStore`` (one schema per
tenant) share their logic (:mod:`.sqlstore`), conversions (:mod:`.codec`) and page
tokens (:mod:`.tokens`). :func:`open_store` picks one from a configuration string.
"""

from __future__ import annotations

from pathlib import Path

from neoactions.server.persistence.postgres import PostgresStore
from neoactions.server.persistence.sqlite import SqliteStore
from neoactions.server.persistence.sqlstore import SqlStore
from neoactions.server.store import Store


def open_store(spec: str | Path) -> SqlStore:
    """The store ``spec`` names, not yet opened (``await store.open()``, or ``async with``).

    ``postgresql://...`` / ``postgres://...`` is a PostgreSQL DSN; anything else is the
    data directory of the embedded SQLite store.
    """
    text = str(spec)
    if text.startswith(("postgresql://", "postgres://")):
        return PostgresStore(text)
    return SqliteStore(Path(text))


def _conforms(store: SqlStore) -> Store:
    # mypy checks here that both classes implement the Store protocol
    return store


__all__ = ["PostgresStore", "SqlStore", "SqliteStore", "open_store"]
