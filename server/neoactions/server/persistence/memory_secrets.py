"""Secrets in ``MemoryStore`` (as :mod:`.sql_secrets` is for the SQL stores): sealed values
by name in the tenant's tables."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from neoactions.server.persistence.codec import from_micros, to_micros
from neoactions.server.persistence.memory_tables import Tables
from neoactions.server.persistence.sql_secrets import secret_not_found
from neoactions.server.store import StoredSecret


class MemorySecrets:
    """The ``SecretStore`` methods over the tables of the concrete store."""

    async def _tables(self, tenant: str) -> Tables:
        raise NotImplementedError

    async def put_secret(self, tenant: str, name: str, ciphertext: bytes, by: str, at: datetime) -> StoredSecret:
        t = await self._tables(tenant)
        at = from_micros(to_micros(at))  # as the SQL stores keep it: UTC, to the microsecond
        old = t.secrets.get(name)
        if old is None:
            stored = StoredSecret(name, bytes(ciphertext), at, at, 1, by)
        else:
            stored = StoredSecret(name, bytes(ciphertext), old.created_at, at, old.version + 1, old.created_by)
        t.secrets[name] = stored
        return stored

    async def get_secrets(self, tenant: str, names: Sequence[str]) -> dict[str, StoredSecret]:
        t = await self._tables(tenant)
        return {n: t.secrets[n] for n in set(names) if n in t.secrets}

    async def list_secrets(self, tenant: str) -> list[StoredSecret]:
        t = await self._tables(tenant)
        return [t.secrets[n] for n in sorted(t.secrets)]

    async def delete_secret(self, tenant: str, name: str) -> None:
        t = await self._tables(tenant)
        if t.secrets.pop(name, None) is None:
            raise secret_not_found(tenant, name)

    async def reseal_secrets(self, tenant: str, changes: Sequence[tuple[str, bytes, bytes]]) -> int:
        t = await self._tables(tenant)
        done = 0
        for name, old, new in changes:
            current = t.secrets.get(name)
            if current is not None and current.ciphertext == old:
                t.secrets[name] = StoredSecret(
                    name, bytes(new), current.created_at, current.updated_at, current.version, current.created_by
                )
                done += 1
        return done


__all__ = ["MemorySecrets"]
