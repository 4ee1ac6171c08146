"""Handler types by name and version, opened before they take work and closed after."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from neoactions.domain.errors import InvalidArgument
from neoactions.domain.model import JSON, JSONObject
from neoactions.server.runners import (
    ExecutionContext,
    HandlerRegistry,
    HandlerType,
    Result,
    RunnerUpdate,
    version_key,
)


class _Runner:
    async def execute(self, config: JSONObject, data: JSON, ctx: ExecutionContext) -> AsyncIterator[RunnerUpdate]:
        yield Result(None)


def _type(version: str, events: list[str] | None = None, name: str = "slack.post") -> HandlerType:
    async def opened() -> None:
        if events is not None:
            events.append(f"open {version}")

    async def closed() -> None:
        if events is not None:
            events.append(f"close {version}")

    return HandlerType(name, _Runner(), version=version, open=opened, close=closed)


def test_versions_order_as_semantic_versions() -> None:
    ordered = ["", "0.9.0", "1.0.0-rc.1", "1.0.0", "1.2.0", "1.10.0", "2.0.0"]
    assert sorted(reversed(ordered), key=version_key) == ordered


def test_without_a_version_the_newest_is_taken_and_an_exact_one_when_asked() -> None:
    registry = HandlerRegistry()
    for version in ("1.2.0", "1.10.0", "1.9.3"):
        registry.register(_type(version))
    assert registry.get("slack.post").version == "1.10.0"
    assert registry.get("slack.post", version="1.2.0").version == "1.2.0"
    assert registry.versions("slack.post") == ["1.2.0", "1.9.3", "1.10.0"]


def test_an_unknown_version_is_refused_naming_the_field_and_the_known_ones() -> None:
    registry = HandlerRegistry()
    registry.register(_type("1.0.0"))
    with pytest.raises(InvalidArgument) as caught:
        registry.get("slack.post", "handler.type", version="3.0.0")
    assert caught.value.reason == "UNKNOWN_HANDLER_VERSION"
    assert caught.value.violations[0].field == "handler.version"
    assert "1.0.0" in caught.value.message
    with pytest.raises(InvalidArgument, match="unknown handler type 'nope'"):
        registry.get("nope")


async def test_a_type_is_opened_before_it_takes_work_and_closed_after() -> None:
    events: list[str] = []
    registry = HandlerRegistry()
    registry.register(_type("1.0.0", events))
    await registry.start()
    await registry.start()  # opening is once
    await registry.install(_type("1.1.0", events))
    assert registry.get("slack.post").version == "1.1.0"
    await registry.remove("slack.post", "1.0.0")
    assert registry.versions("slack.post") == ["1.1.0"]
    await registry.aclose()
    assert events == ["open 1.0.0", "open 1.1.0", "close 1.0.0", "close 1.1.0"]


async def test_installing_the_same_version_again_replaces_and_closes_the_old_one() -> None:
    events: list[str] = []
    registry = HandlerRegistry()
    first, second = _type("1.0.0", events), _type("1.0.0", events)
    await registry.install(first)
    await registry.install(second)
    assert registry.get("slack.post") is second
    assert events == ["open 1.0.0", "open 1.0.0", "close 1.0.0"]


async def test_removing_every_version_forgets_the_name() -> None:
    registry = HandlerRegistry()
    await registry.install(_type("1.0.0"))
    await registry.install(_type("2.0.0"))
    await registry.remove("slack.post")
    assert "slack.post" not in registry
    assert registry.names() == []
