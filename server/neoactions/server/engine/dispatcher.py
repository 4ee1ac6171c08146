"""Runs executions this process holds a lease on: one attempt at a time, through the
handler type's runner.

Work arrives already leased — claimed from the store by the :class:`Scheduler`,
delivered by the queue consumer, or stored leased by the publisher that accepted
it — and waits in a small priority queue for one of ``concurrency`` workers. Every
state change is written to the store *before* it is announced on the update bus, and
the writes are fenced by the lease, so a process that lost its lease cannot record
anything. A failed attempt with retries left is stored as ``scheduled`` with its
``next_attempt_at`` and the lease is given up: whichever process claims it when it
is due runs it (this process sets a timer only to wake its own scheduler). A
``sync`` execution whose caller waits here keeps its lease through retries.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from neoactions.server.bus import UpdateBus
from neoactions.server.engine.attempts import INTERRUPTED, AttemptRunner, Begun, Deferred
from neoactions.server.engine.catalog import ActionCatalog
from neoactions.server.engine.leases import LeaseKeeper
from neoactions.server.engine.recorder import AttemptRecorder
from neoactions.server.errors import Aborted
from neoactions.server.flow import FlowControl
from neoactions.server.model import (
    Attempt,
    Execution,
    ExecutionError,
    ExecutionStatus,
    JSONObject,
    UpdateKind,
    utcnow,
)
from neoactions.server.queue import Delivery
from neoactions.server.runners import HandlerRegistry
from neoactions.server.store import LEASE_LOST, Store
from neoactions.server.templating import ConfigRenderer

log = logging.getLogger(__name__)

#: jobs a publisher may queue here beyond the running ones, as a multiple of the concurrency:
#: a burst of several 500-event calls stays here (2,304 jobs per process by default); if the
#: process dies they wait out their lease, like the running ones
WAITING_ROOM = 8


@dataclass(slots=True, eq=False)
class Job:
    """A leased execution on its way to a runner, with what the pipeline already has in memory."""

    execution: Execution
    #: the event envelope templates see; loaded from the store when missing
    envelope: JSONObject | None = None
    done: asyncio.Future[Execution] | None = field(default=None, repr=False)
    #: the queue entry that brought it; acknowledged once the attempt's outcome is stored
    delivery: Delivery | None = None
    #: a caller waits in this process: keep the lease through retries and run them here
    keep_lease: bool = False
    #: its outcome is being recorded (a write that gives up the lease): not a lost lease
    settling: bool = False
    #: its next attempt, planned and admitted before the job was queued (see ``Dispatcher.begin``)
    begun: Begun | None = None
    #: it holds a worker slot reserved for it (``Dispatcher.reserve``) until it is queued
    reserved: bool = False
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class Dispatcher:
    """A bounded pool of workers draining a priority queue of leased jobs."""

    def __init__(
        self,
        store: Store,
        catalog: ActionCatalog,
        registry: HandlerRegistry,
        bus: UpdateBus,
        renderer: ConfigRenderer,
        leases: LeaseKeeper,
        concurrency: int = 64,
        flow: FlowControl | None = None,
    ) -> None:
        self._store = store
        self._leases = leases
        #: every attempt's start and finish, group-committed
        self.recorder = AttemptRecorder(store)
        self._attempts = AttemptRunner(store, catalog, registry, bus, renderer, leases, self.recorder, flow)
        self._concurrency = concurrency
        #: (not begun, -priority, arrival, job): begun jobs first, then by priority
        self._queue: asyncio.PriorityQueue[tuple[bool, int, int, Job]] = asyncio.PriorityQueue()
        self._order = itertools.count()
        self._workers: list[asyncio.Task[None]] = []
        self._in_flight = 0
        #: slots promised to jobs not queued yet (``reserve``)
        self._reserved = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._slot_freed = asyncio.Event()
        #: set when a job ends or a reservation is given back (workers holding back wait for it)
        self._capacity = asyncio.Event()
        #: called after a retry was stored and the lease given up: (execution, when it is due)
        self.on_retry: Callable[[Execution, datetime], None] = lambda ex, due: None
        #: called once a job's outcome (final or a stored retry) is recorded
        self.on_stored: Callable[[Job], Awaitable[None]] | None = None
        leases.on_lost = self._lost

    # --- lifecycle ---------------------------------------------------------------
    def start(self) -> None:
        self._workers = [asyncio.create_task(self._work(), name=f"dispatcher-{i}") for i in range(self._concurrency)]

    def free_slots(self) -> int:
        return self._concurrency - self._in_flight - self._queue.qsize() - self._reserved

    def reserve(self, wanted: int) -> int:
        """Promise up to ``wanted`` free worker slots to jobs about to be queued; returns how
        many. Each job given one (``Job.reserved``) hands it back when it is queued, or
        through ``unreserve`` when it is not."""
        granted = max(0, min(wanted, self.free_slots()))
        self._reserved += granted
        return granted

    def unreserve(self, job: Job) -> None:
        if job.reserved:
            job.reserved = False
            self._reserved -= 1
            self._capacity.set()

    def give_back(self, slots: int) -> None:
        """Return ``slots`` reserved slots no job took."""
        if slots:
            self._reserved -= slots
            self._capacity.set()

    async def begin(self, job: Job) -> None:
        """Plan the job's next attempt and have flow control admit it now, so that its start
        can be stored with the execution (the publisher does): ``job.begun`` is set then; it
        stays ``None``, with nothing held, when the attempt cannot begin now."""
        begun = await self._attempts.begin(job)
        if not isinstance(begun, Deferred):
            begun.stored = True
            job.begun = begun

    async def abandon(self, job: Job) -> None:
        """Give back what ``begin`` and ``reserve`` took for a job that will not be queued."""
        self.unreserve(job)
        if job.begun is not None:
            begun, job.begun = job.begun, None
            await self._attempts.abandon(begun)

    def room(self) -> int:
        """How much more work the publisher may keep here: the free slots and a waiting room
        of ``WAITING_ROOM`` times the concurrency. Work accepted here runs here without a
        claim (a write and a read per execution); beyond the room it waits unleased in the
        store for whichever process has a free worker first."""
        return self._concurrency * (1 + WAITING_ROOM) - self._in_flight - self._queue.qsize()

    async def slot_freed(self) -> None:
        """Wait until a worker finishes a job."""
        self._slot_freed.clear()
        await self._slot_freed.wait()

    async def drain(self, grace_seconds: float) -> None:
        """Let queued and running work finish for a grace period, then cancel it.

        What is cut stays unfinished in the store; the caller releases the leases so
        another process (or the next start) takes it over at once.
        """
        try:
            async with asyncio.timeout(grace_seconds):
                while self._in_flight or not self._queue.empty():
                    self._idle.clear()
                    await self._idle.wait()
        except TimeoutError:
            log.warning(
                "shutdown grace period over: %d executions left to others", self._in_flight + self._queue.qsize()
            )
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers.clear()
        while not self._queue.empty():  # never started: give their flow-control leases back
            await self.abandon(self._queue.get_nowait()[3])
        await self.recorder.drain()

    def submit(self, job: Job) -> None:
        """Queue a leased job for a worker."""
        self._leases.hold(job)
        self.unreserve(job)
        self._idle.clear()
        self._queue.put_nowait((job.begun is None, -int(job.execution.priority), next(self._order), job))

    def cancel_local(self, tenant: str, execution_id: str) -> None:
        """Stop the attempt of an execution this process runs (it was cancelled in the store)."""
        job = self._leases.holds(tenant, execution_id)
        if job is not None:
            self._leases.drop(job)
            self._lost(job)

    def _lost(self, job: Job) -> None:
        if job.task is not None and not job.task.done():
            job.task.cancel()

    async def _work(self) -> None:
        while True:
            item = await self._queue.get()
            job = item[3]
            if job.begun is None and self._in_flight + self._reserved >= self._concurrency:
                # the free workers are promised to jobs a publish has begun and is storing: they
                # go first (their attempts are recorded as started), this one waits its turn
                self._queue.put_nowait(item)
                self._capacity.clear()
                await self._capacity.wait()
                continue
            self._in_flight += 1
            try:
                if self._leases.holds(job.execution.tenant, job.execution.id) is job:
                    job.task = asyncio.create_task(self._run_job(job))
                    # wait, not await: a lost lease cancels the job's task, never this worker
                    await asyncio.wait({job.task})
                else:
                    await self.abandon(job)
            finally:
                self._leases.drop(job)
                self._in_flight -= 1
                self._slot_freed.set()
                self._capacity.set()
                if not self._in_flight and self._queue.empty():
                    self._idle.set()

    async def _run_job(self, job: Job) -> None:
        try:
            await self.run(job)
        except Aborted as exc:
            if exc.reason != LEASE_LOST:
                raise
            log.info("execution %s: %s", job.execution.id, exc)
        except Exception:
            # A store failure mid-run: the lease lapses and another claim resumes the work.
            log.exception("execution %s could not be recorded", job.execution.id)
        finally:
            if job.done is not None and not job.done.done():
                job.done.set_result(job.execution)

    # --- running --------------------------------------------------------------------
    async def run(self, job: Job, deadline: datetime | None = None) -> Execution:
        """Run ``job`` until its execution is final or a retry is stored; with ``keep_lease``,
        run the retries here too (the caller waits). Returns the execution."""
        ex = job.execution
        if ex.status is ExecutionStatus.RUNNING and job.begun is None:
            await self._interrupted(job)
        while True:
            status = await self._attempts.run(job, deadline)
            if isinstance(status, Deferred):
                due = utcnow() + timedelta(seconds=status.seconds)
                if job.keep_lease:
                    await asyncio.sleep(status.seconds)
                    continue
                # flow control said not now: store when to try again and let the lease go
                job.settling = True
                if not await self._store.defer_execution(ex.tenant, ex.id, due, self._leases.owner):
                    raise Aborted(f"execution {ex.id} was taken over while deferred", reason=LEASE_LOST)
                log.debug("execution %s deferred %.2fs (%s)", ex.id, status.seconds, status.reason)
                ex.next_attempt_at = due
                self.on_retry(ex, due)
                break
            if status is not ExecutionStatus.SCHEDULED:
                break
            due = ex.next_attempt_at or utcnow()
            if not job.keep_lease:
                self.on_retry(ex, due)
                break
            # the retry is stored and this process keeps the lease: the wait is only a wake-up
            await asyncio.sleep(max(0.0, (due - utcnow()).total_seconds()))
        if self.on_stored is not None:
            await self.on_stored(job)
        if job.done is not None and not job.done.done():
            job.done.set_result(ex)
        return ex

    async def _interrupted(self, job: Job) -> None:
        """The attempt that was running when its process died (its lease expired): record it as
        interrupted — it does not count against the retry budget — and go on at once."""
        ex = job.execution
        previous = next((a for a in ex.attempts if a.number == ex.attempt_count), None)
        cut = Attempt(
            number=max(ex.attempt_count, 1),
            runner=ex.handler_type,
            status=ExecutionStatus.FAILED,
            started_at=previous.started_at if previous is not None else utcnow(),
            finished_at=utcnow(),
            error=ExecutionError(INTERRUPTED, "the process running this attempt stopped", retryable=True),
        )
        await self._store.finish_attempt(
            ex.tenant,
            ex.id,
            cut,
            ExecutionStatus.SCHEDULED,
            None,
            cut.error,
            None,
            owner=self._leases.owner,
            keep_lease=True,
        )
        if previous is not None:
            previous.status, previous.error, previous.finished_at = cut.status, cut.error, cut.finished_at
        else:
            ex.attempts.append(cut)
        ex.status, ex.next_attempt_at = ExecutionStatus.SCHEDULED, None
        ex.attempt_count = cut.number
        self._attempts.announce(ex, UpdateKind.ATTEMPT_FAILED, attempt=cut.number, error=cut.error)


__all__ = ["INTERRUPTED", "Dispatcher", "Job"]
