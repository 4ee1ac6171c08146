"""Replaying stored events: a dry run counts what would match; a real replay creates, in the
background and at a bounded rate, one new execution per (event, action) linked to the event
by ``replay_of``, never two (the store's unique (replay_of, action) key).

A replay job runs in the process that started it and records its progress in the tenant's
``replay_jobs`` table after every page, where ``GetReplay``/``WatchReplay`` read it from any
process and ``CancelReplay`` marks it cancelled (the job stops at its next page). A job cut by
its process stopping is marked failed; running it again creates only what is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from neoactions.domain.errors import InvalidArgument, NeoActionsError, NotFound
from neoactions.domain.ids import new_id
from neoactions.domain.model import Action, EventStatus, Execution, ExecutionStatus, utcnow
from neoactions.server.eventstore.port import EventSelection, ReplayJobRecord, ReplayState
from neoactions.server.eventstore.ratelimit import TokenBucket
from neoactions.server.matching import Matcher
from neoactions.server.store import Store

log = logging.getLogger(__name__)

#: events read per store round trip
PAGE_SIZE = 500
#: events a second a real replay re-publishes unless it asks for less
DEFAULT_EVENTS_PER_SECOND = 1000.0
MAX_SAMPLE = 100
#: how often WatchReplay looks at the stored job
WATCH_INTERVAL_SECONDS = 0.25
#: a running job records progress at least every page (a second at the slowest rate): one not
#: updated for this long lost its process
STALE_AFTER_SECONDS = 300.0
STALE_ERROR = "the process running the replay stopped; replaying again creates only the rest"


@dataclass(slots=True)
class ReplayRequest:
    selection: EventSelection
    #: only these actions (names); empty = every action the events match
    actions: tuple[str, ...] = ()
    dry_run: bool = False
    #: event ids per action a dry run returns
    sample_size: int = 5
    #: a real replay's rate; 0 = the server's default, which is also the most it allows
    events_per_second: float = 0.0


@dataclass(slots=True)
class ActionReplayCount:
    action: str
    #: stored events the action matches
    events: int = 0
    sample_event_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ReplayReport:
    """A dry run's answer."""

    events_scanned: int
    actions: list[ActionReplayCount]


def selection_to_json(s: EventSelection) -> dict[str, Any]:
    return {
        "type_pattern": s.type_pattern,
        "start_time": s.start_time.isoformat() if s.start_time else None,
        "end_time": s.end_time.isoformat() if s.end_time else None,
        "correlation_id": s.correlation_id,
        "source": s.source,
        "status": s.status.value if s.status else None,
        "event_ids": list(s.event_ids),
    }


def selection_from_json(doc: dict[str, Any]) -> EventSelection:
    return EventSelection(
        type_pattern=doc.get("type_pattern", ""),
        start_time=datetime.fromisoformat(doc["start_time"]) if doc.get("start_time") else None,
        end_time=datetime.fromisoformat(doc["end_time"]) if doc.get("end_time") else None,
        correlation_id=doc.get("correlation_id", ""),
        source=doc.get("source", ""),
        status=EventStatus(doc["status"]) if doc.get("status") else None,
        event_ids=tuple(doc.get("event_ids", ())),
    )


def replay_key(event_id: str, action_id: str) -> str:
    """The idempotency key of the execution replaying ``event_id`` to ``action_id``."""
    return f"replay:{event_id}:{action_id}"


def plan_replay(tenant: str, envelope: dict[str, Any], action: Action) -> Execution:
    """The execution replaying a stored event (as its envelope) to ``action``."""
    event_id = envelope["id"]
    return Execution(
        id=new_id(),
        tenant=tenant,
        action_id=action.id,
        action_name=action.name,
        action_version=action.version,
        handler_type=action.handler.type,
        input=envelope["data"],
        event_id=event_id,
        status=ExecutionStatus.PENDING,
        idempotency_key=replay_key(event_id, action.id),
        correlation_id=envelope["correlation_id"] or event_id,
        causation_id=event_id,
        priority=action.priority,
        mode=action.execution_mode,
        replay_of=event_id,
    )


