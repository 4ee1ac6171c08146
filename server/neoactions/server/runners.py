"""The Runner contract and the registry of handler types.

Every runner — in-process python, wasm, container, sidecar, http, ... — implements
one contract, the same as the sidecar ``Handler.Execute`` RPC: it gets the rendered
config, the input data and an :class:`ExecutionContext`, and yields
:class:`RunnerUpdate` values ending in exactly one :class:`Result`, :class:`Failure`
or :class:`Suspend`. A handler's own failure is a ``Failure`` (a failed attempt),
never an exception out of ``execute``. ``Suspend`` ends the attempt without ending the
execution: it waits (``waiting``, holding no worker) until a time or until woken, and a
new attempt resumes it with the state the suspending one handed over
(``ExecutionContext.resume_state``).

Handler types are looked up in a :class:`HandlerRegistry` by name and, optionally,
version. Built-in runners and installed plugins add to it the same way: a
``register(registry)`` function, found through the ``neoactions.handler_types``
entry-point group; at runtime, :meth:`HandlerRegistry.install` opens a type before it
takes work and :meth:`HandlerRegistry.remove` closes it after.
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeAlias

import jsonschema

from neoactions.domain.errors import FieldViolation, InvalidArgument
from neoactions.domain.model import JSON, ExecutionError, JSONObject, utcnow
from neoactions.plugins.versions import RangeError, parse_range
from neoactions.server.secrets.references import check_sensitive

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
    #: what the attempt that suspended this execution handed over (``None``: not a resume)
    resume_state: JSON = None

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
            "resume_state": self.resume_state,
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
    """The attempt failed. ``timed_out`` marks exhaustion of the time/CPU budget;
    ``dead_letter`` gives the execution up as ``dead_lettered`` at once, whatever its retry
    policy (a runner that spent retries of its own, as a workflow's steps do)."""

    error: ExecutionError
    timed_out: bool = False
    dead_letter: bool = False

    @classmethod
    def of(cls, type: str, message: str, *, retryable: bool = False, stack: str = "") -> Failure:
        return cls(ExecutionError(type=type, message=message, stack=stack, retryable=retryable))


@dataclass(frozen=True, slots=True)
class Suspend:
    """End the attempt, not the execution: it waits, holding no worker, until ``until``
    (or, without one, until woken) and then resumes with a new attempt whose context
    carries ``state``. A suspended attempt spends none of the retry budget."""

    until: datetime | None = None
    state: JSON = None
    #: what it waits for, for people (shown in the update and the CLI)
    reason: str = ""


RunnerUpdate: TypeAlias = Log | Progress | Result | Failure | Suspend
#: how an attempt ends
Outcome: TypeAlias = Result | Failure | Suspend


class Runner(Protocol):
    """Runs one attempt of one execution."""

    def execute(self, config: JSONObject, data: JSON, ctx: ExecutionContext) -> AsyncIterator[RunnerUpdate]:
        """Yield logs/progress, then exactly one ``Result``, ``Failure`` or ``Suspend``.

        Must honour ``ctx.deadline`` and stop promptly when the task is cancelled.
        """
        ...


ConfigValidator: TypeAlias = Callable[[JSONObject], None]


@dataclass(slots=True)
class HandlerType:
    """A handler type a runner provides: its name (and version), config schema and runner."""

    name: str
    runner: Runner
    #: ``""`` for the built-in types; a plugin's types carry the plugin's (semantic) version
    version: str = ""
    #: JSON Schema (draft 2020-12) every action's ``handler.config`` must satisfy
    config_schema: JSONObject = field(default_factory=lambda: {"type": "object"})
    description: str = ""
    #: deeper checks after the schema (e.g. the function is importable); raises
    #: ``InvalidArgument`` with field paths relative to the config (``function``)
    validate: ConfigValidator | None = None
    #: called once before the type takes work (connections, pools, warm-up)
    open: Callable[[], Awaitable[None]] | None = None
    #: called once when the type stops taking work (the service stops, or it is removed)
    close: Callable[[], Awaitable[None]] | None = None
    #: keys of the config left unrendered (e.g. source code that contains ``{{``)
    raw_config_keys: frozenset[str] = frozenset()
    #: config fields holding credentials (dotted paths, keys matched case-insensitively; a list
    #: there is checked item by item): they accept only ``{{ secrets.NAME }}`` references
    sensitive_config_paths: frozenset[str] = frozenset()
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
        # credentials: secret references only, so a saved config never holds one
        check_sensitive(config, self.sensitive_config_paths, path)


def _join(prefix: str, parts: Any) -> str:
    out = prefix
    for p in parts:
        if p in ("", None):
            continue
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Order versions as semantic versions do (``1.10.0`` after ``1.9.2``; a pre-release
    before its release); ``""`` (a built-in type) before any."""
    release, _, pre = version.partition("-")
    parts: list[tuple[int, int | str]] = [(1, int(p)) if p.isdigit() else (0, p) for p in release.split(".") if p]
    # a release sorts after its own pre-releases
    parts.append((1, 0) if not pre else (0, pre))
    return tuple(parts) if version else ()


def _best_in_range(wanted: str, versions: list[str]) -> str | None:
    try:
        return parse_range(wanted).best(versions)
    except RangeError:
        return None


class HandlerRegistry:
    """Handler types by name and version. Runners and plugins add to it at start-up
    (:meth:`register`) or at runtime (:meth:`install`, :meth:`remove`)."""

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        self._types: dict[str, dict[str, HandlerType]] = {}
        #: types opened, and types closed (by identity: a replacement is a new type)
        self._open: set[int] = set()
        self._closed: set[int] = set()
        #: service settings runners may read (data dir, pool sizes, allow-lists, ...)
        self.settings: Mapping[str, Any] = dict(settings or {})

    def register(self, handler_type: HandlerType) -> None:
        """Add a type at start-up; :meth:`start` opens it with the others."""
        self._types.setdefault(handler_type.name, {})[handler_type.version] = handler_type

    def unregister(self, name: str, version: str | None = None) -> list[HandlerType]:
        """Take a type (one version, or every version) out; returns what was taken, not closed."""
        versions = self._types.get(name, {})
        taken = list(versions.values()) if version is None else [v for v in [versions.pop(version, None)] if v]
        if version is None or not versions:
            self._types.pop(name, None)
        return taken

    async def install(self, handler_type: HandlerType) -> None:
        """Open ``handler_type`` and let it take work; a type of the same name and version
        it replaces is closed after."""
        await self._open_type(handler_type)
        replaced = self._types.get(handler_type.name, {}).get(handler_type.version)
        self.register(handler_type)
        if replaced is not None and replaced is not handler_type:
            await self._close_type(replaced)

    async def remove(self, name: str, version: str | None = None) -> None:
        """Stop new work reaching a type (one version, or every version) and close it."""
        for handler_type in self.unregister(name, version):
            await self._close_type(handler_type)

    def get(self, name: str, path: str = "handler.type", version: str = "") -> HandlerType:
        """The type ``name`` at ``version``, or its newest version when none is asked for."""
        versions = self._types.get(name)
        if not versions:
            known = ", ".join(sorted(self._types)) or "none"
            raise InvalidArgument.field(
                path, f"unknown handler type {name!r} (known: {known})", reason="UNKNOWN_HANDLER_TYPE"
            )
        if not version:
            return versions[max(versions, key=version_key)]
        found = versions.get(version)
        if found is None:
            # a semantic version range (``^1.2``, ``~1.2.3``, ``>=1 <2``): the newest it allows
            best = _best_in_range(version, [v for v in versions if v])
            found = versions.get(best) if best else None
        if found is None:
            known = ", ".join(sorted((v or "built-in" for v in versions), key=version_key))
            raise InvalidArgument.field(
                path.removesuffix(".type") + ".version",
                f"handler type {name!r} has no version matching {version!r} (registered: {known})",
                reason="UNKNOWN_HANDLER_VERSION",
            )
        return found

    def versions(self, name: str) -> list[str]:
        """The registered versions of ``name``, oldest first."""
        return sorted(self._types.get(name, {}), key=version_key)

    def names(self) -> list[str]:
        return sorted(self._types)

    def __contains__(self, name: object) -> bool:
        return name in self._types

    async def start(self) -> None:
        """Open every registered type that has not been opened (the service starts)."""
        for versions in list(self._types.values()):
            for handler_type in list(versions.values()):
                await self._open_type(handler_type)

    async def _open_type(self, handler_type: HandlerType) -> None:
        if id(handler_type) in self._open:
            return
        if handler_type.open is not None:
            await handler_type.open()
        self._open.add(id(handler_type))

    async def _close_type(self, handler_type: HandlerType) -> None:
        if id(handler_type) in self._closed:
            return
        self._closed.add(id(handler_type))
        self._open.discard(id(handler_type))
        if handler_type.close is not None:
            await handler_type.close()

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
        """Close every type (the service stops)."""
        for versions in list(self._types.values()):
            for handler_type in list(versions.values()):
                await self._close_type(handler_type)


__all__ = [
    "ENTRY_POINT_GROUP",
    "ExecutionContext",
    "Failure",
    "HandlerRegistry",
    "HandlerType",
    "Log",
    "Outcome",
    "Progress",
    "Result",
    "Runner",
    "RunnerUpdate",
    "Suspend",
    "version_key",
]
