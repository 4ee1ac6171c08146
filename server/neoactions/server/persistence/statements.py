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
_UNFINISHED = "status IN ('pending', 'scheduled', 'running', 'waiting')"
_FINAL = "status IN ('succeeded', 'failed', 'timed_out', 'cancelled', 'dead_lettered')"
_ACTIONS = "{s}actions a JOIN {s}action_versions v ON v.action_id = a.id"
_VERSION = "v.version = CASE WHEN $2 = 0 THEN a.current_version ELSE $2 END"
_CURRENT = "a.deleted = FALSE AND v.version = a.current_version"
#: due at $3 (a ``waiting`` execution only at its time: without one it waits to be woken) and
#: not leased by a live owner
_DUE = (
    "((next_attempt_at IS NULL AND status <> 'waiting') OR next_attempt_at <= $3)"
    " AND (lease_expires_at IS NULL OR lease_expires_at <= $3)"
)
_LEASE_FREE = "(lease_expires_at IS NULL OR lease_expires_at <= {now})"
_WAKE_HERE = "$3 <> '' AND mode <> 'queued' AND " + _LEASE_FREE.format(now="$2")
#: the predicates of the partial indexes executions_due and executions_wake_due (migration 0010),
#: written as the index's own WHERE so both planners (PostgreSQL, SQLite) use the index
_READY = "status IN ('pending', 'scheduled', 'running')"
_WOKEN = "status = 'waiting' AND next_attempt_at IS NOT NULL"


def _due_ids(where: str, now: str, limit: str) -> str:
    """The ids of up to ``limit`` executions due at ``now`` and matching ``where``, highest
    priority first: the ready ones read in priority order from executions_due, the waiting ones
    whose time came from executions_wake_due by that time (a waiting run is not on the
    priority-ordered index, so a claim never walks past the runs still waiting), merged."""
    lease = _LEASE_FREE.format(now=now)
    cols = "SELECT id, priority, created_at FROM {s}executions"
    return (
        f"SELECT id FROM (SELECT id, priority, created_at FROM ({cols} WHERE {_READY} AND {where}"
        f" AND (next_attempt_at IS NULL OR next_attempt_at <= {now}) AND {lease}"
        f" ORDER BY priority DESC, created_at, id LIMIT {limit}{{skip_locked}}) AS ready"
        f" UNION ALL SELECT id, priority, created_at FROM ({cols} WHERE {_WOKEN} AND {where}"
        f" AND next_attempt_at <= {now} AND {lease}"
        f" ORDER BY next_attempt_at LIMIT {limit}{{skip_locked}}) AS woken) AS due"
        f" ORDER BY priority DESC, created_at, id LIMIT {limit}"
    )


