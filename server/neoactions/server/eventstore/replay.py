"""Replaying stored events: a dry run counts what would match; a real replay creates, in the
background and at a bounded rate, one new execution per (event, action) linked to the event
by ``replay_of``, never two (the store's unique (replay_of, action) key).

A replay job is durable. The process running it holds a lease on its row in the tenant's
``replay_jobs`` table (an owner and an expiry, like an execution's lease) and, after every page,
records in one write its progress, the last event it read and the lease extended. A running
job whose lease expired — its process was killed or hung — is claimed by any process (the
restarted one included) and goes on from the recorded event; a page done but not yet recorded
when the process died is read again, and the store's unique (replay_of, action) key makes its
executions ``already_replayed`` instead of doubles. A process stopping gives its jobs' leases
up, so the next one takes them over at once. ``GetReplay``/``WatchReplay`` read the row from any
process; ``CancelReplay`` marks it cancelled (the job stops at its next page). Only a job that
cannot go on (its filter or its named actions no longer valid) ends ``failed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from neoactions.domain.errors import FailedPrecondition, InvalidArgument, NeoActionsError, NotFound
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
#: a job's lease: renewed with every page's progress (a page takes about a second at most), so a
#: job not renewed for this long lost its process and is taken over (the server passes its
#: ``lease_seconds`` setting)
LEASE_SECONDS = 15.0
#: jobs one process takes over per tenant and look
MAX_CLAIM = 10
#: errors after which a job cannot go on (anything else: it is taken over again later)
_CANNOT_GO_ON = (InvalidArgument, NotFound, FailedPrecondition)


def new_owner() -> str:
    """A lease owner name unique to this process (host and pid, readable in the store)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


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
        *,
        lease_seconds: float = LEASE_SECONDS,
        prepare: Callable[[str], Awaitable[None]] | None = None,
        owner: str = "",
    ) -> None:
        self._store = store
        self._matcher = matcher
        self._on_created = on_created
        self.max_events_per_second = max_events_per_second
        #: this process's name on the jobs it runs
        self.owner = owner or new_owner()
        self.lease = timedelta(seconds=lease_seconds)
        #: run before a tenant's job is taken over (loads the tenant's actions into the matcher)
        self._prepare = prepare
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
            owner=self.owner,
            lease_expires_at=now + self.lease,
        )
        await self._store.create_replay_job(tenant, job)
        self._launch(tenant, job, request.selection, matching, rate)
        return job

    def _launch(
        self,
        tenant: str,
        job: ReplayJobRecord,
        selection: EventSelection,
        matching: Callable[[dict[str, Any]], list[Action]],
        rate: float,
    ) -> None:
        key = (tenant, job.id)
        task = asyncio.create_task(self._run(tenant, job, selection, matching, rate), name=f"replay-{job.id}")
        self._jobs[key] = task
        task.add_done_callback(lambda t: self._jobs.pop(key, None) if self._jobs.get(key) is t else None)

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
        #: where the recorded progress ends: a take-over goes on from here
        cursor = job.resume_after
        try:
            while True:
                await bucket.take(page)
                envelopes, after = await self._store.scan_envelopes(tenant, selection, cursor, page)
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
                done = after is None or len(envelopes) < page
                if after is not None:
                    cursor = after
                state = ReplayState.SUCCEEDED if done else ReplayState.RUNNING
                recorded = await self._store.update_replay_job(
                    tenant, job.id, progress, state, owner=self.owner, until=utcnow() + self.lease, after=cursor
                )
                if not recorded or done:
                    return  # cancelled meanwhile, or taken over after this process stalled; or done
        except asyncio.CancelledError:
            # this process stops (or the job was cancelled): another process goes on from the
            # recorded progress at once
            with contextlib.suppress(Exception):
                await asyncio.shield(self._store.release_replay_job(tenant, job.id, self.owner))
            raise
        except _CANNOT_GO_ON as exc:
            log.warning("replay %s of tenant %s failed: %s", job.id, tenant, exc)
            await self._fail(tenant, job, str(exc))
        except Exception as exc:
            # the store or a hand-on failed for now: the job is taken over again (by this process
            # or another) once its lease is given up, from its recorded progress
            log.warning("replay %s of tenant %s stopped, to be taken over: %s", job.id, tenant, exc)
            with contextlib.suppress(Exception):
                await self._store.release_replay_job(tenant, job.id, self.owner)

    async def _fail(self, tenant: str, job: ReplayJobRecord, error: str) -> None:
        stored = await self._store.get_replay_job(tenant, job.id)
        progress = stored.progress
        progress["error"] = error
        await self._store.update_replay_job(
            tenant, job.id, progress, ReplayState.FAILED, owner=self.owner, after=stored.resume_after
        )

    async def take_over(self, tenant: str) -> list[str]:
        """Claim the tenant's running jobs whose lease expired (their process died or gave them
        up) and go on with each from its recorded progress; the ids of those taken over."""
        now = utcnow()
        jobs = await self._store.claim_replay_jobs(tenant, self.owner, now, now + self.lease, MAX_CLAIM)
        if not jobs:
            return []
        if self._prepare is not None:
            await self._prepare(tenant)
        taken: list[str] = []
        for job in jobs:
            if (tenant, job.id) in self._jobs:
                continue  # still ending here after its lease lapsed; its next update finds it lost
            try:
                spec = job.spec
                selection = selection_from_json(spec["selection"])
                rate = min(float(spec["events_per_second"]), self.max_events_per_second)
                matching = self._matching(tenant, tuple(spec.get("actions", ())))
                for name in ("events_scanned", "events_matched", "executions_created", "already_replayed"):
                    job.progress.setdefault(name, 0)
                job.progress.setdefault("actions", {})
            except (NeoActionsError, KeyError, TypeError, ValueError) as exc:
                log.warning("replay %s of tenant %s cannot go on: %s", job.id, tenant, exc)
                await self._fail(tenant, job, f"the replay cannot go on: {exc}")
                continue
            log.info("taking over replay %s of tenant %s after event %s", job.id, tenant, job.resume_after)
            self._launch(tenant, job, selection, matching, rate)
            taken.append(job.id)
        return taken

    async def keep(self, tenants: Callable[[], Awaitable[list[str]]]) -> None:
        """Forever: take over the jobs whose process is gone, every half lease (at once on start,
        so the jobs a stopped process gave up go on without waiting)."""
        interval = max(0.5, self.lease.total_seconds() / 2)
        while True:
            try:
                for tenant in await tenants():
                    await self.take_over(tenant)
            except NeoActionsError as exc:
                log.warning("taking over replays failed: %s", exc)
            await asyncio.sleep(interval)

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
        """Stop every job of this process, giving up their leases: another process (or the next
        start of this one) goes on with each from its recorded progress."""
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
    "new_owner",
    "plan_replay",
    "replay_key",
    "selection_from_json",
    "selection_to_json",
]
