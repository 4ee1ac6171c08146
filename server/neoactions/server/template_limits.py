"""Limits on rendering templates: a Jinja2 sandbox whose every render is bounded in
size, loop steps and time.

Templates come from tenants, so nothing they can write may hold the event loop or
take the process's memory. The sandbox intercepts what can grow — repetition and
concatenation (``*``, ``+``, ``~``), powers (``**``), ``%`` and ``str.format``
formatting, ``range()``, the filters and string methods that pad, join, replace or
indent — and checks the size of the result *before* it is built. Every loop
iteration (and every item drawn from a lazy filter) is a step; steps and the clock
are checked as it goes. What each render spent is a :class:`Budget`, found through a
context variable so the same compiled template serves every thread.

Values a template will only see when an attempt runs can be stood in for by
:class:`Unknown` (every operation on one gives another): rendering against unknowns
at save evaluates what is constant in a template, so blow-ups written into it are
refused before it is ever run.
"""

from __future__ import annotations

import functools
import math
import re
import time
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, NoReturn

from jinja2 import ChainableUndefined, StrictUndefined, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context, LoopContext, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter
from jinja2.utils import Namespace
from markupsafe import EscapeFormatter, Markup


@dataclass(frozen=True, slots=True)
class TemplateLimits:
    """What one render of one handler config may spend."""

    #: items a ``range()`` may produce
    max_range: int = 10_000
    #: characters of any value a template builds (string, list or mapping as text) and of
    #: everything a config renders to
    max_length: int = 1_048_576
    #: loop iterations (and items drawn from lazy filters such as ``map``) of one render
    max_steps: int = 100_000
    #: wall-clock seconds of one render (the attempt's deadline too, when sooner)
    max_seconds: float = 1.0
    #: bits of an integer a template computes (``**``, ``*``)
    max_int_bits: int = 4096

    @property
    def max_produced(self) -> int:
        """Characters a render may build in all, intermediate values included: bounds the
        memory a render holds (a loop filling a ``{% set %}`` block) whatever it outputs."""
        return self.max_length * 16


class TemplateLimitError(SecurityError):
    """A render went past one of its :class:`TemplateLimits`."""


class TemplateTimeout(TemplateLimitError):
    """A render went past its time."""


class RenderSliceSpent(Exception):
    """The render used up the short slice it was given (see :meth:`Budget.slice`); the
    caller renders it again where it may take longer (off the event loop)."""


class Budget:
    """What one render has spent: steps, characters built, time."""

    __slots__ = ("_deadline", "_seconds", "_sizes", "_slice_end", "emitted", "limits", "produced", "steps", "unknowns")

    def __init__(
        self,
        limits: TemplateLimits,
        seconds: float | None = None,
        slice_seconds: float | None = None,
        unknowns: bool = False,
    ) -> None:
        self.limits = limits
        #: names the render cannot resolve are :class:`Unknown` (a render at save), not errors
        self.unknowns = unknowns
        self.steps = 0
        self.produced = 0
        self.emitted = 0
        now = time.monotonic()
        self._seconds = limits.max_seconds if seconds is None else max(0.0, seconds)
        self._deadline = now + self._seconds
        self._slice_end = now + slice_seconds if slice_seconds is not None else None
        #: sizes of containers already measured (by identity; kept alive here so ids stay theirs)
        self._sizes: dict[int, tuple[Any, int]] = {}

    def step(self) -> None:
        """One loop iteration."""
        self.steps += 1
        if self.steps > self.limits.max_steps:
            raise TemplateLimitError(f"more than {self.limits.max_steps} loop steps")
        if not self.steps & 15:  # the clock every 16 steps: a step is short (sizes are bounded)
            self.tick()

    def tick(self) -> None:
        """Check the clock."""
        now = time.monotonic()
        if self._slice_end is not None and now > self._slice_end:
            raise RenderSliceSpent()
        if now > self._deadline:
            raise TemplateTimeout(f"rendering took longer than {self._seconds:.3g}s")

    def produce(self, size: int) -> None:
        """Count ``size`` characters built."""
        self.produced += size
        if self.produced > self.limits.max_produced:
            raise TemplateLimitError(f"built more than {self.limits.max_produced} characters")

    def emit(self, size: int) -> None:
        """Count ``size`` characters of the render's output (every template of a config)."""
        self.emitted += size
        if self.emitted > self.limits.max_length:
            raise TemplateLimitError(f"the output would be longer than {self.limits.max_length} characters")

    def guard(self, iterable: Iterable[Any]) -> Iterator[Any]:
        """``iterable``, one step per item."""
        for item in iterable:
            self.step()
            yield item


