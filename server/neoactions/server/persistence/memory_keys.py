"""API keys of :class:`~neoactions.server.persistence.memory.MemoryStore` (``KeyStore``),
shared through :class:`MemoryData` as the SQL stores share the admin tenant."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from neoactions.domain.keys import ApiKey
from neoactions.server.persistence.codec import as_utc, page_limit, to_micros
from neoactions.server.persistence.memory_tables import MemoryData
from neoactions.server.persistence.sql_keys import key_not_found, next_token, page_position
from neoactions.server.store import DEFAULT_PAGE_SIZE, Page


class MemoryKeys:
    """``KeyStore`` over the data of the concrete in-memory store."""

    data: MemoryData

    async def _round_trip(self) -> None:
        raise NotImplementedError

    async def create_api_key(self, key: ApiKey, token_hash: str, *, only_if_none: bool = False) -> bool:
        await self._round_trip()
        if only_if_none and self.data.api_keys:
            return False
        stored = dataclasses.replace(key, created_at=as_utc(key.created_at))
        self.data.api_keys[key.id] = (stored, token_hash)
        return True

    async def get_api_key(self, key_id: str) -> tuple[ApiKey, str] | None:
        await self._round_trip()
        found = self.data.api_keys.get(key_id)
        return None if found is None else (dataclasses.replace(found[0]), found[1])

    async def list_api_keys(
        self, tenant: str, page_size: int = DEFAULT_PAGE_SIZE, page_token: str = ""
    ) -> Page[ApiKey]:
        limit = page_limit(page_size)
        after = page_position(page_token)
        await self._round_trip()
        keys = sorted(
            (k for k, _ in self.data.api_keys.values() if not tenant or k.tenant == tenant),
            key=lambda k: (to_micros(k.created_at), k.id),
        )
        if after is not None:
            keys = [k for k in keys if (to_micros(k.created_at), k.id) > after]
        items = [dataclasses.replace(k) for k in keys[:limit]]
        return Page(items, next_token(items, len(keys) > limit))

    async def revoke_api_key(self, key_id: str, at: datetime) -> ApiKey:
        await self._round_trip()
        found = self.data.api_keys.get(key_id)
        if found is None:
            raise key_not_found(key_id)
        if found[0].revoked_at is None:
            found[0].revoked_at = as_utc(at)
        return dataclasses.replace(found[0])

    async def touch_api_keys(self, used: dict[str, datetime]) -> None:
        await self._round_trip()
        for key_id, at in used.items():
            found = self.data.api_keys.get(key_id)
            if found is not None:
                found[0].last_used_at = as_utc(at)


__all__ = ["MemoryKeys"]
