"""AWS EventBridge-style JSON event patterns, compiled to the same nodes as conditions.

Mapping (see ``docs/matching.md`` for the full table and what is unsupported):

* top-level ``detail-type`` is the event ``type``, ``detail`` is ``data``; every
  envelope field (``source``, ``type``, ``data``, ``metadata``, ``subject``, ...)
  may also be named directly. ``account``, ``region``, ``resources`` and ``version``
  have no counterpart and are refused.
* an object nests (AND of its fields); an array lists the accepted values (OR);
  ``$or`` lists alternative sub-patterns at any level.
* arrays in the event are read as AWS Event Ruler reads them (:mod:`.eventarrays`): a
  field sees the leaf values at its path through arrays at any depth (a value matcher
  passes if any leaf passes; ``exists`` is true when there is a leaf, so not for ``[]``
  nor an object), and fields below one array of objects must match in the same element.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import re2

from neoactions.domain.errors import InvalidArgument
from neoactions.domain.explain import ConditionExplanation

from . import limits
from .eventarrays import ArrayConsistency, PatternObject, leaf_reader, leaves, needs_consistency, normalise
from .eventtypes import is_event_type
from .nodes import EnvelopeTest, GroupNode, IndexKey, Node
from .operators import address_in, compile_regex, parse_networks
from .paths import ENVELOPE_FIELDS, MISSING, OBJECT_FIELDS, Segments, display
from .values import is_number, scalar_key

_REASON = "INVALID_EVENT_PATTERN"
_ALIASES = {"detail-type": "type", "detail": "data"}
_UNSUPPORTED = frozenset({"account", "region", "resources", "version"})

ValueTest = Callable[[Any], bool]


def _bad(where: str, description: str) -> InvalidArgument:
    return InvalidArgument.field(where, description, reason=_REASON)


@dataclass(frozen=True, slots=True)
class CompiledEventPattern:
    """The pattern's conjuncts, and its literal event types when it names only exact ones.

    ``type_node`` is the conjunct those types come from: a trigger that uses them as
    its type patterns can drop it, since the patterns then test the same thing.
    """

    nodes: tuple[Node, ...]
    event_types: tuple[str, ...]
    type_node: Node | None = None


class LeafNode:
    """One array of accepted values at one path, read through arrays (see :mod:`.eventarrays`)."""

    __slots__ = (
        "_keys",
        "_read",
        "_tests",
        "_wants_absent",
        "_wants_present",
        "absence",
        "expected",
        "location",
        "positive",
        "segments",
    )

    def __init__(
        self,
        location: str,
        segments: Segments,
        expected: list[Any],
        keys: frozenset[Any],
        tests: tuple[ValueTest, ...],
        exists: tuple[bool, ...],
    ) -> None:
        self.location = location
        self.segments = segments
        self.expected = expected
        self._keys = keys
        self._tests = tests
        self._wants_present = True in exists
        self._wants_absent = False in exists
        self._read = leaf_reader(segments)
        #: it can pass on values the event has (not only on the field's absence)
        self.positive = bool(keys or tests or self._wants_present)
        #: it has ``exists: false``, which is about the whole event
        self.absence = self._wants_absent

    def _any(self, values: list[Any]) -> bool:
        keys = self._keys
        for value in values:
            if keys and scalar_key(value) in keys:
                return True
            for test in self._tests:
                if test(value):
                    return True
        return False

    def _accepts(self, seen: Any) -> bool:
        kind = type(seen)
        if kind is list or kind is dict or seen is MISSING:
            values = leaves(seen)
            if not values:
                return self._wants_absent
            return self._wants_present or self._any(values)
        # one scalar (the common case), without building a list
        if self._wants_present or (self._keys and scalar_key(seen) in self._keys):
            return True
        for test in self._tests:  # noqa: SIM110 - a plain loop beats any() over a generator here
            if test(seen):
                return True
        return False

    def accepts_here(self, seen: Any, absent: bool) -> bool:
        """Whether it passes on ``seen``, what one array element holds at this field;
        ``absent`` tells whether the field has no value anywhere in the event."""
        if absent and self._wants_absent:
            return True
        values = leaves(seen)
        return bool(values) and (self._wants_present or self._any(values))

    def absent_from(self, envelope: dict[str, Any]) -> bool:
        return not leaves(self._read(envelope))

    def test(self, envelope: dict[str, Any]) -> bool:
        return self._accepts(self._read(envelope))

    def explain(self, envelope: dict[str, Any]) -> ConditionExplanation:
        seen = self._read(envelope)
        return ConditionExplanation(
            location=self.location,
            kind="event_pattern",
            matched=self._accepts(seen),
            field=display(self.segments),
            operator="match",
            expected=self.expected,
            actual=None if seen is MISSING else seen,
            present=bool(leaves(seen)),
        )

    def tester(self) -> EnvelopeTest:
        read, accepts = self._read, self._accepts
        return lambda envelope: accepts(read(envelope))

    def index_key(self) -> IndexKey | None:
        if self._tests or self._wants_present or self._wants_absent or not self._keys:
            return None
        return IndexKey(self.segments, True, self._keys)

    def literal_strings(self) -> list[str] | None:
        if self._tests or self._wants_present or self._wants_absent:
            return None
        values = [v for v in self.expected if isinstance(v, str)]
        return values if len(values) == len(self.expected) else None


# --- value matchers --------------------------------------------------------------


def _string(value: Any, where: str, what: str) -> str:
    if not isinstance(value, str):
        raise _bad(where, f"{what} needs a string")
    if len(value) > limits.MAX_STRING_LENGTH:
        raise _bad(where, f"string longer than {limits.MAX_STRING_LENGTH} characters")
    return value


def _affix(value: Any, where: str, what: str, ends: bool) -> ValueTest:
    """``prefix`` / ``suffix``: a string, or ``{"equals-ignore-case": string}``."""
    fold = False
    if isinstance(value, dict):
        if set(value) != {"equals-ignore-case"}:
            raise _bad(where, f'{what} takes a string or {{"equals-ignore-case": string}}')
        value, fold = value["equals-ignore-case"], True
    text = _string(value, where, what)
    if fold:
        text = text.casefold()
        if ends:
            return lambda v: isinstance(v, str) and v.casefold().endswith(text)
        return lambda v: isinstance(v, str) and v.casefold().startswith(text)
    if ends:
        return lambda v: isinstance(v, str) and v.endswith(text)
    return lambda v: isinstance(v, str) and v.startswith(text)


def _wildcard(value: Any, where: str) -> ValueTest:
    """``*`` matches any run of characters; ``\\*`` and ``\\\\`` escape."""
    text = _string(value, where, "wildcard")
    parts: list[str] = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            if i + 1 >= len(text) or text[i + 1] not in "*\\":
                raise _bad(where, "in a wildcard, '\\' may only escape '*' or '\\'")
            literal.append(text[i + 1])
            i += 2
            continue
        if ch == "*":
            if text[i + 1 : i + 2] == "*":
                raise _bad(where, "consecutive '*' are not allowed in a wildcard")
            parts.append(re2.escape("".join(literal)))
            literal = []
        else:
            literal.append(ch)
        i += 1
    parts.append(re2.escape("".join(literal)))
    return compile_regex("(?s)" + ".*".join(parts), where, reason=_REASON, full=True)


def _ignore_case(value: Any, where: str) -> ValueTest:
    folded = _string(value, where, "equals-ignore-case").casefold()
    return lambda v: isinstance(v, str) and v.casefold() == folded


_LOWER = {">": operator.gt, ">=": operator.ge}
_UPPER = {"<": operator.lt, "<=": operator.le}


def _numeric(value: Any, where: str) -> ValueTest:
    """``[">", 0, "<=", 5]`` or ``["=", 5]``: JSON numbers only (strings do not coerce)."""
    if not isinstance(value, list) or len(value) not in (2, 4):
        raise _bad(where, 'numeric takes ["=", n] or one or two comparisons like [">", 0, "<=", 5]')
    checks: list[tuple[Callable[[Any, Any], bool], float]] = []
    sides: set[str] = set()
    for j in range(0, len(value), 2):
        op, bound = value[j], value[j + 1]
        if not is_number(bound) or not math.isfinite(bound):
            raise _bad(f"{where}[{j + 1}]", "numeric bounds must be finite numbers")
        if op == "=":
            if len(value) != 2:
                raise _bad(where, "numeric '=' cannot be combined with a range")
            checks.append((operator.eq, bound))
            continue
        side = "lower" if op in _LOWER else "upper" if op in _UPPER else ""
        if not side:
            raise _bad(f"{where}[{j}]", f"unknown numeric operator {op!r} (=, <, <=, >, >=)")
        if side in sides:
            raise _bad(where, f"numeric has two {side} bounds")
        sides.add(side)
        checks.append(((_LOWER | _UPPER)[op], bound))
    if len(checks) == 1:
        ((check, bound),) = checks
        return lambda v: is_number(v) and check(v, bound)
    (low, low_bound), (high, high_bound) = checks
    return lambda v: is_number(v) and low(v, low_bound) and high(v, high_bound)


def _anything_but(value: Any, where: str) -> ValueTest:
    """True for a present value that matches none of what follows ``anything-but``."""
    inner: ValueTest
    if isinstance(value, dict):
        if len(value) != 1:
            raise _bad(where, "anything-but takes one of prefix, suffix, wildcard, equals-ignore-case")
        ((kind, operand),) = value.items()
        operands = operand if isinstance(operand, list) and kind in ("wildcard", "equals-ignore-case") else [operand]
        if not operands:
            raise _bad(where, f"anything-but {kind} needs at least one value")
        if kind == "prefix":
            inner = _affix(operand, f"{where}.prefix", "prefix", ends=False)
        elif kind == "suffix":
            inner = _affix(operand, f"{where}.suffix", "suffix", ends=True)
        elif kind == "wildcard":
            tests = [_wildcard(o, f"{where}.wildcard") for o in operands]
            inner = lambda v: any(t(v) for t in tests)  # noqa: E731
        elif kind == "equals-ignore-case":
            tests = [_ignore_case(o, f"{where}.equals-ignore-case") for o in operands]
            inner = lambda v: any(t(v) for t in tests)  # noqa: E731
        else:
            raise _bad(where, f"anything-but does not support {kind!r}")
        # As in Event Ruler, only strings can be excluded by the string forms: any other
        # value (a number, a boolean, null) is "anything but" them.
        return lambda v: not (type(v) is str and inner(v))
    values = value if isinstance(value, list) else [value]
    if not values or len(values) > limits.MAX_LIST_ITEMS:
        raise _bad(where, f"anything-but needs 1 to {limits.MAX_LIST_ITEMS} values")
    for i, item in enumerate(values):
        if not (isinstance(item, str) or is_number(item)):
            raise _bad(
                f"{where}[{i}]" if isinstance(value, list) else where, "anything-but values are strings or numbers"
            )
    keys = frozenset(scalar_key(v) for v in values)
    # Any leaf value not listed, null included (Event Ruler: "anything except what's provided").
    return lambda v: scalar_key(v) not in keys


def _matcher(element: dict[str, Any], where: str) -> tuple[ValueTest | None, bool | None]:
    """(value test, exists flag) of one object in a value array."""
    if len(element) != 1:
        raise _bad(where, "a matcher object has exactly one key")
    ((kind, operand),) = element.items()
    at = f"{where}.{kind}"
    if kind == "exists":
        if not isinstance(operand, bool):
            raise _bad(at, "exists takes true or false")
        return None, operand
    if kind == "prefix":
        return _affix(operand, at, "prefix", ends=False), None
    if kind == "suffix":
        return _affix(operand, at, "suffix", ends=True), None
    if kind == "equals-ignore-case":
        return _ignore_case(operand, at), None
    if kind == "wildcard":
        return _wildcard(operand, at), None
    if kind == "numeric":
        return _numeric(operand, at), None
    if kind == "anything-but":
        return _anything_but(operand, at), None
    if kind == "cidr":
        networks = parse_networks(operand, at, reason=_REASON)
        return (lambda v: address_in(networks, v)), None
    raise _bad(
        where,
        f"unsupported matcher {kind!r} (prefix, suffix, anything-but, numeric, exists, "
        "equals-ignore-case, wildcard, cidr)",
    )


# --- structure -------------------------------------------------------------------


class _Compiler:
    def __init__(self) -> None:
        self.budget = 0

    def spend(self, where: str, n: int = 1) -> None:
        self.budget += n
        if self.budget > limits.MAX_CONDITION_NODES:
            raise _bad(where, f"more than {limits.MAX_CONDITION_NODES} matchers in one event pattern")

    def leaf(self, values: list[Any], segments: Segments, where: str) -> LeafNode:
        if not values:
            raise _bad(where, "a value array needs at least one value")
        if len(values) > limits.MAX_LIST_ITEMS:
            raise _bad(where, f"more than {limits.MAX_LIST_ITEMS} values")
        self.spend(where, len(values))
        keys: set[Any] = set()
        tests: list[ValueTest] = []
        exists: list[bool] = []
        for i, element in enumerate(values):
            at = f"{where}[{i}]"
            if isinstance(element, dict):
                test, flag = _matcher(element, at)
                if test is not None:
                    tests.append(test)
                if flag is not None:
                    exists.append(flag)
            elif isinstance(element, list):
                raise _bad(at, "value arrays cannot nest")
            else:
                if isinstance(element, str) and len(element) > limits.MAX_STRING_LENGTH:
                    raise _bad(at, f"string longer than {limits.MAX_STRING_LENGTH} characters")
                key = scalar_key(element)
                if key is None:
                    raise _bad(at, "exact values are strings, numbers, booleans or null")
                keys.add(key)
        return LeafNode(where, segments, values, frozenset(keys), tuple(tests), tuple(exists))

    def object(self, pattern: Any, prefix: Segments, where: str, depth: int) -> tuple[list[Node], PatternObject]:
        """The object's conjuncts (fields read independently), and its shape for array consistency."""
        if not isinstance(pattern, dict) or not pattern:
            raise _bad(where, "an event pattern is a non-empty JSON object")
        if len(prefix) >= limits.MAX_PATH_SEGMENTS or depth > limits.MAX_DEPTH:
            raise _bad(where, "event pattern nested too deeply")
        nodes: list[Node] = []
        shape = PatternObject()
        for key, value in pattern.items():
            if not isinstance(key, str):
                raise _bad(where, "event pattern keys must be strings")
            at = f"{where}.{key}"
            if key == "$or":
                group, branches = self.alternatives(value, prefix, at, depth)
                nodes.append(group)
                shape.groups.append(branches)
                continue
            segments = (*prefix, self.root(key, at) if not prefix else key)
            name = segments[-1]
            if isinstance(value, list):
                leaf = self.leaf(value, segments, at)
                nodes.append(leaf)
                shape.fields.append((name, leaf))
            elif isinstance(value, dict):
                if len(segments) == 1 and segments[0] not in OBJECT_FIELDS:
                    raise _bad(at, f"{key!r} is a string field: give an array of values")
                inner, child = self.object(value, segments, at, depth + 1)
                nodes.extend(inner)
                known = shape.children.get(name)  # "detail" and "data" name the same field
                shape.children[name] = child if known is None else known.merged(child)
            else:
                raise _bad(at, "give an array of values or a nested object")
        return nodes, shape

    def root(self, key: str, where: str) -> str:
        if key in _UNSUPPORTED:
            raise _bad(where, f"{key!r} has no counterpart in a neoactions event")
        field = _ALIASES.get(key, key)
        if field not in ENVELOPE_FIELDS:
            raise _bad(where, f"unknown event field {key!r}")
        return field

    def alternatives(self, value: Any, prefix: Segments, where: str, depth: int) -> tuple[Node, list[PatternObject]]:
        if not isinstance(value, list) or not value:
            raise _bad(where, "$or takes a non-empty array of patterns")
        branches: list[Node] = []
        shapes: list[PatternObject] = []
        for i, branch in enumerate(value):
            at = f"{where}[{i}]"
            nodes, shape = self.object(branch, prefix, at, depth + 1)
            branches.append(GroupNode(at, "all", tuple(nodes)))
            shapes.append(shape)
        return GroupNode(where, "any", tuple(branches)), shapes


