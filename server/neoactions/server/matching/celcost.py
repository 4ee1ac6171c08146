"""The worst-case cost of a CEL expression, estimated from its syntax tree.

Every value is described by a :class:`Shape` — upper bounds on the longest list or map
inside it, the values it holds (counted recursively) and the characters of its
strings. An envelope field (``data``, ``metadata``...) is as large as the evaluation
bounds allow (:class:`~.limits.CelLimits`, checked on each event before evaluation).
Costs are in *steps* of about 0.1 µs of the engine's time: one operator, one
comprehension iteration, one list element copied, a few characters scanned.

What grows with the event is what the estimate must catch:

* a macro (``all``, ``exists``, ``exists_one``, ``map``, ``filter``) runs its body once
  per item of its range, so nested macros over event lists multiply;
* ``map`` and ``filter`` build their result by appending to a copy of the list so far
  (as the engine expands them), which is quadratic in the range;
* string and list operators (``+``, ``==``, ``in``, ``contains``, ``matches``) scan or
  copy their operands.

Handing the event's values to the engine costs too (it converts them on each call, about
1 µs a map entry): that is bounded apart, by the values an expression may read
(``max_cel_input_values``, checked before each evaluation), not estimated here.

A macro body's cost is split in a part per item and a part that grows with the item
(measured once with the whole range as the item): the items of one list share the
list's values and characters, so ``data.orders.exists(o, o.lines.exists(l, ...))``
costs the lines of all orders once, not the longest order's lines per order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import re2

from .celparse import Call, Comprehension, Expr, Ident, Index, ListLit, Literal, MapLit, Operator, Select, children
from .limits import CelLimits

#: characters scanned or copied per step
CHARS_PER_STEP = 64
#: copying, comparing or looking through one value (the engine copies the value of every
#: field it selects and every item it binds to a macro variable, compares maps entry by
#: entry, and copies its accumulator on each ``map`` step)
VALUE_STEPS = 2
#: per comprehension iteration (the loop, the accumulator update), besides the body
ITERATION = 4
#: compiling a regular expression: per pattern character, and per this many program instructions
REGEX_COMPILE_PER_CHAR = 8
REGEX_COMPILE_INSTRUCTIONS_PER_STEP = 8
#: a search scans its text once per this many program instructions (at least once)
REGEX_SEARCH_INSTRUCTIONS = 4096
#: macros nested in macros; the estimate visits a body twice per level
MAX_MACRO_NESTING = 4
#: functions the engine runs in constant time on their arguments
_CONSTANT = frozenset(
    {
        "size",
        "getFullYear",
        "getMonth",
        "getDayOfYear",
        "getDayOfMonth",
        "getDate",
        "getDayOfWeek",
        "getHours",
        "getMinutes",
        "getSeconds",
        "getMilliseconds",
        "hasValue",
        "value",
        "orValue",
        "or",
        "of",
        "none",
        "ofNonZeroValue",
    }
)
#: conversions: linear in the characters of their argument, the result no larger
_CONVERSIONS = frozenset({"int", "uint", "double", "bool", "string", "bytes", "dyn", "type", "timestamp", "duration"})
_SCANS = frozenset({"contains", "startsWith", "endsWith"})


@dataclass(frozen=True, slots=True)
class Shape:
    """Upper bounds on one value."""

    #: items of the longest list or map in it (itself included)
    items: int
    #: values in it, counted recursively (a scalar is 1)
    values: int
    #: characters of all its strings and bytes
    chars: int

    def join(self, other: Shape) -> Shape:
        """Either of the two."""
        return Shape(max(self.items, other.items), max(self.values, other.values), max(self.chars, other.chars))

    def plus(self, other: Shape) -> Shape:
        """Both of the two (a concatenation)."""
        return Shape(self.items + other.items, self.values + other.values, self.chars + other.chars)


SCALAR = Shape(0, 1, 0)


@dataclass(frozen=True, slots=True)
class Estimate:
    """The worst case of one expression."""

    #: steps
    cost: int
    #: the expression runs a macro over a list or map (the event's lists must then be bounded)
    iterates: bool


class TooComplex(ValueError):
    """Macros nest deeper than :data:`MAX_MACRO_NESTING`, or a ``matches()`` pattern is unbounded."""


def estimate(tree: Expr, roots: frozenset[str], limits: CelLimits) -> Estimate:
    """Worst-case steps of ``tree`` when the names in ``roots`` are event fields within ``limits``.

    Raises :class:`TooComplex` when macros nest deeper than :data:`MAX_MACRO_NESTING`.
    """
    nesting = _macro_nesting(tree)
    if nesting > MAX_MACRO_NESTING:
        raise TooComplex(f"macros nested {nesting} deep (at most {MAX_MACRO_NESTING})")
    iterates = nesting > 0
    # Without a macro, list sizes only matter linearly: any list may be as long as the input allows.
    items = limits.max_list_items if iterates else limits.max_input_values
    leaf = Shape(min(items, limits.max_input_values), limits.max_input_values, limits.max_string_bytes)
    # what a macro body reads of the event is read again on every item: it is held smaller
    reread = Shape(min(items, limits.max_reread_values), limits.max_reread_values, limits.max_string_bytes)
    cost, _ = _Estimator(leaf, reread).visit(tree, {name: leaf for name in roots})
    return Estimate(cost, iterates)


def _macro_nesting(tree: Expr) -> int:
    deepest = 0
    stack = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, Comprehension):
            depth += 1
            deepest = max(deepest, depth)
        stack.extend((child, depth) for child in children(node))
    return deepest


def _scan(chars: int) -> int:
    return -(-chars // CHARS_PER_STEP)


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False
_RE2_OPTIONS.never_capture = True
_RE2_OPTIONS.max_mem = 64 << 20
# The engine's shorthand classes are Unicode-wide, RE2's ASCII: size them as Unicode classes.
_SHORTHANDS = re.compile(r"\\\\|\\([wWdD])")
_UNICODE = {"w": "\\pL", "W": "\\PL", "d": "\\pN", "D": "\\PN"}


def regex_size(pattern: str) -> int:
    """Instructions of ``pattern`` compiled (RE2's measure, counted repetitions expanded).

    Raises :class:`TooComplex` when RE2 refuses it (too large, or syntax RE2 lacks).
    """
    wide = _SHORTHANDS.sub(lambda m: _UNICODE[m.group(1)] if m.group(1) else m.group(), pattern)
    try:
        return max(len(pattern), int(re2.compile(wide, _RE2_OPTIONS).programsize))
    except re2.error as exc:
        detail = str(exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc)
        raise TooComplex(f"matches() pattern refused: {detail}") from None


class _Estimator:
    def __init__(self, leaf: Shape, reread: Shape) -> None:
        self.leaf = leaf
        self.reread = reread
        #: macro bodies around the node being visited
        self.depth = 0

    def visit(self, node: Expr, scope: dict[str, Shape]) -> tuple[int, Shape]:
        """(steps, shape of the result)."""
        if isinstance(node, Literal):
            return 1 + _scan(node.length), Shape(0, 1, node.length)
        if isinstance(node, Ident):
            shape = scope.get(node.name, SCALAR)
            return 1, self.reread if shape is self.leaf and self.depth else shape
        if isinstance(node, Select):
            cost, shape = self.visit(node.operand, scope)
            if node.test:
                return cost + 1, SCALAR
            return cost + 1 + VALUE_STEPS * shape.values, shape  # the engine copies what it selects
        if isinstance(node, Index):
            cost, shape = self.visit(node.operand, scope)
            index_cost, _ = self.visit(node.index, scope)
            return cost + index_cost + 1 + VALUE_STEPS * shape.values, shape
        if isinstance(node, ListLit | MapLit):
            parts = list(node.items) if isinstance(node, ListLit) else [e for entry in node.entries for e in entry]
            cost, shape = len(parts) + 1, Shape(len(parts), 1, 0)
            for part in parts:
                c, s = self.visit(part, scope)
                cost += c
                shape = Shape(max(shape.items, s.items), shape.values + s.values, shape.chars + s.chars)
            return cost, shape
        if isinstance(node, Operator):
            return self.operator(node, scope)
        if isinstance(node, Call):
            return self.call(node, scope)
        if isinstance(node, Comprehension):
            return self.comprehension(node, scope)
        raise TypeError(f"unknown CEL node {type(node).__name__}")

    def operator(self, node: Operator, scope: dict[str, Shape]) -> tuple[int, Shape]:
        visited = [self.visit(o, scope) for o in node.operands]
        cost = sum(c for c, _ in visited) + len(visited)
        shapes = [s for _, s in visited]
        op = node.op
        if op == "?:":
            return cost, shapes[1].join(shapes[2])
        if op in ("==", "!=", "<", "<=", ">", ">="):
            a, b = shapes
            return cost + VALUE_STEPS * min(a.values, b.values) + _scan(min(a.chars, b.chars)), SCALAR
        if op == "in":
            needle, haystack = shapes
            scanned = min(haystack.chars, haystack.items * needle.chars)
            return cost + VALUE_STEPS * haystack.values + _scan(scanned), SCALAR
        if op == "+":
            # left to right: each step copies everything concatenated so far
            total = shapes[0]
            for shape in shapes[1:]:
                total = total.plus(shape)
                cost += VALUE_STEPS * total.values + _scan(total.chars)
            return cost, total
        return cost, SCALAR  # ! - * / % && ||: constant time on scalars

    def call(self, node: Call, scope: dict[str, Shape]) -> tuple[int, Shape]:
        operands = ([node.target] if node.target is not None else []) + list(node.args)
        visited = [self.visit(o, scope) for o in operands]
        cost = sum(c for c, _ in visited) + 1
        shapes = [s for _, s in visited]
        name = node.function
        if name in _CONSTANT:
            result = SCALAR
            for shape in shapes if name in ("value", "orValue", "or", "of", "ofNonZeroValue") else []:
                result = result.join(shape)
            return cost, result
        if name in _CONVERSIONS:
            argument = shapes[0] if shapes else SCALAR
            result = argument if name in ("string", "bytes", "dyn") else SCALAR
            return cost + VALUE_STEPS * argument.values + _scan(argument.chars), result
        if name in _SCANS:
            return cost + sum(_scan(s.chars) for s in shapes), SCALAR
        if name == "matches" and len(shapes) == 2:
            pattern = operands[1]
            if not isinstance(pattern, Literal) or pattern.kind != "string":
                raise TooComplex("matches() needs a literal pattern (a pattern read from the event is unbounded)")
            size = regex_size(pattern.text)
            # compiled on each call; the search is linear in the text, by a factor that
            # grows with the compiled program
            compile_cost = REGEX_COMPILE_PER_CHAR * len(pattern.text) + size // REGEX_COMPILE_INSTRUCTIONS_PER_STEP
            return cost + compile_cost + _scan(shapes[0].chars) * (1 + size // REGEX_SEARCH_INSTRUCTIONS), SCALAR
        # Anything else (the engine refuses functions it does not know at evaluation):
        # linear in its arguments, the result as large as all of them.
        result = SCALAR
        for shape in shapes:
            cost += VALUE_STEPS * shape.values + _scan(shape.chars)
            result = result.plus(shape)
        return cost, result

    def comprehension(self, node: Comprehension, scope: dict[str, Shape]) -> tuple[int, Shape]:
        cost, source = self.visit(node.range, scope)
        # One item alone, and one item as large as the whole range: the items together are
        # no larger than the range, so the part of the body's cost that grows with its
        # item is paid once over all items (costs are sums and products of sizes).
        unit = Shape(0, 1, 0)
        whole = Shape(source.values, source.values, source.chars)
        unit_cost, unit_shape = self.body(node, {**scope, node.var: unit})
        whole_cost, whole_shape = self.body(node, {**scope, node.var: whole})
        iterations = source.items
        cost += iterations * (unit_cost + ITERATION) + max(0, whole_cost - unit_cost)
        cost += VALUE_STEPS * source.values  # each item is copied into the variable
        if node.macro not in ("map", "filter"):
            return cost, SCALAR
        if node.macro == "filter":
            result = source
        else:
            values = 1 + iterations * unit_shape.values + max(0, whole_shape.values - unit_shape.values)
            chars = iterations * unit_shape.chars + max(0, whole_shape.chars - unit_shape.chars)
            result = Shape(max(iterations, whole_shape.items), values, chars)
        # the result is built as acc + [item]: every iteration copies the list so far
        return cost + iterations * (VALUE_STEPS * result.values + _scan(result.chars)), result

    def body(self, node: Comprehension, scope: dict[str, Shape]) -> tuple[int, Shape]:
        self.depth += 1
        try:
            visited = [self.visit(a, scope) for a in node.args]
        finally:
            self.depth -= 1
        # map(x, p, f): the transform's shape is the result's; filter / all...: a bool
        return sum(c for c, _ in visited), visited[-1][1]


__all__ = [
    "CHARS_PER_STEP",
    "ITERATION",
    "MAX_MACRO_NESTING",
    "SCALAR",
    "Estimate",
    "Shape",
    "TooComplex",
    "estimate",
    "regex_size",
]
