"""The server's Redis clients: redis-py's asyncio client, with commands packed by hiredis.

redis-py parses replies with hiredis when it is installed, but its asyncio connections
still pack every command in Python — one encode and two joins per argument. Flow
control sends three scripts of about ten arguments for every attempt, so packing was
most of the client's cost. Here the connections of the pool pack with
``hiredis.pack_command`` (C), as redis-py's own synchronous connections do.
"""

from __future__ import annotations

from typing import Any

import hiredis
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import DataError


class _HiredisPacking:
    """Mixed into the pool's connection class (TCP, TLS or unix socket alike)."""

    def pack_command(self, *args: Any) -> list[bytes]:
        first = args[0]
        # a command name of several words ("SCRIPT LOAD") goes as separate arguments
        if isinstance(first, str):
            args = (*first.encode().split(), *args[1:])
        elif b" " in first:
            args = (*first.split(), *args[1:])
        try:
            return [hiredis.pack_command(args)]
        except TypeError as exc:
            raise DataError(str(exc)) from exc


_PACKING: dict[type[AbstractConnection], type[AbstractConnection]] = {}


def _packing(cls: type[AbstractConnection]) -> type[AbstractConnection]:
    if cls not in _PACKING:
        _PACKING[cls] = type(f"Hiredis{cls.__name__}", (_HiredisPacking, cls), {})
    return _PACKING[cls]


def redis_from_url(url: str, **options: Any) -> Redis:
    """``redis.asyncio.Redis.from_url(url, **options)`` whose connections pack with hiredis."""
    client = Redis.from_url(url, **options)
    pool = client.connection_pool
    pool.connection_class = _packing(pool.connection_class)
    return client


__all__ = ["redis_from_url"]
