"""API keys at work: authenticating a bearer token, the key-based access policy, the first
admin key, and each key's own publish rate.

:class:`KeyRing` turns a token into a :class:`~neoactions.server.access.Caller`. It keeps
the keys it has seen for :data:`RECHECK_SECONDS` and then reads them again, so a key
revoked through any process stops working on every process within a second; a token
whose id is unknown is remembered as unknown for as long, so guessing costs the store
nothing more. When keys were last used is written in the background, at most every
:data:`TOUCH_SECONDS`.

:class:`KeyAccess` is the service's :class:`~neoactions.server.access.AccessPolicy`: a key
acts in its own tenant only (another tenant does not exist for it: ``NOT_FOUND``), with its
role's permissions; an ``admin`` key of the ``admin`` tenant acts in every tenant.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from neoactions.domain.errors import (
    InvalidArgument,
    NeoActionsError,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)
from neoactions.domain.keys import ROLES, ApiKey, new_token, read_token_file, same_hash, token_hash, token_id
from neoactions.domain.model import ADMIN_TENANT, utcnow
from neoactions.server.access import Caller, Permission, Role
from neoactions.server.store import KeyStore

log = logging.getLogger(__name__)

#: a key read from the store is trusted this long, then read again (revocation reaches every
#: process within a second)
RECHECK_SECONDS = 0.5
#: how often last-used times are written
TOUCH_SECONDS = 30.0
#: unknown key ids remembered at most (a flood of made-up tokens cannot grow memory)
_MAX_UNKNOWN = 10_000

HOW_TO_GET_A_KEY = (
    "pass --api-key, set NEOACTIONS_API_KEY or run `neoactions login`; an embedded server writes its first"
    " admin key to <data-dir>/admin.key"
)


def missing_key() -> Unauthenticated:
    return Unauthenticated(f"no API key (hint: {HOW_TO_GET_A_KEY})", reason="API_KEY_MISSING")


def bad_key(why: str) -> Unauthenticated:
    return Unauthenticated(f"the API key {why} (hint: {HOW_TO_GET_A_KEY})", reason="API_KEY_INVALID")


@dataclass(slots=True)
class _Seen:
    key: ApiKey | None
    hash: str
    read_at: float


class _Bucket:
    """A token bucket: ``rate`` per second, bursts of up to one second's worth."""

    __slots__ = ("at", "level", "rate")

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.level = max(rate, 1.0)
        self.at = time.monotonic()

    def take(self, n: int) -> float:
        """0 when ``n`` may go now, else the seconds until it could."""
        now = time.monotonic()
        capacity = max(self.rate, 1.0)
        self.level = min(capacity, self.level + (now - self.at) * self.rate)
        self.at = now
        if n <= self.level:
            self.level -= n
            return 0.0
        return (n - self.level) / self.rate


class KeyRing:
    """Authenticates bearer tokens against the store's keys (cached briefly)."""

    def __init__(self, store: KeyStore) -> None:
        self._store = store
        self._seen: dict[str, _Seen] = {}
        self._used: dict[str, datetime] = {}
        self._buckets: dict[str, _Bucket] = {}
        self._touching: asyncio.Task[None] | None = None

    async def authenticate(self, token: str, request_id: str = "") -> Caller:
        """The caller ``token`` identifies. ``Unauthenticated`` for a missing, malformed,
        unknown, revoked or expired key."""
        if not token:
            raise missing_key()
        key_id = token_id(token)
        if key_id is None:
            raise bad_key("is malformed (expected nak_...)")
        seen = self._seen.get(key_id)
        now = time.monotonic()
        if seen is None or now - seen.read_at > RECHECK_SECONDS:
            seen = await self._read(key_id, now)
        key = seen.key
        if key is None or not same_hash(seen.hash, token_hash(token)):
            raise bad_key("is not known")
        at = utcnow()
        if not key.usable_at(at):
            raise bad_key("was revoked" if key.revoked_at is not None else "has expired")
        self._used[key.id] = at
        return Caller(
            principal=key.id,
            home_tenant=key.tenant,
            request_id=request_id,
            principal_name=key.name,
            role=Role(key.role),
        )

    async def _read(self, key_id: str, now: float) -> _Seen:
        found = await self._store.get_api_key(key_id)
        if found is None:
            if len(self._seen) >= _MAX_UNKNOWN:
                self._forget_unknown()
            seen = _Seen(None, "", now)
        else:
            seen = _Seen(found[0], found[1], now)
            bucket = self._buckets.get(key_id)
            if found[0].publish_rate <= 0:
                self._buckets.pop(key_id, None)
            elif bucket is None or bucket.rate != found[0].publish_rate:
                self._buckets[key_id] = _Bucket(found[0].publish_rate)
        self._seen[key_id] = seen
        return seen

    def _forget_unknown(self) -> None:
        for key_id in [k for k, s in self._seen.items() if s.key is None]:
            del self._seen[key_id]

    def forget(self, key_id: str) -> None:
        """Read the key again at its next use (it changed here)."""
        self._seen.pop(key_id, None)

    def forget_tenant(self, tenant: str) -> None:
        """Read every key of ``tenant`` again at its next use (the tenant was deleted here)."""
        for key_id in [k for k, seen in self._seen.items() if seen.key is not None and seen.key.tenant == tenant]:
            del self._seen[key_id]

    def charge_publish(self, caller: Caller, events: int) -> None:
        """Count ``events`` against the caller's key's publish rate (per process);
        ``ResourceExhausted`` (PUBLISH_RATE_EXCEEDED) when over it."""
        bucket = self._buckets.get(caller.principal)
        if bucket is None:
            return
        wait = bucket.take(events)
        if wait > 0:
            raise ResourceExhausted(
                f"API key {caller.principal_name or caller.principal!r} may publish {bucket.rate:g} events/s;"
                f" retry in {wait:.2f}s",
                reason="PUBLISH_RATE_EXCEEDED",
                metadata={"retry_after_seconds": f"{wait:.3f}", "key_id": caller.principal},
            )

    # --- last used -------------------------------------------------------------------
    def start(self) -> None:
        self._touching = asyncio.create_task(self._touch_loop(), name="api-key-last-used")

    async def aclose(self) -> None:
        if self._touching is not None:
            self._touching.cancel()
            await asyncio.gather(self._touching, return_exceptions=True)
            self._touching = None
        await self.flush()

    async def flush(self) -> None:
        used, self._used = self._used, {}
        if not used:
            return
        try:
            await self._store.touch_api_keys(used)
        except NeoActionsError as exc:
            log.warning("could not record when API keys were last used: %s", exc.message)

    async def _touch_loop(self) -> None:
        while True:
            await asyncio.sleep(TOUCH_SECONDS)
            await self.flush()


