"""The Matcher: ordering, incremental changes, tenants, load, and explanations."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from neoactions.domain import model
from neoactions.domain.errors import InvalidArgument, NotFound
from neoactions.server.matching import Matcher

F = model.FieldCondition
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def action(
    name: str,
    patterns: list[str],
    conditions: list[model.Condition] | None = None,
    *,
    tenant: str = "acme",
    priority: model.Priority = model.Priority.NORMAL,
    age: int = 0,
    enabled: bool = True,
    **trigger: Any,
) -> model.Action:
    return model.Action(
        name=name,
        tenant=tenant,
        trigger=model.Trigger(patterns, conditions or [], **trigger),
        handler=model.HandlerSpec("python"),
        priority=priority,
        enabled=enabled,
        created_at=T0 + timedelta(seconds=age),
    )


def event(type_: str, data: dict[str, Any] | None = None, tenant: str = "acme", **fields: Any) -> model.Event:
    return model.Event(id="e1", tenant=tenant, type=type_, data=data or {}, **fields)


def names(actions: list[model.Action]) -> list[str]:
    return [a.name for a in actions]


def test_priority_then_creation_then_name() -> None:
    m = Matcher()
    m.put(action("low", ["*"], priority=model.Priority.LOW))
    m.put(action("normal_new", ["*"], age=10))
    m.put(action("normal_old_b", ["*"], age=1))
    m.put(action("normal_old_a", ["*"], age=1))
    m.put(action("critical", ["*"], priority=model.Priority.CRITICAL, age=99))
    m.put(action("high", ["*"], priority=model.Priority.HIGH))
    assert names(m.match("acme", event("x"))) == [
        "critical",
        "high",
        "normal_old_a",
        "normal_old_b",
        "normal_new",
        "low",
    ]


def test_put_replaces_and_disable_and_remove() -> None:
    m = Matcher()
    m.put(action("a", ["users.created"], [F("data.plan", "equals", "pro")]))
    assert names(m.match("acme", event("users.created", {"plan": "pro"}))) == ["a"]
    m.put(action("a", ["users.created"], [F("data.plan", "equals", "free")]))
    assert names(m.match("acme", event("users.created", {"plan": "pro"}))) == []
    assert names(m.match("acme", event("users.created", {"plan": "free"}))) == ["a"]
    m.put(action("a", ["users.created"], [F("data.plan", "equals", "free")], enabled=False))
    assert names(m.match("acme", event("users.created", {"plan": "free"}))) == []
    m.put(action("a", ["users.created"], [F("data.plan", "equals", "free")]))
    assert names(m.match("acme", event("users.created", {"plan": "free"}))) == ["a"]
    m.remove("acme", "a")
    m.remove("acme", "a")  # unknown: no error
    assert names(m.match("acme", event("users.created", {"plan": "free"}))) == []
    assert m.actions("acme") == []


def test_disabling_the_same_object_in_place() -> None:
    m = Matcher()
    a = action("a", ["x"], [F("data.k", "equals", 1)])
    m.put(a)
    a.enabled = False
    m.put(a)
    assert m.match("acme", event("x", {"k": 1})) == []
    a.enabled = True
    m.put(a)
    assert names(m.match("acme", event("x", {"k": 1}))) == ["a"]


def test_invalid_put_changes_nothing() -> None:
    m = Matcher()
    m.put(action("a", ["x"]))
    with pytest.raises(InvalidArgument):
        m.put(action("a", ["x"], [F("data.a", "regex", "(")]))
    assert names(m.match("acme", event("x"))) == ["a"]


def test_tenants_are_isolated() -> None:
    m = Matcher()
    m.put(action("a", ["*"], tenant="acme"))
    m.put(action("b", ["*"], tenant="globex"))
    assert names(m.match("acme", event("x"))) == ["a"]
    assert names(m.match("globex", event("x", tenant="globex"))) == ["b"]
    assert m.match("initech", event("x", tenant="initech")) == []


def test_load_replaces_a_tenant_and_keeps_invalid_actions_out() -> None:
    m = Matcher()
    m.put(action("old", ["*"]))
    broken = action("broken", ["*"], [F("data.a", "regex", "(")])
    failures = m.load("acme", [action("new", ["*"]), broken])
    assert set(failures) == {"broken"}
    assert names(m.match("acme", event("x"))) == ["new"]
    (explained,) = m.explain("acme", event("x"), "broken")
    assert explained.reason == "invalid_trigger" and "conditions[0].value" in explained.error
    with pytest.raises(ValueError):
        m.load("acme", [action("other", ["*"], tenant="globex")])


def test_literal_index_paths() -> None:
    m = Matcher()
    m.put(action("eq", ["orders.*"], [F("data.customer", "equals", "c1")]))
    m.put(action("in", ["orders.*"], [F("data.customer", "in", ["c1", "c2"]), F("data.total", "gt", 10)]))
    m.put(action("ctx", ["orders.*"], context_filters={"user.role": "admin"}))
    m.put(action("num", ["orders.*"], [F("data.n", "equals", 1)]))
    m.put(action("eb", ["orders.*"], event_pattern={"detail": {"tags": ["vip"]}}))
    e = event(
        "orders.paid",
        {"customer": "c1", "total": 11, "n": 1.0, "tags": ["new", "vip"]},
        metadata={"user": {"role": "admin"}},
    )
    assert names(m.match("acme", e)) == ["ctx", "eb", "eq", "in", "num"]
    e = event("orders.paid", {"customer": "c2", "total": 5, "n": True, "tags": "vip"}, metadata={"user.role": "admin"})
    assert names(m.match("acme", e)) == ["eb"]


def test_explain_reports_every_outcome_and_value() -> None:
    m = Matcher()
    m.put(
        action(
            "notify",
            ["users.created", "users.*"],
            [
                F("data.user.email", "ends_with", "@corp.com"),
                model.ConditionGroup("any", [F("data.age", "gt", 65), model.CelCondition("data.vip == true")]),
                F("data.missing", "exists"),
            ],
            context_filters={"region": "eu"},
        )
    )
    m.put(action("other", ["orders.*"], priority=model.Priority.HIGH))
    m.put(action("off", ["*"], enabled=False))
    e = event("users.created", {"user": {"email": "a@corp.com"}, "age": 30}, metadata={"region": "eu"})
    explained = m.explain("acme", e)
    assert [x.action for x in explained] == ["other", "notify", "off"]
    other, notify, off = explained
    assert (other.matched, other.reason) == (False, "event_type_not_matched")
    assert (off.matched, off.reason, off.enabled) == (False, "disabled", False)
    assert (notify.matched, notify.reason) == (False, "conditions_not_met")
    assert [p.matched for p in notify.patterns] == [True, True]
    region, email, group, missing = notify.conditions
    assert (region.kind, region.matched, region.actual, region.field) == (
        "context_filter",
        True,
        "eu",
        "metadata.region",
    )
    assert (email.matched, email.actual, email.location) == (True, "a@corp.com", "trigger.conditions[0]")
    assert group.matched is False and [c.matched for c in group.children] == [False, False]
    assert group.children[0].actual == 30
    assert group.children[1].kind == "cel" and "KeyError" in group.children[1].error
    assert (missing.matched, missing.present, missing.actual) == (False, False, None)
    document = json.loads(json.dumps([x.to_dict() for x in explained]))
    assert document[1]["conditions"][2]["children"][0]["location"] == "trigger.conditions[1].any[0]"
    assert m.explain("acme", e, "other")[0].action == "other"
    with pytest.raises(NotFound) as info:
        m.explain("acme", e, "nope")
    assert info.value.reason == "ACTION_NOT_FOUND"


def test_explain_agrees_with_match() -> None:
    m = Matcher()
    m.put(action("a", ["users.*"], [F("data.x", "gte", 2)]))
    m.put(action("b", ["users.**"], [model.CelCondition("data.x < 5")], priority=model.Priority.HIGH))
    for x in (1, 3, 7):
        e = event("users.created", {"x": x})
        assert names(m.match("acme", e)) == [a.action for a in m.explain("acme", e) if a.matched]


def test_cel_sees_the_envelope() -> None:
    m = Matcher()
    m.put(action("c", ["*"], [model.CelCondition('source == "billing" && data.items.exists(i, i.qty > 2)')]))
    assert names(m.match("acme", event("x", {"items": [{"qty": 1}, {"qty": 3}]}, source="billing"))) == ["c"]
    assert m.match("acme", event("x", {"items": [{"qty": 1}]}, source="billing")) == []
    assert m.match("acme", event("x", {}, source="billing")) == []  # evaluation error: no match
