"""Input limits: actions per tenant, conditions per action, and the settings that hold them
(the message size is held by a real server in tests/e2e/test_tls.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from neoactions.domain.errors import InvalidArgument, ResourceExhausted
from neoactions.domain.model import ADMIN_TENANT, Action, ConditionGroup, FieldCondition, HandlerSpec, Trigger
from neoactions.server.access import Caller
from neoactions.server.bus import InProcessUpdateBus
from neoactions.server.engine import Engine
from neoactions.server.persistence.memory import MemoryStore
from neoactions.server.runners import ExecutionContext, HandlerRegistry, HandlerType, Result, RunnerUpdate
from neoactions.server.settings import Settings

CALLER = Caller()


class _Noop:
    async def execute(self, config: dict[str, Any], data: Any, ctx: ExecutionContext) -> AsyncIterator[RunnerUpdate]:
        yield Result(None)


async def _engine(tmp_path: Path, **settings: Any) -> tuple[Engine, MemoryStore]:
    store = MemoryStore()
    await store.open()
    registry = HandlerRegistry()
    registry.register(HandlerType("noop", _Noop()))
    return Engine(store, registry, InProcessUpdateBus(), Settings(data_dir=tmp_path, **settings)), store


@pytest.fixture
async def small(tmp_path: Path) -> AsyncIterator[Engine]:
    engine, store = await _engine(tmp_path, max_actions_per_tenant=3, max_conditions_per_action=5)
    try:
        yield engine
    finally:
        await store.close()


def _action(name: str, conditions: list[Any] | None = None) -> Action:
    return Action(
        name=name,
        trigger=Trigger(["order.created"], conditions=conditions or []),
        handler=HandlerSpec("noop"),
        tenant=ADMIN_TENANT,
    )


def _fields(n: int) -> list[Any]:
    return [FieldCondition(f"data.f{i}", "exists") for i in range(n)]


async def test_a_tenant_holds_at_most_max_actions_per_tenant(small: Engine) -> None:
    for i in range(3):
        await small.create_action(CALLER, _action(f"a{i}"))
    for validate_only in (True, False):
        with pytest.raises(ResourceExhausted) as refused:
            await small.create_action(CALLER, _action("a3"), validate_only=validate_only)
        assert refused.value.reason == "TOO_MANY_ACTIONS"
        assert "max_actions_per_tenant" in refused.value.message and "(3)" in refused.value.message
    assert [a.name for a in (await small.list_actions(CALLER, ADMIN_TENANT, 10, "")).items] == ["a0", "a1", "a2"]
    # room again once one is deleted; updating an existing action is never refused
    await small.update_action(CALLER, _action("a0", _fields(1)), None)
    await small.delete_action(CALLER, ADMIN_TENANT, "a1")
    await small.create_action(CALLER, _action("a3"))


@pytest.mark.parametrize(
    "conditions",
    [
        _fields(6),
        # a group counts, and so does each of its members: 1 + 5
        [ConditionGroup("any", _fields(5))],
        [ConditionGroup("all", [ConditionGroup("not", _fields(1)), *_fields(3)])],  # 1 + 1 + 1 + 3
    ],
    ids=["flat", "group", "nested"],
)
async def test_a_trigger_holds_at_most_max_conditions_per_action(small: Engine, conditions: list[Any]) -> None:
    with pytest.raises(InvalidArgument) as refused:
        await small.create_action(CALLER, _action("many", conditions))
    assert [v.field for v in refused.value.violations] == ["trigger.conditions"]
    assert "max_conditions_per_action" in refused.value.message
    with pytest.raises(InvalidArgument):
        await small.update_action(CALLER, _action("many", conditions), None)
    assert (await small.list_actions(CALLER, ADMIN_TENANT, 10, "")).items == []


async def test_exactly_the_limit_of_conditions_is_accepted(small: Engine) -> None:
    await small.create_action(CALLER, _action("flat", _fields(5)))
    await small.create_action(CALLER, _action("grouped", [ConditionGroup("any", _fields(4))]))


def test_the_defaults_are_the_documented_ones() -> None:
    s = Settings()
    assert (s.max_actions_per_tenant, s.max_conditions_per_action, s.max_message_bytes) == (10_000, 100, 32 << 20)
    assert (s.tls_cert, s.tls_key, s.tls_client_ca) == ("", "", "")


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"tls_cert": "server.pem"}, "tls_key"),
        ({"tls_key": "server.key"}, "tls_cert"),
        ({"tls_client_ca": "ca.pem"}, "tls_client_ca"),
        ({"max_message_bytes": 0}, "max_message_bytes"),
        ({"max_actions_per_tenant": 0}, "max_actions_per_tenant"),
        ({"max_conditions_per_action": -1}, "max_conditions_per_action"),
    ],
)
def test_inconsistent_settings_are_refused_naming_the_setting(overrides: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        Settings.load(None, **overrides)


def test_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEOACTIONS_MAX_ACTIONS_PER_TENANT", "7")
    monkeypatch.setenv("NEOACTIONS_MAX_MESSAGE_BYTES", "65536")
    monkeypatch.setenv("NEOACTIONS_TLS_CERT", "/etc/neoactions/server.pem")
    monkeypatch.setenv("NEOACTIONS_TLS_KEY", "/etc/neoactions/server.key")
    s = Settings.load(None)
    assert (s.max_actions_per_tenant, s.max_message_bytes) == (7, 65536)
    assert (s.tls_cert, s.tls_key) == ("/etc/neoactions/server.pem", "/etc/neoactions/server.key")