class KeyAccess:
    """The access policy of a service with API keys (SPEC §9)."""

    def check(self, caller: Caller, tenant: str, permission: Permission) -> None:
        role = caller.role
        if role is None:
            raise missing_key()
        if caller.home_tenant != tenant and not (caller.home_tenant == ADMIN_TENANT and role is Role.ADMIN):
            # another tenant does not exist for this key: the same answer as a tenant that does not
            raise NotFound(f"tenant {tenant!r} not found", reason="TENANT_NOT_FOUND", metadata={"tenant": tenant})
        if permission not in role.permissions:
            who = caller.principal_name or caller.principal
            raise PermissionDenied(
                f"the {role.value} role may not {_VERBS[permission]} (key {who!r})",
                reason="ROLE_NOT_ALLOWED",
                metadata={"role": role.value, "permission": permission.value},
            )


_VERBS = {
    Permission.READ: "read",
    Permission.PUBLISH: "publish events",
    Permission.WRITE: "change actions or executions",
    Permission.MANAGE: "manage keys, secrets or tenants",
}


# --- creating keys ---------------------------------------------------------------------------


def parse_role(role: str, field: str = "role") -> Role:
    if role not in ROLES:
        raise InvalidArgument.field(field, f"must be one of {', '.join(ROLES)}, not {role!r}", reason="INVALID_ROLE")
    return Role(role)


def new_key(
    tenant: str,
    name: str,
    role: str,
    *,
    created_by: str = "",
    expires_at: datetime | None = None,
    publish_rate: float = 0.0,
) -> tuple[ApiKey, str]:
    """A new key record and its token (shown once)."""
    if not name or len(name) > 100:
        raise InvalidArgument.field("name", "a key needs a name of 1 to 100 characters")
    parse_role(role)
    if publish_rate < 0:
        raise InvalidArgument.field("publish_rate", "must not be negative")
    now = utcnow()
    if expires_at is not None and expires_at <= now:
        raise InvalidArgument.field("expire_time", "must be in the future")
    token, key_id = new_token()
    key = ApiKey(
        id=key_id,
        tenant=tenant,
        name=name,
        role=role,
        created_at=now,
        created_by=created_by,
        expires_at=expires_at,
        publish_rate=publish_rate,
    )
    return key, token


# --- the first key ---------------------------------------------------------------------------


def write_token_file(path: Path, token: str) -> None:
    """Write ``token`` to ``path``, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token + "\n")
    with contextlib.suppress(OSError):
        os.chmod(path, 0o600)


async def bootstrap(store: KeyStore, key_file: Path | None) -> tuple[str, Path | None] | None:
    """Create the first ``admin`` key of the ``admin`` tenant when the store has no key.

    With ``key_file``: a token already in it becomes that key (operators and test rigs may
    choose it); else a new one is written there. Without: a new key is returned for the
    caller to print once. Returns ``(token, file)`` when a key was created, else ``None``.
    """
    token = read_token_file(key_file) if key_file is not None else None
    if token is not None and token_id(token) is None:
        raise InvalidArgument.field("bootstrap_key_file", f"{key_file} does not hold an API key (nak_...)")
    if token is None:
        key, token = new_key(ADMIN_TENANT, "bootstrap", Role.ADMIN.value)
    else:
        key_id = token_id(token)
        assert key_id is not None
        key = ApiKey(id=key_id, tenant=ADMIN_TENANT, name="bootstrap", role=Role.ADMIN.value)
    if not await store.create_api_key(key, token_hash(token), only_if_none=True):
        return None
    if key_file is not None and read_token_file(key_file) != token:
        write_token_file(key_file, token)
    return token, key_file


def expiry_after(seconds: float) -> datetime | None:
    return None if seconds <= 0 else utcnow() + timedelta(seconds=seconds)


__all__ = [
    "HOW_TO_GET_A_KEY",
    "RECHECK_SECONDS",
    "KeyAccess",
    "KeyRing",
    "bootstrap",
    "expiry_after",
    "missing_key",
    "new_key",
    "parse_role",
    "write_token_file",
]
