"""What a CEL expression reads of an event, and how large that is.

The engine converts every value it is given into its own representation before it
evaluates, so handing it all of ``data`` costs time in proportion to the whole event
even when the expression reads one field. :func:`reads` finds, from the syntax tree,
the paths below each envelope field that the expression can reach (``data.amount``
reads only ``amount``; ``data.items.exists(...)`` reads ``items``; ``data[k]`` or
``size(data)`` read all of ``data``), and :func:`pruner` builds the function that
copies just those parts out of an envelope. :func:`measure` then bounds what is left
before the engine sees it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .celparse import Comprehension, Expr, Ident, Index, Select, children

#: below an envelope field, the keys read: ``None`` means the whole value
Reads = dict[str, "Reads | None"]


def reads(tree: Expr, roots: frozenset[str]) -> Reads:
    """The paths of ``roots`` that ``tree`` reads (an envelope field it names maps to its keys read)."""
    out: Reads = {}
    stack: list[tuple[Expr, frozenset[str]]] = [(tree, frozenset())]
    while stack:
        node, bound = stack.pop()
        if isinstance(node, Select | Ident):
            fields: list[str] = []
            while isinstance(node, Select):
                fields.append(node.field)
                node = node.operand
            if isinstance(node, Ident):
                if node.name in roots and node.name not in bound:
                    _add(out, node.name, fields[::-1])
                continue
            stack.append((node, bound))
        elif isinstance(node, Comprehension):
            stack.append((node.range, bound))
            stack.extend((arg, bound | {node.var}) for arg in node.args)
        elif isinstance(node, Index):
            stack.append((node.operand, bound))
            stack.append((node.index, bound))
        else:
            stack.extend((child, bound) for child in children(node))
    return out


def rereads(tree: Expr, roots: frozenset[str]) -> tuple[tuple[str, ...], ...]:
    """The envelope fields, or their first-level keys (``("data", "min")``), that a macro body
    reads: the engine reads (and copies) them again for every item."""
    found: set[tuple[str, ...]] = set()
    stack: list[tuple[Expr, frozenset[str], bool]] = [(tree, frozenset(), False)]
    while stack:
        node, bound, inside = stack.pop()
        if isinstance(node, Select | Ident):
            fields: list[str] = []
            while isinstance(node, Select):
                fields.append(node.field)
                node = node.operand
            if isinstance(node, Ident):
                if inside and node.name in roots and node.name not in bound:
                    found.add((node.name, fields[-1]) if fields else (node.name,))
                continue
            stack.append((node, bound, inside))
        elif isinstance(node, Comprehension):
            stack.append((node.range, bound, inside))
            stack.extend((arg, bound | {node.var}, True) for arg in node.args)
        else:
            stack.extend((child, bound, inside) for child in children(node))
    return tuple(sorted(p for p in found if len(p) == 1 or (p[0],) not in found))


def _add(tree: Reads, root: str, fields: list[str]) -> None:
    node: Reads = tree
    for name in [root, *fields[:-1]] if fields else []:
        if name in node and node[name] is None:
            return  # already read whole
        child = node.setdefault(name, {})
        assert child is not None
        node = child
    node[fields[-1] if fields else root] = None


Pruner = Callable[[dict[str, Any]], dict[str, Any]]


def pruner(read: Reads) -> Pruner:
    """A function from an envelope to the variables the expression needs: only what it reads."""
    plan = tuple(read.items())

    def variables(envelope: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, keys in plan:
            if name in envelope:
                value = envelope[name]
                out[name] = value if keys is None else _prune(value, keys)
        return out

    return variables


def _prune(value: Any, keys: Reads) -> Any:
    if type(value) is not dict:
        return value  # reading a field of it fails in the engine as it would on the whole value
    out: dict[str, Any] = {}
    for key, below in keys.items():
        if key in value:
            out[key] = value[key] if below is None else _prune(value[key], below)
    return out


def measure(values: Iterable[Any], max_values: int) -> tuple[int, int]:
    """(values counted recursively, items of the longest list or map); counting stops once
    past ``max_values``, so the first is then only known to exceed it."""
    count = 0
    longest = 0
    stack = list(values)
    while stack:
        value = stack.pop()
        count += 1
        kind = type(value)
        if kind is dict or kind is list or kind is tuple:
            size = len(value)
            if size > longest:
                longest = size
            if count + size > max_values:
                return count + size, longest
            stack.extend(value.values() if kind is dict else value)
    return count, longest


__all__ = ["Pruner", "Reads", "measure", "pruner", "reads", "rereads"]
