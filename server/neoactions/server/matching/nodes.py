"""Compiled condition nodes: ``test`` for matching, ``explain`` for the TestAction view.

Every node is immutable once built and evaluates against an envelope dict
(``Event.envelope()``). ``test`` short-circuits; ``explain`` evaluates every
child so the caller sees each outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from neoactions.domain.explain import ConditionExplanation

from .celexpr import CelProgram
from .paths import MISSING, Segments, display, getter, resolve

Test = Callable[[Any], bool]
EnvelopeTest = Callable[[dict[str, Any]], bool]


@dataclass(frozen=True, slots=True)
class IndexKey:
    """A conjunct the index can look up: the value at ``segments`` must have one of ``keys``.

    ``elementwise`` is the EventBridge reading: when the event holds a list there,
    any element may supply the key. Otherwise the whole value must be that scalar.
    """

    segments: Segments
    elementwise: bool
    keys: frozenset[Any]


class Node(Protocol):
    location: str

    def test(self, envelope: dict[str, Any]) -> bool: ...

    def explain(self, envelope: dict[str, Any]) -> ConditionExplanation: ...

    def index_key(self) -> IndexKey | None: ...

    def tester(self) -> EnvelopeTest:
        """A plain function equivalent to ``test`` (no method dispatch on the hot path)."""
        ...


def all_of(tests: tuple[EnvelopeTest, ...]) -> EnvelopeTest:
    # Short fixed arities avoid the loop: most triggers have one to three conjuncts.
    if len(tests) == 1:
        return tests[0]
    if len(tests) == 2:
        first, second = tests
        return lambda envelope: first(envelope) and second(envelope)
    if len(tests) == 3:
        first, second, third = tests
        return lambda envelope: first(envelope) and second(envelope) and third(envelope)

    def test(envelope: dict[str, Any]) -> bool:
        for t in tests:  # noqa: SIM110 - a plain loop beats all() over a generator here
            if not t(envelope):
                return False
        return True

    return test


def any_of(tests: tuple[EnvelopeTest, ...]) -> EnvelopeTest:
    if len(tests) == 1:
        return tests[0]
    if len(tests) == 2:
        first, second = tests
        return lambda envelope: first(envelope) or second(envelope)

    def test(envelope: dict[str, Any]) -> bool:
        for t in tests:  # noqa: SIM110 - as in all_of
            if t(envelope):
                return True
        return False

    return test


class FieldNode:
    """``{field, operator, value}`` (also a context filter, with ``kind`` set accordingly)."""

    __slots__ = ("_check", "_keys", "expected", "kind", "location", "operator", "segments")

    def __init__(
        self,
        location: str,
        segments: Segments,
        operator: str,
        expected: Any,
        check: Test,
        keys: frozenset[Any] | None,
        kind: str = "field",
    ) -> None:
        self.location = location
        self.segments = segments
        self.operator = operator
        self.expected = expected
        self._check = check
        self._keys = keys
        self.kind = kind

    def test(self, envelope: dict[str, Any]) -> bool:
        return self._check(resolve(envelope, self.segments))

    def explain(self, envelope: dict[str, Any]) -> ConditionExplanation:
        seen = resolve(envelope, self.segments)
        return ConditionExplanation(
            location=self.location,
            kind=self.kind,
            matched=self._check(seen),
            field=display(self.segments),
            operator=self.operator,
            expected=self.expected,
            actual=None if seen is MISSING else seen,
            present=seen is not MISSING,
        )

    def index_key(self) -> IndexKey | None:
        return None if self._keys is None else IndexKey(self.segments, False, self._keys)

    def tester(self) -> EnvelopeTest:
        check, segments = self._check, self.segments
        if len(segments) == 2:
            # The commonest shape (data.x, metadata.y): read and test in one call.
            first, second = segments

            def test2(envelope: dict[str, Any]) -> bool:
                parent = envelope.get(first, MISSING)
                if type(parent) is dict:
                    return check(parent.get(second, MISSING))
                return check(resolve(envelope, segments))

            return test2
        get = getter(segments)
        return lambda envelope: check(get(envelope))


class GroupNode:
    """``all`` / ``any`` of children, or ``not`` of one child."""

    __slots__ = ("children", "kind", "location")

    def __init__(self, location: str, kind: str, children: tuple[Node, ...]) -> None:
        self.location = location
        self.kind = kind
        self.children = children

    def test(self, envelope: dict[str, Any]) -> bool:
        if self.kind == "all":
            return all(c.test(envelope) for c in self.children)
        if self.kind == "any":
            return any(c.test(envelope) for c in self.children)
        return not self.children[0].test(envelope)

    def explain(self, envelope: dict[str, Any]) -> ConditionExplanation:
        children = [c.explain(envelope) for c in self.children]
        if self.kind == "all":
            matched = all(c.matched for c in children)
        elif self.kind == "any":
            matched = any(c.matched for c in children)
        else:
            matched = not children[0].matched
        return ConditionExplanation(self.location, self.kind, matched, children=children)

    def index_key(self) -> IndexKey | None:
        return None

    def tester(self) -> EnvelopeTest:
        tests = tuple(c.tester() for c in self.children)
        if self.kind == "all":
            return all_of(tests)
        if self.kind == "any":
            return any_of(tests)
        inner = tests[0]
        return lambda envelope: not inner(envelope)


class CelNode:
    """A CEL expression over the whole envelope."""

    __slots__ = ("location", "program")

    def __init__(self, location: str, program: CelProgram) -> None:
        self.location = location
        self.program = program

    def test(self, envelope: dict[str, Any]) -> bool:
        return self.program.test(envelope)

    def explain(self, envelope: dict[str, Any]) -> ConditionExplanation:
        matched, result, error = self.program.evaluate(envelope)
        return ConditionExplanation(
            location=self.location,
            kind="cel",
            matched=matched,
            expected=self.program.source,
            actual=result,
            present=error == "",
            error=error,
        )

    def index_key(self) -> IndexKey | None:
        return None

    def tester(self) -> EnvelopeTest:
        return self.program.test
