"""The declarative actions file → protobuf, and the errors it reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from neoactions.client import _apply
from neoactions.client.declarative import (
    action_to_document,
    load_file,
    parse_action,
    parse_documents,
    parse_yaml,
)
from neoactions.client.results import ApplyOutcome
from neoactions.domain import convert
from neoactions.domain.errors import InvalidArgument
from neoactions.domain.model import Action, ExecutionMode, Priority
from neoactions.v1 import actions_pb2

ISSUE_EXAMPLE = """
actions:
  - name: big-order-alert
    trigger:
      event_types: ["orders.created"]
      conditions:
        - {field: data.amount, operator: gt, value: 100}
    handler:
      type: python
      config: {function: "shop.handlers:alert"}
    priority: high
    execution_mode: sync
    timeout_seconds: 10
"""

FULL = """
actions:
  - name: everything
    description: every key the file knows
    trigger:
      event_types: ["orders.*", "refunds.created"]
      conditions:
        - {field: data.amount, operator: between, value: [10, 20]}
        - all:
            - {field: data.currency, operator: in, value: [EUR, USD]}
            - not: {field: metadata.test, operator: exists}
        - any:
            - {cel: "data.amount > 15"}
            - {field: source, operator: starts_with, value: shop}
      context_filters: {region: eu}
    handler:
      type: python
      config: {function: "shop.handlers:alert", channel: "#ops", retries: 3}
    priority: critical
    execution_mode: queued
    timeout_seconds: 2.5
    retry_policy: {max_retries: 3, backoff: linear, initial_delay_ms: 200, max_delay_ms: 5000,
                   jitter: false, max_age_seconds: 60}
    rate_limit: {per_minute: 10, per_hour: 100}
    max_concurrency: 4
    tags: [billing, alerts]
    enabled: false
