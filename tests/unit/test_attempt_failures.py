"""What an attempt ends with when rendering or a runner's own code raises instead of returning
an outcome: a classified failure (non-retryable unless clearly transient), counted as an
attempt, ending the execution under its retry policy, and the Execute stream with it. An
engine on the embedded store, in-process."""

from __future__ import annotations

import asyncio
import errno
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from neoactions.domain.model import (
    ADMIN_TENANT,
    Action,
    Attempt,
    Event,
    Execution,
    ExecutionError,
    ExecutionStatus,
    ExecutionUpdate,
    HandlerSpec,
    RetryPolicy,
    Trigger,
    utcnow,
)
from neoactions.server.access import Caller
from neoactions.server.bus import InProcessUpdateBus
from neoactions.server.engine import Engine
from neoactions.server.engine.attempts import retry_decision
from neoactions.server.persistence import open_store
from neoactions.server.retry import MAX_RETRY_DELAY_MS, classify_exception, retry_delay_ms
from neoactions.server.runners import ExecutionContext, HandlerRegistry, HandlerType, Result, RunnerUpdate
from neoactions.server.settings import Settings

RETRIES = RetryPolicy(max_retries=2, initial_delay_ms=1, max_delay_ms=5, jitter=False)


class _Raising:
    """A runner whose own code raises ``make()`` (unless the config says ``ok``)."""

    def __init__(self) -> None:
        self.make: Callable[[], BaseException] = lambda: IndexError("list index out of range")
        self.output: Any = {"ok": True}
        self.calls = 0

    async def execute(self, config: dict[str, Any], data: Any, ctx: ExecutionContext) -> AsyncIterator[RunnerUpdate]:
        self.calls += 1
        if config.get("ok"):
            yield Result(self.output)
            return
        raise self.make()


class _Rig:
    def __init__(self, engine: Engine, runner: _Raising) -> None:
        self.engine, self.runner = engine, runner

    async def action(self, name: str, config: dict[str, Any], retry: RetryPolicy = RETRIES) -> Action:
        action = Action(
            name=name,
            trigger=Trigger([f"{name}.happened"]),
            handler=HandlerSpec("raising", config),
            retry_policy=retry,
            timeout_seconds=5.0,
        )
        return await self.engine.actions.create(action)

    async def published(self, name: str, data: dict[str, Any] | None = None) -> Execution:
        """Publish an event for ``name`` and wait until its execution is final."""
        event = Event("", ADMIN_TENANT, f"{name}.happened", data=data or {})
        published = await self.engine.publish(Caller(), ADMIN_TENANT, [event])
        execution_id = published[0].executions[0].id
        async with asyncio.timeout(10.0):
            while True:
                ex = await self.engine.get_execution(Caller(), ADMIN_TENANT, execution_id)
                if ex.status.is_final:
                    return ex
                await asyncio.sleep(0.01)

    async def executed(self, name: str) -> list[ExecutionUpdate]:
        """Every update of an Execute call of ``name``; the stream must end by itself."""
        updates: list[ExecutionUpdate] = []
        async with asyncio.timeout(10.0):
            async for update, _ in self.engine.execute(Caller(), ADMIN_TENANT, {}, action_name=name):
                updates.append(update)
        return updates


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[_Rig]:
    store = open_store(tmp_path / "data")
    await store.open()
    runner = _Raising()
    registry = HandlerRegistry()
    registry.register(HandlerType("raising", runner))
    settings = Settings(data_dir=tmp_path, concurrency=4, poll_interval_seconds=0.02)
    engine = Engine(store, registry, InProcessUpdateBus(), settings)
    await engine.start()
    try:
        yield _Rig(engine, runner)
    finally:
        await engine.stop(5.0)
        await store.close()


@pytest.mark.parametrize(
    ("template", "raised"),
    [
        ("{{ '{0}'.format_map(data) }}", "index out of range"),  # IndexError
        ("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", "recursion"),  # RecursionError
        ("{% for i in range(data.n) %}{% for j in range(data.n) %}{% endfor %}{% endfor %}", "loop steps"),
    ],
)
async def test_a_template_that_breaks_fails_its_execution_at_once(rig: _Rig, template: str, raised: str) -> None:
    await rig.action("poison", {"ok": True, "channel": template})
    ex = await rig.published("poison", {"n": 1000})
    assert ex.status is ExecutionStatus.FAILED
    assert ex.error is not None and ex.error.type == "template_error" and not ex.error.retryable
    assert raised in ex.error.message
    assert [a.status for a in ex.attempts] == [ExecutionStatus.FAILED]  # one attempt, counted
    assert rig.runner.calls == 0


async def test_a_template_that_breaks_ends_the_execute_stream(rig: _Rig) -> None:
    await rig.action("poison", {"ok": True, "channel": "{{ '{0}'.format_map({}) }}"})
    updates = await rig.executed("poison")
    assert updates[-1].kind.is_final and updates[-1].status is ExecutionStatus.FAILED
    assert updates[-1].error is not None and updates[-1].error.type == "template_error"


