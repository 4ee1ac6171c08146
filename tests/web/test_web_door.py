"""The HTTP surface enters through the engine's one door, as the gRPC servicers do: every
``self._engine.<name>`` in server/neoactions/server/web is an operation taking the caller first
(or the settings, or ``authenticate``, which establishes the caller)."""

from __future__ import annotations

import inspect
from pathlib import Path

from neoactions.server.engine import Engine
from tests.unit.test_engine_door import engine_uses

WEB = Path(__file__).resolve().parents[2] / "server" / "neoactions" / "server" / "web"
NOT_OPERATIONS = {"settings", "authenticate"}


def test_the_web_package_calls_only_engine_operations() -> None:
    used = set().union(*(engine_uses(p.read_text()) for p in WEB.glob("*.py")))
    assert {"publish", "list_executions", "watch", "requeue_dead_letters"} <= used, "the check found too little"
    for name in sorted(used - NOT_OPERATIONS):
        member = getattr(Engine, name, None)
        assert callable(member), f"the web package reaches past the engine: self._engine.{name}"
        params = list(inspect.signature(member).parameters)
        assert params[1:2] == ["caller"], f"Engine.{name} does not take the caller first: {params}"
    for path in WEB.glob("*.py"):
        assert ".store." not in path.read_text().replace("neoactions.server.store", ""), path.name
