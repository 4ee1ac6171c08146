"""The workflow DSL: a ``workflow`` handler's config parsed into a checked graph of steps.

Pure (no I/O). :func:`parse_workflow` reads the shape and the graph (names, kinds,
``depends_on`` references, cycles, durations, retry policies); :func:`check_workflow`
adds what needs the service's parts (handler types, templates, CEL), through
:class:`Checks`. Every refusal is one ``InvalidArgument`` whose field is the step's
path in the config (``steps[2].depends_on``) and whose message names the step.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from neoactions.domain.errors import FieldViolation, InvalidArgument
from neoactions.domain.model import JSON, HandlerSpec, JSONObject, RetryPolicy

#: what a step does; exactly one of these keys per step
KINDS = ("handler", "action", "set_variable", "wait", "wait_until", "wait_for_event")
VARIABLE_TYPES = ("string", "number", "boolean", "object", "array")
ERROR_MODES = ("fail_fast", "continue", "retry_then_dead_letter")
STEP_KEYS = frozenset(
    {*KINDS, "name", "depends_on", "condition", "input_mapping", "for_each", "max_parallel", "retry_policy", "timeout"}
)
TOP_KEYS = frozenset({"variables", "steps", "error_handling", "output"})
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, None: 1.0}
MAX_STEPS = 500
MAX_PARALLEL_CAP = 1000


@dataclass(frozen=True, slots=True)
class Variable:
    type: str
    default: JSON = None


@dataclass(frozen=True, slots=True)
class EventWait:
    """``wait_for_event``: event types, conditions (values may be templates) and a timeout."""

    event_types: tuple[str, ...]
    conditions: tuple[JSONObject, ...] = ()
    timeout_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    kind: str
    #: where the step is in the config (``steps[2]``), for messages
    path: str
    handler: HandlerSpec | None = None
    action: str = ""
    set_variable: JSONObject = field(default_factory=dict)
    wait_seconds: float | None = None
    wait_until: str = ""
    wait_for_event: EventWait | None = None
    depends_on: tuple[str, ...] = ()
    condition: str = ""
    input_mapping: JSON = None
    #: a template (or a literal array) the step fans out over; ``None``: runs once
    for_each: JSON = None
    max_parallel: int = 10
    retry_policy: RetryPolicy | None = None
    timeout_seconds: float | None = None

    @property
    def runs_child(self) -> bool:
        """It runs as a child execution (a handler or another action)."""
        return self.kind in ("handler", "action")


@dataclass(frozen=True, slots=True)
class Workflow:
    steps: tuple[Step, ...]
    variables: Mapping[str, Variable] = field(default_factory=dict)
    error_mode: str = "fail_fast"
    dead_letter_action: str = ""
    #: a template mapping of the run's output (default: every step's output and the variables)
    output: JSON = None

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)


@dataclass(frozen=True, slots=True)
class Checks:
    """The service's checks a workflow's parts must pass when it is saved."""

    #: handler type name, version, config, field path → raises InvalidArgument (also for unknown types)
    handler: Callable[[HandlerSpec, str], None]
    #: a JSON value of templates, field path → raises InvalidArgument
    templates: Callable[[JSON, str], None]
    #: a CEL expression, field path → raises InvalidArgument
    cel: Callable[[str, str], None]
    #: an event-type pattern, field path → raises InvalidArgument
    event_type: Callable[[str, str], None]


def _bad(path: str, message: str, reason: str = "INVALID_WORKFLOW") -> InvalidArgument:
    return InvalidArgument.field(path, message, reason=reason)


def parse_duration(value: Any, path: str) -> float:
    """Seconds from ``30``, ``"500ms"``, ``"30s"``, ``"5m"``, ``"1h"``, ``"3d"``, ``"1w"``."""
    if isinstance(value, bool):
        raise _bad(path, "a duration is a number of seconds or text like 30s, 5m, 1h, 3d")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        m = _DURATION.match(str(value)) if isinstance(value, str) else None
        if m is None:
            raise _bad(path, f"not a duration: {value!r} (e.g. 30s, 5m, 1h, 3d)")
        seconds = float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
    if not 0 <= seconds <= 10 * 365 * 86400:
        raise _bad(path, f"duration out of range: {value!r}")
    return seconds


def _retry(doc: Any, path: str) -> RetryPolicy:
    if not isinstance(doc, dict):
        raise _bad(path, "retry_policy must be an object")
    known = set(RetryPolicy.__dataclass_fields__)
    unknown = sorted(set(doc) - known)
    if unknown:
        raise _bad(f"{path}.{unknown[0]}", f"unknown retry_policy field (known: {', '.join(sorted(known))})")
    try:
        policy = RetryPolicy(**doc)
    except TypeError as exc:
        raise _bad(path, str(exc)) from None
    if not isinstance(policy.max_retries, int) or not 0 <= policy.max_retries <= 100:
        raise _bad(f"{path}.max_retries", "must be an integer from 0 to 100")
    if policy.backoff not in ("exponential", "linear", "fixed"):
        raise _bad(f"{path}.backoff", "must be exponential, linear or fixed")
    return policy


def _variables(doc: Any) -> dict[str, Variable]:
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise _bad("variables", "must be an object of name: {type, default}")
    out: dict[str, Variable] = {}
    for name, decl in doc.items():
        path = f"variables.{name}"
        if not isinstance(name, str) or not _NAME.match(name):
            raise _bad(path, "a variable name is letters, digits, '_' or '-'")
        if isinstance(decl, str):
            decl = {"type": decl}
        if not isinstance(decl, dict) or set(decl) - {"type", "default"}:
            raise _bad(path, "declare a variable as {type, default}")
        vtype = decl.get("type", "string")
        if vtype not in VARIABLE_TYPES:
            raise _bad(f"{path}.type", f"unknown variable type {vtype!r} (one of: {', '.join(VARIABLE_TYPES)})")
        default = decl.get("default")
        if default is not None and not type_matches(vtype, default):
            raise _bad(f"{path}.default", f"default {default!r} is not a {vtype}")
        out[name] = Variable(vtype, default)
    return out


def type_matches(vtype: str, value: JSON) -> bool:
    """Whether ``value`` is of the variable type ``vtype`` (``""``: any)."""
    if not vtype:
        return True
    if vtype == "string":
        return isinstance(value, str)
    if vtype == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if vtype == "boolean":
        return isinstance(value, bool)
    if vtype == "object":
        return isinstance(value, dict)
    return isinstance(value, list)


def _event_wait(doc: Any, path: str) -> EventWait:
    if not isinstance(doc, dict) or set(doc) - {"event_types", "conditions", "timeout"}:
        raise _bad(path, "wait_for_event is {event_types, conditions, timeout}")
    types = doc.get("event_types")
    if isinstance(types, str):
        types = [types]
    if not isinstance(types, list) or not types or not all(isinstance(t, str) for t in types):
        raise _bad(f"{path}.event_types", "name at least one event type pattern")
    conditions = doc.get("conditions") or []
    if not isinstance(conditions, list) or not all(isinstance(c, dict) for c in conditions):
        raise _bad(f"{path}.conditions", "conditions is a list of {field, operator, value} (or cel) objects")
    timeout = doc.get("timeout")
    return EventWait(
        tuple(types), tuple(conditions), None if timeout is None else parse_duration(timeout, f"{path}.timeout")
    )


def _step(doc: Any, i: int) -> Step:
    path = f"steps[{i}]"
    if not isinstance(doc, dict):
        raise _bad(path, "a step is an object with a name and one of: " + ", ".join(KINDS))
    name = doc.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise _bad(f"{path}.name", "every step needs a name: letters, digits, '_' or '-' (at most 63)")
    unknown = sorted(set(doc) - STEP_KEYS)
    if unknown:
        raise _bad(f"{path}.{unknown[0]}", f"step {name!r}: unknown field {unknown[0]!r}")
    kinds = [k for k in KINDS if k in doc]
    if len(kinds) != 1:
        raise _bad(path, f"step {name!r} needs exactly one of: {', '.join(KINDS)} (has {kinds or 'none'})")
    kind = kinds[0]
    body = doc[kind]
    fields: dict[str, Any] = {}
    if kind == "handler":
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("type"), str)
            or set(body) - {"type", "config", "version"}
        ):
            raise _bad(f"{path}.handler", f"step {name!r}: handler is {{type, config, version}}")
        if not isinstance(body.get("config", {}), dict):
            raise _bad(f"{path}.handler.config", f"step {name!r}: config must be an object")
        fields["handler"] = HandlerSpec.from_dict(body)
    elif kind == "action":
        if not isinstance(body, str) or not body:
            raise _bad(f"{path}.action", f"step {name!r}: action names a stored action")
        fields["action"] = body
    elif kind == "set_variable":
        if not isinstance(body, dict) or not body:
            raise _bad(f"{path}.set_variable", f"step {name!r}: set_variable is an object of variable: value")
        fields["set_variable"] = dict(body)
    elif kind == "wait":
        fields["wait_seconds"] = parse_duration(body, f"{path}.wait")
    elif kind == "wait_until":
        if not isinstance(body, str) or not body:
            raise _bad(f"{path}.wait_until", f"step {name!r}: wait_until is a date (ISO 8601) or a template giving one")
        fields["wait_until"] = body
    else:
        fields["wait_for_event"] = _event_wait(body, f"{path}.wait_for_event")
    deps = doc.get("depends_on", [])
    if isinstance(deps, str):
        deps = [deps]
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        raise _bad(f"{path}.depends_on", f"step {name!r}: depends_on is a list of step names")
    condition = doc.get("condition", "")
    if not isinstance(condition, str):
        raise _bad(f"{path}.condition", f"step {name!r}: condition is a CEL expression (text)")
    max_parallel = doc.get("max_parallel", 10)
    if not isinstance(max_parallel, int) or isinstance(max_parallel, bool) or not 1 <= max_parallel <= MAX_PARALLEL_CAP:
        raise _bad(f"{path}.max_parallel", f"step {name!r}: max_parallel is from 1 to {MAX_PARALLEL_CAP}")
    for_each = doc.get("for_each")
    if for_each is not None:
        if not isinstance(for_each, str | list):
            raise _bad(f"{path}.for_each", f"step {name!r}: for_each is a template giving an array, or an array")
        if kind not in ("handler", "action"):
            raise _bad(f"{path}.for_each", f"step {name!r}: for_each fans out a handler or action step")
    retry = doc.get("retry_policy")
    timeout = doc.get("timeout")
    timeout_seconds = None if timeout is None else parse_duration(timeout, f"{path}.timeout")
    if timeout_seconds is not None and timeout_seconds <= 0:
        raise _bad(f"{path}.timeout", f"step {name!r}: timeout must be > 0")
    return Step(
        name=name,
        kind=kind,
        path=path,
        depends_on=tuple(deps),
        condition=condition,
        input_mapping=doc.get("input_mapping"),
        for_each=for_each,
        max_parallel=max_parallel,
        retry_policy=None if retry is None else _retry(retry, f"{path}.retry_policy"),
        timeout_seconds=timeout_seconds,
        **fields,
    )


def _check_graph(steps: Sequence[Step]) -> None:
    seen: dict[str, Step] = {}
    for s in steps:
        if s.name in seen:
            raise _bad(f"{s.path}.name", f"step {s.name!r} is declared twice (also {seen[s.name].path})")
        seen[s.name] = s
    for s in steps:
        for j, dep in enumerate(s.depends_on):
            if dep not in seen:
                raise _bad(
                    f"{s.path}.depends_on[{j}]",
                    f"step {s.name!r} depends on unknown step {dep!r}",
                    reason="UNKNOWN_STEP",
                )
            if dep == s.name:
                raise _bad(f"{s.path}.depends_on[{j}]", f"step {s.name!r} depends on itself", reason="WORKFLOW_CYCLE")
    # depth-first search for a cycle; report the first step found on it
    state: dict[str, int] = {}
    for start in steps:
        if state.get(start.name):
            continue
        stack: list[tuple[str, int]] = [(start.name, 0)]
        trail: list[str] = []
        while stack:
            name, k = stack.pop()
            if k == 0:
                state[name] = 1
                trail.append(name)
            deps = seen[name].depends_on
            if k < len(deps):
                stack.append((name, k + 1))
                dep = deps[k]
                if state.get(dep) == 1:
                    cycle = [*trail[trail.index(dep) :], dep]
                    s = seen[name]
                    raise _bad(
                        f"{s.path}.depends_on[{k}]",
                        f"step {name!r} is in a cycle: {' -> '.join(cycle)}",
                        reason="WORKFLOW_CYCLE",
                    )
                if not state.get(dep):
                    stack.append((dep, 0))
            else:
                state[name] = 2
                trail.pop()


def parse_workflow(config: Any) -> Workflow:
    """The workflow a handler config declares, its shape and graph checked."""
    if not isinstance(config, dict):
        raise _bad("steps", "a workflow config is an object with steps")
    unknown = sorted(set(config) - TOP_KEYS)
    if unknown:
        raise _bad(unknown[0], f"unknown workflow field {unknown[0]!r} (known: {', '.join(sorted(TOP_KEYS))})")
    raw_steps = config.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise _bad("steps", "a workflow needs at least one step")
    if len(raw_steps) > MAX_STEPS:
        raise _bad("steps", f"a workflow holds at most {MAX_STEPS} steps")
    steps = tuple(_step(doc, i) for i, doc in enumerate(raw_steps))
    _check_graph(steps)
    variables = _variables(config.get("variables"))
    for s in steps:
        for var in s.set_variable:
            if var not in variables:
                variables[var] = Variable("", None)  # undeclared: any type
    handling = config.get("error_handling") or {}
    if not isinstance(handling, dict) or set(handling) - {"mode", "dead_letter_action"}:
        raise _bad("error_handling", "error_handling is {mode, dead_letter_action}")
    mode = handling.get("mode", "fail_fast")
    if mode not in ERROR_MODES:
        raise _bad("error_handling.mode", f"unknown mode {mode!r} (one of: {', '.join(ERROR_MODES)})")
    dead_letter = handling.get("dead_letter_action", "")
    if not isinstance(dead_letter, str):
        raise _bad("error_handling.dead_letter_action", "names a stored action")
    return Workflow(steps, variables, mode, dead_letter, config.get("output"))


def check_workflow(config: Any, checks: Checks) -> Workflow:
    """:func:`parse_workflow`, then every handler, template and CEL expression checked."""
    wf = parse_workflow(config)
    for s in wf.steps:
        with _naming(s):
            _check_step(s, checks)
    if wf.output is not None:
        checks.templates(wf.output, "output")
    return wf


def _check_step(s: Step, checks: Checks) -> None:
    p = s.path
    if s.handler is not None:
        if s.handler.type == "workflow":
            raise _bad(f"{p}.handler.type", f"step {s.name!r}: run another workflow with `action:`, not inline")
        checks.handler(s.handler, f"{p}.handler")
    if s.condition:
        checks.cel(s.condition, f"{p}.condition")
    for key, value in (
        ("input_mapping", s.input_mapping),
        ("set_variable", s.set_variable or None),
        ("for_each", s.for_each),
        ("wait_until", s.wait_until or None),
    ):
        if value is not None:
            checks.templates(value, f"{p}.{key}")
    if s.wait_for_event is not None:
        w = s.wait_for_event
        for j, pattern in enumerate(w.event_types):
            checks.event_type(pattern, f"{p}.wait_for_event.event_types[{j}]")
        checks.templates(list(w.conditions), f"{p}.wait_for_event.conditions")


@contextmanager
def _naming(step: Step) -> Iterator[None]:
    """A refusal inside names the step in its message."""
    try:
        yield
    except InvalidArgument as exc:
        named = f"step {step.name!r}"
        if named in exc.message and all(named in v.description for v in exc.violations):
            raise
        violations = [
            v if named in v.description else FieldViolation(v.field, f"{named}: {v.description}")
            for v in exc.violations
        ]
        message = exc.message if named in exc.message else f"{named}: {exc.message}"
        raise InvalidArgument(message, reason=exc.reason, violations=violations) from None


__all__ = [
    "ERROR_MODES",
    "KINDS",
    "VARIABLE_TYPES",
    "Checks",
    "EventWait",
    "Step",
    "Variable",
    "Workflow",
    "check_workflow",
    "parse_duration",
    "parse_workflow",
    "type_matches",
]