"""


def test_issue_example_becomes_the_expected_proto() -> None:
    [doc] = parse_yaml(ISSUE_EXAMPLE)
    assert doc.name == "big-order-alert"
    assert doc.enabled is None
    a = doc.action
    assert a.name == ""
    assert list(a.trigger.event_types) == ["orders.created"]
    [cond] = a.trigger.conditions
    assert (cond.field, cond.operator, cond.value.number_value) == ("data.amount", "gt", 100)
    assert a.handler.type == "python"
    assert a.handler.config["function"] == "shop.handlers:alert"
    assert a.priority == actions_pb2.PRIORITY_HIGH
    assert a.execution_mode == actions_pb2.EXECUTION_MODE_SYNC
    assert a.timeout_seconds == 10


def test_every_key_reaches_the_proto_and_the_domain() -> None:
    [doc] = parse_yaml(FULL)
    assert doc.enabled is False
    a = doc.action
    assert a.priority == actions_pb2.PRIORITY_CRITICAL
    assert a.execution_mode == actions_pb2.EXECUTION_MODE_QUEUED
    group_all, group_any = a.trigger.conditions[1], a.trigger.conditions[2]
    assert [c.field for c in group_all.all] == ["data.currency", ""]
    assert group_all.all[1].negate.operator == "exists"
    assert group_any.any[0].cel == "data.amount > 15"
    assert a.retry_policy.backoff == "linear" and a.retry_policy.max_age_seconds == 60
    assert (a.rate_limit.per_minute, a.rate_limit.per_hour) == (10, 100)
    assert a.max_concurrency == 4 and list(a.tags) == ["billing", "alerts"]

    action = convert.action_from_pb(a, "admin", doc.name)
    assert action.priority is Priority.CRITICAL
    assert action.execution_mode is ExecutionMode.QUEUED
    assert action.trigger.context_filters == {"region": "eu"}
    assert action.handler.config == {"function": "shop.handlers:alert", "channel": "#ops", "retries": 3}
    assert action.trigger.conditions[0].to_dict() == {
        "field": "data.amount",
        "operator": "between",
        "value": [10, 20],
    }
    assert action.trigger.conditions[1].to_dict()["all"][1] == {"not": {"field": "metadata.test", "operator": "exists"}}


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("low", actions_pb2.PRIORITY_LOW),
        ("NORMAL", actions_pb2.PRIORITY_NORMAL),
        ("PRIORITY_HIGH", actions_pb2.PRIORITY_HIGH),
    ],
)
def test_priority_spellings(written: str, expected: int) -> None:
    doc = parse_action(_minimal(priority=written))
    assert doc.action.priority == expected


def test_unknown_action_key_names_the_action_and_the_key() -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_yaml(ISSUE_EXAMPLE.replace("    priority: high", "    priorty: high"))
    err = info.value
    assert err.reason == "INVALID_ACTIONS_FILE"
    assert "'big-order-alert'" in err.message and "'priorty'" in err.message
    assert [v.field for v in err.violations] == ["actions[0].priorty"]


def test_unknown_nested_keys_are_all_reported() -> None:
    doc = _minimal()
    doc["trigger"]["when"] = "always"
    doc["handler"]["cfg"] = {}
    doc["retry_policy"] = {"retries": 3}
    doc["trigger"]["conditions"] = [{"field": "data.x", "operator": "equals", "valu": 1}]
    with pytest.raises(InvalidArgument) as info:
        parse_documents([{"actions": [doc]}])
    fields = {v.field for v in info.value.violations}
    assert fields == {
        "actions[0].trigger.when",
        "actions[0].handler.cfg",
        "actions[0].retry_policy.retries",
        "actions[0].trigger.conditions[0].valu",
    }
    assert "(and 3 more)" in info.value.message


@pytest.mark.parametrize(
    ("key", "value", "field"),
    [
        ("priority", "urgent", "actions[0].priority"),
        ("priority", 3, "actions[0].priority"),
        ("execution_mode", "later", "actions[0].execution_mode"),
        ("enabled", "no thanks", "actions[0].enabled"),
        ("tags", "billing", "actions[0].tags"),
        ("trigger", None, "actions[0].trigger"),
        ("handler", "python", "actions[0].handler"),
    ],
)
def test_bad_values_are_refused(key: str, value: object, field: str) -> None:
    doc = _minimal()
    doc[key] = value
    with pytest.raises(InvalidArgument) as info:
        parse_documents([{"actions": [doc]}])
    assert [v.field for v in info.value.violations] == [field]
    assert "'minimal'" in info.value.message


def test_bad_priority_lists_the_choices() -> None:
    with pytest.raises(InvalidArgument, match="low, normal, high, critical"):
        parse_action(_minimal(priority="urgent"))


@pytest.mark.parametrize(
    "condition",
    [
        {"field": "data.x", "operator": "equals", "cel": "true"},  # two forms
        {},  # no form
        {"all": []},  # empty group
        {"any": [{"field": "data.x"}]},  # field test without operator
        {"not": [{"field": "data.x", "operator": "exists"}]},  # not takes one condition
        {"cel": ""},
    ],
)
def test_malformed_conditions_are_refused(condition: dict[str, object]) -> None:
    doc = _minimal()
    doc["trigger"]["conditions"] = [condition]
    with pytest.raises(InvalidArgument) as info:
        parse_action(doc)
    assert all(v.field.startswith("action.trigger.conditions[0]") for v in info.value.violations)


def test_wrong_value_types_are_refused_with_the_action_named() -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_action(_minimal(timeout_seconds="ten"))
    assert "'minimal'" in info.value.message and "invalid value" in info.value.message


def test_file_level_errors() -> None:
    with pytest.raises(InvalidArgument, match="unknown top-level key 'kind'"):
        parse_yaml("kind: Actions\nactions: []\n")
    with pytest.raises(InvalidArgument, match="expected a mapping with an 'actions:' list"):
        parse_yaml("- name: x\n")
    with pytest.raises(InvalidArgument) as info:
        parse_yaml("actions: [\n")
    assert info.value.reason == "MALFORMED_YAML"
    twice = {"actions": [_minimal(), _minimal()]}
    with pytest.raises(InvalidArgument, match="defined twice"):
        parse_documents([twice])


def test_multiple_documents_and_files(tmp_path: Path) -> None:
    path = tmp_path / "actions.yaml"
    path.write_text(
        ISSUE_EXAMPLE + "\n---\nactions:\n  - name: second\n    trigger: {event_types: ['*']}\n"
        "    handler: {type: python, config: {function: 'shop.handlers:alert'}}\n"
    )
    docs = load_file(path)
    assert [d.name for d in docs] == ["big-order-alert", "second"]
    with pytest.raises(InvalidArgument) as info:
        path.write_text(ISSUE_EXAMPLE.replace("name: big-order-alert", "name: big\n    colour: red"))
        load_file(path)
    assert str(path) in info.value.message


def test_stored_action_round_trips_through_the_document_form() -> None:
    [doc] = parse_yaml(FULL)
    stored = convert.action_from_pb(doc.action, "admin", doc.name)
    stored.enabled = False
    again = parse_action(action_to_document(stored))
    assert again.enabled is False
    assert convert.action_from_pb(again.action, "admin", again.name).spec() == stored.spec()


def test_apply_plan_detects_unchanged_updated_and_toggled() -> None:
    [doc] = parse_yaml(ISSUE_EXAMPLE)
    assert _apply.plan(doc, None, "admin").outcome is ApplyOutcome.CREATED

    stored = _stored(doc.action, doc.name)
    same = _apply.plan(doc, stored, "admin")
    assert (same.outcome, same.changed, same.update_spec) == (ApplyOutcome.UNCHANGED, [], False)

    [changed] = parse_yaml(ISSUE_EXAMPLE.replace("timeout_seconds: 10", "timeout_seconds: 20"))
    step = _apply.plan(changed, stored, "admin")
    assert (step.outcome, step.changed, step.update_spec) == (ApplyOutcome.UPDATED, ["timeout_seconds"], True)

    [off] = parse_yaml(ISSUE_EXAMPLE + "    enabled: false\n")
    step = _apply.plan(off, stored, "admin")
    assert (step.outcome, step.changed, step.set_enabled, step.update_spec) == (
        ApplyOutcome.UPDATED,
        ["enabled"],
        False,
        False,
    )
    assert _apply.plan(off, None, "admin").set_enabled is False


def _stored(message: actions_pb2.Action, name: str) -> Action:
    """What the server hands back: the action through action_to_pb / action_from_stored_pb."""
    action = convert.action_from_pb(message, "admin", name)
    action.id, action.version = "0190d7c0-0000-7000-8000-000000000000", 1
    return convert.action_from_stored_pb(convert.action_to_pb(action))


def _minimal(**extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": "minimal",
        "trigger": {"event_types": ["orders.created"]},
        "handler": {"type": "python", "config": {"function": "shop.handlers:alert"}},
    }
    doc.update(extra)
    return doc
