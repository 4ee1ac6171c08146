"""Who is calling and what they may do: the one place the engine asks before it acts.

Every operation of :class:`~neoactions.server.engine.Engine` takes the :class:`Caller`
and the tenant it acts in, and asks its :class:`AccessPolicy` for the operation's
:class:`Permission` before touching anything. The API edge only establishes who the
caller is; it decides nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from neoactions.domain.model import ADMIN_TENANT


class Permission(StrEnum):
    """What an operation needs, in the words of SPEC §9's roles."""

    #: get, list, watch, explain
    READ = "read"
    #: publish events (all a producing service's key may do)
    PUBLISH = "publish"
    #: create, change and delete actions; execute, cancel, retry, requeue
    WRITE = "write"
    #: tenants (and the keys and secrets of a tenant)
    MANAGE = "manage"


class Role(StrEnum):
    """An API key's role (SPEC §9): what its holder may do in its tenant."""

    #: everything in its tenant, keys and secrets included; in the admin tenant, every tenant
    ADMIN = "admin"
    #: actions, publish, execute, cancel/retry/requeue, and everything a reader may
    WRITER = "writer"
    #: get, list, watch, stats
    READER = "reader"
    #: publish events only: the key a producing service holds
    PUBLISHER = "publisher"

    @property
    def permissions(self) -> frozenset[Permission]:
        return _GRANTS[self]


_GRANTS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.WRITER: frozenset({Permission.READ, Permission.PUBLISH, Permission.WRITE}),
    Role.READER: frozenset({Permission.READ}),
    Role.PUBLISHER: frozenset({Permission.PUBLISH}),
}


@dataclass(frozen=True, slots=True)
class Caller:
    """The identity behind a call, as the edge established it."""

    #: who: the API key's id; ``anonymous`` without authentication, ``service`` for the
    #: service's own work
    principal: str = "anonymous"
    #: the tenant the identity belongs to ("" when it is not bound to one)
    home_tenant: str = ""
    #: the request id the caller sent, for logs and the audit trail
    request_id: str = ""
    #: the API key's name (for the audit log); "" without a key
    principal_name: str = ""
    #: the API key's role; ``None`` without a key (only :class:`OpenAccess` admits such callers)
    role: Role | None = None


#: the caller of work the service starts itself (retries, schedules, replays, alerts): it
#: acts in every tenant, as the admin tenant's admin does
SERVICE = Caller(principal="service", home_tenant=ADMIN_TENANT, principal_name="neoactions", role=Role.ADMIN)


class AccessPolicy(Protocol):
    """Admits or refuses ``caller`` doing something that needs ``permission`` in ``tenant``.

    Returns when allowed; raises ``NotFound`` when the tenant is not the caller's to see
    (another tenant's objects do not exist for it) and ``PermissionDenied`` when the caller
    sees the tenant but lacks the permission.
    """

    def check(self, caller: Caller, tenant: str, permission: Permission) -> None: ...


class OpenAccess:
    """No authentication configured: every caller may do everything in every tenant.

    This is the service's behaviour until API keys exist (SPEC §9); the key-based policy
    replaces it behind the same :class:`AccessPolicy` port.
    """

    def check(self, caller: Caller, tenant: str, permission: Permission) -> None:
        return None


__all__ = ["SERVICE", "AccessPolicy", "Caller", "OpenAccess", "Permission", "Role"]
