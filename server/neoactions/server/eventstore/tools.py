"""The event store's tools as the engine holds them: replays, backtests, streaming publish and
retention, wired to the engine's parts (matcher, catalog, outbox, scheduler)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from neoactions.domain.errors import FieldViolation, InvalidArgument
from neoactions.domain.model import Action, Execution, ExecutionMode, ExecutionStatus, ExecutionUpdate, UpdateKind
from neoactions.server.bus import UpdateBus
from neoactions.server.eventstore.backtest import BacktestReport, Candidate, backtest
from neoactions.server.eventstore.port import EventSelection, ReplayJobRecord
from neoactions.server.eventstore.replay import (
    DEFAULT_EVENTS_PER_SECOND,
    LEASE_SECONDS,
    Replayer,
    ReplayReport,
    ReplayRequest,
)
from neoactions.server.eventstore.retention import RetentionKeeper
from neoactions.server.matching import Matcher
from neoactions.server.store import Store

if TYPE_CHECKING:  # the engine imports this module: no import of it at run time
    from neoactions.server.engine.catalog import ActionCatalog
    from neoactions.server.engine.outbox import Outbox
    from neoactions.server.engine.wakeup import Wakeup

#: actions one backtest evaluates at once
MAX_BACKTEST_ACTIONS = 50


class EventStoreTools:
    def __init__(
        self,
        store: Store,
        matcher: Matcher,
        catalog: ActionCatalog,
        bus: UpdateBus,
        outbox: Outbox,
        scheduler_wakeup: Wakeup | None,
        tenants: Callable[[], Awaitable[list[str]]],
        replay_events_per_second: float = DEFAULT_EVENTS_PER_SECOND,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self._store = store
        self._matcher = matcher
        self._catalog = catalog
        self._bus = bus
        self._outbox = outbox
        self._wakeup = scheduler_wakeup
        self._tenants = tenants
        self.replayer = Replayer(
            store,
            matcher,
            self._created,
            replay_events_per_second,
            lease_seconds=lease_seconds,
            prepare=catalog.ensure_loaded,
        )
        self.retention = RetentionKeeper(store, tenants)

    async def take_over_replays(self) -> None:
        """Forever: go on with the replay jobs whose process is gone (see :mod:`.replay`)."""
        await self.replayer.keep(self._tenants)

    async def _created(self, tenant: str, executions: list[Execution]) -> None:
        """Hand replayed executions on as a publish does: announce, queue, wake the scheduler."""
        for ex in executions:
            update = ExecutionUpdate.about(ex, UpdateKind.SCHEDULED, message=f"replay of event {ex.replay_of}")
            update.status = ExecutionStatus.PENDING
            self._bus.publish(update)
        await self._outbox.enqueue_new(tenant, [x for x in executions if x.mode is ExecutionMode.QUEUED])
        if self._wakeup is not None:
            self._wakeup.set()

    async def replay(self, tenant: str, request: ReplayRequest) -> ReplayReport | ReplayJobRecord:
        await self._catalog.ensure_loaded(tenant)
        if request.dry_run:
            return await self.replayer.dry_run(tenant, request)
        return await self.replayer.start(tenant, request)

    async def backtest(
        self,
        tenant: str,
        definitions: Sequence[Action],
        names: Sequence[str],
        selection: EventSelection,
        sample_size: int,
        near_miss_size: int,
        max_events: int,
    ) -> BacktestReport:
        if not definitions and not names:
            raise InvalidArgument.field("actions", "give at least one action definition or stored action name")
        if len(definitions) + len(names) > MAX_BACKTEST_ACTIONS:
            raise InvalidArgument.field("actions", f"at most {MAX_BACKTEST_ACTIONS} actions per backtest")
        candidates: list[Candidate] = []
        for i, action in enumerate(definitions):
            try:
                compiled = self._catalog.validate(action)
            except InvalidArgument as exc:
                raise InvalidArgument(
                    f"actions[{i}]: {exc.message}", reason=exc.reason, violations=_prefixed(exc, f"actions[{i}]")
                ) from None
            candidates.append(Candidate(action, compiled))
        for name in names:
            stored = await self._catalog.get(tenant, name)
            candidates.append(Candidate(stored, self._matcher.compile(stored.trigger)))
        return await backtest(self._store, tenant, candidates, selection, sample_size, near_miss_size, max_events)


def _prefixed(exc: InvalidArgument, prefix: str) -> list[FieldViolation]:
    return [FieldViolation(f"{prefix}.{v.field}", v.description) for v in exc.violations]


__all__ = ["MAX_BACKTEST_ACTIONS", "EventStoreTools"]
