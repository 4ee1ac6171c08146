"""The matching engine: which actions an event triggers, and why.

Pure domain code (no I/O). Triggers are compiled once, when an action is saved
(:func:`compile_trigger`), and a :class:`Matcher` keeps every tenant's actions in an
index on event-type segments and literal conditions. Semantics: ``docs/matching.md``.
"""

from __future__ import annotations

from .compiler import CompiledTrigger, compile_condition, compile_trigger
from .eventpattern import compile_event_pattern
from .eventtypes import type_pattern_matches, validate_event_type
from .explain import ActionExplanation, ConditionExplanation, PatternExplanation
from .matcher import Matcher
from .naive import NaiveMatcher
from .operators import OPERATORS
from .paths import ENVELOPE_FIELDS, MISSING

__all__ = [
    "ENVELOPE_FIELDS",
    "MISSING",
    "OPERATORS",
    "ActionExplanation",
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
