"""Secrets in attempts, in process over the in-memory store: resolved at render time,
masked in whatever comes back, and an attempt whose secret is gone fails cleanly."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from neoactions.domain.errors import FailedPrecondition, InvalidArgument
from neoactions.domain.model import ADMIN_TENANT, Action, ExecutionStatus, HandlerSpec, Trigger
from neoactions.server.access import Caller
from neoactions.server.bus import InProcessUpdateBus
from neoactions.server.engine import Engine
from neoactions.server.persistence.memory import MemoryStore
from neoactions.server.runners import HandlerRegistry, HandlerType, Log, Result
from neoactions.server.settings import Settings

CALLER = Caller()
VALUE = "s3cr3t-value"


class Echo:
    """Logs and returns its rendered config."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    async def execute(self, config: dict[str, Any], data: Any, ctx: Any) -> AsyncIterator[Any]:
        self.seen.append(config)
        yield Log(f"config {config}")
        yield Result({"config": config})


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[tuple[Engine, Echo]]:
    store = MemoryStore()
    await store.open()
    echo = Echo()
    registry = HandlerRegistry()
    registry.register(HandlerType("echo", echo))
    settings = Settings(data_dir=tmp_path, master_key=base64.b64encode(os.urandom(32)).decode())
    e = Engine(store, registry, InProcessUpdateBus(), settings)
    await e.start()
    try:
        yield e, echo
    finally:
        await e.stop(1.0)
        await store.close()


def action(name: str, config: dict[str, Any]) -> Action:
    return Action(
        tenant=ADMIN_TENANT, name=name, trigger=Trigger(event_types=["x"]), handler=HandlerSpec("echo", config)
    )


async def run(e: Engine, name: str) -> Any:
    updates = [u async for u, _ in e.execute(CALLER, ADMIN_TENANT, {}, action_name=name)]
    return updates


async def test_the_runner_gets_the_value_and_everything_back_is_masked(engine: tuple[Engine, Echo]) -> None:
    e, echo = engine
    await e.set_secret(CALLER, ADMIN_TENANT, "tok", VALUE)
    await e.create_action(CALLER, action("echo", {"auth": "Bearer {{ secrets.tok }}", "n": "{{ secrets['tok'] }}"}))
    updates = await run(e, "echo")
    assert echo.seen == [{"auth": f"Bearer {VALUE}", "n": VALUE}]
    assert updates[-1].status is ExecutionStatus.SUCCEEDED
    assert updates[-1].output == {"config": {"auth": "Bearer ***", "n": "***"}}
    assert any(u.message == "config {'auth': 'Bearer ***', 'n': '***'}" for u in updates)
    assert VALUE not in repr(updates)
    # a new value is used from the next attempt on (this process forgets what it opened)
    await e.set_secret(CALLER, ADMIN_TENANT, "tok", "second-value")
    await run(e, "echo")
    assert echo.seen[-1]["n"] == "second-value"


async def test_a_render_error_holding_the_value_is_masked(engine: tuple[Engine, Echo]) -> None:
    e, _ = engine
    await e.set_secret(CALLER, ADMIN_TENANT, "tok", "not-a-number")
    await e.create_action(CALLER, action("bad", {"n": "{{ data[secrets.tok].x }}"}))
    final = (await run(e, "bad"))[-1]
    assert final.status is ExecutionStatus.FAILED and final.error.type == "template_error"
    assert "not-a-number" not in final.error.message
    assert "'***'" in final.error.message  # the render named the value: masked


async def test_a_secret_deleted_after_save_fails_the_attempt(engine: tuple[Engine, Echo]) -> None:
    e, echo = engine
    await e.set_secret(CALLER, ADMIN_TENANT, "gone", "v")
    await e.create_action(CALLER, action("uses-gone", {"t": "{{ secrets.gone }}"}))
    await e.delete_secret(CALLER, ADMIN_TENANT, "gone")
    final = (await run(e, "uses-gone"))[-1]
    assert final.status is ExecutionStatus.FAILED
    assert final.error.type == "secret_error" and not final.error.retryable
    assert "'gone' does not exist" in final.error.message
    assert echo.seen == []
    with pytest.raises(InvalidArgument) as refused:  # and saving it again is refused
        await e.update_action(CALLER, action("uses-gone", {"t": "{{ secrets.gone }}"}), None)
    assert refused.value.violations[0].field == "handler.config.t"


async def test_secret_names_and_values_are_checked(engine: tuple[Engine, Echo]) -> None:
    e, _ = engine
    for name, value, field in [("1bad", "v", "secret_id"), ("has-dash", "v", "secret_id"), ("ok", "", "value")]:
        with pytest.raises(InvalidArgument) as refused:
            await e.set_secret(CALLER, ADMIN_TENANT, name, value)
        assert refused.value.violations[0].field == field
    with pytest.raises(InvalidArgument):
        await e.set_secret(CALLER, ADMIN_TENANT, "big", "x" * (64 * 1024 + 1))
    page = await e.list_secrets(CALLER, ADMIN_TENANT)
    assert page.items == []


async def test_postgres_without_a_master_key_says_how_to_configure_one(tmp_path: Path) -> None:
    store = MemoryStore()
    await store.open()
    settings = Settings(data_dir=tmp_path, database_url="postgresql://db/x")
    e = Engine(store, HandlerRegistry(), InProcessUpdateBus(), settings)
    with pytest.raises(FailedPrecondition) as refused:
        await e.set_secret(CALLER, ADMIN_TENANT, "tok", "v")
    assert refused.value.reason == "MASTER_KEY_UNAVAILABLE" and "NEOACTIONS_MASTER_KEY" in refused.value.message
    await store.close()


async def test_list_pages_by_name(engine: tuple[Engine, Echo]) -> None:
    e, _ = engine
    for name in ("c", "a", "b"):
        await e.set_secret(CALLER, ADMIN_TENANT, name, f"value-{name}")
    first = await e.list_secrets(CALLER, ADMIN_TENANT, page_size=2)
    second = await e.list_secrets(CALLER, ADMIN_TENANT, page_size=2, page_token=first.next_page_token)
    assert [s.name for s in first.items] == ["a", "b"] and first.next_page_token
    assert [s.name for s in second.items] == ["c"] and not second.next_page_token
