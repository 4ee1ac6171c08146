"""Rendering action configs with Jinja2's sandboxed environment.

Every string in a handler config is a template: ``{{ data.user.email }}``,
``{{ event.type }}``, ``{{ metadata.ip }}``, ``{{ vars.x }}``. A string that is a
single ``{{ expression }}`` renders to the expression's native value (so
``"{{ data.amount }}"`` stays a number); anything else renders to text. Strings
without template markers are returned untouched without touching Jinja.
Undefined names are errors, so a typo fails the attempt with a clear message
instead of sending an empty value somewhere.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from neoactions.server.errors import InvalidArgument
from neoactions.server.model import JSON

_SINGLE_EXPRESSION = re.compile(r"^\{\{\s*(?P<expr>.+?)\s*\}\}$", re.DOTALL)


def _date_format(value: Any, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise TypeError(f"date_format needs a datetime or an ISO 8601 string, got {type(value).__name__}")
    return value.strftime(fmt)


class TemplateRenderError(Exception):
    """A template failed to render; the attempt fails (not retryable)."""


class ConfigRenderer:
    """Renders configs; compiled templates are cached by source text."""

    def __init__(self) -> None:
        self._env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
        self._env.filters["date_format"] = _date_format

    @functools.lru_cache(maxsize=4096)  # noqa: B019 - one renderer lives for the whole service
    def _compile(self, source: str) -> Any:
        match = _SINGLE_EXPRESSION.match(source)
        if match and "}}" not in match["expr"] and "{{" not in match["expr"]:
            return ("expr", self._env.compile_expression(match["expr"], undefined_to_none=False))
        return ("text", self._env.from_string(source))

    def check(self, config: JSON, path: str = "handler.config", raw_keys: frozenset[str] = frozenset()) -> None:
        """Refuse templates that do not parse (at save time)."""
        for key_path, text in _strings(config, path, raw_keys):
            try:
                self._compile(text)
            except TemplateError as exc:
                raise InvalidArgument.field(key_path, f"invalid template: {exc}", reason="INVALID_TEMPLATE") from None

    def render(self, config: JSON, context: Mapping[str, Any], raw_keys: frozenset[str] = frozenset()) -> JSON:
        """Render every template string in ``config`` (a JSON value) against ``context``."""
        return self._render(config, context, raw_keys, top=True)

    def _render(self, value: JSON, context: Mapping[str, Any], raw_keys: frozenset[str], top: bool) -> JSON:
        if isinstance(value, str):
            if "{{" not in value and "{%" not in value:
                return value
            kind, compiled = self._compile(value)
            try:
                if kind == "expr":
                    return _jsonable(compiled(**context))
                return compiled.render(**context)
            except (TemplateError, TypeError, ValueError, ArithmeticError) as exc:
                raise TemplateRenderError(f"template {value!r}: {exc}") from None
        if isinstance(value, dict):
            return {
                k: (v if top and k in raw_keys else self._render(v, context, raw_keys, False)) for k, v in value.items()
            }
        if isinstance(value, list):
            return [self._render(v, context, raw_keys, False) for v in value]
        return value


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


__all__ = ["ConfigRenderer", "TemplateRenderError"]
