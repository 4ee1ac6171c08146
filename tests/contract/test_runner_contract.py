"""The Runner contract, run against every runner (as the store contract runs against every store).

``Runner.execute(config, data, ctx)`` yields logs and progress, then exactly one
``Result`` or ``Failure`` — last; a handler's failure is a classified ``Failure``
(type, retryable), never an exception out of ``execute``; the attempt ends by
``ctx.deadline`` (a ``Failure`` with ``timed_out`` and type ``timeout``), does not start
the handler once the deadline has passed, and stops promptly when its task is cancelled,
leaving nothing running. Each behaviour is one
test, run against every kind in ``runner_backends.KINDS``; what a kind cannot express
is listed with its reason in ``NOT_APPLICABLE`` (reported as a skip naming it), and a
known breach of the contract in ``BREACHES`` (a strict xfail: it turns red once fixed,
so the entry is removed with the fix).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from neoactions.server.runners import ExecutionContext, Failure, Log, Progress, Result, RunnerUpdate
from tests.conftest import eventually
from tests.contract.runner_backends import (
    BEHAVIOURS,
    KINDS,
    MIB,
    NOT_APPLICABLE,
    Case,
    ContainerKind,
    ContainerSidecarKind,
    RunnerKind,
    ctx,
    open_container,
    open_email,
    open_http,
    open_lambda,
    open_python,
    open_sidecar,
    open_wasm,
)
from tests.integration.dockerenv import docker_images as docker_images  # the fixture, for the container kinds

#: every async test shares the module's event loop with the runners and servers the kinds opened
module_loop = pytest.mark.asyncio(loop_scope="module")

#: (kind, behaviour) pairs where the runner breaks the contract today, and how
BREACHES: dict[tuple[str, str], str] = {
    ("wasm", "cancellation"): "a cancelled guest keeps running (and holding its worker) until its own deadline: "
    "the engine cannot interrupt one store from another thread (docs/runners/wasm.md, Threads)",
}

#: how soon a cancelled attempt's task must have ended
PROMPT_SECONDS = 1.0
#: how soon whatever a stopped attempt ran (process, container, thread, call) must be gone
RELEASE_SECONDS = 3.0
#: no single run may take longer than this (a hung runner fails its test instead of the suite)
RUN_LIMIT_SECONDS = 30.0


def kinds(behaviour: str) -> list[Any]:
    assert behaviour in BEHAVIOURS
    params = []
    for name in KINDS:
        marks: list[pytest.MarkDecorator] = [pytest.mark.docker] if name.startswith("container") else []
        if (name, behaviour) in NOT_APPLICABLE:
            marks.append(pytest.mark.skip(reason=f"not applicable: {NOT_APPLICABLE[(name, behaviour)]}"))
        if (name, behaviour) in BREACHES:
            marks.append(pytest.mark.xfail(reason=f"contract breach: {BREACHES[(name, behaviour)]}", strict=True))
        params.append(pytest.param(name, marks=marks, id=name))
    return params


def test_not_applicable_and_breaches_name_real_pairs() -> None:
    for kind, behaviour in [*NOT_APPLICABLE, *BREACHES]:
        assert kind in KINDS and behaviour in BEHAVIOURS, (kind, behaviour)
    assert not set(NOT_APPLICABLE) & set(BREACHES)
    for must in ("result", "final_failure", "timeout", "cancellation", "logs"):
        assert not [k for k, b in NOT_APPLICABLE if b == must], f"every runner can express {must}"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def kind(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunnerKind]:
    name = request.param
    if name == "python":
        opened = open_python()
    elif name == "wasm":
        opened = open_wasm(tmp_path_factory.mktemp("wasm"))
    elif name == "http":
        opened = open_http()
    elif name == "lambda":
        opened = open_lambda()
    elif name == "email":
        opened = open_email()
    elif name == "sidecar":
        opened = open_sidecar()
    elif name == "container":
        opened = open_container(ContainerKind, request.getfixturevalue("docker_images")["oneshot"])
    elif name == "container_sidecar":
        opened = open_container(ContainerSidecarKind, request.getfixturevalue("docker_images")["python_sidecar"])
    else:
        raise AssertionError(f"no runner kind {name}")
    async with opened as runner_kind:
        yield runner_kind


async def run(kind: RunnerKind, case: Case, context: ExecutionContext) -> list[RunnerUpdate]:
    """Every update of one ``execute``; any exception out of it fails the test as it should."""
    updates: list[RunnerUpdate] = []
    async with asyncio.timeout(RUN_LIMIT_SECONDS):
        async for update in kind.runner.execute(case.config, case.data, context):
            updates.append(update)
    return updates


def outcome(updates: list[RunnerUpdate]) -> Result | Failure:
    """The contract's shape: logs/progress, then exactly one Result or Failure, last."""
    assert updates, "execute ended without yielding anything"
    *before, last = updates
    assert isinstance(last, Result | Failure), f"the last update is not the outcome: {last!r}"
    for update in before:
        if isinstance(update, Log):
            assert isinstance(update.message, str) and update.level in ("debug", "info", "warning", "error"), update
        elif isinstance(update, Progress):
            assert 0.0 <= update.fraction <= 1.0 and isinstance(update.message, str), update
        else:
            raise AssertionError(f"only logs and progress come before the outcome: {update!r}")
    if isinstance(last, Failure):
        error = last.error
        assert isinstance(error.type, str) and error.type, f"a failure names its type: {error!r}"
        assert isinstance(error.message, str) and isinstance(error.retryable, bool), error
    return last


