"""The ``store`` fixture: every contract test runs against each ``Store`` implementation.

SQLite lives in ``tmp_path``, the in-memory store in a ``MemoryData`` of its own;
PostgreSQL gets a fresh database per test (created through the ``test`` database of
``POSTGRES_DSN`` and dropped afterwards), so tests never share data.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from store_backends import POSTGRES_DSN, Backend, ContractStore, require_postgres, with_database


@pytest.fixture(params=["sqlite", "memory", pytest.param("postgres", marks=pytest.mark.postgres)])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param in ("sqlite", "memory"):
        yield Backend(request.param, str(tmp_path / "data"))
        return
    require_postgres()
    name = f"neoactions_{uuid.uuid4().hex[:16]}"
    conn = await asyncpg.connect(POSTGRES_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield Backend("postgres", with_database(POSTGRES_DSN, name))
    finally:
        conn = await asyncpg.connect(POSTGRES_DSN)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[ContractStore]:
    s = backend.make()
    await s.open()
    try:
        yield s
    finally:
        await s.close()
