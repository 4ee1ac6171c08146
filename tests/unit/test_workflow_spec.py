"""The workflow DSL (pure): shapes, durations, the graph, and the event-wait index."""

from __future__ import annotations

from pathlib import Path

import pytest

from neoactions.domain.errors import InvalidArgument
from neoactions.domain.model import FieldCondition, Trigger
from neoactions.server.matching import compile_trigger
from neoactions.server.matching.index import WaitIndex
from neoactions.server.workflows.spec import parse_duration, parse_workflow


@pytest.mark.parametrize(
    ("text", "seconds"), [(30, 30.0), ("500ms", 0.5), ("30s", 30.0), ("5m", 300.0), ("1h", 3600.0), ("3d", 259200.0)]
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text, "wait") == seconds


@pytest.mark.parametrize("bad", ["soon", "-1s", True, "1y", None])
def test_bad_durations_are_refused_naming_the_field(bad: object) -> None:
    with pytest.raises(InvalidArgument) as refused:
        parse_duration(bad, "steps[0].wait")
    assert refused.value.violations[0].field == "steps[0].wait"


def test_a_workflow_parses_into_typed_steps() -> None:
    wf = parse_workflow(
        {
            "variables": {"tier": {"type": "string", "default": "free"}},
            "steps": [
                {"name": "a", "handler": {"type": "http", "config": {"url": "x"}}, "retry_policy": {"max_retries": 2}},
                {"name": "b", "wait_for_event": {"event_types": "x.y", "timeout": "1h"}, "depends_on": "a"},
                {"name": "c", "action": "other", "for_each": "{{ data.items }}", "max_parallel": 3},
            ],
            "error_handling": {"mode": "continue"},
        }
    )
    a, b, c = wf.steps
    assert a.kind == "handler" and a.retry_policy is not None and a.retry_policy.max_retries == 2
    assert b.depends_on == ("a",) and b.wait_for_event is not None and b.wait_for_event.timeout_seconds == 3600
    assert c.kind == "action" and c.max_parallel == 3 and wf.error_mode == "continue"


@pytest.mark.parametrize(
    ("config", "field", "words"),
    [
        ({"steps": []}, "steps", "at least one step"),
        ({"steps": [{"name": "a"}]}, "steps[0]", "exactly one of"),
        ({"steps": [{"name": "a", "wait": 1, "action": "x"}]}, "steps[0]", "exactly one of"),
        ({"steps": [{"name": "a", "wait": 1}, {"name": "a", "wait": 1}]}, "steps[1].name", "twice"),
        ({"steps": [{"name": "a", "wait": 1, "depends_on": ["a"]}]}, "steps[0].depends_on[0]", "itself"),
        ({"steps": [{"name": "a", "wait": 1, "bogus": 1}]}, "steps[0].bogus", "unknown field"),
        ({"steps": [{"name": "a", "wait": 1, "for_each": "{{ x }}"}]}, "steps[0].for_each", "fans out"),
        ({"steps": [{"name": "a", "wait": 1}], "error_handling": {"mode": "yolo"}}, "error_handling.mode", "unknown"),
        ({"variables": {"v": {"type": "date"}}, "steps": [{"name": "a", "wait": 1}]}, "variables.v.type", "unknown"),
        (
            {"steps": [{"name": "a", "wait": 1, "depends_on": ["c"]}, {"name": "b", "wait": 1, "depends_on": ["a"]},
                       {"name": "c", "wait": 1, "depends_on": ["b"]}]},
            "depends_on",
            "cycle",
        ),
    ],
)  # fmt: skip
def test_bad_workflows_are_refused_naming_the_field(config: dict[str, object], field: str, words: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        parse_workflow(config)
    assert field in refused.value.violations[0].field and words in refused.value.message


def test_the_wait_index_finds_exactly_the_waits_an_event_satisfies() -> None:
    index = WaitIndex()
    for i in range(1000):
        trigger = Trigger(["payments.*"], [FieldCondition("data.customer", "equals", f"c{i}")])
        index.put(f"run{i}/pay/-1", compile_trigger(trigger))
    index.put("any/pay/-1", compile_trigger(Trigger(["payments.refunded"])))
    envelope = {"type": "payments.succeeded", "data": {"customer": "c42"}, "metadata": {}, "source": ""}
    assert index.match(envelope) == ["run42/pay/-1"]
    assert sorted(index.match({**envelope, "type": "payments.refunded"})) == ["any/pay/-1", "run42/pay/-1"]
    index.remove("run42/pay/-1")
    assert index.match(envelope) == [] and len(index) == 1000


def test_the_proto_workflow_spec_says_what_the_yaml_says() -> None:
    import yaml

    from neoactions.domain.workflows_pb import workflow_config_from_pb, workflow_config_to_pb
    from neoactions.v1 import workflows_pb2

    doc = yaml.safe_load(
        Path(__file__).parents[2].joinpath("docs/workflows.md").read_text().split("```yaml")[1].split("```")[0]
    )
    config = doc["actions"][1]["handler"]["config"]
    config["error_handling"] = {"mode": "retry_then_dead_letter", "dead_letter_action": "notify-ops"}
    config["steps"][0]["retry_policy"] = {"max_retries": 2, "backoff": "fixed", "initial_delay_ms": 10}
    msg = workflow_config_to_pb(config)
    wire = workflows_pb2.WorkflowSpec.FromString(msg.SerializeToString())
    again = workflow_config_from_pb(wire)
    assert parse_workflow(again) == parse_workflow(config)
    assert [s.name for s in wire.steps][:3] == ["welcome", "score", "set-tier"]
    assert wire.steps[3].wait_for_event.conditions[0].field == "data.customer_id"
