"""Many rows in one PostgreSQL statement: the array forms of the store's row statements.

``executemany`` sends one Bind/Execute per row; PostgreSQL then plans and runs each
row as its own statement, which costs more than the row's work. The hot row
statements (events, executions and attempts written by publishes and attempts) have
an array form here: each parameter position becomes one array, ``unnest`` turns the
arrays back into rows, and the batch is one statement — same rows, same result.
JSON travels as text and is cast to ``jsonb``.

Only PostgreSQL uses this; SQLite runs in-process, where a statement per row is cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from neoactions.server.persistence.codec import ATTEMPT_COLUMNS, EVENT_COLUMNS, EXECUTION_COLUMNS, dump_json
from neoactions.server.persistence.statements import Statements

#: column → PostgreSQL type, as in the migrations (a name means the same type in every table)
_TYPES = {
    "id": "uuid", "type": "text", "source": "text", "subject": "text", "aggregate_type": "text",
    "aggregate_id": "text", "time": "timestamptz", "data": "jsonb", "metadata": "jsonb",
    "correlation_id": "text", "causation_id": "text", "idempotency_key": "text", "status": "text",
    "received_at": "timestamptz", "action_id": "uuid", "action_name": "text", "action_version": "integer",
    "handler_type": "text", "event_id": "uuid", "input": "jsonb", "output": "jsonb", "error": "jsonb",
    "parent_execution_id": "uuid", "priority": "smallint", "mode": "text", "attempt_count": "integer",
    "created_at": "timestamptz", "updated_at": "timestamptz", "started_at": "timestamptz",
    "finished_at": "timestamptz", "next_attempt_at": "timestamptz", "inline": "jsonb",
    "attempt_base": "integer", "series_started_at": "timestamptz", "lease_owner": "text",
    "lease_expires_at": "timestamptz", "error_type": "text", "execution_id": "uuid", "number": "integer",
    "runner": "text", "keep_lease": "boolean", "owner": "text", "now": "timestamptz", "handler_version": "text",
    "replay_of": "uuid", "trace_context": "text",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ArrayForm:
    """One statement taking a batch of rows as one array per parameter position."""

    sql: str
    #: positions whose values are JSON (sent as text)
    json_positions: tuple[int, ...]
    #: parameters per row
    width: int

    def arrays(self, rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
        if not rows:
            return [[] for _ in range(self.width)]
        columns = [list(c) for c in zip(*rows, strict=True)]
        for i in self.json_positions:
            columns[i] = [dump_json(v) for v in columns[i]]
        return columns


def _unnest(names: Sequence[str], first: int = 1) -> tuple[str, tuple[int, ...]]:
    """``unnest($1::t1[], …) AS r(n1, …)`` and the JSON positions, for parameters named ``names``
    (numbered from ``first``)."""
    arrays = []
    json_positions = []
    for i, name in enumerate(names):
        kind = _TYPES[name]
        if kind == "jsonb":
            kind = "text"
            json_positions.append(i)
        arrays.append(f"${first + i}::{kind}[]")
    return f"unnest({', '.join(arrays)}) AS r({', '.join(names)})", tuple(json_positions)


def _value(name: str) -> str:
    return f"r.{name}::jsonb" if _TYPES[name] == "jsonb" else f"r.{name}"


def _insert(table: str, columns: Sequence[str], tail: str = "", first: int = 1) -> ArrayForm:
    rows, json_positions = _unnest(columns, first)
    values = ", ".join(_value(c) for c in columns)
    sql = f"INSERT INTO {table} ({', '.join(columns)}) SELECT {values} FROM {rows}{tail}"
    return ArrayForm(sql, json_positions, len(columns))


@dataclass(frozen=True, slots=True)
class AppendForm:
    """An append's events, executions and begun attempts as one statement: atomic by itself,
    so it needs no transaction around it — one round trip instead of five (begin, three
    inserts, commit). Foreign keys are checked at the end of the statement."""

    sql: str
    events: ArrayForm
    executions: ArrayForm
    attempts: ArrayForm

    def arguments(
        self, events: Sequence[Sequence[Any]], executions: Sequence[Sequence[Any]], attempts: Sequence[Sequence[Any]]
    ) -> list[list[Any]]:
        return [*self.events.arrays(events), *self.executions.arrays(executions), *self.attempts.arrays(attempts)]


def append_form(q: Statements) -> AppendForm:
    s = q.prefix
    events = _insert(f"{s}events", EVENT_COLUMNS)
    executions = _insert(f"{s}executions", EXECUTION_COLUMNS, first=1 + events.width)
    attempts = _insert(f"{s}attempts", ATTEMPT_COLUMNS, first=1 + events.width + executions.width)
    return AppendForm(f"WITH e AS ({events.sql}), x AS ({executions.sql}) {attempts.sql}", events, executions, attempts)


def array_forms(q: Statements) -> dict[str, ArrayForm]:
    """The array form of each hot row statement of ``q``, keyed by the row statement's text."""
    s = q.prefix
    start = ("id", "number", "started_at", "now", "owner", "handler_version")
    finish = (
        "id", "status", "output", "error", "finished_at", "next_attempt_at", "now", "number", "error_type",
        "keep_lease", "owner",
    )  # fmt: skip
    start_rows, _ = _unnest(start)
    finish_rows, finish_json = _unnest(finish)
    status = ("id", "status")
    status_rows, _ = _unnest(status)
    upsert = (
        " ON CONFLICT (execution_id, number) DO UPDATE SET runner = excluded.runner,"
        " status = excluded.status, started_at = excluded.started_at,"
        " finished_at = excluded.finished_at, output = excluded.output, error = excluded.error"
    )
    # The updates are applied to rows the batch already locked and fenced (record_attempts).
    return {
        q.event_insert: _insert(f"{s}events", EVENT_COLUMNS),
        q.execution_insert: _insert(f"{s}executions", EXECUTION_COLUMNS),
        q.attempt_upsert: _insert(f"{s}attempts", ATTEMPT_COLUMNS, upsert),
        q.execution_start: ArrayForm(
            f"UPDATE {s}executions e SET status = 'running', attempt_count = GREATEST(e.attempt_count, r.number),"
            " started_at = COALESCE(e.started_at, r.started_at), next_attempt_at = NULL, updated_at = r.now,"
            " handler_version = CASE WHEN e.handler_version = '' THEN r.handler_version ELSE e.handler_version END"
            f" FROM {start_rows} WHERE e.id = r.id",
            (),
            len(start),
        ),
        q.execution_finish: ArrayForm(
            f"UPDATE {s}executions e SET status = r.status, output = r.output::jsonb, error = r.error::jsonb,"
            " finished_at = r.finished_at, next_attempt_at = r.next_attempt_at, updated_at = r.now,"
            " attempt_count = GREATEST(e.attempt_count, r.number), error_type = r.error_type,"
            " lease_owner = CASE WHEN r.keep_lease THEN e.lease_owner ELSE NULL END,"
            " lease_expires_at = CASE WHEN r.keep_lease THEN e.lease_expires_at ELSE NULL END, queued_at = NULL"
            f" FROM {finish_rows} WHERE e.id = r.id",
            finish_json,
            len(finish),
        ),
        q.event_set_status: ArrayForm(
            f"UPDATE {s}events e SET status = r.status FROM {status_rows} WHERE e.id = r.id", (), len(status)
        ),
    }


__all__ = ["AppendForm", "ArrayForm", "append_form", "array_forms"]