_budget: ContextVar[Budget | None] = ContextVar("template_budget", default=None)


def current_budget() -> Budget | None:
    return _budget.get()


def run_with_budget(budget: Budget, render: Callable[[], Any]) -> Any:
    """Run ``render()`` with ``budget`` as the budget of every template it renders."""
    token = _budget.set(budget)
    try:
        return render()
    finally:
        _budget.reset(token)


# --- sizes ------------------------------------------------------------------------------------


def _size(value: Any, limit: int, seen: dict[int, tuple[Any, int]] | None) -> int:
    """About how many characters ``str(value)`` has (exact for strings), counted no further
    than just past ``limit``; containers are measured once per render (``seen``), so a
    structure sharing its parts is sized in proportion to its text, not to its memory."""
    if isinstance(value, str | bytes | bytearray):
        return len(value)
    if isinstance(value, bool) or value is None:
        return 5
    if isinstance(value, int):
        return value.bit_length() * 30103 // 100000 + 2
    if isinstance(value, float):
        return 24
    if isinstance(value, Undefined):
        return 0
    keep = seen
    if isinstance(value, Namespace):
        # the one container a template changes ({% set ns.x = … %}): measured afresh each time
        value, keep = object.__getattribute__(value, "_Namespace__attrs"), None
    if not isinstance(value, list | tuple | dict | set | frozenset):
        return 16
    if keep is not None and (known := keep.get(id(value))) is not None:
        return known[1]
    total = 2
    items: Iterable[Any] = value.items() if isinstance(value, dict) else value
    for item in items:
        if isinstance(item, tuple) and isinstance(value, dict):
            total += _size(item[0], limit, seen) + _size(item[1], limit, seen) + 4
        else:
            total += _size(item, limit, seen) + 2
        if total > limit:
            break
    if keep is not None:
        keep[id(value)] = (value, total)
    return total


def size_of(value: Any, limit: int) -> int:
    """About how many characters ``value`` has as text (see :func:`_size`)."""
    if type(value) is str:
        return len(value)
    budget = _budget.get()
    return _size(value, limit, budget._sizes if budget is not None else None)


def _limits_now(env_limits: TemplateLimits) -> tuple[TemplateLimits, Budget | None]:
    budget = _budget.get()
    return (budget.limits if budget is not None else env_limits), budget


def check_size(value: Any, limits: TemplateLimits, what: str) -> int:
    """Refuse ``value`` when it is longer than the limit; returns its size."""
    size = size_of(value, limits.max_length)
    if size > limits.max_length:
        raise TemplateLimitError(f"{what} would be longer than {limits.max_length} characters")
    return size


def _refuse_length(length: int, limits: TemplateLimits, what: str) -> None:
    if length > limits.max_length:
        raise TemplateLimitError(f"{what} would be longer than {limits.max_length} characters")


# --- operators --------------------------------------------------------------------------------

_SEQUENCES = (str, bytes, list, tuple)


def _is_int(value: Any) -> bool:
    return isinstance(value, int)


def check_binop(limits: TemplateLimits, operator: str, left: Any, right: Any) -> None:
    """Refuse an operation whose result would be over the limits, before it is computed."""
    if operator == "*":
        if _is_int(left) and _is_int(right):
            if left.bit_length() + right.bit_length() > limits.max_int_bits:
                raise TemplateLimitError(f"a product of more than {limits.max_int_bits} bits")
        elif isinstance(left, _SEQUENCES) and _is_int(right):
            _refuse_length(size_of(left, limits.max_length) * max(0, right), limits, "a repetition")
        elif isinstance(right, _SEQUENCES) and _is_int(left):
            _refuse_length(size_of(right, limits.max_length) * max(0, left), limits, "a repetition")
    elif operator == "**":
        if (
            _is_int(left)
            and _is_int(right)
            and right > 0
            and abs(left) > 1
            and right * math.log2(abs(left)) > limits.max_int_bits
        ):
            raise TemplateLimitError(f"a power of more than {limits.max_int_bits} bits")
    elif operator == "+":
        if isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES):
            _refuse_length(
                size_of(left, limits.max_length) + size_of(right, limits.max_length), limits, "a concatenation"
            )
    elif operator == "%" and isinstance(left, str):
        check_printf(limits, left, right)


