"""Which secrets a handler config names, found statically in its templates (the Jinja AST).

``{{ secrets.NAME }}`` and ``{{ secrets['NAME'] }}`` name a secret; any other use of
``secrets`` (``{{ secrets }}``, ``secrets[data.key]``, ``{% set secrets = … %}``) is
refused at save: the secrets an attempt loads, and masks, must be known before it renders.

A handler type may mark config fields sensitive (``HandlerType.sensitive_config_paths``:
credentials); such a field accepts only secret references, optionally after an
authorization scheme word (``Bearer {{ secrets.api_token }}``), never a literal.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from functools import lru_cache

from jinja2 import TemplateSyntaxError, nodes
from jinja2.sandbox import SandboxedEnvironment

from neoactions.domain.errors import InvalidArgument
from neoactions.domain.model import JSON

#: a secret's name: a letter or ``_``, then letters, digits or ``_`` (usable as ``secrets.NAME``)
SECRET_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}\Z")
NAME_RULE = "a letter or _, then up to 127 letters, digits or _"
#: literal text a credential field may hold around its references
_SCHEME = re.compile(r"^\s*(?:(?:bearer|basic|token|bot|digest|apikey)\s+)?\Z", re.IGNORECASE)

_PARSER = SandboxedEnvironment()


class _Refused(Exception):
    """A use of ``secrets`` that does not name one secret literally."""


def _is_secrets(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Name) and node.name == "secrets"


def _named(node: nodes.Node) -> str | None:
    """The secret ``node`` names (``secrets.X`` / ``secrets['X']``), or ``None``."""
    if isinstance(node, nodes.Getattr) and _is_secrets(node.node):
        return node.attr
    if isinstance(node, nodes.Getitem) and _is_secrets(node.node):
        if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            return node.arg.value
        raise _Refused("a secret must be named literally: secrets.NAME or secrets['NAME']")
    return None


def _walk(node: nodes.Node) -> Iterator[str]:
    name = _named(node)
    if name is not None:
        yield name
        return
    if _is_secrets(node):
        assert isinstance(node, nodes.Name)
        if node.ctx == "store":
            raise _Refused("'secrets' is reserved: it cannot be assigned")
        raise _Refused("name one secret: secrets.NAME or secrets['NAME'], not secrets itself")
    for child in node.iter_child_nodes():
        yield from _walk(child)


@lru_cache(maxsize=4096)
def _template_names(source: str) -> tuple[frozenset[str], str]:
    """The secrets a template names, or ('', why it is refused)."""
    try:
        names = frozenset(_walk(_PARSER.parse(source)))
    except _Refused as exc:
        return frozenset(), str(exc)
    except TemplateSyntaxError:
        return frozenset(), ""  # the renderer's own check names the syntax error
    bad = sorted(n for n in names if not SECRET_NAME.match(n))
    if bad:
        return frozenset(), f"{bad[0]!r} is not a secret name ({NAME_RULE})"
    return names, ""


def _templates(value: JSON, path: str, raw_keys: frozenset[str], top: bool = True) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        if "{{" in value or "{%" in value:
            yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            if not (top and k in raw_keys):
                yield from _templates(v, f"{path}.{k}", raw_keys, False)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _templates(v, f"{path}[{i}]", raw_keys, False)


def referenced_secrets(
    config: JSON, path: str = "handler.config", raw_keys: frozenset[str] = frozenset()
) -> dict[str, frozenset[str]]:
    """``{field path: secret names}`` of the fields naming secrets. ``InvalidArgument``
    (INVALID_SECRET_REFERENCE) naming the field for a use of ``secrets`` that names none."""
    out: dict[str, frozenset[str]] = {}
    for field, source in _templates(config, path, raw_keys):
        if "secrets" not in source:
            continue
        names, refused = _template_names(source)
        if refused:
            raise InvalidArgument.field(field, refused, reason="INVALID_SECRET_REFERENCE")
        if names:
            out[field] = names
    return out


def secret_names(config: JSON, raw_keys: frozenset[str] = frozenset()) -> frozenset[str]:
    """Every secret ``config`` names (what an attempt loads); refusals as in :func:`referenced_secrets`."""
    found: set[str] = set()
    for names in referenced_secrets(config, "handler.config", raw_keys).values():
        found |= names
    return frozenset(found)


#: configs seen by attempts (by identity: a stored action's config is one object, kept by the
#: catalog) -> the secrets they name; the config is held too, so its id is not reused
_BY_CONFIG: OrderedDict[int, tuple[JSON, frozenset[str]]] = OrderedDict()
_BY_CONFIG_KEPT = 4096


def attempt_secret_names(config: JSON, raw_keys: frozenset[str] = frozenset()) -> frozenset[str]:
    """:func:`secret_names` for an attempt's config, remembered per config object."""
    key = id(config)
    found = _BY_CONFIG.get(key)
    if found is not None and found[0] is config:
        _BY_CONFIG.move_to_end(key)
        return found[1]
    names = secret_names(config, raw_keys)
    _BY_CONFIG[key] = (config, names)
    if len(_BY_CONFIG) > _BY_CONFIG_KEPT:
        _BY_CONFIG.popitem(last=False)
    return names


def is_reference_only(text: str) -> bool:
    """Whether ``text`` holds secret references and nothing else but an authorization scheme
    word (``Bearer {{ secrets.token }}``); an empty value holds no credential either."""
    if not text.strip():
        return True
    try:
        template = _PARSER.parse(text)
    except TemplateSyntaxError:
        return False
    literal, references = [], 0
    for node in template.body:
        if not isinstance(node, nodes.Output):
            return False
        for part in node.nodes:
            if isinstance(part, nodes.TemplateData):
                literal.append(part.data)
                continue
            try:
                if _named(part) is None:
                    return False
            except _Refused:
                return False
            references += 1
    return references > 0 and bool(_SCHEME.match("".join(literal)))


def _at(value: JSON, segments: tuple[str, ...], path: str) -> Iterator[tuple[str, JSON]]:
    """The values at ``segments`` under ``value`` (keys matched case-insensitively: header
    names are; lists at the end are opened item by item)."""
    if not segments:
        if isinstance(value, list):
            for i, item in enumerate(value):
                yield f"{path}[{i}]", item
        else:
            yield path, value
        return
    if not isinstance(value, dict):
        return
    wanted = segments[0].lower()
    for key, child in value.items():
        if key.lower() == wanted:
            yield from _at(child, segments[1:], f"{path}.{key}")


def check_sensitive(config: JSON, sensitive_paths: Iterable[str], path: str = "handler.config") -> None:
    """Refuse (INVALID_ARGUMENT, SECRET_REFERENCE_REQUIRED, naming the field) a literal in a
    field the handler type marks sensitive."""
    for pattern in sorted(sensitive_paths):
        for field, value in _at(config, tuple(pattern.split(".")), path):
            if value is None or (isinstance(value, str) and is_reference_only(value)):
                continue
            raise InvalidArgument.field(
                field,
                "a credential: only a secret reference is accepted here, e.g. {{ secrets.NAME }}"
                " (store the value with `neoactions secrets set NAME`)",
                reason="SECRET_REFERENCE_REQUIRED",
            )


__all__ = [
    "NAME_RULE",
    "SECRET_NAME",
    "attempt_secret_names",
    "check_sensitive",
    "is_reference_only",
    "referenced_secrets",
    "secret_names",
]
