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
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from neoactions.domain.errors import Aborted
from neoactions.domain.model import (
    Attempt,
    Execution,
    ExecutionError,
    ExecutionStatus,
    UpdateKind,
    utcnow,
)
from neoactions.server.engine.acks import Acknowledgements
from neoactions.server.engine.attempts import INTERRUPTED, AttemptRunner
from neoactions.server.engine.jobs import Deferred, Job
from neoactions.server.engine.leases import LeaseKeeper
from neoactions.server.engine.wakeup import DueWork
from neoactions.server.store import LEASE_LOST, Store

log = logging.getLogger(__name__)

#: jobs a publisher may queue here beyond the running ones, as a multiple of the concurrency:
#: a burst of several 500-event calls stays here (2,304 jobs per process by default); if the
#: process dies they wait out their lease, like the running ones
WAITING_ROOM = 8


class Reservation:
    """Worker slots promised to jobs about to be queued — the executions a publish is storing,
    the entries a consumer is claiming — so that no other job takes the workers meanwhile.

    Each :meth:`submit` queues a job on one of the promised slots; :meth:`release` gives one
    back for a job that will not need it, and :meth:`close` (or leaving the ``with`` block)
    gives back what is left. Jobs :meth:`Dispatcher.admit` began hold one slot each.
    """

    def __init__(self, dispatcher: Dispatcher, slots: int, begun: Sequence[Job] = ()) -> None:
        self._dispatcher = dispatcher
        self.slots = slots
        #: jobs whose first attempt was begun on these slots (``Dispatcher.admit``)
        self.begun = list(begun)

    def submit(self, job: Job) -> None:
        """Queue ``job`` on a promised slot if one is left, else as any job."""
        self._dispatcher.submit(job)
        if self.slots:
            self.release()

    def release(self, slots: int = 1) -> None:
        slots = min(slots, self.slots)
        self.slots -= slots
        self._dispatcher._give_back(slots)

    def close(self) -> None:
        self.release(self.slots)

    async def abandon(self) -> None:
        """The jobs will not be queued after all (their executions were not stored): give back
        what their begun attempts took, and the slots."""
        for job in self.begun:
            await self._dispatcher._abandon(job)
        self.begun.clear()
        self.close()

    def __enter__(self) -> Reservation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Dispatcher:
    """A bounded pool of workers draining a priority queue of leased jobs."""

    def __init__(
        self,
        store: Store,
        attempts: AttemptRunner,
        leases: LeaseKeeper,
        due: DueWork,
        acks: Acknowledgements | None = None,
        concurrency: int = 64,
        max_interruptions: int = 3,
        finished: Callable[[Execution], None] | None = None,
    ) -> None:
        self._store = store
        #: told when an execution run here ends or suspends (a workflow's step wakes its run)
        self._finished = finished
        #: attempts of one series cut by their process stopping before the execution is given up
        #: (dead-lettered): a handler that kills its process must not loop across restarts
        self._max_interruptions = max_interruptions
        self._leases = leases
        #: told when a retry or a deferral is stored and the lease given up
        self._due = due
        #: told about queue entries whose outcomes are recorded
        self._acks = acks
        self._attempts = attempts
        self._concurrency = concurrency
        #: (not begun, -priority, arrival, job): begun jobs first, then by priority
        self._queue: asyncio.PriorityQueue[tuple[bool, int, int, Job]] = asyncio.PriorityQueue()
        self._order = itertools.count()
        self._workers: list[asyncio.Task[None]] = []
        self._in_flight = 0
        #: slots promised to jobs not queued yet (``Reservation``)
        self._reserved = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._slot_freed = asyncio.Event()
        #: set when a job ends or a reservation is given back (workers holding back wait for it)
        self._capacity = asyncio.Event()

    # --- lifecycle ---------------------------------------------------------------
    def start(self) -> None:
        self._workers = [asyncio.create_task(self._work(), name=f"dispatcher-{i}") for i in range(self._concurrency)]

    def free_slots(self) -> int:
        return self._concurrency - self._in_flight - self._queue.qsize() - self._reserved

    def in_flight(self) -> int:
        """Jobs running now (a metric)."""
        return self._in_flight

    def waiting(self) -> int:
        """Jobs queued here for a worker (a metric)."""
        return self._queue.qsize()

    def reserve(self, wanted: int) -> Reservation:
        """Promise up to ``wanted`` free worker slots to jobs about to be queued."""
        granted = max(0, min(wanted, self.free_slots()))
        self._reserved += granted
        return Reservation(self, granted)

    async def admit(self, jobs: Sequence[Job]) -> Reservation:
        """The one admission of the publish path: promise idle workers to as many of ``jobs``
        as there are, and begin their first attempts now — planned, admitted by flow control,
        ``job.begun`` set — so the publisher stores each start with its execution and the
        worker calls the handler at once. A job whose attempt cannot begin now (flow control
        said not now) gives its slot back and is queued like any other."""
        reservation = self.reserve(len(jobs))
        first = jobs[: reservation.slots]
        try:
            await asyncio.gather(*(self._begin(job) for job in first))
        except BaseException:
            reservation.begun = [job for job in first if job.begun is not None]
            await reservation.abandon()
            raise
        reservation.begun = [job for job in first if job.begun is not None]
        reservation.release(len(first) - len(reservation.begun))
        return reservation

    async def _begin(self, job: Job) -> None:
        begun = await self._attempts.begin(job)
        if not isinstance(begun, Deferred):
            begun.stored = True
            job.begun = begun

    def _give_back(self, slots: int) -> None:
        if slots:
            self._reserved -= slots
            self._capacity.set()

    async def _abandon(self, job: Job) -> None:
        """Give back what a begun attempt took, for a job that will not run."""
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
            await self._abandon(self._queue.get_nowait()[3])
        await self._attempts.drain()

    def submit(self, job: Job) -> None:
        """Queue a leased job for a worker."""
        self._leases.hold(job)
        self._idle.clear()
        self._queue.put_nowait((job.begun is None, -int(job.execution.priority), next(self._order), job))

    def cancel_local(self, tenant: str, execution_id: str) -> None:
        """Stop the attempt of an execution this process runs (it was cancelled in the store)."""
        job = self._leases.holds(tenant, execution_id)
        if job is not None:
            self._leases.drop(job)
            job.stop()

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
                    await self._abandon(job)
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
        while not ex.status.is_final:
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
                self._due.due(ex, due)
                break
            if status is ExecutionStatus.WAITING:
                # suspended, lease given up: whoever picks it up when due (or woken) resumes it
                if ex.next_attempt_at is not None:
                    self._due.due(ex, ex.next_attempt_at)
                break
            if status is not ExecutionStatus.SCHEDULED:
                break
            due = ex.next_attempt_at or utcnow()
            if not job.keep_lease:
                self._due.due(ex, due)
                break
            # the retry is stored and this process keeps the lease: the wait is only a wake-up
            await asyncio.sleep(max(0.0, (due - utcnow()).total_seconds()))
        if self._finished is not None and (ex.status.is_final or ex.status is ExecutionStatus.WAITING):
            self._finished(ex)
        if job.delivery is not None and self._acks is not None:
            self._acks.add(job.delivery)
        if job.done is not None and not job.done.done():
            job.done.set_result(ex)
        return ex

    async def _interrupted(self, job: Job) -> None:
        """The attempt that was running when its process died (its lease expired): record it as
        interrupted — it does not count against the retry budget — and go on at once; unless the
        series has been cut that way ``max_interruptions`` times, when the execution is
        dead-lettered instead (a handler that kills its process would otherwise loop forever)."""
        ex = job.execution
        previous = next((a for a in ex.attempts if a.number == ex.attempt_count), None)
        cuts = 1 + sum(
            1
            for a in ex.attempts
            if a.number > ex.attempt_base and a is not previous and a.error is not None and a.error.type == INTERRUPTED
        )
        if ex.handler_type == "workflow":
            # a workflow run's attempts are drives, each ending in a suspension: only cuts in a
            # row since its last completed drive count (a run lives through many restarts)
            cuts = 1
            for a in sorted(ex.attempts, key=lambda a: a.number, reverse=True):
                if a is previous or a.number <= ex.attempt_base:
                    continue
                if a.error is None or a.error.type != INTERRUPTED:
                    break
                cuts += 1
        given_up = cuts >= self._max_interruptions
        message = "the process running this attempt stopped"
        if given_up:
            message += f" ({cuts} times in a row: given up; does the handler stop its process?)"
        cut = Attempt(
            number=max(ex.attempt_count, 1),
            runner=ex.handler_type,
            status=ExecutionStatus.FAILED,
            started_at=previous.started_at if previous is not None else utcnow(),
            finished_at=utcnow(),
            error=ExecutionError(INTERRUPTED, message, retryable=True),
        )
        status = ExecutionStatus.DEAD_LETTERED if given_up else ExecutionStatus.SCHEDULED
        job.settling = given_up
        await self._store.finish_attempt(
            ex.tenant,
            ex.id,
            cut,
            status,
            None,
            cut.error,
            None,
            owner=self._leases.owner,
            keep_lease=not given_up,
        )
        if previous is not None:
            previous.status, previous.error, previous.finished_at = cut.status, cut.error, cut.finished_at
        else:
            ex.attempts.append(cut)
        ex.status, ex.next_attempt_at = status, None
        ex.attempt_count = cut.number
        if given_up:
            ex.error, ex.finished_at = cut.error, cut.finished_at
            self._attempts.announce(ex, UpdateKind.DEAD_LETTERED, attempt=cut.number, error=cut.error)
            return
        self._attempts.announce(ex, UpdateKind.ATTEMPT_FAILED, attempt=cut.number, error=cut.error)


__all__ = ["INTERRUPTED", "Dispatcher", "Job", "Reservation"]
