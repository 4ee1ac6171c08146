"""A ``WorkflowSpec`` message (``neoactions.v1.workflows``) to and from the JSON config of a
``workflow`` handler, for the server and the clients alike: the message is the DSL's typed
form; the action stores the config."""

from __future__ import annotations

from typing import Any

from neoactions.domain.convert import (
    condition_from_pb,
    condition_to_pb,
    dump_json,
    handler_from_pb,
    handler_to_pb,
    parse_json,
    retry_policy_from_pb,
)
from neoactions.domain.model import JSONObject, RetryPolicy, condition_from_dict
from neoactions.v1 import actions_pb2, workflows_pb2


def _duration(value: Any) -> str:
    return value if isinstance(value, str) else f"{value:g}s"


def workflow_config_from_pb(msg: workflows_pb2.WorkflowSpec) -> JSONObject:
    """The handler config ``msg`` describes (to save as ``handler: {type: workflow, config}``)."""
    out: JSONObject = {"steps": [_step_from_pb(s, i) for i, s in enumerate(msg.steps)]}
    if msg.variables:
        variables: JSONObject = {}
        for name, v in msg.variables.items():
            variables[name] = {"type": v.type or "string"}
            if v.default_json:
                variables[name]["default"] = parse_json(v.default_json, f"variables.{name}.default_json")
        out["variables"] = variables
    if msg.HasField("error_handling"):
        handling: JSONObject = {"mode": msg.error_handling.mode or "fail_fast"}
        if msg.error_handling.dead_letter_action:
            handling["dead_letter_action"] = msg.error_handling.dead_letter_action
        out["error_handling"] = handling
    if msg.output_json:
        out["output"] = parse_json(msg.output_json, "output_json")
    return out


def _step_from_pb(s: workflows_pb2.WorkflowStep, i: int) -> JSONObject:
    path = f"steps[{i}]"
    out: JSONObject = {"name": s.name}
    kind = s.WhichOneof("kind")
    if kind == "handler":
        out["handler"] = handler_from_pb(s.handler).to_dict()
    elif kind == "action":
        out["action"] = s.action
    elif kind == "set_variable_json":
        out["set_variable"] = parse_json(s.set_variable_json, f"{path}.set_variable_json", want_object=True)
    elif kind == "wait":
        out["wait"] = s.wait
    elif kind == "wait_until":
        out["wait_until"] = s.wait_until
    elif kind == "wait_for_event":
        w = s.wait_for_event
        wait: JSONObject = {"event_types": list(w.event_types)}
        if w.conditions:
            wait["conditions"] = [
                condition_from_pb(c, f"{path}.wait_for_event.conditions[{j}]").to_dict()
                for j, c in enumerate(w.conditions)
            ]
        if w.timeout:
            wait["timeout"] = w.timeout
        out["wait_for_event"] = wait
    if s.depends_on:
        out["depends_on"] = list(s.depends_on)
    if s.condition:
        out["condition"] = s.condition
    if s.input_mapping_json:
        out["input_mapping"] = parse_json(s.input_mapping_json, f"{path}.input_mapping_json")
    if s.for_each:
        # a literal array travels as JSON text; anything else is a template
        literal = s.for_each.lstrip().startswith("[")
        out["for_each"] = parse_json(s.for_each, f"{path}.for_each") if literal else s.for_each
    if s.max_parallel:
        out["max_parallel"] = s.max_parallel
    if s.HasField("retry_policy"):
        out["retry_policy"] = retry_policy_from_pb(s.retry_policy).to_dict()
    if s.timeout:
        out["timeout"] = s.timeout
    return out


def workflow_config_to_pb(config: JSONObject) -> workflows_pb2.WorkflowSpec:
    """The ``WorkflowSpec`` of a (valid) workflow handler config."""
    msg = workflows_pb2.WorkflowSpec(steps=[_step_to_pb(s) for s in config.get("steps", [])])
    for name, decl in (config.get("variables") or {}).items():
        decl = {"type": decl} if isinstance(decl, str) else decl
        msg.variables[name].type = decl.get("type", "string")
        if decl.get("default") is not None:
            msg.variables[name].default_json = dump_json(decl["default"])
    handling = config.get("error_handling")
    if handling:
        msg.error_handling.mode = handling.get("mode", "fail_fast")
        msg.error_handling.dead_letter_action = handling.get("dead_letter_action", "")
    if config.get("output") is not None:
        msg.output_json = dump_json(config["output"])
    return msg


def _step_to_pb(s: JSONObject) -> workflows_pb2.WorkflowStep:
    msg = workflows_pb2.WorkflowStep(name=s["name"])
    if "handler" in s:
        from neoactions.domain.model import HandlerSpec

        msg.handler.CopyFrom(handler_to_pb(HandlerSpec.from_dict(s["handler"])))
    elif "action" in s:
        msg.action = s["action"]
    elif "set_variable" in s:
        msg.set_variable_json = dump_json(s["set_variable"])
    elif "wait" in s:
        msg.wait = _duration(s["wait"])
    elif "wait_until" in s:
        msg.wait_until = s["wait_until"]
    elif "wait_for_event" in s:
        w = s["wait_for_event"]
        types = w.get("event_types", [])
        msg.wait_for_event.event_types.extend([types] if isinstance(types, str) else types)
        msg.wait_for_event.conditions.extend(condition_to_pb(condition_from_dict(c)) for c in w.get("conditions") or [])
        if w.get("timeout") is not None:
            msg.wait_for_event.timeout = _duration(w["timeout"])
    deps = s.get("depends_on") or []
    msg.depends_on.extend([deps] if isinstance(deps, str) else deps)
    msg.condition = s.get("condition", "")
    if s.get("input_mapping") is not None:
        msg.input_mapping_json = dump_json(s["input_mapping"])
    if isinstance(s.get("for_each"), str):
        msg.for_each = s["for_each"]
    elif s.get("for_each") is not None:
        msg.for_each = dump_json(s["for_each"])
    msg.max_parallel = int(s.get("max_parallel", 0))
    if s.get("retry_policy") is not None:
        policy = RetryPolicy(**s["retry_policy"])
        msg.retry_policy.CopyFrom(actions_pb2.RetryPolicy(**policy.to_dict()))
    if s.get("timeout") is not None:
        msg.timeout = _duration(s["timeout"])
    return msg


__all__ = ["workflow_config_from_pb", "workflow_config_to_pb"]