def _new_progress() -> dict[str, Any]:
    return {
        "events_scanned": 0,
        "events_matched": 0,
        "executions_created": 0,
        "already_replayed": 0,
        "actions": {},
        "error": "",
    }


class Replayer:
    """Dry runs, and the background replay jobs of this process."""

    def __init__(
        self,
        store: Store,
        matcher: Matcher,
        on_created: Callable[[str, list[Execution]], Awaitable[None]],
        max_events_per_second: float = DEFAULT_EVENTS_PER_SECOND,
    ) -> None:
        self._store = store
        self._matcher = matcher
        self._on_created = on_created
        self.max_events_per_second = max_events_per_second
        self._jobs: dict[tuple[str, str], asyncio.Task[None]] = {}

    def _matching(self, tenant: str, names: Sequence[str]) -> Callable[[dict[str, Any]], list[Action]]:
        if names:
            known = {a.name for a in self._matcher.actions(tenant)}
            for i, name in enumerate(names):
                if name not in known:
                    raise NotFound(
                        f"action {name!r} not found",
                        reason="ACTION_NOT_FOUND",
                        metadata={"tenant": tenant, "action": name, "field": f"actions[{i}]"},
                    )
        wanted = frozenset(names)
        match = self._matcher.match_envelope

        def matching(envelope: dict[str, Any]) -> list[Action]:
            actions = match(tenant, envelope)
            return [a for a in actions if a.name in wanted] if wanted else actions

        return matching

    async def dry_run(self, tenant: str, request: ReplayRequest) -> ReplayReport:
        """Per action, how many stored events of the selection it would get, and a sample."""
        if not 0 <= request.sample_size <= MAX_SAMPLE:
            raise InvalidArgument.field("sample_size", f"must be between 0 and {MAX_SAMPLE}")
        matching = self._matching(tenant, request.actions)
        counts: dict[str, ActionReplayCount] = {}
        scanned = 0
        cursor = None
        while True:
            envelopes, cursor = await self._store.scan_envelopes(tenant, request.selection, cursor, PAGE_SIZE)
            for envelope in envelopes:
                for action in matching(envelope):
                    count = counts.get(action.name)
                    if count is None:
                        count = counts[action.name] = ActionReplayCount(action.name)
                    count.events += 1
                    if len(count.sample_event_ids) < request.sample_size:
                        count.sample_event_ids.append(envelope["id"])
            scanned += len(envelopes)
            if cursor is None or len(envelopes) < PAGE_SIZE:
                break
        for name in request.actions:
            counts.setdefault(name, ActionReplayCount(name))
        return ReplayReport(scanned, sorted(counts.values(), key=lambda c: c.action))

    async def start(self, tenant: str, request: ReplayRequest) -> ReplayJobRecord:
        """Store a replay job and start it here; returns it (running)."""
        rate = request.events_per_second or self.max_events_per_second
        if not 1 <= rate <= self.max_events_per_second:
            raise InvalidArgument.field(
                "events_per_second", f"must be between 1 and {self.max_events_per_second:g} (0: the server's default)"
            )
        matching = self._matching(tenant, request.actions)
        now = utcnow()
        job = ReplayJobRecord(
            id=new_id(),
            state=ReplayState.RUNNING,
            spec={
                "selection": selection_to_json(request.selection),
                "actions": list(request.actions),
                "events_per_second": rate,
            },
            progress=_new_progress(),
            created_at=now,
            updated_at=now,
        )
        await self._store.create_replay_job(tenant, job)
        task = asyncio.create_task(self._run(tenant, job, request.selection, matching, rate), name=f"replay-{job.id}")
        self._jobs[(tenant, job.id)] = task
        task.add_done_callback(lambda _: self._jobs.pop((tenant, job.id), None))
        return job

    async def _run(
        self,
        tenant: str,
        job: ReplayJobRecord,
        selection: EventSelection,
        matching: Callable[[dict[str, Any]], list[Action]],
        rate: float,
    ) -> None:
        progress = job.progress
        bucket = TokenBucket(rate, burst=max(1.0, rate))
        page = max(1, min(PAGE_SIZE, int(rate)))
        cursor = None
        try:
            while True:
                await bucket.take(page)
                envelopes, cursor = await self._store.scan_envelopes(tenant, selection, cursor, page)
                planned: list[Execution] = []
                for envelope in envelopes:
                    actions = matching(envelope)
                    if actions:
                        progress["events_matched"] += 1
                    planned.extend(plan_replay(tenant, envelope, a) for a in actions)
                stored = await self._store.append_replays(tenant, planned)
                if stored:
                    await self._on_created(tenant, stored)
                progress["events_scanned"] += len(envelopes)
                progress["executions_created"] += len(stored)
                progress["already_replayed"] += len(planned) - len(stored)
                per_action: dict[str, dict[str, int]] = progress["actions"]
                for ex in planned:
                    per_action.setdefault(ex.action_name, {"matched": 0, "created": 0})["matched"] += 1
                for ex in stored:
                    per_action[ex.action_name]["created"] += 1
                done = cursor is None or len(envelopes) < page
                state = ReplayState.SUCCEEDED if done else ReplayState.RUNNING
                if not await self._store.update_replay_job(tenant, job.id, progress, state):
                    return  # cancelled meanwhile
                if done:
                    return
        except asyncio.CancelledError:
            progress["error"] = "the server stopped before the replay ended; replaying again creates only the rest"
            with contextlib.suppress(Exception):
                await asyncio.shield(self._store.update_replay_job(tenant, job.id, progress, ReplayState.FAILED))
            raise
        except NeoActionsError as exc:
            log.warning("replay %s of tenant %s failed: %s", job.id, tenant, exc)
            progress["error"] = str(exc)
            await self._store.update_replay_job(tenant, job.id, progress, ReplayState.FAILED)

    async def fail_stale(self, tenant: str) -> int:
        """Jobs no process has recorded progress of for :data:`STALE_AFTER_SECONDS` are marked
        failed (their process died without saying so), so watchers see them end."""
        before = utcnow() - timedelta(seconds=STALE_AFTER_SECONDS)
        return await self._store.fail_stale_replay_jobs(tenant, before, STALE_ERROR)

    async def get(self, tenant: str, job_id: str) -> ReplayJobRecord:
        return await self._store.get_replay_job(tenant, job_id)

    async def watch(self, tenant: str, job_id: str) -> AsyncIterator[ReplayJobRecord]:
        """The job now, then each time its progress changes, until it ends."""
        last: tuple[Any, ...] | None = None
        while True:
            job = await self._store.get_replay_job(tenant, job_id)
            seen = (job.state, job.updated_at, job.progress.get("events_scanned"))
            if seen != last:
                last = seen
                yield job
            if job.state.is_final:
                return
            await asyncio.sleep(WATCH_INTERVAL_SECONDS)

    async def cancel(self, tenant: str, job_id: str) -> ReplayJobRecord:
        job = await self._store.cancel_replay_job(tenant, job_id)
        task = self._jobs.get((tenant, job.id))
        if task is not None and job.state is ReplayState.CANCELLED:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            job = await self._store.get_replay_job(tenant, job_id)
        return job

    async def wait(self, tenant: str, job_id: str) -> None:
        """Until this process's job ``job_id`` ends (tests, shutdown)."""
        task = self._jobs.get((tenant, job_id))
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)

    async def stop(self) -> None:
        """Stop every job of this process (each is recorded failed, to be run again)."""
        tasks = list(self._jobs.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


__all__ = [
    "DEFAULT_EVENTS_PER_SECOND",
    "ActionReplayCount",
    "ReplayReport",
    "ReplayRequest",
    "Replayer",
    "plan_replay",
    "replay_key",
    "selection_from_json",
    "selection_to_json",
]
