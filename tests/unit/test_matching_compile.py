"""Compile on save: invalid triggers are refused with INVALID_ARGUMENT naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from neoactions.domain import model
from neoactions.domain.errors import InvalidArgument
from neoactions.server.matching import compile_trigger
from neoactions.server.matching.limits import MAX_CONDITION_NODES, MAX_DEPTH, MAX_PATTERNS

F = model.FieldCondition


def refusal(trigger: model.Trigger) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as info:
        compile_trigger(trigger)
    error = info.value
    assert len(error.violations) == 1
    assert error.violations[0].field in error.message
    return error


def nested(depth: int) -> model.Condition:
    condition: model.Condition = F("data.a", "equals", 1)
    for _ in range(depth):
        condition = model.ConditionGroup("all", [condition])
    return condition


BAD_CONDITIONS: list[tuple[list[Any], str]] = [
    ([F("data.a", "equals", 1), F("data.b", "equals", 2), F("data.c", "regex", "(")], "trigger.conditions[2].value"),
    ([F("data.a", "regex", "(?<=a)b")], "trigger.conditions[0].value"),  # RE2 has no lookbehind
    ([F("data.a", "bogus", 1)], "trigger.conditions[0].operator"),
    ([F("", "equals", 1)], "trigger.conditions[0].field"),
    ([F("data..a", "equals", 1)], "trigger.conditions[0].field"),
    ([F("payload.a", "equals", 1)], "trigger.conditions[0].field"),
    ([F("source.x", "equals", 1)], "trigger.conditions[0].field"),
    ([F("data.a", "in", "abc")], "trigger.conditions[0].value"),
    ([F("data.a", "gt", True)], "trigger.conditions[0].value"),
    ([F("data.a", "gt", None)], "trigger.conditions[0].value"),
    ([F("data.a", "between", [5, 1])], "trigger.conditions[0].value"),
    ([F("data.a", "between", [1, "z"])], "trigger.conditions[0].value"),
    ([F("data.a", "between", [1, None])], "trigger.conditions[0].value[1]"),
    ([F("data.a", "starts_with", 1)], "trigger.conditions[0].value"),
    ([F("data.a", "equals_ignore_case", None)], "trigger.conditions[0].value"),
    ([F("data.a", "cidr", "10.0.0.0/33")], "trigger.conditions[0].value"),
    ([F("data.a", "cidr", ["10.0.0.0/8", "x"])], "trigger.conditions[0].value[1]"),
    ([F("data.a", "exists", "yes")], "trigger.conditions[0].value"),
    ([F("data.a", "equals", float("nan"))], "trigger.conditions[0].value"),
    ([F("data.a", "in", list(range(1001)))], "trigger.conditions[0].value"),
    ([F("data.a", "equals", "x" * 5000)], "trigger.conditions[0].value"),
    (
        [model.ConditionGroup("any", [F("data.a", "equals", 1), model.ConditionGroup("not", [F("x", "equals", 1)])])],
        "trigger.conditions[0].any[1].not.field",
    ),
    ([model.ConditionGroup("all", [])], "trigger.conditions[0]"),
    ([model.ConditionGroup("not", [F("data.a", "exists"), F("data.b", "exists")])], "trigger.conditions[0]"),
    ([model.CelCondition("data.a >")], "trigger.conditions[0].cel"),
    ([model.CelCondition("payload.a > 1")], "trigger.conditions[0].cel"),  # undeclared variable
    ([model.CelCondition("nosuchfn(data)")], "trigger.conditions[0].cel"),
    ([model.CelCondition("")], "trigger.conditions[0].cel"),
    (
        [{"field": "data.a", "operator": "equals", "value": 1}, {"all": [{"cel": "x y"}]}],
        "trigger.conditions[1].all[0].cel",
    ),
    (["not a condition"], "trigger.conditions[0]"),
]


@pytest.mark.parametrize(("conditions", "field"), BAD_CONDITIONS)
def test_invalid_condition_names_the_field(conditions: list[Any], field: str) -> None:
    error = refusal(model.Trigger(["users.created"], conditions))
    assert error.reason == "INVALID_CONDITION"
    assert error.violations[0].field == field


@pytest.mark.parametrize(
    ("patterns", "field"),
    [
        (["users.created", "Users.created"], "trigger.event_types[1]"),
        (["users.cre*"], "trigger.event_types[0]"),
        (["users..created"], "trigger.event_types[0]"),
        ([""], "trigger.event_types[0]"),
        (["a" * 256], "trigger.event_types[0]"),
        ([], "trigger.event_types"),
        (["x"] * (MAX_PATTERNS + 1), "trigger.event_types"),
    ],
)
def test_invalid_pattern_names_the_field(patterns: list[str], field: str) -> None:
    error = refusal(model.Trigger(patterns))
    assert error.reason == "INVALID_EVENT_PATTERN"
    assert error.violations[0].field == field


def test_context_filter_errors_name_the_key() -> None:
    error = refusal(model.Trigger(["a"], context_filters={"user..id": "x"}))
    assert error.violations[0].field == "trigger.context_filters.user..id"
    assert error.reason == "INVALID_CONDITION"


def test_nesting_limit() -> None:
    compile_trigger(model.Trigger(["a"], [nested(MAX_DEPTH)]))
    error = refusal(model.Trigger(["a"], [nested(MAX_DEPTH + 1)]))
    assert "nested deeper" in error.message


def test_size_limit() -> None:
    many = [F(f"data.f{i}", "equals", i) for i in range(MAX_CONDITION_NODES)]
    compile_trigger(model.Trigger(["a"], many))
    error = refusal(model.Trigger(["a"], [*many, F("data.z", "exists")]))
    assert error.violations[0].field == f"trigger.conditions[{MAX_CONDITION_NODES}]"


def test_valid_trigger_compiles_every_kind() -> None:
    compiled = compile_trigger(
        model.Trigger(
            ["users.*", "orders.**", "*"],
            [
                F("data.user.email", "ends_with", "@corp.com"),
                model.ConditionGroup("any", [F("metadata.ip", "cidr", "10.0.0.0/8"), model.CelCondition("data.n > 3")]),
                model.ConditionGroup("not", [F("data.test", "equals", True)]),
            ],
            context_filters={"region": "eu"},
        )
    )
    assert compiled.patterns == ("users.*", "orders.**", "*")
    assert len(compiled.nodes) == 4  # the context filter, then the three conditions


def test_path_argument_prefixes_errors() -> None:
    with pytest.raises(InvalidArgument) as info:
        compile_trigger(model.Trigger(["a"], [F("data.a", "regex", "(")]), path="action.trigger")
    assert info.value.violations[0].field == "action.trigger.conditions[0].value"
