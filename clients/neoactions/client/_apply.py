"""``apply``: decide, per action, whether to create, update or leave it alone (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

from neoactions.client._requests import changed_fields, desired_action
from neoactions.client.declarative import ActionDocument, load_file, parse_action, parse_documents
from neoactions.client.results import ApplyOutcome
from neoactions.domain.errors import FieldViolation, InvalidArgument, NeoActionsError
from neoactions.domain.model import Action

#: what ``apply`` takes: a file path, a parsed ``{actions: [...]}`` mapping, or actions
ApplySource: TypeAlias = str | Path | Mapping[str, Any] | Iterable[ActionDocument | Mapping[str, Any]]


@dataclass(slots=True)
class Step:
    """What to do with one declared action."""

    doc: ActionDocument
    current: Action | None
    outcome: ApplyOutcome
    #: fields that differ from the stored action (spec fields, and ``enabled``)
    changed: list[str] = field(default_factory=list)
    #: enable (True) or disable (False) afterwards; None = leave as is
    set_enabled: bool | None = None

    @property
    def update_spec(self) -> bool:
        """True when the stored spec must change (a new version)."""
        return self.current is not None and any(c != "enabled" for c in self.changed)


def documents(source: ApplySource) -> list[ActionDocument]:
    """Every action of ``source``, parsed and checked."""
    if isinstance(source, str | Path):
        return load_file(source)
    if isinstance(source, Mapping):
        return parse_documents([source])
    return [d if isinstance(d, ActionDocument) else parse_action(d, f"actions[{i}]") for i, d in enumerate(source)]


def plan(doc: ActionDocument, current: Action | None, tenant: str) -> Step:
    """Compare a declared action with the stored one (``None``: not stored yet)."""
    if current is None:
        return Step(doc, None, ApplyOutcome.CREATED, set_enabled=False if doc.enabled is False else None)
    changed = changed_fields(desired_action(doc, tenant), current)
    toggle = doc.enabled if doc.enabled is not None and doc.enabled != current.enabled else None
    if toggle is not None:
        changed.append("enabled")
    outcome = ApplyOutcome.UPDATED if changed else ApplyOutcome.UNCHANGED
    return Step(doc, current, outcome, changed, toggle)


def refused(failures: list[tuple[int, str, NeoActionsError]]) -> InvalidArgument:
    """One error for the declared actions the server refused (``(index, name, error)``): it names
    each action and field; nothing was saved."""
    violations: list[FieldViolation] = []
    said: list[str] = []
    for index, name, exc in failures:
        where = f"actions[{index}]"
        found = [FieldViolation(f"{where}.{v.field}", v.description) for v in exc.violations]
        found = found or [FieldViolation(where, exc.message)]
        violations.extend(found)
        said.append(f"action {name!r}: {found[0].field}: {found[0].description}")
    more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
    reason = failures[0][2].reason if len(failures) == 1 else "INVALID_ACTIONS_FILE"
    return InvalidArgument(f"nothing applied: {said[0]}{more}", reason=reason, violations=violations)


__all__ = ["ApplySource", "Step", "documents", "plan", "refused"]
