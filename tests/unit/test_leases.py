"""The lease heartbeat: what it reports lost, over a store fake."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from neoactions.server.engine.dispatcher import Job
from neoactions.server.engine.leases import LeaseKeeper
from neoactions.server.model import Execution


class _Store:
    def __init__(self, kept: set[str]) -> None:
        self.kept = kept

    async def extend_leases(self, tenant: str, execution_ids: Sequence[str], owner: str, until: datetime) -> set[str]:
        return {i for i in execution_ids if i in self.kept}


def _job(execution_id: str) -> Job:
    return Job(Execution(id=execution_id, tenant="t", action_id="a", action_name="a", action_version=1, input={}))


async def test_a_job_recording_its_outcome_is_not_lost_when_its_lease_is_gone() -> None:
    keeper = LeaseKeeper(_Store(kept={"held"}), "me", 15.0)  # type: ignore[arg-type]
    lost: list[str] = []
    keeper.on_lost = lambda job: lost.append(job.execution.id)
    held, cancelled, settling = _job("held"), _job("cancelled"), _job("settling")
    settling.settling = True  # its finish gave the lease up; the job is about to announce it
    for job in (held, cancelled, settling):
        keeper.hold(job)
    await keeper.beat()
    assert lost == ["cancelled"]
    assert keeper.holds("t", "held") is held and keeper.holds("t", "settling") is settling
    assert keeper.holds("t", "cancelled") is None
