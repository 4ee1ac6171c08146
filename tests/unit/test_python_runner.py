from __future__ import annotations

import sys
from datetime import timedelta

import pytest

from neoactions.domain.errors import InvalidArgument
from neoactions.domain.model import utcnow
from neoactions.sandboxes.python import register
from neoactions.sandboxes.python.runner import PythonRunner, TrustedHandlers, parse_modules
from neoactions.server.runners import ExecutionContext, Failure, HandlerRegistry, Log, Progress, Result
from neoactions.server.settings import Settings


def ctx() -> ExecutionContext:
    return ExecutionContext(
        tenant="t",
        execution_id="e1",
        action_name="a",
        action_version=1,
        attempt=2,
        idempotency_key="key-1",
        deadline=utcnow() + timedelta(seconds=5),
    )


@pytest.fixture
def registry() -> HandlerRegistry:
    reg = HandlerRegistry({"python_handler_modules": ["shop"]})
    register(reg)
    return reg


async def run(registry: HandlerRegistry, function: str, data: object, **config: object) -> list[object]:
    runner = registry.get("python").runner
    return [u async for u in runner.execute({"function": function, **config}, data, ctx())]


async def test_sync_function_with_logs(registry: HandlerRegistry) -> None:
    updates = await run(registry, "shop.handlers:alert", {"order_id": 7, "amount": 3}, channel="#x")
    assert updates[0] == Log("alerting about order 7")
    assert isinstance(updates[-1], Result)
    assert updates[-1].output["idempotency_key"] == "key-1" and updates[-1].output["attempt"] == 2


async def test_class_handler_with_progress(registry: HandlerRegistry) -> None:
    updates = await run(registry, "shop.handlers:Greeter", {"name": "x"})
    assert updates == [Progress(0.5, "half way"), Result({"message": "hello x"})]


async def test_raising_is_a_failure_with_stack(registry: HandlerRegistry) -> None:
    [failure] = await run(registry, "shop.handlers:boom", {})
    assert isinstance(failure, Failure)
    assert failure.error.type == "ValueError" and "Traceback" in failure.error.stack
    assert failure.error.retryable


def test_config_is_validated_on_save(registry: HandlerRegistry) -> None:
    ht = registry.get("python")
    with pytest.raises(InvalidArgument) as err:
        ht.check_config({})
    assert err.value.reason == "INVALID_HANDLER_CONFIG"
    with pytest.raises(InvalidArgument) as err:
        ht.check_config({"function": "shop.handlers:nothing_here"})
    assert err.value.reason == "UNKNOWN_HANDLER_FUNCTION"
    assert err.value.violations[0].field == "handler.config.function"
    with pytest.raises(InvalidArgument) as err:
        registry.get("telepathy")
    assert err.value.reason == "UNKNOWN_HANDLER_TYPE"


def refusal(registry: HandlerRegistry, function: str) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as err:
        registry.get("python").check_config({"function": function})
    return err.value


@pytest.mark.parametrize(
    "function",
    [
        "unittest:main",  # imported and instantiated on save, it ended the server
        "venv.__main__:main",
        "os:system",
        "antigravity:fly",
        "no_such_module:fn",
        "shopping.handlers:alert",  # a listed module's prefix, not a submodule
        "shop.handlers:os.getpid",  # an approved module's import of os
        "shop.handlers:asyncio.sleep",
        "shop.handlers:Any",  # defined elsewhere (typing), imported into the approved module
        "builtins:exec",
        "shop.handlers:alert\n",
        "some-entry-point-nobody-registered",
    ],
)
def test_save_refuses_a_function_the_operator_did_not_approve(registry: HandlerRegistry, function: str) -> None:
    before = set(sys.modules)
    err = refusal(registry, function)
    assert err.reason == "UNKNOWN_HANDLER_FUNCTION"
    assert err.violations[0].field == "handler.config.function"
    assert "NEOACTIONS_PYTHON_HANDLER_MODULES" in err.message or "has no attribute" in err.message
    # nothing outside the approved modules was imported to decide
    assert {m for m in set(sys.modules) - before if not m.startswith("shop")} == set()


