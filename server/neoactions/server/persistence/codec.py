"""Row <-> domain conversions shared by every SQL store.

Each store speaks a :class:`Dialect`: how a time, a JSON value and an id travel to and
from its driver. Everything else (column order, defaults, validation of what is
stored) is decided here once, so the stores cannot drift apart.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias

from neoactions.domain.errors import InvalidArgument, NotFound
from neoactions.domain.model import (
    ADMIN_TENANT,
    JSON,
    Action,
    Attempt,
    Event,
    EventStatus,
    Execution,
    ExecutionError,
    ExecutionMode,
    ExecutionStatus,
    HandlerSpec,
    InlineAction,
    Priority,
    Tenant,
    action_from_spec,
)
from neoactions.server.store import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

#: a driver row: ``sqlite3.Row`` or ``asyncpg.Record``, both indexable by position
Row: TypeAlias = Any

SLUG = re.compile(r"^[a-z][a-z0-9_]{0,40}\Z")
_CANONICAL_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class UniqueViolation(Exception):
    """Raised by a store's driver adapter when an insert hits a unique constraint."""


# --- scalar values -------------------------------------------------------------


def as_utc(value: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def to_micros(value: datetime) -> int:
    """Microseconds since the Unix epoch: exact, sortable, store-independent."""
    return (as_utc(value) - _EPOCH) // timedelta(microseconds=1)


def from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def dump_json(value: JSON) -> str | None:
    """Compact JSON text (``None`` stays NULL); a value JSON cannot hold is ``InvalidArgument``."""
    if value is None:
        return None
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"not representable as JSON: {exc}") from None


def _load_json(value: str | None) -> JSON:
    return None if value is None else json.loads(value)


def _same(value: Any) -> Any:
    return value


def dec_id(value: Any) -> str:
    """A stored id (text, a UUID object or NULL) as the domain's string ('' for none)."""
    return "" if value is None else str(value)


def canonical_id(value: str, path: str) -> str:
    """``value`` as a canonical lowercase UUID string, or ``InvalidArgument`` naming ``path``."""
    if _CANONICAL_UUID.match(value):
        return value
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        raise InvalidArgument.field(path, f"not a UUID: {value!r}") from None


def optional_id(value: str, path: str) -> str | None:
    """Like :func:`canonical_id`, with '' stored as NULL."""
    return canonical_id(value, path) if value else None