#: a printf-style conversion: (width) (precision)
_PRINTF = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[diouxXeEfFgGcrsa%]")


def check_printf(limits: TemplateLimits, fmt: str, values: Any) -> None:
    """Refuse ``fmt % values`` when its widths, precisions and values add up past the limit."""
    total = len(fmt) + size_of(values, limits.max_length)
    starred = False
    for match in _PRINTF.finditer(fmt):
        for number in match.group(1, 2):
            if number == "*":
                starred = True
            elif number is not None:
                total += int(number) if len(number) < 12 else limits.max_length + 1
    if starred:
        for value in values if isinstance(values, tuple) else (values,):
            if _is_int(value):
                total += max(0, value)
    _refuse_length(total, limits, "a formatted string")


# --- str methods and filters -----------------------------------------------------------------


def _arg(args: tuple[Any, ...], kwargs: Mapping[str, Any], index: int, name: str, default: Any) -> Any:
    return args[index] if len(args) > index else kwargs.get(name, default)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _width(limits: TemplateLimits, width: Any, what: str) -> None:
    if _is_int(width):
        _refuse_length(width, limits, what)


def _joined(limits: TemplateLimits, separator: Any, items: Iterable[Any], what: str) -> list[Any]:
    """``items`` as a list, refused when joining them with ``separator`` would be too long
    (lazy items are counted as steps as they are drawn: see :meth:`LimitedEnvironment._built`)."""
    listed: list[Any] = []
    total = 0
    step = len(separator) if isinstance(separator, str) else 0
    budget = _budget.get()
    for item in items:
        listed.append(item)
        total += size_of(item, limits.max_length) + step
        _refuse_length(total, limits, what)
        if budget is not None and not len(listed) & 4095:
            budget.tick()
    return listed


def _replaced_length(s: str, old: Any, new: Any, count: Any) -> int:
    if not isinstance(old, str) or not isinstance(new, str):
        return len(s)
    hits = s.count(old) if old else len(s) + 1
    if _is_int(count) and count >= 0:
        hits = min(hits, count)
    return len(s) + hits * max(0, len(new) - len(old))


def _expanded(limits: TemplateLimits, s: str, tabsize: Any) -> None:
    if _is_int(tabsize):
        _refuse_length(len(s) + s.count("\t") * max(0, tabsize), limits, "a string with expanded tabs")


def _translated(limits: TemplateLimits, s: str, table: Any) -> None:
    if isinstance(table, dict):
        longest = max((len(v) for v in table.values() if isinstance(v, str)), default=1)
        _refuse_length(len(s) * max(1, longest), limits, "a translated string")


def _lines(s: str) -> int:
    return s.count("\n") + 1


#: str methods that can build something much longer than their string:
#: (limits, the string, args, kwargs) -> None, raising when the result would be too long
_STR_METHODS: dict[str, Callable[[TemplateLimits, str, tuple[Any, ...], dict[str, Any]], None]] = {
    "center": lambda lim, s, a, k: _width(lim, _arg(a, k, 0, "width", 0), "a padded string"),
    "ljust": lambda lim, s, a, k: _width(lim, _arg(a, k, 0, "width", 0), "a padded string"),
    "rjust": lambda lim, s, a, k: _width(lim, _arg(a, k, 0, "width", 0), "a padded string"),
    "zfill": lambda lim, s, a, k: _width(lim, _arg(a, k, 0, "width", 0), "a padded string"),
    "expandtabs": lambda lim, s, a, k: _expanded(lim, s, _arg(a, k, 0, "tabsize", 8)),
    "replace": lambda lim, s, a, k: _refuse_length(
        _replaced_length(s, _arg(a, k, 0, "old", ""), _arg(a, k, 1, "new", ""), _arg(a, k, 2, "count", -1)),
        lim,
        "a replaced string",
    ),
    "translate": lambda lim, s, a, k: _translated(lim, s, a[0] if a else None),
}


