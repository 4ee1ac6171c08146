"""Rendering action configs with Jinja2's sandboxed environment, within limits.

Every string in a handler config is a template: ``{{ data.user.email }}``,
``{{ event.type }}``, ``{{ metadata.ip }}``, ``{{ vars.x }}``. A string that is a
single ``{{ expression }}`` renders to the expression's native value (so
``"{{ data.amount }}"`` stays a number); anything else renders to text. Strings
without template markers are returned untouched without touching Jinja.
Undefined names are errors, so a typo fails the attempt with a clear message
instead of sending an empty value somewhere.

Templates are tenants' input, so each render of a config is bounded
(:mod:`neoactions.server.template_limits`): sizes, loop steps and time. A render
starts on the event loop with a short slice of time — almost every config is done
well within it — and one that needs longer is rendered again on a worker thread,
within the attempt's deadline and the render time limit. Every failure of a render,
whatever Python raised (``IndexError`` from ``format_map``, ``RecursionError``,
``MemoryError``), is a :class:`TemplateRenderError`.

At save, :meth:`ConfigRenderer.check` refuses what it can know then, naming the
field: syntax errors, sandbox violations, and limits broken by what is constant in a
template (``{{ 9**(9**7) }}``, ``range(10**9)``, nested constant loops).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from jinja2 import TemplateError
from jinja2.exceptions import SecurityError

from neoactions.domain.errors import InvalidArgument
from neoactions.domain.model import JSON
from neoactions.server.settings import Settings
from neoactions.server.template_limits import (
    Budget,
    LimitedEnvironment,
    RenderSliceSpent,
    TemplateLimitError,
    TemplateLimits,
    TemplateTimeout,
    run_with_budget,
    size_of,
)

_SINGLE_EXPRESSION = re.compile(r"^\{\{\s*(?P<expr>.+?)\s*\}\}$", re.DOTALL)
#: what is inside a tag (``{{ … }}``, ``{% … %}``): what compiling costs
_TAG = re.compile(r"\{[{%].*?[}%]\}", re.DOTALL)
#: tags, and characters inside them, a config may hold (compiled at save, on the event loop)
_MAX_TAGS = 1000
_MAX_TAG_CHARS = 32 * 1024
#: compiled templates kept
_COMPILED_KEPT = 4096

#: a render first runs on the event loop for at most this long
INLINE_SLICE_SECONDS = 0.005
#: renders that outgrow their slice share this many threads
RENDER_THREADS = 2


def _date_format(value: Any, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise TypeError(f"date_format needs a datetime or an ISO 8601 string, got {type(value).__name__}")
    return value.strftime(fmt)


class TemplateRenderError(Exception):
    """A template failed to render; the attempt fails (not retryable)."""


class TemplateRenderBusy(TemplateRenderError):
    """A render that needed a worker thread waited too long for one; worth another try."""


class ConfigRenderer:
    """Renders configs within :class:`TemplateLimits`; compiled templates are cached by source text."""

    def __init__(self, limits: TemplateLimits | None = None) -> None:
        self.limits = limits or TemplateLimits()
        self._env = LimitedEnvironment(self.limits)
        self._env.add_filter("date_format", _date_format)
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        #: compiled templates by source text, least recently used first
        self._compiled: OrderedDict[str, tuple[str, Any]] = OrderedDict()
        self._compiled_lock = threading.Lock()

    @classmethod
    def for_settings(cls, settings: Settings) -> ConfigRenderer:
        """A renderer with the ``template_*`` limits of ``settings``."""
        return cls(
            TemplateLimits(
                max_range=settings.template_max_range,
                max_length=settings.template_max_length,
                max_steps=settings.template_max_steps,
                max_seconds=settings.template_max_seconds,
            )
        )

    def _compile(self, source: str) -> tuple[str, Any]:
        with self._compiled_lock:
            found = self._compiled.get(source)
            if found is not None:
                self._compiled.move_to_end(source)
                return found
        compiled = _compile(self._env, source)
        with self._compiled_lock:
            self._compiled[source] = compiled
            if len(self._compiled) > _COMPILED_KEPT:
                self._compiled.popitem(last=False)
        return compiled

    def _all_compiled(self, config: JSON, raw_keys: frozenset[str]) -> bool:
        return _compiled_all(config, self._compiled, raw_keys, top=True)

    def check(self, config: JSON, path: str = "handler.config", raw_keys: frozenset[str] = frozenset()) -> None:
        """Refuse, naming the field, templates that do not parse, that break the sandbox, or
        whose constant parts go past the limits (at save time)."""
        tags = tag_chars = 0
        for key_path, text in _strings(config, path, raw_keys):
            # compiling takes time in proportion to the tags: bounded, since it happens here
            tags += text.count("{{") + text.count("{%")
            tag_chars += sum(len(m) for m in _TAG.findall(text))
            if tags > _MAX_TAGS or tag_chars > _MAX_TAG_CHARS:
                raise InvalidArgument.field(
                    key_path,
                    f"templates too large: a config may hold {_MAX_TAGS} tags of {_MAX_TAG_CHARS} characters in all",
                    reason="INVALID_TEMPLATE",
                )
            try:
                kind, compiled = self._compile(text)
            except TemplateError as exc:
                raise InvalidArgument.field(key_path, f"invalid template: {exc}", reason="INVALID_TEMPLATE") from None
            except Exception as exc:  # nested past the parser's depth, and the like
                raise InvalidArgument.field(
                    key_path, f"template cannot be compiled: {_one_line(exc)}", reason="INVALID_TEMPLATE"
                ) from None
            budget = Budget(self.limits, seconds=min(self.limits.max_seconds, 0.25), unknowns=True)
            try:
                run_with_budget(budget, functools.partial(_evaluate, self._env, kind, compiled, {}, text))
            except TemplateTimeout:
                pass  # slow against unknowns proves nothing: the render's own limits still hold
            except SecurityError as exc:  # the sandbox's and the limits' refusals
                raise InvalidArgument.field(
                    key_path, f"template refused: {_one_line(exc)}", reason="INVALID_TEMPLATE"
                ) from None
            except Exception:
                pass

    def render(
        self,
        config: JSON,
        context: Mapping[str, Any],
        raw_keys: frozenset[str] = frozenset(),
        seconds: float | None = None,
    ) -> JSON:
        """Render every template string in ``config`` (a JSON value) against ``context``,
        here and now, within the limits (and ``seconds``, when sooner)."""
        return self._render_within(config, context, raw_keys, Budget(self.limits, seconds=_seconds(self, seconds)))

    async def render_async(
        self,
        config: JSON,
        context: Mapping[str, Any],
        raw_keys: frozenset[str] = frozenset(),
        seconds: float | None = None,
    ) -> JSON:
        """:meth:`render`, starting on the event loop and moving to a worker thread if the
        render needs more than a short slice; ``seconds`` is the time left to the attempt."""
        total = _seconds(self, seconds)
        started = time.monotonic()
        if self._all_compiled(config, raw_keys):  # else compiling alone may take longer than a slice
            inline = Budget(self.limits, seconds=total, slice_seconds=INLINE_SLICE_SECONDS)
            try:
                return self._render_within(config, context, raw_keys, inline)
            except RenderSliceSpent:
                pass
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(RENDER_THREADS, thread_name_prefix="template-render")
        left = total - (time.monotonic() - started)

        def in_thread() -> JSON:
            # the clock starts when a thread takes it: a queued render is not charged the wait
            return self._render_within(config, context, raw_keys, Budget(self.limits, seconds=left))

        loop = asyncio.get_running_loop()
        try:
            # a running render ends within ``left`` by itself; a queued one may wait as long
            async with asyncio.timeout(2 * max(0.0, left) + 0.05):
                return await loop.run_in_executor(self._pool, in_thread)
        except TimeoutError:
            raise TemplateRenderBusy(f"no render thread was free within {left:.3g}s") from None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def _render_within(
        self, config: JSON, context: Mapping[str, Any], raw_keys: frozenset[str], budget: Budget
    ) -> JSON:
        try:
            return run_with_budget(budget, lambda: self._render(config, context, raw_keys, budget, top=True))
        except (TemplateRenderError, RenderSliceSpent):
            raise
        except Exception as exc:
            exc.__traceback__ = None
            failure = TemplateRenderError(f"template rendering failed: {type(exc).__name__}: {_one_line(exc)}")
        raise failure

    def _render(
        self, value: JSON, context: Mapping[str, Any], raw_keys: frozenset[str], budget: Budget, top: bool
    ) -> JSON:
        if isinstance(value, str):
            if "{{" not in value and "{%" not in value:
                return value
            try:
                kind, compiled = self._compile(value)
                return _evaluate(self._env, kind, compiled, context, value, budget)
            except RenderSliceSpent as exc:
                exc.__traceback__ = None  # (see below)
                raise
            except Exception as exc:
                # the traceback holds the render's frames and what they built (up to the limits):
                # let it go now, not at the next full garbage collection
                exc.__traceback__ = None
                failure = TemplateRenderError(f"template {_shown(value)}: {_one_line(exc)}")
            raise failure
        if isinstance(value, dict):
            return {
                k: (v if top and k in raw_keys else self._render(v, context, raw_keys, budget, False))
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [self._render(v, context, raw_keys, budget, False) for v in value]
        return value


def _seconds(renderer: ConfigRenderer, seconds: float | None) -> float:
    limit = renderer.limits.max_seconds
    return limit if seconds is None else max(0.0, min(limit, seconds))


def _compile(env: LimitedEnvironment, source: str) -> tuple[str, Any]:
    match = _SINGLE_EXPRESSION.match(source)
    if match and "}}" not in match["expr"] and "{{" not in match["expr"]:
        return ("expr", env.compile_expression(match["expr"], undefined_to_none=False))
    return ("text", env.from_string(source))


def _evaluate(
    env: LimitedEnvironment,
    kind: str,
    compiled: Any,
    context: Mapping[str, Any],
    source: str,
    budget: Budget | None = None,
) -> JSON:
    """One template's value: an expression's native value, or a template's text counted
    as it is generated (the config's total output counts against the length limit)."""
    limits = env.limits
    if kind == "expr":
        value = compiled(**context)
        size = size_of(value, limits.max_length)
        if size > limits.max_length:
            raise_length(limits)
        if budget is not None:
            budget.emit(size)
        return _jsonable(value)
    parts: list[str] = []
    length = 0
    for part in compiled.generate(**context):
        length += len(part)
        if length > limits.max_length:
            raise_length(limits)
        if budget is not None:
            budget.emit(len(part))
        parts.append(part)
    return "".join(parts)


def raise_length(limits: TemplateLimits) -> None:
    raise TemplateLimitError(f"the output would be longer than {limits.max_length} characters")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _shown(source: str) -> str:
    return repr(source) if len(source) <= 120 else repr(source[:117] + "...")


def _jsonable(value: Any) -> JSON:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _compiled_all(value: JSON, compiled: Mapping[str, Any], raw_keys: frozenset[str], top: bool) -> bool:
    """Whether every template string in ``value`` is compiled already."""
    if isinstance(value, str):
        return value in compiled or ("{{" not in value and "{%" not in value)
    if isinstance(value, dict):
        return all((top and k in raw_keys) or _compiled_all(v, compiled, raw_keys, False) for k, v in value.items())
    if isinstance(value, list):
        return all(_compiled_all(v, compiled, raw_keys, False) for v in value)
    return True


def _strings(value: JSON, path: str, raw_keys: frozenset[str], top: bool = True) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if isinstance(value, str):
        if "{{" in value or "{%" in value:
            out.append((path, value))
    elif isinstance(value, dict):
        for k, v in value.items():
            if not (top and k in raw_keys):
                out.extend(_strings(v, f"{path}.{k}", raw_keys, False))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.extend(_strings(v, f"{path}[{i}]", raw_keys, False))
    return out


__all__ = ["ConfigRenderer", "TemplateLimits", "TemplateRenderBusy", "TemplateRenderError"]