def lookup_id(value: str) -> str | None:
    """A canonical id to look up, or ``None`` when ``value`` cannot name anything."""
    if _CANONICAL_UUID.match(value):
        return value
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        return None


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one driver takes and returns times and JSON, and its few SQL differences."""

    name: str
    enc_time: Callable[[datetime], Any]
    dec_time: Callable[[Any], datetime]
    enc_json: Callable[[JSON], Any]
    dec_json: Callable[[Any], JSON]
    #: appended to a SELECT that must lock its row until commit ('' where writers are serialized)
    for_update: str
    #: the infix operator testing ``text <op> regex``
    regex_op: str
    #: appended to a claim's inner SELECT so concurrent claimers skip each other's rows
    skip_locked: str
    #: ``id IN <a list parameter>``, ``{p}`` being the parameter (see ``enc_ids``)
    ids_in: str
    #: a list of canonical ids as that one parameter
    enc_ids: Callable[[Sequence[str]], Any]
    #: like ``ids_in`` for a list of strings (``enc_ids`` encodes it too)
    texts_in: str

    def in_ids(self, param: str) -> str:
        return self.ids_in.replace("{p}", param)

    def in_texts(self, param: str) -> str:
        return self.texts_in.replace("{p}", param)

    def opt_time(self, value: datetime | None) -> Any:
        return None if value is None else self.enc_time(value)

    def dec_opt_time(self, value: Any) -> datetime | None:
        return None if value is None else self.dec_time(value)


def _json_list(ids: Sequence[str]) -> str:
    return json.dumps(list(ids))


# SQLite serializes writers (BEGIN IMMEDIATE), so a claim needs no row locks there
SQLITE = Dialect(
    "sqlite", to_micros, from_micros, dump_json, _load_json, "", "REGEXP", "",
    "IN (SELECT value FROM json_each({p}))", _json_list, "IN (SELECT value FROM json_each({p}))",
)  # fmt: skip
# asyncpg returns aware UTC datetimes and (with the jsonb codec set per connection) JSON values
POSTGRES = Dialect(
    "postgres", as_utc, _same, _same, _same, " FOR UPDATE", "~", " FOR UPDATE SKIP LOCKED",
    "= ANY({p}::uuid[])", list, "= ANY({p}::text[])",
)  # fmt: skip


# --- tenants and paging ------------------------------------------------------------


def is_slug(slug: str) -> bool:
    return slug == ADMIN_TENANT or bool(SLUG.match(slug))


def check_new_slug(slug: str) -> None:
    if not is_slug(slug):
        raise InvalidArgument.field("slug", "must match [a-z][a-z0-9_]{0,40}", reason="INVALID_TENANT_SLUG")


def tenant_not_found(slug: str) -> NotFound:
    return NotFound(f"tenant {slug!r} not found", reason="TENANT_NOT_FOUND", metadata={"tenant": slug})


def page_limit(page_size: int) -> int:
    """``page_size`` as a row limit: 0 means the default, large values are capped."""
    if page_size < 0:
        raise InvalidArgument.field("page_size", "must not be negative")
    if page_size == 0:
        return DEFAULT_PAGE_SIZE
    return min(page_size, MAX_PAGE_SIZE)


def tenant_from_row(row: Row, d: Dialect) -> Tenant:
    return Tenant(slug=row[0], display_name=row[1], created_at=d.dec_time(row[2]))


def check_tenant(owner: str, tenant: str, path: str) -> None:
    """Refuse a record that names another tenant than the one it is stored in."""
    if owner and owner != tenant:
        raise InvalidArgument.field(path, f"belongs to tenant {owner!r}, not {tenant!r}")


# --- events ----------------------------------------------------------------------

EVENT_COLUMNS = (
    "id", "type", "source", "subject", "aggregate_type", "aggregate_id", "time", "data",
    "metadata", "correlation_id", "causation_id", "idempotency_key", "status", "received_at",
)  # fmt: skip


def event_params(e: Event, status: EventStatus, d: Dialect) -> tuple[Any, ...]:
    return (
        canonical_id(e.id, "event.id"), e.type, e.source, e.subject, e.aggregate_type,
        e.aggregate_id, d.enc_time(e.time), d.enc_json(e.data), d.enc_json(e.metadata),
        e.correlation_id, e.causation_id, e.idempotency_key, status.value, d.enc_time(e.received_at),
    )  # fmt: skip


def event_from_row(row: Row, tenant: str, d: Dialect) -> Event:
    return Event(
        id=dec_id(row[0]), tenant=tenant, type=row[1], source=row[2], subject=row[3],
        aggregate_type=row[4], aggregate_id=row[5], time=d.dec_time(row[6]),
        data=d.dec_json(row[7]), metadata=d.dec_json(row[8]), correlation_id=row[9],
        causation_id=row[10], idempotency_key=row[11], status=EventStatus(row[12]),
        received_at=d.dec_time(row[13]),
    )  # fmt: skip


# --- executions and attempts ---------------------------------------------------------

EXECUTION_COLUMNS = (
    "id", "action_id", "action_name", "action_version", "handler_type", "event_id", "status",
    "input", "output", "error", "idempotency_key", "correlation_id", "causation_id",
    "parent_execution_id", "priority", "mode", "attempt_count", "created_at", "updated_at",
    "started_at", "finished_at", "next_attempt_at", "inline", "attempt_base", "series_started_at",
    "lease_owner", "lease_expires_at", "error_type", "handler_version", "replay_of", "trace_context",
)  # fmt: skip

ATTEMPT_COLUMNS = (
    "execution_id", "number", "runner", "status", "started_at", "finished_at", "output", "error",
)  # fmt: skip


def error_json(error: ExecutionError | None) -> JSON:
    return None if error is None else error.to_dict()


def error_from_json(doc: JSON) -> ExecutionError | None:
    return None if doc is None else ExecutionError.from_dict(doc)


def execution_params(x: Execution, d: Dialect) -> tuple[Any, ...]:
    inline = None
    if x.inline is not None:
        inline = {"handler": x.inline.handler.to_dict(), "timeout_seconds": x.inline.timeout_seconds}
    return (
        canonical_id(x.id, "execution.id"), optional_id(x.action_id, "execution.action_id"),
        x.action_name, x.action_version, x.handler_type,
        optional_id(x.event_id, "execution.event_id"), x.status.value, d.enc_json(x.input),
        d.enc_json(x.output), d.enc_json(error_json(x.error)), x.idempotency_key,
        x.correlation_id, x.causation_id,
        optional_id(x.parent_execution_id, "execution.parent_execution_id"), int(x.priority),
        x.mode.value, x.attempt_count, d.enc_time(x.created_at), d.enc_time(x.updated_at),
        d.opt_time(x.started_at), d.opt_time(x.finished_at), d.opt_time(x.next_attempt_at),
        d.enc_json(inline), x.attempt_base, d.opt_time(x.series_started_at), x.lease_owner or None,
        d.opt_time(x.lease_expires_at), x.error.type if x.error is not None else "", x.handler_version,
        optional_id(x.replay_of, "execution.replay_of"), x.trace_context,
    )  # fmt: skip


def execution_from_row(row: Row, tenant: str, d: Dialect) -> Execution:
    inline_doc = d.dec_json(row[22])
    inline = None
    if inline_doc is not None:
        handler = inline_doc["handler"]
        inline = InlineAction(
            handler=HandlerSpec.from_dict(handler),
            timeout_seconds=float(inline_doc.get("timeout_seconds", 30.0)),
        )
    return Execution(
        id=dec_id(row[0]), tenant=tenant, action_id=dec_id(row[1]), action_name=row[2],
        action_version=row[3], handler_type=row[4], event_id=dec_id(row[5]),
        status=ExecutionStatus(row[6]), input=d.dec_json(row[7]), output=d.dec_json(row[8]),
        error=error_from_json(d.dec_json(row[9])), idempotency_key=row[10],
        correlation_id=row[11], causation_id=row[12], parent_execution_id=dec_id(row[13]),
        priority=Priority(row[14]), mode=ExecutionMode(row[15]), attempt_count=row[16],
        created_at=d.dec_time(row[17]), updated_at=d.dec_time(row[18]),
        started_at=d.dec_opt_time(row[19]), finished_at=d.dec_opt_time(row[20]),
        next_attempt_at=d.dec_opt_time(row[21]), inline=inline, attempt_base=row[23],
        series_started_at=d.dec_opt_time(row[24]), lease_owner=row[25] or "",
        lease_expires_at=d.dec_opt_time(row[26]), handler_version=row[28] or "",
        replay_of=dec_id(row[29]), trace_context=row[30] or "",
    )  # fmt: skip


def attempt_params(execution_id: str, a: Attempt, d: Dialect) -> tuple[Any, ...]:
    return (
        execution_id, a.number, a.runner, a.status.value, d.enc_time(a.started_at),
        d.opt_time(a.finished_at), d.enc_json(a.output), d.enc_json(error_json(a.error)),
    )  # fmt: skip


def attempt_from_row(row: Row, d: Dialect) -> Attempt:
    return Attempt(
        number=row[1], runner=row[2], status=ExecutionStatus(row[3]), started_at=d.dec_time(row[4]),
        finished_at=d.dec_opt_time(row[5]), output=d.dec_json(row[6]),
        error=error_from_json(d.dec_json(row[7])),
    )  # fmt: skip


# --- actions ---------------------------------------------------------------------------

#: what an action query selects: identity from ``actions a``, the rest from ``action_versions v``
ACTION_SELECT = "a.id, a.name, a.created_at, v.version, v.spec, v.enabled, v.created_at"


def action_from_row(row: Row, tenant: str, d: Dialect) -> Action:
    """An action version; ``updated_at`` is when that version was made."""
    return action_from_spec(
        d.dec_json(row[4]),
        tenant=tenant,
        name=row[1],
        id=dec_id(row[0]),
        version=row[3],
        enabled=bool(row[5]),
        created_at=d.dec_time(row[2]),
        updated_at=d.dec_time(row[6]),
    )


def action_not_found(tenant: str, name: str) -> NotFound:
    return NotFound(
        f"action {name!r} not found", reason="ACTION_NOT_FOUND", metadata={"tenant": tenant, "action": name}
    )
