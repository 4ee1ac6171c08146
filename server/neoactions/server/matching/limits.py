"""Size and nesting limits enforced when a trigger is compiled.

They bound both the memory an action can pin in the index and the work one event
can cause, so one careless (or hostile) action cannot slow matching for a tenant.
"""

from __future__ import annotations

from dataclasses import dataclass

#: event-type patterns per action
MAX_PATTERNS = 64
#: length of an event type or an event-type pattern
MAX_TYPE_LENGTH = 255
#: condition nodes (fields, groups, CEL expressions) in one trigger, counted recursively
MAX_CONDITION_NODES = 256
#: nesting of all / any / not groups (and of EventBridge pattern objects)
MAX_DEPTH = 8
#: characters in a field path, and segments in it
MAX_PATH_LENGTH = 256
MAX_PATH_SEGMENTS = 32
#: items in an ``in`` / ``not_in`` list, a ``cidr`` list or an EventBridge value array
MAX_LIST_ITEMS = 1000
#: characters in one string operand
MAX_STRING_LENGTH = 4096
#: characters in a ``regex`` pattern and in a CEL expression
MAX_REGEX_LENGTH = 1024
MAX_CEL_LENGTH = 4096
#: keys in ``context_filters``
MAX_CONTEXT_FILTERS = 32


@dataclass(frozen=True, slots=True)
class CelLimits:
    """What one ``cel`` condition may cost (settings ``cel_cost_budget``, ``max_cel_list_items``,
    ``max_cel_input_values``; see ``docs/configuration.md``).

    An expression is refused when saved if its worst case over any event within these
    bounds exceeds ``cost_budget`` steps (one step is about 0.1 µs of evaluation). When an
    event exceeds them for an expression, the expression is not run and does not match.
    """

    #: worst-case estimated steps of one expression
    cost_budget: int = 50_000
    #: items of a list (or keys of a map) an expression iterates with a macro (all, exists, map...)
    max_list_items: int = 256
    #: values (counted recursively) of the event parts an expression reads
    max_input_values: int = 1_000
    #: values of an event part a macro body reads (it is read again, and copied, per item)
    max_reread_values: int = 16
    #: characters of all strings in an event (its size bound)
    max_string_bytes: int = 256 * 1024


DEFAULT_CEL_LIMITS = CelLimits()
