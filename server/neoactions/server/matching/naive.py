"""The reference matcher: evaluate every action of the tenant, no index.

It defines what :class:`~.matcher.Matcher` must return (the property tests compare
the two) and is the baseline of the matching benchmark.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from neoactions.domain import model

from .compiler import CompiledTrigger, compile_trigger


class NaiveMatcher:
    """Same ``put`` / ``remove`` / ``match`` as :class:`~.matcher.Matcher`, by a full scan."""

    def __init__(self) -> None:
        self._tenants: dict[str, dict[str, tuple[model.Action, CompiledTrigger, bool]]] = {}

    def put(self, action: model.Action, compiled: CompiledTrigger | None = None) -> None:
        compiled = compiled or compile_trigger(action.trigger)
        entry = (action, compiled, action.enabled)
        self._tenants.setdefault(action.tenant, {})[action.name] = entry

    def remove(self, tenant: str, name: str) -> None:
        self._tenants.get(tenant, {}).pop(name, None)

    def match(self, tenant: str, event: model.Event) -> list[model.Action]:
        return self.match_envelope(tenant, event.envelope())

    def match_envelope(self, tenant: str, envelope: dict[str, Any]) -> list[model.Action]:
        hits = [
            action
            for action, compiled, enabled in self._tenants.get(tenant, {}).values()
            if enabled and compiled.matches(envelope)
        ]
        # Spelled out here rather than shared with the index, so the two can be compared.
        hits.sort(key=lambda a: (-int(a.priority), _utc(a.created_at), a.name))
        return hits


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
