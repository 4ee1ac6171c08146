"""List queries built from ``EventFilter``/``ExecutionFilter`` plus a keyset page position.

Queries use ``$n`` parameters (SQLite adapters rewrite them) and the same ``{s}``
prefix as :mod:`statements`. Lists are newest first, ordered by ``(time, id)`` for
events and ``(created_at, id)`` for executions; the page token holds that pair of the
last row, so pages never overlap or skip rows however many arrive meanwhile.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from neoactions.domain.errors import InvalidArgument
from neoactions.server.persistence.codec import (
    EVENT_COLUMNS,
    EXECUTION_COLUMNS,
    Dialect,
    canonical_id,
    from_micros,
)
from neoactions.server.persistence.statements import REQUEUE_SET
from neoactions.server.store import EventFilter, ExecutionFilter

_SEGMENT = re.compile(r"^[a-z0-9_]+$")
_ONE = "[a-z0-9_]+"


@dataclass(frozen=True, slots=True)
class TypePattern:
    """An event-type pattern as SQL can test it: equality, or a regex within a prefix range."""

    exact: str = ""
    #: matched against ``'.' || type``, so every segment, wildcard or not, starts with a dot
    regex: str = ""
    #: the literal segments before the first wildcard ('' = none), for an indexable range test
    prefix: str = ""


def parse_type_pattern(pattern: str) -> TypePattern | None:
    """``None`` for "any type" (empty or ``*``).

    Segments are literal (``users``), ``*`` (exactly one segment) or ``**`` (zero or
    more segments), as in the matcher: ``users.*`` matches ``users.created`` but not
    ``users.a.b``; ``users.**`` matches ``users``, ``users.created`` and ``users.a.b``.
    """
    if pattern in ("", "*"):
        return None
    pieces: list[str] = []
    literal: list[str] = []
    wild = False
    for segment in pattern.split("."):
        if segment == "*":
            pieces.append(rf"\.{_ONE}")
            wild = True
        elif segment == "**":
            pieces.append(rf"(\.{_ONE})*")
            wild = True
        elif _SEGMENT.match(segment):
            pieces.append(rf"\.{segment}")
            if not wild:
                literal.append(segment)
        else:
            raise InvalidArgument.field(
                "filter.type_pattern", f"invalid event-type pattern {pattern!r}", reason="INVALID_PATTERN"
            )
    if not wild:
        return TypePattern(exact=pattern)
    return TypePattern(regex="^" + "".join(pieces) + "$", prefix=".".join(literal))


@dataclass(slots=True)
class _Where:
    clauses: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def param(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}"

    def add(self, clause: str) -> None:
        self.clauses.append(clause)

    def sql(self) -> str:
        return " WHERE " + " AND ".join(self.clauses) if self.clauses else ""


def _after(w: _Where, d: Dialect, time_column: str, after: list[Any] | None) -> None:
    if after is not None:
        t, id_ = w.param(d.enc_time(from_micros(after[0]))), w.param(canonical_id(after[1], "page_token"))
        w.add(f"({time_column}, id) < ({t}, {id_})")


def events_query(prefix: str, d: Dialect, f: EventFilter, after: list[Any] | None, limit: int) -> tuple[str, list[Any]]:
    """SELECT of up to ``limit`` events after the page position ``after`` (time µs, id)."""
    w = _Where()
    pattern = parse_type_pattern(f.type_pattern)
    if pattern is not None and pattern.exact:
        w.add(f"type = {w.param(pattern.exact)}")
    elif pattern is not None:
        if pattern.prefix:
            # every match is the prefix or the prefix + '.' + more, all below prefix + '/' in
            # byte order ('.' < '/' < any segment character); the regex does the exact test
            low, high = w.param(pattern.prefix), w.param(pattern.prefix + "/")
            w.add(f"type >= {low} AND type < {high}")
        w.add(f"('.' || type) {d.regex_op} {w.param(pattern.regex)}")
    if f.correlation_id:
        w.add(f"correlation_id = {w.param(f.correlation_id)}")
    if f.status is not None:
        w.add(f"status = {w.param(f.status.value)}")
    if f.start_time is not None:
        w.add(f"time >= {w.param(d.enc_time(f.start_time))}")
    if f.end_time is not None:
        w.add(f"time < {w.param(d.enc_time(f.end_time))}")
    _after(w, d, "time", after)
    columns = ", ".join(EVENT_COLUMNS)
    sql = f"SELECT {columns} FROM {prefix}events{w.sql()} ORDER BY time DESC, id DESC LIMIT {w.param(limit)}"
    return sql, w.params


def executions_query(
    prefix: str, d: Dialect, f: ExecutionFilter, after: list[Any] | None, limit: int
) -> tuple[str, list[Any]]:
    """SELECT of up to ``limit`` executions after the page position ``after`` (created µs, id)."""
    w = _Where()
    _execution_filter(w, d, f)
    _after(w, d, "created_at", after)
    columns = ", ".join(EXECUTION_COLUMNS)
    sql = f"SELECT {columns} FROM {prefix}executions{w.sql()} ORDER BY created_at DESC, id DESC LIMIT {w.param(limit)}"
    return sql, w.params


def dead_letters_requeue(prefix: str, d: Dialect, f: ExecutionFilter, now: datetime) -> tuple[str, list[Any]]:
    """UPDATE putting every dead-lettered execution matching ``f`` back to pending (a new attempt
    series), returning them."""
    w = _Where()
    set_clause = REQUEUE_SET.replace("$2", w.param(d.enc_time(now)))
    w.add("status = 'dead_lettered'")
    _execution_filter(w, d, f)
    columns = ", ".join(EXECUTION_COLUMNS)
    return f"UPDATE {prefix}executions SET {set_clause}{w.sql()} RETURNING {columns}", w.params


def _execution_filter(w: _Where, d: Dialect, f: ExecutionFilter) -> None:
    if f.action_name:
        w.add(f"action_name = {w.param(f.action_name)}")
    if f.status is not None:
        w.add(f"status = {w.param(f.status.value)}")
    if f.statuses:
        listed = ", ".join(w.param(s.value) for s in sorted(f.statuses))
        w.add(f"status IN ({listed})")
    if f.event_id:
        w.add(f"event_id = {w.param(canonical_id(f.event_id, 'filter.event_id'))}")
    if f.correlation_id:
        w.add(f"correlation_id = {w.param(f.correlation_id)}")
    if f.start_time is not None:
        w.add(f"created_at >= {w.param(d.enc_time(f.start_time))}")
    if f.end_time is not None:
        w.add(f"created_at < {w.param(d.enc_time(f.end_time))}")
    if f.error_type:
        w.add(f"error_type = {w.param(f.error_type)}")


__all__ = ["TypePattern", "dead_letters_requeue", "events_query", "executions_query", "parse_type_pattern"]
