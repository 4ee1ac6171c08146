"""The Runner contract and the registry of handler types.

Every runner — in-process python, wasm, container, sidecar, http, ... — implements
one contract, the same as the sidecar ``Handler.Execute`` RPC: it gets the rendered
config, the input data and an :class:`ExecutionContext`, and yields
:class:`RunnerUpdate` values ending in exactly one :class:`Result` or
:class:`Failure`. A handler's own failure is a ``Failure`` (a failed attempt),
never an exception out of ``execute``.

Handler types are looked up in a :class:`HandlerRegistry`. Built-in runners and
installed plugins add to it the same way: a ``register(registry)`` function,
found through the ``neoactions.handler_types`` entry-point group.
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeAlias

import jsonschema

from neoactions.server.errors import FieldViolation, InvalidArgument
from neoactions.server.model import JSON, ExecutionError, JSONObject, utcnow

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "neoactions.handler_types"


@dataclass(frozen=True, slots=True)
class ExecutionContext:
    """What a runner knows about the run it is doing."""

    tenant: str
    execution_id: str
    action_name: str
    action_version: int
    attempt: int
    #: stable across every attempt of the execution: use it to make effects exactly-once
    idempotency_key: str
    #: wall-clock UTC time by which the attempt must end
    deadline: datetime
    trace_context: Mapping[str, str] = field(default_factory=dict)
    correlation_id: str = ""
    event_id: str = ""
    event_type: str = ""

    def remaining_seconds(self) -> float:
        return max(0.0, (self.deadline - utcnow()).total_seconds())

    def to_dict(self) -> JSONObject:
        return {
            "tenant": self.tenant,
            "execution_id": self.execution_id,
            "action": self.action_name,
            "action_version": self.action_version,
            "attempt": self.attempt,
            "idempotency_key": self.idempotency_key,
            "deadline": self.deadline.isoformat(),
            "trace_context": dict(self.trace_context),
            "correlation_id": self.correlation_id,
            "event_id": self.event_id,
            "event_type": self.event_type,
        }


@dataclass(frozen=True, slots=True)
class Log:
    message: str
    level: str = "info"


@dataclass(frozen=True, slots=True)
class Progress:
    fraction: float
    message: str = ""


@dataclass(frozen=True, slots=True)
class Result:
    output: JSON


@dataclass(frozen=True, slots=True)
class Failure:
    """The attempt failed. ``timed_out`` marks exhaustion of the time/CPU budget."""

    error: ExecutionError
    timed_out: bool = False

    @classmethod
    def of(cls, type: str, message: str, *, retryable: bool = False, stack: str = "") -> Failure:
        return cls(ExecutionError(type=type, message=message, stack=stack, retryable=retryable))


RunnerUpdate: TypeAlias = Log | Progress | Result | Failure


class Runner(Protocol):
    """Runs one attempt of one execution."""

    def execute(self, config: JSONObject, data: JSON, ctx: ExecutionContext) -> AsyncIterator[RunnerUpdate]:
        """Yield logs/progress, then exactly one ``Result`` or ``Failure``.

        Must honour ``ctx.deadline`` and stop promptly when the task is cancelled.
        """
        ...


ConfigValidator: TypeAlias = Callable[[JSONObject], None]


@dataclass(slots=True)
class HandlerType:
    """A handler type a runner provides: its name, config schema and runner."""

    name: str
    runner: Runner
    #: JSON Schema (draft 2020-12) every action's ``handler.config`` must satisfy
    config_schema: JSONObject = field(default_factory=lambda: {"type": "object"})
    description: str = ""
    #: deeper checks after the schema (e.g. the function is importable); raises
    #: ``InvalidArgument`` with field paths relative to the config (``function``)
    validate: ConfigValidator | None = None
    #: called once when the service stops
    close: Callable[[], Awaitable[None]] | None = None
    #: keys of the config left unrendered (e.g. source code that contains ``{{``)
    raw_config_keys: frozenset[str] = frozenset()
    _validator: Any = field(default=None, repr=False)

    def check_config(self, config: JSONObject, path: str = "handler.config") -> None:
        """Validate ``config`` against the schema and the type's own checks."""
        if self._validator is None:
            cls = jsonschema.validators.validator_for(self.config_schema)
            cls.check_schema(self.config_schema)
            self._validator = cls(self.config_schema)
        errors = sorted(self._validator.iter_errors(config), key=lambda e: list(e.absolute_path))
        if errors:
            violations = [FieldViolation(_join(path, e.absolute_path), e.message) for e in errors]
            first = violations[0]
            raise InvalidArgument(
                f"invalid {self.name} handler config: {first.field}: {first.description}",
                reason="INVALID_HANDLER_CONFIG",
                violations=violations,
            )
        if self.validate is not None:
            try:
                self.validate(config)
            except InvalidArgument as exc:
                violations = [FieldViolation(_join(path, [v.field]), v.description) for v in exc.violations]
                raise InvalidArgument(
                    f"invalid {self.name} handler config: {exc.message}",
                    reason=exc.reason if exc.reason != "INVALID_ARGUMENT" else "INVALID_HANDLER_CONFIG",
                    violations=violations or [FieldViolation(path, exc.message)],
                ) from None


def _join(prefix: str, parts: Any) -> str:
    out = prefix
    for p in parts:
        if p in ("", None):
            continue
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


class HandlerRegistry:
    """Handler types by name. Runners and plugins add to it at start-up or at runtime."""

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        self._types: dict[str, HandlerType] = {}
        #: service settings runners may read (data dir, pool sizes, allow-lists, ...)
        self.settings: Mapping[str, Any] = dict(settings or {})

    def register(self, handler_type: HandlerType) -> None:
        self._types[handler_type.name] = handler_type

    def unregister(self, name: str) -> None:
        self._types.pop(name, None)

    def get(self, name: str, path: str = "handler.type") -> HandlerType:
        try:
            return self._types[name]
        except KeyError:
            known = ", ".join(sorted(self._types)) or "none"
            raise InvalidArgument.field(
                path, f"unknown handler type {name!r} (known: {known})", reason="UNKNOWN_HANDLER_TYPE"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._types)

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> None:
        """Call every ``register(registry)`` published under ``group``."""
        for ep in importlib.metadata.entry_points(group=group):
            try:
                register = ep.load()
                register(self)
            except Exception:
                # One broken plugin must not take the service down with it; its
                # handler types stay unknown and actions using them are refused.
                log.exception("handler types from %s could not be registered", ep.value)
            else:
                log.debug("handler types from %s registered", ep.value)

    async def aclose(self) -> None:
        for ht in list(self._types.values()):
            if ht.close is not None:
                await ht.close()


__all__ = [
    "ENTRY_POINT_GROUP",
    "ExecutionContext",
    "Failure",
    "HandlerRegistry",
    "HandlerType",
    "Log",
    "Progress",
    "Result",
    "Runner",
    "RunnerUpdate",
]
