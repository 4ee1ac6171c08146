"""Secrets as callers see them: a name and metadata, never the value."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class SecretInfo:
    """A secret of a tenant, without its value (which no call returns)."""

    tenant: str
    name: str
    created_at: datetime
    updated_at: datetime
    #: 1 when created; every set adds one
    version: int
    #: the API key id that created it
    created_by: str = ""


@dataclass(frozen=True, slots=True)
class MasterKeyRotation:
    """What a master-key rotation did."""

    #: the key everything is sealed under now (first 8 hex of its SHA-256)
    key_id: str
    #: secrets re-encrypted by this rotation
    resealed: int
    #: secrets still sealed under another key (set meanwhile by a process with an older key)
    remaining: int
    #: the new key was written where the server reads it from (a key file)
    persisted: bool


__all__ = ["MasterKeyRotation", "SecretInfo"]
