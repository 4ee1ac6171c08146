"""Backtesting: what a new or changed action (saved or not) would have matched among the stored
events — how many, a sample, and near misses (the event type matched, a condition did not)
with the per-condition explanation.

Events are read from the store in pages of envelopes and tested with the trigger's compiled
form (the function the matcher itself calls); a type pattern is tested once per distinct
event type. :func:`evaluate` is the pure part, measured alone by ``python -m bench eventstore``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from neoactions.domain.errors import InvalidArgument
from neoactions.domain.explain import ActionExplanation
from neoactions.domain.model import Action
from neoactions.server.eventstore.port import EventSelection
from neoactions.server.matching import CompiledTrigger
from neoactions.server.matching.index import Entry
from neoactions.server.matching.matcher import explain_entry
from neoactions.server.store import Store

PAGE_SIZE = 2000
MAX_SAMPLE = 100


@dataclass(slots=True)
class NearMiss:
    event_id: str
    explanation: ActionExplanation


@dataclass(slots=True)
class ActionBacktest:
    """One candidate action against the stored events."""

    action: str
    #: events whose type and conditions matched
    matched: int = 0
    #: events whose type matched one pattern (matched or near miss)
    type_matched: int = 0
    sample_event_ids: list[str] = field(default_factory=list)
    near_misses: list[NearMiss] = field(default_factory=list)


@dataclass(slots=True)
class BacktestReport:
    events_scanned: int
    actions: list[ActionBacktest]
    #: wall-clock seconds of the whole backtest (reading included)
    seconds: float = 0.0
    #: whether the scan stopped at ``max_events`` before the end of the selection
    truncated: bool = False


class Candidate:
    """An action with its compiled trigger, as a backtest evaluates it."""

    __slots__ = ("entry", "report", "test", "types")

    def __init__(self, action: Action, compiled: CompiledTrigger) -> None:
        # explained as if enabled: a backtest asks what the trigger would do once turned on
        self.entry = Entry(dataclasses.replace(action, enabled=True), compiled)
        self.test = compiled.test
        #: event type -> whether a pattern matches it
        self.types: dict[str, bool] = {}
        self.report = ActionBacktest(action.name)


def evaluate(candidates: Sequence[Candidate], envelopes: Sequence[dict[str, Any]], samples: int, misses: int) -> None:
    """Test ``envelopes`` against every candidate, adding to their reports."""
    for c in candidates:
        types, test, report = c.types, c.test, c.report
        compiled = c.entry.compiled
        assert compiled is not None
        matches_type = compiled.matches_type
        for envelope in envelopes:
            event_type = envelope["type"]
            type_ok = types.get(event_type)
            if type_ok is None:
                type_ok = types[event_type] = matches_type(event_type)
            if not type_ok:
                continue
            report.type_matched += 1
            if test(envelope):
                report.matched += 1
                if len(report.sample_event_ids) < samples:
                    report.sample_event_ids.append(envelope["id"])
            elif len(report.near_misses) < misses:
                report.near_misses.append(NearMiss(envelope["id"], explain_entry(c.entry, envelope)))


async def backtest(
    store: Store,
    tenant: str,
    candidates: Sequence[Candidate],
    selection: EventSelection,
    sample_size: int = 5,
    near_miss_size: int = 5,
    max_events: int = 0,
) -> BacktestReport:
    """Every candidate against the stored events of ``selection``, oldest first (at most
    ``max_events`` of them; 0 = all)."""
    if not 0 <= sample_size <= MAX_SAMPLE:
        raise InvalidArgument.field("sample_size", f"must be between 0 and {MAX_SAMPLE}")
    if not 0 <= near_miss_size <= MAX_SAMPLE:
        raise InvalidArgument.field("near_miss_size", f"must be between 0 and {MAX_SAMPLE}")
    if max_events < 0:
        raise InvalidArgument.field("max_events", "must not be negative")
    started = time.perf_counter()
    scanned = 0
    cursor = None
    truncated = False
    while True:
        limit = PAGE_SIZE if not max_events else min(PAGE_SIZE, max_events - scanned)
        if limit <= 0:
            truncated = True
            break
        envelopes, cursor = await store.scan_envelopes(tenant, selection, cursor, limit)
        evaluate(candidates, envelopes, sample_size, near_miss_size)
        scanned += len(envelopes)
        if cursor is None or len(envelopes) < limit:
            break
    return BacktestReport(scanned, [c.report for c in candidates], time.perf_counter() - started, truncated)


__all__ = ["ActionBacktest", "BacktestReport", "Candidate", "NearMiss", "backtest", "evaluate"]