def _consistency(shape: PatternObject, where: str) -> ArrayConsistency:
    made = 0

    def spend(n: int) -> None:
        nonlocal made
        made += n
        if made > limits.MAX_CONDITION_NODES:
            raise _bad(
                where,
                f"more than {limits.MAX_CONDITION_NODES} combinations of $or branches that name the same "
                "nested object: move the shared fields into each branch",
            )

    alternatives = normalise(shape, spend)
    return ArrayConsistency(where, alternatives[0] if len(alternatives) == 1 else PatternObject(groups=[alternatives]))


def compile_event_pattern(pattern: Any, where: str = "trigger.event_pattern") -> CompiledEventPattern:
    """Validate and compile an EventBridge-style pattern found at ``where``."""
    conjuncts, shape = _Compiler().object(pattern, (), where, 0)
    if needs_consistency(shape):
        # last: the cheap conjuncts above usually decide first
        conjuncts.append(_consistency(shape, where))
    nodes = tuple(conjuncts)
    for node in nodes:
        if isinstance(node, LeafNode) and node.segments == ("type",):
            literals = node.literal_strings()
            if literals and all(is_event_type(t) for t in literals):
                return CompiledEventPattern(nodes, tuple(literals), node)
    return CompiledEventPattern(nodes, ())


__all__ = ["CompiledEventPattern", "LeafNode", "compile_event_pattern"]
