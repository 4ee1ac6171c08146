"""The secrets of every tenant: set, list, delete, check on save, resolve per attempt, rotate.

Values are sealed before they reach the store and opened only when an attempt renders a
config that names them (:meth:`Secrets.for_config`); opened values are kept a few
seconds per tenant in this process at most, and remembered for masking log lines.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

from neoactions.domain.errors import FailedPrecondition, InvalidArgument, NotFound
from neoactions.domain.model import JSON, utcnow
from neoactions.domain.secrets import MasterKeyRotation, SecretInfo
from neoactions.server.persistence import tokens
from neoactions.server.secrets.crypto import KEY_BYTES, Keyring, MasterKeyError, write_key_file
from neoactions.server.secrets.keys import KeySource, load_keys
from neoactions.server.secrets.masking import LOG_VALUES, NO_MASK, Masker
from neoactions.server.secrets.references import NAME_RULE, SECRET_NAME, check_sensitive, referenced_secrets
from neoactions.server.settings import Settings
from neoactions.server.store import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, SecretStore, StoredSecret

#: the largest secret value, in bytes of UTF-8
MAX_VALUE_BYTES = 64 * 1024
#: opened values are reused this long (a set or delete here forgets them at once)
CACHE_SECONDS = 5.0


class SecretUnavailable(Exception):
    """A secret an attempt needs cannot be had (deleted, or sealed under a key this server lacks)."""


@dataclass(slots=True)
class _Opened:
    values: dict[str, str]
    missing: frozenset[str]
    at: float
    masker: Masker


def _info(tenant: str, s: StoredSecret) -> SecretInfo:
    return SecretInfo(tenant, s.name, s.created_at, s.updated_at, s.version, s.created_by)


def check_name(name: str, field: str = "secret_id") -> str:
    if not SECRET_NAME.match(name):
        raise InvalidArgument.field(field, f"a secret's name is {NAME_RULE}", reason="INVALID_SECRET_NAME")
    return name


class Secrets:
    """Secrets over a :class:`SecretStore`, sealed under the master keys of ``settings``."""

    def __init__(self, store: SecretStore, settings: Settings, cache_seconds: float = CACHE_SECONDS) -> None:
        self._store = store
        self._settings = settings
        self._source: KeySource | None = None
        self._cache_seconds = cache_seconds
        #: (tenant, names) -> what was opened for them, and when
        self._opened: dict[tuple[str, frozenset[str]], _Opened] = {}
        self._rotating = asyncio.Lock()

    # --- keys ----------------------------------------------------------------------------
    def _keys(self) -> KeySource:
        if self._source is None:
            try:
                self._source = load_keys(self._settings)
            except MasterKeyError as exc:
                raise FailedPrecondition(str(exc), reason="MASTER_KEY_UNAVAILABLE") from None
        return self._source

    @property
    def keyring(self) -> Keyring:
        return self._keys().keyring

    def _forget(self, tenant: str) -> None:
        for key in [k for k in self._opened if k[0] == tenant]:
            del self._opened[key]

    # --- the API -------------------------------------------------------------------------
    async def set(self, tenant: str, name: str, value: str, by: str) -> SecretInfo:
        check_name(name)
        if not value:
            raise InvalidArgument.field("value", "must not be empty", reason="INVALID_SECRET_VALUE")
        if len(value.encode("utf-8", "surrogatepass")) > MAX_VALUE_BYTES:
            raise InvalidArgument.field("value", f"at most {MAX_VALUE_BYTES} bytes", reason="INVALID_SECRET_VALUE")
        LOG_VALUES.remember([value])
        try:
            sealed = self.keyring.seal(tenant, name, value)
        except UnicodeEncodeError:
            raise InvalidArgument.field("value", "must be UTF-8 text", reason="INVALID_SECRET_VALUE") from None
        stored = await self._store.put_secret(tenant, name, sealed, by, utcnow())
        self._forget(tenant)
        return _info(tenant, stored)

    async def list(self, tenant: str, page_size: int = 0, page_token: str = "") -> tuple[list[SecretInfo], str]:
        if page_size < 0:
            raise InvalidArgument.field("page_size", "must not be negative")
        limit = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        after = tokens.decode("secrets", page_token, (str,))
        start = str(after[0]) if after else ""
        stored = [s for s in await self._store.list_secrets(tenant) if s.name > start]
        page = [_info(tenant, s) for s in stored[:limit]]
        more = len(stored) > limit
        return page, tokens.encode("secrets", [page[-1].name]) if more else ""

    async def delete(self, tenant: str, name: str) -> None:
        if not SECRET_NAME.match(name):
            raise NotFound(f"secret {name!r} not found", reason="SECRET_NOT_FOUND", metadata={"secret": name})
        await self._store.delete_secret(tenant, name)
        self._forget(tenant)

    # --- saving actions ------------------------------------------------------------------
    async def check_config(
        self,
        tenant: str,
        config: JSON,
        sensitive_paths: frozenset[str],
        raw_keys: frozenset[str] = frozenset(),
        path: str = "handler.config",
    ) -> None:
        """Refuse, naming the field, a literal credential in a sensitive field, a use of
        ``secrets`` naming no secret, and a reference to a secret the tenant does not have."""
        check_sensitive(config, sensitive_paths, path)
        fields = referenced_secrets(config, path, raw_keys)
        if not fields:
            return
        wanted = sorted(set().union(*fields.values()))
        known = await self._store.get_secrets(tenant, wanted)
        for field, names in fields.items():
            unknown = sorted(names - known.keys())
            if unknown:
                raise InvalidArgument.field(
                    field,
                    f"unknown secret {unknown[0]!r}: set it first (`neoactions secrets set {unknown[0]}`)",
                    reason="UNKNOWN_SECRET",
                )

    # --- attempts ------------------------------------------------------------------------
    async def values(self, tenant: str, names: frozenset[str]) -> dict[str, str]:
        """The values of ``names`` for an attempt to render (kept briefly in this process).
        ``SecretUnavailable`` when one is missing or does not open."""
        return (await self.opened(tenant, names))[0]

    async def opened(self, tenant: str, names: frozenset[str]) -> tuple[dict[str, str], Masker]:
        """:meth:`values`, and the :class:`Masker` of those values."""
        if not names:
            return {}, NO_MASK
        key = (tenant, names)
        now = time.monotonic()
        opened = self._opened.get(key)
        if opened is None or now - opened.at > self._cache_seconds:
            stored = await self._store.get_secrets(tenant, sorted(names))
            values: dict[str, str] = {}
            try:
                for name, s in stored.items():
                    values[name] = self.keyring.open(tenant, name, s.ciphertext)
            except MasterKeyError as exc:
                raise SecretUnavailable(str(exc)) from None
            except FailedPrecondition as exc:
                raise SecretUnavailable(exc.message) from None
            opened = _Opened(values, frozenset(names - values.keys()), now, Masker(values.values()))
            if len(self._opened) > 10_000:
                self._opened.clear()
            self._opened[key] = opened
            LOG_VALUES.remember(values.values())
        if opened.missing:
            missing = sorted(opened.missing)[0]
            raise SecretUnavailable(f"secret {missing!r} does not exist (deleted after the action was saved?)")
        return opened.values, opened.masker

    # --- rotation ------------------------------------------------------------------------
    async def rotate(self, tenants: Sequence[str], new_key: bytes = b"") -> MasterKeyRotation:
        """Re-encrypt every secret of ``tenants`` under the current key, or under ``new_key``,
        which becomes current (written to the key file the current key came from, first)."""
        async with self._rotating:
            source = self._keys()
            persisted = not new_key or source.file is not None
            if new_key:
                if len(new_key) != KEY_BYTES:
                    raise InvalidArgument.field(
                        "new_master_key", f"must be {KEY_BYTES} random bytes", reason="INVALID_MASTER_KEY"
                    )
                keyring = source.keyring.rotated_to(new_key)
                if source.file is not None and new_key != source.keyring.current:
                    try:
                        write_key_file(source.file, new_key)
                    except OSError as exc:
                        raise FailedPrecondition(
                            f"cannot write the new master key to {source.file}: {exc.strerror}; nothing changed",
                            reason="MASTER_KEY_UNAVAILABLE",
                        ) from None
                self._source = source = KeySource(keyring, source.file)
            keyring = source.keyring
            resealed = remaining = 0
            for tenant in tenants:
                changes: list[tuple[str, bytes, bytes]] = []
                for s in await self._store.list_secrets(tenant):
                    if keyring.needs_reseal(s.ciphertext):
                        try:
                            value = keyring.open(tenant, s.name, s.ciphertext)
                        except MasterKeyError:
                            remaining += 1  # sealed under a key this server does not have
                            continue
                        changes.append((s.name, s.ciphertext, keyring.seal(tenant, s.name, value)))
                if changes:
                    done = await self._store.reseal_secrets(tenant, changes)
                    resealed += done
                    remaining += len(changes) - done
                self._forget(tenant)
            return MasterKeyRotation(keyring.current_id, resealed, remaining, persisted)


__all__ = ["MAX_VALUE_BYTES", "SecretUnavailable", "Secrets", "check_name"]
