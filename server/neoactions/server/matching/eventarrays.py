"""How EventBridge patterns read arrays in an event, as AWS Event Ruler documents it.

* **Leaf values.** The values a pattern field sees at a path are the *leaves* there:
  arrays are crossed at any depth (an array of objects passes each object's field on,
  nested arrays are flattened), objects are not leaves, and an empty array has no value.
  So ``{"o": {"p": ["x"]}}`` looks into every object of ``"o": [{...}, {...}]``, and
  ``exists`` is true only when at least one leaf is there.
* **Array consistency.** When one pattern names several fields below the same array of
  objects, the values that satisfy them must come from the same element of that array
  (Ruler's ``rulesForJSONEvent``): ``{"o": {"p": ["a"], "q": ["b"]}}`` does not match
  ``"o": [{"p": "a"}, {"q": "b"}]``. ``exists: false`` is about the whole event (the
  field has no value anywhere), as documented, so it takes no part in the element choice.

:func:`leaf_reader` and :func:`leaves` give the first reading; :class:`ArrayConsistency`
checks the second, as an extra conjunct of the patterns that can need it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from neoactions.domain.explain import ConditionExplanation

from .paths import MISSING, Segments

if TYPE_CHECKING:
    from .eventpattern import LeafNode

Reader = Callable[[dict[str, Any]], Any]


def _gather(value: Any, segments: Segments, i: int, out: list[Any]) -> None:
    """Add to ``out`` every value at ``segments[i:]`` below ``value``, through arrays at any
    depth (recursion only per array on the path: nested arrays are flattened by :func:`elements`)."""
    end = len(segments)
    while i < end:
        kind = type(value)
        if kind is dict:
            value = value.get(segments[i], MISSING)
            if value is MISSING:
                return
            i += 1
        elif kind is list:
            for item in elements(value):
                # walk each element's objects inline; only a further array recurses
                j = i
                while j < end:
                    kind = type(item)
                    if kind is dict:
                        item = item.get(segments[j], MISSING)
                        if item is MISSING:
                            break
                        j += 1
                    else:
                        if kind is list:
                            _gather(item, segments, j, out)
                        break
                else:
                    out.append(item)
            return
        else:
            return
    out.append(value)


def _gathered(value: list[Any], segments: Segments, i: int) -> list[Any]:
    out: list[Any] = []
    _gather(value, segments, i, out)
    return out


def leaf_reader(segments: Segments) -> Reader:
    """A function giving what is at ``segments``: the value itself while only objects are
    walked, or, when an array is met before the end, the list of values reached through
    every element. Either way :func:`leaves` turns it into the leaf values."""
    if len(segments) == 1:
        (first,) = segments
        return lambda envelope: envelope.get(first, MISSING)
    if len(segments) == 2:
        first, second = segments

        def read2(envelope: dict[str, Any]) -> Any:
            parent = envelope.get(first, MISSING)
            if type(parent) is dict:
                return parent.get(second, MISSING)
            return _gathered(parent, segments, 1) if type(parent) is list else MISSING

        return read2
    if len(segments) == 3:
        first, second, third = segments

        def read3(envelope: dict[str, Any]) -> Any:
            parent = envelope.get(first, MISSING)
            if type(parent) is dict:
                parent = parent.get(second, MISSING)
                if type(parent) is dict:
                    return parent.get(third, MISSING)
                return _gathered(parent, segments, 2) if type(parent) is list else MISSING
            return _gathered(parent, segments, 1) if type(parent) is list else MISSING

        return read3

    def read(envelope: dict[str, Any]) -> Any:
        value: Any = envelope
        for i, segment in enumerate(segments):
            kind = type(value)
            if kind is dict:
                value = value.get(segment, MISSING)
                if value is MISSING:
                    return MISSING
            elif kind is list:
                return _gathered(value, segments, i)
            else:
                return MISSING
        return value

    return read


def elements(array: list[Any]) -> list[Any]:
    """The items of ``array`` with nested arrays flattened (iteratively: any depth is safe)."""
    for item in array:
        if type(item) is list:
            return list(_flattened(array))
    return array


def _flattened(array: list[Any]) -> Iterator[Any]:
    stack = [iter(array)]
    while stack:
        for item in stack[-1]:
            if type(item) is list:
                stack.append(iter(item))
                break
            yield item
        else:
            stack.pop()


def leaves(seen: Any) -> list[Any]:
    """The leaf values in what a reader returned: no objects, no arrays, nothing for MISSING."""
    kind = type(seen)
    if kind is list:
        return [item for item in elements(seen) if type(item) is not dict]
    if kind is dict or seen is MISSING:
        return []
    return [seen]


# --- array consistency ------------------------------------------------------------


@dataclass(slots=True)
class PatternObject:
    """One object of a pattern: its value arrays, nested objects and ``$or`` groups."""

    fields: list[tuple[str, LeafNode]] = field(default_factory=list)
    children: dict[str, PatternObject] = field(default_factory=dict)
    #: each group lists alternative objects at this same level (one must hold)
    groups: list[list[PatternObject]] = field(default_factory=list)

    def merged(self, *others: PatternObject) -> PatternObject:
        out = PatternObject(list(self.fields), dict(self.children), list(self.groups))
        for other in others:
            out.fields.extend(other.fields)
            out.groups.extend(other.groups)
            for key, child in other.children.items():
                mine = out.children.get(key)
                out.children[key] = child if mine is None else mine.merged(child)
        return out

    def leaf_nodes(self) -> Iterator[LeafNode]:
        for _, leaf in self.fields:
            yield leaf
        for child in self.children.values():
            yield from child.leaf_nodes()
        for group in self.groups:
            for branch in group:
                yield from branch.leaf_nodes()


def _shared_objects(root: PatternObject) -> list[Segments]:
    """Paths of the objects (below an envelope field) that hold two fields that can match:
    only an array there makes the fields choose one element together."""
    counts: dict[Segments, int] = {}
    for leaf in root.leaf_nodes():
        if leaf.positive:
            for n in range(2, len(leaf.segments)):
                prefix = leaf.segments[:n]
                counts[prefix] = counts.get(prefix, 0) + 1
    return [prefix for prefix, count in counts.items() if count > 1]


def needs_consistency(root: PatternObject) -> bool:
    """Whether the pattern has fields that an array of objects could hold to one element;
    otherwise every field is read independently anyway."""
    return bool(_shared_objects(root))


def _level_keys(obj: PatternObject) -> set[str]:
    """Nested-object keys named at this level, by the object or by any of its ``$or`` branches."""
    keys = set(obj.children)
    for group in obj.groups:
        for branch in group:
            keys |= _level_keys(branch)
    return keys


def _one(alternatives: list[PatternObject]) -> PatternObject:
    return alternatives[0] if len(alternatives) == 1 else PatternObject(groups=[alternatives])


def normalise(obj: PatternObject, spend: Callable[[int], None]) -> list[PatternObject]:
    """Alternatives equivalent to ``obj`` in which no ``$or`` branch names a nested object
    that its level (or another group) names too.

    Such a branch must be merged with its siblings before evaluation: otherwise the
    branch and the sibling would each pick their own element of an array there.
    ``spend`` is charged one per alternative made (it refuses too many)."""
    children = {key: _one(normalise(child, spend)) for key, child in obj.children.items()}
    groups = [[alt for branch in group for alt in normalise(branch, spend)] for group in obj.groups]
    node = PatternObject(obj.fields, children, groups)
    named = [set(children)] + [set().union(*(_level_keys(b) for b in group)) for group in groups]
    if all(not (a & b) for a, b in itertools.combinations(named, 2)):
        return [node]
    base = PatternObject(obj.fields, children)
    out: list[PatternObject] = []
    for combination in itertools.product(*groups):
        spend(1)
        out.extend(normalise(base.merged(*combination), spend))
    return out


class ArrayConsistency:
    """The conjunct that holds a pattern's fields to one element of each array of objects.

    The pattern's other conjuncts (read with :func:`leaves`) are necessary conditions of
    this one, and equal to it when no array of objects lies on the pattern's object paths;
    so it first looks for such an array and only then evaluates the pattern as a whole.
    """

    __slots__ = ("_absence", "_gates", "_test", "location")

    def __init__(self, location: str, root: PatternObject) -> None:
        self.location = location
        self._test = _object_test(root)
        self._absence = tuple({id(leaf): leaf for leaf in root.leaf_nodes() if leaf.absence}.values())
        shared = _shared_objects(root)
        # A reader of the deepest shared objects sees an array anywhere above them too
        # (it returns a list), so those are the only paths to look at.
        deepest = [p for p in shared if not any(q != p and q[: len(p)] == p for q in shared)]
        self._gates = tuple(leaf_reader(p) for p in sorted(deepest))

    def _matches(self, envelope: dict[str, Any]) -> bool:
        for gate in self._gates:
            if type(gate(envelope)) is list:
                break
        else:
            return True  # no array where fields share an object: the other conjuncts decide
        absent = {id(leaf): leaf.absent_from(envelope) for leaf in self._absence} if self._absence else _NONE
        return self._test(envelope, absent)

    def test(self, envelope: dict[str, Any]) -> bool:
        return self._matches(envelope)

    def tester(self) -> Callable[[dict[str, Any]], bool]:
        return self._matches

    def explain(self, envelope: dict[str, Any]) -> ConditionExplanation:
        return ConditionExplanation(
            location=self.location,
            kind="event_pattern",
            matched=self._matches(envelope),
            operator="same_array_element",
            present=True,
        )

    def index_key(self) -> None:
        return None


_EMPTY: dict[str, Any] = {}
_NONE: dict[int, bool] = {}

#: evaluates one pattern object against a value, given the absence of the ``exists: false`` leaves
ObjectTest = Callable[[Any, dict[int, bool]], bool]


def _object_test(obj: PatternObject) -> ObjectTest:
    """``obj`` as one function (built once: no attribute lookups while matching)."""
    fields = tuple((key, leaf.accepts_here, id(leaf)) for key, leaf in obj.fields)
    children = tuple((key, _object_test(child)) for key, child in obj.children.items())
    groups = tuple(tuple(_object_test(branch) for branch in group) for group in obj.groups)

    def matches(value: Any, absent: dict[int, bool]) -> bool:
        if type(value) is list:
            empty = True
            for item in elements(value):
                if matches(item, absent):
                    return True
                empty = False
            # no element to choose: only what holds without one (exists: false) can pass
            return empty and matches(MISSING, absent)
        present = value if type(value) is dict else _EMPTY
        for key, accepts, leaf in fields:
            if not accepts(present.get(key, MISSING), absent.get(leaf, False)):
                return False
        for key, child in children:
            if not child(present.get(key, MISSING), absent):
                return False
        for group in groups:
            for branch in group:
                if branch(value, absent):
                    break
            else:
                return False
        return True

    return matches


__all__ = [
    "ArrayConsistency",
    "PatternObject",
    "elements",
    "leaf_reader",
    "leaves",
    "needs_consistency",
    "normalise",
]
