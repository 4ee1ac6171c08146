"""The pipeline: publish → match → store → claim/queue → run → record → announce.

:class:`Engine` wires the parts and is the one door into them: the API servicers call its
operations and nothing else. Each operation takes the :class:`~neoactions.server.access.Caller`
and the tenant it acts in, and asks the access policy (:mod:`neoactions.server.access`)
before it acts. Which loops a process runs follows its role: every role runs ``sync`` work its callers wait for and
the outbox; ``worker`` and ``all`` also claim due work from the store
(:class:`Scheduler`) and consume the work queue (:class:`QueueConsumer`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from neoactions.domain.audit import AuditEntry
from neoactions.domain.errors import Aborted, FailedPrecondition, InvalidArgument, NeoActionsError
from neoactions.domain.ids import new_id
from neoactions.domain.keys import ApiKey, key_not_found, token_hash
from neoactions.domain.model import (
    ADMIN_TENANT,
    JSON,
    Action,
    Event,
    Execution,
    ExecutionError,
    ExecutionMode,
    ExecutionStatus,
    ExecutionUpdate,
    HandlerSpec,
    InlineAction,
    Tenant,
    UpdateKind,
    utcnow,
)
from neoactions.domain.secrets import MasterKeyRotation, SecretInfo
from neoactions.plugins.registry import RegistryEntry, Unreachable
from neoactions.server import telemetry
from neoactions.server.access import AccessPolicy, Caller, OpenAccess, Permission
from neoactions.server.audit import Auditor, action_change
from neoactions.server.bus import UpdateBus, UpdateFilter
from neoactions.server.changes import ActionChangeFeed, LocalChangeFeed
from neoactions.server.engine.acks import Acknowledgements
from neoactions.server.engine.attempts import AttemptRunner
from neoactions.server.engine.catalog import ActionCatalog
from neoactions.server.engine.consumer import QueueConsumer
from neoactions.server.engine.dispatcher import Dispatcher
from neoactions.server.engine.jobs import Job
from neoactions.server.engine.leases import LeaseKeeper, new_owner
from neoactions.server.engine.outbox import Outbox
from neoactions.server.engine.publisher import Published, Publisher
from neoactions.server.engine.recorder import AttemptRecorder
from neoactions.server.engine.scheduler import Scheduler
from neoactions.server.engine.wakeup import DueWork, Wakeup
from neoactions.server.eventstore.backtest import BacktestReport
from neoactions.server.eventstore.port import EventSelection, ReplayJobRecord, RetentionPolicy, StoreUsage
from neoactions.server.eventstore.replay import ReplayReport, ReplayRequest
from neoactions.server.eventstore.retention import check_policy
from neoactions.server.eventstore.streaming import ordered
from neoactions.server.eventstore.tools import EventStoreTools
from neoactions.server.flow import FlowControl, create_flow_control
from neoactions.server.keys import KeyRing, expiry_after, new_key
from neoactions.server.matching import ActionExplanation, CelLimits, Matcher, validate_event_type
from neoactions.server.pluginhost.host import PluginHost, PluginInfo, Removed
from neoactions.server.queue import InProcessWorkQueue, WorkQueue
from neoactions.server.runners import HandlerRegistry
from neoactions.server.secrets import Secrets
from neoactions.server.settings import Settings
from neoactions.server.store import ActionFilter, AuditFilter, EventFilter, ExecutionFilter, Page, Store
from neoactions.server.telemetry.health import ActionHealth, Thresholds, action_health, tenant_health
from neoactions.server.telemetry.stats import ActionStats, StatsReader, window
from neoactions.server.templating import ConfigRenderer
from neoactions.server.workflows.rows import StepRun
from neoactions.server.workflows.service import WAITS_TOPIC, Workflows

log = logging.getLogger(__name__)

#: how long the list of tenants is trusted before it is read again (tenants created elsewhere)
_TENANTS_TTL = 5.0
_MAINTENANCE_SECONDS = 600.0


class Engine:
    """The core service, independent of gRPC."""

    def __init__(
        self,
        store: Store,
        registry: HandlerRegistry,
        bus: UpdateBus,
        settings: Settings,
        changes: ActionChangeFeed | None = None,
        queue: WorkQueue | None = None,
        flow: FlowControl | None = None,
        access: AccessPolicy | None = None,
    ) -> None:
        #: who may do what; every operation below asks it first
        self.access: AccessPolicy = access if access is not None else OpenAccess()
        self.store = store
        #: action stats and health, from stored executions (``neoactions.server.telemetry``)
        self.stats = StatsReader(store)
        self.health_thresholds = Thresholds.from_settings(settings)
        #: the audit log: ``await self.audit.record(caller, tenant, kind, target, change)`` after a
        #: configuration change is stored (see :mod:`neoactions.server.audit` for the kinds)
        self.audit = Auditor(store)
        #: API keys: authenticates bearer tokens, meters each key's publish rate
        self.keys = KeyRing(store)
        self.registry = registry
        self.bus = bus
        self.settings = settings
        self.queue: WorkQueue = queue if queue is not None else InProcessWorkQueue()
        self.flow: FlowControl = flow if flow is not None else create_flow_control("", settings.flow_control)
        self.renderer = ConfigRenderer.for_settings(settings)
        self.matcher = Matcher(
            CelLimits(
                cost_budget=settings.cel_cost_budget,
                max_list_items=settings.max_cel_list_items,
                max_input_values=settings.max_cel_input_values,
                max_string_bytes=settings.max_event_bytes,
            )
        )
        self.changes: ActionChangeFeed = changes or LocalChangeFeed()
        self.actions = ActionCatalog(
            store,
            self.matcher,
            registry,
            self.renderer,
            settings.max_action_timeout_seconds,
            self.changes,
            max_actions=settings.max_actions_per_tenant,
            max_conditions=settings.max_conditions_per_action,
            topics={WAITS_TOPIC: self._waits_changed},
        )
        #: installed plugins, in step with the store on every process (see neoactions.server.pluginhost)
        self.plugins = PluginHost(
            store,
            registry,
            registries=settings.plugin_registries,
            trusted_keys=settings.trusted_plugin_keys,
            allow_unsigned=settings.allow_unsigned_plugins,
            changes=self.changes,
            actions_using=self._actions_using,
            disable_action=self._disable_for_plugin,
            versions_in_use=self._plugin_versions_in_use,
        )
        self.leases = LeaseKeeper(store, new_owner(), settings.lease_seconds)
        due = self._due = DueWork(outbox=Wakeup(), scheduler=Wakeup() if settings.runs_work else None)
        acks = Acknowledgements(self.queue)
        #: durable workflows: the ``workflow`` handler type and its runs' hooks
        self.workflows = Workflows(
            store, bus, due, self.renderer, registry, self.actions.get, self._cancel, self.matcher.cel_limits,
            self.changes, self._run_here if settings.runs_work else None,
            self._wake,
        )  # fmt: skip
        registry.register(self.workflows.handler_type())
        #: tenants' secrets: sealed under the master key, opened when an attempt renders
        self.secrets = Secrets(store, settings)
        attempts = AttemptRunner(
            store, self.actions, registry, bus, self.renderer, self.leases, AttemptRecorder(store), self.flow,
            self.secrets,
        )  # fmt: skip
        self.dispatcher = Dispatcher(
            store, attempts, self.leases, due, acks, settings.concurrency, settings.max_interrupted_attempts,
            finished=self.workflows.child_finished,
        )  # fmt: skip
        self.scheduler = Scheduler(
            store, self.dispatcher, self.leases, self.tenant_slugs, settings.poll_interval_seconds, due.scheduler
        )
        self.outbox = Outbox(
            store,
            self.queue,
            self.tenant_slugs,
            settings.outbox_sweep_seconds,
            settings.requeue_after_seconds,
            due.outbox,
        )
        self.consumer = QueueConsumer(
            self.queue, store, self.dispatcher, self.leases, acks, settings.visibility_timeout_seconds
        )
        self.publisher = Publisher(
            store,
            self.matcher,
            self.actions,
            self.dispatcher,
            bus,
            self.leases,
            self.outbox,
            self.scheduler.wakeup if settings.runs_work else None,
            settings.dedup_window_seconds,
        )
        #: replay, backtest, streaming publish and retention (:mod:`neoactions.server.eventstore`)
        self.event_tools = EventStoreTools(
            store,
            self.matcher,
            self.actions,
            bus,
            self.outbox,
            self.scheduler.wakeup if settings.runs_work else None,
            self.tenant_slugs,
            settings.replay_events_per_second,
            settings.lease_seconds,
        )
        self._tenants: set[str] = set()
        self._tenants_read = 0.0
        self._loops: list[asyncio.Task[None]] = []
        self._heartbeat: asyncio.Task[None] | None = None

    # --- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        """Start the workers and the loops of this process's role."""
        await self.tenant_slugs()
        await self.plugins.start()
        await self.workflows.load_waits(await self.tenant_slugs())
        self.dispatcher.start()
        self._heartbeat = asyncio.create_task(self.leases.run(), name="lease-heartbeat")
        loops = [self.outbox.run(), self._maintenance(), self.event_tools.retention.run()]
        loops.append(self.event_tools.take_over_replays())
        if self.settings.runs_work:
            loops += [self.scheduler.run(), self.consumer.run()]
        self._loops = [asyncio.create_task(c) for c in loops]

    async def stop(self, grace_seconds: float) -> None:
        """Stop intake, drain for the grace period, then give up the leases of what is left so
        other processes (or the next start) take it over at once."""
        for task in self._loops:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        self._loops.clear()
        await self.event_tools.replayer.stop()
        await self.dispatcher.drain(grace_seconds)
        await self.workflows.stop()
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            await asyncio.gather(self._heartbeat, return_exceptions=True)
        released = await self.leases.release_all(await self.tenant_slugs())
        if released:
            log.info("released %d leases for others to take over", released)

    async def tenant_slugs(self) -> list[str]:
        """Every tenant (cached briefly: other processes may create tenants)."""
        now = time.monotonic()
        if now - self._tenants_read > _TENANTS_TTL:
            slugs: set[str] = set()
            token = ""
            while True:
                page = await self.store.list_tenants(1000, token)
                slugs.update(t.slug for t in page.items)
                token = page.next_page_token
                if not token:
                    break
            self._tenants = slugs
            self._tenants_read = now
        return sorted(self._tenants)

    async def _maintenance(self) -> None:
        while True:
            try:
                before = utcnow() - timedelta(seconds=self.settings.dedup_window_seconds)
                for tenant in await self.tenant_slugs():
                    await self.store.purge_dedup(tenant, before)
            except NeoActionsError as exc:
                log.warning("maintenance failed: %s", exc)
            await asyncio.sleep(_MAINTENANCE_SECONDS)

    # --- tenants -----------------------------------------------------------------------
    async def tenant(self, slug: str) -> str:
        """``slug`` if the tenant exists (cached once seen), else ``NotFound`` (TENANT_NOT_FOUND)."""
        if slug not in self._tenants:
            if not slug:
                raise InvalidArgument.field("parent", "a tenant is required (tenants/{tenant})")
            await self.store.get_tenant(slug)
            self._tenants.add(slug)
        return slug

    async def enter(self, caller: Caller, tenant: str, permission: Permission) -> str:
        """The door every operation passes: ``caller`` may do what needs ``permission`` in
        ``tenant``, and the tenant exists. Returns its slug."""
        self.access.check(caller, tenant, permission)
        return await self.tenant(tenant)

    async def create_tenant(self, caller: Caller, tenant: Tenant) -> Tenant:
        await self.enter(caller, ADMIN_TENANT, Permission.MANAGE)
        created = await self.store.create_tenant(tenant)
        self._tenants.add(created.slug)
        await self.audit.record(
            caller, ADMIN_TENANT, "tenant.create", created.slug, {"display_name": created.display_name}
        )
        return created

    async def list_tenants(self, caller: Caller, page_size: int, page_token: str) -> Page[Tenant]:
        await self.enter(caller, ADMIN_TENANT, Permission.READ)
        return await self.store.list_tenants(page_size, page_token)

    async def delete_tenant(self, caller: Caller, tenant: str) -> None:
        """Remove ``tenant`` with everything it holds and its keys (the ``admin`` tenant's admin)."""
        await self.enter(caller, ADMIN_TENANT, Permission.MANAGE)
        await self.store.delete_tenant(tenant)
        self._tenants.discard(tenant)
        self.keys.forget_tenant(tenant)
        await self.audit.record(caller, ADMIN_TENANT, "tenant.delete", tenant)

    # --- API keys --------------------------------------------------------------------
    async def authenticate(self, token: str, request_id: str = "") -> Caller:
        """The caller a bearer token identifies (``Unauthenticated`` when it identifies none)."""
        return await self.keys.authenticate(token, request_id)

    async def create_api_key(
        self, caller: Caller, tenant: str, name: str, role: str, ttl_seconds: float = 0.0, publish_rate: float = 0.0
    ) -> tuple[ApiKey, str]:
        """A new key of ``tenant`` and its token, which is shown only here."""
        tenant = await self.enter(caller, tenant, Permission.MANAGE)
        key, token = new_key(
            tenant,
            name,
            role,
            created_by=caller.principal if caller.role is not None else "",
            expires_at=expiry_after(ttl_seconds),
            publish_rate=publish_rate,
        )
        await self.store.create_api_key(key, token_hash(token))
        change = {"name": key.name, "role": key.role, "expires_at": str(key.expires_at or ""), "rate": publish_rate}
        await self.audit.record(caller, tenant, "key.create", key.id, change)
        return key, token

    async def list_api_keys(self, caller: Caller, tenant: str, page_size: int, page_token: str) -> Page[ApiKey]:
        tenant = await self.enter(caller, tenant, Permission.MANAGE)
        return await self.store.list_api_keys(tenant, page_size, page_token)

    async def revoke_api_key(self, caller: Caller, tenant: str, key_id: str) -> ApiKey:
        """Revoke a key of ``tenant``: every process refuses it within a second."""
        tenant = await self.enter(caller, tenant, Permission.MANAGE)
        found = await self.store.get_api_key(key_id)
        if found is None or found[0].tenant != tenant:
            raise key_not_found(key_id)
        key = await self.store.revoke_api_key(key_id, utcnow())
        self.keys.forget(key_id)
        await self.audit.record(caller, tenant, "key.revoke", key.id, {"name": key.name, "role": key.role})
        return key

    # --- actions ---------------------------------------------------------------------
    async def create_action(self, caller: Caller, action: Action, validate_only: bool = False) -> Action:
        await self.enter(caller, action.tenant, Permission.WRITE)
        await self._check_secrets(action.tenant, action.handler, "handler")
        created = await self.actions.create(action, validate_only=validate_only)
        if not validate_only:
            await self.audit.record(caller, created.tenant, "action.create", created.name, action_change(created))
        return created

    async def get_action(self, caller: Caller, tenant: str, name: str, version: int = 0) -> Action:
        tenant = await self.enter(caller, tenant, Permission.READ)
        return await self.actions.get(tenant, name, version)

    async def list_actions(
        self, caller: Caller, tenant: str, page_size: int, page_token: str, filter: ActionFilter | None = None
    ) -> Page[Action]:
        tenant = await self.enter(caller, tenant, Permission.READ)
        return await self.actions.list(tenant, page_size, page_token, filter)

    async def update_action(
        self, caller: Caller, action: Action, expected_version: int | None, validate_only: bool = False
    ) -> Action:
        await self.enter(caller, action.tenant, Permission.WRITE)
        await self._check_secrets(action.tenant, action.handler, "handler")
        updated = await self.actions.update(action, expected_version, validate_only=validate_only)
        if not validate_only:
            await self.audit.record(caller, updated.tenant, "action.update", updated.name, action_change(updated))
        return updated

    async def delete_action(self, caller: Caller, tenant: str, name: str) -> None:
        tenant = await self.enter(caller, tenant, Permission.WRITE)
        await self.actions.delete(tenant, name)
        await self.audit.record(caller, tenant, "action.delete", name)

    async def set_action_enabled(self, caller: Caller, tenant: str, name: str, enabled: bool) -> Action:
        tenant = await self.enter(caller, tenant, Permission.WRITE)
        before = await self.actions.get(tenant, name)
        stored = await self.actions.set_enabled(tenant, name, enabled)
        if before.enabled != enabled:
            kind = "action.enable" if enabled else "action.disable"
            await self.audit.record(caller, tenant, kind, name, {"version": stored.version})
        return stored

    # --- audit log ---------------------------------------------------------------------
    async def list_audit_entries(
        self, caller: Caller, tenant: str, filter: AuditFilter, page_size: int, page_token: str
    ) -> Page[AuditEntry]:
        """The tenant's audit log, newest first (admins only: it names every key's changes)."""
        tenant = await self.enter(caller, tenant, Permission.MANAGE)
        return await self.audit.list(tenant, filter, page_size, page_token)

    # --- secrets -----------------------------------------------------------------------
    async def set_secret(self, caller: Caller, tenant: str, name: str, value: str) -> SecretInfo:
        """Create a secret or give it a new value (sealed before it is stored; never returned)."""
        tenant = await self.enter(caller, tenant, Permission.MANAGE)
        info = await self.secrets.set(tenant, name, value, caller.principal if caller.role is not None else "")
        await self.audit.record(caller, tenant, "secret.set", name, {"version": info.version})
        return info

    async def list_secrets(
        self, caller: Caller, tenant: str, page_size: int = 0, page_token: str = ""
    ) -> Page[SecretInfo]:
        """Names and metadata, ordered by name; never a value."""
        tenant = await self.enter(caller, tenant, Permission.MANAGE)
        items, token = await self.secrets.list(tenant, page_size, page_token)
        return Page(items, token)

    async def delete_secret(self, caller: Caller, tenant: str, name: str) -> None:
        tenant = await self.enter(caller, tenant, Permission.MANAGE)
        await self.secrets.delete(tenant, name)
        await self.audit.record(caller, tenant, "secret.delete", name)

    async def rotate_master_key(self, caller: Caller, new_key: bytes = b"") -> MasterKeyRotation:
        """Re-encrypt every tenant's secrets under the current master key, or ``new_key``."""
        await self.enter(caller, ADMIN_TENANT, Permission.MANAGE)
        self._tenants_read = 0.0  # every tenant, including ones created elsewhere a moment ago
        rotation = await self.secrets.rotate(await self.tenant_slugs(), new_key)
        change = {"key_id": rotation.key_id, "resealed": rotation.resealed}
        await self.audit.record(caller, ADMIN_TENANT, "secret.rotate_master_key", rotation.key_id, change)
        return rotation

    async def _check_secrets(self, tenant: str, handler: HandlerSpec, path: str) -> None:
        """Refuse a handler config with a literal credential or naming a secret ``tenant`` lacks."""
        handler_type = self.registry.get(handler.type, f"{path}.type", handler.version)
        await self.secrets.check_config(
            tenant,
            handler.config,
            handler_type.sensitive_config_paths,
            handler_type.raw_config_keys,
            f"{path}.config",
        )

    # --- events ----------------------------------------------------------------------
    async def publish(self, caller: Caller, tenant: str, events: list[Event], wait: bool = False) -> list[Published]:
        tenant = await self.enter(caller, tenant, Permission.PUBLISH)
        self.keys.charge_publish(caller, len(events))
        published = await telemetry.publish(self.publisher, tenant, events, wait)
        await self.workflows.events_published(tenant, [p.event for p in published if not p.duplicate])
        return published

    async def get_event(self, caller: Caller, tenant: str, event_id: str) -> Event:
        tenant = await self.enter(caller, tenant, Permission.READ)
        return await self.store.get_event(tenant, event_id)

    async def list_events(
        self, caller: Caller, tenant: str, filter: EventFilter, page_size: int, page_token: str
    ) -> Page[Event]:
        tenant = await self.enter(caller, tenant, Permission.READ)
        return await self.store.list_events(tenant, filter, page_size, page_token)

    # --- direct executions -------------------------------------------------------------
    async def prepare_execution(
        self,
        caller: Caller,
        tenant: str,
        input: JSON,
        action_name: str = "",
        inline: InlineAction | None = None,
        correlation_id: str = "",
        idempotency_key: str = "",
    ) -> Execution:
        """Store a direct execution (of a stored action or an inline handler), leased to this
        process (its caller waits here), not yet run."""
        await self.enter(caller, tenant, Permission.WRITE)
        execution_id = new_id()
        if inline is not None:
            if not 0 < inline.timeout_seconds <= self.settings.max_action_timeout_seconds:
                raise InvalidArgument.field("inline.timeout_seconds", "must be > 0 and within the server's limit")
            handler_type = self.registry.get(inline.handler.type, "inline.handler.type", inline.handler.version)
            handler_type.check_config(inline.handler.config, "inline.handler.config")
            await self._check_secrets(tenant, inline.handler, "inline.handler")
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
                mode=ExecutionMode.SYNC,
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
        ex.lease_owner, ex.lease_expires_at = self.leases.owner, self.leases.until()
        await self.store.append(tenant, [], [ex])
        self._announce(ex, UpdateKind.SCHEDULED)
        return ex

    async def execute(
        self,
        caller: Caller,
        tenant: str,
        input: JSON,
        *,
        action_name: str = "",
        inline: InlineAction | None = None,
        correlation_id: str = "",
        idempotency_key: str = "",
        deadline: datetime | None = None,
    ) -> AsyncGenerator[tuple[ExecutionUpdate, str]]:
        """Prepare and run an execution here (as :meth:`prepare_execution` and
        :meth:`run_execution`), yielding its updates with their resume tokens until the final
        one. Closing the iterator early cancels the execution."""
        ex = await self.prepare_execution(
            caller, tenant, input, action_name, inline, correlation_id=correlation_id, idempotency_key=idempotency_key
        )
        subscription = self.bus.subscribe(UpdateFilter(tenant=tenant, execution_id=ex.id))
        run = asyncio.create_task(self.run_execution(ex, deadline))
        # however the run ends (even by an error, with no final update) the stream ends too,
        # after what was announced; the subscription is closed there, once
        run.add_done_callback(lambda task: _run_ended(task, subscription))
        try:
            async for update in subscription:
                yield update, self.bus.token(update)
                if update.kind.is_final:
                    break
            await run
        finally:
            if not run.done():
                run.cancel()
                await asyncio.gather(run, return_exceptions=True)

    async def run_execution(self, ex: Execution, deadline: datetime | None = None) -> Execution:
        """Run a prepared execution here, to its end (retries included). If the caller goes away
        (cancellation), the execution is recorded as cancelled."""
        job = Job(ex, keep_lease=True)
        self.leases.hold(job)
        try:
            return await self.dispatcher.run(job, deadline)
        except asyncio.CancelledError:
            await asyncio.shield(self._caller_left(ex))
            raise
        except Aborted:
            # the lease was lost (cancelled through the API, or taken over): the store has the truth
            return await self.store.get_execution(ex.tenant, ex.id)
        finally:
            self.leases.drop(job)

    async def _caller_left(self, ex: Execution) -> None:
        if ex.status.is_final:
            return
        with contextlib.suppress(FailedPrecondition):
            await self._cancel(ex.tenant, ex.id, "the caller cancelled the execution")

    async def get_execution(self, caller: Caller, tenant: str, execution_id: str) -> Execution:
        tenant = await self.enter(caller, tenant, Permission.READ)
        return await self.store.get_execution(tenant, execution_id)

    async def list_executions(
        self, caller: Caller, tenant: str, filter: ExecutionFilter, page_size: int, page_token: str
    ) -> Page[Execution]:
        tenant = await self.enter(caller, tenant, Permission.READ)
        return await self.store.list_executions(tenant, filter, page_size, page_token)

    async def watch(
        self, caller: Caller, filter: UpdateFilter, resume_token: str = ""
    ) -> AsyncGenerator[tuple[ExecutionUpdate, str]]:
        """Every update ``filter`` accepts, live (after the ones since ``resume_token``), with
        the token to resume after each."""
        await self.enter(caller, filter.tenant, Permission.READ)
        subscription = self.bus.subscribe(filter, resume_token)
        try:
            async for update in subscription:
                yield update, self.bus.token(update)
        finally:
            subscription.close()

    async def test_event(
        self, caller: Caller, tenant: str, event: Event, action_name: str = "", execute: bool = False
    ) -> list[tuple[ActionExplanation, Execution | None]]:
        """Explain ``event`` against one or every action; with ``execute``, run the matched ones for real."""
        await self.enter(caller, tenant, Permission.WRITE if execute else Permission.READ)
        validate_event_type(event.type, "event.type")
        await self.actions.ensure_loaded(tenant)
        event.id = event.id or new_id()
        explanations = self.matcher.explain(tenant, event, action_name or None)
        out: list[tuple[ActionExplanation, Execution | None]] = []
        for explanation in explanations:
            ran: Execution | None = None
            if execute and explanation.matched:
                ran = await self.prepare_execution(
                    caller, tenant, event.data, action_name=explanation.action, correlation_id=event.correlation_id
                )
                ran = await self.run_execution(ran)
            out.append((explanation, ran))
        return out

    # --- event store: replay, backtest, streaming publish, retention ---------------------------
    async def replay_events(
        self,
        caller: Caller,
        tenant: str,
        selection: EventSelection,
        actions: Sequence[str] = (),
        dry_run: bool = False,
        sample_size: int = 5,
        events_per_second: float = 0.0,
    ) -> ReplayReport | ReplayJobRecord:
        """A dry run's counts (READ), or a background replay started (WRITE)."""
        tenant = await self.enter(caller, tenant, Permission.READ if dry_run else Permission.WRITE)
        request = ReplayRequest(selection, tuple(actions), bool(dry_run), sample_size, events_per_second)
        return await self.event_tools.replay(tenant, request)

    async def get_replay(self, caller: Caller, tenant: str, replay_id: str) -> ReplayJobRecord:
        tenant = await self.enter(caller, tenant, Permission.READ)
        return await self.event_tools.replayer.get(tenant, replay_id)

    async def watch_replay(self, caller: Caller, tenant: str, replay_id: str) -> AsyncGenerator[ReplayJobRecord]:
        tenant = await self.enter(caller, tenant, Permission.READ)
        async for job in self.event_tools.replayer.watch(tenant, replay_id):
            yield job

    async def cancel_replay(self, caller: Caller, tenant: str, replay_id: str) -> ReplayJobRecord:
        tenant = await self.enter(caller, tenant, Permission.WRITE)
        return await self.event_tools.replayer.cancel(tenant, replay_id)

    async def backtest(
        self,
        caller: Caller,
        tenant: str,
        definitions: Sequence[Action],
        names: Sequence[str],
        selection: EventSelection,
        sample_size: int = 5,
        near_miss_size: int = 5,
        max_events: int = 0,
    ) -> BacktestReport:
        """Actions (unsaved definitions or stored ones) against the stored events."""
        tenant = await self.enter(caller, tenant, Permission.READ)
        return await self.event_tools.backtest(
            tenant, definitions, names, selection, sample_size, near_miss_size, max_events
        )

    async def publish_stream(
        self, caller: Caller, tenant: str, batches: AsyncIterator[list[Event] | Exception]
    ) -> AsyncGenerator[list[Published] | Exception]:
        """Publish each batch of a stream, answering in order, a bounded number in work at once
        (a batch that is an exception — it did not decode — is answered with it)."""
        tenant = await self.enter(caller, tenant, Permission.PUBLISH)

        async def publish(batch: list[Event] | Exception) -> list[Published]:
            if isinstance(batch, Exception):
                raise batch
            return await self.publish(caller, tenant, batch)

        async for answer in ordered(batches, publish):
            yield answer

    async def get_retention(self, caller: Caller, tenant: str) -> RetentionPolicy:
        tenant = await self.enter(caller, tenant, Permission.READ)
        return await self.store.get_retention(tenant)

    async def set_retention(self, caller: Caller, tenant: str, policy: RetentionPolicy) -> RetentionPolicy:
        tenant = await self.enter(caller, tenant, Permission.MANAGE)
        check_policy(policy)
        return await self.store.set_retention(tenant, policy)

    async def usage(self, caller: Caller, tenant: str) -> StoreUsage:
        """Rows and bytes of the tenant's tables (for an overview)."""
        tenant = await self.enter(caller, tenant, Permission.READ)
        return await self.store.usage(tenant)

    # --- plugins ---------------------------------------------------------------------------
    async def search_plugins(
        self,
        caller: Caller,
        tenant: str,
        text: str = "",
        registry: str = "",
        unreachable: list[Unreachable] | None = None,
    ) -> list[RegistryEntry]:
        """The plugins of the configured registries whose name, description or types contain ``text``
        (registries that cannot be read are appended to ``unreachable`` when it is given)."""
        await self.enter(caller, tenant, Permission.READ)
        return await self.plugins.search(text, registry, unreachable)

    async def list_plugins(self, caller: Caller, tenant: str, include_builtin: bool = True) -> list[PluginInfo]:
        await self.enter(caller, tenant, Permission.READ)
        return self.plugins.listed(include_builtin)

    async def get_plugin(self, caller: Caller, tenant: str, name: str) -> PluginInfo:
        await self.enter(caller, tenant, Permission.READ)
        return self.plugins.get(name)

    async def install_plugin(
        self, caller: Caller, name: str, version: str = "", registry: str = "", grants: Sequence[str] = ()
    ) -> PluginInfo:
        """Install a plugin from a configured registry (the admin tenant's admins only)."""
        await self.enter(caller, ADMIN_TENANT, Permission.MANAGE)
        row = await self.plugins.install(name, version, registry, grants, by=caller.principal)
        change = {"version": row.version, "registry": row.registry, "grants": row.grants, "signed_by": row.signed_by}
        await self.audit.record(caller, ADMIN_TENANT, "plugin.install", name, change)
        return self.plugins.get(name)

    async def update_plugin(
        self, caller: Caller, name: str, version: str = "", grants: Sequence[str] = ()
    ) -> PluginInfo:
        """Install a newer version beside the installed ones (in-flight executions keep theirs)."""
        await self.enter(caller, ADMIN_TENANT, Permission.MANAGE)
        row = await self.plugins.update(name, version, grants or None, by=caller.principal)
        change = {"version": row.version, "registry": row.registry, "grants": row.grants, "signed_by": row.signed_by}
        await self.audit.record(caller, ADMIN_TENANT, "plugin.update", name, change)
        return self.plugins.get(name)

    async def uninstall_plugin(self, caller: Caller, name: str, force: bool = False) -> Removed:
        """Remove every version; refused while enabled actions use it unless ``force`` (which disables them)."""
        await self.enter(caller, ADMIN_TENANT, Permission.MANAGE)
        removed = await self.plugins.uninstall(name, force)
        change = {"versions": removed.versions, "disabled_actions": removed.disabled_actions}
        await self.audit.record(caller, ADMIN_TENANT, "plugin.uninstall", name, change)
        return removed

    async def _actions_using(self, type_names: Sequence[str]) -> list[tuple[str, str]]:
        wanted = set(type_names)
        using = []
        for tenant in await self.tenant_slugs():
            for action in await self.store.all_actions(tenant):
                if action.enabled and action.handler.type in wanted:
                    using.append((tenant, action.name))
        return using

    async def _disable_for_plugin(self, tenant: str, name: str) -> None:
        await self.actions.set_enabled(tenant, name, False)

    async def _plugin_versions_in_use(self, type_names: Sequence[str]) -> tuple[list[str], list[str]]:
        """The handler versions of unfinished executions of these types ("" unresolved, or when
        there are too many to look at) and the version ranges of enabled actions using them."""
        wanted = set(type_names)
        running: list[str] = []
        ranges: list[str] = []
        limit = 10_000
        for tenant in await self.tenant_slugs():
            unfinished = await self.store.unfinished_executions(tenant, limit)
            if len(unfinished) >= limit:
                running.append("")
            running += [x.handler_version for x in unfinished if x.handler_type in wanted]
            actions = await self.store.all_actions(tenant)
            ranges += [a.handler.version for a in actions if a.enabled and a.handler.type in wanted]
        return running, ranges

    # --- cancel, retry, dead letters ---------------------------------------------------------
    async def cancel_execution(self, caller: Caller, tenant: str, execution_id: str, reason: str = "") -> Execution:
        """Cancel an unfinished execution wherever it runs: the store records it at once; the
        process running it stops the attempt (here at once, elsewhere at its next heartbeat)."""
        tenant = await self.enter(caller, tenant, Permission.WRITE)
        return await self._cancel(tenant, execution_id, reason)

    async def _cancel(self, tenant: str, execution_id: str, reason: str) -> Execution:
        error = ExecutionError("cancelled", reason or "cancelled through the API")
        ex = await self.store.cancel_execution(tenant, execution_id, error)
        telemetry.metrics.execution_ended(ex, ExecutionStatus.CANCELLED.value)
        self.dispatcher.cancel_local(tenant, execution_id)
        self.bus.publish(ExecutionUpdate.about(ex, UpdateKind.CANCELLED, error=error, attempt=ex.attempt_count))
        await self.workflows.cancel_steps(ex)
        self.workflows.child_finished(ex)
        return ex

    # --- workflow runs -------------------------------------------------------------------
    def _run_here(self, executions: Sequence[Execution]) -> Callable[[], None]:
        """Lease to this process as many of ``executions`` (about to be stored) as its workers
        have room for; returns what queues them here once they are stored (a workflow's steps
        run where their run is driven, without a claim)."""
        leased = list(executions[: max(0, self.dispatcher.room())])
        for ex in leased:
            ex.lease_owner, ex.lease_expires_at = self.leases.owner, self.leases.until()

        def submit() -> None:
            for ex in leased:
                self.dispatcher.submit(Job(ex))

        return submit

    async def _wake(self, tenant: str, execution_id: str, here: bool = True) -> Execution:
        """Wake a ``waiting`` execution. When this process runs work and has room (and ``here``),
        the same write leases it here and it is queued on this process's workers at once, with no
        claim in between; otherwise any process's scheduler (or the outbox) claims it now."""
        now = utcnow()
        here = here and self.settings.runs_work and self.dispatcher.room() > 0
        owner, until = (self.leases.owner, self.leases.until()) if here else ("", None)
        ex = await self.store.wake_execution(tenant, execution_id, now, owner, until)
        if here and ex.lease_owner == owner and self.leases.holds(tenant, ex.id) is None:
            self.dispatcher.submit(Job(ex))
        else:
            self._due.due(ex, now)
        return ex

    async def _waits_changed(self, name: str) -> None:
        """Another process stored event waits (``tenant/run``; ``""``: resync every tenant)."""
        await self.workflows.waits_changed(name, await self.tenant_slugs())

    async def pause_execution(self, caller: Caller, tenant: str, execution_id: str) -> Execution:
        """Pause a workflow run: the steps in flight finish, no new step starts."""
        tenant = await self.enter(caller, tenant, Permission.WRITE)
        run = await self.store.get_execution(tenant, execution_id)
        await self.workflows.pause(run)
        return run

    async def resume_execution(self, caller: Caller, tenant: str, execution_id: str) -> Execution:
        """Resume a paused workflow run: it drives again at once."""
        tenant = await self.enter(caller, tenant, Permission.WRITE)
        run = await self.store.get_execution(tenant, execution_id)
        await self.workflows.resume(run)
        return await self.store.get_execution(tenant, execution_id)

    async def workflow_steps(self, caller: Caller, tenant: str, execution_id: str) -> list[StepRun]:
        """The steps of a workflow run as stored (none for other executions)."""
        tenant = await self.enter(caller, tenant, Permission.READ)
        return await self.workflows.steps(tenant, execution_id)

    async def wake_execution(self, caller: Caller, tenant: str, execution_id: str) -> Execution:
        """Resume a ``waiting`` execution now (what it waited for happened): its next attempt
        runs wherever it is claimed first."""
        tenant = await self.enter(caller, tenant, Permission.WRITE)
        ex = await self._wake(tenant, execution_id)
        self._announce(ex, UpdateKind.SCHEDULED, message="woken: resumes now")
        return ex

    async def retry_execution(self, caller: Caller, tenant: str, execution_id: str) -> Execution:
        """A new attempt series of a failed, timed-out, cancelled or dead-lettered execution."""
        tenant = await self.enter(caller, tenant, Permission.WRITE)
        ex = await self.store.requeue_execution(tenant, execution_id)
        await self._requeued(tenant, [ex])
        return ex

    async def list_dead_letters(
        self, caller: Caller, tenant: str, filter: ExecutionFilter, page_size: int, page_token: str
    ) -> Page[Execution]:
        filter.status = None
        filter.statuses = frozenset({ExecutionStatus.DEAD_LETTERED})
        return await self.list_executions(caller, tenant, filter, page_size, page_token)

    async def requeue_dead_letters(self, caller: Caller, tenant: str, filter: ExecutionFilter) -> int:
        tenant = await self.enter(caller, tenant, Permission.WRITE)
        requeued = await self.store.requeue_dead_letters(tenant, filter)
        await self._requeued(tenant, requeued)
        return len(requeued)

    async def _requeued(self, tenant: str, executions: Sequence[Execution]) -> None:
        for ex in executions:
            self._announce(ex, UpdateKind.SCHEDULED, message="requeued: a new attempt series")
        await self.outbox.enqueue_new(tenant, [x for x in executions if x.mode is ExecutionMode.QUEUED])
        if self.settings.runs_work:
            self.scheduler.wakeup.set()

    # --- stats and health ----------------------------------------------------------------
    async def get_action_stats(
        self, caller: Caller, tenant: str, action_name: str, start: datetime | None, end: datetime | None
    ) -> ActionStats:
        """The stats of the action's executions that ended in ``[start, end)`` (default: the last hour)."""
        tenant = await self.enter(caller, tenant, Permission.READ)
        await self.actions.get(tenant, action_name)
        start, end = window(start, end)
        return await self.stats.action_stats(tenant, action_name, start, end)

    async def get_overview(
        self, caller: Caller, tenant: str, start: datetime | None, end: datetime | None
    ) -> tuple[ActionStats, list[ActionStats], list[ActionHealth]]:
        """The tenant's total, each action's stats over the window, and their health now."""
        tenant = await self.enter(caller, tenant, Permission.READ)
        start, end = window(start, end)
        total, actions = await self.stats.overview(tenant, start, end)
        return total, actions, await tenant_health(self.stats, tenant, self.health_thresholds)

    async def get_action_health(self, caller: Caller, tenant: str, action_name: str) -> ActionHealth:
        tenant = await self.enter(caller, tenant, Permission.READ)
        await self.actions.get(tenant, action_name)
        return await action_health(self.stats, tenant, action_name, self.health_thresholds)

    def _announce(self, ex: Execution, kind: UpdateKind, message: str = "") -> None:
        self.bus.publish(ExecutionUpdate.about(ex, kind, message=message))


def _run_ended(task: asyncio.Task[Execution], subscription: Any) -> None:
    """An ``Execute`` stream ends with its run, unless the run only suspended (a workflow
    waiting): then the stream goes on until the final update."""
    if not task.cancelled() and task.exception() is None and task.result().status is ExecutionStatus.WAITING:
        return
    subscription.close()


__all__ = ["Engine", "Published"]
