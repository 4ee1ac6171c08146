"""The shared polling helpers of tests/conftest.py: ``eventually`` and ``eventually_sync``."""

from __future__ import annotations

import pytest

from tests.conftest import eventually, eventually_sync


class Countdown:
    """Falsy (or failing an assertion) for the first ``n`` checks, then a value."""

    def __init__(self, n: int, *, asserting: bool = False) -> None:
        self.n = n
        self.asserting = asserting
        self.calls = 0

    def __call__(self) -> object:
        self.calls += 1
        if self.calls <= self.n:
            assert not self.asserting, f"not yet ({self.calls})"
            return 0
        return {"ready": self.calls}


async def test_eventually_returns_the_first_truthy_value() -> None:
    check = Countdown(3)
    assert await eventually(check, within=5, interval=0.001) == {"ready": 4}
    assert check.calls == 4


async def test_eventually_awaits_async_checks_and_retries_failed_assertions() -> None:
    check = Countdown(2, asserting=True)

    async def async_check() -> object:
        return check()

    assert await eventually(async_check, within=5, interval=0.001) == {"ready": 3}


async def test_eventually_names_what_did_not_hold_and_the_last_error() -> None:
    with pytest.raises(AssertionError, match=r"the queue drained did not hold within 0.05s \(last check raised: not"):
        await eventually(Countdown(10**9, asserting=True), within=0.05, interval=0.001, what="the queue drained")
    with pytest.raises(AssertionError, match=r"last value: \[\]"):
        await eventually(lambda: [], within=0.01, interval=0.001)


async def test_eventually_checks_at_least_once_and_other_errors_propagate() -> None:
    assert await eventually(lambda: "now", within=0) == "now"

    def broken() -> None:
        raise KeyError("a bug in the check is not 'not yet'")

    with pytest.raises(KeyError):
        await eventually(broken, within=5)


def test_eventually_sync_polls_the_same_way() -> None:
    check = Countdown(2, asserting=True)
    assert eventually_sync(check, within=5, interval=0.001) == {"ready": 3}
    with pytest.raises(AssertionError, match="the file appeared did not hold"):
        eventually_sync(lambda: False, within=0.01, interval=0.001, what="the file appeared")


async def test_until_judges_what_the_probe_saw_and_returns_it() -> None:
    seen = iter([{"status": "running"}, {"status": "running"}, {"status": "done"}])
    assert await eventually(lambda: next(seen), until=lambda x: x["status"] == "done", interval=0.001) == {
        "status": "done"
    }
    # a falsy value the condition accepts is returned too
    assert await eventually(lambda: 0, until=lambda x: x == 0) == 0
    with pytest.raises(AssertionError, match=r"last value: \{'status': 'running'\}"):
        eventually_sync(lambda: {"status": "running"}, until=lambda x: x["status"] == "done", within=0.01)
