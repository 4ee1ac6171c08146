"""The SQL of the stores, written once with ``$n`` parameters and a ``{s}`` table prefix.

``Statements.build`` fills in the prefix (``"tenant_x".`` on PostgreSQL, nothing on
SQLite, where each tenant has its own file) and the dialect's few differences. The
texts of one schema never change, so drivers that cache prepared statements by text
(asyncpg does, per connection) prepare each one once per schema.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from neoactions.server.persistence.codec import (
    ACTION_SELECT,
    ATTEMPT_COLUMNS,
    EVENT_COLUMNS,
    EXECUTION_COLUMNS,
    Dialect,
)


def _values(n: int) -> str:
    return ", ".join(f"${i}" for i in range(1, n + 1))


_E = ", ".join(EVENT_COLUMNS)
_X = ", ".join(EXECUTION_COLUMNS)
_AT = ", ".join(ATTEMPT_COLUMNS)
_UNFINISHED = "status IN ('pending', 'scheduled', 'running')"
_FINAL = "status IN ('succeeded', 'failed', 'timed_out', 'cancelled', 'dead_lettered')"
_ACTIONS = "{s}actions a JOIN {s}action_versions v ON v.action_id = a.id"
_VERSION = "v.version = CASE WHEN $2 = 0 THEN a.current_version ELSE $2 END"
_CURRENT = "a.deleted = FALSE AND v.version = a.current_version"


@dataclass(frozen=True, slots=True)
class Statements:
    prefix: str
    # tenants (admin only)
    tenant_insert: str = "INSERT INTO {s}tenants (slug, display_name, created_at) VALUES ($1, $2, $3)"
    tenant_ensure: str = (
        "INSERT INTO {s}tenants (slug, display_name, created_at) VALUES ($1, $2, $3) ON CONFLICT (slug) DO NOTHING"
    )
    tenant_get: str = "SELECT slug, display_name, created_at FROM {s}tenants WHERE slug = $1"
    tenant_page: str = "SELECT slug, display_name, created_at FROM {s}tenants WHERE slug > $1 ORDER BY slug LIMIT $2"
    tenant_slugs: str = "SELECT slug FROM {s}tenants ORDER BY slug"
    # actions
    action_insert: str = (
        "INSERT INTO {s}actions (id, name, current_version, enabled, deleted, created_at, updated_at)"
        " VALUES ($1, $2, 1, $3, FALSE, $4, $4)"
    )
    version_insert: str = (
        "INSERT INTO {s}action_versions (action_id, version, spec, enabled, created_at) VALUES ($1, $2, $3, $4, $5)"
    )
    action_lock: str = (
        "SELECT id, current_version, enabled FROM {s}actions WHERE name = $1 AND deleted = FALSE{for_update}"
    )
    version_spec: str = "SELECT spec FROM {s}action_versions WHERE action_id = $1 AND version = $2"
    action_bump: str = "UPDATE {s}actions SET current_version = $2, enabled = $3, updated_at = $4 WHERE id = $1"
    action_delete: str = (
        "UPDATE {s}actions SET deleted = TRUE, deleted_at = $2, updated_at = $2"
        " WHERE name = $1 AND deleted = FALSE RETURNING id"
    )
    action_by_name: str = (
        f"SELECT {ACTION_SELECT} FROM {_ACTIONS} WHERE a.name = $1 AND a.deleted = FALSE AND {_VERSION}"
    )
    action_by_id: str = f"SELECT {ACTION_SELECT} FROM {_ACTIONS} WHERE a.id = $1 AND {_VERSION}"
    action_page: str = (
        f"SELECT {ACTION_SELECT} FROM {_ACTIONS} WHERE {_CURRENT} AND a.name > $1 ORDER BY a.name LIMIT $2"
    )
    action_all: str = f"SELECT {ACTION_SELECT} FROM {_ACTIONS} WHERE {_CURRENT} ORDER BY a.created_at, a.id"
    # events
    event_insert: str = f"INSERT INTO {{s}}events ({_E}) VALUES ({_values(len(EVENT_COLUMNS))})"
    event_get: str = f"SELECT {_E} FROM {{s}}events WHERE id = $1"
    event_lock: str = "SELECT id FROM {s}events WHERE id = $1{for_update}"
    event_set_status: str = "UPDATE {s}events SET status = $2 WHERE id = $1"
    #: (unfinished executions, executions that did not succeed) of one event
    event_outcome: str = (
        f"SELECT COALESCE(SUM(CASE WHEN {_FINAL} THEN 0 ELSE 1 END), 0),"
        " COALESCE(SUM(CASE WHEN status = 'succeeded' THEN 0 ELSE 1 END), 0)"
        " FROM {s}executions WHERE event_id = $1"
    )
    # executions
    execution_insert: str = f"INSERT INTO {{s}}executions ({_X}) VALUES ({_values(len(EXECUTION_COLUMNS))})"
    execution_get: str = f"SELECT {_X} FROM {{s}}executions WHERE id = $1"
    execution_start: str = (
        "UPDATE {s}executions SET status = 'running',"
        " attempt_count = CASE WHEN attempt_count > $2 THEN attempt_count ELSE $2 END,"
        " started_at = COALESCE(started_at, $3), next_attempt_at = NULL, updated_at = $4"
        " WHERE id = $1 RETURNING id"
    )
    execution_finish: str = (
        "UPDATE {s}executions SET status = $2, output = $3, error = $4, finished_at = $5,"
        " next_attempt_at = $6, updated_at = $7,"
        " attempt_count = CASE WHEN attempt_count > $8 THEN attempt_count ELSE $8 END"
        " WHERE id = $1 RETURNING event_id"
    )
    execution_unfinished: str = f"SELECT {_X} FROM {{s}}executions WHERE {_UNFINISHED} ORDER BY created_at, id LIMIT $1"
    # attempts
    attempt_upsert: str = (
        f"INSERT INTO {{s}}attempts ({_AT}) VALUES ({_values(len(ATTEMPT_COLUMNS))})"
        " ON CONFLICT (execution_id, number) DO UPDATE SET runner = excluded.runner,"
        " status = excluded.status, started_at = excluded.started_at,"
        " finished_at = excluded.finished_at, output = excluded.output, error = excluded.error"
    )
    attempts_of: str = f"SELECT {_AT} FROM {{s}}attempts WHERE execution_id = $1 ORDER BY number"
    #: the attempts of what ``execution_unfinished`` returns (same snapshot, same $1)
    attempts_unfinished: str = (
        f"SELECT {_AT} FROM {{s}}attempts WHERE execution_id IN"
        f" (SELECT id FROM {{s}}executions WHERE {_UNFINISHED} ORDER BY created_at, id LIMIT $1)"
        " ORDER BY execution_id, number"
    )

    @classmethod
    def build(cls, prefix: str, dialect: Dialect) -> Statements:
        """Every statement with ``{s}`` replaced by ``prefix`` (an already quoted schema and a dot)."""
        texts = {
            f.name: str(f.default).replace("{s}", prefix).replace("{for_update}", dialect.for_update)
            for f in fields(cls)
            if f.name != "prefix"
        }
        return cls(prefix=prefix, **texts)


__all__ = ["Statements"]
