"""The claims' plans with many runs waiting (migration 0010): the claim of due work and the
outbox's take read the ready work from ``executions_due`` and the waiting runs whose time came
from ``executions_wake_due`` — never a scan over the waiting runs — on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import sqlite3
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from store_backends import Backend, ContractStore

from neoactions.domain.ids import new_id
from neoactions.domain.model import ADMIN_TENANT, Execution, ExecutionStatus, Tenant, utcnow
from neoactions.server.persistence.codec import POSTGRES, SQLITE
from neoactions.server.persistence.statements import Statements

WAITING = 2000


async def _waiting_runs(store: ContractStore) -> None:
    """``WAITING`` waiting runs (half with a timeout an hour away, half without) and one pending execution."""
    later = utcnow() + timedelta(hours=1)
    runs = []
    for i in range(WAITING):
        x = Execution(id=new_id(), tenant=ADMIN_TENANT, action_id="", action_name="a", action_version=1, input={})
        x.status, x.next_attempt_at = ExecutionStatus.WAITING, later if i % 2 else None
        runs.append(x)
    runs.append(Execution(id=new_id(), tenant=ADMIN_TENANT, action_id="", action_name="a", action_version=1, input={}))
    await store.append(ADMIN_TENANT, [], runs)


def _indexes(plan: str) -> set[str]:
    return set(re.findall(r"executions_\w+", plan))


async def test_claims_read_the_due_index_and_the_wake_index(backend: Backend, store: ContractStore) -> None:
    if backend.kind == "memory":
        pytest.skip("no query plans in the in-memory store")
    await _waiting_runs(store)
    now = utcnow()
    if backend.kind == "sqlite":
        q = Statements.build("", SQLITE)
        conn = sqlite3.connect(Path(backend.location) / "admin.db")
        try:
            conn.execute("ANALYZE")
            plans = []
            for sql, args in ((q.execution_claim_due, ("o", 0, 0, 64)), (q.outbox_take, (0, 0, 0, 64))):
                rows = conn.execute("EXPLAIN QUERY PLAN " + re.sub(r"\$(\d+)", r"?\1", sql), args).fetchall()
                plans.append("\n".join(str(r[-1]) for r in rows))
        finally:
            conn.close()
    else:
        conn = await asyncpg.connect(backend.location)
        schema = f'"{Tenant(ADMIN_TENANT).schema}".'
        q = Statements.build(schema, POSTGRES)
        try:
            await conn.execute(f"ANALYZE {schema}executions")
            plans = []
            for sql, args in ((q.execution_claim_due, ("o", now, now, 64)), (q.outbox_take, (now, now, now, 64))):
                rows = await conn.fetch("EXPLAIN " + sql, *args)
                plans.append("\n".join(r[0] for r in rows))
        finally:
            await conn.close()
    for plan in plans:
        assert {"executions_due", "executions_wake_due"} <= _indexes(plan), plan
        assert "SCAN executions\n" not in plan + "\n" and "Seq Scan" not in plan, plan
