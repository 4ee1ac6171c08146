"""Two server processes on one PostgreSQL database: an action changed through one
takes effect in the other within a second (LISTEN/NOTIFY)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from neoactions.client import AsyncClient
from tests.e2e.conftest import ServerProcess

ACTION = {
    "name": "notify",
    "trigger": {"event_types": ["orders.created"]},
    "handler": {"type": "python", "config": {"function": "shop.handlers:alert"}},
}


@pytest.fixture
def second_server(store_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    if not store_url.startswith("postgresql://"):
        pytest.skip("several processes share a database only on PostgreSQL")
    proc = ServerProcess(store_url, tmp_path / "second.log")
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


async def matched_within(client: AsyncClient, expected: int, seconds: float = 1.0) -> float:
    """Publish until the event matches ``expected`` actions; return how long it took."""
    start = time.monotonic()
    while True:
        result = await client.publish("orders.created", {"amount": 1})
        if len(result.executions) == expected:
            return time.monotonic() - start
        if time.monotonic() - start > seconds:
            raise AssertionError(f"still {len(result.executions)} matches after {seconds}s, expected {expected}")
        await asyncio.sleep(0.02)


async def test_changes_reach_the_other_process(server: ServerProcess, second_server: ServerProcess) -> None:
    async with AsyncClient(server.target) as a, AsyncClient(second_server.target) as b:
        assert len((await b.publish("orders.created", {"amount": 1})).executions) == 0  # b has loaded admin
        await a.create_action(ACTION)
        await matched_within(b, 1)
        await a.disable_action("notify")
        await matched_within(b, 0)
        await a.enable_action("notify")
        await matched_within(b, 1)
        await a.delete_action("notify")
        await matched_within(b, 0)


async def test_a_key_revoked_through_one_process_is_refused_by_the_other_within_a_second(
    server: ServerProcess, second_server: ServerProcess
) -> None:
    from neoactions.domain.errors import Unauthenticated

    async with AsyncClient(server.target) as admin:
        key, token = await admin.create_api_key("shared", "reader")
        async with AsyncClient(second_server.target, api_key=token) as elsewhere:
            await elsewhere.list_actions()  # the other process has read (and cached) the key
            await admin.revoke_api_key(key.id)
            revoked_at = time.monotonic()
            while True:
                try:
                    await elsewhere.list_actions()
                except Unauthenticated:
                    break
                assert time.monotonic() - revoked_at < 1.0, "the other process still took the revoked key"
                await asyncio.sleep(0.05)
