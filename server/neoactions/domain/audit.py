"""The audit log's record: who changed which configuration, when, under which request.

An :class:`AuditEntry` is written by the server for every configuration change (actions,
keys, secrets, tenants, plugins) and read back by ``ListAuditEntries``. Its ``change``
never holds a secret: :func:`redact` masks every field that may hold one before the
entry is stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from neoactions.domain.model import JSON, JSONObject, utcnow

#: what a masked value reads as
REDACTED = "***"

#: kinds are lowercase dotted words: ``action.create``, ``key.revoke``, ``tenant.delete``
KIND = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*\Z")

#: field names that hold a secret (compared lowercase, ``-`` read as ``_``); ``value`` is the
#: field a secret's value travels in
_SENSITIVE_NAMES = frozenset(
    {
        "value",
        "password",
        "passwd",
        "secret",
        "token",
        "api_key",
        "apikey",
        "authorization",
        "credential",
        "credentials",
        "private_key",
        "access_key",
        "secret_key",
        "key",
        "master_key",
    }
)
_SENSITIVE_PARTS = ("password", "secret", "token", "api_key", "apikey", "private_key", "access_key", "credential")
#: a reference to a secret names it and holds no value: kept, so the log says which secret
_SECRET_REFERENCE = re.compile(r"^\{\{\s*secrets\.[A-Za-z0-9_.-]+\s*\}\}\Z")
#: values that are credentials whatever their field is called
_CREDENTIAL_PREFIXES = ("bearer ", "basic ", "whsec_")


def is_sensitive(name: str) -> bool:
    """Whether a field called ``name`` may hold a secret."""
    key = name.lower().replace("-", "_")
    return key in _SENSITIVE_NAMES or any(part in key for part in _SENSITIVE_PARTS)


def _masked(value: Any) -> Any:
    if isinstance(value, str) and _SECRET_REFERENCE.match(value.strip()):
        return value
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return REDACTED


def redact(change: JSON) -> JSON:
    """``change`` with every value of a sensitive field (:func:`is_sensitive`) masked as
    ``***`` at any depth — secret references (``{{ secrets.NAME }}``) excepted — and every
    string that reads as a credential (``Bearer ...``, ``whsec_...``) masked too."""
    if isinstance(change, dict):
        return {k: _masked(v) if is_sensitive(k) else redact(v) for k, v in change.items()}
    if isinstance(change, list):
        return [redact(v) for v in change]
    if isinstance(change, str) and change.lower().startswith(_CREDENTIAL_PREFIXES):
        return REDACTED
    return change


@dataclass(slots=True)
class AuditEntry:
    """One configuration change."""

    #: what happened: ``action.create``, ``action.update``, ``key.revoke``, ``secret.set``...
    kind: str
    #: what it happened to: the action's, key's, secret's or tenant's name or id
    target: str
    #: the change itself (redacted: never a secret value)
    change: JSONObject = field(default_factory=dict)
    #: who: the API key's id (``anonymous`` without authentication, ``service`` for the server's own work)
    principal: str = ""
    #: the API key's name
    principal_name: str = ""
    #: the request id the caller sent (``x-request-id``), to find the call in its logs
    request_id: str = ""
    tenant: str = ""
    id: str = ""
    at: datetime = field(default_factory=utcnow)


__all__ = ["KIND", "REDACTED", "AuditEntry", "is_sensitive", "redact"]
