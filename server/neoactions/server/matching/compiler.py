"""Compile a trigger once, when its action is saved, into something cheap to evaluate.

Validation and compilation are one pass: any problem raises
:class:`~neoactions.domain.errors.InvalidArgument` naming the field inside the
action (``trigger.conditions[2].value``) with reason ``INVALID_CONDITION`` (conditions,
context filters) or ``INVALID_EVENT_PATTERN`` (event-type patterns, EventBridge
patterns).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from neoactions.domain import model
from neoactions.domain.errors import InvalidArgument
from neoactions.domain.explain import ConditionExplanation, PatternExplanation

from . import limits
from .celexpr import compile_cel
from .eventpattern import compile_event_pattern
from .eventtypes import parse_pattern, segments_match
from .limits import DEFAULT_CEL_LIMITS, CelLimits
from .nodes import CelNode, EnvelopeTest, FieldNode, GroupNode, IndexKey, Node, all_of
from .operators import compile_operator, literal_keys
from .paths import parse_path

_REASON = "INVALID_CONDITION"


@dataclass(frozen=True, slots=True)
class CompiledTrigger:
    """A validated trigger: type patterns plus the conjunction of its condition nodes.

    ``nodes`` holds, in evaluation order, the context filters, the conditions and
    the EventBridge pattern's nodes; the trigger matches when the event type matches
    one pattern and every node passes.
    """

    patterns: tuple[str, ...]
    pattern_segments: tuple[tuple[str, ...], ...]
    nodes: tuple[Node, ...]
    #: the nodes as one plain function (what matching calls)
    test: EnvelopeTest
    #: a ``cel`` condition is among the nodes (its evaluation time is accounted to the tenant)
    has_cel: bool = False

    def matches_type(self, event_type: str) -> bool:
        segments = event_type.split(".")
        return any(segments_match(p, segments) for p in self.pattern_segments)

    def matches(self, envelope: dict[str, Any]) -> bool:
        """Type and conditions: the reference semantics the index must reproduce."""
        return self.matches_type(envelope["type"]) and self.test(envelope)

    def index_keys(self) -> list[IndexKey]:
        """Top-level literal conjuncts; the index files the action under one of them."""
        return [k for k in (n.index_key() for n in self.nodes) if k is not None]

    def explain_patterns(self, event_type: str) -> list[PatternExplanation]:
        segments = event_type.split(".")
        return [
            PatternExplanation(text, segments_match(p, segments))
            for text, p in zip(self.patterns, self.pattern_segments, strict=True)
        ]

    def explain_conditions(self, envelope: dict[str, Any]) -> list[ConditionExplanation]:
        return [n.explain(envelope) for n in self.nodes]


class _Budget:
    """Counts condition nodes against the per-trigger limit, and the worst-case cost of its
    ``cel`` conditions together against the CEL budget (one event evaluates them all)."""

    def __init__(self) -> None:
        self.nodes = 0
        self.cel_cost = 0

    def spend(self, where: str) -> None:
        self.nodes += 1
        if self.nodes > limits.MAX_CONDITION_NODES:
            raise InvalidArgument.field(
                where, f"more than {limits.MAX_CONDITION_NODES} conditions in one trigger", reason=_REASON
            )

    def spend_cel(self, cost: int, where: str, cel_limits: CelLimits) -> None:
        self.cel_cost += cost
        if self.cel_cost > cel_limits.cost_budget:
            raise InvalidArgument.field(
                where,
                f"the trigger's CEL expressions together may cost {self.cel_cost:,} steps on a large event, "
                f"over the budget of {cel_limits.cost_budget:,} (cel_cost_budget); hint: merge them or use "
                "field conditions",
                reason="CEL_TOO_COSTLY",
            )


def _as_parts(condition: Any) -> tuple[str, Any]:
    """(kind, payload) of a model condition or its dict form."""
    if isinstance(condition, model.FieldCondition):
        return "field", (condition.field, condition.operator, condition.value)
    if isinstance(condition, model.ConditionGroup):
        return condition.kind, condition.conditions
    if isinstance(condition, model.CelCondition):
        return "cel", condition.expression
    if isinstance(condition, Mapping):
        for kind in ("all", "any"):
            if kind in condition:
                return kind, condition[kind]
        if "not" in condition:
            inner = condition["not"]
            return "not", inner if isinstance(inner, list) else [inner]
        if "cel" in condition:
            return "cel", condition["cel"]
        return "field", (condition.get("field"), condition.get("operator"), condition.get("value"))
    return "?", condition


def compile_condition(
    condition: Any,
    where: str,
    depth: int = 0,
    budget: _Budget | None = None,
    cel_limits: CelLimits = DEFAULT_CEL_LIMITS,
) -> Node:
    """Compile one condition (a model condition or its dict form) found at ``where``."""
    budget = budget or _Budget()
    budget.spend(where)
    kind, payload = _as_parts(condition)
    if kind == "field":
        field, operator, value = payload
        segments = parse_path(field, f"{where}.field")
        check = compile_operator(operator, value, f"{where}.operator", f"{where}.value")
        return FieldNode(where, segments, operator, value, check, literal_keys(operator, value))
    if kind == "cel":
        program = compile_cel(payload, f"{where}.cel", cel_limits)
        budget.spend_cel(program.cost.cost, f"{where}.cel", cel_limits)
        return CelNode(where, program)
    if kind in ("all", "any", "not"):
        if depth >= limits.MAX_DEPTH:
            raise InvalidArgument.field(
                where, f"condition groups nested deeper than {limits.MAX_DEPTH}", reason=_REASON
            )
        if not isinstance(payload, Sequence) or isinstance(payload, str) or not payload:
            raise InvalidArgument.field(where, f"{kind} needs at least one condition", reason=_REASON)
        if kind == "not" and len(payload) != 1:
            raise InvalidArgument.field(where, "not takes exactly one condition", reason=_REASON)
        children = tuple(
            compile_condition(
                c, f"{where}.{kind}" if kind == "not" else f"{where}.{kind}[{i}]", depth + 1, budget, cel_limits
            )
            for i, c in enumerate(payload)
        )
        return GroupNode(where, kind, children)
    raise InvalidArgument.field(
        where, "a condition is {field, operator, value}, {all|any: [...]}, {not: ...} or {cel: ...}", reason=_REASON
    )


def _context_filters(filters: Any, where: str) -> list[Node]:
    """``{key: value}`` pairs, each ``metadata.<key> equals value``; dotted keys are paths."""
    if not isinstance(filters, Mapping):
        raise InvalidArgument.field(where, "context_filters must be an object", reason=_REASON)
    if len(filters) > limits.MAX_CONTEXT_FILTERS:
        raise InvalidArgument.field(where, f"more than {limits.MAX_CONTEXT_FILTERS} context filters", reason=_REASON)
    nodes: list[Node] = []
    for key, value in filters.items():
        at = f"{where}.{key}"
        if not isinstance(key, str):
            raise InvalidArgument.field(where, "context filter keys must be strings", reason=_REASON)
        segments = parse_path(f"metadata.{key}", at)
        check = compile_operator("equals", value, at, at)
        nodes.append(FieldNode(at, segments, "equals", value, check, literal_keys("equals", value), "context_filter"))
    return nodes


def compile_trigger(
    trigger: model.Trigger, path: str = "trigger", cel_limits: CelLimits = DEFAULT_CEL_LIMITS
) -> CompiledTrigger:
    """Validate and compile ``trigger``; errors name the field under ``path``; ``cel`` conditions
    must fit ``cel_limits``."""
    event_types = trigger.event_types
    if not isinstance(event_types, Sequence) or isinstance(event_types, str):
        raise InvalidArgument.field(f"{path}.event_types", "must be a list of patterns", reason="INVALID_EVENT_PATTERN")
    if len(event_types) > limits.MAX_PATTERNS:
        raise InvalidArgument.field(
            f"{path}.event_types", f"more than {limits.MAX_PATTERNS} patterns", reason="INVALID_EVENT_PATTERN"
        )
    patterns = [(p, parse_pattern(p, f"{path}.event_types[{i}]")) for i, p in enumerate(event_types)]

    nodes: list[Node] = _context_filters(trigger.context_filters or {}, f"{path}.context_filters")
    conditions = trigger.conditions
    if not isinstance(conditions, Sequence) or isinstance(conditions, str):
        raise InvalidArgument.field(f"{path}.conditions", "must be a list of conditions", reason=_REASON)
    budget = _Budget()
    nodes.extend(
        compile_condition(c, f"{path}.conditions[{i}]", 0, budget, cel_limits) for i, c in enumerate(conditions)
    )

    if trigger.event_pattern is not None:
        compiled = compile_event_pattern(trigger.event_pattern, f"{path}.event_pattern")
        pattern_nodes = compiled.nodes
        if not patterns:
            # The pattern's literal types (if any) stand in for event_types, so the index
            # sees them; the conjunct they came from then tests nothing more.
            types = compiled.event_types or ("*",)
            patterns = [(t, parse_pattern(t, f"{path}.event_pattern")) for t in types]
            pattern_nodes = tuple(n for n in pattern_nodes if n is not compiled.type_node)
        nodes.extend(pattern_nodes)
    if not patterns:
        raise InvalidArgument.field(
            f"{path}.event_types",
            "at least one event type pattern is required ('*' matches every event)",
            reason="INVALID_EVENT_PATTERN",
        )
    unique = dict.fromkeys(patterns)  # several spellings may normalise alike; keep the first
    return CompiledTrigger(
        patterns=tuple(text for text, _ in unique),
        pattern_segments=tuple(segments for _, segments in unique),
        nodes=tuple(nodes),
        test=all_of(tuple(n.tester() for n in nodes)) if nodes else _always,
        has_cel=any(_has_cel(n) for n in nodes),
    )


def _has_cel(node: Node) -> bool:
    if isinstance(node, CelNode):
        return True
    return isinstance(node, GroupNode) and any(_has_cel(c) for c in node.children)


def _always(envelope: dict[str, Any]) -> bool:
    return True