def result_of(updates: list[RunnerUpdate]) -> Result:
    final = outcome(updates)
    assert isinstance(final, Result), f"expected a result, got {final!r}"
    return final


def failure_of(updates: list[RunnerUpdate]) -> Failure:
    final = outcome(updates)
    assert isinstance(final, Failure), f"expected a failure, got {str(final)[:500]}"
    return final


# --- behaviours ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", kinds("result"), indirect=True)
@module_loop
async def test_result(kind: RunnerKind) -> None:
    value = {"id": "ord-7", "text": 'zoë ✓ \u2028 "quoted"', "n": [1.5, None, True, -3], "nested": {"empty": []}}
    case = kind.succeed(value)
    case.expect(result_of(await run(kind, case, ctx(15))).output)


@pytest.mark.parametrize("kind", kinds("concurrent_results"), indirect=True)
@module_loop
async def test_concurrent_results(kind: RunnerKind) -> None:
    """Attempts running at once on one runner each get their own result."""
    cases = [kind.succeed({"id": f"ord-{i}", "n": i}) for i in range(6)]
    runs = await asyncio.gather(*(run(kind, case, ctx(30)) for case in cases))
    for case, updates in zip(cases, runs, strict=True):
        case.expect(result_of(updates).output)


@pytest.mark.parametrize("kind", kinds("retryable_failure"), indirect=True)
@module_loop
async def test_retryable_failure(kind: RunnerKind) -> None:
    case = kind.fail(retryable=True)
    failure = failure_of(await run(kind, case, ctx(15)))
    assert (failure.error.type, failure.error.retryable, failure.timed_out) == (case.error_type, True, False), failure
    assert failure.error.message


@pytest.mark.parametrize("kind", kinds("final_failure"), indirect=True)
@module_loop
async def test_final_failure(kind: RunnerKind) -> None:
    case = kind.fail(retryable=False)
    failure = failure_of(await run(kind, case, ctx(15)))
    assert (failure.error.type, failure.error.retryable, failure.timed_out) == (case.error_type, False, False), failure
    assert failure.error.message


@pytest.mark.parametrize("kind", kinds("unusable_config"), indirect=True)
@module_loop
async def test_unusable_config(kind: RunnerKind) -> None:
    case = kind.unusable()
    failure = failure_of(await run(kind, case, ctx(15)))
    assert (failure.error.type, failure.error.retryable, failure.timed_out) == (case.error_type, False, False), failure
    assert failure.error.message