#: what a requeue sets ($2 = now): pending again, a new attempt series, no lease, off the queue
REQUEUE_SET = (
    "status = 'pending', attempt_base = attempt_count, series_started_at = $2, finished_at = NULL,"
    " next_attempt_at = NULL, updated_at = $2, output = NULL, error = NULL, error_type = '',"
    " lease_owner = NULL, lease_expires_at = NULL, queued_at = NULL"
)
_REQUEUE = REQUEUE_SET


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
    event_get_many: str = f"SELECT {_E} FROM {{s}}events WHERE id {{ids1}}"
    event_set_status: str = "UPDATE {s}events SET status = $2 WHERE id = $1"
    event_lock_many: str = "SELECT id FROM {s}events WHERE id {ids1} ORDER BY id{for_update}"
    #: per event of $1: (event id, unfinished executions, executions that did not succeed)
    event_outcomes: str = (
        f"SELECT event_id, COALESCE(SUM(CASE WHEN {_FINAL} THEN 0 ELSE 1 END), 0),"
        " COALESCE(SUM(CASE WHEN status = 'succeeded' THEN 0 ELSE 1 END), 0)"
        " FROM {s}executions WHERE event_id {ids1} GROUP BY event_id"
    )
    # executions
    execution_insert: str = f"INSERT INTO {{s}}executions ({_X}) VALUES ({_values(len(EXECUTION_COLUMNS))})"
    execution_get: str = f"SELECT {_X} FROM {{s}}executions WHERE id = $1"
    #: fenced: only an unfinished execution, and only by its lease owner when $5 names one
    execution_start: str = (
        "UPDATE {s}executions SET status = 'running',"
        " attempt_count = CASE WHEN attempt_count > $2 THEN attempt_count ELSE $2 END,"
        " started_at = COALESCE(started_at, $3), next_attempt_at = NULL, updated_at = $4,"
        " handler_version = CASE WHEN handler_version = '' THEN $6 ELSE handler_version END"
        f" WHERE id = $1 AND {_UNFINISHED} AND ($5 = '' OR lease_owner = $5) RETURNING id"
    )
    #: fenced like ``execution_start``; the lease is kept ($10) or given up, the outbox mark is cleared
    execution_finish: str = (
        "UPDATE {s}executions SET status = $2, output = $3, error = $4, finished_at = $5,"
        " next_attempt_at = $6, updated_at = $7,"
        " attempt_count = CASE WHEN attempt_count > $8 THEN attempt_count ELSE $8 END, error_type = $9,"
        " lease_owner = CASE WHEN $10 THEN lease_owner ELSE NULL END,"
        " lease_expires_at = CASE WHEN $10 THEN lease_expires_at ELSE NULL END, queued_at = NULL"
        f" WHERE id = $1 AND {_UNFINISHED} AND ($11 = '' OR lease_owner = $11) RETURNING event_id"
    )
    #: flow control refused an attempt: due again at $2, lease given up, no attempt spent
    execution_defer: str = (
        "UPDATE {s}executions SET next_attempt_at = $2, updated_at = $3,"
        " status = CASE WHEN status = 'running' THEN 'scheduled' ELSE status END,"
        " lease_owner = NULL, lease_expires_at = NULL, queued_at = NULL"
        f" WHERE id = $1 AND {_UNFINISHED} AND lease_owner = $4 RETURNING id"
    )
    execution_state: str = "SELECT status, lease_owner FROM {s}executions WHERE id = $1"
    #: a waiting execution is due at $2 (it was woken); leased to $3 (if not '') until $4 unless
    #: it goes through the work queue or another owner's lease is live
    execution_wake: str = (
        "UPDATE {s}executions SET next_attempt_at = $2, updated_at = $2,"
        f" lease_owner = CASE WHEN {_WAKE_HERE} THEN $3 ELSE lease_owner END,"
        f" lease_expires_at = CASE WHEN {_WAKE_HERE} THEN $4 ELSE lease_expires_at END"
        " WHERE id = $1 AND status = 'waiting' RETURNING id"
    )
    #: lock executions $1 in id order (concurrent batches never wait on each other in a cycle)
    execution_lock_many: str = (
        "SELECT id, status, lease_owner, event_id FROM {s}executions WHERE id {ids1} ORDER BY id{for_update}"
    )
    #: claim up to $4 due executions not in queued mode: lease them to $1 until $2 (now = $3)
    execution_claim_due: str = (
        "UPDATE {s}executions SET lease_owner = $1, lease_expires_at = $2 WHERE id IN"
        " (" + _due_ids("mode <> 'queued'", "$3", "$4") + ")"
        f" RETURNING {_X}"
    )
    #: claim the executions $4 that are due: lease them to $1 until $2 (now = $3). It waits for
    #: rows another transaction holds (the publisher marking them queued) instead of skipping
    #: them — a skipped one would wait for the queue's visibility timeout; id order, no deadlock
    execution_claim_ids: str = (
        "UPDATE {s}executions SET lease_owner = $1, lease_expires_at = $2 WHERE id IN"
        f" (SELECT id FROM {{s}}executions WHERE id {{ids4}} AND {_UNFINISHED} AND {_DUE} ORDER BY id{{for_update}})"
        f" RETURNING {_X}"
    )
    execution_states: str = (
        "SELECT id, status, lease_owner, lease_expires_at, next_attempt_at FROM {s}executions WHERE id {ids1}"
    )
    #: every multi-row UPDATE locks its rows in id order first, as ``execution_lock_many`` and
    #: the claims do: two transactions taking rows in different orders deadlock
    lease_extend: str = (
        "UPDATE {s}executions SET lease_expires_at = $3 WHERE id IN (SELECT id FROM {s}executions"
        f" WHERE id {{ids1}} AND lease_owner = $2 AND {_UNFINISHED} ORDER BY id{{for_update}}) RETURNING id"
    )
    #: give up every lease of $1; queued work goes back to the outbox so it is enqueued at once
    lease_release: str = (
        "UPDATE {s}executions SET lease_owner = NULL, lease_expires_at = NULL, queued_at = NULL WHERE id IN"
        f" (SELECT id FROM {{s}}executions WHERE lease_owner = $1 AND {_UNFINISHED} ORDER BY id{{for_update}})"
        " RETURNING id"
    )
    #: the outbox: mark up to $4 queued executions that are due and not on the queue (or marked
    #: before $2, stale) as queued at $1; a pending one only once its publisher had $3 to enqueue it
    outbox_take: str = (
        "UPDATE {s}executions SET queued_at = $1 WHERE id IN ("
        + _due_ids(
            "mode = 'queued' AND (queued_at IS NULL OR queued_at < $2) AND (status <> 'pending' OR updated_at < $3)",
            "$1",
            "$4",
        )
        + ") RETURNING id, priority"
    )
    #: rows another transaction holds (a consumer claiming them, an attempt being recorded) are
    #: on their way already: skipped, not waited for
    outbox_mark: str = (
        "UPDATE {s}executions SET queued_at = $2 WHERE id IN (SELECT id FROM {s}executions"
        " WHERE id {ids1} AND status = 'pending' AND queued_at IS NULL ORDER BY id{skip_locked})"
    )
    outbox_unmark: str = (
        "UPDATE {s}executions SET queued_at = NULL WHERE id IN"
        f" (SELECT id FROM {{s}}executions WHERE id {{ids1}} AND {_UNFINISHED} ORDER BY id{{for_update}})"
    )
    outbox_reset: str = (
        f"UPDATE {{s}}executions SET queued_at = NULL WHERE mode = 'queued' AND {_UNFINISHED}"
        " AND queued_at IS NOT NULL RETURNING id"
    )
    execution_cancel: str = (
        "UPDATE {s}executions SET status = 'cancelled', error = $2, error_type = 'cancelled', finished_at = $3,"
        " updated_at = $3, next_attempt_at = NULL, lease_owner = NULL, lease_expires_at = NULL, queued_at = NULL"
        f" WHERE id = $1 AND {_UNFINISHED} RETURNING event_id"
    )
    attempt_cancel: str = (
        "UPDATE {s}attempts SET status = 'cancelled', finished_at = $2, error = $3"
        " WHERE execution_id = $1 AND status = 'running'"
    )
    #: a new attempt series of a final, unsuccessful execution
    execution_requeue: str = (
        f"UPDATE {{s}}executions SET {_REQUEUE} WHERE id = $1"
        " AND status IN ('failed', 'timed_out', 'cancelled', 'dead_lettered') RETURNING event_id"
    )
    events_reopen: str = (
        "UPDATE {s}events SET status = 'processing' WHERE id IN"
        " (SELECT id FROM {s}events WHERE id {ids1} ORDER BY id{for_update})"
    )
    attempts_of_ids: str = f"SELECT {_AT} FROM {{s}}attempts WHERE execution_id {{ids1}} ORDER BY execution_id, number"
    # event deduplication
    dedup_find: str = "SELECT key, event_id FROM {s}event_dedup WHERE key {texts1} AND created_at >= $2"
    dedup_expire_keys: str = "DELETE FROM {s}event_dedup WHERE key {texts1} AND created_at < $2"
    dedup_insert: str = "INSERT INTO {s}event_dedup (key, event_id, created_at) VALUES ($1, $2, $3)"
    dedup_purge: str = "DELETE FROM {s}event_dedup WHERE created_at < $1 RETURNING key"
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
            f.name: str(f.default)
            .replace("{s}", prefix)
            .replace("{for_update}", dialect.for_update)
            .replace("{skip_locked}", dialect.skip_locked)
            .replace("{ids1}", dialect.in_ids("$1"))
            .replace("{ids4}", dialect.in_ids("$4"))
            .replace("{texts1}", dialect.in_texts("$1"))
            for f in fields(cls)
            if f.name != "prefix"
        }
        return cls(prefix=prefix, **texts)


__all__ = ["REQUEUE_SET", "Statements"]
