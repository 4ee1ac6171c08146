"""Event types and event-type patterns: exact, '*', '**' and the universal '*'."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neoactions.domain import model
from neoactions.domain.errors import InvalidArgument
from neoactions.server.matching import Matcher, type_pattern_matches, validate_event_type


@pytest.mark.parametrize("good", ["users.created", "a", "a_1.b2.c_3", "x" * 255])
def test_valid_event_types(good: str) -> None:
    validate_event_type(good)


@pytest.mark.parametrize(
    "bad", ["", "Users.created", "users..created", ".a", "a.", "a-b", "a b", "é", "x" * 256, "a.*"]
)
def test_invalid_event_types(bad: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        validate_event_type(bad, "events[3].type")
    assert info.value.reason == "INVALID_EVENT_TYPE"
    assert info.value.violations[0].field == "events[3].type"


PATTERNS = [
    ("users.created", "users.created", True),
    ("users.created", "users.updated", False),
    ("users.created", "users.created.v2", False),
    ("users.*", "users.created", True),
    ("users.*", "users", False),
    ("users.*", "users.profile.updated", False),
    ("*.created", "orders.created", True),
    ("users.**", "users", True),
    ("users.**", "users.created", True),
    ("users.**", "users.profile.updated", True),
    ("users.**", "usersx.created", False),
    ("**.failed", "payments.card.failed", True),
    ("**.failed", "failed", True),
    ("**.failed", "payments.failed.retry", False),
    ("a.**.z", "a.z", True),
    ("a.**.z", "a.b.c.z", True),
    ("a.**.z", "a.b.c", False),
    ("a.*.**", "a", False),
    ("a.*.**", "a.b", True),
    ("*", "anything", True),
    ("*", "any.thing.at.all", True),
    ("**", "x.y", True),
]


@pytest.mark.parametrize(("pattern", "event_type", "expected"), PATTERNS)
def test_type_pattern_matches(pattern: str, event_type: str, expected: bool) -> None:
    assert type_pattern_matches(pattern, event_type) is expected


@pytest.mark.parametrize(("pattern", "event_type", "expected"), PATTERNS)
def test_trie_agrees_with_pattern_table(pattern: str, event_type: str, expected: bool) -> None:
    matcher = Matcher()
    matcher.put(model.Action("a", model.Trigger([pattern]), model.HandlerSpec("python")))
    hits = matcher.match("admin", model.Event(id="1", tenant="admin", type=event_type, data={}))
    assert bool(hits) is expected


SEGMENT = st.sampled_from(["a", "b", "c"])
PATTERN_SEGMENT = st.sampled_from(["a", "b", "c", "*", "**"])


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.lists(PATTERN_SEGMENT, min_size=1, max_size=5).map(".".join), min_size=1, max_size=8),
    st.lists(st.lists(SEGMENT, min_size=1, max_size=6).map(".".join), min_size=1, max_size=10),
)
def test_trie_walk_equals_pattern_semantics(patterns: list[str], event_types: list[str]) -> None:
    """The index's trie walk (with its per-type cache) agrees with type_pattern_matches."""
    matcher = Matcher()
    for i, pattern in enumerate(patterns):
        matcher.put(model.Action(f"a{i}", model.Trigger([pattern]), model.HandlerSpec("python")))
    for event_type in event_types + event_types:  # second round hits the type cache
        event = model.Event(id="1", tenant="admin", type=event_type, data={})
        got = {a.name for a in matcher.match("admin", event)}
        want = {f"a{i}" for i, p in enumerate(patterns) if type_pattern_matches(p, event_type)}
        assert got == want


def test_many_globstars_stay_fast() -> None:
    pattern = ".".join(["**", "a"] * 40)
    event_type = ".".join(["a"] * 120)
    matcher = Matcher()
    matcher.put(model.Action("a", model.Trigger([pattern]), model.HandlerSpec("python")))
    assert matcher.match("admin", model.Event(id="1", tenant="admin", type=event_type, data={}))
    assert type_pattern_matches(pattern, event_type)
    assert not type_pattern_matches(pattern, ".".join(["a"] * 39))
