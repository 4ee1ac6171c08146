"""Publishing: validate → drop duplicates → store the event and its matched executions in
one transaction → announce → hand the work on.

Deduplication: an event's ``dedup_key()`` (idempotency key, else CloudEvents
source + id) recorded within the window makes a publish return the original event
and its executions without matching again. The key is stored in the same transaction
as the event (a unique key), so two concurrent publishes of one key store one event.

Hand-off after the commit: ``queued`` executions go to the work queue (the outbox
catches a failure); ``sync`` executions the caller waits for are stored leased to
this process and run here; other executions are stored leased to this process as far
as its workers and their waiting room take them (no claim round trip on the hot path)
and unleased beyond that, for any process's scheduler to claim.

Executions that find an idle worker have their first attempt begun before the commit:
planned, admitted by flow control, and stored ``running`` with that attempt in the same
transaction as the event. The worker then calls the handler at once: publish → start
waits for one durable commit, not two. A crash after the commit shows the attempt as
cut, as it would after any stored start.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from time import perf_counter

from neoactions.domain.errors import AlreadyExists, InvalidArgument
from neoactions.domain.ids import new_id
from neoactions.domain.model import (
    Action,
    Event,
    EventStatus,
    Execution,
    ExecutionMode,
    ExecutionStatus,
    ExecutionUpdate,
    UpdateKind,
    utcnow,
)
from neoactions.server import telemetry
from neoactions.server.bus import UpdateBus
from neoactions.server.engine.catalog import ActionCatalog
from neoactions.server.engine.dispatcher import Dispatcher, Reservation
from neoactions.server.engine.jobs import Job
from neoactions.server.engine.leases import LeaseKeeper
from neoactions.server.engine.outbox import Outbox
from neoactions.server.engine.wakeup import Wakeup
from neoactions.server.matching import Matcher, validate_event_type
from neoactions.server.store import DUPLICATE_EVENT, ExecutionFilter, Store


@dataclass(slots=True)
class Published:
    event: Event
    executions: list[Execution]
    #: the event was accepted before (same dedup key within the window); nothing new was stored
    duplicate: bool = False


#: matching a batch gives the event loop a turn after this long
MATCHING_SLICE_SECONDS = 0.005


class Publisher:
    def __init__(
        self,
        store: Store,
        matcher: Matcher,
        catalog: ActionCatalog,
        dispatcher: Dispatcher,
        bus: UpdateBus,
        leases: LeaseKeeper,
        outbox: Outbox,
        scheduler_wakeup: Wakeup | None,
        dedup_window_seconds: float,
    ) -> None:
        self._store = store
        self._matcher = matcher
        self._catalog = catalog
        self._dispatcher = dispatcher
        self._bus = bus
        self._leases = leases
        self._outbox = outbox
        #: ``None`` in an api-only process: async work is left for the workers to claim
        self._wakeup = scheduler_wakeup
        self._window = timedelta(seconds=dedup_window_seconds)

    async def publish(self, tenant: str, events: Sequence[Event], wait: bool = False) -> list[Published]:
        """Store ``events`` (one tenant) and schedule what they match.

        With ``wait``, returns after the matched ``sync`` executions have finished.
        """
        for i, event in enumerate(events):
            _validate(event, f"events[{i}]" if len(events) > 1 else "event")
        await self._catalog.ensure_loaded(tenant)
        try:
            return await self._publish(tenant, events, wait)
        except AlreadyExists as exc:
            if exc.reason != DUPLICATE_EVENT:
                raise
            # a concurrent publish stored one of these keys first: answer from the stored events
            return await self._publish(tenant, events, wait)

    async def _publish(self, tenant: str, events: Sequence[Event], wait: bool) -> list[Published]:
        since = utcnow() - self._window
        keys = [e.dedup_key() for e in events]
        known = await self._store.find_duplicates(tenant, sorted({k for k in keys if k}), since)
        originals = {k: await self._original(tenant, event_id) for k, event_id in known.items()}

        results: list[Published] = []
        fresh: list[Event] = []
        executions: list[Execution] = []
        jobs: dict[str, Job] = {}
        first_of_key: dict[str, Published] = {}
        local = self._dispatcher.room() if self._wakeup is not None else 0
        turn = perf_counter()
        for event, key in zip(events, keys, strict=True):
            if key in originals:
                results.append(originals[key])
                continue
            if key in first_of_key:  # the same event twice in one batch
                results.append(Published(first_of_key[key].event, first_of_key[key].executions, duplicate=True))
                continue
            event.tenant = tenant
            event.id = new_id()
            event.received_at = utcnow()
            began = telemetry.clock()
            planned = [_plan(event, action) for action in self._matcher.match(tenant, event)]
            telemetry.matched(tenant, event, planned, began)
            if perf_counter() - turn > MATCHING_SLICE_SECONDS:
                # a batch matched against costly (CEL) conditions must not hold the loop throughout
                await asyncio.sleep(0)
                turn = perf_counter()
            envelope = event.envelope() if planned else None
            for ex in planned:
                lease = ex.mode is ExecutionMode.SYNC and wait
                if not lease and ex.mode is not ExecutionMode.QUEUED and local > 0:
                    lease, local = True, local - 1
                if lease:
                    ex.lease_owner, ex.lease_expires_at = self._leases.owner, self._leases.until()
                    jobs[ex.id] = Job(ex, envelope)
            event.status = EventStatus.PROCESSING if planned else EventStatus.COMPLETED
            fresh.append(event)
            executions.extend(planned)
            published = Published(event, planned)
            results.append(published)
            if key:
                first_of_key[key] = published
        if not fresh:
            return results
        # the first attempts of executions that find an idle worker begin now, stored with
        # them: the worker calls the handler at once, with no transaction of its own
        with await self._dispatcher.admit(list(jobs.values())) as reservation:
            for job in reservation.begun:
                assert job.begun is not None
                ex, attempt = job.execution, job.begun.attempt
                ex.status, ex.attempt_count, ex.started_at = ExecutionStatus.RUNNING, attempt.number, attempt.started_at
            try:
                await self._store.append(tenant, fresh, executions, dedup_since=since)
            except BaseException:
                await reservation.abandon()
                raise
            await self._hand_on(tenant, fresh, executions, jobs, reservation, wait)
        return results

    async def _original(self, tenant: str, event_id: str) -> Published:
        event = await self._store.get_event(tenant, event_id)
        page = await self._store.list_executions(tenant, ExecutionFilter(event_id=event_id), 1000)
        executions = sorted(page.items, key=lambda x: (-int(x.priority), x.created_at, x.id))
        return Published(event, executions, duplicate=True)

    async def _hand_on(
        self,
        tenant: str,
        events: list[Event],
        executions: list[Execution],
        jobs: dict[str, Job],
        reservation: Reservation,
        wait: bool,
    ) -> None:
        by_event: dict[str, list[Execution]] = {}
        for ex in executions:
            by_event.setdefault(ex.event_id, []).append(ex)
        waits: list[asyncio.Future[Execution]] = []
        loop = asyncio.get_running_loop()
        queued: list[Execution] = []
        unleased = False
        for event in events:
            planned = by_event.get(event.id, [])
            self._bus.publish(
                ExecutionUpdate(
                    tenant=tenant,
                    kind=UpdateKind.EVENT_ACCEPTED,
                    event_id=event.id,
                    correlation_id=event.correlation_id,
                    message=f"{event.type} matched {len(planned)} action(s)",
                )
            )
            for ex in planned:
                scheduled = ExecutionUpdate.about(ex, UpdateKind.SCHEDULED)
                scheduled.status = ExecutionStatus.PENDING  # a begun attempt is announced by its worker
                self._bus.publish(scheduled)
                job = jobs.get(ex.id)
                if ex.mode is ExecutionMode.QUEUED:
                    queued.append(ex)
                elif job is not None:
                    if wait and ex.mode is ExecutionMode.SYNC:
                        job.keep_lease = True
                        job.done = loop.create_future()
                        waits.append(job.done)
                    if job.begun is not None:
                        reservation.submit(job)
                    else:
                        self._dispatcher.submit(job)
                else:
                    unleased = True
        if unleased and self._wakeup is not None:
            self._wakeup.set()
        await self._outbox.enqueue_new(tenant, queued)
        if waits:
            await asyncio.gather(*waits)


def _validate(event: Event, path: str) -> None:
    validate_event_type(event.type, f"{path}.type")
    if not isinstance(event.data, dict):
        raise InvalidArgument.field(f"{path}.data_json", "must be a JSON object", reason="INVALID_EVENT_DATA")
    if not isinstance(event.metadata, dict):
        raise InvalidArgument.field(f"{path}.metadata_json", "must be a JSON object", reason="INVALID_EVENT_DATA")


def _plan(event: Event, action: Action) -> Execution:
    execution_id = new_id()
    return Execution(
        id=execution_id,
        tenant=event.tenant,
        action_id=action.id,
        action_name=action.name,
        action_version=action.version,
        handler_type=action.handler.type,
        input=event.data,
        event_id=event.id,
        status=ExecutionStatus.PENDING,
        idempotency_key=execution_id,
        correlation_id=event.correlation_id or event.id,
        causation_id=event.id,
        priority=action.priority,
        mode=action.execution_mode,
    )


__all__ = ["Published", "Publisher"]
