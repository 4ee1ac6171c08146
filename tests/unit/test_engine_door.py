"""The engine is the one door from the API: servicers call only its operations, and every
operation takes the caller first, so the access policy has one place to stand."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from types import SimpleNamespace

import pytest

from neoactions.domain.errors import NotFound
from neoactions.server.access import Caller, Permission
from neoactions.server.engine import Engine

API = Path(__file__).resolve().parents[2] / "server" / "neoactions" / "server" / "api"
#: what a servicer may read off the engine that is not an operation
CONFIGURATION = {"settings"}


def engine_uses(source: str) -> set[str]:
    """Names used as ``self._engine.<name>`` in a module."""
    used = set()
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "_engine"
            and isinstance(node.value.value, ast.Name)
            and node.value.value.id == "self"
        ):
            used.add(node.attr)
    return used


def all_engine_uses() -> set[str]:
    return set().union(*(engine_uses(p.read_text()) for p in API.glob("*.py")))


def test_servicers_call_only_operations_that_take_the_caller() -> None:
    used = all_engine_uses() - CONFIGURATION
    assert used, "the servicers were not found"
    for name in sorted(used):
        member = getattr(Engine, name, None)
        assert callable(member), f"servicers reach past the engine: self._engine.{name}"
        params = list(inspect.signature(member).parameters)
        assert params[1:2] == ["caller"], f"Engine.{name} does not take the caller first: {params}"


def test_the_check_sees_a_servicer_reaching_past_the_engine() -> None:
    source = "class S:\n    async def Get(self):\n        return await self._engine.store.get_event('t', 'e')\n"
    assert engine_uses(source) == {"store"}


class _OnlyTenantA:
    def check(self, caller: Caller, tenant: str, permission: Permission) -> None:
        if tenant != "a":
            raise NotFound(f"tenant {tenant!r} not found")


def operations() -> list[str]:
    return [
        name
        for name, member in inspect.getmembers(Engine, callable)
        if not name.startswith("_") and list(inspect.signature(member).parameters)[1:2] == ["caller"]
    ]


@pytest.mark.parametrize("name", operations())
async def test_every_operation_asks_the_access_policy_first(name: str) -> None:
    """With a policy that sees only tenant 'a', every operation on tenant 'b' is refused
    before anything else happens (this engine has no store: reaching one would fail
    differently)."""
    engine = Engine.__new__(Engine)
    engine.access = _OnlyTenantA()
    params = list(inspect.signature(getattr(Engine, name)).parameters)[2:]
    where = SimpleNamespace(tenant="b")
    args = {p: "b" if p == "tenant" else where if p in ("action", "filter") else None for p in params}
    call = getattr(engine, name)(Caller(), **args)
    with pytest.raises(NotFound):
        if inspect.isasyncgen(call):
            await anext(call)
        else:
            await call


def test_the_door_has_the_operations_the_api_needs() -> None:
    assert {"publish", "create_action", "list_executions", "watch", "execute", "create_tenant"} <= set(operations())
