"""The one exception tree of neoactions.

Every error the core raises is a :class:`NeoActionsError` carrying a stable
``reason`` (an ``ErrorInfo`` reason on the wire, e.g. ``ACTION_NOT_FOUND``) and,
for validation failures, the offending fields. Adapters translate library errors
into these classes at their edge; the gRPC layer maps each class to one status
code (see ``neoactions.domain.status``) and the client maps them back.

A failing *action* is not an error of the service: a handler that raises
produces a failed attempt, never one of these.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

DOMAIN = "neoactions.dev"


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One invalid field of a request, named by its path (``trigger.conditions[2].value``)."""

    field: str
    description: str


class NeoActionsError(Exception):
    """Base of every error neoactions reports to a caller."""

    #: stable machine-readable reason, sent as ``google.rpc.ErrorInfo.reason``
    default_reason = "INTERNAL"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        violations: Sequence[FieldViolation] = (),
        metadata: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.violations: tuple[FieldViolation, ...] = tuple(violations)
        self.metadata: dict[str, str] = dict(metadata or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reason}: {self.message})"


class InvalidArgument(NeoActionsError):
    """The request is malformed; nothing was changed."""

    default_reason = "INVALID_ARGUMENT"

    @classmethod
    def field(cls, path: str, description: str, *, reason: str | None = None) -> InvalidArgument:
        """One invalid field, described."""
        return cls(f"{path}: {description}", reason=reason, violations=[FieldViolation(path, description)])


class NotFound(NeoActionsError):
    default_reason = "NOT_FOUND"


class AlreadyExists(NeoActionsError):
    default_reason = "ALREADY_EXISTS"


class FailedPrecondition(NeoActionsError):
    """The request is valid but the system is not in a state to accept it."""

    default_reason = "FAILED_PRECONDITION"


class Aborted(NeoActionsError):
    """A concurrent change won (e.g. an update against a stale version)."""

    default_reason = "ABORTED"


class ResourceExhausted(NeoActionsError):
    default_reason = "RESOURCE_EXHAUSTED"


class PermissionDenied(NeoActionsError):
    default_reason = "PERMISSION_DENIED"


class Unauthenticated(NeoActionsError):
    default_reason = "UNAUTHENTICATED"


class Unavailable(NeoActionsError):
    """A dependency (database, queue) cannot be reached; the caller may retry."""

    default_reason = "UNAVAILABLE"


class Internal(NeoActionsError):
    default_reason = "INTERNAL"


@dataclass(slots=True)
class Violations:
    """Collects field violations, then raises them all at once."""

    items: list[FieldViolation] = field(default_factory=list)

    def add(self, path: str, description: str) -> None:
        self.items.append(FieldViolation(path, description))

    def raise_if_any(self, message: str, reason: str = "INVALID_ARGUMENT") -> None:
        if self.items:
            first = self.items[0]
            detail = f"{first.field}: {first.description}"
            if len(self.items) > 1:
                detail += f" (and {len(self.items) - 1} more)"
            raise InvalidArgument(f"{message}: {detail}", reason=reason, violations=self.items)


__all__ = [
    "DOMAIN",
    "Aborted",
    "AlreadyExists",
    "FailedPrecondition",
    "FieldViolation",
    "Internal",
    "InvalidArgument",
    "NeoActionsError",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
    "Violations",
]
