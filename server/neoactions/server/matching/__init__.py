"""The matching engine: which actions an event triggers, and why.

Pure domain code (no I/O). Triggers are compiled once, when an action is saved
(:func:`compile_trigger`), and a :class:`Matcher` keeps every tenant's actions in an
index on event-type segments and literal conditions. Semantics: ``docs/matching.md``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from neoactions.domain.explain import ActionExplanation, ConditionExplanation, PatternExplanation

    from .compiler import CompiledTrigger, compile_condition, compile_trigger
    from .eventpattern import compile_event_pattern
    from .eventtypes import type_pattern_matches, validate_event_type
    from .limits import DEFAULT_CEL_LIMITS, CelLimits
    from .matcher import Matcher
    from .naive import NaiveMatcher
    from .operators import OPERATORS
    from .paths import ENVELOPE_FIELDS, MISSING

#: where each public name lives. Loaded on first use, so that a reader of the plain-data
#: modules (``explain``, which the client decodes into) does not load CEL and RE2.
_HOMES = {
    "CompiledTrigger": "compiler",
    "compile_condition": "compiler",
    "compile_trigger": "compiler",
    "compile_event_pattern": "eventpattern",
    "type_pattern_matches": "eventtypes",
    "validate_event_type": "eventtypes",
    "ActionExplanation": "neoactions.domain.explain",
    "ConditionExplanation": "neoactions.domain.explain",
    "PatternExplanation": "neoactions.domain.explain",
    "CelLimits": "limits",
    "DEFAULT_CEL_LIMITS": "limits",
    "Matcher": "matcher",
    "NaiveMatcher": "naive",
    "OPERATORS": "operators",
    "ENVELOPE_FIELDS": "paths",
    "MISSING": "paths",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home if "." in home else f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_CEL_LIMITS",
    "ENVELOPE_FIELDS",
    "MISSING",
    "OPERATORS",
    "ActionExplanation",
    "CelLimits",
    "CompiledTrigger",
    "ConditionExplanation",
    "Matcher",
    "NaiveMatcher",
    "PatternExplanation",
    "compile_condition",
    "compile_event_pattern",
    "compile_trigger",
    "type_pattern_matches",
    "validate_event_type",
]
