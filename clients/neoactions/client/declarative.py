"""The declarative actions file (``neoactions apply -f actions.yaml``) → protobuf.

A file holds one or more YAML documents, each a mapping with an ``actions:`` list::

    actions:
      - name: big-order-alert
        trigger:
          event_types: ["orders.created"]
          conditions:
            - {field: data.amount, operator: gt, value: 100}
        handler:
          type: python
          config: {function: "shop.handlers:alert"}
        priority: high
        execution_mode: sync
        timeout_seconds: 10

Every key is checked before anything is sent: an unknown key, a bad priority or a
malformed condition is refused with :class:`~neoactions.domain.errors.InvalidArgument`
naming the action and the key. Semantic checks (patterns, operators, handler configs)
are the server's job and happen when the action is saved (or validated with a dry run).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from google.protobuf import json_format

from neoactions.domain.errors import FieldViolation, InvalidArgument
from neoactions.domain.model import Action, ExecutionMode, JSONObject, Priority
from neoactions.v1 import actions_pb2

ACTION_KEYS = frozenset(
    {
        "name",
        "description",
        "trigger",
        "handler",
        "priority",
        "execution_mode",
        "timeout_seconds",
        "retry_policy",
        "rate_limit",
        "max_concurrency",
        "tags",
        "enabled",
    }
)
TRIGGER_KEYS = frozenset({"event_types", "conditions", "context_filters"})
#: ``version``: a plugin version or range (``^1.2``); empty: the newest installed
HANDLER_KEYS = frozenset({"type", "config", "version"})
RETRY_POLICY_KEYS = frozenset(
    {"max_retries", "backoff", "initial_delay_ms", "max_delay_ms", "jitter", "max_age_seconds"}
)
RATE_LIMIT_KEYS = frozenset({"per_minute", "per_hour"})
FIELD_CONDITION_KEYS = frozenset({"field", "operator", "value"})
CONDITION_FORMS = ("all", "any", "not", "cel")

PRIORITIES = tuple(p.label for p in Priority)
EXECUTION_MODES = tuple(m.value for m in ExecutionMode)


@dataclass(frozen=True, slots=True)
class ActionDocument:
    """One action of a declarative file, ready to send."""

    #: the action's name inside its tenant
    name: str
    #: the action as protobuf (``name`` and output-only fields left empty)
    action: actions_pb2.Action
    #: ``enabled`` as written in the file; ``None`` when the file does not say
    enabled: bool | None = None


class _Checker:
    """Walks one action mapping, collecting every problem with its path."""

    def __init__(self, label: str, path: str) -> None:
        self.label = label
        self.path = path
        self.violations: list[FieldViolation] = []

    def add(self, path: str, description: str) -> None:
        self.violations.append(FieldViolation(path, f"action {self.label}: {description}"))

    def mapping(self, value: Any, path: str, what: str) -> Mapping[str, Any] | None:
        if not isinstance(value, Mapping):
            self.add(path, f"{what} must be a mapping, got {_type_name(value)}")
            return None
        return value

    def keys(self, value: Mapping[str, Any], allowed: frozenset[str], path: str, where: str) -> None:
        for key in value:
            if key not in allowed:
                self.add(
                    f"{path}.{key}",
                    f"unknown key {key!r} in {where} (allowed: {', '.join(sorted(allowed))})",
                )

    def condition(self, value: Any, path: str) -> None:
        cond = self.mapping(value, path, "a condition")
        if cond is None:
            return
        forms = [f for f in CONDITION_FORMS if f in cond]
        has_field_form = any(k in cond for k in FIELD_CONDITION_KEYS)
        if has_field_form:
            forms.insert(0, "field")
        if len(forms) != 1:
            got = f" (got {', '.join(forms)})" if forms else ""
            self.add(
                path,
                "a condition needs exactly one of {field, operator, value}, all, any, not, cel" + got,
            )
            return
        form = forms[0]
        if form == "field":
            self.keys(cond, FIELD_CONDITION_KEYS, path, "a condition")
            for key in ("field", "operator"):
                if not isinstance(cond.get(key), str) or not cond[key]:
                    self.add(f"{path}.{key}", f"a condition needs a non-empty string {key!r}")
            return
        self.keys(cond, frozenset({form}), path, f"a {form!r} condition")
        inner = cond[form]
        if form in ("all", "any"):
            if not isinstance(inner, list) or not inner:
                self.add(f"{path}.{form}", f"{form!r} needs a non-empty list of conditions")
                return
            for i, child in enumerate(inner):
                self.condition(child, f"{path}.{form}[{i}]")
        elif form == "not":
            self.condition(inner, f"{path}.not")
        elif not isinstance(inner, str) or not inner.strip():
            self.add(f"{path}.cel", "'cel' needs a non-empty expression string")


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _required(check: _Checker, body: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any] | None:
    if body.get(key) is None:
        check.add(f"{path}.{key}", f"{key!r} is required")
        return None
    return check.mapping(body[key], f"{path}.{key}", repr(key))


def _choice(checker: _Checker, value: Any, path: str, allowed: tuple[str, ...], enum_prefix: str) -> str | None:
    text = str(value).strip().lower() if isinstance(value, str) else None
    if text is not None and text.startswith(enum_prefix.lower()):
        text = text[len(enum_prefix) :]
    if text not in allowed:
        checker.add(path, f"{path.rsplit('.', 1)[-1]} must be one of {', '.join(allowed)}, got {value!r}")
        return None
    return f"{enum_prefix}{text.upper()}"


def parse_action(doc: Any, path: str = "action") -> ActionDocument:
    """One action in the YAML form (a mapping) → :class:`ActionDocument`.

    Raises :class:`InvalidArgument` listing every problem found.
    """
    violations, parsed = _parse_action(doc, path)
    if violations or parsed is None:
        raise _invalid(violations)
    return parsed


def _parse_action(doc: Any, path: str) -> tuple[list[FieldViolation], ActionDocument | None]:
    name = doc.get("name") if isinstance(doc, Mapping) else None
    label = repr(name) if isinstance(name, str) and name else f"at {path}"
    check = _Checker(label, path)
    action = check.mapping(doc, path, "an action")
    if action is None:
        return check.violations, None
    check.keys(action, ACTION_KEYS, path, "an action")
    if not isinstance(name, str) or not name:
        check.add(f"{path}.name", "'name' is required and must be a non-empty string")

    body: dict[str, Any] = {k: v for k, v in action.items() if k in ACTION_KEYS}
    body.pop("name", None)
    enabled = body.pop("enabled", None)
    if enabled is not None and not isinstance(enabled, bool):
        check.add(f"{path}.enabled", f"'enabled' must be true or false, got {enabled!r}")

    trigger = _required(check, body, "trigger", path)
    if trigger is not None:
        check.keys(trigger, TRIGGER_KEYS, f"{path}.trigger", "trigger")
        types = trigger.get("event_types")
        if isinstance(types, str):
            body["trigger"] = {**trigger, "event_types": [types]}
        elif not isinstance(types, list) or not types:
            check.add(f"{path}.trigger.event_types", "'event_types' needs at least one pattern")
        conditions = trigger.get("conditions", [])
        if not isinstance(conditions, list):
            check.add(f"{path}.trigger.conditions", "'conditions' must be a list")
        else:
            for i, cond in enumerate(conditions):
                check.condition(cond, f"{path}.trigger.conditions[{i}]")
        filters = trigger.get("context_filters")
        if filters is not None:
            check.mapping(filters, f"{path}.trigger.context_filters", "'context_filters'")

    handler = _required(check, body, "handler", path)
    if handler is not None:
        check.keys(handler, HANDLER_KEYS, f"{path}.handler", "handler")
        if not isinstance(handler.get("type"), str) or not handler["type"]:
            check.add(f"{path}.handler.type", "'type' is required (a handler type such as python)")
        if "config" in handler:
            check.mapping(handler["config"], f"{path}.handler.config", "'config'")
        if "version" in handler and not isinstance(handler["version"], str):
            check.add(f"{path}.handler.version", "'version' is a string: a version or range such as ^1.2")

    for key, allowed in (("retry_policy", RETRY_POLICY_KEYS), ("rate_limit", RATE_LIMIT_KEYS)):
        if key in body:
            sub = check.mapping(body[key], f"{path}.{key}", repr(key))
            if sub is not None:
                check.keys(sub, allowed, f"{path}.{key}", key)

    if "priority" in body:
        body["priority"] = _choice(check, body["priority"], f"{path}.priority", PRIORITIES, "PRIORITY_")
    if "execution_mode" in body:
        body["execution_mode"] = _choice(
            check, body["execution_mode"], f"{path}.execution_mode", EXECUTION_MODES, "EXECUTION_MODE_"
        )
    if "tags" in body and (not isinstance(body["tags"], list) or not all(isinstance(t, str) for t in body["tags"])):
        check.add(f"{path}.tags", "'tags' must be a list of strings")

    if check.violations:
        return check.violations, None
    message = actions_pb2.Action()
    try:
        json_format.ParseDict(body, message)
    except json_format.ParseError as exc:
        check.add(path, f"invalid value: {exc}")
        return check.violations, None
    assert isinstance(name, str)
    return [], ActionDocument(name=name, action=message, enabled=enabled)


def parse_documents(docs: Iterable[Any], source: str = "") -> list[ActionDocument]:
    """Parsed YAML documents (each ``{actions: [...]}``) → their actions, in order.

    Raises :class:`InvalidArgument` listing every problem in every action.
    """
    violations: list[FieldViolation] = []
    out: list[ActionDocument] = []
    seen: dict[str, str] = {}
    index = 0
    prefix = f"{source}: " if source else ""
    for d, doc in enumerate(docs):
        if doc is None:
            continue
        where = "actions" if d == 0 else f"documents[{d}].actions"
        if not isinstance(doc, Mapping) or "actions" not in doc:
            violations.append(FieldViolation(f"documents[{d}]", f"{prefix}expected a mapping with an 'actions:' list"))
            continue
        for key in doc:
            if key != "actions":
                violations.append(
                    FieldViolation(f"documents[{d}].{key}", f"{prefix}unknown top-level key {key!r} (allowed: actions)")
                )
        actions = doc["actions"]
        if not isinstance(actions, list):
            violations.append(FieldViolation(where, f"{prefix}'actions' must be a list"))
            continue
        for i, item in enumerate(actions):
            path = f"{where}[{i}]"
            problems, parsed = _parse_action(item, path)
            violations.extend(problems)
            index += 1
            if parsed is None:
                continue
            if parsed.name in seen:
                violations.append(
                    FieldViolation(
                        f"{path}.name", f"action {parsed.name!r}: defined twice (first at {seen[parsed.name]})"
                    )
                )
                continue
            seen[parsed.name] = path
            out.append(parsed)
    if violations:
        raise _invalid(violations, prefix)
    return out


def parse_yaml(text: str, source: str = "") -> list[ActionDocument]:
    """YAML text (one or more ``---`` documents) → its actions."""
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        where = f"{source}: " if source else ""
        raise InvalidArgument.field("file", f"{where}not valid YAML: {exc}", reason="MALFORMED_YAML") from None
    return parse_documents(docs, source)


def load_file(path: str | Path) -> list[ActionDocument]:
    """Read and parse a declarative file."""
    p = Path(path)
    return parse_yaml(p.read_text(encoding="utf-8"), str(p))


def action_to_document(action: Action) -> JSONObject:
    """A stored action in the YAML form of the declarative file (it can be applied back)."""
    spec = action.spec()
    doc: JSONObject = {"name": action.name}
    if spec["description"]:
        doc["description"] = spec["description"]
    doc["trigger"] = spec["trigger"]
    doc["handler"] = spec["handler"]
    for key in ("priority", "execution_mode", "timeout_seconds", "retry_policy", "rate_limit"):
        doc[key] = spec[key]
    if spec["max_concurrency"]:
        doc["max_concurrency"] = spec["max_concurrency"]
    if spec["tags"]:
        doc["tags"] = spec["tags"]
    doc["enabled"] = action.enabled
    return doc


def _invalid(violations: list[FieldViolation], prefix: str = "") -> InvalidArgument:
    first = violations[0]
    more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
    description = first.description.removeprefix(prefix)
    text = f"{prefix}{first.field}: {description}{more}"
    return InvalidArgument(f"invalid actions file: {text}", reason="INVALID_ACTIONS_FILE", violations=violations)


__all__ = [
    "ActionDocument",
    "action_to_document",
    "load_file",
    "parse_action",
    "parse_documents",
    "parse_yaml",
]