def test_save_imports_an_approved_module_but_instantiates_nothing(registry: HandlerRegistry) -> None:
    registry.get("python").check_config({"function": "shop.probes:Counted"})
    from shop.probes import Counted  # type: ignore[import-not-found]

    assert Counted.instances == 0
    assert refusal(registry, "shop.probes:not_callable").reason == "UNKNOWN_HANDLER_FUNCTION"


def test_an_approved_module_that_exits_on_import_is_refused_not_obeyed(registry: HandlerRegistry) -> None:
    err = refusal(registry, "shop.exits_on_import:handler")
    assert "SystemExit" in err.message and err.violations[0].field == "handler.config.function"


@pytest.mark.parametrize("function", ["shop.probes:exits", "shop.probes:interrupts"])
async def test_a_handler_raising_a_base_exception_fails_its_attempt(registry: HandlerRegistry, function: str) -> None:
    [failure] = await run(registry, function, {})
    assert isinstance(failure, Failure)
    assert failure.error.type in ("SystemExit", "KeyboardInterrupt")


async def test_run_time_refuses_what_is_no_longer_approved() -> None:
    runner = PythonRunner(trusted=TrustedHandlers(["billing"]))
    try:
        [failure] = [u async for u in runner.execute({"function": "shop.handlers:alert"}, {}, ctx())]
    finally:
        await runner.aclose()
    assert isinstance(failure, Failure) and failure.error.type == "handler_not_found"
    assert "not an approved handler" in failure.error.message


async def test_entry_points_by_name_or_by_their_target() -> None:
    trusted = TrustedHandlers((), {"greet": "shop.handlers:Greeter"})
    assert trusted.target("greet") == ("shop.handlers:Greeter", True)
    assert trusted.target("shop.handlers:Greeter") == ("shop.handlers:Greeter", True)
    with pytest.raises(InvalidArgument):
        trusted.target("shop.handlers:alert")
    runner = PythonRunner(trusted=trusted)
    try:
        runner.validate({"function": "greet"})
        updates = [u async for u in runner.execute({"function": "greet"}, {"name": "ep"}, ctx())]
    finally:
        await runner.aclose()
    assert updates[-1] == Result({"message": "hello ep"})


def test_a_listed_module_allows_its_submodules_only() -> None:
    trusted = TrustedHandlers(["shop"])
    assert trusted.approves_module("shop") and trusted.approves_module("shop.handlers")
    assert not trusted.approves_module("shopping") and not trusted.approves_module("sho")


def test_the_setting_is_comma_separated_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEOACTIONS_PYTHON_HANDLER_MODULES", " shop, billing.handlers ,")
    assert Settings.load().python_handler_modules == ["shop", "billing.handlers"]
    assert Settings().python_handler_modules == []
    assert parse_modules("a,b") == parse_modules(["a", "b"]) == ["a", "b"]


async def _run(runner: PythonRunner, function: str, tenant: str) -> list[object]:
    context = ExecutionContext(
        tenant=tenant,
        execution_id="x",
        action_name="a",
        action_version=1,
        attempt=1,
        idempotency_key="k",
        deadline=utcnow() + timedelta(seconds=10),
    )
    return [u async for u in runner.execute({"function": function}, {}, context)]


async def test_one_tenant_cannot_hold_every_thread() -> None:
    """Four threads, three per tenant: a tenant whose handlers block holds three, and another
    tenant's handler runs on the fourth at once."""
    import asyncio

    from shop import probes

    probes.GATE.clear()
    runner = PythonRunner(4, TrustedHandlers(frozenset({"shop"})), tenant_threads=3)
    busy = [asyncio.create_task(_run(runner, "shop.probes:blocked", "noisy")) for _ in range(6)]
    try:
        async with asyncio.timeout(5):
            other = await _run(runner, "shop.probes:instant", "quiet")
        assert isinstance(other[-1], Result) and other[-1].output == {"tenant": "quiet"}
        assert not any(task.done() for task in busy)
    finally:
        probes.GATE.set()
        results = await asyncio.gather(*busy)
        await runner.aclose()
    assert all(isinstance(r[-1], Result) for r in results)