def _filter_join(lim: TemplateLimits, a: tuple[Any, ...], k: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    separator = _arg(a, k, 1, "d", "")
    items = _joined(lim, separator, a[0] if a else (), "a joined string")
    return (items, *a[1:]), k


def _filter_indent(lim: TemplateLimits, a: tuple[Any, ...], k: dict[str, Any]) -> None:
    s, width = _text(a[0] if a else ""), _arg(a, k, 1, "width", 4)
    per_line = len(width) if isinstance(width, str) else width if _is_int(width) else 0
    _refuse_length(len(s) + _lines(s) * max(0, per_line), lim, "an indented string")


def _filter_wordwrap(lim: TemplateLimits, a: tuple[Any, ...], k: dict[str, Any]) -> None:
    s, wrap = _text(a[0] if a else ""), _arg(a, k, 3, "wrapstring", None)
    if isinstance(wrap, str) and len(wrap) > 1:
        _refuse_length(len(s) * len(wrap), lim, "a wrapped string")


def _filter_tojson(lim: TemplateLimits, a: tuple[Any, ...], k: dict[str, Any]) -> None:
    indent = _arg(a, k, 1, "indent", None)
    if _is_int(indent) and indent > 0:
        _refuse_length(size_of(a[0] if a else None, lim.max_length) * (1 + indent), lim, "an indented JSON text")


def _filter_format(lim: TemplateLimits, a: tuple[Any, ...], k: dict[str, Any]) -> None:
    if a and isinstance(a[0], str):
        check_printf(lim, a[0], dict(k) if k else tuple(a[1:]))


def _filter_width(
    name: str, index: int, what: str
) -> Callable[[TemplateLimits, tuple[Any, ...], dict[str, Any]], None]:
    return lambda lim, a, k: _width(lim, _arg(a, k, index, name, 0), what)


#: checks of the built-in filters that can build something much longer than their input
#: (given the filter's arguments after any context it is passed); a check may return new
#: arguments (``join`` draws its items once, counting them)
_FILTER_CHECKS: dict[str, Callable[[TemplateLimits, tuple[Any, ...], dict[str, Any]], Any]] = {
    "center": _filter_width("width", 1, "a centered string"),
    "batch": _filter_width("linecount", 1, "a batch"),
    "slice": _filter_width("slices", 1, "a slice"),
    "truncate": _filter_width("length", 1, "a truncated string"),
    "round": _filter_width("precision", 1, "a rounded number"),
    "indent": _filter_indent,
    "wordwrap": _filter_wordwrap,
    "tojson": _filter_tojson,
    "format": _filter_format,
    "join": _filter_join,
    "replace": lambda lim, a, k: _refuse_length(
        _replaced_length(
            _text(a[0] if a else ""), _arg(a, k, 1, "old", ""), _arg(a, k, 2, "new", ""), _arg(a, k, 3, "count", -1)
        ),
        lim,
        "a replaced string",
    ),
}


# --- the environment -------------------------------------------------------------------------


class _LimitedFormatter(SandboxedFormatter):
    """``str.format``: each field's spec and value are checked before they are formatted,
    and the fields formatted so far count against the limit."""

    def __init__(self, env: LimitedEnvironment, **kwargs: Any) -> None:
        super().__init__(env, **kwargs)
        self._limits = env.limits
        self._length = 0

    def vformat(self, format_string: str, args: Any, kwargs: Any) -> str:
        self._limits, _ = _limits_now(self._limits)
        self._length = len(format_string)
        return super().vformat(format_string, args, kwargs)

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        if conversion is not None:
            check_size(value, self._limits, "a formatted field")
        return super().convert_field(value, conversion)

    def format_field(self, value: Any, format_spec: str) -> Any:
        for number in re.findall(r"\d+", format_spec):
            if len(number) > 9 or int(number) > self._limits.max_length:
                raise TemplateLimitError(f"a format width of {number} is over {self._limits.max_length}")
        check_size(value, self._limits, "a formatted field")
        text = super().format_field(value, format_spec)
        self._length += len(text)
        _refuse_length(self._length, self._limits, "a formatted string")
        return text


class _LimitedEscapeFormatter(_LimitedFormatter, EscapeFormatter):
    pass


def _calling(attribute: str, value: nodes.Node) -> nodes.Call:
    """``environment.<attribute>(value)`` as a node."""
    return nodes.Call(nodes.EnvironmentAttribute(attribute), [value], [], None, None, lineno=value.lineno)


class _LimitedCodeGenerator(CodeGenerator):
    """Generates code whose loops count their steps, whose ``~`` checks its length and whose
    assignments check the size of what they keep (a structure holding one part many times —
    ``{% set a = [a, a] %}`` again and again — is refused as soon as its text would be too
    long, before anything compares or prints it)."""

    def visit_Assign(self, node: nodes.Assign, frame: Frame) -> None:
        original = node.node
        node.node = _calling("sized", original)
        try:
            super().visit_Assign(node, frame)
        finally:
            node.node = original

    def visit_With(self, node: nodes.With, frame: Frame) -> None:
        original = node.values
        node.values = [_calling("sized", value) for value in original]
        try:
            super().visit_With(node, frame)
        finally:
            node.values = original

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        original = node.iter
        node.iter = _calling("guard_loop", original)
        try:
            super().visit_For(node, frame)
        finally:
            node.iter = original

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.join_text((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class LimitedEnvironment(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox with every render bounded by :class:`TemplateLimits`."""

    code_generator_class = _LimitedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, limits: TemplateLimits) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=False, finalize=self._finalize)
        self.limits = limits
        # strict, except in a render against unknowns (one compiled template serves both)
        self.undefined = self._undefined  # type: ignore[assignment]
        # buffers ({% set %} blocks, macros, filter blocks) are joined through this
        self.concat = self._concat  # type: ignore[method-assign]
        self.globals["range"] = self._range
        self.globals.pop("lipsum", None)  # paragraphs of filler text: nothing a handler config needs
        self.filters = {name: self._limited_filter(name, fn) for name, fn in self.filters.items()}

    def handle_exception(self, source: str | None = None) -> NoReturn:
        """Re-raise what a render raised as it is: Jinja's rewritten traceback (fake frames
        holding the render's locals) is nothing a failed attempt reports, and would keep what
        the render built alive until a full garbage collection."""
        raise  # (Jinja calls it in an except block)

    def add_filter(self, name: str, fn: Callable[..., Any]) -> None:
        """Register a filter, under the same limits as the built-in ones."""
        self.filters[name] = self._limited_filter(name, fn)

    # --- hooks the sandbox and the generated code call
    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        limits, budget = _limits_now(self.limits)
        check_binop(limits, operator, left, right)
        return self._built(self.binop_table[operator](left, right), limits, budget)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        limits, budget = _limits_now(__self.limits)
        if budget is not None:
            budget.tick()
        if getattr(__obj, "__func__", None) in _OWN_HOOKS:
            return __obj(*args)
        for arg in (*args, *kwargs.values()):
            if isinstance(arg, list | tuple | dict):
                check_size(arg, limits, "an argument")
        if isinstance(__obj, LoopContext) and args:
            # a recursive loop's next level: its items are steps too
            args = (__self.guard_loop(args[0]), *args[1:])
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str):
            check = _STR_METHODS.get(getattr(__obj, "__name__", ""))
            if check is not None:
                check(limits, owner, args, kwargs)
            elif getattr(__obj, "__name__", "") == "join" and args:
                args = (_joined(limits, owner, args[0], "a joined string"), *args[1:])
        return __self._built(super().call(__context, __obj, *args, **kwargs), limits, budget)

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        raise SecurityError(f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe")

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        if not isinstance(value, types.MethodType | types.BuiltinMethodType) or value.__name__ not in (
            "format",
            "format_map",
        ):
            return None
        text = getattr(value, "__self__", None)
        if not isinstance(text, str):
            return None
        formatter: _LimitedFormatter
        if isinstance(text, Markup):
            formatter = _LimitedEscapeFormatter(self, escape=text.escape)
        else:
            formatter = _LimitedFormatter(self)
        kind = type(text)
        as_map = value.__name__ == "format_map"

        def formatted(*args: Any, **kwargs: Any) -> str:
            if as_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one positional argument")
                return kind(formatter.vformat(text, (), args[0]))
            return kind(formatter.vformat(text, args, kwargs))

        return formatted

    def guard_loop(self, iterable: Any) -> Any:
        """What a ``{% for %}`` loop iterates: ``iterable``, one step per item."""
        budget = _budget.get()
        if budget is None or isinstance(iterable, Undefined):
            return iterable
        return budget.guard(iterable)

    def _undefined(self, *args: Any, **kwargs: Any) -> Undefined:
        budget = _budget.get()
        if budget is not None and budget.unknowns:
            return Unknown(*args, **kwargs)
        return StrictUndefined(*args, **kwargs)

    def sized(self, value: Any) -> Any:
        """What an assignment keeps: refused when too long."""
        if not isinstance(value, str | int | float | bool | Undefined) and value is not None:
            limits, _ = _limits_now(self.limits)
            check_size(value, limits, "an assigned value")
        return value

    def join_text(self, parts: tuple[Any, ...]) -> str:
        """``a ~ b ~ c``."""
        limits, budget = _limits_now(self.limits)
        _refuse_length(sum(size_of(part, limits.max_length) for part in parts), limits, "a concatenation")
        text = "".join(str(part) for part in parts)
        if budget is not None:
            budget.produce(len(text))
        return text

    # --- helpers
    def _finalize(self, value: Any) -> Any:
        """Every ``{{ … }}`` output: sized before it becomes text."""
        budget = _budget.get()
        limits = budget.limits if budget is not None else self.limits
        kind = type(value)
        if kind is str:
            size = len(value)
            _refuse_length(size, limits, "an output")
        elif kind is int or kind is float or kind is bool or value is None:
            size = 8
        else:
            size = check_size(value, limits, "an output")
        if budget is not None:
            budget.produce(size)
        return value

    def _concat(self, parts: Iterable[Any]) -> str:
        limits, _ = _limits_now(self.limits)
        listed = list(parts)
        _refuse_length(sum(len(p) if isinstance(p, str) else 0 for p in listed), limits, "a block")
        return "".join(listed)

    def _range(self, *args: Any) -> Any:
        limits, _ = _limits_now(self.limits)
        for arg in args:
            if isinstance(arg, Undefined):
                return arg._fail_with_undefined_error()
        numbers = range(*args)
        try:
            items = len(numbers)
        except OverflowError:
            items = limits.max_range + 1
        if items > limits.max_range:
            raise TemplateLimitError(f"range() of {items} items is over the limit of {limits.max_range}")
        return numbers

    def _built(self, value: Any, limits: TemplateLimits, budget: Budget | None) -> Any:
        """A value an operation, call or filter built: sized and counted; lazy iterators are
        drawn one step per item."""
        if isinstance(value, str | bytes | list | tuple | dict):
            size = check_size(value, limits, "a value")
            if budget is not None:
                budget.produce(size)
        elif isinstance(value, int) and value.bit_length() > limits.max_int_bits:
            raise TemplateLimitError(f"an integer of more than {limits.max_int_bits} bits")
        elif budget is not None and isinstance(value, Iterator) and not isinstance(value, Undefined):
            return budget.guard(value)
        return value

    def _limited_filter(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        check = _FILTER_CHECKS.get(name)
        skip = 1 if getattr(fn, "jinja_pass_arg", None) is not None else 0

        @functools.wraps(fn)
        def limited(*args: Any, **kwargs: Any) -> Any:
            limits, budget = _limits_now(self.limits)
            if budget is not None:
                budget.tick()
            for arg in (*args[skip:], *kwargs.values()):
                if isinstance(arg, list | tuple | dict | set | Namespace):
                    check_size(arg, limits, "a filter's argument")
            if check is not None:
                changed = check(limits, args[skip:], kwargs)
                if changed is not None:
                    rest, kwargs = changed
                    args = (*args[:skip], *rest)
            return self._built(fn(*args, **kwargs), limits, budget)

        return limited


#: the environment's own hooks the generated code calls (not the template's calls)
_OWN_HOOKS = (LimitedEnvironment.guard_loop, LimitedEnvironment.sized)


class Unknown(ChainableUndefined):
    """A value known only when an attempt runs: every operation on it gives another
    unknown, so a render against unknowns evaluates just what is constant."""

    __slots__ = ()

    def _unknown(self, *args: Any, **kwargs: Any) -> Unknown:
        return self

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _unknown  # type: ignore[assignment]
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = _unknown  # type: ignore[assignment]
    __pos__ = __neg__ = __call__ = __getitem__ = __pow__ = __rpow__ = _unknown  # type: ignore[assignment]
    __lt__ = __le__ = __gt__ = __ge__ = _unknown  # type: ignore[assignment]
    _fail_with_undefined_error = _unknown  # type: ignore[assignment]


__all__ = [
    "Budget",
    "LimitedEnvironment",
    "RenderSliceSpent",
    "TemplateLimitError",
    "TemplateLimits",
    "TemplateTimeout",
    "Unknown",
    "check_binop",
    "check_printf",
    "current_budget",
    "run_with_budget",
    "size_of",
]