@pytest.mark.parametrize("kind", kinds("timeout"), indirect=True)
@module_loop
async def test_timeout(kind: RunnerKind) -> None:
    case = kind.hang()
    context = ctx(kind.timeout_seconds)
    started = time.monotonic()
    failure = failure_of(await run(kind, case, context))
    elapsed = time.monotonic() - started
    assert failure.timed_out and failure.error.type == "timeout", failure
    assert elapsed >= kind.timeout_seconds - 0.5, f"a timeout after {elapsed:.2f}s: the run was cut short"
    assert elapsed <= kind.timeout_seconds + kind.margin, (
        f"the timeout was reported {elapsed - kind.timeout_seconds:.2f}s after the deadline (margin {kind.margin}s)"
    )
    await eventually(lambda: kind.released(case, context), within=RELEASE_SECONDS, what="release after the timeout")


@pytest.mark.parametrize("kind", kinds("expired_deadline"), indirect=True)
@module_loop
async def test_expired_deadline(kind: RunnerKind) -> None:
    """An attempt whose deadline passed before it began ends at once, timed out, without
    running the handler (whose effects would come after the attempt was given up)."""
    case = kind.succeed({"id": "ord-8"})
    started = time.monotonic()
    updates = await run(kind, case, ctx(-0.5))
    elapsed = time.monotonic() - started
    failure = failure_of(updates)
    assert failure.timed_out and failure.error.type == "timeout", failure
    assert elapsed <= kind.margin, f"an expired attempt took {elapsed:.2f}s to end"
    assert not await kind.ran(case, updates), "the handler ran after the attempt's deadline"


@pytest.mark.parametrize("kind", kinds("logs"), indirect=True)
@module_loop
async def test_logs(kind: RunnerKind) -> None:
    case = kind.chatty()
    updates = await run(kind, case, ctx(15))
    result_of(updates)
    messages = [u.message for u in updates if isinstance(u, Log)]
    position = 0
    for expected in case.logs:
        found = [i for i, m in enumerate(messages) if i >= position and expected in m]
        assert found, f"no log containing {expected!r} (in order) among {messages}"
        position = found[0] + 1


@pytest.mark.parametrize("kind", kinds("progress"), indirect=True)
@module_loop
async def test_progress(kind: RunnerKind) -> None:
    case = kind.chatty()
    assert case.progress, f"{kind.name} reports progress: its chatty case must expect some"
    updates = await run(kind, case, ctx(15))
    result_of(updates)
    assert [u.fraction for u in updates if isinstance(u, Progress)] == list(case.progress)


@pytest.mark.parametrize("kind", kinds("large_output"), indirect=True)
@module_loop
async def test_large_output(kind: RunnerKind) -> None:
    case = kind.large(MIB)
    case.expect(result_of(await run(kind, case, ctx(30))).output)


@pytest.mark.parametrize("kind", kinds("cancellation"), indirect=True)
@module_loop
async def test_cancellation(kind: RunnerKind) -> None:
    # last in the module: a breach here (a guest still running) cannot slow the kind's other tests
    case = kind.hang()
    context = ctx(8)
    updates: list[RunnerUpdate] = []

    async def consume() -> None:
        async for update in kind.runner.execute(case.config, case.data, context):
            updates.append(update)

    task = asyncio.create_task(consume())
    try:
        await eventually(
            lambda: task.done() or kind.started(case, updates), within=15, what=f"{kind.name}: the handler started"
        )
        assert not task.done(), f"the run ended before it was cancelled: {updates}"
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=PROMPT_SECONDS)
        assert task in done, f"the cancelled run did not stop within {PROMPT_SECONDS}s"
        assert task.cancelled(), f"the runner swallowed the cancellation: {task.exception()!r}, last {updates[-1:]}"
        assert not [u for u in updates if isinstance(u, Result | Failure)], updates
    finally:
        task.cancel()
    await eventually(
        lambda: kind.released(case, context), within=RELEASE_SECONDS, what=f"{kind.name}: release after cancellation"
    )
