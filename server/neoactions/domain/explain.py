"""Why an action matched an event or not: plain dataclasses, JSON-ready via ``to_dict()``."""

from __future__ import annotations

import base64
import dataclasses
import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final


class _Missing:
    """The value of a path that does not resolve (distinct from JSON ``null``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __reduce__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


def jsonable(value: Any) -> Any:
    """``value`` made JSON-serialisable (CEL results may be bytes, timestamps, durations...)."""
    if value is MISSING:
        return None
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return f"{value.total_seconds()}s"
    return repr(value)


@dataclass(slots=True)
class ConditionExplanation:
    """The outcome of one condition (or group) and the value it saw.

    ``location`` names the condition inside the action (``trigger.conditions[2]``),
    ``kind`` is ``field``, ``all``, ``any``, ``not``, ``cel``, ``context_filter``,
    ``event_pattern`` or ``event_pattern_or``. ``present`` is False when the field
    did not exist in the event (``actual`` is then None).
    """

    location: str
    kind: str
    matched: bool
    field: str = ""
    operator: str = ""
    expected: Any = None
    actual: Any = None
    present: bool = False
    error: str = ""
    children: list[ConditionExplanation] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"location": self.location, "kind": self.kind, "matched": self.matched}
        if self.field:
            out["field"] = self.field
        if self.operator:
            out["operator"] = self.operator
        if self.kind not in ("all", "any", "not", "event_pattern_or"):
            out["expected"] = jsonable(self.expected)
            out["actual"] = jsonable(self.actual)
            out["present"] = self.present
        if self.error:
            out["error"] = self.error
        if self.children:
            out["children"] = [c.to_dict() for c in self.children]
        return out


@dataclass(slots=True)
class PatternExplanation:
    """One event-type pattern of the action and whether the event's type matched it."""

    pattern: str
    matched: bool

    def to_dict(self) -> dict[str, Any]:
        return {"pattern": self.pattern, "matched": self.matched}


@dataclass(slots=True)
class ActionExplanation:
    """One action against one event: matched or not, and every pattern and condition outcome.

    ``reason`` is ``matched``, ``disabled``, ``invalid_trigger``,
    ``event_type_not_matched`` or ``conditions_not_met``; ``error`` holds the compile
    error of an action whose stored trigger is no longer valid.
    """

    action: str
    matched: bool
    reason: str
    enabled: bool
    priority: str
    event_type: str
    patterns: list[PatternExplanation] = dataclasses.field(default_factory=list)
    conditions: list[ConditionExplanation] = dataclasses.field(default_factory=list)
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "action": self.action,
            "matched": self.matched,
            "reason": self.reason,
            "enabled": self.enabled,
            "priority": self.priority,
            "event_type": self.event_type,
            "patterns": [p.to_dict() for p in self.patterns],
            "conditions": [c.to_dict() for c in self.conditions],
        }
        if self.error:
            out["error"] = self.error
        return out
