"""A CEL parser that yields the syntax tree the cost estimator walks.

The engine (``common-expression-language``) parses and runs expressions but does not
expose its tree, so this module reads the same grammar (the CEL language definition)
into a few plain node classes. It is only ever run on text the engine has already
accepted; anything it cannot read raises :class:`CelSyntaxError`, and the expression
is refused rather than run unestimated.

Macros are recognised as the engine expands them: ``r.all(x, p)``, ``exists``,
``exists_one`` / ``existsOne``, ``map`` (two or three arguments) and ``filter`` become
:class:`Comprehension`; ``has(a.f)`` becomes a :class:`Select` with ``test`` set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: nesting of parentheses, calls, lists and operators the parser follows
MAX_NESTING = 32

_FLAT = frozenset({"||", "&&", "+", "*"})
MACROS = frozenset({"all", "exists", "exists_one", "existsOne", "map", "filter"})
_RESERVED = frozenset(
    {"as", "break", "const", "continue", "else", "for", "function", "if", "import", "let", "loop", "package"}
    | {"namespace", "return", "var", "void", "while"}
)


class CelSyntaxError(ValueError):
    """The text is not CEL this parser can read (or nests deeper than :data:`MAX_NESTING`)."""


class Expr:
    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Literal(Expr):
    #: ``int``, ``uint``, ``double``, ``string``, ``bytes``, ``bool`` or ``null``
    kind: str
    #: characters of a string or bytes literal (0 otherwise)
    length: int = 0
    #: a string literal's text, escapes decoded
    text: str = ""


@dataclass(frozen=True, slots=True)
class Ident(Expr):
    name: str


@dataclass(frozen=True, slots=True)
class Select(Expr):
    operand: Expr
    field: str
    #: ``has(operand.field)``
    test: bool = False


@dataclass(frozen=True, slots=True)
class Index(Expr):
    operand: Expr
    index: Expr


@dataclass(frozen=True, slots=True)
class Call(Expr):
    function: str
    target: Expr | None
    args: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Comprehension(Expr):
    macro: str
    range: Expr
    var: str
    #: the predicate / transform arguments after the variable
    args: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class ListLit(Expr):
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class MapLit(Expr):
    entries: tuple[tuple[Expr, Expr], ...]


@dataclass(frozen=True, slots=True)
class Operator(Expr):
    """Unary (``!``, ``-``), binary and the conditional ``?:`` (three operands)."""

    op: str
    operands: tuple[Expr, ...]


_TOKEN = re.compile(
    r"""
    (?P<space>\s+|//[^\n]*)
  | (?P<raw>(?:[rR][bB]?|[bB][rR])(?:\"\"\"[\s\S]*?\"\"\"|'''[\s\S]*?'''|"[^"\n]*"|'[^'\n]*'))
  | (?P<string>[bB]?(?:\"\"\"(?:\\[\s\S]|[\s\S])*?\"\"\"|'''(?:\\[\s\S]|[\s\S])*?'''
                    |"(?:\\[\s\S]|[^"\\\n])*"|'(?:\\[\s\S]|[^'\\\n])*'))
  | (?P<double>(?:\d+\.\d+|\.\d+)(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+)
  | (?P<int>0x[0-9a-fA-F]+[uU]?|\d+[uU]?)
  | (?P<ident>[_a-zA-Z][_a-zA-Z0-9]*)
  | (?P<op>\|\||&&|==|!=|<=|>=|[<>!+\-*/%?:.,()\[\]{}])
    """,
    re.VERBOSE,
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise CelSyntaxError(f"unexpected character {text[pos]!r} at {pos}")
        kind = m.lastgroup or ""
        if kind != "space":
            out.append((kind, m.group()))
        pos = m.end()
    out.append(("end", ""))
    return out


_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|[\s\S])")
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}


def _unescape(match: re.Match[str]) -> str:
    code = match.group(1)
    if len(code) > 1:
        number = int(code, 8) if code[0] in "01234567" else int(code[1:], 16)
        return chr(number) if number < 0x110000 else "\ufffd"
    return _SIMPLE_ESCAPES.get(code, code)


def _string_literal(token: str, raw: bool) -> Literal:
    prefix = re.match(r"[rRbB]*", token)
    flags = prefix.group().lower() if prefix else ""
    body = token[len(flags) :]
    quote = 3 if body[:3] in ('"""', "'''") else 1
    text = body[quote:-quote]
    if not raw:
        text = _ESCAPE.sub(_unescape, text)
    return Literal("bytes" if "b" in flags else "string", len(text), text)


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.pos = 0
        self.depth = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.pos]

    def take(self) -> tuple[str, str]:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def accept(self, text: str) -> bool:
        if self.tokens[self.pos][1] == text and self.tokens[self.pos][0] in ("op", "ident"):
            self.pos += 1
            return True
        return False

    def expect(self, text: str) -> None:
        if not self.accept(text):
            raise CelSyntaxError(f"expected {text!r}, found {self.peek()[1] or 'the end'!r}")

    def nest(self) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise CelSyntaxError(f"nested deeper than {MAX_NESTING}")

    def parse(self) -> Expr:
        tree = self.expr()
        if self.peek()[0] != "end":
            raise CelSyntaxError(f"unexpected {self.peek()[1]!r}")
        return tree

    def expr(self) -> Expr:
        self.nest()
        cond = self.binary(0)
        if self.accept("?"):
            then = self.binary(0)
            self.expect(":")
            cond = Operator("?:", (cond, then, self.expr()))
        self.depth -= 1
        return cond

    _LEVELS: tuple[frozenset[str], ...] = (
        frozenset({"||"}),
        frozenset({"&&"}),
        frozenset({"==", "!=", "<", "<=", ">", ">=", "in"}),
        frozenset({"+", "-"}),
        frozenset({"*", "/", "%"}),
    )

    def binary(self, level: int) -> Expr:
        if level == len(self._LEVELS):
            return self.unary()
        ops = self._LEVELS[level]
        items = [self.binary(level + 1)]
        current = ""
        chained = 0
        while self.peek()[1] in ops and self.peek()[0] in ("op", "ident"):
            op = self.take()[1]
            right = self.binary(level + 1)
            if op == current and op in _FLAT:
                items.append(right)  # a chain of one associative operator is one node
                continue
            if current:
                chained += 1
                self.nest()
                items = [Operator(current, tuple(items))]
            items.append(right)
            current = op
        self.depth -= chained
        return Operator(current, tuple(items)) if current else items[0]

    def unary(self) -> Expr:
        kind, text = self.peek()
        if kind == "op" and text in ("!", "-"):
            self.take()
            self.nest()
            node = Operator(text, (self.unary(),))
            self.depth -= 1
            return node
        return self.member()

    def member(self) -> Expr:
        node = self.primary()
        while True:
            if self.accept("."):
                kind, name = self.take()
                if kind != "ident":
                    raise CelSyntaxError(f"expected a field name after '.', found {name!r}")
                node = self.call(name, node, self.args(")")) if self.accept("(") else Select(node, name)
            elif self.accept("["):
                self.nest()
                node = Index(node, self.expr())
                self.expect("]")
            elif self.peek()[1] == "{" and _qualified(node):
                self.take()
                node = MapLit(self.inits("}", fields=True))
            else:
                return node

    def call(self, name: str, target: Expr | None, args: tuple[Expr, ...]) -> Expr:
        if target is not None and name in MACROS:
            arity = (2, 3) if name == "map" else (2,)
            if len(args) in arity and isinstance(args[0], Ident):
                return Comprehension(name, target, args[0].name, args[1:])
        if target is None and name == "has" and len(args) == 1:
            arg = args[0]
            if not isinstance(arg, Select):
                raise CelSyntaxError("has() takes a field selection")
            return Select(arg.operand, arg.field, test=True)
        return Call(name, target, args)

    def args(self, close: str) -> tuple[Expr, ...]:
        self.nest()
        items: list[Expr] = []
        while not self.accept(close):
            items.append(self.expr())
            if not self.accept(","):
                self.expect(close)
                break
        self.depth -= 1
        return tuple(items)

    def inits(self, close: str, fields: bool = False) -> tuple[tuple[Expr, Expr], ...]:
        self.nest()
        entries: list[tuple[Expr, Expr]] = []
        while not self.accept(close):
            if fields:
                kind, name = self.take()
                if kind != "ident":
                    raise CelSyntaxError(f"expected a field name, found {name!r}")
                key: Expr = Literal("string", len(name))
            else:
                key = self.expr()
            self.expect(":")
            entries.append((key, self.expr()))
            if not self.accept(","):
                self.expect(close)
                break
        self.depth -= 1
        return tuple(entries)

    def primary(self) -> Expr:
        kind, text = self.take()
        if kind == "int":
            return Literal("uint" if text[-1] in "uU" else "int")
        if kind == "double":
            return Literal("double")
        if kind in ("string", "raw"):
            return _string_literal(text, kind == "raw")
        if kind == "ident":
            if text in ("true", "false"):
                return Literal("bool")
            if text == "null":
                return Literal("null")
            if text in _RESERVED or text == "in":
                raise CelSyntaxError(f"reserved word {text!r}")
            if self.accept("("):
                return self.call(text, None, self.args(")"))
            return Ident(text)
        if text == ".":  # a leading dot names the root scope: .data
            kind, name = self.take()
            if kind != "ident":
                raise CelSyntaxError(f"expected a name after '.', found {name!r}")
            if self.accept("("):
                return self.call(name, None, self.args(")"))
            return Ident(name)
        if text == "(":
            inner = self.expr()
            self.expect(")")
            return inner
        if text == "[":
            return ListLit(self.args("]"))
        if text == "{":
            return MapLit(self.inits("}"))
        raise CelSyntaxError(f"unexpected {text or 'end of expression'!r}")


def _qualified(node: Expr) -> bool:
    """``a.b.c`` (a message name, before ``{`` of a struct literal)."""
    while isinstance(node, Select) and not node.test:
        node = node.operand
    return isinstance(node, Ident)


def children(node: Expr) -> list[Expr]:
    """The direct subexpressions of ``node``."""
    if isinstance(node, Select):
        return [node.operand]
    if isinstance(node, Index):
        return [node.operand, node.index]
    if isinstance(node, Call):
        return ([node.target] if node.target is not None else []) + list(node.args)
    if isinstance(node, Comprehension):
        return [node.range, *node.args]
    if isinstance(node, ListLit):
        return list(node.items)
    if isinstance(node, MapLit):
        return [e for entry in node.entries for e in entry]
    if isinstance(node, Operator):
        return list(node.operands)
    return []


def parse(text: str) -> Expr:
    """The syntax tree of ``text``; raises :class:`CelSyntaxError`."""
    return _Parser(text).parse()


__all__ = [
    "MACROS",
    "MAX_NESTING",
    "Call",
    "CelSyntaxError",
    "Comprehension",
    "Expr",
    "Ident",
    "Index",
    "ListLit",
    "Literal",
    "MapLit",
    "Operator",
    "Select",
    "children",
    "parse",
]
