"""API keys: who may call the service, in which tenant, with which role (SPEC §9).

A key is a bearer token ``nak_<id>_<secret>``: the id finds its record, the secret (32
random bytes) proves possession. The service stores only the SHA-256 of the whole token;
the token itself is shown once, when the key is created.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from neoactions.domain.errors import NotFound
from neoactions.domain.model import utcnow

ROLES = ("admin", "writer", "reader", "publisher")

_PREFIX = "nak_"
#: ``nak_`` + a 20-character id + ``_`` + the secret (43 characters of URL-safe base64)
_TOKEN = re.compile(r"^nak_(?P<id>[a-z0-9]{20})_(?P<secret>[A-Za-z0-9_-]{43})$")


@dataclass(slots=True)
class ApiKey:
    """An API key's record (never its token)."""

    id: str
    tenant: str
    name: str
    role: str
    created_at: datetime = field(default_factory=utcnow)
    last_used_at: datetime | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    #: the key that created this one ("" for the bootstrap key)
    created_by: str = ""
    #: events per second this key may publish (0: no limit of its own)
    publish_rate: float = 0.0

    def usable_at(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


def key_not_found(key_id: str) -> NotFound:
    return NotFound(f"API key {key_id!r} not found", reason="API_KEY_NOT_FOUND", metadata={"key_id": key_id})


def new_token() -> tuple[str, str]:
    """A fresh token and the id it carries."""
    key_id = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(20))
    return f"{_PREFIX}{key_id}_{secrets.token_urlsafe(32)}", key_id


def token_id(token: str) -> str | None:
    """The key id a token carries, or ``None`` when it is not shaped like a token."""
    match = _TOKEN.match(token)
    return match.group("id") if match else None


def token_hash(token: str) -> str:
    """What the store keeps of a token. The secret has 256 bits of entropy, so a plain
    SHA-256 cannot be reversed by guessing."""
    return hashlib.sha256(token.encode()).hexdigest()


def read_token_file(path: Path) -> str | None:
    """The token a key file holds (its first non-empty line); ``None`` when the file does not
    exist or holds nothing. Other ``OSError`` (unreadable) is the caller's to say."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    return next((line.strip() for line in text.splitlines() if line.strip()), None)


def same_hash(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


__all__ = ["ROLES", "ApiKey", "key_not_found", "new_token", "read_token_file", "same_hash", "token_hash", "token_id"]
