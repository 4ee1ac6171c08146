"""The pipeline: publish → match → store → dispatch → run → record → announce.

:class:`Engine` wires the parts and is what the API servicers call.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from neoactions.server.bus import UpdateBus
from neoactions.server.changes import ActionChangeFeed, LocalChangeFeed
from neoactions.server.engine.catalog import ActionCatalog
from neoactions.server.engine.dispatcher import Dispatcher, Job
from neoactions.server.engine.publisher import Published, Publisher
from neoactions.server.errors import InvalidArgument
from neoactions.server.ids import new_id
from neoactions.server.matching import ActionExplanation, Matcher, validate_event_type
from neoactions.server.model import (
    JSON,
    Attempt,
    Event,
    Execution,
    ExecutionError,
    ExecutionMode,
    ExecutionStatus,
    ExecutionUpdate,
    InlineAction,
    Tenant,
    UpdateKind,
    utcnow,
)
from neoactions.server.runners import HandlerRegistry
from neoactions.server.settings import Settings
from neoactions.server.store import Store
from neoactions.server.templating import ConfigRenderer

log = logging.getLogger(__name__)


class Engine:
    """The core service, independent of gRPC."""

    def __init__(
        self,
        store: Store,
        registry: HandlerRegistry,
        bus: UpdateBus,
        settings: Settings,
        changes: ActionChangeFeed | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.bus = bus
        self.settings = settings
        self.renderer = ConfigRenderer()
        self.matcher = Matcher()
        self.changes: ActionChangeFeed = changes or LocalChangeFeed()
        self.actions = ActionCatalog(
            store, self.matcher, registry, self.renderer, settings.max_action_timeout_seconds, self.changes
        )
        self.dispatcher = Dispatcher(store, self.actions, registry, bus, self.renderer, settings.concurrency)
        self.publisher = Publisher(store, self.matcher, self.actions, self.dispatcher, bus)
        self._tenants: set[str] = set()

    async def start(self) -> None:
        """Start the workers and resume every tenant's unfinished executions."""
        self.dispatcher.start()
        page_token = ""
        while True:
            page = await self.store.list_tenants(1000, page_token)
            for tenant in page.items:
                self._tenants.add(tenant.slug)
                resumed = await self.dispatcher.resume(tenant.slug)
                if resumed:
                    log.info("resumed %d unfinished executions of tenant %s", resumed, tenant.slug)
            page_token = page.next_page_token
            if not page_token:
                break

    async def stop(self, grace_seconds: float) -> None:
        await self.dispatcher.drain(grace_seconds)

    async def tenant(self, slug: str) -> str:
        """``slug`` if the tenant exists (cached once seen), else ``NotFound`` (TENANT_NOT_FOUND)."""
        if slug not in self._tenants:
            if not slug:
                raise InvalidArgument.field("parent", "a tenant is required (tenants/{tenant})")
            await self.store.get_tenant(slug)
            self._tenants.add(slug)
        return slug

    async def create_tenant(self, tenant: Tenant) -> Tenant:
        created = await self.store.create_tenant(tenant)
        self._tenants.add(created.slug)
        return created

    async def publish(self, tenant: str, events: list[Event], wait: bool = False) -> list[Published]:
        return await self.publisher.publish(await self.tenant(tenant), events, wait)

    async def prepare_execution(
        self,
        tenant: str,
        input: JSON,
        action_name: str = "",
        inline: InlineAction | None = None,
        correlation_id: str = "",
        idempotency_key: str = "",
    ) -> Execution:
        """Store a direct execution (of a stored action or an inline handler), not yet run."""
        await self.tenant(tenant)
        execution_id = new_id()
        if inline is not None:
            if not 0 < inline.timeout_seconds <= self.settings.max_action_timeout_seconds:
                raise InvalidArgument.field("inline.timeout_seconds", "must be > 0 and within the server's limit")
            handler_type = self.registry.get(inline.handler.type, "inline.handler.type")
            handler_type.check_config(inline.handler.config, "inline.handler.config")
            self.renderer.check(inline.handler.config, "inline.handler.config", handler_type.raw_config_keys)
            ex = Execution(
                id=execution_id,
                tenant=tenant,
                action_id="",
                action_name="",
                action_version=0,
                handler_type=inline.handler.type,
                input=input,
                inline=inline,
            )
        else:
            if not action_name:
                raise InvalidArgument.field("action", "name an action or give an inline handler")
            action = await self.actions.get(tenant, action_name)
            ex = Execution(
                id=execution_id,
                tenant=tenant,
                action_id=action.id,
                action_name=action.name,
                action_version=action.version,
                handler_type=action.handler.type,
                input=input,
                priority=action.priority,
                mode=ExecutionMode.SYNC,
            )
        ex.idempotency_key = idempotency_key or execution_id
        ex.correlation_id = correlation_id or execution_id
        await self.store.append(tenant, [], [ex])
        self.bus.publish(
            ExecutionUpdate(
                tenant=tenant,
                kind=UpdateKind.SCHEDULED,
                execution_id=ex.id,
                action_name=ex.action_name,
                correlation_id=ex.correlation_id,
                status=ex.status,
            )
        )
        return ex

    async def run_execution(self, ex: Execution, deadline: datetime | None = None) -> Execution:
        """Run a prepared execution here, to its end (retries included). If the caller goes away
        (cancellation), the execution is recorded as cancelled."""
        job = Job(ex)
        job.done = asyncio.get_running_loop().create_future()
        try:
            await self.dispatcher.run(job, deadline)
            return await job.done
        except asyncio.CancelledError:
            await asyncio.shield(self._cancelled(ex))
            raise

    async def _cancelled(self, ex: Execution) -> None:
        if ex.status.is_final:
            return
        attempt = Attempt(number=max(ex.attempt_count, 1), runner=ex.handler_type)
        attempt.status = ExecutionStatus.CANCELLED
        attempt.finished_at = utcnow()
        attempt.error = ExecutionError("cancelled", "the caller cancelled the execution")
        if ex.attempt_count == 0:
            await self.store.start_attempt(ex.tenant, ex.id, attempt)
        await self.store.finish_attempt(ex.tenant, ex.id, attempt, ExecutionStatus.CANCELLED, None, attempt.error, None)
        ex.status = ExecutionStatus.CANCELLED
        self.bus.publish(
            ExecutionUpdate(
                tenant=ex.tenant,
                kind=UpdateKind.CANCELLED,
                execution_id=ex.id,
                action_name=ex.action_name,
                correlation_id=ex.correlation_id,
                status=ex.status,
                error=attempt.error,
            )
        )

    async def test_event(
        self, tenant: str, event: Event, action_name: str = "", execute: bool = False
    ) -> list[tuple[ActionExplanation, Execution | None]]:
        """Explain ``event`` against one or every action; with ``execute``, run the matched ones for real."""
        await self.tenant(tenant)
        validate_event_type(event.type, "event.type")
        await self.actions.ensure_loaded(tenant)
        event.id = event.id or new_id()
        explanations = self.matcher.explain(tenant, event, action_name or None)
        out: list[tuple[ActionExplanation, Execution | None]] = []
        for explanation in explanations:
            ran: Execution | None = None
            if execute and explanation.matched:
                ran = await self.prepare_execution(
                    tenant, event.data, action_name=explanation.action, correlation_id=event.correlation_id
                )
                ran = await self.run_execution(ran)
            out.append((explanation, ran))
        return out

    async def get_execution(self, tenant: str, execution_id: str) -> Execution:
        return await self.store.get_execution(await self.tenant(tenant), execution_id)


__all__ = ["Engine", "Published"]
