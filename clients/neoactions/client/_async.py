"""``AsyncClient``: the typed asyncio client (grpc.aio). The blocking ``Client`` in ``_sync.py`` is
generated from this file (``make client``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self, TypeVar

import grpc
from google.protobuf import field_mask_pb2

from neoactions.client import _apply
from neoactions.client import _cloudevents as _ce
from neoactions.client import _deadletters as _dl
from neoactions.client import _replay as _rp
from neoactions.client import _requests as rq
from neoactions.client._auth import open_async_channel, resolve_api_key
from neoactions.client._config import DEFAULT_TARGET, DEFAULT_TIMEOUT
from neoactions.client._errors import translated
from neoactions.client._eventstream import DEFAULT_MAX_IN_FLIGHT, EventStream
from neoactions.client._stats import (
    ActionHealth,
    ActionStats,
    Overview,
    health_from_pb,
    overview_from_pb,
    stats_from_pb,
)
from neoactions.client._tls import PemSource, channel_credentials
from neoactions.client.results import ActionTest, ApplyResult, Page, PublishResult, StreamedUpdate
from neoactions.domain import convert
from neoactions.domain.audit import AuditEntry
from neoactions.domain.audit_pb import entry_from_pb
from neoactions.domain.errors import FailedPrecondition, Internal, InvalidArgument, NeoActionsError, NotFound
from neoactions.domain.keys import ApiKey
from neoactions.domain.keys_convert import api_key_from_pb
from neoactions.domain.model import (
    ADMIN_TENANT,
    JSON,
    Action,
    Event,
    EventStatus,
    Execution,
    ExecutionStatus,
    Tenant,
)
from neoactions.domain.secrets import MasterKeyRotation, SecretInfo
from neoactions.domain.secrets_pb import rotation_from_pb, secret_from_pb, secret_resource
from neoactions.plugins import wire as _plugin_wire
from neoactions.v1 import (
    actions_pb2,
    actions_pb2_grpc,
    audit_pb2,
    audit_pb2_grpc,
    events_pb2,
    events_pb2_grpc,
    executions_pb2,
    executions_pb2_grpc,
    keys_pb2,
    keys_pb2_grpc,
    plugins_pb2,
    plugins_pb2_grpc,
    replay_pb2,
    replay_pb2_grpc,
    secrets_pb2,
    secrets_pb2_grpc,
    stats_pb2,
    stats_pb2_grpc,
    tenants_pb2,
    tenants_pb2_grpc,
)

T = TypeVar("T")


async def _all_pages(fetch: Callable[[str], Awaitable[Page[T]]]) -> AsyncIterator[T]:
    token = ""
    while True:
        page = await fetch(token)
        for item in page.items:
            yield item
        if not page.next_page_token:
            return
        token = page.next_page_token


class AsyncClient:
    """The neoactions API over asyncio, returning domain objects and raising typed errors.

    Every failed call raises a subclass of
    :class:`~neoactions.domain.errors.NeoActionsError` (``NotFound`` with reason
    ``ACTION_NOT_FOUND``, ``InvalidArgument`` with field violations, ...).
    ``tenant`` applies to every call and can be overridden per call with ``tenant=``.

    Use as ``async with AsyncClient("127.0.0.1:50051", tenant="shop") as client: ...``.
    """

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        tenant: str = ADMIN_TENANT,
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
        channel: grpc.aio.Channel | None = None,
        tls_ca: PemSource | None = None,
        tls_cert: PemSource | None = None,
        tls_key: PemSource | None = None,
        api_key: str | None = None,
        data_dir: str | None = None,
    ) -> None:
        self.target = target
        self.tenant = tenant
        self.timeout = timeout
        self._owns_channel = channel is None
        # the bearer token of every call: the argument, NEOACTIONS_API_KEY, the user's profile,
        # or a local embedded server's admin.key (see _auth.py); a given channel brings its own
        self.api_key = resolve_api_key(api_key, target, data_dir) if channel is None else api_key
        # TLS when a CA or a client certificate is given (see _tls.py); plaintext otherwise
        tls = channel_credentials(tls_ca, tls_cert, tls_key) if channel is None else None
        self._channel = channel or open_async_channel(target, tls, self.api_key)
        self._events = events_pb2_grpc.EventServiceStub(self._channel)
        self._actions = actions_pb2_grpc.ActionServiceStub(self._channel)
        self._executions = executions_pb2_grpc.ExecutionServiceStub(self._channel)
        self._tenants = tenants_pb2_grpc.TenantServiceStub(self._channel)
        self._audit = audit_pb2_grpc.AuditServiceStub(self._channel)
        self._keys = keys_pb2_grpc.ApiKeyServiceStub(self._channel)
        self._secrets = secrets_pb2_grpc.SecretServiceStub(self._channel)
        self._stats = stats_pb2_grpc.StatsServiceStub(self._channel)
        self._plugins = plugins_pb2_grpc.PluginServiceStub(self._channel)
        self._replay = replay_pb2_grpc.ReplayServiceStub(self._channel)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the channel (when this client opened it)."""
        if self._owns_channel:
            await self._channel.close()

    def _tenant(self, tenant: str | None) -> str:
        return tenant or self.tenant

    async def _call(self, method: Any, request: Any) -> Any:
        with translated():
            return await method(request, timeout=self.timeout)

    async def _stream(self, start: Callable[[], Any], tenant: str) -> AsyncIterator[StreamedUpdate]:
        call = start()
        try:
            with translated():
                async for msg in call:
                    yield rq.streamed(msg, tenant)
        finally:
            call.cancel()

    # --- events ------------------------------------------------------------------

    async def publish(
        self,
        type: str,
        data: Mapping[str, Any],
        *,
        metadata: Mapping[str, Any] | None = None,
        source: str = "",
        subject: str = "",
        correlation_id: str = "",
        causation_id: str = "",
        idempotency_key: str = "",
        time: datetime | None = None,
        wait: bool = False,
        tenant: str | None = None,
    ) -> PublishResult:
        """Publish one event; with ``wait`` the matched ``sync`` actions' results come back final."""
        event = rq.event_pb(
            type,
            data,
            metadata=metadata,
            source=source,
            subject=subject,
            time=time,
            correlation_id=correlation_id,
            causation_id=causation_id,
            idempotency_key=idempotency_key,
        )
        request = events_pb2.PublishEventRequest(parent=rq.parent(self._tenant(tenant)), event=event, wait=wait)
        return rq.publish_result(await self._call(self._events.PublishEvent, request))

    async def publish_many(self, events: Iterable[rq.EventInput], *, tenant: str | None = None) -> list[PublishResult]:
        """Publish a batch of events in one call (one transaction on the server)."""
        messages = [rq.event_input_pb(e, f"events[{i}]") for i, e in enumerate(events)]
        request = events_pb2.PublishEventsRequest(parent=rq.parent(self._tenant(tenant)), events=messages)
        response = await self._call(self._events.PublishEvents, request)
        return [rq.publish_result(r) for r in response.results]

    async def get_event(self, event_id: str, *, tenant: str | None = None) -> Event:
        request = events_pb2.GetEventRequest(name=rq.event_resource(self._tenant(tenant), event_id))
        return convert.event_from_stored_pb(await self._call(self._events.GetEvent, request))

    async def list_events(
        self,
        *,
        type_pattern: str = "",
        correlation_id: str = "",
        status: EventStatus | str | None = None,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        page_size: int = 0,
        page_token: str = "",
        tenant: str | None = None,
    ) -> Page[Event]:
        """One page of the events matching the filters."""
        request = rq.list_events_request(
            self._tenant(tenant),
            type_pattern=type_pattern,
            correlation_id=correlation_id,
            status=status,
            start_time=start_time,
            end_time=end_time,
            page_size=page_size,
            page_token=page_token,
        )
        response = await self._call(self._events.ListEvents, request)
        return Page([convert.event_from_stored_pb(e) for e in response.events], response.next_page_token)

    def iter_events(
        self,
        *,
        type_pattern: str = "",
        correlation_id: str = "",
        status: EventStatus | str | None = None,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        page_size: int = 0,
        tenant: str | None = None,
    ) -> AsyncIterator[Event]:
        """Every event matching the filters, page after page."""
        return _all_pages(
            lambda token: self.list_events(
                type_pattern=type_pattern,
                correlation_id=correlation_id,
                status=status,
                start_time=start_time,
                end_time=end_time,
                page_size=page_size,
                page_token=token,
                tenant=tenant,
            )
        )

    # --- actions -----------------------------------------------------------------

    async def create_action(
        self, action: rq.ActionInput, *, validate_only: bool = False, tenant: str | None = None
    ) -> Action:
        """Create an action (a domain ``Action`` or a mapping in the YAML form)."""
        t = self._tenant(tenant)
        name, message = rq.action_message(action, t)
        request = actions_pb2.CreateActionRequest(
            parent=rq.parent(t), action_id=name, action=message, validate_only=validate_only
        )
        return convert.action_from_stored_pb(await self._call(self._actions.CreateAction, request))

    async def get_action(self, name: str, version: int = 0, *, tenant: str | None = None) -> Action:
        """The current version of an action, or an exact ``version``."""
        request = actions_pb2.GetActionRequest(name=rq.action_resource(self._tenant(tenant), name), version=version)
        return convert.action_from_stored_pb(await self._call(self._actions.GetAction, request))

    async def list_actions(
        self,
        *,
        enabled: bool | None = None,
        handler_type: str = "",
        tag: str = "",
        search: str = "",
        page_size: int = 0,
        page_token: str = "",
        tenant: str | None = None,
    ) -> Page[Action]:
        """One page of the tenant's actions, by name: only ``enabled`` (or disabled) ones, of
        ``handler_type``, carrying ``tag``, whose name or description contains ``search`` (all must hold)."""
        request = rq.list_actions_request(
            self._tenant(tenant),
            enabled=enabled,
            handler_type=handler_type,
            tag=tag,
            search=search,
            page_size=page_size,
            page_token=page_token,
        )
        response = await self._call(self._actions.ListActions, request)
        return Page([convert.action_from_stored_pb(a) for a in response.actions], response.next_page_token)

    def iter_actions(
        self,
        *,
        enabled: bool | None = None,
        handler_type: str = "",
        tag: str = "",
        search: str = "",
        page_size: int = 0,
        tenant: str | None = None,
    ) -> AsyncIterator[Action]:
        """Every action of the tenant matching the filters, page after page."""
        return _all_pages(
            lambda token: self.list_actions(
                enabled=enabled,
                handler_type=handler_type,
                tag=tag,
                search=search,
                page_size=page_size,
                page_token=token,
                tenant=tenant,
            )
        )

    async def update_action(
        self,
        action: rq.ActionInput,
        update_mask: Sequence[str] | None = None,
        expected_version: int | None = None,
        *,
        validate_only: bool = False,
        tenant: str | None = None,
    ) -> Action:
        """Save a new version. ``update_mask`` limits the fields replaced (default: all);
        ``expected_version`` makes the update fail with ``Aborted`` if someone else won."""
        _, message = rq.action_message(action, self._tenant(tenant))
        request = actions_pb2.UpdateActionRequest(
            action=message,
            update_mask=field_mask_pb2.FieldMask(paths=list(update_mask or [])),
            expected_version=expected_version or 0,
            validate_only=validate_only,
        )
        return convert.action_from_stored_pb(await self._call(self._actions.UpdateAction, request))

    async def delete_action(self, name: str, *, tenant: str | None = None) -> None:
        request = actions_pb2.DeleteActionRequest(name=rq.action_resource(self._tenant(tenant), name))
        await self._call(self._actions.DeleteAction, request)

    async def enable_action(self, name: str, *, tenant: str | None = None) -> Action:
        request = actions_pb2.EnableActionRequest(name=rq.action_resource(self._tenant(tenant), name))
        return convert.action_from_stored_pb(await self._call(self._actions.EnableAction, request))

    async def disable_action(self, name: str, *, tenant: str | None = None) -> Action:
        request = actions_pb2.DisableActionRequest(name=rq.action_resource(self._tenant(tenant), name))
        return convert.action_from_stored_pb(await self._call(self._actions.DisableAction, request))

    async def apply(
        self, source: _apply.ApplySource, *, dry_run: bool = False, tenant: str | None = None
    ) -> list[ApplyResult]:
        """Create or update every declared action by name, like ``kubectl apply``.

        ``source`` is a file path, a parsed ``{actions: [...]}`` mapping or a list of
        actions. Per action the result says ``created``, ``updated`` or ``unchanged``
        (the declared spec equals the stored one). ``enabled: false`` in the file
        leaves the action disabled. With ``dry_run`` the server validates every
        change and nothing is stored.

        All or nothing: the server validates every action first; if it refuses any, nothing
        is saved and the ``InvalidArgument`` names each failing action and field.
        """
        t = self._tenant(tenant)
        steps: list[_apply.Step] = []
        checked: list[ApplyResult] = []
        failures: list[tuple[int, str, NeoActionsError]] = []
        for index, doc in enumerate(_apply.documents(source)):
            try:
                current: Action | None = await self.get_action(doc.name, tenant=t)
            except NotFound:
                current = None
            step = _apply.plan(doc, current, t)
            steps.append(step)
            try:
                checked.append(await self._apply_step(step, t, dry_run=True))
            except (InvalidArgument, FailedPrecondition) as exc:
                failures.append((index, doc.name, exc))
        if failures:
            raise _apply.refused(failures)
        if dry_run:
            return checked
        return [await self._apply_step(step, t, dry_run=False) for step in steps]

    async def _apply_step(self, step: _apply.Step, tenant: str, dry_run: bool) -> ApplyResult:
        doc = step.doc
        if step.current is None:
            action = await self.create_action(doc, validate_only=dry_run, tenant=tenant)
        elif step.update_spec:
            action = await self.update_action(
                doc, expected_version=step.current.version, validate_only=dry_run, tenant=tenant
            )
        else:
            action = step.current
        if step.set_enabled is not None and not dry_run:
            toggle = self.enable_action if step.set_enabled else self.disable_action
            action = await toggle(doc.name, tenant=tenant)
        return ApplyResult(doc.name, step.outcome, action, dry_run=dry_run, changed=step.changed)

    # --- executions --------------------------------------------------------------

    def execute(
        self,
        action: rq.ExecuteTarget,
        input: JSON = None,
        *,
        correlation_id: str = "",
        idempotency_key: str = "",
        timeout_seconds: float = 0.0,
        timeout: float | None = None,
        tenant: str | None = None,
    ) -> AsyncIterator[StreamedUpdate]:
        """Run an action (by name, or an inline handler ``{"type", "config"}``) with ``input``
        and stream its updates until it ends.

        ``timeout_seconds`` is an inline handler's own limit; ``timeout`` is the
        deadline of the whole call (none by default).
        """
        t = self._tenant(tenant)
        request = rq.execute_request(
            t,
            action,
            input,
            correlation_id=correlation_id,
            idempotency_key=idempotency_key,
            timeout_seconds=timeout_seconds,
        )
        return self._stream(lambda: self._executions.Execute(request, timeout=timeout), t)

    async def run(
        self,
        action: rq.ExecuteTarget,
        input: JSON = None,
        *,
        correlation_id: str = "",
        idempotency_key: str = "",
        timeout_seconds: float = 0.0,
        timeout: float | None = None,  # noqa: ASYNC109 - the gRPC deadline of the stream
        tenant: str | None = None,
    ) -> Execution:
        """``execute`` to the end, then return the final :class:`Execution` (attempts included)."""
        execution_id = ""
        updates = self.execute(
            action,
            input,
            correlation_id=correlation_id,
            idempotency_key=idempotency_key,
            timeout_seconds=timeout_seconds,
            timeout=timeout,
            tenant=tenant,
        )
        async for update in updates:
            execution_id = update.execution_id or execution_id
        if not execution_id:
            raise Internal("the Execute stream ended without naming its execution", reason="STREAM_ENDED")
        return await self.get_execution(execution_id, tenant=tenant)

    async def get_execution(self, execution_id: str, *, tenant: str | None = None) -> Execution:
        request = executions_pb2.GetExecutionRequest(name=rq.execution_resource(self._tenant(tenant), execution_id))
        return convert.execution_from_pb(await self._call(self._executions.GetExecution, request))

    async def cancel_execution(self, execution_id: str, reason: str = "", *, tenant: str | None = None) -> Execution:
        """Cancel an unfinished execution (FailedPrecondition EXECUTION_FINISHED if it already ended)."""
        request = _dl.cancel_request(self._tenant(tenant), execution_id, reason)
        return convert.execution_from_pb(await self._call(self._executions.CancelExecution, request))

    async def pause_execution(self, execution_id: str, *, tenant: str | None = None) -> Execution:
        """Pause a workflow run: its steps in flight finish, no new step starts."""
        request = executions_pb2.PauseExecutionRequest(name=rq.execution_resource(self._tenant(tenant), execution_id))
        return convert.execution_from_pb(await self._call(self._executions.PauseExecution, request))

    async def resume_execution(self, execution_id: str, *, tenant: str | None = None) -> Execution:
        """Resume a paused workflow run."""
        request = executions_pb2.ResumeExecutionRequest(name=rq.execution_resource(self._tenant(tenant), execution_id))
        return convert.execution_from_pb(await self._call(self._executions.ResumeExecution, request))

    async def workflow_steps(self, execution_id: str, *, tenant: str | None = None) -> list[dict[str, Any]]:
        """A workflow run's steps as stored (``[]`` for other executions): each a dict with
        ``step``, ``index`` (-1, or a for_each item's), ``status``, ``child_execution_id``,
        ``attempts``, ``output``, ``error``, ``start_time``, ``end_time``, ``wake_time``."""
        request = executions_pb2.GetExecutionRequest(name=rq.execution_resource(self._tenant(tenant), execution_id))
        msg = await self._call(self._executions.GetExecution, request)
        return [_step_dict(s) for s in msg.steps]

    async def retry_execution(self, execution_id: str, *, tenant: str | None = None) -> Execution:
        """A new attempt series of a failed, timed-out, cancelled or dead-lettered execution."""
        request = _dl.retry_request(self._tenant(tenant), execution_id)
        return convert.execution_from_pb(await self._call(self._executions.RetryExecution, request))

    async def list_dead_letters(
        self,
        *,
        action: str = "",
        error_type: str = "",
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        page_size: int = 0,
        page_token: str = "",
        tenant: str | None = None,
    ) -> Page[Execution]:
        """One page of the dead-letter queue, newest first."""
        request = _dl.list_request(
            self._tenant(tenant), action, error_type, start_time, end_time, page_size, page_token
        )
        return _dl.page(await self._call(self._executions.ListDeadLetters, request))

    async def requeue_dead_letters(
        self,
        *,
        action: str = "",
        error_type: str = "",
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        tenant: str | None = None,
    ) -> int:
        """Requeue every dead letter matching the filter; returns how many."""
        request = _dl.requeue_request(self._tenant(tenant), action, error_type, start_time, end_time)
        response = await self._call(self._executions.RequeueDeadLetters, request)
        return int(response.requeued_count)

    async def list_executions(
        self,
        *,
        action: str = "",
        status: ExecutionStatus | str | None = None,
        event_id: str = "",
        correlation_id: str = "",
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        page_size: int = 0,
        page_token: str = "",
        tenant: str | None = None,
    ) -> Page[Execution]:
        """One page of executions matching the filters."""
        request = rq.list_executions_request(
            self._tenant(tenant),
            action=action,
            status=status,
            event_id=event_id,
            correlation_id=correlation_id,
            start_time=start_time,
            end_time=end_time,
            page_size=page_size,
            page_token=page_token,
        )
        response = await self._call(self._executions.ListExecutions, request)
        return Page([convert.execution_from_pb(e) for e in response.executions], response.next_page_token)

    def iter_executions(
        self,
        *,
        action: str = "",
        status: ExecutionStatus | str | None = None,
        event_id: str = "",
        correlation_id: str = "",
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        page_size: int = 0,
        tenant: str | None = None,
    ) -> AsyncIterator[Execution]:
        """Every execution matching the filters, page after page."""
        return _all_pages(
            lambda token: self.list_executions(
                action=action,
                status=status,
                event_id=event_id,
                correlation_id=correlation_id,
                start_time=start_time,
                end_time=end_time,
                page_size=page_size,
                page_token=token,
                tenant=tenant,
            )
        )

    def watch_executions(
        self,
        *,
        action: str = "",
        event_id: str = "",
        correlation_id: str = "",
        execution_id: str = "",
        resume_token: str = "",
        timeout: float | None = None,
        tenant: str | None = None,
    ) -> AsyncIterator[StreamedUpdate]:
        """Every update matching the filters as it happens (the stream does not end by itself).

        Each update carries ``resume_token``: pass it back to continue after it.
        """
        t = self._tenant(tenant)
        request = rq.watch_request(
            t,
            action=action,
            event_id=event_id,
            correlation_id=correlation_id,
            execution_id=execution_id,
            resume_token=resume_token,
        )
        return self._stream(lambda: self._executions.WatchExecutions(request, timeout=timeout), t)

    async def test_event(
        self,
        type: str,
        data: Any = None,
        *,
        metadata: Any = None,
        source: str = "",
        action: str | None = None,
        execute: bool = False,
        tenant: str | None = None,
    ) -> list[ActionTest]:
        """Explain which actions an event would trigger and why; ``execute`` runs the matched ones."""
        request = rq.test_action_request(self._tenant(tenant), type, data, metadata, source, action, execute)
        return rq.action_tests(await self._call(self._actions.TestAction, request))

    # --- the event store: CloudEvents, streaming publish, replay, backtest, retention ---

    async def publish_cloudevent(self, cloudevent: Mapping[str, Any], *, tenant: str | None = None) -> PublishResult:
        """Publish a CloudEvents 1.0 event (structured JSON mode, as a dict); a redelivery (same
        ``source`` and ``id``) returns the original (``duplicate``)."""
        [result] = await self.publish_cloudevents([cloudevent], tenant=tenant)
        return result

    async def publish_cloudevents(
        self, cloudevents: Iterable[Mapping[str, Any]], *, tenant: str | None = None
    ) -> list[PublishResult]:
        """Publish a batch of CloudEvents in one call (one transaction on the server)."""
        messages = [_ce.to_event_pb(doc, f"cloudevents[{i}]") for i, doc in enumerate(cloudevents)]
        request = events_pb2.PublishEventsRequest(parent=rq.parent(self._tenant(tenant)), events=messages)
        response = await self._call(self._events.PublishEvents, request)
        return [rq.publish_result(r) for r in response.results]

    async def get_cloudevent(self, event_id: str, *, tenant: str | None = None) -> dict[str, Any]:
        """A stored event as a CloudEvents 1.0 document (the one it was published as, if it was one)."""
        return _ce.from_event(await self.get_event(event_id, tenant=tenant))

    def event_stream(self, *, max_in_flight: int = DEFAULT_MAX_IN_FLIGHT, tenant: str | None = None) -> EventStream:
        """A ``StreamEvents`` stream, used as an async context manager whose ``send`` returns each
        event's id (see :class:`~neoactions.client._eventstream.EventStream`). Asyncio only: the
        blocking client raises ``FailedPrecondition`` (use ``publish_many``)."""
        return EventStream(self._events.StreamEvents, rq.parent(self._tenant(tenant)), None, max_in_flight)

    async def replay_events(
        self,
        *,
        type_pattern: str = "",
        since: datetime | None = None,
        until: datetime | None = None,
        correlation_id: str = "",
        source: str = "",
        status: EventStatus | str | None = None,
        event_ids: Sequence[str] = (),
        actions: Sequence[str] = (),
        dry_run: bool = False,
        sample_size: int = 5,
        events_per_second: float = 0.0,
        tenant: str | None = None,
    ) -> _rp.DryRun | _rp.ReplayJob:
        """Replay stored events to their actions (or ``actions`` only). A dry run returns, per
        action, how many events it would get; otherwise a background replay starts (watch it
        with :meth:`watch_replay`), creating one execution per (event, action) not replayed before."""
        request = replay_pb2.ReplayEventsRequest(
            parent=rq.parent(self._tenant(tenant)),
            filter=_rp.event_filter(type_pattern, since, until, correlation_id, source, status, event_ids),
            actions=list(actions),
            dry_run=dry_run,
            sample_size=sample_size,
            events_per_second=events_per_second,
        )
        return _rp.replay_result(await self._call(self._replay.ReplayEvents, request))

    async def get_replay(self, replay_id: str, *, tenant: str | None = None) -> _rp.ReplayJob:
        request = replay_pb2.GetReplayRequest(name=_rp.replay_resource(self._tenant(tenant), replay_id))
        return _rp.job_from_pb(await self._call(self._replay.GetReplay, request))

    async def cancel_replay(self, replay_id: str, *, tenant: str | None = None) -> _rp.ReplayJob:
        request = replay_pb2.CancelReplayRequest(name=_rp.replay_resource(self._tenant(tenant), replay_id))
        return _rp.job_from_pb(await self._call(self._replay.CancelReplay, request))

    def watch_replay(self, replay_id: str, *, tenant: str | None = None) -> AsyncIterator[_rp.ReplayJob]:
        """The replay now, then at each change of its progress, until it ends."""
        request = replay_pb2.GetReplayRequest(name=_rp.replay_resource(self._tenant(tenant), replay_id))
        return self._replays(lambda: self._replay.WatchReplay(request))

    async def _replays(self, start: Callable[[], Any]) -> AsyncIterator[_rp.ReplayJob]:
        call = start()
        try:
            with translated():
                async for msg in call:
                    yield _rp.job_from_pb(msg)
        finally:
            call.cancel()

    async def backtest(
        self,
        actions: Iterable[Any] = (),
        *,
        action_names: Sequence[str] = (),
        type_pattern: str = "",
        since: datetime | None = None,
        until: datetime | None = None,
        sample_size: int = 5,
        near_miss_size: int = 5,
        max_events: int = 0,
        tenant: str | None = None,
    ) -> _rp.Backtest:
        """Evaluate action definitions not yet saved (``ActionDocument``s of a declarative file,
        see :func:`neoactions.client.declarative.load_file`) and stored actions (``action_names``)
        against the stored events: per action, how many would have matched, a sample and near misses."""
        request = replay_pb2.BacktestActionRequest(
            parent=rq.parent(self._tenant(tenant)),
            actions=_rp.definitions(actions),
            action_names=list(action_names),
            filter=_rp.event_filter(type_pattern, since, until),
            sample_size=sample_size,
            near_miss_size=near_miss_size,
            max_events=max_events,
        )
        return _rp.backtest_result(await self._call(self._replay.BacktestAction, request))

    async def get_retention(self, *, tenant: str | None = None) -> _rp.Retention:
        request = replay_pb2.GetRetentionRequest(name=_rp.retention_resource(self._tenant(tenant)))
        return _rp.retention_from_pb(await self._call(self._replay.GetRetention, request))

    async def set_retention(
        self, *, events: timedelta | None = None, executions: timedelta | None = None, tenant: str | None = None
    ) -> _rp.Retention:
        """Keep events and finished executions this long (``None``: forever); admins only."""
        retention = replay_pb2.Retention(
            name=_rp.retention_resource(self._tenant(tenant)),
            events=_rp.duration(events),
            executions=_rp.duration(executions),
        )
        request = replay_pb2.SetRetentionRequest(retention=retention)
        return _rp.retention_from_pb(await self._call(self._replay.SetRetention, request))

    # --- tenants -----------------------------------------------------------------

    async def create_tenant(self, slug: str, display_name: str = "") -> Tenant:
        """Create a tenant (``[a-z][a-z0-9_]{0,40}``); admin only."""
        request = tenants_pb2.CreateTenantRequest(tenant_id=slug, tenant=tenants_pb2.Tenant(display_name=display_name))
        return convert.tenant_from_pb(await self._call(self._tenants.CreateTenant, request))

    async def list_tenants(self, *, page_size: int = 0, page_token: str = "") -> Page[Tenant]:
        request = tenants_pb2.ListTenantsRequest(page_size=page_size, page_token=page_token)
        response = await self._call(self._tenants.ListTenants, request)
        return Page([convert.tenant_from_pb(t) for t in response.tenants], response.next_page_token)

    def iter_tenants(self, *, page_size: int = 0) -> AsyncIterator[Tenant]:
        """Every tenant, page after page."""
        return _all_pages(lambda token: self.list_tenants(page_size=page_size, page_token=token))

    async def delete_tenant(self, slug: str) -> None:
        """Remove a tenant with everything it holds and its API keys; the ``admin`` tenant's admin only."""
        await self._call(self._tenants.DeleteTenant, tenants_pb2.DeleteTenantRequest(name=f"tenants/{slug}"))

    # --- API keys ------------------------------------------------------------------

    async def create_api_key(
        self,
        name: str,
        role: str,
        *,
        tenant: str | None = None,
        expires_in: timedelta | None = None,
        publish_rate: float = 0.0,
    ) -> tuple[ApiKey, str]:
        """A new API key and its token (shown only here: keep it). Roles: admin, writer,
        reader, publisher."""
        request = keys_pb2.CreateApiKeyRequest(
            parent=f"tenants/{self._tenant(tenant)}", display_name=name, role=role, publish_rate=publish_rate
        )
        if expires_in is not None:
            request.ttl.FromTimedelta(expires_in)
        response = await self._call(self._keys.CreateApiKey, request)
        return api_key_from_pb(response.api_key), response.key

    async def list_api_keys(
        self, *, tenant: str | None = None, page_size: int = 0, page_token: str = ""
    ) -> Page[ApiKey]:
        request = keys_pb2.ListApiKeysRequest(
            parent=f"tenants/{self._tenant(tenant)}", page_size=page_size, page_token=page_token
        )
        response = await self._call(self._keys.ListApiKeys, request)
        return Page([api_key_from_pb(k) for k in response.api_keys], response.next_page_token)

    async def revoke_api_key(self, key_id: str, *, tenant: str | None = None) -> ApiKey:
        """Revoke a key: every server process refuses it within a second."""
        request = keys_pb2.RevokeApiKeyRequest(name=f"tenants/{self._tenant(tenant)}/apiKeys/{key_id}")
        return api_key_from_pb(await self._call(self._keys.RevokeApiKey, request))

    # --- stats and health ---------------------------------------------------------

    async def get_action_stats(
        self,
        action: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        tenant: str | None = None,
    ) -> ActionStats:
        """Count, success rate, duration percentiles, throughput and last error of the
        action's executions that ended at or after ``since`` (default: an hour before
        ``until``) and before ``until`` (default: now)."""
        request = stats_pb2.GetActionStatsRequest(
            name=rq.action_resource(self._tenant(tenant), action),
            start_time=convert.ts(since),
            end_time=convert.ts(until),
        )
        return stats_from_pb(await self._call(self._stats.GetActionStats, request))

    async def get_overview(
        self, *, since: datetime | None = None, until: datetime | None = None, tenant: str | None = None
    ) -> Overview:
        """The tenant's total and each busy action's stats over the window, and their health."""
        request = stats_pb2.GetOverviewRequest(
            parent=rq.parent(self._tenant(tenant)), start_time=convert.ts(since), end_time=convert.ts(until)
        )
        return overview_from_pb(await self._call(self._stats.GetOverview, request))

    async def get_action_health(self, action: str, *, tenant: str | None = None) -> ActionHealth:
        """Healthy, degraded or critical, and why, over the server's health window."""
        request = stats_pb2.GetActionHealthRequest(name=rq.action_resource(self._tenant(tenant), action))
        return health_from_pb(await self._call(self._stats.GetActionHealth, request))

    # --- audit log ---------------------------------------------------------------

    async def list_audit_entries(
        self,
        *,
        kind: str = "",
        principal: str = "",
        target: str = "",
        since: datetime | None = None,
        until: datetime | None = None,
        page_size: int = 0,
        page_token: str = "",
        tenant: str | None = None,
    ) -> Page[AuditEntry]:
        """One page of the tenant's audit log, newest first (admin role): changes of ``kind`` (a
        kind such as ``action.create``, or a prefix of whole words such as ``action``), made by
        the key id ``principal``, to ``target``, at or after ``since`` and before ``until``."""
        request = audit_pb2.ListAuditEntriesRequest(
            parent=rq.parent(self._tenant(tenant)),
            kind=kind,
            principal=principal,
            target=target,
            start_time=convert.ts(since),
            end_time=convert.ts(until),
            page_size=page_size,
            page_token=page_token,
        )
        response = await self._call(self._audit.ListAuditEntries, request)
        return Page([entry_from_pb(e) for e in response.entries], response.next_page_token)

    def iter_audit_entries(
        self,
        *,
        kind: str = "",
        principal: str = "",
        target: str = "",
        since: datetime | None = None,
        until: datetime | None = None,
        page_size: int = 0,
        tenant: str | None = None,
    ) -> AsyncIterator[AuditEntry]:
        """Every audit entry matching the filters, newest first, page after page."""
        return _all_pages(
            lambda token: self.list_audit_entries(
                kind=kind,
                principal=principal,
                target=target,
                since=since,
                until=until,
                page_size=page_size,
                page_token=token,
                tenant=tenant,
            )
        )

    # --- secrets -------------------------------------------------------------------

    async def set_secret(self, name: str, value: str, *, tenant: str | None = None) -> SecretInfo:
        """Create a secret or give it a new value (admin role). Actions name it in handler
        configs as ``{{ secrets.NAME }}``; no call ever returns the value."""
        request = secrets_pb2.SetSecretRequest(parent=rq.parent(self._tenant(tenant)), secret_id=name, value=value)
        return secret_from_pb(await self._call(self._secrets.SetSecret, request))

    async def list_secrets(
        self, *, tenant: str | None = None, page_size: int = 0, page_token: str = ""
    ) -> Page[SecretInfo]:
        """Names and metadata (created, updated, version), ordered by name; never values."""
        request = secrets_pb2.ListSecretsRequest(
            parent=rq.parent(self._tenant(tenant)), page_size=page_size, page_token=page_token
        )
        response = await self._call(self._secrets.ListSecrets, request)
        return Page([secret_from_pb(s) for s in response.secrets], response.next_page_token)

    def iter_secrets(self, *, tenant: str | None = None, page_size: int = 0) -> AsyncIterator[SecretInfo]:
        """Every secret of the tenant, page after page."""
        return _all_pages(lambda token: self.list_secrets(tenant=tenant, page_size=page_size, page_token=token))

    async def delete_secret(self, name: str, *, tenant: str | None = None) -> None:
        request = secrets_pb2.DeleteSecretRequest(name=secret_resource(self._tenant(tenant), name))
        await self._call(self._secrets.DeleteSecret, request)

    async def rotate_master_key(self, new_key: bytes = b"") -> MasterKeyRotation:
        """Re-encrypt every tenant's secrets under the server's current master key, or under
        ``new_key`` (32 random bytes), which becomes current; the admin tenant's admin only."""
        request = secrets_pb2.RotateMasterKeyRequest(new_master_key=new_key)
        return rotation_from_pb(await self._call(self._secrets.RotateMasterKey, request))

    # --- plugins -----------------------------------------------------------------

    async def search_plugins(self, query: str = "", *, registry: str = "") -> list[dict[str, Any]]:
        """The plugins the server's registries offer (name, versions, latest, installed_version...);
        registries that cannot be read are left out (:meth:`search_registries` names them)."""
        plugins: list[dict[str, Any]] = (await self.search_registries(query, registry=registry))["plugins"]
        return plugins

    async def search_registries(self, query: str = "", *, registry: str = "") -> dict[str, Any]:
        """``{"plugins": [...], "unreachable_registries": [{"registry", "message"}]}``: what the
        reachable registries offer, and the ones that could not be read."""
        request = plugins_pb2.SearchRegistryRequest(query=query, registry=registry)
        response = await self._call(self._plugins.SearchRegistry, request)
        return {
            "plugins": [_plugin_wire.entry_from_pb(p) for p in response.plugins],
            "unreachable_registries": [
                {"registry": u.registry, "message": u.message} for u in response.unreachable_registries
            ],
        }

    async def list_plugins(self, *, installed_only: bool = False) -> list[dict[str, Any]]:
        """Installed plugins, then the built-in handler types (``builtin: true``)."""
        request = plugins_pb2.ListPluginsRequest(installed_only=installed_only)
        response = await self._call(self._plugins.ListPlugins, request)
        return [_plugin_wire.plugin_from_pb(p) for p in response.plugins]

    async def get_plugin(self, name: str) -> dict[str, Any]:
        """One plugin: its versions, handler types (config schema, examples), capabilities granted."""
        request = plugins_pb2.GetPluginRequest(name=name)
        return _plugin_wire.plugin_from_pb(await self._call(self._plugins.GetPlugin, request))

    async def install_plugin(
        self, name: str, version: str = "", *, registry: str = "", grants: Sequence[str] = ()
    ) -> dict[str, Any]:
        """Install the newest version ``version`` (a version or range) allows; ``grants`` give the
        capabilities it requests (``net:HOST``, ``secret:NAME``). The admin tenant's admin only."""
        request = plugins_pb2.InstallPluginRequest(name=name, version=version, registry=registry, grants=list(grants))
        return _plugin_wire.plugin_from_pb(await self._call(self._plugins.InstallPlugin, request))

    async def update_plugin(self, name: str, version: str = "", *, grants: Sequence[str] = ()) -> dict[str, Any]:
        """Install a newer version beside the installed ones; in-flight executions keep theirs."""
        request = plugins_pb2.UpdatePluginRequest(name=name, version=version, grants=list(grants))
        return _plugin_wire.plugin_from_pb(await self._call(self._plugins.UpdatePlugin, request))

    async def uninstall_plugin(self, name: str, *, force: bool = False) -> dict[str, Any]:
        """Remove every version; refused while enabled actions use it unless ``force`` disables them."""
        request = plugins_pb2.UninstallPluginRequest(name=name, force=force)
        return _plugin_wire.removal_from_pb(await self._call(self._plugins.UninstallPlugin, request))


__all__ = ["AsyncClient"]


def _step_dict(s: executions_pb2.WorkflowStepState) -> dict[str, Any]:
    def when(field: str) -> datetime | None:
        return convert.dt(getattr(s, field)) if s.HasField(field) else None

    return {
        "step": s.step,
        "index": s.index,
        "status": s.status,
        "child_execution_id": s.child_execution.rsplit("/", 1)[-1] if s.child_execution else "",
        "attempts": s.attempts,
        "output": convert.parse_json(s.output_json, "output_json"),
        "error": convert.error_from_pb(s) if s.HasField("error") else None,
        "start_time": when("start_time"),
        "end_time": when("end_time"),
        "wake_time": when("wake_time"),
    }
