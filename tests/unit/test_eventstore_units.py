"""The pure parts of the event store's tools: the ordered pipeline's bound on requests in work
(what makes StreamEvents push back), the replay's token bucket, and the CloudEvents mapping."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from neoactions.client import _cloudevents as ce
from neoactions.domain import convert
from neoactions.domain.errors import InvalidArgument
from neoactions.domain.model import Event
from neoactions.server.eventstore.ratelimit import TokenBucket
from neoactions.server.eventstore.streaming import ordered


async def test_ordered_reads_ahead_only_as_far_as_its_bound_and_answers_in_order() -> None:
    pulled = 0
    done = 0
    worst = 0

    async def source() -> AsyncIterator[int]:
        nonlocal pulled
        for i in range(2000):
            pulled += 1
            yield i

    async def slow(i: int) -> int:
        nonlocal done
        await asyncio.sleep(0.0001 * (i % 3))  # out of order completions
        done += 1
        if i == 7:
            raise ValueError("seven")
        return i * 2

    answers = []
    async for answer in ordered(source(), slow, max_in_flight=4):
        worst = max(worst, pulled - len(answers))
        answers.append(answer)
        await asyncio.sleep(0)  # a slow reader of the answers
    assert [a for a in answers if not isinstance(a, Exception)] == [i * 2 for i in range(2000) if i != 7]
    assert isinstance(answers[7], ValueError)
    # read but not yet answered: the ones in work plus the one being handed over
    assert worst <= 4 + 1


async def test_ordered_stops_reading_while_the_work_is_stuck() -> None:
    pulled = 0
    gate = asyncio.Event()

    async def source() -> AsyncIterator[int]:
        nonlocal pulled
        for i in range(10_000):
            pulled += 1
            yield i

    async def stuck(i: int) -> int:
        await gate.wait()
        return i

    answers = ordered(source(), stuck, max_in_flight=3)
    first = asyncio.ensure_future(anext(answers))
    for _ in range(50):
        await asyncio.sleep(0)
    assert pulled == 4  # three in work; the fourth waits for room, unread by the work
    gate.set()
    assert await first == 0
    await answers.aclose()


async def test_the_source_error_ends_the_stream_after_the_answers() -> None:
    async def source() -> AsyncIterator[int]:
        yield 1
        raise RuntimeError("the stream broke")

    async def double(i: int) -> int:
        return i * 2

    got = []
    with pytest.raises(RuntimeError):
        async for answer in ordered(source(), double):
            got.append(answer)
    assert got == [2]


async def test_token_bucket_spends_at_its_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(10.0, burst=10.0, clock=lambda: now[0])
    assert bucket.delay(10) == 0
    await bucket.take(10)
    assert bucket.delay(5) == pytest.approx(0.5)
    now[0] += 0.5
    assert bucket.delay(5) == 0
    with pytest.raises(ValueError):
        TokenBucket(0)


DOC = {
    "specversion": "1.0",
    "id": "A234-1234-1234",
    "source": "https://github.com/cloudevents/spec/pull",
    "type": "com.github.pull_request.opened",
    "subject": "123",
    "time": "2018-04-05T17:31:00Z",
    "comexampleextension1": "value",
    "comexampleothervalue": 5,
    "datacontenttype": "application/json",
    "data": {"appinfoA": "abc", "appinfoB": 123},
}


def test_a_cloudevent_maps_to_an_event_and_back_losslessly() -> None:
    msg = ce.to_event_pb(DOC)
    assert (msg.id, msg.source, msg.type, msg.subject) == (DOC["id"], DOC["source"], DOC["type"], "123")
    event = convert.event_from_pb(msg, "shop")
    assert event.dedup_key() == f"ce:{len(DOC['source'])}:{DOC['source']}{DOC['id']}"
    assert event.time == datetime(2018, 4, 5, 17, 31, tzinfo=UTC)
    assert event.metadata["cloudevents"]["comexampleothervalue"] == 5
    stored = Event(
        id="0190-stored", tenant="shop", type=event.type, data=event.data, source=event.source,
        subject=event.subject, time=event.time, metadata=event.metadata,
    )  # fmt: skip
    assert ce.from_event(stored) == DOC


def test_an_event_never_published_as_a_cloudevent_reads_as_one() -> None:
    event = Event(id="e1", tenant="shop", type="orders.created", data={"a": 1}, time=datetime(2026, 1, 1, tzinfo=UTC))
    assert ce.from_event(event) == {
        "specversion": "1.0",
        "id": "e1",
        "source": "/tenants/shop",
        "type": "orders.created",
        "time": "2026-01-01T00:00:00Z",
        "datacontenttype": "application/json",
        "data": {"a": 1},
    }


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"specversion": "0.3"}, "cloudevent.specversion"),
        ({"id": ""}, "cloudevent.id"),
        ({"data": [1, 2]}, "cloudevent.data"),
        ({"data_base64": "AAAA"}, "cloudevent.data_base64"),
        ({"datacontenttype": "text/xml"}, "cloudevent.datacontenttype"),
        ({"time": "yesterday"}, "cloudevent.time"),
        ({"Bad-Name": 1}, "cloudevent.Bad-Name"),
    ],
)
def test_an_invalid_cloudevent_names_its_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        ce.to_event_pb({**DOC, **change})
    assert exc.value.violations[0].field == field


def test_a_batch_is_a_json_array() -> None:
    assert len(ce.parse('[{"specversion":"1.0","id":"1","source":"s","type":"a.b"}]')) == 1
    with pytest.raises(InvalidArgument):
        ce.parse("[]")
