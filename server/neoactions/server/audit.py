"""The audit log: every configuration change, recorded in its tenant with who, when, what and
the request id.

The engine owns one :class:`Auditor` (``Engine.audit``). An operation that changes
configuration records its change in one line, after the change is stored::

    await self.audit.record(caller, tenant, "secret.set", name, {"created": True})

Kinds are ``<object>.<verb>``: ``action.create|update|delete|enable|disable``,
``key.create|revoke``, ``secret.set|delete``; in the admin tenant ``tenant.create|delete``,
``secret.rotate_master_key`` and ``plugin.install|update|uninstall``. The change is redacted before it is
stored (:func:`neoactions.domain.audit.redact`): pass what changed, never a secret's value
(a field named ``value``, ``password``, ``token``... is masked anyway).
"""

from __future__ import annotations

import logging

from neoactions.domain.audit import KIND, AuditEntry
from neoactions.domain.errors import NeoActionsError
from neoactions.domain.model import Action, JSONObject
from neoactions.server.access import Caller
from neoactions.server.store import AuditFilter, AuditStore, Page

log = logging.getLogger(__name__)


def action_change(action: Action) -> JSONObject:
    """What an audit entry says of a saved action: its version, whether it is enabled, its spec."""
    return {"version": action.version, "enabled": action.enabled, "spec": action.spec()}


class Auditor:
    """Appends audit entries to a tenant's log and lists them."""

    def __init__(self, store: AuditStore) -> None:
        self._store = store

    async def record(
        self, caller: Caller, tenant: str, kind: str, target: str, change: JSONObject | None = None
    ) -> AuditEntry | None:
        """Record that ``caller`` made the change ``kind`` to ``target`` in ``tenant``.

        Called once the change is stored: when the log cannot be written (the store is
        unavailable), the change stands, the failure is logged at error level and ``None``
        is returned. A ``kind`` that is not dotted lowercase words is a programming error
        (``ValueError``)."""
        if not KIND.match(kind):
            raise ValueError(f"audit kind must be dotted lowercase words, not {kind!r}")
        entry = AuditEntry(
            kind=kind,
            target=target,
            change=dict(change or {}),
            principal=caller.principal,
            principal_name=caller.principal_name,
            request_id=caller.request_id,
        )
        try:
            return await self._store.append_audit(tenant, entry)
        except NeoActionsError as exc:
            log.error(
                "audit entry not recorded: %s %s in tenant %s by %s (request %s): %s",
                kind,
                target,
                tenant,
                caller.principal,
                caller.request_id or "-",
                exc,
            )
            return None

    async def list(self, tenant: str, filter: AuditFilter, page_size: int, page_token: str) -> Page[AuditEntry]:
        return await self._store.list_audit(tenant, filter, page_size, page_token)


__all__ = ["Auditor", "action_change"]
