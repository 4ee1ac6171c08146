"""The lease heartbeat: what it extends and whose attempts it stops, over the in-memory store."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from neoactions.domain.ids import new_id
from neoactions.domain.model import Attempt, Execution, ExecutionError, ExecutionStatus, Tenant, utcnow
from neoactions.server.engine.jobs import Job
from neoactions.server.engine.leases import LeaseKeeper
from neoactions.server.persistence.memory import MemoryStore


def _execution() -> Execution:
    return Execution(id=new_id(), tenant="t", action_id=new_id(), action_name="a", action_version=1, input={})


async def test_a_job_recording_its_outcome_is_not_lost_when_its_lease_is_gone() -> None:
    store = MemoryStore()
    await store.open()
    await store.create_tenant(Tenant("t"))
    held, cancelled, settling = _execution(), _execution(), _execution()
    await store.append("t", [], [held, cancelled, settling])
    soon = utcnow() + timedelta(seconds=1)
    assert len(await store.claim("t", [held.id, cancelled.id, settling.id], "me", soon)) == 3
    await store.cancel_execution("t", cancelled.id, ExecutionError("cancelled", "stop"))
    # its finish gave the lease up; the job is about to announce it
    await store.finish_attempt("t", settling.id, Attempt(1, "python"), ExecutionStatus.SUCCEEDED, owner="me")

    keeper = LeaseKeeper(store, "me", 15.0)
    jobs = {x.id: Job(x, task=asyncio.create_task(asyncio.sleep(3600))) for x in (held, cancelled, settling)}
    jobs[settling.id].settling = True
    for job in jobs.values():
        keeper.hold(job)
    try:
        await keeper.beat()
        await asyncio.sleep(0)  # a stopped attempt's task ends
        assert [i for i, job in jobs.items() if job.task is not None and job.task.done()] == [cancelled.id]
    finally:
        tasks = [job.task for job in jobs.values() if job.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert keeper.holds("t", held.id) is jobs[held.id] and keeper.holds("t", settling.id) is jobs[settling.id]
    assert keeper.holds("t", cancelled.id) is None
    extended = (await store.get_execution("t", held.id)).lease_expires_at
    assert extended is not None and extended > soon + timedelta(seconds=10)
