"""The matcher: every tenant's actions in memory, indexed, plus the explain view."""

from __future__ import annotations

from collections.abc import Iterable
from time import perf_counter
from typing import Any

from neoactions.domain import model
from neoactions.domain.errors import InvalidArgument, NotFound
from neoactions.domain.explain import ActionExplanation

from .compiler import CompiledTrigger, compile_trigger
from .index import Entry, TenantIndex
from .limits import DEFAULT_CEL_LIMITS, CelLimits


class Matcher:
    """Per-tenant, in-memory action index.

    Feed it every change to a tenant's actions (:meth:`put` on create, update, enable
    and disable, :meth:`remove` on delete, or :meth:`load` for a whole tenant) and ask
    :meth:`match` for the actions an event triggers. It keeps a reference to each
    action given: call :meth:`put` again after changing one. Not thread-safe; it is
    meant to live on one event loop.

    ``cel`` conditions are held to ``cel_limits``; the time spent matching the events of
    a tenant that has any is accounted to it (:meth:`cel_seconds`).
    """

    def __init__(self, cel_limits: CelLimits = DEFAULT_CEL_LIMITS) -> None:
        self._tenants: dict[str, TenantIndex] = {}
        self.cel_limits = cel_limits
        #: per tenant, its actions with a cel condition (only tenants with one)
        self._cel_actions: dict[str, set[str]] = {}
        self._cel_seconds: dict[str, float] = {}

    def _tenant(self, tenant: str) -> TenantIndex:
        index = self._tenants.get(tenant)
        if index is None:
            index = self._tenants[tenant] = TenantIndex()
        return index

    def compile(self, trigger: model.Trigger, path: str = "trigger") -> CompiledTrigger:
        """:func:`compile_trigger` with this matcher's limits."""
        return compile_trigger(trigger, path, self.cel_limits)

    def put(self, action: model.Action, compiled: CompiledTrigger | None = None) -> None:
        """Insert or replace ``(action.tenant, action.name)``; a disabled action never matches.

        Compiles the trigger unless ``compiled`` (from :meth:`compile`) is given;
        an invalid trigger raises :class:`InvalidArgument` and changes nothing.
        """
        if compiled is None:
            compiled = self.compile(action.trigger)
        self._tenant(action.tenant).put(Entry(action, compiled))
        self._note_cel(action.tenant, action.name, compiled.has_cel)

    def _note_cel(self, tenant: str, name: str, has_cel: bool) -> None:
        if has_cel:
            self._cel_actions.setdefault(tenant, set()).add(name)
            return
        names = self._cel_actions.get(tenant)
        if names is not None:
            names.discard(name)
            if not names:
                del self._cel_actions[tenant]

    def remove(self, tenant: str, name: str) -> None:
        """Forget an action (no error if it is unknown)."""
        index = self._tenants.get(tenant)
        if index is not None:
            index.remove(name)
        self._note_cel(tenant, name, False)

    def load(self, tenant: str, actions: Iterable[model.Action]) -> dict[str, InvalidArgument]:
        """Replace a tenant's whole set of actions.

        Unlike :meth:`put`, an action whose stored trigger no longer compiles does not
        stop the load: it is kept, never matches, is reported by :meth:`explain`, and
        is returned here by name so the caller can log it.
        """
        index = TenantIndex()
        failures: dict[str, InvalidArgument] = {}
        with_cel: set[str] = set()
        for action in actions:
            if action.tenant != tenant:
                raise ValueError(f"action {action.name!r} belongs to {action.tenant!r}, not {tenant!r}")
            try:
                entry = Entry(action, self.compile(action.trigger))
            except InvalidArgument as exc:
                failures[action.name] = exc
                entry = Entry(action, None, exc.message)
            if entry.compiled is not None and entry.compiled.has_cel:
                with_cel.add(action.name)
            index.put(entry)
        self._tenants[tenant] = index
        if with_cel:
            self._cel_actions[tenant] = with_cel
        else:
            self._cel_actions.pop(tenant, None)
        return failures

    def drop_tenant(self, tenant: str) -> None:
        self._tenants.pop(tenant, None)
        self._cel_actions.pop(tenant, None)
        self._cel_seconds.pop(tenant, None)

    def cel_seconds(self, tenant: str | None = None) -> float:
        """Seconds spent matching events of ``tenant`` (of all tenants without one) while it
        had ``cel`` conditions: their evaluation, accounted to the tenant that wrote them."""
        if tenant is None:
            return sum(self._cel_seconds.values())
        return self._cel_seconds.get(tenant, 0.0)

    def actions(self, tenant: str) -> list[model.Action]:
        """Every action known for ``tenant`` (enabled or not), in priority order."""
        index = self._tenants.get(tenant)
        if index is None:
            return []
        return [e.action for e in sorted(index.entries.values(), key=lambda e: e.sort_key)]

    def match(self, tenant: str, event: model.Event) -> list[model.Action]:
        """The enabled actions ``event`` triggers, critical first, ties by created_at then name."""
        return self.match_envelope(tenant, event.envelope())

    def match_envelope(self, tenant: str, envelope: dict[str, Any]) -> list[model.Action]:
        """:meth:`match` for an envelope already built with ``Event.envelope()``."""
        index = self._tenants.get(tenant)
        if index is None:
            return []
        if tenant not in self._cel_actions:
            return index.match(envelope)
        started = perf_counter()
        try:
            return index.match(envelope)
        finally:
            self._cel_seconds[tenant] = self._cel_seconds.get(tenant, 0.0) + perf_counter() - started

    def explain(self, tenant: str, event: model.Event, action_name: str | None = None) -> list[ActionExplanation]:
        """For each action (or only ``action_name``), whether it matches and why, in priority order.

        Raises :class:`NotFound` (``ACTION_NOT_FOUND``) for an unknown ``action_name``.
        """
        index = self._tenants.get(tenant)
        entries = list(index.entries.values()) if index is not None else []
        if action_name is not None:
            entries = [e for e in entries if e.action.name == action_name]
            if not entries:
                raise NotFound(f"action {action_name!r} not found", reason="ACTION_NOT_FOUND")
        entries.sort(key=lambda e: e.sort_key)
        envelope = event.envelope()
        return [explain_entry(e, envelope) for e in entries]


def explain_entry(entry: Entry, envelope: dict[str, Any]) -> ActionExplanation:
    """One action against one envelope, every pattern and condition evaluated."""
    action = entry.action
    out = ActionExplanation(
        action=action.name,
        matched=False,
        reason="",
        enabled=action.enabled,
        priority=action.priority.label,
        event_type=envelope["type"],
    )
    compiled = entry.compiled
    if compiled is None:
        out.reason, out.error = "invalid_trigger", entry.error
        return out
    out.patterns = compiled.explain_patterns(envelope["type"])
    out.conditions = compiled.explain_conditions(envelope)
    type_ok = any(p.matched for p in out.patterns)
    conditions_ok = all(c.matched for c in out.conditions)
    if not entry.active:
        out.reason = "disabled"
    elif not type_ok:
        out.reason = "event_type_not_matched"
    elif not conditions_ok:
        out.reason = "conditions_not_met"
    else:
        out.matched, out.reason = True, "matched"
    return out