@pytest.mark.parametrize(
    "make",
    [
        lambda: IndexError("list index out of range"),
        lambda: MemoryError(),
        lambda: RecursionError("maximum recursion depth exceeded"),
        lambda: SystemExit(3),
        lambda: KeyboardInterrupt(),
    ],
)
async def test_what_escapes_a_runner_is_a_non_retryable_runner_error(
    rig: _Rig, make: Callable[[], BaseException]
) -> None:
    rig.runner.make = make
    await rig.action("poison", {})
    ex = await rig.published("poison")
    assert ex.status is ExecutionStatus.FAILED
    assert ex.error is not None and ex.error.type == "runner_error" and not ex.error.retryable
    assert ex.error.message.startswith(type(make()).__name__)
    assert len(ex.attempts) == 1 and rig.runner.calls == 1
    # the worker survived it: the next execution runs
    await rig.action("fine", {"ok": True})
    assert (await rig.published("fine")).status is ExecutionStatus.SUCCEEDED


async def test_a_transient_runner_error_is_retried_under_the_policy_then_dead_lettered(rig: _Rig) -> None:
    rig.runner.make = lambda: ConnectionResetError(errno.ECONNRESET, "connection reset by peer")
    await rig.action("flaky", {})
    ex = await rig.published("flaky")
    assert ex.status is ExecutionStatus.DEAD_LETTERED
    assert ex.error is not None and ex.error.retryable
    assert len(ex.attempts) == 1 + RETRIES.max_retries == rig.runner.calls


async def test_a_transient_runner_error_ends_the_execute_stream_dead_lettered(rig: _Rig) -> None:
    # (a rig of its own: the failures above would have opened the target's breaker)
    rig.runner.make = lambda: ConnectionResetError(errno.ECONNRESET, "connection reset by peer")
    await rig.action("flaky", {})
    updates = await rig.executed("flaky")
    assert updates[-1].status is ExecutionStatus.DEAD_LETTERED
    assert [u.attempt for u in updates if u.kind.value == "attempt_failed"] == [1, 2]


async def test_the_execute_stream_ends_when_the_run_itself_fails(rig: _Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    await rig.action("fine", {"ok": True})

    async def broken(*args: Any, **kwargs: Any) -> Execution:
        raise RuntimeError("the store went away")

    monkeypatch.setattr(rig.engine.dispatcher, "run", broken)
    with pytest.raises(RuntimeError, match="store went away"):
        await rig.executed("fine")


@pytest.mark.parametrize(
    "output",
    [float("nan"), {"x": [1, float("inf")]}, {"text": "a\x00b"}, ["\ud800"], {"not json": object()}],
)
async def test_an_output_no_store_can_hold_fails_its_attempt_alone(rig: _Rig, output: Any) -> None:
    rig.runner.output = output
    await rig.action("odd", {"ok": True})
    ex = await rig.published("odd")
    assert ex.status is ExecutionStatus.FAILED
    assert ex.error is not None and ex.error.type == "invalid_output" and not ex.error.retryable
    assert len(ex.attempts) == 1
    rig.runner.output = {"ok": True, "text": "a\\u0000b"}  # an escaped backslash, not a NUL
    assert (await rig.published("odd")).status is ExecutionStatus.SUCCEEDED


async def test_error_text_no_store_can_hold_is_cleaned(rig: _Rig) -> None:
    rig.runner.make = lambda: ValueError("bad\x00byte \udc80")
    await rig.action("poison", {})
    ex = await rig.published("poison")
    assert ex.status is ExecutionStatus.FAILED and ex.error is not None
    assert "\x00" not in ex.error.message and "\udc80" not in ex.error.message
    assert ex.error.message.startswith("ValueError: bad")


def test_classification_says_retryable_only_for_the_clearly_transient() -> None:
    transient: list[BaseException] = [
        ConnectionRefusedError(),
        TimeoutError(),
        OSError(errno.ENETUNREACH, "network unreachable"),
    ]
    for exc in transient:
        assert classify_exception(exc, "runner_error").retryable, exc
    permanent: list[BaseException] = [
        IndexError("x"),
        MemoryError(),
        RecursionError(),
        OSError(errno.ENOENT, "no such file"),
        SystemExit(1),
        ValueError("bad\nvalue"),
    ]
    for exc in permanent:
        error = classify_exception(exc, "runner_error")
        assert not error.retryable and error.type == "runner_error", exc
        assert "\n" not in error.message


def test_a_retry_is_never_due_past_what_a_date_can_hold() -> None:
    policy = RetryPolicy(max_retries=100, initial_delay_ms=10**15, max_delay_ms=2**62, jitter=True)
    for attempt in (1, 50, 100):
        delay = retry_delay_ms(policy, attempt)
        assert delay <= MAX_RETRY_DELAY_MS
        assert utcnow() + timedelta(milliseconds=delay) > utcnow()  # no OverflowError
    ex = Execution(
        id="x", tenant=ADMIN_TENANT, action_id="a", action_name="a", action_version=1, handler_type="t", input={}
    )
    error = ExecutionError("http_503", "busy", retryable=True, retry_after_ms=10**17)
    after = retry_decision(ex, RetryPolicy(max_retries=3), Attempt(number=1, runner="t"), error)
    assert after is not None and after <= MAX_RETRY_DELAY_MS
