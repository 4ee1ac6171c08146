from __future__ import annotations

from datetime import timedelta

import pytest

from neoactions.sandboxes.python import register
from neoactions.server.errors import InvalidArgument
from neoactions.server.model import utcnow
from neoactions.server.runners import ExecutionContext, Failure, HandlerRegistry, Log, Progress, Result


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
    reg = HandlerRegistry()
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
